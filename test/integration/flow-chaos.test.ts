// Crashes during a run, on a real nats-server with a real idempotent HTTP sink: the worker (a real
// `tally runtime` process) SIGKILLed at random points while thousands of orders flow in through its
// webhook, and nats-server itself restarted mid-run. Nothing may be lost, nothing applied twice,
// and the versions of each order must still arrive in order.
//
// Replay: TALLY_CHAOS_SEED=<seed printed first> gives the same kill points (by progress at the sink)
// and the same down times; the interleaving of the processes is the machine's.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { CanonicalEvent } from '../../api/envelope.ts';
import { idempotencyKey } from '../../api/envelope.ts';
import type { IntegrationFlowSpec } from '../../api/integration-flow.ts';
import { type FlowWorkerHandle, runFlowWorker } from '../../runtime/flow/worker.ts';
import { CANONICAL_SINK_NAME, canonicalStreamName } from '../../runtime/nats/canonical.ts';
import { makeTempDir, removeTempDir } from '../harness/cleanup.ts';
import { type NatsServerHandle, startNatsServer } from '../harness/nats.ts';
import { freePort } from '../harness/ports.ts';
import { type ChildHandle, spawnChild } from '../harness/process.ts';
import { repoPath } from '../harness/tools.ts';
import {
  deliveryFlowConfig,
  OrderSink,
  orderIdOf,
  orderVersion,
  provision,
  streamMessages,
  streamPublisher,
} from './support/flow-delivery.ts';
import { SECRET_ENV, shopifySignature, waitFor } from './support/flow-worker.ts';
import { mulberry32, testSeed } from './support/seed.ts';

const SECRET = 'chaos-secret';
const SEED = testSeed();

let nats: NatsServerHandle;
let nc: NatsConnection;
let jsm: JetStreamManager;
let js: JetStreamClient;
let dir: string;
let sink: OrderSink;
const children: ChildHandle[] = [];
const workers: FlowWorkerHandle[] = [];

beforeAll(async () => {
  dir = makeTempDir('flow-chaos');
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  jsm = await jetstreamManager(nc);
  js = jetstream(nc);
});

afterAll(async () => {
  await nc?.close();
  await nats?.stop();
  if (dir) removeTempDir(dir);
});

afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => c.stop({ signal: 'SIGKILL' })));
  await Promise.all(workers.splice(0).map((w) => w.stop()));
  await sink?.stop();
});

/**
 * The rendered flow with its NATS sink (the canonical sink every flow has) on the namespace's
 * canonical stream, deduplicating over the whole run, so its deduplication can be counted.
 */
async function chaosFlow(namespace: string, delivery: Partial<IntegrationFlowSpec['delivery']>) {
  sink = new OrderSink();
  await sink.start();
  const config = deliveryFlowConfig({
    namespace,
    natsUrl: nats.url,
    sinkUrl: sink.url,
    delivery: { ackWait: '3s', ...delivery },
  });
  expect(config.sinks.map((s) => s.name)).toEqual(['erp-orders', CANONICAL_SINK_NAME]);
  await provision(jsm, config);
  // Redeliveries after a kill must be deduplicated however late in the run they come.
  const canonicalStream = canonicalStreamName(namespace);
  const { config: canonical } = await jsm.streams.info(canonicalStream);
  await jsm.streams.update(canonicalStream, { ...canonical, duplicate_window: 600e9 });
  return { config, canonicalStream };
}

/** Exactly the expected idempotency keys, each applied once, and no event twice on the NATS sink. */
async function expectExactlyOnce(expected: Set<string>, canonicalStream: string) {
  expect(sink.applied.size).toBe(expected.size);
  for (const key of expected) expect(sink.applied.get(key), key).toBe(1);
  const events = (await streamMessages(jsm, canonicalStream, expected.size + 100)).map((m) =>
    m.json<CanonicalEvent>(),
  );
  expect(events).toHaveLength(expected.size);
  expect(new Set(events.map((e) => e.id)).size).toBe(expected.size);
  expect(new Set(events.map((e) => idempotencyKey(e)))).toEqual(expected);
}

