// ReconciliationPolicy reconcile, in numbered steps: make the namespace streams and the policy's
// report bucket exist, run one reconciliation worker (ConfigMap + Deployment, like a flow), and
// report the latest final window on status, read from the world (the report bucket), never from
// the old status. Requeued periodically because reports change without a Kubernetes event.
import type { KV } from '@nats-io/kv';
import { reconciliationPolicySpecSchema } from '../../api/reconciliation-policy.ts';
import { policyNames } from '../../runtime/nats/canonical.ts';
import type { WindowReport } from '../../runtime/reconcile/types.ts';
import { addFinalizer, removeFinalizer } from '../finalizer.ts';
import { isNotFound } from '../kube/errors.ts';
import { CONFIG_MAPS, DEPLOYMENTS, RECONCILIATION_POLICIES } from '../kube/resources.ts';
import { deletePolicyNats, ensureNamespaceStreams } from '../nats/provisioner.ts';
import { FINALIZER, policyWorkerName } from '../render/labels.ts';
import { renderPolicyWorkerConfig } from '../render/worker-config.ts';
import { renderPolicyObjects } from '../render/worker-objects.ts';
import { describeSpecIssues } from '../status/spec-issues.ts';
import {
  type ReconcileContext,
  type ReconcileResult,
  stall,
  type TallyObject,
  writeStatus,
} from './context.ts';

export const POLICY_REASONS = {
  running: 'WorkerRunning',
  invalidSpec: 'InvalidSpec',
  natsUnavailable: 'NatsUnavailable',
  breached: 'ThresholdBreached',
  withinThresholds: 'WithinThresholds',
  noFinalWindow: 'NoFinalWindow',
} as const;
export type PolicyReason = (typeof POLICY_REASONS)[keyof typeof POLICY_REASONS];

const REFRESH_MS = 30_000;

export async function reconcilePolicy(
  ctx: ReconcileContext,
  policy: TallyObject | undefined,
): Promise<ReconcileResult> {
  // 1. Read the policy; gone means cleanup already ran under the finalizer.
  if (!policy) return {};
  const namespace = policy.metadata.namespace!;
  const name = policy.metadata.name;

  // 2. Being deleted: remove the worker objects and, per deletionPolicy, the report bucket.
  if (policy.metadata.deletionTimestamp) {
    if (policy.metadata.finalizers?.includes(FINALIZER)) {
      for (const r of [DEPLOYMENTS, CONFIG_MAPS]) {
        await ctx.client.delete(r, namespace, policyWorkerName(name)).catch((err) => {
          if (!isNotFound(err)) throw err;
        });
      }
      if ((policy.spec as { deletionPolicy?: string }).deletionPolicy !== 'Retain') {
        await deletePolicyNats(ctx.jsm(), namespace, name);
      }
      await removeFinalizer(ctx.client, RECONCILIATION_POLICIES, policy, FINALIZER);
    }
    return {};
  }
  await addFinalizer(ctx.client, RECONCILIATION_POLICIES, policy, FINALIZER);

  // 3. The spec, defaults applied.
  const parsed = reconciliationPolicySpecSchema.safeParse(policy.spec, { reportInput: true });
  if (!parsed.success) {
    return stall(ctx, RECONCILIATION_POLICIES, policy, {
      reason: POLICY_REASONS.invalidSpec,
      message: describeSpecIssues(parsed.error),
    });
  }
  const spec = parsed.data;

  // 4. JetStream: the canonical and report streams, and the policy's report bucket.
  let kv: KV;
  try {
    await ensureNamespaceStreams(ctx.jsm(), namespace);
    kv = await ctx.kvm().create(policyNames(namespace, name).stateBucket, { history: 5 });
  } catch (err) {
    await writeStatus(ctx, RECONCILIATION_POLICIES, policy, {
      ready: false,
      progressing: true,
      reason: POLICY_REASONS.natsUnavailable,
      message: `cannot create the policy's JetStream resources: ${(err as Error).message}`,
    });
    throw err;
  }

  // 5. The worker, rendered by pure functions, applied with server-side apply.
  const config = renderPolicyWorkerConfig({ namespace, name, spec, natsServers: ctx.workerNatsServers });
  const objects = renderPolicyObjects(
    { namespace, name, uid: policy.metadata.uid!, spec },
    { config, env: [] },
    ctx.render,
  );
  await ctx.client.apply(CONFIG_MAPS, objects.configMap);
  await ctx.client.apply(DEPLOYMENTS, objects.deployment);

  // 6. Status from the latest final report in the bucket.
  const { latest, openExceptions } = await readReports(kv);
  const breached = latest?.breached ?? false;
  await writeStatus(
    ctx,
    RECONCILIATION_POLICIES,
    policy,
    {
      ready: true,
      reason: POLICY_REASONS.running,
      message: `worker runs as Deployment ${policyWorkerName(name)} (config ${objects.hash})`,
    },
    {
      ...(latest
        ? { lastFinalWindow: latest.window, matchRate: latest.totals.matchRate, breached, openExceptions }
        : {}),
    },
    [
      latest
        ? {
            type: 'Breached',
            status: breached ? 'True' : 'False',
            reason: breached ? POLICY_REASONS.breached : POLICY_REASONS.withinThresholds,
            message: breached
              ? `window ${latest.window}: ${latest.breaches.map((b) => `${b.threshold} ${b.value}${b.currency ? ` ${b.currency}` : ''} > ${b.limit}`).join('; ')}`
              : `window ${latest.window}: match rate ${latest.totals.matchRate}%, within thresholds`,
          }
        : {
            type: 'Breached',
            status: 'Unknown',
            reason: POLICY_REASONS.noFinalWindow,
            message: 'no window is final yet',
          },
    ],
  );
  return { requeueAfterMs: REFRESH_MS };
}

async function readReports(kv: KV): Promise<{ latest?: WindowReport; openExceptions: number }> {
  let latest: WindowReport | undefined;
  let openExceptions = 0;
  for await (const key of await kv.keys('report.*')) {
    const entry = await kv.get(key);
    if (!entry?.value.length) continue;
    const r = entry.json<WindowReport>();
    openExceptions += r.totals.mismatched + r.totals.missingErp + r.totals.missingChannel;
    if (!latest || r.window > latest.window) latest = r;
  }
  return latest ? { latest, openExceptions } : { openExceptions };
}
