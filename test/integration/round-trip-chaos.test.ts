// The target failing between the create and the capture, and the worker dying there: the example
// flow examples/netsuite-round-trip/orders-to-netsuite.yaml (Shopify order webhook -> outbound mapping
// -> NetSuite-style ERP, upsert by PUT .../salesOrder/eid:{orderId}, OAuth 2.0, the ERP's id captured
// from the Location header into the cross-reference store) runs as a real `tally runtime --config FILE`
// process, rendered as the operator renders it. Thousands of orders come in through its webhook while
// it is SIGKILLed at seeded random points (some exactly while a create is committed and unanswered)
// and the ERP itself commits some creates and then drops the connection. However often an order is
// redelivered, the ERP must see exactly one create per order, and the store must hold the ERP's id.
//
// Replay: TALLY_CHAOS_SEED=<seed printed first> gives the same kill schedule, the same creates
// crashing (by their index among all creates) and the same orders per webhook lane; the interleaving of the
// processes is the machine's. TALLY_CHAOS_ORDERS=<n> changes the number of orders (default 2000).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type JetStreamManager, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { shopifyHeaders, shopifyOrder } from '../../cli/demo/shopify-traffic.ts';
import { retargetSinks } from '../../cli/standalone.ts';
import { ensureFlowNats, ensureNamespaceStreams } from '../../operator/nats/provisioner.ts';
import { openKvState } from '../../runtime/flow/state/kv-store.ts';
import { xrefBucketName } from '../../runtime/xref/keys.ts';
import type { XrefRecord } from '../../runtime/xref/record.ts';
import { xrefStore } from '../../runtime/xref/store.ts';
import { type NetSuiteSimulator, startNetSuiteSimulator } from '../../simulators/netsuite.ts';
import { makeTempDir, removeTempDir } from '../harness/cleanup.ts';
import { type NatsServerHandle, startNatsServer } from '../harness/nats.ts';
import { freePort } from '../harness/ports.ts';
import { type ChildHandle, spawnChild, waitUntil } from '../harness/process.ts';
import { repoPath } from '../harness/tools.ts';
import { renderFlowFromFiles } from './support/rendered-flow.ts';
import { mulberry32, testSeed } from './support/seed.ts';

const SHOPIFY_SECRET = 'demo-shopify-signing-secret'; // examples/shopify-orders/secret.yaml
const FLOW = 'shopify-orders-to-netsuite';
const NAMESPACE = 'rtchaos';
const PATHS = [
  repoPath('examples/netsuite-round-trip'),
  repoPath('examples/shopify-orders/mapping.yaml'),
  repoPath('examples/shopify-orders/secret.yaml'),
];

