// Reconciliation benchmark: one channel-day of N channel records against N ERP records (1 %
// missing, 1 % mismatched) through the engine, next to a plain in-memory hash join of the same
// data in the same run; then the worker's streaming rate over JetStream next to a bare consumer
// that only parses the same messages. Ratios, not absolute times, are the result.
//   node bench/run.ts reconcile            (N = 1,000,000; TALLY_BENCH_RECORDS overrides)
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { pino } from 'pino';
import { renderPolicyWorkerConfig } from '../operator/render/worker-config.ts';
import { canonicalStreamConfig, canonicalSubject } from '../runtime/nats/canonical.ts';
import { Reconciler } from '../runtime/reconcile/reconciler.ts';
import { ordersVsInvoicesPolicy } from '../runtime/reconcile/testing.ts';
import type { ReconEvent } from '../runtime/reconcile/types.ts';
import { runReconWorker } from '../runtime/reconcile/worker.ts';
import { startNatsServer } from '../test/harness/nats.ts';

const DAY = '2026-11-20';

/** Deterministic data: record i of each side; 1 % of keys lack the ERP side, 1 % differ by 1.00. */
function* records(n: number): Generator<ReconEvent> {
  for (let i = 0; i < n; i++) {
    const cents = 1000 + (i % 50_000);
    const placedAt = new Date(Date.UTC(2026, 10, 20, 14, 0, 0) + (i % 36_000) * 1000).toISOString();
    yield {
      side: 'channel',
      seq: 2 * i + 1,
      eventId: `c${i}`,
      channel: i % 2 ? 'shopify-us' : 'amazon-us',
      flow: 'orders',
      data: {
        orderId: `o${i}`,
        placedAt,
        totals: { grandTotal: { amount: (cents / 100).toFixed(2), currency: 'USD' } },
      },
    };
    if (i % 100 === 7) continue; // missing in the ERP
    const erpCents = i % 100 === 42 ? cents + 100 : cents; // re-priced
    yield {
      side: 'erp',
      seq: 2 * i + 2,
      eventId: `e${i}`,
      channel: 'erp',
      flow: 'invoices',
      data: {
        orderId: `o${i}`,
        issuedAt: placedAt,
        totals: { grandTotal: { amount: (erpCents / 100).toFixed(2), currency: 'USD' } },
      },
    };
  }
}

function peakRss(): { sample: () => void; peakMb: () => number } {
  let peak = 0;
  return {
    sample: () => {
      peak = Math.max(peak, process.memoryUsage().rss);
    },
    peakMb: () => Math.round(peak / 2 ** 20),
  };
}

function engineRun(n: number) {
  globalThis.gc?.();
  const mem = peakRss();
  const t0 = performance.now();
  const spec = ordersVsInvoicesPolicy();
  spec.compare = [spec.compare[0]!];
  const r = new Reconciler('bench', spec);
  let count = 0;
  for (const ev of records(n)) {
    r.ingest(ev);
    if (++count % 100_000 === 0) mem.sample();
  }
  const report = r.report(DAY, { final: true, version: 1 });
  mem.sample();
  const secs = (performance.now() - t0) / 1000;
  return { records: count, secs, rate: count / secs, peakMb: mem.peakMb(), totals: report.totals };
}

/** The baseline: a Map from key to both amounts in cents, then one pass comparing them. */
function hashJoinRun(n: number) {
  globalThis.gc?.();
  const mem = peakRss();
  const t0 = performance.now();
  const map = new Map<string, { c?: number; e?: number }>();
  let count = 0;
  for (const ev of records(n)) {
    const data = ev.data as { orderId: string; totals: { grandTotal: { amount: string } } };
    const cents = Math.round(Number(data.totals.grandTotal.amount) * 100);
    const entry = map.get(data.orderId) ?? {};
    if (ev.side === 'channel') entry.c = cents;
    else entry.e = cents;
    map.set(data.orderId, entry);
    if (++count % 100_000 === 0) mem.sample();
  }
  let matched = 0;
  let mismatched = 0;
  let missing = 0;
  for (const v of map.values()) {
    if (v.c === undefined || v.e === undefined) missing++;
    else if (v.c === v.e) matched++;
    else mismatched++;
  }
  mem.sample();
  const secs = (performance.now() - t0) / 1000;
  return {
    records: count,
    secs,
    rate: count / secs,
    peakMb: mem.peakMb(),
    totals: { matched, mismatched, missing },
  };
}

