// Delivery guarantees of the flow worker on a real nats-server and a real HTTP sink on loopback:
// per-key ordering across replicas, a failing sink behind a circuit breaker, a 429 storm with
// Retry-After, backpressure with flat memory, and every kind of bad payload dead-lettered.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { WorkerConfig } from '../../api/worker-config.ts';
import { type FlowWorkerHandle, type FlowWorkerOptions, runFlowWorker } from '../../runtime/flow/worker.ts';
import { type NatsServerHandle, startNatsServer } from '../harness/nats.ts';
import {
  type DeliveryFlowOptions,
  deliveryFlowConfig,
  OrderSink,
  orderIdOf,
  orderVersion,
  provision,
  streamMessages,
  streamPublisher,
} from './support/flow-delivery.ts';
import { SECRET_ENV, sample, waitFor } from './support/flow-worker.ts';

let nats: NatsServerHandle;
let nc: NatsConnection;
let jsm: JetStreamManager;
let js: JetStreamClient;
let sink: OrderSink;
const workers: FlowWorkerHandle[] = [];
let seq = 0;

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  jsm = await jetstreamManager(nc);
  js = jetstream(nc);
});

afterAll(async () => {
  await nc?.close();
  await nats?.stop();
});

afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop()));
  await sink?.stop();
});

async function newFlow(o: Omit<DeliveryFlowOptions, 'namespace' | 'natsUrl' | 'sinkUrl'> = {}) {
  sink = new OrderSink();
  await sink.start();
  const config = deliveryFlowConfig({ namespace: `dl${++seq}`, natsUrl: nats.url, sinkUrl: sink.url, ...o });
  await provision(jsm, config);
  return config;
}

async function startWorker(config: WorkerConfig, options: FlowWorkerOptions = {}) {
  const worker = await runFlowWorker(config, {
    env: { [SECRET_ENV]: 'secret', TALLY_HTTP_HOST: '127.0.0.1', TALLY_HTTP_PORT: '0' },
    logger: pino({ level: 'silent' }),
    graceMs: 5_000,
    processMetrics: false,
    lagPollMs: 200,
    ...options,
  });
  workers.push(worker);
  await waitFor('worker ready', () => worker.ready(), { timeoutMs: 20_000 });
  return worker;
}

const metricsOf = async (w: FlowWorkerHandle) => (await fetch(`http://127.0.0.1:${w.port}/metrics`)).text();
const count = async (stream: string) => (await jsm.streams.info(stream)).state.messages;
const allApplied = (keys: number) => () => sink.applied.size >= keys;

