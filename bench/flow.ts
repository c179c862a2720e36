// Flow throughput and latency: a 2 KB Shopify order going flow stream -> `tally runtime` (mapping,
// canonical validation, envelope, Nats-Msg-Id dedupe, metrics, acks) -> a JetStream sink stream,
// next to a null relay written directly on the NATS client (consume -> publish -> ack, no mapping)
// against the same nats-server in the same run. Both run as processes of their own with the same
// bound on messages in flight; all times are JetStream's own (stored-at timestamps), so the driver
// measures nothing itself and can sit idle.
//
//   node bench/flow.ts [--messages 20000] [--latency-messages 3000] [--rate N] [--log-level info]
//   node bench/run.ts flow
//
// Throughput: N orders waiting in the source stream, relay started; rate = (N-1) / (time between the
// first and the last store on the sink stream), bounded by --max-seconds per side. Latency: orders
// published at a steady rate below both sides' capacity; latency = sink stored-at - source stored-at.
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import {
  AckPolicy,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
} from '@nats-io/jetstream';
import { connect, type NatsConnection, headers as natsHeaders } from '@nats-io/transport-node';
import * as yaml from 'js-yaml';
import { parseWorkerConfig, type WorkerConfig } from '../api/worker-config.ts';
import { ensureFlowNats } from '../operator/nats/provisioner.ts';
import { INGEST_HEADERS } from '../runtime/flow/ingest.ts';
import { flowNames } from '../runtime/nats/flow-resources.ts';
import { makeTempDir, removeTempDir } from '../test/harness/cleanup.ts';
import { startNatsServer } from '../test/harness/nats.ts';
import { freePort } from '../test/harness/ports.ts';
import { repoPath } from '../test/harness/tools.ts';
import { shopifyWorkerConfig } from '../test/integration/support/flow-worker.ts';

/** Messages in flight on each side: the worker's default bound for a flow with only a NATS sink. */
const IN_FLIGHT = 16;
const FLOW = { namespace: 'bench', name: 'shopify-orders' };

export interface FlowBenchOptions {
  messages: number;
  latencyMessages: number;
  /** Publish rate of the latency run; default half the slower side's throughput, at most 1000/s. */
  rate?: number;
  /** Longest a throughput run may take per side. */
  maxSeconds: number;
  logLevel: string;
  print: boolean;
}

export interface SideResult {
  /** Events per second, source stream to sink stream. */
  throughput: number;
  /** Source stored-at to sink stored-at, ms. */
  p50: number;
  p99: number;
  delivered: number;
}

export interface FlowBenchResult {
  payloadBytes: number;
  messages: number;
  latencyMessages: number;
  rate: number;
  tally: SideResult;
  nullRelay: SideResult;
  /** tally / null relay throughput; the goal is 0.8 or more. */
  ratio: number;
}

let example: Record<string, unknown> & { line_items: object[] };

/** A realistic Shopify order of about 2 KB: the example's order with a few more lines. */
export function benchOrder(n: number): Buffer {
  example ??= (
    yaml.load(readFileSync(repoPath('examples/shopify-orders/mapping.yaml'), 'utf8')) as {
      spec: { tests: { input: typeof example }[] };
    }
  ).spec.tests[0]!.input;
  const base = example;
  const line = base.line_items[0] as Record<string, unknown>;
  const lines = Array.from({ length: 4 }, (_, i) => ({
    ...line,
    id: 9000 + i,
    sku: `SKU-${i}`,
    title: `Organic cotton t-shirt, colour ${i}`,
  }));
  const order = {
    ...base,
    id: 8_000_000_000 + n,
    name: `#${100_000 + n}`,
    line_items: lines,
    note: 'Leave at the back door; ring twice.',
  };
  let body = Buffer.from(JSON.stringify(order));
  // Pad to 2 KB with a note attribute, as channels send them.
  if (body.length < 2048) {
    body = Buffer.from(
      JSON.stringify({
        ...order,
        note_attributes: [{ name: 'gift', value: 'x'.repeat(2048 - body.length - 40) }],
      }),
    );
  }
  return body;
}

/** Milliseconds since the epoch, with the nanoseconds JetStream keeps. */
const nanosToMs = (nanos: bigint) => Number(nanos / 1000n) / 1000;

