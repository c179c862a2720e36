// JetStream provisioning: the pure decisions (desired configs, drift, what JetStream cannot change)
// and ensureFlowNats against an in-memory JetStream (a real nats-server runs in the integration tier).
import type { ConsumerConfig, StreamConfig } from '@nats-io/jetstream';
import { describe, expect, it } from 'vitest';
import { deliverySchema, streamSettingsSchema } from '../../api/integration-flow.ts';
import { canonicalStreamConfig } from '../../runtime/nats/canonical.ts';
import { flowNames } from '../../runtime/nats/flow-resources.ts';
import { FakeJetStream } from '../testing/fake-jetstream.ts';
import {
  consumerDrifted,
  consumerUpdate,
  desiredFlowNats,
  ensureFlowNats,
  ensureNamespaceStreams,
  immutableStreamChange,
  NatsImmutableSettingError,
  streamDrifted,
} from './provisioner.ts';

const flow = { namespace: 'shop', name: 'orders' };
const names = flowNames(flow);
const spec = (stream: Record<string, unknown> = {}, delivery: Record<string, unknown> = {}) => ({
  stream: streamSettingsSchema.parse(stream),
  delivery: deliverySchema.parse(delivery),
});
const NS_PER_S = 1_000_000_000;

/** A stream config as the server reports it: what was sent, plus settings and metadata of its own. */
const asServerHas = (cfg: object) =>
  ({
    max_msgs: -1,
    max_bytes: -1,
    ...cfg,
    metadata: { ...('metadata' in cfg ? (cfg.metadata as object) : {}), '_nats.req.level': '0' },
  }) as unknown as StreamConfig;

describe('desiredFlowNats', () => {
  it('wants the ingest stream from the spec, a dead-letter stream kept on file, and the shared consumer', () => {
    const want = desiredFlowNats(flow, spec({ storage: 'memory', maxAge: '24h', replicas: 3 }));
    expect(want.stream).toMatchObject({
      name: names.stream,
      subjects: [names.ingestSubjects],
      storage: 'memory',
      num_replicas: 3,
      max_age: 24 * 3600 * NS_PER_S,
      discard: 'old',
    });
    expect(want.deadLetterStream).toMatchObject({
      name: names.deadLetterStream,
      subjects: [names.deadLetterSubject],
      storage: 'file',
      max_age: 0,
      discard: 'new',
    });
    expect(want.consumers.map((c) => [c.durable_name, c.filter_subject])).toEqual([
      ['worker', names.ingestSubjects],
    ]);
  });

  it('wants one consumer per partition for an ordered flow', () => {
    const want = desiredFlowNats(flow, spec({}, { partitionKey: 'customer.id', partitions: 3 }));
    expect(want.consumers.map((c) => [c.durable_name, c.max_ack_pending])).toEqual([
      ['worker-0', 1],
      ['worker-1', 1],
      ['worker-2', 1],
    ]);
  });
});

describe('immutableStreamChange', () => {
  it('reports a storage change, naming the stream, both storages and the fix', () => {
    const err = immutableStreamChange(
      { name: names.stream, storage: 'file' as never },
      { storage: 'memory' },
      'set it back',
    );
    expect(err).toBeInstanceOf(NatsImmutableSettingError);
    expect(err?.code).toBe('NATS_IMMUTABLE_SETTING');
    expect(err?.message).toBe(
      `stream ${names.stream} uses file storage and JetStream cannot change it to memory: set it back`,
    );
  });

  it('has nothing to report when the storage is unchanged', () => {
    expect(
      immutableStreamChange({ name: 's', storage: 'file' as never }, { storage: 'file' }),
    ).toBeUndefined();
  });
});

describe('streamDrifted', () => {
  const desired = desiredFlowNats(flow, spec()).stream;

  it('is false for the stream as the server reports it (its own settings and metadata keys)', () => {
    expect(streamDrifted(asServerHas(desired), desired)).toBe(false);
  });

  it('sees each setting the operator manages change', () => {
    for (const change of [
      { max_age: desired.max_age * 2 },
      { duplicate_window: 1 },
      { num_replicas: 3 },
      { discard: 'new' },
      { subjects: ['other.>'] },
      { metadata: { ...desired.metadata, 'tally.dev/partitions': '4' } },
    ]) {
      expect(streamDrifted(asServerHas({ ...desired, ...change }), desired), JSON.stringify(change)).toBe(
        true,
      );
    }
  });
});