describe('flow delivery', () => {
  it('keeps the events of one key in order while two replicas share the partitions', async () => {
    const source = `itest.ordered.${seq + 1}`;
    const config = await newFlow({
      natsSource: source,
      delivery: { partitions: 4, partitionKey: '$string(id)' },
      http: { maxInFlight: 8, circuitBreaker: { failureThreshold: 1000, coolDown: '100ms' } },
    });
    const [a, b] = [await startWorker(config), await startWorker(config)];
    // A sink with jitter that fails now and then: retries (nak with delay) must not let a later
    // version of the key overtake an earlier one.
    let calls = 0;
    sink.delayMs = () => (calls * 7919) % 17;
    sink.script = () => (++calls % 7 === 0 ? { status: 503 } : undefined);
    const orders = 30;
    const versions = 5;
    // Through the NATS source (either replica takes each one); each version is stored before the
    // next is sent, so the versions of a key sit next to each other in the stream, where a worker
    // taking messages in parallel would have several of them in flight at once.
    const started = performance.now();
    for (let n = 0; n < orders; n++) {
      for (let v = 1; v <= versions; v++) {
        const h = headers();
        h.set('Nats-Msg-Id', `ord-${n}-v${v}`);
        const reply = await nc.request(source, JSON.stringify(orderVersion(n, v)), {
          headers: h,
          timeout: 10_000,
        });
        expect(reply.json()).toMatchObject({ duplicate: false });
      }
    }
    const sent = performance.now();
    // Within the test's own timeout, so a stall reports where the messages are.
    await waitFor('every version applied', allApplied(orders * versions), {
      timeoutMs: 40_000,
      intervalMs: 100,
    }).catch(async (err: Error) => {
      const consumers = await Promise.all(
        (await jsm.consumers.list(config.nats.stream).next()).map(
          (c) =>
            `${c.name}: pending ${c.num_pending}, ack pending ${c.num_ack_pending}, redelivered ${c.num_redelivered}, waiting ${c.num_waiting}`,
        ),
      );
      throw new Error(
        `${err.message}; applied ${sink.applied.size} of ${orders * versions} ${Math.round((performance.now() - sent) / 1000)} s after sending (which took ${Math.round((sent - started) / 1000)} s); ${consumers.join('; ')}`,
      );
    });

    for (let n = 0; n < orders; n++) {
      const applied = sink.appliedVersions.get(orderIdOf(n))!;
      expect(applied).toHaveLength(versions);
      expect([...applied].sort()).toEqual(applied); // tallyversion is epoch millis: text order is time order
    }
    expect([...sink.applied.values()].every((c) => c === 1)).toBe(true);
    expect(sink.count(503)).toBeGreaterThan(0);
    // Both replicas took part, each pulling from every partition.
    const [ma, mb] = [await metricsOf(a), await metricsOf(b)];
    const delivered = (t: string) => sample(t, 'tally_flow_messages_delivered_total', { sink: 'erp-orders' });
    expect(delivered(ma)).toBeGreaterThan(0);
    expect(delivered(mb)).toBeGreaterThan(0);
    expect(delivered(ma) + delivered(mb)).toBe(orders * versions);
    const stored = await streamMessages(jsm, config.nats.stream);
    expect(new Set(stored.map((m) => m.subject)).size).toBe(4); // the keys spread over all 4 partitions
    expect(await count(config.nats.deadLetterStream)).toBe(0);
  });

  it('opens the circuit on a sink answering 500, probes it, and delivers everything once when it recovers', async () => {
    const threshold = 5;
    const maxInFlight = 4;
    const config = await newFlow({
      http: { maxInFlight, circuitBreaker: { failureThreshold: threshold, coolDown: '300ms' } },
    });
    let failing = true;
    sink.script = () => (failing ? { status: 500 } : undefined);
    const publish = streamPublisher(js, config);
    const n = 200;
    for (let i = 0; i < n; i++) await publish(orderVersion(1000 + i, 1), `cb-${i}`);
    const worker = await startWorker(config);
    const transitions = async (state: string) =>
      sample(await metricsOf(worker), 'tally_flow_sink_circuit_transitions_total', {
        sink: 'erp-orders',
        state,
      });
    // Open, then at least one failed probe (open again) before the sink comes back.
    await waitFor('circuit opened twice', async () => (await transitions('open')) >= 2, {
      timeoutMs: 30_000,
    });
    failing = false;
    await waitFor('all delivered after recovery', allApplied(n), { timeoutMs: 60_000 });
    await waitFor('consumer settled', async () => {
      const info = await jsm.consumers.info(config.nats.stream, config.nats.consumer);
      return info.num_ack_pending === 0 && info.num_pending === 0;
    });

    const text = await metricsOf(worker);
    const opens = sample(text, 'tally_flow_sink_circuit_transitions_total', {
      sink: 'erp-orders',
      state: 'open',
    });
    // While open the sink was left alone: 500s only until it opened (the threshold plus requests
    // already in flight) and one per failed probe (each of which opened it again).
    expect(sink.count(500)).toBeLessThanOrEqual(threshold + maxInFlight - 1 + (opens - 1));
    expect(
      sample(text, 'tally_flow_messages_retried_total', { reason: 'sink_circuit_open' }),
    ).toBeGreaterThan(0);
    expect(
      sample(text, 'tally_flow_sink_circuit_transitions_total', { state: 'half_open' }),
    ).toBeGreaterThanOrEqual(2);
    expect(sample(text, 'tally_flow_sink_circuit_state', { sink: 'erp-orders', state: 'closed' })).toBe(1);
    // Every event applied once; every retry carried the same event id and idempotency key.
    expect(sink.applied.size).toBe(n);
    expect([...sink.applied.values()].every((c) => c === 1)).toBe(true);
    const keysByEvent = new Map<string, Set<string>>();
    for (const r of sink.requests)
      keysByEvent.set(r.eventId, (keysByEvent.get(r.eventId) ?? new Set()).add(r.key));
    expect(keysByEvent.size).toBe(n);
    expect([...keysByEvent.values()].every((keys) => keys.size === 1)).toBe(true);
    expect(await count(config.nats.deadLetterStream)).toBe(0); // a sink that is down dead-letters nothing
  });

  it('honours Retry-After in a 429 storm: the whole sink waits, nothing is lost or dead-lettered', async () => {
    const config = await newFlow({ http: { maxInFlight: 1 }, delivery: { maxDeliver: 2 } });
    const storm = 4;
    sink.script = (_req, i) => (i <= storm ? { status: 429, headers: { 'retry-after': '1' } } : undefined);
    const publish = streamPublisher(js, config);
    const n = 20;
    for (let i = 0; i < n; i++) await publish(orderVersion(2000 + i, 1), `rl-${i}`);
    const worker = await startWorker(config);
    await waitFor('all delivered', allApplied(n), { timeoutMs: 60_000 });

    expect(sink.count(429)).toBe(storm);
    // After each 429 the sink heard nothing until the second it asked for had passed (one request
    // at a time; clocks of one process; Date.now() may round down by a millisecond).
    for (const [i, r] of sink.requests.entries()) {
      if (r.status !== 429) continue;
      const next = sink.requests[i + 1]!;
      expect(next.at - r.at).toBeGreaterThanOrEqual(999);
    }
    const text = await metricsOf(worker);
    // Held back without a request while the sink waited; not counted as failed attempts.
    expect(sample(text, 'tally_flow_messages_retried_total', { reason: 'sink_throttled' })).toBeGreaterThan(
      storm,
    );
    expect(sample(text, 'tally_flow_sink_request_seconds_count', { code: '429' })).toBe(storm);
    expect(sample(text, 'tally_flow_sink_circuit_state', { state: 'closed' })).toBe(1); // 429 is an answer
    expect(await count(config.nats.deadLetterStream)).toBe(0); // maxDeliver 2 did not cut them off
    expect([...sink.applied.values()].every((c) => c === 1)).toBe(true);
  });

  it('stops pulling while the sink is stuck: bounded in flight, flat memory, then drains everything', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const memory = () => {
      gc();
      gc(); // a second pass collects what finalizers of the first released
      const m = process.memoryUsage();
      return m.heapUsed + m.external;
    };
    const config = await newFlow({ http: { maxInFlight: 4, timeout: '120s' } });
    const slots = 8;
    const publish = streamPublisher(js, config);
    const n = 2_000;
    const padding = 'x'.repeat(48 * 1024); // 2000 x 48 KiB = 94 MiB waiting in the stream
    for (let i = 0; i < n; i++) await publish(orderVersion(3000 + i, 1, { note: padding }), `bp-${i}`);
    const before = memory();
    sink.hold();
    const worker = await startWorker(config, { maxInFlight: slots });
    const info = () => jsm.consumers.info(config.nats.stream, config.nats.consumer);
    // Holding all it may and asking for nothing more: no pull request of the worker is waiting at
    // the server (JetStream's own count), so no further message can be delivered to it.
    await waitFor(
      'worker holding all it may, with no pull request open',
      async () => {
        const i = await info();
        return i.num_ack_pending === slots && i.num_waiting === 0 && sink.holding >= 4;
      },
      { timeoutMs: 20_000 },
    );
    const stuck = await info();
    expect(stuck.num_ack_pending).toBe(slots);
    expect(stuck.num_waiting).toBe(0);
    expect(stuck.num_pending).toBe(n - slots);
    expect(stuck.delivered.consumer_seq).toBe(slots); // deliveries so far: the slots, nothing beyond
    expect(sink.holding).toBe(4); // the sink's own bound on requests
    expect(sample(await metricsOf(worker), 'tally_flow_in_flight')).toBe(slots);
    const whileStuck = memory() - before;
    expect(whileStuck).toBeLessThan(24 * 1024 * 1024);

    sink.release();
    let maxHeld = 0;
    let maxAckPending = 0;
    await waitFor(
      'all delivered',
      async () => {
        maxHeld = Math.max(maxHeld, sample(await metricsOf(worker), 'tally_flow_in_flight'));
        maxAckPending = Math.max(maxAckPending, (await info()).num_ack_pending);
        return sink.applied.size >= n;
      },
      { timeoutMs: 120_000, intervalMs: 20 },
    );
    // The worker never holds more than its slots. The server's count may briefly include acks
    // still on the wire (acks are not awaited), so it gets one more round of slots.
    expect(maxHeld).toBeLessThanOrEqual(slots);
    expect(maxAckPending).toBeLessThanOrEqual(2 * slots);
    await waitFor('lag gauge at zero', async () =>
      sample(await metricsOf(worker), 'tally_flow_consumer_pending_messages') === 0 ? true : undefined,
    );
    // Nothing kept from the messages that went through either.
    await worker.stop();
    const after = memory() - before;
    expect(after).toBeLessThan(32 * 1024 * 1024);
    console.log(
      `backpressure: ${n} x 48 KiB queued; memory growth while stuck ${(whileStuck / 2 ** 20).toFixed(1)} MiB, after draining ${(after / 2 ** 20).toFixed(1)} MiB`,
    );
  });

  it('changes the layout (partition key on and off, partitions down and up) without losing a message', async () => {
    const unordered = await newFlow();
    const ordered = (partitions: number) =>
      deliveryFlowConfig({
        namespace: unordered.flow.namespace,
        natsUrl: nats.url,
        sinkUrl: sink.url,
        delivery: { partitions, partitionKey: '$string(id)' },
      });
    const consumers = async () => {
      const names: string[] = [];
      for await (const c of jsm.consumers.list(unordered.nats.stream)) names.push(c.name);
      return names.sort();
    };
    const drain = async (config: WorkerConfig, keys: number) => {
      const w = await startWorker(config);
      await waitFor(`${keys} applied`, allApplied(keys), { timeoutMs: 30_000 });
      await w.stop();
    };
    let n = 0;
    const publishSome = async (config: WorkerConfig, count: number) => {
      const publish = streamPublisher(js, config);
      for (let i = 0; i < count; i++, n++) await publish(orderVersion(5000 + n, 1), `lay-${n}`);
    };

    // Unordered, 30 waiting; then ordered: the partition consumers take over what `worker` held.
    await publishSome(unordered, 30);
    let state = await provision(jsm, ordered(3));
    expect(state.retiredConsumers).toEqual([]);
    expect(await consumers()).toEqual(['worker-0', 'worker-1', 'worker-2']);
    await drain(ordered(3), 30);

    // Ordered with 30 waiting on the partitions; then unordered again: `worker` starts at their floor.
    await publishSome(ordered(3), 30);
    state = await provision(jsm, unordered);
    expect(state.retiredConsumers).toEqual([]);
    expect(await consumers()).toEqual(['worker']);
    await drain(unordered, 60);

    // Fewer partitions with messages waiting on a partition that goes away: that consumer is kept
    // and reported, never deleted with messages in it; going back to 3 partitions delivers them.
    await provision(jsm, ordered(3));
    await publishSome(ordered(3), 30);
    const stranded = (await jsm.consumers.info(unordered.nats.stream, 'worker-2')).num_pending;
    expect(stranded).toBeGreaterThan(0);
    state = await provision(jsm, ordered(2));
    expect(state.retiredConsumers).toEqual([{ name: 'worker-2', pending: stranded, ackPending: 0 }]);
    expect(await consumers()).toEqual(['worker-0', 'worker-1', 'worker-2']);
    state = await provision(jsm, ordered(3));
    expect(state.retiredConsumers).toEqual([]);
    await drain(ordered(3), 90);
    expect([...sink.applied.values()].every((c) => c === 1)).toBe(true);
    expect(await count(unordered.nats.deadLetterStream)).toBe(0);
  });

  it('dead-letters every kind of bad payload with a clear reason, without blocking its partition', async () => {
    const source = `itest.bad.${seq + 1}`;
    const config = await newFlow({
      natsSource: source,
      delivery: { partitions: 2, partitionKey: '$string(id)', maxDeliver: 3 },
    });
    sink.script = (req) => (req.orderId === orderIdOf(4004) ? { status: 422 } : undefined);
    const worker = await startWorker(config);
    const send = async (id: string, body: string) => {
      const h = headers();
      h.set('Nats-Msg-Id', id);
      return (await nc.request(source, body, { headers: h, timeout: 10_000 })).json();
    };
    const cases = [
      { id: 'bad-json', body: '{"id": 4001, "total_price": ', reason: 'invalid_json', cls: 'PayloadError' },
      {
        id: 'bad-eval',
        body: JSON.stringify(orderVersion(4002, 1, { total_price: 'forty-three' })),
        reason: 'mapping_evaluation',
        cls: 'MappingEvaluationError',
      },
      {
        id: 'bad-schema',
        body: JSON.stringify(orderVersion(4003, 1, { created_at: 'yesterday' })),
        reason: 'mapping_validation',
        cls: 'CanonicalValidationError',
      },
      {
        id: 'bad-sink',
        body: JSON.stringify(orderVersion(4004, 1)),
        reason: 'sink_rejected',
        cls: 'SinkError',
      },
    ];
    for (const c of cases) expect(await send(c.id, c.body)).toMatchObject({ duplicate: false });
    // Good orders after the bad ones on the same partitions still go through.
    for (let i = 0; i < 10; i++) await send(`good-${i}`, JSON.stringify(orderVersion(4100 + i, 1)));
    await waitFor('good ones delivered', allApplied(10), { timeoutMs: 30_000 });
    const dlq = config.nats.deadLetterStream;
    await waitFor('all dead-lettered', async () => (await count(dlq)) === cases.length, {
      timeoutMs: 30_000,
    });

    const dead = await streamMessages(jsm, dlq);
    for (const c of cases) {
      const m = dead.find((d) => d.header.get('Tally-Source-Msg-Id') === c.id);
      expect(m, c.id).toBeDefined();
      expect(m!.string()).toBe(c.body); // the original payload, byte for byte
      expect(m!.header.get('Tally-Error-Reason')).toBe(c.reason);
      expect(m!.header.get('Tally-Error-Class')).toBe(c.cls);
      expect(m!.header.get('Tally-Error-Message').length).toBeGreaterThan(10);
      expect(m!.header.get('Tally-Attempts')).toBe('1'); // permanent: not retried
      expect(m!.header.get('Tally-Received-At')).not.toBe('');
    }
    expect(
      dead.find((d) => d.header.get('Tally-Source-Msg-Id') === 'bad-sink')!.header.get('Tally-Error-Message'),
    ).toMatch(/answered 422/);
    const text = await metricsOf(worker);
    for (const c of cases) {
      expect(sample(text, 'tally_flow_messages_dead_lettered_total', { reason: c.reason })).toBe(1);
    }
    await waitFor('partitions settled', async () => {
      const infos = await Promise.all(
        [0, 1].map((p) => jsm.consumers.info(config.nats.stream, `worker-${p}`)),
      );
      return infos.every((i) => i.num_ack_pending === 0 && i.num_pending === 0);
    });
  });
});
