// Flow throughput and latency: a 2 KB Shopify order going flow stream -> `tally runtime` (mapping,
// canonical validation, envelope, Nats-Msg-Id dedupe, metrics, acks) -> a JetStream sink stream
// (and, as the operator renders every flow, the namespace's canonical stream too), next to a null
// relay written directly on the NATS client (consume -> publish -> ack, no mapping) and a mapping
// relay (the same loop plus only the per-event mapping work), against the same nats-server in the
// same run. Each runs as a process of its own with the same bound on messages in flight; all times
// are JetStream's own (stored-at timestamps), so the driver measures nothing itself and can sit idle.
//
//   node bench/flow.ts [--messages 24000] [--rounds 6] [--latency-messages 3000] [--rate N]
//                      [--log-level info] [--json]
//   node bench/run.ts flow
//
// Throughput, in rounds that rotate the sides (so load from other processes hits all alike):
// messages/rounds orders waiting in the source stream, relay started; rate = (n-1) / (time between
// the first and the last store on the sink stream). Latency: after a warm-up message, orders
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
import { ensureFlowNats, ensureNamespaceStreams } from '../operator/nats/provisioner.ts';
import { buildEnvelope } from '../runtime/flow/envelope.ts';
import { INGEST_HEADERS } from '../runtime/flow/ingest.ts';
import { traceFromSeed } from '../runtime/flow/trace.ts';
import { compileMapping } from '../runtime/mapping/index.ts';
import { CANONICAL_SINK_NAME } from '../runtime/nats/canonical.ts';
import { flowNames } from '../runtime/nats/flow-resources.ts';
import { makeTempDir, removeTempDir } from '../test/harness/cleanup.ts';
import { startNatsServer } from '../test/harness/nats.ts';
import { freePort } from '../test/harness/ports.ts';
import { repoPath } from '../test/harness/tools.ts';
import { shopifyWorkerConfig } from '../test/integration/support/flow-worker.ts';

/** Messages in flight on each side: the worker's default bound for a flow with only NATS sinks. */
const IN_FLIGHT = 64;
const FLOW = { namespace: 'bench', name: 'shopify-orders' };

export interface FlowBenchOptions {
  /** Orders per side for throughput, split over the rounds. */
  messages: number;
  rounds: number;
  latencyMessages: number;
  /** Publish rate of the latency run; default a quarter of the slower side's throughput, at most 500/s. */
  rate?: number;
  /** Longest one round may wait for its messages. */
  maxSeconds: number;
  logLevel: string;
  print: boolean;
}

export interface SideResult {
  /** Events per second, source stream to sink stream. */
  throughput: number;
  /** CPU time of the relay process per event while relaying, µs (median over rounds; Linux). */
  cpuUsPerEvent: number | undefined;
  /** CPU time of nats-server per event while this side relays, µs (median over rounds; Linux). */
  serverCpuUsPerEvent: number | undefined;
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
  /** The null relay plus only the per-event work of a mapping (no metrics, logs, retries). */
  mappingRelay: SideResult;
  /** tally / null relay throughput (all rounds); the goal is 0.8 or more. */
  ratio: number;
  /** mapping relay / null relay. */
  mappingRelayRatio: number;
  /**
   * Where a worker doing its work on one thread, with messaging as cheap as the null relay's, would
   * stop when both sides are bound by CPU: the null relay's CPU per event over that plus Tally's
   * own work per event.
   */
  singleThreadBound: number | undefined;
  /** The ratio of each round. */
  roundRatios: number[];
  /** Tally's own work per event, measured in this process (µs): what the null relay does not do. */
  work: { parseUs: number; mapUs: number; envelopeUs: number; serializeUs: number };
}

function singleThreadBound(relayUs: number | undefined, work: FlowBenchResult['work']): number | undefined {
  if (relayUs === undefined) return undefined;
  return relayUs / (relayUs + work.parseUs + work.mapUs + work.envelopeUs + work.serializeUs);
}

