// NATS pieces a worker needs besides the bus (runtime/bus): a plain connection for what the bus does
// not offer (JetStream management, KV), made with the same wait-while-away
// behaviour as the bus, and a stream the worker writes to, created when absent.
import {
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  type StreamConfig,
} from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { connectWithRetry } from '../bus/connect.ts';
import { WorkerError, WorkerErrorCode } from './errors.ts';

const CONNECT_TIMEOUT_MS = 5_000;

export interface NatsConnectOptions {
  servers: string[];
  /** Client name shown by the server. */
  name: string;
  logger: Logger;
  /** Stops the attempts (AbortError). */
  signal?: AbortSignal;
  /** Wait between attempts, growing to at most 10 s; default 1 s. */
  waitMs?: number;
}

export interface WorkerConnection {
  readonly nc: NatsConnection;
  /** True while connected (for readiness); the client reconnects by itself. */
  connected(): boolean;
  /** Drain, or close when draining takes longer than timeoutMs (e.g. NATS is away). */
  close(timeoutMs: number): Promise<void>;
}

/** Connect, retrying until NATS answers or the signal aborts; then the client reconnects forever. */
export async function connectNats(options: NatsConnectOptions): Promise<WorkerConnection> {
  return watch(
    await connectWithRetry({
      servers: options.servers,
      name: options.name,
      logger: options.logger,
      signal: options.signal,
      waitMs: options.waitMs,
      timeoutMs: CONNECT_TIMEOUT_MS,
    }),
  );
}

function watch(nc: NatsConnection): WorkerConnection {
  let up = true;
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') up = false;
      else if (s.type === 'reconnect') up = true;
    }
  })().catch(() => {});
  return {
    nc,
    connected: () => up && !nc.isClosed(),
    async close(timeoutMs) {
      if (nc.isClosed()) return;
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((resolve) => {
        timer = setTimeout(() => resolve('late'), timeoutMs);
      });
      // Draining flushes what is pending; with NATS away it would wait for a reconnect.
      const drained = await Promise.race([nc.drain().then(() => 'drained' as const), late]).catch(
        () => 'failed' as const,
      );
      clearTimeout(timer);
      if (drained !== 'drained' && !nc.isClosed()) await nc.close().catch(() => {});
    },
  };
}

const isStreamNotFound = (err: unknown) =>
  err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound;

/**
 * A stream the worker writes to: kept as it is when it exists (the operator owns its settings),
 * created when it does not. Any other outcome is a WorkerError with the server's answer as cause.
 */
export async function ensureStream(
  jsm: JetStreamManager,
  config: Partial<StreamConfig> & { name: string; subjects: string[] },
): Promise<void> {
  try {
    await jsm.streams.info(config.name);
    return;
  } catch (err) {
    if (!isStreamNotFound(err)) {
      throw new WorkerError(
        WorkerErrorCode.StreamUnavailable,
        `cannot read stream ${config.name}: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }
  try {
    await jsm.streams.add(config);
  } catch (err) {
    // A concurrent creator (the operator, another replica) may have won: then all is well.
    const exists = await jsm.streams.info(config.name).then(
      () => true,
      () => false,
    );
    if (exists) return;
    throw new WorkerError(
      WorkerErrorCode.StreamUnavailable,
      `cannot create stream ${config.name} for ${config.subjects.join(', ')}: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/** The state of a stream the worker reads; WORKER_STREAM_MISSING when it does not exist. */
export async function requireStream(jsm: JetStreamManager, name: string, createdBy: string) {
  try {
    return await jsm.streams.info(name);
  } catch (err) {
    if (isStreamNotFound(err)) {
      throw new WorkerError(
        WorkerErrorCode.StreamMissing,
        `stream ${name} is missing: ${createdBy} creates it`,
        {
          cause: err,
        },
      );
    }
    throw new WorkerError(
      WorkerErrorCode.StreamUnavailable,
      `cannot read stream ${name}: ${(err as Error).message}`,
      { cause: err },
    );
  }
}
