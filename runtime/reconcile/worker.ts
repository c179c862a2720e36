// The reconciliation worker: reads the two sides from the namespace's canonical stream, keeps the
// engine's state, and when a window becomes final publishes its exceptions and report and stores
// the report in JetStream KV. State is rebuilt by replaying the stream on start, so a restarted or
// rescheduled worker resumes exactly; reports are published with deterministic msg ids and stored
// last, so a crash between the two repeats the publish (deduplicated) instead of losing it.
import { createServer, type Server } from 'node:http';
import { type JetStreamManager, type JsMsg, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import { connect, type NatsConnection, headers as natsHeaders } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { CanonicalEvent } from '../../api/envelope.ts';
import type { ReconWorkerConfig } from '../../api/worker-config.ts';
import { reconStreamConfig } from '../nats/canonical.ts';
import { createLogger } from '../telemetry/logger.ts';
import { createReconMetrics, type ReconMetrics } from './metrics.ts';
import { Reconciler } from './reconciler.ts';
import type { ReconEvent, Side, WindowReport } from './types.ts';
import { isFinal } from './windows.ts';

export interface ReconWorkerOptions {
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  /** Injected clock (epoch ms); default Date.now. */
  now?: () => number;
  /** How often windows are checked for finality; default 1000 ms. */
  tickMs?: number;
  processMetrics?: boolean;
}

export interface ReconWorkerHandle {
  port: number;
  registry: ReconMetrics['registry'];
  ready(): boolean;
  /** Resolves once the worker has read everything in the stream at start. */
  caughtUp: Promise<void>;
  /** Latest report of a window as the worker holds it (final or preliminary). */
  report(window: string): WindowReport | undefined;
  stop(): Promise<void>;
}

export const REPORT_KEY = (window: string) => `report.${window}`;
export const PRELIMINARY_KEY = (window: string) => `preliminary.${window}`;

/** Which side a canonical event belongs to, or undefined when the policy does not select it. */
export function sideOf(
  config: ReconWorkerConfig,
  ev: Pick<CanonicalEvent, 'tallyentity' | 'tallychannel' | 'tallyflow'>,
): Side | undefined {
  const matches = (side: Side) => {
    const sel = config.spec[side];
    if (sel.entity !== ev.tallyentity) return false;
    if (sel.channels?.length && !sel.channels.includes(ev.tallychannel)) return false;
    const flowName = ev.tallyflow.split('/').pop() ?? '';
    if (sel.flows?.length && !sel.flows.includes(flowName)) return false;
    return true;
  };
  // A side naming the channel explicitly wins over a side that takes every channel.
  const c = matches('channel');
  const e = matches('erp');
  if (c && e) return config.spec.erp.channels?.includes(ev.tallychannel) ? 'erp' : 'channel';
  return c ? 'channel' : e ? 'erp' : undefined;
}

const stable = (r: WindowReport) => JSON.stringify(r);

/** Reports and exceptions need a stream to land in; create it when the operator has not yet. */
async function ensureStream(jsm: JetStreamManager, cfg: ReturnType<typeof reconStreamConfig>): Promise<void> {
  try {
    await jsm.streams.info(cfg.name);
  } catch {
    await jsm.streams.add(cfg).catch(() => undefined); // a concurrent creator won
  }
}

export async function runReconWorker(
  config: ReconWorkerConfig,
  opts: ReconWorkerOptions = {},
): Promise<ReconWorkerHandle> {
  const env = opts.env ?? process.env;
  const policy = `${config.policy.namespace}/${config.policy.name}`;
  const log = opts.logger ?? createLogger({ flow: policy, channel: 'reconciliation' });
  const now = opts.now ?? Date.now;
  const metrics = createReconMetrics(policy, { processMetrics: opts.processMetrics ?? true });
  const engine = new Reconciler(config.policy.name, config.spec);

  const nc: NatsConnection = await connect({
    servers: config.nats.servers,
    name: `tally-recon-${config.policy.name}`,
    maxReconnectAttempts: -1,
  });
  const js = jetstream(nc);
  const kv: KV = await new Kvm(nc).create(config.nats.stateBucket, { history: 5 });

  // Final reports already published, by window: their versions continue from here.
  const finals = new Map<string, WindowReport>();
  for await (const key of await kv.keys('report.*')) {
    const entry = await kv.get(key);
    if (entry?.value.length) finals.set(key.slice('report.'.length), entry.json<WindowReport>());
  }
  const preliminary = new Map<string, string>();
  const dirty = new Set<string>();
  let caughtUp = false;
  let markCaughtUp!: () => void;
  const caughtUpPromise = new Promise<void>((resolve) => {
    markCaughtUp = resolve;
  });
  const jsm = await jetstreamManager(nc);
  await ensureStream(jsm, reconStreamConfig(config.policy.namespace));
  const start = await jsm.streams.info(config.nats.canonicalStream).catch((cause: unknown) => {
    throw new Error(
      `canonical stream ${config.nats.canonicalStream} is missing: the operator (or tally run) creates it; ${(cause as Error).message}`,
      { cause },
    );
  });
  const consumer = await js.consumers.get(config.nats.canonicalStream, {
    filter_subjects: config.nats.filterSubjects,
  });
  const messages = await consumer.consume({ max_messages: 512 });
  // Consumer (not stream) sequence: a filtered consumer's stream position runs ahead of what
  // it delivers.
  let lastDelivered = 0;
  const reading = (async () => {
    for await (const m of messages) {
      handle(m);
      lastDelivered = m.info.deliverySequence;
    }
  })();
  // Caught up when the server has nothing pending for our filters and we processed all it sent;
  // a stream may hold nothing for this policy, so waiting for a message would never end.
  const catchUp = setInterval(() => {
    if (caughtUp) return;
    void consumer
      .info(false)
      .then((info) => {
        if (!caughtUp && info.num_pending === 0 && info.delivered.consumer_seq <= lastDelivered) {
          caughtUp = true;
          clearInterval(catchUp);
          markCaughtUp();
          log.info(
            { keys: engine.size, windows: engine.windows().length, read: start.state.messages },
            'caught up with the canonical stream',
          );
        }
      })
      .catch(() => undefined);
  }, 100);

  function handle(m: JsMsg): void {
    let ev: CanonicalEvent;
    try {
      ev = m.json<CanonicalEvent>();
    } catch {
      metrics.events.inc({ policy, side: 'unknown', result: 'invalid_json' });
      return;
    }
    const side = sideOf(config, ev);
    if (!side) {
      metrics.events.inc({ policy, side: 'none', result: 'unselected' });
      return;
    }
    const event: ReconEvent = {
      side,
      seq: m.seq,
      eventId: ev.id,
      channel: ev.tallychannel,
      flow: ev.tallyflow,
      data: (ev.data ?? {}) as Record<string, unknown>,
    };
    const result = engine.ingest(event);
    metrics.events.inc({ policy, side, result: result.accepted ? 'accepted' : result.reason });
    if (result.accepted) dirty.add(result.window);
    else if (result.reason !== 'stale_version')
      log.warn({ eventId: ev.id, side, reason: result.reason }, 'event not reconciled');
  }

  async function publishFinal(window: string, report: WindowReport): Promise<void> {
    const kind = report.version > 1 ? 'amendment' : 'final';
    for (const ex of engine.exceptions(window, report.version)) {
      const h = natsHeaders();
      h.set('Tally-Policy', policy);
      h.set('Tally-Window', window);
      h.set('Tally-Outcome', ex.outcome);
      await js.publish(config.nats.exceptionsSubject, JSON.stringify(ex), {
        msgID: `exc:${ex.id}:v${report.version}`,
        headers: h,
      });
    }
    await js.publish(config.nats.reportsSubject, JSON.stringify(report), {
      msgID: `report:${policy}:${window}:v${report.version}`,
    });
    await kv.put(REPORT_KEY(window), JSON.stringify(report));
    finals.set(window, report);
    metrics.reports.inc({ policy, kind });
    log.info(
      {
        window,
        version: report.version,
        kind,
        matchRate: report.totals.matchRate,
        breached: report.breached,
      },
      kind === 'final' ? 'window final: report published' : 'late events: amended report published',
    );
  }

  let ticking = false;
  async function tick(): Promise<void> {
    if (!caughtUp || ticking) return;
    ticking = true;
    try {
      const t = now();
      for (const window of engine.windows()) {
        const stored = finals.get(window);
        if (isFinal(window, config.spec.window, t)) {
          if (stored && !dirty.has(window)) continue;
          const version = stored ? stored.version : 1;
          let report = engine.report(window, { final: true, version, amendments: version - 1 });
          if (stored && stable(report) === stable(stored)) {
            dirty.delete(window);
            continue;
          }
          if (stored)
            report = engine.report(window, { final: true, version: version + 1, amendments: version });
          await publishFinal(window, report);
          dirty.delete(window);
        } else if (dirty.has(window)) {
          const report = engine.report(window, { final: false, version: 0 });
          const text = JSON.stringify(report);
          if (preliminary.get(window) !== text) {
            await kv.put(PRELIMINARY_KEY(window), text);
            preliminary.set(window, text);
          }
          dirty.delete(window);
        }
      }
      const latest = [...finals.keys()].sort().pop();
      if (latest) metrics.observeLatest(finals.get(latest)!, t);
      let open = 0;
      for (const r of finals.values())
        open += r.totals.mismatched + r.totals.missingErp + r.totals.missingChannel;
      metrics.openExceptions.set({ policy }, open);
    } catch (err) {
      log.error({ err: (err as Error).message }, 'publishing reports failed; will retry');
    } finally {
      ticking = false;
    }
  }
  const timer = setInterval(() => void tick(), opts.tickMs ?? 1000);
  void caughtUpPromise.then(() => tick());

  const server: Server = createServer((req, res) => {
    if (req.url === '/metrics') {
      void metrics.registry
        .metrics()
        .then((text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text));
    } else if (req.url === '/healthz') {
      res.writeHead(200).end('ok');
    } else if (req.url === '/readyz') {
      const ok = caughtUp && !nc.isClosed();
      res.writeHead(ok ? 200 : 503).end(ok ? 'ok' : 'catching up');
    } else {
      res.writeHead(404).end();
    }
  });
  const port = Number(env.TALLY_HTTP_PORT ?? config.http.port);
  await new Promise<void>((resolve) => server.listen(port, env.TALLY_HTTP_HOST ?? '0.0.0.0', resolve));
  const address = server.address();

  let stopping: Promise<void> | undefined;
  return {
    port: typeof address === 'object' && address ? address.port : port,
    registry: metrics.registry,
    ready: () => caughtUp && !nc.isClosed(),
    caughtUp: caughtUpPromise,
    report(window) {
      return (
        finals.get(window) ?? (preliminary.has(window) ? JSON.parse(preliminary.get(window)!) : undefined)
      );
    },
    stop() {
      stopping ??= (async () => {
        clearInterval(timer);
        clearInterval(catchUp);
        await messages.close();
        await reading.catch(() => undefined);
        // Wait for a tick in progress so a report is not half published.
        while (ticking) await new Promise((r) => setTimeout(r, 20));
        await new Promise((resolve) => server.close(resolve));
        await nc.drain().catch(() => undefined);
        log.info('stopped');
      })();
      return stopping;
    },
  };
}
