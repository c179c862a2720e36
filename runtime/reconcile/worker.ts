// The reconciliation worker: reads the two sides from the namespace's canonical stream, keeps the
// engine's state, and when a window becomes final publishes its exceptions and report and stores
// the report in JetStream KV. State is rebuilt by replaying the stream on start, so a restarted or
// rescheduled worker resumes exactly; reports are published with deterministic msg ids and stored
// last, so a crash between the two repeats the publish (deduplicated) instead of losing it.
//
// It runs in the worker shell (runtime/worker: HTTP, waiting for NATS, graceful stop) and publishes
// through the bus (runtime/bus), and reads through it too: bus.replay(), an ordered consumer from
// the start of the stream, filtered, on every start. A second connection of its own stays for what
// the bus does not offer: stream management (ensure/require) and the KV state.
import { jetstreamManager } from '@nats-io/jetstream';
import type { CanonicalEvent } from '../../api/envelope.ts';
import type { ReconWorkerConfig } from '../../api/worker-config.ts';
import type { Bus, BusHeaders, BusWriter, ReplayHandle } from '../bus/types.ts';
import { openKvState, type StateStore } from '../flow/state/kv-store.ts';
import { parseTraceparent } from '../flow/trace.ts';
import { listenAddress } from '../http/server.ts';
import { reconStreamConfig } from '../nats/canonical.ts';
import { createLogger, type Logger, messageLogger, withKeys } from '../telemetry/logger.ts';
import { connectNats, ensureStream, requireStream, type WorkerConnection } from '../worker/nats.ts';
import { DEFAULT_GRACE_MS, startWorkerShell } from '../worker/shell.ts';
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
  /** Aborting stops the worker gracefully, during start-up too (same as handle.stop()). */
  signal?: AbortSignal;
  /** How long stop() waits for a report being published; default 20 s. */
  graceMs?: number;
}

