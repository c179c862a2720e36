// ReconciliationPolicy reconcile against the in-memory Kubernetes API and JetStream.
import { describe, expect, it } from 'vitest';
import { TerminalError } from '../errors.ts';
import { RECONCILIATION_POLICIES } from '../kube/resources.ts';
import { FINALIZER } from '../render/labels.ts';
import { eventReasons, fakeWorld, lastCondition, resource } from '../testing/context.ts';
import { POLICY_REASONS, reconcilePolicy } from './policy.ts';

const validSpec = {
  channel: {
    entity: 'Order',
    channels: ['shopify-us'],
    keyFields: ['orderId'],
    businessTimeField: 'placedAt',
  },
  erp: { entity: 'Invoice', channels: ['erp'], keyFields: ['orderId'], businessTimeField: 'issuedAt' },
  compare: [
    {
      name: 'grand-total',
      channelField: 'totals.grandTotal',
      erpField: 'totals.grandTotal',
      rule: 'absolute',
      toleranceMinor: 0,
    },
  ],
  window: { timeZone: 'America/Chicago', cutoff: '23:59', lateness: '48h' },
};

function world(spec: Record<string, unknown>) {
  const w = fakeWorld();
  const policy = w.kube.put(RECONCILIATION_POLICIES, resource('ReconciliationPolicy', 'orders', spec));
  return { ...w, policy };
}

describe('reconcilePolicy', () => {
  it('ends an invalid spec terminally with the field and what is wrong (InvalidSpec)', async () => {
    const { ctx, kube, policy } = world({
      ...validSpec,
      compare: [{ ...validSpec.compare[0], rule: 'nearly' }],
    });
    const err = await reconcilePolicy(ctx, policy).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TerminalError);
    expect((err as TerminalError).reason).toBe(POLICY_REASONS.invalidSpec);
    const stalled = lastCondition(kube, RECONCILIATION_POLICIES, 'orders', 'Stalled');
    expect(stalled).toMatchObject({ status: 'True', reason: 'InvalidSpec' });
    expect(stalled?.message).toMatch(/^spec\.compare\[0\]/);
    expect(stalled?.message).not.toContain('"code"');
    expect(eventReasons(kube, 'orders')).toEqual(['InvalidSpec']);
  });

  it('runs a valid policy: finalizer, report bucket, worker, Ready and a periodic requeue', async () => {
    const { ctx, kube, jsm, policy } = world(validSpec);
    await expect(reconcilePolicy(ctx, policy)).resolves.toEqual({ requeueAfterMs: 30_000 });
    expect(kube.object(RECONCILIATION_POLICIES, 'shop', 'orders')?.metadata.finalizers).toEqual([FINALIZER]);
    expect(jsm.buckets.map((b) => b.name)).toEqual(['tally_recon_shop_orders']);
    expect(lastCondition(kube, RECONCILIATION_POLICIES, 'orders', 'Ready')).toMatchObject({
      status: 'True',
      reason: POLICY_REASONS.running,
    });
  });
});