describe('consumerDrifted and consumerUpdate', () => {
  const [desired] = desiredFlowNats(flow, spec()).consumers;
  const asServerHas = (c: object) =>
    ({ ...desired, deliver_policy: 'by_start_sequence', opt_start_seq: 42, ...c }) as ConsumerConfig;

  it('ignores where the consumer started: that is chosen once, at creation', () => {
    expect(consumerDrifted(asServerHas({}), desired!)).toBe(false);
  });

  it('sees a changed ackWait, maxAckPending, maxDeliver or filter', () => {
    for (const change of [
      { ack_wait: 1 },
      { max_ack_pending: 1 },
      { max_deliver: 5 },
      { filter_subject: 'x' },
    ]) {
      expect(consumerDrifted(asServerHas(change), desired!), JSON.stringify(change)).toBe(true);
    }
  });

  it('never sends the name or the start position in an update', () => {
    const update = consumerUpdate(desired!);
    expect(update).not.toHaveProperty('durable_name');
    expect(update).not.toHaveProperty('deliver_policy');
    expect(update).toMatchObject({ ack_wait: desired!.ack_wait, filter_subject: desired!.filter_subject });
  });
});

describe('ensureFlowNats', () => {
  it('creates the streams and the consumer of a new flow, the consumer from the first message', async () => {
    const jsm = new FakeJetStream();
    const state = await ensureFlowNats(jsm, flow, spec());
    expect(jsm.writes).toEqual([
      `streams.add ${names.stream}`,
      `streams.add ${names.deadLetterStream}`,
      `consumers.add ${names.stream}/worker`,
    ]);
    expect(jsm.consumer(names.stream, 'worker')?.config.deliver_policy).toBe('all');
    expect(state).toMatchObject({ stream: names.stream, consumers: ['worker'], retiredConsumers: [] });
  });

  it('writes nothing when everything matches (idempotent)', async () => {
    const jsm = new FakeJetStream();
    await ensureFlowNats(jsm, flow, spec());
    const before = jsm.writes.length;
    await ensureFlowNats(jsm, flow, spec());
    expect(jsm.writes.slice(before)).toEqual([]);
  });

  it('updates a changed stream and consumer in place', async () => {
    const jsm = new FakeJetStream();
    await ensureFlowNats(jsm, flow, spec());
    const before = jsm.writes.length;
    await ensureFlowNats(jsm, flow, spec({ maxAge: '24h' }, { ackWait: '45s' }));
    expect(jsm.writes.slice(before)).toEqual([
      `streams.update ${names.stream}`,
      `consumers.update ${names.stream}/worker`,
    ]);
    expect(jsm.consumer(names.stream, 'worker')?.config.ack_wait).toBe(45 * NS_PER_S);
  });

  it('refuses a storage change with NatsImmutableSettingError and changes nothing', async () => {
    const jsm = new FakeJetStream();
    await ensureFlowNats(jsm, flow, spec());
    const before = jsm.writes.length;
    const err = await ensureFlowNats(jsm, flow, spec({ storage: 'memory' })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NatsImmutableSettingError);
    expect((err as Error).message).toContain('set spec.stream.storage back');
    expect(jsm.writes.slice(before)).toEqual([]);
  });

  it('keeps a consumer of removed partitions that still holds messages, and deletes a drained one', async () => {
    const jsm = new FakeJetStream();
    await ensureFlowNats(jsm, flow, spec({}, { partitionKey: 'customer.id', partitions: 3 }));
    const s = jsm.streamsByName.get(names.stream)!;
    s.subjects = { [names.ingestSubject(2)]: 5 };
    s.consumers.get('worker-2')!.num_pending = 5;
    const state = await ensureFlowNats(jsm, flow, spec({}, { partitionKey: 'customer.id', partitions: 1 }));
    expect(state.consumers).toEqual(['worker-0']);
    expect(state.retiredConsumers).toEqual([{ name: 'worker-2', pending: 5, ackPending: 0 }]);
    expect(jsm.writes).toContain(`consumers.delete ${names.stream}/worker-1`);
    expect(jsm.writes).not.toContain(`consumers.delete ${names.stream}/worker-2`);
  });
});

describe('ensureNamespaceStreams', () => {
  it('creates the canonical and report streams once', async () => {
    const jsm = new FakeJetStream();
    await ensureNamespaceStreams(jsm, 'shop');
    await ensureNamespaceStreams(jsm, 'shop');
    expect(jsm.writes).toEqual([
      `streams.add ${canonicalStreamConfig('shop').name}`,
      'streams.add tally_recon_shop',
    ]);
  });
});