export interface ReconWorkerHandle {
  port: number;
  registry: ReconMetrics['registry'];
  ready(): boolean;
  /** Resolves once the worker has read everything in the stream at start (never when stopped first). */
  caughtUp: Promise<void>;
  /** Latest report of a window as the worker holds it (final or preliminary). */
  report(window: string): WindowReport | undefined;
  /** Graceful stop; idempotent. */
  stop(): Promise<void>;
  /** Resolves once the worker has stopped (after stop() or the signal). */
  readonly stopped: Promise<void>;
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
const READER_DRAIN_MS = 1_000;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export interface ReconCoreDeps {
  config: ReconWorkerConfig;
  engine: Reconciler;
  bus: Pick<BusWriter, 'publish'>;
  store: StateStore;
  now: () => number;
  log: Logger;
  metrics: ReconMetrics;
}

/** A message of the canonical stream, as far as the core reads it. */
export interface CanonicalMessage {
  seq: number;
  json<T>(): T;
}

/**
 * The worker without its connections: events in, reports out. `tick()` runs one pass over the
 * windows (a second call while one runs joins it); `idle()` is the pass in progress, for stop.
 */
export function createReconCore(deps: ReconCoreDeps) {
  const { config, engine, bus, store, now, log, metrics } = deps;
  const policy = `${config.policy.namespace}/${config.policy.name}`;
  // Final reports already published, by window: their versions continue from here.
  const finals = new Map<string, WindowReport>();
  const preliminary = new Map<string, string>();
  const dirty = new Set<string>();
  let pass: Promise<void> | undefined;
  let stopped = false;

  async function load(): Promise<void> {
    for await (const key of store.keys('report.*')) {
      const entry = await store.get<WindowReport>(key);
      if (entry) finals.set(key.slice('report.'.length), entry.value);
    }
  }

  function ingest(m: CanonicalMessage): void {
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
    else if (result.reason !== 'stale_version') {
      // The event's subject is its business key: the one thing to search the logs for.
      const traceId = parseTraceparent(ev.traceparent)?.traceId;
      messageLogger(log, { businessKey: ev.subject, ...(traceId ? { traceId } : {}) }).warn(
        { eventId: ev.id, side, reason: result.reason },
        'event not reconciled',
      );
    }
  }

  async function publishFinal(window: string, report: WindowReport): Promise<void> {
    const kind = report.version > 1 ? 'amendment' : 'final';
    for (const ex of engine.exceptions(window, report.version)) {
      const headers: BusHeaders = {
        'Tally-Policy': policy,
        'Tally-Window': window,
        'Tally-Outcome': ex.outcome,
      };
      await bus.publish(config.nats.exceptionsSubject, encoder.encode(JSON.stringify(ex)), {
        msgId: `exc:${ex.id}:v${report.version}`,
        headers,
      });
    }
    await bus.publish(config.nats.reportsSubject, encoder.encode(JSON.stringify(report)), {
      msgId: `report:${policy}:${window}:v${report.version}`,
    });
    await store.put(REPORT_KEY(window), report);
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

  async function runPass(): Promise<void> {
    try {
      const t = now();
      for (const window of engine.windows()) {
        // Stopping waits for the publish in progress only, not for the windows after it.
        if (stopped) return;
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
            await store.put(PRELIMINARY_KEY(window), report);
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
      log.error({ err }, 'publishing reports failed; will retry');
    }
  }

  return {
    load,
    ingest,
    tick(): Promise<void> {
      if (stopped) return Promise.resolve();
      pass ??= runPass().finally(() => {
        pass = undefined;
      });
      return pass;
    },
    /** The pass in progress (none after stop()): resolves when it ends, never polls. */
    idle(): Promise<void> {
      return pass ?? Promise.resolve();
    },
    /** No pass starts after this; the one in progress stops after its current window. */
    stop(): void {
      stopped = true;
    },
    report(window: string): WindowReport | undefined {
      return (
        finals.get(window) ?? (preliminary.has(window) ? JSON.parse(preliminary.get(window)!) : undefined)
      );
    },
  };
}

export async function runReconWorker(
  config: ReconWorkerConfig,
  opts: ReconWorkerOptions = {},
): Promise<ReconWorkerHandle> {
  const env = opts.env ?? process.env;
  const policy = `${config.policy.namespace}/${config.policy.name}`;
  // Every line names the policy once, whoever made the logger.
  const log = opts.logger ? withKeys(opts.logger, { policy }) : createLogger({ policy });
  const metrics = createReconMetrics(policy, { processMetrics: opts.processMetrics ?? true });
  const engine = new Reconciler(config.policy.name, config.spec);
  const address = listenAddress(config.http.port, env);

  let conn: WorkerConnection | undefined;
  let core: ReturnType<typeof createReconCore> | undefined;
  let reader: Bus | undefined;
  let replay: ReplayHandle | undefined;
  let timer: NodeJS.Timeout | undefined;
  let caughtUp = false;
  let markCaughtUp!: () => void;
  const caughtUpPromise = new Promise<void>((resolve) => {
    markCaughtUp = resolve;
  });

  // Stop reading and ticking, then wait for the pass in progress (no polling: its promise).
  const halt = async () => {
    clearInterval(timer);
    core?.stop();
    await replay?.stop().catch(() => undefined);
    // A report half published is repeated by the next start (msg ids dedupe it); wait for it anyway.
    await core?.idle();
  };

  const shell = await startWorkerShell({
    name: `tally-recon ${policy}`,
    servers: config.nats.servers,
    logger: log,
    registry: metrics.registry,
    address,
    checks: () => ({ canonicalStream: (conn?.connected() && reader?.connected()) ?? false, caughtUp }),
    ...(opts.signal ? { signal: opts.signal } : {}),
    graceMs: opts.graceMs ?? DEFAULT_GRACE_MS,
    drain: () => halt(),
    // Nothing of ours waits on the worker's own connection (reads and publishes go through the
    // bus, KV writes are awaited), so it gets a short drain and leaves the close allowance to the bus.
    close: async () => {
      await conn?.close(READER_DRAIN_MS);
    },
  });

  const handle: ReconWorkerHandle = {
    port: shell.port,
    registry: metrics.registry,
    ready: () => shell.ready(),
    caughtUp: caughtUpPromise,
    report: (window) => core?.report(window),
    stop: () => shell.stop(),
    stopped: shell.stopped,
  };

  try {
    const bus = await shell.connect();
    reader = bus;
    const live = await shell.until(
      connectNats({
        servers: config.nats.servers,
        name: `tally-recon ${policy} state`,
        logger: log,
        signal: shell.signal,
      }),
    );
    conn = live;
    const { nc } = live;
    const jsm = await shell.until(jetstreamManager(nc));
    // The operator creates both streams first; a worker started without it (tests, benchmarks)
    // creates the one it writes to, and fails naming why when it cannot.
    await shell.until(ensureStream(jsm, reconStreamConfig(config.policy.namespace)));
    const start = await shell.until(
      requireStream(jsm, config.nats.canonicalStream, 'the operator (or tally run)'),
    );
    const store = await shell.until(openKvState(nc, config.nats.stateBucket, { history: 5 }));
    const now = opts.now ?? Date.now;
    const started = createReconCore({ config, engine, bus, store, now, log, metrics });
    await shell.until(started.load());
    core = started;

    const reading = await shell.until(
      bus.replay(
        config.nats.canonicalStream,
        config.nats.filterSubjects,
        (m) => started.ingest({ seq: m.streamSeq, json: <T>() => JSON.parse(decoder.decode(m.data)) as T }),
        { signal: shell.signal },
      ),
    );
    replay = reading;
    void reading.caughtUp.then(() => {
      caughtUp = true;
      markCaughtUp();
      log.info(
        { keys: engine.size, windows: engine.windows().length, read: start.state.messages },
        'caught up with the canonical stream',
      );
    });
    timer = setInterval(() => {
      if (caughtUp) void started.tick();
    }, opts.tickMs ?? 1000);
    void caughtUpPromise.then(() => started.tick());
    // Stopped while the last step finished: the drain ran before any of this existed.
    if (shell.stopping()) {
      await halt();
      return handle;
    }
    log.info({ stream: config.nats.canonicalStream, port: shell.port }, 'reconciliation worker started');
  } catch (err) {
    // Stopped during start-up: the handle reports it stopped; anything else is a failed start.
    const stoppedFirst = shell.stopping();
    await shell.stop();
    if (stoppedFirst) return handle;
    throw err;
  }
  return handle;
}
