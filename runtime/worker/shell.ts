// The shell every worker (flow, reconciliation) runs in: one HTTP server with /metrics, /healthz,
// /readyz and the source's routes; the bus, waited for while NATS is away (readiness says so); and
// a graceful stop on a signal or abort that is idempotent and bounded. The signal is watched from
// the first moment, so a pod stopped during start-up stops then instead of waiting for SIGKILL.
import type { Registry } from 'prom-client';
import { connectJetStreamBus } from '../bus/jetstream.ts';
import type { Bus } from '../bus/types.ts';
import { type HttpServerHandle, type Readiness, type RouteHandler, startHttpServer } from '../http/server.ts';
import type { Logger } from '../telemetry/logger.ts';

export const DEFAULT_GRACE_MS = 20_000;
/** Closing connections after the grace period (the bus drains for at most 5 s). */
export const DEFAULT_CLOSE_MS = 5_000;
/** Drain hooks bounded by the grace period themselves finish a little after it; not late yet. */
const DRAIN_SLACK_MS = 250;

export interface WorkerShellOptions {
  /** NATS client name, e.g. `tally-flow ns/name`. */
  name: string;
  servers: string[];
  logger: Logger;
  registry: Registry;
  address: { host: string; port: number };
  /** Exact paths served besides /metrics, /healthz and /readyz. */
  routes?: ReadonlyMap<string, RouteHandler>;
  /** The worker's own readiness checks; the shell adds `nats` and `accepting`. */
  checks?: () => Record<string, boolean>;
  /** Aborting stops the worker gracefully, during start-up too. */
  signal?: AbortSignal;
  /** How long stop() lets work in progress finish; default 20 s. */
  graceMs?: number;
  /** How long closing connections may take after that; default 5 s. */
  closeMs?: number;
  /** Connects the bus, retrying until the signal aborts; default the JetStream bus. */
  connect?: (signal: AbortSignal) => Promise<Bus>;
  /**
   * Stop taking work and finish what is in progress, given the grace period and bounded by it.
   * Known from the start (not registered later) so a stop during start-up runs it too.
   */
  drain?: (graceMs: number) => Promise<void>;
  /** Close what the worker opened; after drain, before the bus closes. */
  close?: () => Promise<void>;
}

export interface WorkerShell {
  readonly port: number;
  /** Aborted once stopping begins: start-up steps give up on it. */
  readonly signal: AbortSignal;
  stopping(): boolean;
  /** The bus once connected. */
  bus(): Bus | undefined;
  /** The bus, waiting while NATS is away; rejects with the abort reason when stopped first. */
  connect(): Promise<Bus>;
  /** `promise`, or a rejection with the abort reason as soon as stopping begins. */
  until<T>(promise: Promise<T>): Promise<T>;
  readiness(): Readiness;
  ready(): boolean;
  /** Graceful stop; idempotent. */
  stop(): Promise<void>;
  /** Resolves once stopped. */
  readonly stopped: Promise<void>;
}

const settled = () => true;

/** True when `work` settles (either way: callers log its errors) within ms; the timer is always cleared. */
async function within(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([work.then(settled, settled), late]);
  } finally {
    clearTimeout(timer);
  }
}

export async function startWorkerShell(options: WorkerShellOptions): Promise<WorkerShell> {
  const log = options.logger;
  const graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
  const closeMs = options.closeMs ?? DEFAULT_CLOSE_MS;
  const stopping$ = new AbortController();
  let bus: Bus | undefined;
  let connecting: Promise<Bus> | undefined;
  let server: HttpServerHandle | undefined;
  let stopPromise: Promise<void> | undefined;
  let resolveStopped!: () => void;
  const stopped = new Promise<void>((resolve) => {
    resolveStopped = resolve;
  });

  const readiness = (): Readiness => {
    const checks = {
      nats: bus?.connected() ?? false,
      ...options.checks?.(),
      accepting: !stopping$.signal.aborted,
    };
    return { ready: Object.values(checks).every(Boolean), checks };
  };

  const until = <T>(promise: Promise<T>): Promise<T> => {
    const signal = stopping$.signal;
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  };

  const connectBus =
    options.connect ??
    ((signal: AbortSignal) =>
      connectJetStreamBus({ servers: options.servers, name: options.name, logger: log, signal }));

  // Listening starts before the signal is watched, so a stop at any point has a server to close.
  const listening = startHttpServer(
    { registry: options.registry, readiness, routes: options.routes ?? new Map(), logger: log },
    options.address,
  );
  const stop = (): Promise<void> => {
    stopPromise ??= (async () => {
      stopping$.abort();
      options.signal?.removeEventListener('abort', onAbort);
      log.info({ graceMs }, 'stopping: no new work; finishing what is in progress');
      const srv = server ?? (await listening.catch(() => undefined));
      const drained = Promise.all([
        srv?.close(graceMs),
        options.drain?.(graceMs).catch((err: unknown) => {
          log.warn({ err }, 'finishing work in progress failed; stopping anyway');
        }),
      ]);
      if (!(await within(drained, graceMs + DRAIN_SLACK_MS)))
        log.warn({ graceMs }, 'work still in progress after the grace period; stopping anyway');
      const closed = (async () => {
        await options.close?.().catch((err: unknown) => {
          log.warn({ err }, 'closing failed; stopping anyway');
        });
        const live = bus ?? (await connecting?.catch(() => undefined));
        await live?.close().catch((err: unknown) => {
          log.warn({ err }, 'closing the NATS connection failed');
        });
      })();
      if (!(await within(closed, closeMs)))
        log.warn({ closeMs }, 'connections not closed in time; leaving them to the process exit');
      log.info('stopped');
      resolveStopped();
    })();
    return stopPromise;
  };
  // Watched before anything is awaited: a signal during start-up stops the worker right there.
  const onAbort = () => void stop();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) onAbort();

  try {
    server = await listening;
  } catch (err) {
    // What the worker opened before (sinks, stores) is closed by the same path as a stop.
    await stop();
    throw err;
  }

  return {
    port: server.port,
    signal: stopping$.signal,
    stopping: () => stopping$.signal.aborted,
    bus: () => bus,
    connect() {
      connecting ??= (async () => {
        const attempt = connectBus(stopping$.signal);
        try {
          bus = await until(attempt);
          return bus;
        } catch (err) {
          // A bus that connects after all is closed, not leaked.
          void attempt.then((late) => late.close()).catch(() => {});
          throw err;
        }
      })();
      return connecting;
    },
    until,
    readiness,
    ready: () => readiness().ready,
    stop,
    stopped,
  };
}
