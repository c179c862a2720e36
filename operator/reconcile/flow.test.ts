// IntegrationFlow reconcile against the in-memory Kubernetes API and JetStream: what needs a user
// change ends in a TerminalError with the reason of its Stalled condition and Event; what resolves
// by itself does not.
import { describe, expect, it } from 'vitest';
import { flowNames } from '../../runtime/nats/flow-resources.ts';
import { TerminalError } from '../errors.ts';
import { INTEGRATION_FLOWS } from '../kube/resources.ts';
import { FINALIZER } from '../render/labels.ts';
import {
  eventReasons,
  fakeWorld,
  flowSpec,
  lastCondition,
  readyMapping,
  resource,
} from '../testing/context.ts';
import { FakeKube } from '../testing/fake-kube.ts';
import type { TallyObject } from './context.ts';
import { FLOW_REASONS, reconcileFlow } from './flow.ts';

/** The flow `orders` as the informer and the API hold it. */
function world(spec: Record<string, unknown>, mappings: TallyObject[] = [readyMapping()]) {
  const kube = new FakeKube();
  const flow = kube.put(INTEGRATION_FLOWS, resource('IntegrationFlow', 'orders', spec));
  return fakeWorld({ kube, flows: [flow], mappings });
}

async function terminal(promise: Promise<unknown>): Promise<TerminalError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TerminalError);
  return err as TerminalError;
}

describe('reconcileFlow: states that need a user change', () => {
  it('ends an invalid spec terminally, with the reason on Stalled, Ready, the Event and the error', async () => {
    const { ctx, kube } = world(
      flowSpec({ sinks: [{ name: 'erp', type: 'http', http: { url: 'ftp://erp.example/orders' } }] }),
    );
    const err = await terminal(reconcileFlow(ctx, 'shop', 'orders'));
    expect(err.reason).toBe(FLOW_REASONS.invalidSpec);
    expect(err.code).toBe('TERMINAL');
    const stalled = lastCondition(kube, INTEGRATION_FLOWS, 'orders', 'Stalled');
    expect(stalled).toMatchObject({ status: 'True', reason: 'InvalidSpec' });
    expect(lastCondition(kube, INTEGRATION_FLOWS, 'orders', 'Ready')).toMatchObject({
      status: 'False',
      reason: 'InvalidSpec',
    });
    expect(eventReasons(kube, 'orders')).toEqual(['InvalidSpec']);
    expect(err.message).toBe(stalled?.message);
  });

  it('writes the field and what is wrong with it, not zod’s JSON dump', async () => {
    const { ctx, kube } = world(
      flowSpec({ sinks: [{ name: 'erp', type: 'http', http: { url: 'ftp://erp.example/orders' } }] }),
    );
    await reconcileFlow(ctx, 'shop', 'orders').catch(() => undefined); // the outcome is the test above
    const message = lastCondition(kube, INTEGRATION_FLOWS, 'orders', 'Stalled')?.message;
    expect(message).toMatch(/^spec\.sinks\[0\]\.http\.url: must be an http:\/\/ or https:\/\/ URL/);
    expect(message).not.toContain('"code"');
  });

  it('tells a missing field from a wrong type, and lists every problem', async () => {
    const { channel: _c, ...spec } = flowSpec({ replicas: 'two' });
    const { ctx, kube } = world(spec);
    await reconcileFlow(ctx, 'shop', 'orders').catch(() => undefined);
    const message = lastCondition(kube, INTEGRATION_FLOWS, 'orders', 'Stalled')?.message ?? '';
    expect(message.split('; ').sort()).toEqual([
      'spec.channel: is required (expected string)',
      'spec.replicas: has the wrong type: expected number, got string',
    ]);
  });

  it('ends an invalid partition key terminally (InvalidPartitionKey)', async () => {
    const { ctx, kube } = world(flowSpec({ delivery: { partitionKey: 'customer.(', partitions: 2 } }));
    const err = await terminal(reconcileFlow(ctx, 'shop', 'orders'));
    expect(err.reason).toBe(FLOW_REASONS.invalidPartitionKey);
    expect(lastCondition(kube, INTEGRATION_FLOWS, 'orders', 'Stalled')?.message).toMatch(
      /^spec\.delivery\.partitionKey is not a valid JSONata expression/,
    );
  });

  it('ends a missing mapping terminally (MappingNotFound), naming the field to fix', async () => {
    const { ctx, kube } = world(flowSpec(), []);
    const err = await terminal(reconcileFlow(ctx, 'shop', 'orders'));
    expect(err.reason).toBe(FLOW_REASONS.mappingNotFound);
    expect(lastCondition(kube, INTEGRATION_FLOWS, 'orders', 'Stalled')?.message).toContain(
      'spec.mappingRef.name',
    );
    expect(eventReasons(kube, 'orders')).toEqual(['MappingNotFound']);
  });

  it('ends a mapping that failed its tests terminally (MappingNotReady)', async () => {
    const failing = readyMapping();
    failing.status!.conditions![0] = {
      ...failing.status!.conditions![0]!,
      status: 'False',
      reason: 'TestsFailed',
      message: '1 of 1 test failed',
    };
    const { ctx } = world(flowSpec(), [failing]);
    expect((await terminal(reconcileFlow(ctx, 'shop', 'orders'))).reason).toBe(FLOW_REASONS.mappingNotReady);
  });

  it('ends a storage change JetStream cannot apply terminally, leaving the stream as it is', async () => {
    const { ctx, kube, jsm } = world(flowSpec());
    const stream = flowNames({ namespace: 'shop', name: 'orders' }).stream;
    jsm.seedStream({ name: stream, storage: 'memory' as never, subjects: ['tally.shop.orders.in.>'] });
    const err = await terminal(reconcileFlow(ctx, 'shop', 'orders'));
    expect(err.reason).toBe(FLOW_REASONS.natsImmutableSetting);
    expect(lastCondition(kube, INTEGRATION_FLOWS, 'orders', 'Stalled')?.message).toContain(
      `stream ${stream} uses memory storage`,
    );
    expect(jsm.writes.filter((w) => w.includes(stream))).toEqual([]);
  });
});

