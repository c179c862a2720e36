// Connecting to NATS the way every worker does: retry until the server answers (a worker starts
// while NATS is away and says so in its readiness), stop when the signal aborts, and once connected
// let the client reconnect forever by itself.
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';

export interface ConnectRetryOptions {
  servers: string[];
  /** Client name shown by the server. */
  name: string;
  logger: Logger;
  /** Stops the attempts (AbortError). */
  signal?: AbortSignal | undefined;
  /** Wait between attempts (growing to at most 10 s) and between reconnects; default 1 s. */
  waitMs?: number | undefined;
  /** Timeout of one connection attempt; default 5 s. */
  timeoutMs?: number | undefined;
  /** nats.js option: no Error with a stack per request (see runtime/bus/jetstream.ts). */
  noAsyncTraces?: boolean | undefined;
}

export async function connectWithRetry(options: ConnectRetryOptions): Promise<NatsConnection> {
  const wait = options.waitMs ?? 1_000;
  for (let attempt = 1; ; attempt++) {
    options.signal?.throwIfAborted();
    try {
      const nc = await connect({
        servers: options.servers,
        name: options.name,
        maxReconnectAttempts: -1,
        reconnectTimeWait: wait,
        timeout: options.timeoutMs ?? 5_000,
        ...(options.noAsyncTraces ? { noAsyncTraces: true } : {}),
      });
      if (options.signal?.aborted) {
        await nc.close().catch(() => {});
        options.signal.throwIfAborted();
      }
      return nc;
    } catch (err) {
      if (options.signal?.aborted) throw options.signal.reason;
      if (attempt === 1 || attempt % 10 === 0) {
        options.logger.warn({ err, servers: options.servers, attempt }, 'cannot connect to NATS; retrying');
      }
      await sleep(
        Math.min(wait * attempt, 10_000),
        undefined,
        options.signal ? { signal: options.signal } : {},
      );
    }
  }
}
