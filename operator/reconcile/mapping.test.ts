// CanonicalMapping reconcile against the in-memory Kubernetes API: an invalid spec, a compile error
// and failing test cases need a user change (TerminalError with the Stalled reason); a missing
// lookup ConfigMap is re-checked by itself.
import { describe, expect, it } from 'vitest';
import { TerminalError } from '../errors.ts';
import { CANONICAL_MAPPINGS } from '../kube/resources.ts';
import {
  eventReasons,
  fakeWorld,
  lastCondition,
  lastStatus,
  mappingSpec,
  ORDER,
  resource,
} from '../testing/context.ts';
import { FakeKube } from '../testing/fake-kube.ts';
import { MAPPING_REASONS, reconcileMapping } from './mapping.ts';

/** The mapping `shopify-order` as the informer and the API hold it. */
function world(spec: Record<string, unknown>) {
  const kube = new FakeKube();
  const mapping = kube.put(CANONICAL_MAPPINGS, resource('CanonicalMapping', 'shopify-order', spec));
  return fakeWorld({ kube, mappings: [mapping] });
}

async function terminalReason(promise: Promise<unknown>): Promise<string> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TerminalError);
  return (err as TerminalError).reason;
}

describe('reconcileMapping', () => {
  it('ends an invalid spec terminally with the field and what is wrong (InvalidSpec)', async () => {
    const { ctx, kube } = world(mappingSpec({ expression: 42 }));
    expect(await terminalReason(reconcileMapping(ctx, 'shop', 'shopify-order'))).toBe(
      MAPPING_REASONS.invalidSpec,
    );
    expect(lastCondition(kube, CANONICAL_MAPPINGS, 'shopify-order', 'Stalled')).toMatchObject({
      status: 'True',
      reason: 'InvalidSpec',
      message: 'spec.expression: has the wrong type: expected string, got number',
    });
    expect(eventReasons(kube, 'shopify-order')).toEqual(['InvalidSpec']);
  });

  it('ends failing test cases terminally (TestsFailed), with the counts on status', async () => {
    const { ctx, kube } = world(
      mappingSpec({ tests: [{ name: 'as-is', input: ORDER, expected: { ...ORDER, orderId: 'shopify-2' } }] }),
    );
    expect(await terminalReason(reconcileMapping(ctx, 'shop', 'shopify-order'))).toBe(
      MAPPING_REASONS.testsFailed,
    );
    expect(lastStatus(kube, CANONICAL_MAPPINGS, 'shopify-order')).toMatchObject({
      testsPassed: 0,
      testsFailed: 1,
    });
    expect(lastCondition(kube, CANONICAL_MAPPINGS, 'shopify-order', 'Stalled')?.reason).toBe('TestsFailed');
    expect(eventReasons(kube, 'shopify-order')).toEqual(['TestsFailed']);
  });

  it('ends an expression that does not compile terminally (CompileFailed)', async () => {
    const { ctx } = world(mappingSpec({ expression: '{ "orderId": ' }));
    expect(await terminalReason(reconcileMapping(ctx, 'shop', 'shopify-order'))).toBe(
      MAPPING_REASONS.compileFailed,
    );
  });

  it('is Ready when its tests pass, without a TerminalError', async () => {
    const { ctx, kube } = world(mappingSpec());
    await expect(reconcileMapping(ctx, 'shop', 'shopify-order')).resolves.toEqual({});
    expect(lastCondition(kube, CANONICAL_MAPPINGS, 'shopify-order', 'Ready')).toMatchObject({
      status: 'True',
      reason: MAPPING_REASONS.testsPassed,
    });
  });

  it('re-checks a missing lookup ConfigMap by itself: Reconciling and a requeue, not terminal', async () => {
    const { ctx, kube } = world(
      mappingSpec({ lookups: [{ name: 'status', configMapRef: { name: 'order-status' } }] }),
    );
    await expect(reconcileMapping(ctx, 'shop', 'shopify-order')).resolves.toEqual({ requeueAfterMs: 30_000 });
    expect(lastCondition(kube, CANONICAL_MAPPINGS, 'shopify-order', 'Reconciling')?.reason).toBe(
      MAPPING_REASONS.lookupNotFound,
    );
  });
});
