// `tally dlq list|show|replay` against a real nats-server and an in-process flow worker for the
// Shopify example: orders dead-lettered by a broken mapping are replayed once it is fixed and reach
// the loopback ERP once, under the idempotency key the original attempt would have had; replaying
// again is absorbed by the ERP's idempotency and the NATS sink's dedupe; --purge removes them.
// Every test starts from the same state of its own: fresh streams, a fresh ERP, and the five dead
// letters a broken mapping leaves (so any one of them runs alone with -t).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { CanonicalMappingSpec } from '../../api/canonical-mapping.ts';
import { type CanonicalEvent, idempotencyKey } from '../../api/envelope.ts';
import type { WorkerConfig } from '../../api/worker-config.ts';
import { type ErpPeer, startErpPeer } from '../../cli/demo/erp-simulator.ts';
import { type DlqIo, dlqCommand } from '../../cli/dlq/command.ts';
import { ensureFlowNats } from '../../operator/nats/provisioner.ts';
import { DeadLetterStore } from '../../runtime/flow/dead-letters/store.ts';
import { eventId } from '../../runtime/flow/envelope.ts';
import { partitionOf } from '../../runtime/flow/partition.ts';
import { type FlowWorkerHandle, runFlowWorker } from '../../runtime/flow/worker.ts';
import { flowNames } from '../../runtime/nats/flow-resources.ts';
import { type NatsServerHandle, startNatsServer } from '../harness/nats.ts';
import { freePort } from '../harness/ports.ts';
import { repoPath } from '../harness/tools.ts';
import { provision } from './support/flow-delivery.ts';
import {
  SECRET_ENV,
  shopifyOrder,
  shopifySignature,
  shopifyWorkerConfig,
  waitFor,
} from './support/flow-worker.ts';

const SECRET = 'dlq-itest-secret';
const NAMESPACE = 'dlqit';
const CANONICAL_STREAM = 'DLQIT_CANONICAL';
const VERSION = '1795191302000'; // $toMillis(updated_at) of every test order
const run = promisify(execFile);

let nats: NatsServerHandle;
let nc: NatsConnection;
let jsm: JetStreamManager;
let js: JetStreamClient;
let erp: ErpPeer | undefined;
/** The flow as the operator renders it, pointed at this test's ERP (the fixed mapping, generation 3). */
let config: WorkerConfig;
const workers: FlowWorkerHandle[] = [];

const flowRef = { namespace: NAMESPACE, name: 'shopify-orders' };
const FLOW = `${NAMESPACE}/shopify-orders`;

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

/** The example flow rendered for this file's namespace, pointed at the test's ERP. */
function flowConfig(o: {
  erpUrl: string;
  generation: number;
  editMapping?: (spec: CanonicalMappingSpec) => void;
}) {
  return shopifyWorkerConfig({
    namespace: NAMESPACE,
    natsUrl: nats.url,
    erpUrl: o.erpUrl,
    delivery: { initialBackoff: '50ms', maxBackoff: '400ms', ackWait: '10s' },
    mappingGeneration: o.generation,
    ...(o.editMapping ? { editMapping: o.editMapping } : {}),
  });
}

beforeEach(async () => {
  // Nothing from an earlier test: no stream (flow, dead letters, canonical, KV), a new ERP.
  const streams: string[] = [];
  for await (const s of jsm.streams.list()) streams.push(s.config.name);
  for (const name of streams) await jsm.streams.delete(name);
  erp = await startErpPeer();
  config = flowConfig({ erpUrl: `${erp.url}/api/sales-orders`, generation: 3 });
  await jsm.streams.add({ name: CANONICAL_STREAM, subjects: ['tally.canonical.>'], duplicate_window: 600e9 });
  await provision(jsm, config);
});

afterEach(async () => {
  // Each test starts the workers it needs.
  await Promise.all(workers.splice(0).map((w) => w.stop()));
  await erp?.close();
  erp = undefined;
});

/** The example mapping with a bug (an earlier generation): the grand total reads a field Shopify does not send. */
function brokenConfig(): WorkerConfig {
  let changed = false;
  const broken = flowConfig({
    erpUrl: `${erp!.url}/api/sales-orders`,
    generation: 2,
    editMapping: (spec) => {
      const expression = spec.expression.replace(
        '$money(total_price, $cur)',
        '$money(total_price_usd, $cur)',
      );
      changed = expression !== spec.expression;
      spec.expression = expression;
    },
  });
  expect(changed).toBe(true);
  return broken;
}