describe('reconcileFlow: states that resolve by themselves', () => {
  it('waits for a mapping not yet checked: Reconciling, no TerminalError', async () => {
    const unchecked = readyMapping();
    unchecked.metadata.generation = 2;
    const { ctx, kube } = world(flowSpec(), [unchecked]);
    await expect(reconcileFlow(ctx, 'shop', 'orders')).resolves.toEqual({});
    expect(lastCondition(kube, INTEGRATION_FLOWS, 'orders', 'Reconciling')).toMatchObject({
      status: 'True',
      reason: FLOW_REASONS.waitingForMapping,
    });
    expect(lastCondition(kube, INTEGRATION_FLOWS, 'orders', 'Stalled')).toBeUndefined();
  });

  it('rethrows NATS being unavailable for a retry with backoff (not terminal), Reconciling NatsUnavailable', async () => {
    const { ctx, kube, jsm } = world(flowSpec());
    const down = new Error('connection refused');
    jsm.streams.info = async () => {
      throw down;
    };
    await expect(reconcileFlow(ctx, 'shop', 'orders')).rejects.toBe(down);
    expect(lastCondition(kube, INTEGRATION_FLOWS, 'orders', 'Reconciling')).toMatchObject({
      reason: FLOW_REASONS.natsUnavailable,
    });
  });

  it('becomes Ready with its finalizer, streams, consumer and worker objects', async () => {
    const { ctx, kube, jsm } = world(flowSpec());
    await expect(reconcileFlow(ctx, 'shop', 'orders')).resolves.toEqual({});
    expect(lastCondition(kube, INTEGRATION_FLOWS, 'orders', 'Ready')).toMatchObject({
      status: 'True',
      reason: FLOW_REASONS.reconciled,
    });
    expect(kube.object(INTEGRATION_FLOWS, 'shop', 'orders')?.metadata.finalizers).toEqual([FINALIZER]);
    const names = flowNames({ namespace: 'shop', name: 'orders' });
    expect(jsm.consumer(names.stream, names.consumer)).toBeDefined();
    expect(
      kube.writes('apply').map((c) => `${c.resource}${c.subresource ? `/${c.subresource}` : ''}`),
    ).toEqual(['configmaps', 'deployments', 'services', 'integrationflows/status']);
  });
});