/** Time per call of the steps the worker adds to a relay, on the bench order, µs. */
async function tallyWork(config: WorkerConfig): Promise<FlowBenchResult['work']> {
  const mapping = compileMapping(config.mapping);
  const data = benchOrder(1);
  const payload = JSON.parse(data.toString('utf8'));
  const mapped = await mapping.map(payload);
  const envelope = () =>
    buildEnvelope({
      flow: config.flow,
      mapping: config.mapping,
      output: mapped.output,
      key: mapped.key,
      sourceMsgId: 'bench-1',
      trace: traceFromSeed('bench-1'),
      time: new Date(),
    });
  const event = envelope();
  const usPer = async (fn: () => unknown) => {
    for (let i = 0; i < 500; i++) await fn();
    const n = 3000;
    const started = performance.now();
    for (let i = 0; i < n; i++) await fn();
    return ((performance.now() - started) * 1000) / n;
  };
  return {
    parseUs: await usPer(() => JSON.parse(data.toString('utf8'))),
    mapUs: await usPer(() => mapping.map(payload)),
    envelopeUs: await usPer(envelope),
    serializeUs: await usPer(() => Buffer.from(JSON.stringify(event))),
  };
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

function median(xs: number[]): number | undefined {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted.length > 0 ? quantile(sorted, 0.5) : undefined;
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** `count` messages of a stream from `fromSeq`, by key, with their stored-at times (ordered consumer). */
async function readStream(
  js: JetStreamClient,
  stream: string,
  fromSeq: number,
  expected: number,
  key: (data: Uint8Array, headers: Record<string, string>) => string,
): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const oc = await js.consumers.get(stream, { opt_start_seq: fromSeq });
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

type SideName = 'tally' | 'nullRelay' | 'mappingRelay';

interface Side {
  name: SideName;
  /** The subject source messages are published to, and the streams at both ends. */
  sourceSubject: string;
  sourceStream: string;
  sinkStream: string;
  sinkSubject: string;
  /** The source message id a sink message came from. */
  sourceIdOf: (data: Uint8Array, headers: Record<string, string>) => string;
  /** Starts the relay process. */
  start(): Promise<Relay>;
}

/** Next order number per side, so every message id is new (dedupe stays on). */
const next: Record<SideName, number> = { tally: 0, nullRelay: 0, mappingRelay: 0 };

async function publishOrders(js: JetStreamClient, side: Side, count: number, perSecond?: number) {
  const started = performance.now();
  const pending: Promise<unknown>[] = [];
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const n = next[side.name]++;
    if (perSecond) {
      const wait = started + (i * 1000) / perSecond - performance.now();
      if (wait > 1) await sleep(wait);
    }
    const h = natsHeaders();
    h.set(INGEST_HEADERS.source, 'nats');
    h.set(INGEST_HEADERS.receivedAt, new Date().toISOString());
    const id = `bench-${n}`;
    ids.push(id);
    pending.push(js.publish(side.sourceSubject, benchOrder(n), { msgID: id, headers: h }));
    if (pending.length >= 256) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
  return ids;
}

async function lastSeq(jsm: JetStreamManager, stream: string): Promise<number> {
  return (await jsm.streams.info(stream)).state.last_seq;
}

/** Waits until the stream reaches `seq`; `onPoll` sees every sequence read on the way. */
async function waitForSeq(
  jsm: JetStreamManager,
  stream: string,
  seq: number,
  ms: number,
  onPoll: (last: number) => void = () => {},
): Promise<number> {
  const deadline = Date.now() + ms;
  let last = await lastSeq(jsm, stream);
  onPoll(last);
  while (last < seq && Date.now() < deadline) {
    await sleep(50);
    last = await lastSeq(jsm, stream);
    onPoll(last);
  }
  return last;
}

/** One throughput round of one side: orders waiting, relay started, rate of the sink stores. */
async function throughputRound(
  side: Side,
  nc: NatsConnection,
  o: FlowBenchOptions,
  count: number,
  serverPid: number | undefined,
): Promise<{
  messages: number;
  seconds: number;
  cpuMsPerEvent: number | undefined;
  serverCpuMsPerEvent: number | undefined;
}> {
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  const from = await lastSeq(jsm, side.sinkStream);
  await publishOrders(js, side, count);
  const relay = await side.start();
  try {
    // CPU per event while it relays: between the first poll that sees progress and the last one
    // before it is done (so start-up and idle time are left out).
    type Mark = { seq: number; cpu: number; server: number | undefined };
    let a: Mark | undefined;
    let b: Mark | undefined;
    const to = await waitForSeq(jsm, side.sinkStream, from + count, o.maxSeconds * 1000 + 30_000, (seq) => {
      const cpu = relay.cpuMs();
      if (cpu === undefined || seq <= from || seq >= from + count) return;
      const mark = { seq, cpu, server: cpuMsOf(serverPid) };
      if (!a) a = mark;
      else b = mark;
    });
    const enough = a && b && b.seq - a.seq > count / 4;
    const first = await jsm.streams.getMessage(side.sinkStream, { seq: from + 1 });
    const last = await jsm.streams.getMessage(side.sinkStream, { seq: to });
    return {
      messages: to - from,
      seconds: (isoToMs(last!.timestamp) - isoToMs(first!.timestamp)) / 1000,
      cpuMsPerEvent: enough ? (b!.cpu - a!.cpu) / (b!.seq - a!.seq) : undefined,
      serverCpuMsPerEvent:
        enough && a!.server !== undefined && b!.server !== undefined
          ? (b!.server - a!.server) / (b!.seq - a!.seq)
          : undefined,
    };
  } finally {
    await relay.stop();
  }
}

/** One latency round: relay warmed up, orders at a steady rate, stored-at to stored-at. */
async function latencyRound(side: Side, nc: NatsConnection, count: number, rate: number): Promise<number[]> {
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  const relay = await side.start();
  try {
    const warm = await lastSeq(jsm, side.sinkStream);
    await publishOrders(js, side, 1);
    await waitForSeq(jsm, side.sinkStream, warm + 1, 60_000);
    const sourceFrom = await lastSeq(jsm, side.sourceStream);
    const sinkFrom = await lastSeq(jsm, side.sinkStream);
    const ids = await publishOrders(js, side, count, rate);
    await waitForSeq(jsm, side.sinkStream, sinkFrom + count, 60_000);
    const sent = await readStream(js, side.sourceStream, sourceFrom + 1, count, (_d, h) => h['Nats-Msg-Id']!);
    const got = await readStream(js, side.sinkStream, sinkFrom + 1, count, side.sourceIdOf);
    return ids.flatMap((id) => {
      const a = sent.get(id);
      const b = got.get(id);
      return a !== undefined && b !== undefined ? [b - a] : [];
    });
  } finally {
    await relay.stop();
  }
}

/**
 * The null relay: the least a relay on the NATS client can do, with the same bound in flight. With
 * a worker config it is the mapping relay: the same loop plus only the work every event needs
 * (parse, compiled mapping with canonical validation, envelope, serialize) and nothing else a
 * production worker does (no metrics, logs, retries, dead letters, heartbeats): what the same work
 * written plainly on the client reaches, next to Tally's worker.
 */
async function relay(
  servers: string,
  stream: string,
  consumer: string,
  sinkSubject: string,
  configFile: string | undefined,
): Promise<void> {
  const config = configFile ? parseWorkerConfig(JSON.parse(readFileSync(configFile, 'utf8'))) : undefined;
  const mapping = config ? compileMapping(config.mapping) : undefined;
  const toEvent = async (data: Uint8Array, sourceMsgId: string) => {
    const mapped = await mapping!.map(JSON.parse(Buffer.from(data).toString('utf8')));
    const event = buildEnvelope({
      flow: config!.flow,
      mapping: config!.mapping,
      output: mapped.output,
      key: mapped.key,
      sourceMsgId,
      trace: traceFromSeed(sourceMsgId),
      time: new Date(),
    });
    return { data: Buffer.from(JSON.stringify(event)), msgID: event.id };
  };
  // The client option Tally's worker uses too (no stack-capturing error object per request): the
  // relay should be the best that plain client code does, not a handicapped baseline.
  const nc = await connect({ servers, name: 'bench relay', noAsyncTraces: true });
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
    const id = m.headers?.get('Nats-Msg-Id') || String(m.seq);
    (mapping ? toEvent(m.data, id) : Promise.resolve({ data: m.data, msgID: id }))
      .then(({ data, msgID }) => js.publish(sinkSubject, data, { msgID, headers: h }))
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

interface Relay {
  stop(): Promise<void>;
  /** CPU time the process has used so far, ms (Linux /proc); undefined elsewhere. */
  cpuMs(): number | undefined;
}

function child(args: string[], env: NodeJS.ProcessEnv): Relay {
  const p = spawn(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
  return {
    stop: async () => {
      p.kill('SIGTERM');
      const timer = setTimeout(() => p.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
    cpuMs: () => cpuMsOf(p.pid),
  };
}

/** CPU time a process has used so far, ms (utime + stime from Linux /proc); undefined elsewhere. */
function cpuMsOf(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    // utime and stime, in clock ticks of 10 ms, after the parenthesised command name.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return undefined;
  }
}

export async function runFlowBench(o: FlowBenchOptions): Promise<FlowBenchResult> {
  const log = (s: string) => o.print && console.log(s);
  const nats = await startNatsServer();
  const dir = makeTempDir('bench-flow');
  const nc = await connect({ servers: nats.url });
  try {
    const jsm = await jetstreamManager(nc);
    const names = flowNames(FLOW);

    // Tally: the example flow rendered as the operator renders it, without its HTTP sink: its NATS
    // sink (the one measured) and the namespace's canonical sink the render gives every flow; its
    // streams, consumer and the namespace's streams provisioned as the operator does.
    const config = shopifyWorkerConfig({
      namespace: FLOW.namespace,
      natsUrl: nats.url,
      erpUrl: 'http://127.0.0.1:9',
      edit: (spec) => {
        spec.source = { type: 'nats', nats: { subject: 'bench.unused' } };
        spec.sinks = spec.sinks
          .filter((s) => s.type === 'nats')
          .map((s) => ({ ...s, nats: { subject: 'bench.sink.tally' } }));
      },
    });
    if (config.sinks.map((s) => s.name).join() !== `canonical-orders,${CANONICAL_SINK_NAME}`) {
      throw new Error(
        `unexpected sinks in the rendered config: ${config.sinks.map((s) => s.name).join(', ')}`,
      );
    }
    await ensureFlowNats(jsm, FLOW, { stream: config.stream, delivery: config.delivery });
    await ensureNamespaceStreams(jsm, FLOW.namespace);
    await jsm.streams.add({
      name: 'BENCH_SINK_TALLY',
      subjects: ['bench.sink.tally'],
      duplicate_window: 120e9,
    });
    const file = join(dir, 'worker.json');
    writeFileSync(file, JSON.stringify(config));
    // TALLY_BENCH_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", profiles both relays.
    const nodeArgs = process.env.TALLY_BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
    const tally: Side = {
      name: 'tally',
      sourceSubject: config.nats.ingestSubject,
      sourceStream: names.stream,
      sinkStream: 'BENCH_SINK_TALLY',
      sinkSubject: 'bench.sink.tally',
      sourceIdOf: (data) =>
        (JSON.parse(Buffer.from(data).toString('utf8')) as { tallysourceid: string }).tallysourceid,
      start: async () =>
        child([...nodeArgs, repoPath('bin/tally.mjs'), 'runtime', '--config', file], {
          ...process.env,
          TALLY_HTTP_HOST: '127.0.0.1',
          TALLY_HTTP_PORT: String(await freePort()),
          TALLY_LOG_LEVEL: o.logLevel,
        }),
    };

    // The relays: the same kind of streams and consumer (explicit acks, 1000 pending, dedupe).
    const relaySide = (name: 'nullRelay' | 'mappingRelay', token: string, mapped: boolean): Side => ({
      name,
      sourceSubject: `bench.src.${token}`,
      sourceStream: `BENCH_SRC_${token.toUpperCase()}`,
      sinkStream: `BENCH_SINK_${token.toUpperCase()}`,
      sinkSubject: `bench.sink.${token}`,
      sourceIdOf: mapped
        ? (data) =>
            (JSON.parse(Buffer.from(data).toString('utf8')) as { tallysourceid: string }).tallysourceid
        : (_d, h) => h['Nats-Msg-Id']!,
      start: async () =>
        child(
          [
            ...nodeArgs,
            repoPath('bench/flow.ts'),
            '--relay',
            nats.url,
            `BENCH_SRC_${token.toUpperCase()}`,
            'relay',
            `bench.sink.${token}`,
            ...(mapped ? [file] : []),
          ],
          process.env,
        ),
    });
    const nullSide = relaySide('nullRelay', 'null', false);
    const mappingSide = relaySide('mappingRelay', 'map', true);
    for (const side of [nullSide, mappingSide]) {
      await jsm.streams.add({
        name: side.sourceStream,
        subjects: [side.sourceSubject],
        duplicate_window: 120e9,
      });
      await jsm.streams.add({
        name: side.sinkStream,
        subjects: [side.sinkSubject],
        duplicate_window: 120e9,
      });
      await jsm.consumers.add(side.sourceStream, {
        durable_name: 'relay',
        ack_policy: AckPolicy.Explicit,
        max_ack_pending: 1000,
        ack_wait: 30e9,
      });
    }
    const sides = [nullSide, tally, mappingSide];

    const payloadBytes = benchOrder(0).length;
    const perRound = Math.max(2, Math.floor(o.messages / o.rounds));
    log(
      `flow: ${payloadBytes}-byte orders; throughput ${o.rounds} rounds x ${perRound} per side, ${IN_FLIGHT} in flight each side; worker log level ${o.logLevel}`,
    );
    const perSide = <T>(make: () => T): Record<SideName, T> => ({
      tally: make(),
      nullRelay: make(),
      mappingRelay: make(),
    });
    const totals = perSide(() => ({ messages: 0, seconds: 0 }));
    const cpu = perSide(() => [] as number[]);
    const serverCpu = perSide(() => [] as number[]);
    const roundRatios: number[] = [];
    for (let r = 0; r < o.rounds; r++) {
      // Rotate which side goes first.
      const order = [...sides.slice(r % sides.length), ...sides.slice(0, r % sides.length)];
      const rates: Record<string, number> = {};
      for (const side of order) {
        const round = await throughputRound(side, nc, o, perRound, nats.pid);
        const { messages, seconds, cpuMsPerEvent, serverCpuMsPerEvent } = round;
        if (cpuMsPerEvent !== undefined) cpu[side.name].push(cpuMsPerEvent * 1000);
        if (serverCpuMsPerEvent !== undefined) serverCpu[side.name].push(serverCpuMsPerEvent * 1000);
        totals[side.name].messages += messages - 1;
        totals[side.name].seconds += seconds;
        rates[side.name] = (messages - 1) / seconds;
      }
      roundRatios.push(rates.tally! / rates.nullRelay!);
      log(
        `  round ${r + 1}: null relay ${rates.nullRelay!.toFixed(0)}/s, tally ${rates.tally!.toFixed(0)}/s, mapping relay ${rates.mappingRelay!.toFixed(0)}/s, ratio ${roundRatios.at(-1)!.toFixed(2)}`,
      );
    }
    const throughput = (s: { messages: number; seconds: number }) => s.messages / s.seconds;
    const slower = Math.min(...sides.map((side) => throughput(totals[side.name])));
    const rate = o.rate ?? Math.max(50, Math.min(500, Math.floor(slower / 4)));
    const latencies = perSide(() => [] as number[]);
    for (let r = 0; r < 2; r++) {
      for (const side of r === 0 ? sides : [...sides].reverse()) {
        latencies[side.name].push(...(await latencyRound(side, nc, Math.ceil(o.latencyMessages / 2), rate)));
      }
    }
    const summary = (name: SideName): SideResult => {
      const ms = latencies[name].sort((a, b) => a - b);
      return {
        throughput: throughput(totals[name]),
        delivered: totals[name].messages + o.rounds,
        cpuUsPerEvent: median(cpu[name]),
        serverCpuUsPerEvent: median(serverCpu[name]),
        p50: quantile(ms, 0.5),
        p99: quantile(ms, 0.99),
      };
    };
    const work = await tallyWork(config);
    const result: FlowBenchResult = {
      work,
      payloadBytes,
      messages: perRound * o.rounds,
      latencyMessages: latencies.tally.length,
      rate,
      tally: summary('tally'),
      nullRelay: summary('nullRelay'),
      mappingRelay: summary('mappingRelay'),
      ratio: throughput(totals.tally) / throughput(totals.nullRelay),
      mappingRelayRatio: throughput(totals.mappingRelay) / throughput(totals.nullRelay),
      singleThreadBound: singleThreadBound(summary('nullRelay').cpuUsPerEvent, work),
      roundRatios,
    };
    if (o.print) {
      const row = (name: string, s: SideResult) =>
        `  ${name.padEnd(11)} ${s.throughput.toFixed(0).padStart(7)}/s   p50 ${s.p50.toFixed(2).padStart(7)} ms   p99 ${s.p99.toFixed(2).padStart(7)} ms   CPU ${s.cpuUsPerEvent?.toFixed(0).padStart(4) ?? '   ?'} µs/event (nats-server ${s.serverCpuUsPerEvent?.toFixed(0).padStart(4) ?? '   ?'} µs/event)`;
      console.log(`flow results (source stream -> sink stream; latency at ${rate}/s):`);
      console.log(row('null relay', result.nullRelay));
      console.log(row('tally', result.tally));
      console.log(row('map relay', result.mappingRelay));
      console.log(
        `  tally's own work per event (in-process): parse ${work.parseUs.toFixed(0)} µs, map + validate ${work.mapUs.toFixed(0)} µs, envelope ${work.envelopeUs.toFixed(0)} µs, serialize ${work.serializeUs.toFixed(0)} µs`,
      );
      console.log(
        `  ratio tally / null relay: ${result.ratio.toFixed(2)} (goal >= 0.80${result.ratio >= 0.8 ? ', met' : ', NOT met'}); per round ${roundRatios.map((x) => x.toFixed(2)).join(' ')}`,
      );
      console.log(
        `  mapping relay (the same per-event work written plainly on the client) / null relay: ${result.mappingRelayRatio.toFixed(2)}; tally / mapping relay: ${(result.ratio / result.mappingRelayRatio).toFixed(2)}`,
      );
      if (result.singleThreadBound !== undefined) {
        console.log(
          `  single-thread bound: null relay CPU / (null relay CPU + tally's own work) = ${result.singleThreadBound.toFixed(2)} (where a one-thread worker whose messaging costs what the null relay's does would stop)`,
        );
      }
    }
    return result;
  } finally {
    await nc.close();
    await nats.stop();
    removeTempDir(dir);
  }
}

const defaults = {
  messages: 24_000,
  rounds: 6,
  latencyMessages: 3_000,
  maxSeconds: 20,
  logLevel: 'info',
  print: true,
};

/** bench/run.ts entry: runs when no filter is given or one names the flow benchmark. */
export async function runFlowBenchCase(options: { filters: string[]; print: boolean }) {
  const wanted =
    options.filters.length === 0 ||
    options.filters.some((f) => 'flow/nats-sink'.includes(f) || f.startsWith('flow'));
  return wanted ? runFlowBench({ ...defaults, print: options.print }) : undefined;
}

if (import.meta.filename === process.argv[1]) {
  if (process.argv[2] === '--relay') {
    const [servers, stream, consumer, sinkSubject, configFile] = process.argv.slice(3) as [
      string,
      string,
      string,
      string,
      string | undefined,
    ];
    await relay(servers, stream, consumer, sinkSubject, configFile);
  } else {
    const { values } = parseArgs({
      options: {
        messages: { type: 'string', default: String(defaults.messages) },
        rounds: { type: 'string', default: String(defaults.rounds) },
        'latency-messages': { type: 'string', default: String(defaults.latencyMessages) },
        rate: { type: 'string' },
        'max-seconds': { type: 'string', default: String(defaults.maxSeconds) },
        'log-level': { type: 'string', default: defaults.logLevel },
        json: { type: 'boolean', default: false },
      },
    });
    const result = await runFlowBench({
      messages: Number(values.messages),
      rounds: Math.max(1, Number(values.rounds)),
      latencyMessages: Number(values['latency-messages']),
      ...(values.rate ? { rate: Number(values.rate) } : {}),
      maxSeconds: Number(values['max-seconds']),
      logLevel: values['log-level'],
      print: !values.json,
    });
    if (values.json) console.log(JSON.stringify(result, null, 2));
  }
}