async function streamingRun(n: number) {
  const nats = await startNatsServer();
  const nc = await connect({ servers: nats.url });
  try {
    const ns = 'bench';
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add(canonicalStreamConfig(ns));
    const js = jetstream(nc);
    let published = 0;
    const pending: Promise<unknown>[] = [];
    for (const ev of records(n)) {
      const entity = ev.side === 'channel' ? 'Order' : 'Invoice';
      const body = JSON.stringify({
        id: ev.eventId,
        tallyentity: entity,
        tallychannel: ev.channel,
        tallyflow: `${ns}/${ev.flow}`,
        data: ev.data,
      });
      pending.push(js.publish(canonicalSubject(ns, entity, ev.channel), body));
      if (pending.length >= 2000) await Promise.all(pending.splice(0));
      published++;
    }
    await Promise.all(pending);

    // Baseline: a bare ordered consumer that parses every message.
    let t0 = performance.now();
    const bare = await js.consumers.get(canonicalStreamConfig(ns).name);
    const it = await bare.consume({ max_messages: 512 });
    let read = 0;
    for await (const m of it) {
      m.json();
      if (++read === published) break;
    }
    await it.close();
    const bareSecs = (performance.now() - t0) / 1000;

    const spec = ordersVsInvoicesPolicy({
      channel: {
        entity: 'Order',
        channels: ['shopify-us', 'amazon-us'],
        keyFields: ['orderId'],
        businessTimeField: 'placedAt',
      },
      erp: { entity: 'Invoice', channels: ['erp'], keyFields: ['orderId'], businessTimeField: 'issuedAt' },
    });
    // The worker's config as the operator renders it for this policy.
    const config = renderPolicyWorkerConfig({ namespace: ns, name: 'bench', spec, natsServers: [nats.url] });
    t0 = performance.now();
    const worker = await runReconWorker(config, {
      logger: pino({ level: 'silent' }),
      env: { TALLY_HTTP_PORT: '0', TALLY_HTTP_HOST: '127.0.0.1' },
      now: () => Date.parse('2026-11-21T12:00:00Z'),
      processMetrics: false,
    });
    await worker.caughtUp;
    const workerSecs = (performance.now() - t0) / 1000;
    await worker.stop();
    return { records: published, bareRate: published / bareSecs, workerRate: published / workerSecs };
  } finally {
    await nc.close();
    await nats.stop();
  }
}

export async function runReconcileBench(options: { filters: string[]; print: boolean }): Promise<unknown> {
  if (
    options.filters.length &&
    !options.filters.some((f) => 'reconcile'.includes(f) || f.startsWith('reconcile'))
  )
    return undefined;
  const n = Number(process.env.TALLY_BENCH_RECORDS ?? 1_000_000);
  const streamN = Number(process.env.TALLY_BENCH_STREAM_RECORDS ?? 100_000);
  const join = hashJoinRun(n);
  const engine = engineRun(n);
  const streaming = await streamingRun(streamN);
  const result = {
    records: n,
    engine,
    hashJoin: join,
    engineVsHashJoin: engine.rate / join.rate,
    streaming: { ...streaming, workerVsBare: streaming.workerRate / streaming.bareRate },
  };
  if (options.print) {
    const f = (x: number) => Math.round(x).toLocaleString('en-US');
    console.log(
      `\nreconcile: ${f(n)} channel records against ${f(n)} ERP records (1 % missing, 1 % mismatched)`,
    );
    console.log(
      `  engine     ${f(engine.rate)} records/s, peak RSS ${engine.peakMb} MB  (${engine.secs.toFixed(1)} s)`,
    );
    console.log(
      `  hash join  ${f(join.rate)} records/s, peak RSS ${join.peakMb} MB  (${join.secs.toFixed(1)} s)`,
    );
    console.log(`  ratio engine/hash-join: ${result.engineVsHashJoin.toFixed(2)}`);
    console.log(`  engine totals: ${JSON.stringify(engine.totals)}`);
    console.log(
      `  streaming over JetStream (${f(streamN)} events): worker ${f(streaming.workerRate)}/s, bare consumer ${f(streaming.bareRate)}/s, ratio ${result.streaming.workerVsBare.toFixed(2)}`,
    );
  }
  return result;
}