const envInt = (name: string, fallback: number) => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name}=${raw} is not a non-negative integer`);
  return n;
};

const SEED = testSeed();
const ORDERS = envInt('TALLY_CHAOS_ORDERS', 2_000);
/** Share of creates the ERP commits and then answers by dropping the connection. */
const CRASH_RATE = 0.05;
/** Webhook senders at once (Shopify delivers in parallel too). */
const LANES = 8;
/** Orders acknowledged by the webhook but not yet created at the ERP, at most. */
const AHEAD = 100;
const TEST_TIMEOUT_MS = 240_000;

interface Kill {
  /** Fires once the ERP has committed this many creates (of all orders). */
  atCreate: number;
  /** in-create: SIGKILL from inside that create, before the ERP answers it (create done, capture not). */
  mode: 'in-create' | 'delayed';
  /** delayed: SIGKILL this long after the create. */
  delayMs: number;
  /** Time the worker stays down before the restart. */
  downMs: number;
}

/** 6–10 kills spread over 5–90 % of the creates, from the seed alone. */
function killSchedule(seed: number, orders: number): Kill[] {
  const rnd = mulberry32(seed);
  const count = 6 + Math.floor(rnd() * 5);
  const points = new Set<number>();
  while (points.size < Math.min(count, Math.max(1, Math.floor(orders * 0.85)))) {
    points.add(Math.max(1, Math.floor(orders * (0.05 + 0.85 * rnd()))));
  }
  return [...points]
    .sort((a, b) => a - b)
    .map((atCreate) => ({
      atCreate,
      mode: rnd() < 0.5 ? ('in-create' as const) : ('delayed' as const),
      delayMs: Math.floor(rnd() * 250),
      downMs: Math.floor(rnd() * 600),
    }));
}

let nats: NatsServerHandle;
let nc: NatsConnection;
let jsm: JetStreamManager;
let dir: string;
let netsuite: NetSuiteSimulator | undefined;
const children: ChildHandle[] = [];

beforeAll(async () => {
  dir = makeTempDir('round-trip-chaos');
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  jsm = await jetstreamManager(nc);
});

afterAll(async () => {
  await nc?.close();
  await nats?.stop();
  if (dir) removeTempDir(dir);
});

afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => c.stop({ signal: 'SIGKILL' })));
  await netsuite?.close();
  netsuite = undefined;
});

describe('round trip under crashes: Shopify orders -> NetSuite sales orders', () => {
  it(
    'creates each sales order exactly once and captures its id, with the worker SIGKILLed and the ERP dropping answers after creates',
    async () => {
      console.log('seed', SEED);
      const schedule = killSchedule(SEED, ORDERS);
      console.log(
        `round-trip chaos: ${ORDERS} orders, ${schedule.length} kills at creates ${schedule
          .map((k) => `${k.atCreate}${k.mode === 'in-create' ? '!' : `+${k.delayMs}ms`}/down ${k.downMs}ms`)
          .join(', ')} (! = inside the create, before its answer)`,
      );
      const started = Date.now();

      // The ERP: every create counted; a seeded 5 % of them (by index among all creates) committed
      // and then answered by destroying the socket. A kill scheduled "in-create" fires from here.
      const crashRnd = mulberry32(SEED ^ 0x9e3779b9);
      let createCalls = 0;
      let trigger: { at: number; fire: (key: string) => void } | undefined;
      /** The orders whose create was committed and then left unanswered (dropped, or worker killed). */
      const crashedKeys = new Set<string>();
      const killedInCreateKeys = new Set<string>();
      // The simulator records a request right before it handles it, synchronously: the last one
      // recorded is the PUT .../salesOrder/eid:<key> being committed.
      const creating = () => {
        const path = ns.requests.at(-1)?.path ?? '';
        return decodeURIComponent(path.slice(path.lastIndexOf('/') + 1)).replace(/^eid:/, '');
      };
      netsuite = await startNetSuiteSimulator({
        crashAfterCreate: () => {
          createCalls += 1;
          if (trigger && createCalls >= trigger.at) {
            const t = trigger;
            trigger = undefined;
            t.fire(creating());
          }
          const crash = crashRnd() < CRASH_RATE;
          if (crash) crashedKeys.add(creating());
          return crash;
        },
      });
      const ns = netsuite;

      // The flow's WorkerConfig as the operator renders it, pointed at the simulator; its JetStream
      // resources and the namespace's streams and cross-reference bucket as the operator makes them.
      const rendered = await renderFlowFromFiles({
        paths: PATHS,
        flow: FLOW,
        namespace: NAMESPACE,
        natsServers: [nats.url],
        override: (spec) => {
          retargetSinks(spec, { 'https://erp.example.com': ns.url });
          spec.replicas = 1;
          spec.delivery.initialBackoff = '200ms';
          spec.delivery.maxBackoff = '1s';
          // What a dead worker held comes back after this (the default 30 s would dominate the run).
          spec.delivery.ackWait = '10s';
        },
      });
      const { config } = rendered;
      await ensureNamespaceStreams(jsm, NAMESPACE);
      const store = xrefStore(await openKvState(nc, xrefBucketName(NAMESPACE), { history: 5 }));
      const flowNats = await ensureFlowNats(jsm, { namespace: NAMESPACE, name: FLOW }, rendered.spec);
      expect(flowNats.consumers).toEqual([config.nats.consumer]);
      const file = join(dir, 'worker.json');
      writeFileSync(file, JSON.stringify(config));

      const port = await freePort();
      const base = `http://127.0.0.1:${port}`;
      const logFile = join(dir, 'worker.log');
      const spawnWorker = async () => {
        const child = spawnChild({
          name: 'tally-runtime',
          command: process.execPath,
          args: [repoPath('bin/tally.mjs'), 'runtime', '--config', file],
          logFile,
          env: {
            ...process.env,
            ...rendered.env,
            TALLY_HTTP_HOST: '127.0.0.1',
            TALLY_HTTP_PORT: String(port),
            TALLY_LOG_LEVEL: 'warn',
          },
        });
        children.push(child);
        await waitUntil(
          'worker ready',
          async () => (await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(2_000) })).ok,
          { timeoutMs: 30_000, intervalMs: 50, children: [child] },
        );
        return child;
      };
      let worker = await spawnWorker();

      // The channel: LANES senders, each order signed with the example secret and re-sent with the
      // same webhook id until a 2xx answers it (the only acknowledgement, as for Shopify).
      const deadline = started + 150_000;
      const orderKey = (n: number) => `shopify-${shopifyOrder({ n }).id}`;
      let posts = 0;
      let resends = 0;
      const send = async (n: number) => {
        const body = JSON.stringify(shopifyOrder({ n }));
        const headers = shopifyHeaders(body, SHOPIFY_SECRET, `rt-chaos-${n}`);
        for (let attempt = 1; Date.now() < deadline; attempt++) {
          posts += 1;
          if (attempt > 1) resends += 1;
          try {
            const res = await fetch(`${base}/webhooks/shopify/orders`, {
              method: 'POST',
              headers,
              body,
              signal: AbortSignal.timeout(10_000),
            });
            await res.arrayBuffer();
            if (res.status >= 200 && res.status < 300) return;
          } catch {
            // killed mid-request, or not listening yet
          }
          await sleep(Math.min(20 * attempt, 250));
        }
        throw new Error(`order ${n} never acknowledged by the webhook`);
      };
      // Paced to stay at most AHEAD orders ahead of the ERP, so the kills land while orders are
      // still coming in (unpaced, the webhook takes all of them before the first kill).
      let acknowledged = 0;
      let acknowledgedAt = 0;
      const channel = Promise.all(
        Array.from({ length: LANES }, async (_, lane) => {
          for (let n = lane; n < ORDERS; n += LANES) {
            while (acknowledged - createCalls >= AHEAD && Date.now() < deadline) await sleep(5);
            await send(n);
            acknowledged += 1;
          }
        }),
      ).then(() => {
        acknowledgedAt = Date.now();
      });
      channel.catch(() => {}); // awaited below; a failure must not go unhandled meanwhile

      // The chaos: each kill once the ERP has committed its create count, then a restart.
      for (const kill of schedule) {
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(
            () => reject(new Error(`kill at create ${kill.atCreate}: only ${createCalls} creates in time`)),
            Math.max(1, deadline - Date.now()),
          );
          const fire = (key?: string) => {
            clearTimeout(timer);
            if (kill.mode === 'in-create' && key !== undefined) {
              // The signal goes out synchronously, before the simulator writes this create's answer.
              void worker.stop({ signal: 'SIGKILL' });
              killedInCreateKeys.add(key);
            }
            resolve();
          };
          if (createCalls >= kill.atCreate) fire();
          else trigger = { at: kill.atCreate, fire };
        });
        if (kill.mode === 'delayed') await sleep(kill.delayMs);
        const exit = await worker.stop({ signal: 'SIGKILL' });
        expect(exit.signal, worker.logTail()).toBe('SIGKILL');
        await sleep(kill.downMs);
        worker = await spawnWorker();
      }
      await channel;
      expect(acknowledged).toBe(ORDERS);

      // Drained: the one consumer holds nothing, pending or unacknowledged (JetStream's own count).
      let consumer = await jsm.consumers.info(config.nats.stream, config.nats.consumer);
      await waitUntil(
        'the consumer drained',
        async () => {
          consumer = await jsm.consumers.info(config.nats.stream, config.nats.consumer);
          return consumer.num_pending === 0 && consumer.num_ack_pending === 0;
        },
        {
          timeoutMs: Math.max(5_000, started + TEST_TIMEOUT_MS - 30_000 - Date.now()),
          intervalMs: 100,
          children: [worker],
        },
      );
      const drainedAt = Date.now();

      // 1. Exactly one create per order at the ERP, whatever the redeliveries; every order is there.
      const creates = ns.creates();
      const updates = ns.updates();
      const keys = Array.from({ length: ORDERS }, (_, n) => orderKey(n));
      const notOnce = keys.filter((k) => creates.byExternalId[k] !== 1);
      expect(
        notOnce.map((k) => `${k}: ${creates.byExternalId[k] ?? 0}`),
        'orders not created exactly once',
      ).toEqual([]);
      expect(creates.total).toBe(ORDERS);
      expect(Object.keys(creates.byExternalId)).toHaveLength(ORDERS);
      expect(ns.salesOrders()).toHaveLength(ORDERS);
      const missing = keys.filter(
        (k, n) => ns.salesOrder({ externalId: k })?.otherRefNum !== shopifyOrder({ n }).name,
      );
      expect(missing, 'orders without their sales order').toEqual([]);

      // The orders left without an answer to their create were sent again, as an upsert (an update).
      expect(crashedKeys.size).toBe(ns.counts.crashes);
      const unanswered = [...crashedKeys, ...killedInCreateKeys];
      expect(
        unanswered.filter((k) => !keys.includes(k)),
        'unknown keys',
      ).toEqual([]);
      expect(
        unanswered.filter((k) => !(updates.byExternalId[k]! >= 1)),
        'unanswered creates never sent again',
      ).toEqual([]);
      // Nothing but upserts by eid and updates by id reached the record service: no plain create.
      const methods: Record<string, number> = {};
      for (const r of ns.requests) {
        if (r.path.startsWith('/services/rest/record/')) methods[r.method] = (methods[r.method] ?? 0) + 1;
      }
      expect(Object.keys(methods).sort()).toEqual(methods.PATCH ? ['PATCH', 'PUT'] : ['PUT']);

      // 2. The cross-reference store has the ERP's id of every order (and its index entry).
      const records = new Map<string, XrefRecord>();
      for await (const r of store.list('Order')) records.set(r.key, r);
      const wrongIds: string[] = [];
      for (const [n, key] of keys.entries()) {
        const so = ns.salesOrder({ externalId: key })!;
        const r = records.get(key);
        if (r?.ids.netsuite !== so.id || r.ids.shopify !== String(shopifyOrder({ n }).id)) {
          wrongIds.push(`${key}: store ${JSON.stringify(r?.ids)} vs ERP ${so.id}`);
        }
      }
      expect(wrongIds, 'orders whose captured id is not the ERP id').toEqual([]);
      expect(records.size).toBe(ORDERS);
      const unindexed: string[] = [];
      for (let i = 0; i < keys.length; i += 100) {
        const batch = keys.slice(i, i + 100);
        const found = await Promise.all(
          batch.map((k) => store.resolve('Order', 'netsuite', ns.salesOrder({ externalId: k })!.id)),
        );
        found.forEach((f, j) => {
          if (f !== batch[j]) unindexed.push(`${batch[j]} -> ${f}`);
        });
      }
      expect(unindexed, 'ERP ids the index does not lead back from').toEqual([]);

      // 3. Nothing dead-lettered; the webhook re-sends were deduplicated by their delivery id.
      expect((await jsm.streams.info(config.nats.deadLetterStream)).state.messages).toBe(0);
      expect((await jsm.streams.info(config.nats.stream)).state.messages).toBe(ORDERS);

      // What happened, for the record.
      const retried: Record<string, number> = {};
      for (const line of readFileSync(logFile, 'utf8').split('\n')) {
        if (!line.startsWith('{')) continue;
        try {
          const entry = JSON.parse(line) as { msg?: string; reason?: string };
          if (entry.msg === 'failed; retrying')
            retried[entry.reason ?? '?'] = (retried[entry.reason ?? '?'] ?? 0) + 1;
        } catch {
          // a line cut by a SIGKILL
        }
      }
      const seconds = (drainedAt - started) / 1000;
      console.log(
        [
          `round-trip chaos seed ${SEED}: ${ORDERS} orders acknowledged in ${((acknowledgedAt - started) / 1000).toFixed(1)} s, drained at ${seconds.toFixed(1)} s (${(ORDERS / seconds).toFixed(0)} orders/s)`,
          `  kills: ${schedule.length} SIGKILLs (${killedInCreateKeys.size} inside a create, before its answer), ${schedule.length + 1} worker processes`,
          `  ERP: ${creates.total} creates (max per order ${Math.max(...Object.values(creates.byExternalId))}), ${updates.total} updates on ${Object.keys(updates.byExternalId).length} orders, ${ns.counts.crashes} creates committed then answered by a dropped connection, ${ns.counts.tokensIssued} OAuth tokens, record requests ${JSON.stringify(methods)}`,
          `  webhook: ${posts} posts, ${resends} re-sends; ${consumer.delivered.consumer_seq} deliveries by JetStream of ${consumer.delivered.stream_seq} messages; retries logged ${JSON.stringify(retried)}`,
        ].join('\n'),
      );
    },
    TEST_TIMEOUT_MS,
  );
});
