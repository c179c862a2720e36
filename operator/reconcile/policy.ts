// ReconciliationPolicy reconcile. The reconciliation worker is not in this release: the policy
// is validated by the apiserver and stored, and its status says plainly that nothing runs yet.
import { RECONCILIATION_POLICIES } from '../kube/resources.ts';
import { type ReconcileContext, type ReconcileResult, type TallyObject, writeStatus } from './context.ts';

export async function reconcilePolicy(
  ctx: ReconcileContext,
  policy: TallyObject | undefined,
): Promise<ReconcileResult> {
  if (!policy || policy.metadata.deletionTimestamp) return {};
  await writeStatus(ctx, RECONCILIATION_POLICIES, policy, {
    ready: false,
    reason: 'WorkerNotAvailable',
    message:
      'the policy is valid and stored, but this Tally release does not run reconciliation workers yet; nothing is being compared',
  });
  return {};
}
