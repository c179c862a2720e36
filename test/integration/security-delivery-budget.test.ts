// "Loses nothing": deliveries a sink refuses while it is down (circuit open) or throttling do not
// spend the delivery budget (delivery.maxDeliver). On a real nats-server and a real HTTP peer on
// loopback: the peer is down (503) long enough for every message to be delivered many more times
// than maxDeliver, then throttles once (429 + Retry-After), then is flaky — every order fails a few
// more requests, but fewer than maxDeliver in all — and nothing may be dead-lettered.
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FlowWorkerHandle, runFlowWorker } from '../../runtime/flow/worker.ts';
import { type NatsServerHandle, startNatsServer } from '../harness/nats.ts';
import {
  deliveryFlowConfig,
  OrderSink,
  orderVersion,
  provision,
  streamPublisher,
} from './support/flow-delivery.ts';
import { SECRET_ENV, sample, waitFor } from './support/flow-worker.ts';

let nats: NatsServerHandle;
let nc: NatsConnection;
let jsm: JetStreamManager;
let js: JetStreamClient;
let sink: OrderSink | undefined;
let worker: FlowWorkerHandle | undefined;

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  jsm = await jetstreamManager(nc);
  js = jetstream(nc);
});

afterAll(async () => {
  await worker?.stop();
  await sink?.stop();
  await nc?.close();
  await nats?.stop();
});

describe('delivery budget (maxDeliver) after an outage and a flaky recovery', () => {
  it('dead-letters nothing that failed fewer than maxDeliver real requests, however often it waited', async () => {
    const orders = 200;
    const maxDeliver = 5;
    sink = new OrderSink();
    await sink.start();
    const config = deliveryFlowConfig({
      namespace: 'budget',
      natsUrl: nats.url,
      sinkUrl: sink.url,
      delivery: { maxDeliver, initialBackoff: '20ms', maxBackoff: '400ms', ackWait: '10s' },
      http: { maxInFlight: 8, circuitBreaker: { failureThreshold: 5, coolDown: '250ms' } },
    });
    await provision(jsm, config);

    // The peer: down (503) until `upAt`; then one 429 asking for a second's pause; then flaky:
    // order n fails until it has seen 1 + n % 3 failed requests in all (outage included), capped
    // at maxDeliver - 1, so its last real attempt within the budget succeeds.
    const failures = new Map<string, number>();
    let upAt = Number.POSITIVE_INFINITY;
    let throttled = false;
    sink.script = (req) => {
      const failed = failures.get(req.orderId) ?? 0;
      const fail = () => {
        failures.set(req.orderId, failed + 1);
        return { status: 503 };
      };
      if (req.at < upAt) return fail();
      if (!throttled) {
        throttled = true;
        return { status: 429, headers: { 'retry-after': '1' } };
      }
      const n = Number(req.orderId.slice(-3));
      return failed < Math.min(1 + (n % 3), maxDeliver - 1) ? fail() : undefined;
    };

    const publish = streamPublisher(js, config);
    for (let i = 0; i < orders; i++) await publish(orderVersion(i, 1), `budget-${i}`);
    worker = await runFlowWorker(config, {
      env: { [SECRET_ENV]: 'secret', TALLY_HTTP_HOST: '127.0.0.1', TALLY_HTTP_PORT: '0' },
      logger: pino({ level: 'silent' }),
      graceMs: 5_000,
      processMetrics: false,
    });
    await waitFor('worker ready', () => worker!.ready(), { timeoutMs: 20_000 });
    // The outage lasts until JetStream has handed the messages out twice as often as maxDeliver
    // allows, on average (the circuit refusing nearly all of those deliveries).
    await waitFor(
      'deliveries beyond the budget',
      async () =>
        (await jsm.consumers.info(config.nats.stream, config.nats.consumer)).delivered.consumer_seq >
        2 * orders * maxDeliver,
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    upAt = Date.now();

    const deadLettered = async () => (await jsm.streams.info(config.nats.deadLetterStream)).state.messages;
    await waitFor(
      'every order applied or dead-lettered',
      async () => sink!.applied.size + (await deadLettered()) >= orders,
      { timeoutMs: 45_000, intervalMs: 100 },
    );
    await waitFor(
      'consumer settled',
      async () => {
        const info = await jsm.consumers.info(config.nats.stream, config.nats.consumer);
        return info.num_ack_pending === 0 && info.num_pending === 0;
      },
      { timeoutMs: 10_000 },
    );

    expect(await deadLettered()).toBe(0);
    expect(sink.applied.size).toBe(orders);
    expect([...sink.applied.values()].every((c) => c === 1)).toBe(true);
    // After the recovery each order took at most maxDeliver requests (its flaky failures, then
    // the one that was applied), the 429 aside; in all, every order failed at least once.
    const after = new Map<string, number>();
    for (const r of sink.requests) {
      if (r.at >= upAt && r.status !== 429) after.set(r.orderId, (after.get(r.orderId) ?? 0) + 1);
    }
    expect(after.size).toBe(orders);
    expect(Math.max(...after.values())).toBeLessThanOrEqual(maxDeliver);
    expect(failures.size).toBe(orders);
    const text = await (await fetch(`http://127.0.0.1:${worker.port}/metrics`)).text();
    expect(
      sample(text, 'tally_flow_messages_retried_total', { reason: 'sink_circuit_open' }),
    ).toBeGreaterThan(orders * maxDeliver);
    expect(sample(text, 'tally_flow_messages_retried_total', { reason: 'sink_throttled' })).toBeGreaterThan(
      0,
    );
    expect(sample(text, 'tally_flow_messages_dead_lettered_total')).toBe(0);
  }, 90_000);
});