async function startWorker(c: WorkerConfig): Promise<FlowWorkerHandle> {
  const worker = await runFlowWorker(c, {
    env: { [SECRET_ENV]: SECRET, TALLY_HTTP_HOST: '127.0.0.1', TALLY_HTTP_PORT: '0' },
    logger: pino({ level: 'silent' }),
    graceMs: 5_000,
    processMetrics: false,
  });
  workers.push(worker);
  await waitFor('worker ready', () => worker.ready());
  return worker;
}

async function postWebhook(worker: FlowWorkerHandle, body: string, webhookId: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${worker.port}/webhooks/shopify/orders`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-shopify-hmac-sha256': shopifySignature(body, SECRET),
      'x-shopify-topic': 'orders/create',
      'x-shopify-webhook-id': webhookId,
    },
    body,
  });
  await res.body?.cancel();
  return res.status;
}

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Captured output; stderr is not a TTY, so progress comes as plain lines. */
function capture() {
  const text = { stdout: '', stderr: '' };
  const sink = (key: 'stdout' | 'stderr') => ({
    isTTY: false,
    write: (chunk: string) => {
      text[key] += chunk;
      return true;
    },
  });
  const io = {
    stdout: sink('stdout') as unknown as NodeJS.WritableStream,
    stderr: sink('stderr') as unknown as DlqIo['stderr'],
    env: {},
  };
  return { io, text };
}

async function dlqCommandRun(argv: string[]): Promise<CliRun> {
  const { io, text } = capture();
  const code = await dlqCommand(argv, io);
  return { code, ...text };
}

/** The command in-process on the test flow. */
function dlq(...args: string[]): Promise<CliRun> {
  const [sub, ...rest] = args;
  return dlqCommandRun([sub!, '--nats-url', nats.url, '--flow', FLOW, ...rest]);
}

async function dlqJson<T = Record<string, unknown>>(...args: string[]): Promise<T> {
  const r = await dlq(...args, '-o', 'json');
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as T;
}

interface ListedItem {
  seq: number;
  reason: string;
  errorClass: string;
  sourceMsgId: string;
  attempts: number;
  flow: string;
  message: string;
  deadLetteredAt: string;
}
const listed = async (...args: string[]) =>
  (await dlqJson<{ matched: number; deadLetters: ListedItem[] }>('list', ...args)).deadLetters;
const ids = (items: { sourceMsgId: string }[]) => items.map((i) => i.sourceMsgId).sort();

/** The real binary, as an operator would run it. */
async function tallyBin(...args: string[]): Promise<CliRun> {
  try {
    const r = await run(process.execPath, [repoPath('bin/tally.mjs'), ...args], { timeout: 30_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const count = async (stream: string) => (await jsm.streams.info(stream)).state.messages;
const settled = async () => {
  const info = await jsm.consumers.info(config.nats.stream, config.nats.consumer);
  return info.num_pending === 0 && info.num_ack_pending === 0;
};

const ORDERS = [1, 2, 3];
const orderId = (n: number) => `shopify-${7_000_000_000 + n}`;
const keyOf = (n: number) =>
  idempotencyKey({ tallyentity: 'Order', subject: orderId(n), tallyversion: VERSION });
const erpRequestsFor = (n: number) => erp!.requests.filter((r) => r.headers['idempotency-key'] === keyOf(n));

/** Between the first and the second batch of failures. */
let boundary: Date;
/** Sequence in the dead-letter stream by source message id. */
let seqOf: Record<string, number> = {};

/**
 * What the broken mapping leaves, the state every test of `tally dlq` starts from: ok-1, ok-2 and
 * bad-1 dead-lettered before `boundary`, ok-3 and garbage-1 after it; the broken worker stopped.
 */
async function deadLetterFive(): Promise<void> {
  const worker = await startWorker(brokenConfig());
  expect(await postWebhook(worker, JSON.stringify(shopifyOrder(1)), 'ok-1')).toBe(202);
  expect(await postWebhook(worker, JSON.stringify(shopifyOrder(2)), 'ok-2')).toBe(202);
  // Rejected by any version of the mapping: no currency, no lines.
  expect(await postWebhook(worker, JSON.stringify({ id: 42, note: 'no lines, no totals' }), 'bad-1')).toBe(
    202,
  );
  await waitFor('first dead letters', async () => (await count(config.nats.deadLetterStream)) === 3);

  // Clear of both batches' timestamps (this only separates them; nothing is concluded from it).
  await new Promise((r) => setTimeout(r, 50));
  boundary = new Date();
  await new Promise((r) => setTimeout(r, 50));

  expect(await postWebhook(worker, JSON.stringify(shopifyOrder(3)), 'ok-3')).toBe(202);
  // Not JSON at all, as a NATS source could ingest it.
  await js.publish(config.nats.ingestSubject, 'this is not json', { msgID: 'garbage-1' });
  await waitFor('all dead letters', async () => (await count(config.nats.deadLetterStream)) === 5);
  await waitFor('consumer settled', settled);
  await worker.stop();
  workers.splice(workers.indexOf(worker), 1);
  // Read straight from the stream, not through the command under test.
  seqOf = {};
  const info = await jsm.streams.info(config.nats.deadLetterStream);
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(config.nats.deadLetterStream, { seq });
    if (m) seqOf[m.header.get('Tally-Source-Msg-Id')] = seq;
  }
  expect(Object.keys(seqOf).sort()).toEqual(['bad-1', 'garbage-1', 'ok-1', 'ok-2', 'ok-3']);
}

describe('tally dlq', () => {
  beforeEach(deadLetterFive);

  it('lists what the flow dead-lettered, filtered by reason, error class and time', async () => {
    // The broken mapping reached nothing: every order is a dead letter, the ERP saw no request.
    expect(erp!.requests).toHaveLength(0);

    const all = await listed();
    expect(ids(all)).toEqual(['bad-1', 'garbage-1', 'ok-1', 'ok-2', 'ok-3']);
    expect(Object.fromEntries(all.map((i) => [i.sourceMsgId, i.seq]))).toEqual(seqOf);
    const by = (id: string) => all.find((i) => i.sourceMsgId === id)!;
    for (const id of ['ok-1', 'ok-2', 'ok-3'])
      expect(by(id)).toMatchObject({ reason: 'mapping_validation', errorClass: 'CanonicalValidationError' });
    expect(by('bad-1')).toMatchObject({ reason: 'mapping_evaluation', errorClass: 'MappingEvaluationError' });
    expect(by('garbage-1')).toMatchObject({ reason: 'invalid_json', errorClass: 'PayloadError' });
    for (const i of all) expect(i).toMatchObject({ attempts: 1, flow: FLOW, message: expect.any(String) });
    expect(all.map((i) => i.seq)).toEqual([...all.map((i) => i.seq)].sort((a, b) => a - b));

    expect(ids(await listed('--reason', 'mapping_validation'))).toEqual(['ok-1', 'ok-2', 'ok-3']);
    expect(ids(await listed('--reason', 'invalid_json', '--reason', 'mapping_evaluation'))).toEqual([
      'bad-1',
      'garbage-1',
    ]);
    expect(ids(await listed('--error-class', 'PayloadError'))).toEqual(['garbage-1']);
    expect(ids(await listed('--since', boundary.toISOString()))).toEqual(['garbage-1', 'ok-3']);
    expect(ids(await listed('--until', boundary.toISOString()))).toEqual(['bad-1', 'ok-1', 'ok-2']);
    expect(ids(await listed('--since', '1h', '--reason', 'mapping_validation'))).toEqual([
      'ok-1',
      'ok-2',
      'ok-3',
    ]);
    expect(await listed('--until', '1h')).toEqual([]);

    const limited = await dlq('list', '--limit', '2', '-o', 'json');
    expect(JSON.parse(limited.stdout)).toMatchObject({ matched: 5, deadLetters: [{}, {}] });
    expect(limited.stderr).toContain('showing 2 of 5 matching dead letters');

    // The real binary, table output.
    const table = await tallyBin('dlq', 'list', '--nats-url', nats.url, '--flow', FLOW);
    expect(table.code, table.stderr).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^SEQ +DEAD-LETTERED +ATTEMPTS +REASON +ERROR CLASS +SOURCE MSG ID +MESSAGE$/);
    expect(lines).toHaveLength(6);
    expect(table.stdout).toMatch(
      new RegExp(`^${seqOf['ok-1']} +\\S+Z +1 +mapping_validation +CanonicalValidationError +ok-1 +\\S`, 'm'),
    );
    // Reading consumed nothing and left no consumer behind.
    expect(await count(config.nats.deadLetterStream)).toBe(5);
    expect((await jsm.streams.info(config.nats.deadLetterStream)).state.consumer_count).toBe(0);
  });

  it('shows one dead letter with its headers and pretty-printed payload', async () => {
    const seq = seqOf['ok-1']!;
    const text = await dlq('show', String(seq));
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain(`Dead letter ${seq} in tally_dlq_${NAMESPACE}_shopify-orders`);
    expect(text.stdout).toContain('Reason:          mapping_validation');
    expect(text.stdout).toContain('Source msg id:   ok-1');
    expect(text.stdout).toContain('  Tally-Source-Msg-Id: ok-1');
    expect(text.stdout).toContain('  x-shopify-topic: orders/create');
    expect(text.stdout).toContain('  "name": "#2001",');

    const json = await dlqJson<Record<string, unknown>>('show', String(seq));
    expect(json).toMatchObject({
      seq,
      sourceMsgId: 'ok-1',
      payloadEncoding: 'json',
      payload: shopifyOrder(1),
    });
    const garbage = await dlqJson<Record<string, unknown>>('show', String(seqOf['garbage-1']));
    expect(garbage).toMatchObject({ payloadEncoding: 'utf8', payload: 'this is not json' });

    const missing = await dlq('show', '999');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no dead letter at sequence 999');
  });

  it('does nothing on a dry run', async () => {
    const flowCount = await count(config.nats.stream);
    const r = await dlq('replay', '--dry-run', '--purge', '--reason', 'mapping_validation', '-o', 'json');
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as {
      dryRun: boolean;
      subject: string;
      items: { sourceMsgId: string; result: string }[];
    };
    expect(out.dryRun).toBe(true);
    expect(out.subject).toBe(config.nats.ingestSubject);
    expect(ids(out.items)).toEqual(['ok-1', 'ok-2', 'ok-3']);
    expect(out.items.every((i) => i.result === 'would replay')).toBe(true);
    expect(r.stderr).toContain('dry run: would replay 3 dead letter(s)');
    expect(await count(config.nats.stream)).toBe(flowCount);
    expect(await count(config.nats.deadLetterStream)).toBe(5);
    expect(erp!.requests).toHaveLength(0);
  });

  it('replays once the mapping is fixed: each order reaches the ERP once, under its original key', async () => {
    await startWorker(config); // the fixed mapping
    const r = await dlq('replay', '--reason', 'mapping_validation');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('replay: 3/3 (100%)');
    expect(r.stderr).toMatch(/replayed 3 of 3 dead letter\(s\) to /);
    await waitFor('ERP applied every order', () => ORDERS.every((n) => erp!.applied.has(keyOf(n))));
    await waitFor('consumer settled', settled);

    for (const n of ORDERS) {
      const reqs = erpRequestsFor(n);
      expect(reqs).toHaveLength(1);
      const event = reqs[0]!.body as CanonicalEvent;
      // What the original attempt would have produced: same event id, same idempotency key.
      expect(event.id).toBe(eventId(flowRef, `ok-${n}`));
      expect(event.tallysourceid).toBe(`ok-${n}`);
      expect(idempotencyKey(event)).toBe(keyOf(n));
      expect(event.data).toMatchObject({ totals: { grandTotal: { amount: '43.22', currency: 'USD' } } });
    }
    expect(erp!.applied.size).toBe(3);
    expect(await count(CANONICAL_STREAM)).toBe(3);
    // Nothing failed again; without --purge the dead letters stay.
    expect(await count(config.nats.deadLetterStream)).toBe(5);
  });

  it('replaying the same dead letters again applies nothing twice', async () => {
    await startWorker(config);
    const first = await dlq('replay', '--reason', 'mapping_validation');
    expect(first.code, first.stderr).toBe(0);
    await waitFor('ERP applied every order', () => ORDERS.every((n) => erp!.applied.has(keyOf(n))));
    await waitFor('consumer settled', settled);
    expect(await count(CANONICAL_STREAM)).toBe(3);

    const r = await dlq('replay', '--reason', 'mapping_validation');
    expect(r.code, r.stderr).toBe(0);
    await waitFor('ERP saw the repeats', () => ORDERS.every((n) => erpRequestsFor(n).length === 2));
    await waitFor('consumer settled', settled);
    for (const n of ORDERS) {
      const [first, second] = erpRequestsFor(n);
      expect((second!.body as CanonicalEvent).id).toBe((first!.body as CanonicalEvent).id);
    }
    expect(erp!.applied.size).toBe(3);
    // The NATS sink's Nats-Msg-Id (the event id) deduped the canonical events too.
    expect(await count(CANONICAL_STREAM)).toBe(3);
  });

  it('--purge deletes what was replayed; what still fails comes back as a new dead letter', async () => {
    await startWorker(config);
    const purged = await dlq('replay', '--purge', '--reason', 'mapping_validation', '-o', 'json');
    expect(purged.code, purged.stderr).toBe(0);
    const out = JSON.parse(purged.stdout) as { items: { seq: number; result: string; purged: boolean }[] };
    expect(out.items.map((i) => [i.result, i.purged])).toEqual([
      ['replayed', true],
      ['replayed', true],
      ['replayed', true],
    ]);
    await waitFor('ERP applied every order', () => ORDERS.every((n) => erpRequestsFor(n).length === 1));
    expect(erp!.applied.size).toBe(3);
    expect(ids(await listed())).toEqual(['bad-1', 'garbage-1']);

    // Still unmappable: replayed, purged, dead-lettered again (not dropped as a duplicate).
    const again = await dlq('replay', '--purge');
    expect(again.code, again.stderr).toBe(0);
    await waitFor('consumer settled', settled);
    await waitFor('dead-lettered again', async () => {
      const items = await listed();
      return (
        ids(items).join() === 'bad-1,garbage-1' &&
        items.every((i) => i.seq > seqOf['garbage-1']! && i.seq > seqOf['bad-1']!)
      );
    });
    const items = await listed();
    for (const i of items) expect(i.seq).not.toBe(seqOf[i.sourceMsgId]);
    const shown = await dlqJson<{ headers: Record<string, string> }>('show', String(items[0]!.seq));
    expect(shown.headers['Tally-Replay-Of']).toMatch(
      new RegExp(`^tally_dlq_${NAMESPACE}_shopify-orders:\\d+$`),
    );
    expect(erp!.applied.size).toBe(3);
  });

  it('exits 1 naming the missing stream or the unreachable server, 2 on usage errors', async () => {
    const missing = await dlqCommandRun(['list', '--nats-url', nats.url, '--flow', `${NAMESPACE}/nope`]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(
      `the dead-letter stream tally_dlq_${NAMESPACE}_nope of flow ${NAMESPACE}/nope does not exist`,
    );

    const unknownSeq = await dlq('replay', '999');
    expect(unknownSeq.code).toBe(1);
    expect(unknownSeq.stderr).toContain('no dead letter at sequence 999');
    expect(unknownSeq.stderr).toContain('replayed 0 of 0 dead letter(s)');

    const port = await freePort();
    const down = await tallyBin('dlq', 'list', '--nats-url', `nats://127.0.0.1:${port}`, '--flow', FLOW);
    expect(down.code).toBe(1);
    expect(down.stderr).toContain(`cannot reach NATS at nats://127.0.0.1:${port}`);

    const usage = await tallyBin('dlq', 'list', '--nats-url', nats.url);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('--flow [NAMESPACE/]NAME is required');
  });
});