describe('flow worker under crashes', () => {
  it('loses nothing and applies nothing twice when the worker process is SIGKILLed at random points', async () => {
    console.log('seed', SEED);
    const rnd = mulberry32(SEED);
    const orders = 1_000;
    const versions = 3;
    const total = orders * versions;
    const { config, canonicalStream } = await chaosFlow('chaos1', {
      partitions: 8,
      partitionKey: '$string(id)',
    });
    const file = join(dir, 'worker.json');
    writeFileSync(file, JSON.stringify(config));
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const spawnWorker = async () => {
      const child = spawnChild({
        name: 'tally-runtime',
        command: process.execPath,
        args: [repoPath('bin/tally.mjs'), 'runtime', '--config', file],
        logFile: join(dir, 'worker.log'),
        env: {
          ...process.env,
          [SECRET_ENV]: SECRET,
          TALLY_HTTP_HOST: '127.0.0.1',
          TALLY_HTTP_PORT: String(port),
          TALLY_LOG_LEVEL: 'warn',
        },
      });
      children.push(child);
      await waitFor('worker ready', async () => (await fetch(`${base}/readyz`)).ok, {
        timeoutMs: 30_000,
        intervalMs: 100,
      });
      return child;
    };
    let child = await spawnWorker();

    // The channel: 16 lanes post the orders' versions in order, each retried until answered 202
    // (as Shopify retries a webhook it has no answer for), with the same delivery id.
    const deadline = Date.now() + 150_000;
    const post = async (n: number, v: number) => {
      const body = JSON.stringify(orderVersion(n, v));
      for (let attempt = 1; Date.now() < deadline; attempt++) {
        try {
          const res = await fetch(`${base}/webhooks/shopify/orders`, {
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              'x-shopify-hmac-sha256': shopifySignature(body, SECRET),
              'x-shopify-webhook-id': `chaos-${n}-v${v}`,
            },
            body,
            signal: AbortSignal.timeout(10_000),
          });
          await res.arrayBuffer();
          if (res.status === 202) return;
        } catch {
          // killed mid-request, or not listening yet
        }
        await sleep(Math.min(20 * attempt, 250));
      }
      throw new Error(`order ${n} v${v} never accepted`);
    };
    const lanes = 16;
    const channel = Promise.all(
      Array.from({ length: lanes }, async (_, lane) => {
        for (let n = lane; n < orders; n += lanes) for (let v = 1; v <= versions; v++) await post(n, v);
      }),
    );

    // The chaos: SIGKILL at seeded random points of the run (by progress at the sink), down for a
    // seeded random time, then restart.
    const kills = 4;
    const points = Array.from({ length: kills }, () => Math.floor(total * (0.1 + 0.75 * rnd()))).sort(
      (a, b) => a - b,
    );
    const downMs = points.map(() => Math.floor(rnd() * 300));
    console.log(
      `chaos seed ${SEED}: SIGKILLs at ${points.map((p, i) => `${p}/down ${downMs[i]}ms`).join(', ')}`,
    );
    for (const [i, point] of points.entries()) {
      await waitFor(`progress ${point}`, () => sink.applied.size >= point, {
        timeoutMs: 120_000,
        intervalMs: 10,
      });
      const exit = await child.stop({ signal: 'SIGKILL' });
      expect(exit.signal).toBe('SIGKILL');
      await sleep(downMs[i]!); // the worker stays down a while (chaos, not evidence of anything)
      child = await spawnWorker();
    }
    await channel;
    await waitFor('every version of every order applied', () => sink.applied.size >= total, {
      timeoutMs: 120_000,
      intervalMs: 100,
    });
    await waitFor('consumers settled', async () => {
      const infos = await Promise.all(
        Array.from({ length: 8 }, (_, p) => jsm.consumers.info(config.nats.stream, `worker-${p}`)),
      );
      return infos.every((i) => i.num_ack_pending === 0 && i.num_pending === 0);
    });

    const expected = new Set<string>();
    for (let n = 0; n < orders; n++) {
      for (let v = 1; v <= versions; v++) {
        expected.add(`Order:${orderIdOf(n)}:${Date.parse(orderVersion(n, v).updated_at as string)}`);
      }
    }
    await expectExactlyOnce(expected, canonicalStream);
    for (let n = 0; n < orders; n++) {
      const applied = sink.appliedVersions.get(orderIdOf(n))!;
      expect([...applied].sort(), orderIdOf(n)).toEqual(applied);
    }
    expect((await jsm.streams.info(config.nats.stream)).state.messages).toBe(total); // webhook retries deduped
    expect((await jsm.streams.info(config.nats.deadLetterStream)).state.messages).toBe(0);
    console.log(
      `chaos seed ${SEED}: ${kills} SIGKILLs at ${points.join(', ')} of ${total}; ${sink.requests.length} sink requests, ${sink.applied.size} applied once each`,
    );
  });

  it('loses nothing when nats-server restarts in the middle of a run', async () => {
    const { config, canonicalStream } = await chaosFlow('chaos2', {
      partitions: 4,
      partitionKey: '$string(id)',
    });
    const publish = streamPublisher(js, config);
    const first = 1_000;
    const second = 500;
    for (let n = 0; n < first; n++) await publish(orderVersion(10_000 + n, 1), `nr-${n}`);
    const worker = await runFlowWorker(config, {
      env: { [SECRET_ENV]: SECRET, TALLY_HTTP_HOST: '127.0.0.1', TALLY_HTTP_PORT: '0' },
      logger: pino({ level: 'silent' }),
      graceMs: 5_000,
      processMetrics: false,
    });
    workers.push(worker);
    await waitFor('a third delivered', () => sink.applied.size >= first / 3, {
      timeoutMs: 60_000,
      intervalMs: 10,
    });
    await nats.halt();
    await sleep(1_000);
    await nats.start();
    // More orders once it is back (publishes retry while the clients reconnect).
    for (let n = first; n < first + second; n++) await publish(orderVersion(10_000 + n, 1), `nr-${n}`);
    await waitFor('all delivered', () => sink.applied.size >= first + second, {
      timeoutMs: 120_000,
      intervalMs: 100,
    });
    await waitFor('worker ready again', () => worker.ready(), { timeoutMs: 30_000 });
    const expected = new Set<string>();
    for (let n = 0; n < first + second; n++) {
      expected.add(`Order:${orderIdOf(10_000 + n)}:${Date.parse(orderVersion(0, 1).updated_at as string)}`);
    }
    await waitFor('NATS sink caught up', async () =>
      (await jsm.streams.info(canonicalStream)).state.messages >= expected.size ? true : undefined,
    );
    await expectExactlyOnce(expected, canonicalStream);
    expect((await jsm.streams.info(config.nats.deadLetterStream)).state.messages).toBe(0);
  });
});