/** An RFC 3339 time with nanoseconds (a stored message's timestamp) in milliseconds since the epoch. */
function isoToMs(timestamp: string): number {
  const m = /^(.*T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$/.exec(timestamp);
  if (!m) return Date.parse(timestamp);
  return Date.parse(`${m[1]}${m[3]}`) + Number(`0${m[2] ?? ''}`) * 1000;
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** Every message of a stream with its stored-at time, through an ordered consumer. */
async function readStream(
  js: JetStreamClient,
  stream: string,
  expected: number,
  key: (data: Uint8Array, headers: Record<string, string>) => string,
): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const oc = await js.consumers.get(stream);
  const deadline = Date.now() + 60_000;
  while (out.size < expected && Date.now() < deadline) {
    const batch = await oc.fetch({ max_messages: Math.min(1000, expected - out.size), expires: 2_000 });
    for await (const m of batch) {
      const h: Record<string, string> = {};
      for (const k of m.headers?.keys() ?? []) h[k] = m.headers!.get(k);
      out.set(key(m.data, h), nanosToMs(m.timestampNanos));
    }
  }
  return out;
}

interface Side {
  name: 'tally' | 'nullRelay';
  /** Source stream and the subject to publish source messages to. */
  sourceStream: string;
  sourceSubject: string;
  sinkStream: string;
  /** The id a sink message is matched to its source message by. */
  sinkKey: (data: Uint8Array, headers: Record<string, string>) => string;
  start(): Promise<() => Promise<void>>;
}

async function publishOrders(
  js: JetStreamClient,
  subject: string,
  from: number,
  count: number,
  perSecond?: number,
) {
  const started = performance.now();
  const pending: Promise<unknown>[] = [];
  for (let i = 0; i < count; i++) {
    const n = from + i;
    if (perSecond) {
      const due = started + (i * 1000) / perSecond;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
    }
    const h = natsHeaders();
    h.set(INGEST_HEADERS.source, 'nats');
    h.set(INGEST_HEADERS.receivedAt, new Date().toISOString());
    pending.push(js.publish(subject, benchOrder(n), { msgID: `bench-${n}`, headers: h }));
    if (pending.length >= 256) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
}

async function sinkCount(jsm: JetStreamManager, stream: string): Promise<number> {
  return (await jsm.streams.info(stream)).state.messages;
}

async function measure(
  side: Side,
  nc: NatsConnection,
  o: FlowBenchOptions,
  log: (s: string) => void,
): Promise<{ throughput: number; delivered: number; stop: () => Promise<void> }> {
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  await publishOrders(js, side.sourceSubject, 0, o.messages);
  log(`  ${side.name}: ${o.messages} orders waiting; starting`);
  const stop = await side.start();
  const deadline = Date.now() + o.maxSeconds * 1000 + 30_000;
  let delivered = 0;
  while (Date.now() < deadline) {
    delivered = await sinkCount(jsm, side.sinkStream);
    if (delivered >= o.messages) break;
    await sleep(100);
  }
  const info = await jsm.streams.info(side.sinkStream);
  const first = await jsm.streams.getMessage(side.sinkStream, { seq: info.state.first_seq });
  const last = await jsm.streams.getMessage(side.sinkStream, { seq: info.state.last_seq });
  const seconds = (isoToMs(last!.timestamp) - isoToMs(first!.timestamp)) / 1000;
  const throughput = (info.state.messages - 1) / seconds;
  log(
    `  ${side.name}: ${info.state.messages} delivered in ${seconds.toFixed(2)} s: ${throughput.toFixed(0)}/s`,
  );
  return { throughput, delivered: info.state.messages, stop };
}

async function latency(
  side: Side,
  nc: NatsConnection,
  o: FlowBenchOptions,
  rate: number,
  log: (s: string) => void,
): Promise<{ p50: number; p99: number }> {
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  const before = await sinkCount(jsm, side.sinkStream);
  const from = o.messages;
  await publishOrders(js, side.sourceSubject, from, o.latencyMessages, rate);
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline && (await sinkCount(jsm, side.sinkStream)) < before + o.latencyMessages) {
    await sleep(100);
  }
  const sourceKey = (_d: Uint8Array, h: Record<string, string>) => h['Nats-Msg-Id']!;
  const sources = await readStream(js, side.sourceStream, o.messages + o.latencyMessages, sourceKey);
  const sinks = await readStream(js, side.sinkStream, before + o.latencyMessages, side.sinkKey);
  const ms: number[] = [];
  for (let n = from; n < from + o.latencyMessages; n++) {
    const id = `bench-${n}`;
    const a = sources.get(id);
    const b = sinks.get(id);
    if (a !== undefined && b !== undefined) ms.push(b - a);
  }
  ms.sort((x, y) => x - y);
  const p50 = quantile(ms, 0.5);
  const p99 = quantile(ms, 0.99);
  log(`  ${side.name}: ${ms.length} at ${rate}/s: p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms`);
  return { p50, p99 };
}

/** The null relay: the least a relay on the NATS client can do, with the same bound in flight. */
async function nullRelay(
  servers: string,
  stream: string,
  consumer: string,
  sinkSubject: string,
): Promise<void> {
  const nc = await connect({ servers, name: 'bench null relay' });
  const js = jetstream(nc);
  const c = await js.consumers.get(stream, consumer);
  const messages = await c.consume({ max_messages: IN_FLIGHT });
  let inFlight = 0;
  let wake: (() => void) | undefined;
  const stop = () => void nc.close().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  for await (const m of messages) {
    while (inFlight >= IN_FLIGHT) await new Promise<void>((r) => (wake = r));
    inFlight++;
    const h = natsHeaders();
    for (const k of m.headers?.keys() ?? []) if (!k.startsWith('Nats-')) h.set(k, m.headers!.get(k));
    js.publish(sinkSubject, m.data, { msgID: m.headers?.get('Nats-Msg-Id') ?? String(m.seq), headers: h })
      .then(
        () => m.ack(),
        () => m.nak(),
      )
      .finally(() => {
        inFlight--;
        wake?.();
        wake = undefined;
      });
  }
}

function child(args: string[], env: NodeJS.ProcessEnv): () => Promise<void> {
  const p = spawn(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
  return async () => {
    p.kill('SIGTERM');
    const timer = setTimeout(() => p.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
}

export async function runFlowBench(o: FlowBenchOptions): Promise<FlowBenchResult> {
  const log = (s: string) => o.print && console.log(s);
  const nats = await startNatsServer();
  const dir = makeTempDir('bench-flow');
  const nc = await connect({ servers: nats.url });
  try {
    const jsm = await jetstreamManager(nc);
    const names = flowNames(FLOW);

    // Tally: the example flow with only its JetStream sink, provisioned as the operator does.
    const base = shopifyWorkerConfig({
      namespace: FLOW.namespace,
      natsUrl: nats.url,
      erpUrl: 'http://127.0.0.1:9',
    });
    const config: WorkerConfig = parseWorkerConfig({
      ...base,
      source: { type: 'nats', subject: 'bench.unused' },
      sinks: [{ name: 'canonical', type: 'nats', subject: 'bench.sink.tally' }],
    });
    await ensureFlowNats(jsm, FLOW, { stream: config.stream, delivery: config.delivery });
    await jsm.streams.add({
      name: 'BENCH_SINK_TALLY',
      subjects: ['bench.sink.tally'],
      duplicate_window: 120e9,
    });
    const file = join(dir, 'worker.json');
    writeFileSync(file, JSON.stringify(config));
    const tally: Side = {
      name: 'tally',
      sourceStream: names.stream,
      sourceSubject: config.nats.ingestSubject,
      sinkStream: 'BENCH_SINK_TALLY',
      sinkKey: (data) =>
        (JSON.parse(Buffer.from(data).toString('utf8')) as { tallysourceid: string }).tallysourceid,
      start: async () => {
        const port = await freePort();
        // TALLY_BENCH_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", profiles the worker.
        const nodeArgs = process.env.TALLY_BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
        const stop = child([...nodeArgs, repoPath('bin/tally.mjs'), 'runtime', '--config', file], {
          ...process.env,
          TALLY_HTTP_HOST: '127.0.0.1',
          TALLY_HTTP_PORT: String(port),
          TALLY_LOG_LEVEL: o.logLevel,
        });
        return stop;
      },
    };

    // The null relay: same kind of stream and consumer (explicit acks, 1000 pending, dedupe window).
    await jsm.streams.add({ name: 'BENCH_SRC_NULL', subjects: ['bench.src.null'], duplicate_window: 120e9 });
    await jsm.streams.add({
      name: 'BENCH_SINK_NULL',
      subjects: ['bench.sink.null'],
      duplicate_window: 120e9,
    });
    await jsm.consumers.add('BENCH_SRC_NULL', {
      durable_name: 'relay',
      ack_policy: AckPolicy.Explicit,
      max_ack_pending: 1000,
      ack_wait: 30e9,
    });
    const nullSide: Side = {
      name: 'nullRelay',
      sourceStream: 'BENCH_SRC_NULL',
      sourceSubject: 'bench.src.null',
      sinkStream: 'BENCH_SINK_NULL',
      sinkKey: (_d, h) => h['Nats-Msg-Id']!,
      start: async () =>
        child(
          [repoPath('bench/flow.ts'), '--null-relay', nats.url, 'BENCH_SRC_NULL', 'relay', 'bench.sink.null'],
          {
            ...process.env,
          },
        ),
    };

    const payloadBytes = benchOrder(0).length;
    log(
      `flow: ${payloadBytes}-byte orders, ${o.messages} per side for throughput, ${IN_FLIGHT} in flight each, log level ${o.logLevel}`,
    );
    // Null relay first, then Tally; each stays up for its latency run.
    const n = await measure(nullSide, nc, o, log);
    const t = await measure(tally, nc, o, log);
    const rate = o.rate ?? Math.max(50, Math.min(1000, Math.floor(Math.min(n.throughput, t.throughput) / 2)));
    const nl = await latency(nullSide, nc, o, rate, log);
    const tl = await latency(tally, nc, o, rate, log);
    await n.stop();
    await t.stop();
    const result: FlowBenchResult = {
      payloadBytes,
      messages: o.messages,
      latencyMessages: o.latencyMessages,
      rate,
      tally: { throughput: t.throughput, delivered: t.delivered, ...tl },
      nullRelay: { throughput: n.throughput, delivered: n.delivered, ...nl },
      ratio: t.throughput / n.throughput,
    };
    if (o.print) {
      const row = (name: string, s: SideResult) =>
        `  ${name.padEnd(11)} ${s.throughput.toFixed(0).padStart(8)}/s   p50 ${s.p50.toFixed(2).padStart(7)} ms   p99 ${s.p99.toFixed(2).padStart(7)} ms`;
      console.log('flow results (source stream -> sink stream):');
      console.log(row('null relay', result.nullRelay));
      console.log(row('tally', result.tally));
      console.log(
        `  ratio tally / null relay: ${result.ratio.toFixed(2)} (goal >= 0.80)${result.ratio >= 0.8 ? '' : '  BELOW GOAL'}`,
      );
    }
    return result;
  } finally {
    await nc.close();
    await nats.stop();
    removeTempDir(dir);
  }
}

/** bench/run.ts entry: runs when no filter is given or one names the flow benchmark. */
export async function runFlowBenchCase(options: { filters: string[]; print: boolean }) {
  if (
    options.filters.length > 0 &&
    !options.filters.some((f) => 'flow/throughput'.includes(f) || f.startsWith('flow'))
  ) {
    return undefined;
  }
  return runFlowBench({ ...defaults, print: options.print });
}

const defaults = { messages: 20_000, latencyMessages: 3_000, maxSeconds: 20, logLevel: 'info', print: true };

if (import.meta.filename === process.argv[1]) {
  if (process.argv[2] === '--null-relay') {
    const [servers, stream, consumer, sinkSubject] = process.argv.slice(3) as [
      string,
      string,
      string,
      string,
    ];
    await nullRelay(servers, stream, consumer, sinkSubject);
  } else {
    const { values } = parseArgs({
      options: {
        messages: { type: 'string', default: String(defaults.messages) },
        'latency-messages': { type: 'string', default: String(defaults.latencyMessages) },
        rate: { type: 'string' },
        'max-seconds': { type: 'string', default: String(defaults.maxSeconds) },
        'log-level': { type: 'string', default: defaults.logLevel },
        json: { type: 'boolean', default: false },
      },
    });
    const result = await runFlowBench({
      messages: Number(values.messages),
      latencyMessages: Number(values['latency-messages']),
      ...(values.rate ? { rate: Number(values.rate) } : {}),
      maxSeconds: Number(values['max-seconds']),
      logLevel: values['log-level'],
      print: !values.json,
    });
    if (values.json) console.log(JSON.stringify(result, null, 2));
  }
}