describe('dlq replay routing', () => {
  it('sends each replay to the partition of its key, from the layout the flow stream records', async () => {
    const ordered = { namespace: NAMESPACE, name: 'ordered-orders' };
    const delivery = { ...config.delivery, partitionKey: '$string(id)', partitions: 4 };
    await ensureFlowNats(jsm, ordered, { stream: config.stream, delivery });
    const store = await DeadLetterStore.open({ servers: [nats.url], flow: ordered });
    try {
      const target = await store.replayTarget();
      expect(target.description).toContain('4 partitions by $string(id)');
      const names = flowNames(ordered);
      for (const n of [1, 2, 3, 4, 5, 6]) {
        const order = shopifyOrder(n) as { id: number };
        expect(await target.subjectOf(Buffer.from(JSON.stringify(order)))).toBe(
          names.ingestSubject(partitionOf(String(order.id), 4)),
        );
      }
      // No key (not JSON): partition 0, as at ingest, where the mapping dead-letters it again.
      expect(await target.subjectOf(Buffer.from('not json'))).toBe(names.ingestSubject(0));

      // Going back to unordered rewrites the layout: everything on the one partition.
      await ensureFlowNats(jsm, ordered, { stream: config.stream, delivery: config.delivery });
      const unordered = await store.replayTarget();
      // An order the ordered layout put elsewhere: the rewritten layout, not a lucky hash, sends it to 0.
      const elsewhere = [1, 2, 3, 4, 5, 6, 7, 8]
        .map((n) => shopifyOrder(n) as { id: number })
        .find((o) => partitionOf(String(o.id), 4) !== 0)!;
      expect(await unordered.subjectOf(Buffer.from(JSON.stringify(elsewhere)))).toBe(names.ingestSubject(0));
    } finally {
      await store.close();
      await jsm.streams.delete(flowNames(ordered).stream);
      await jsm.streams.delete(flowNames(ordered).deadLetterStream);
    }
  });
});
