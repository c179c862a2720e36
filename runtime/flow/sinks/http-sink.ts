// HTTP sink: POST/PUT the CloudEvent (structured mode) with an idempotency key, bounded in
// flight and in rate. 2xx delivered; 408/429/5xx/network errors transient; other answers permanent.
// A circuit breaker leaves a failing sink alone for a cool-down, and a Retry-After on 429/503
// pauses the whole sink (not just that event): events meanwhile fail fast without a request, and
// the processor hands them back to the stream with that delay.
import { Agent, request } from 'undici';
import { idempotencyKey } from '../../../api/envelope.ts';
import type { FlowWorkerConfig } from '../../../api/worker-config.ts';
import { classifyHttpStatus, parseRetryAfterMs } from '../classify.ts';
import { FlowErrorCode, SinkError } from '../errors.ts';
import { Semaphore, TokenBucket } from '../limits.ts';
import type { Env } from '../secrets.ts';
import type { EventHead } from '../transform.ts';
import { authHeader } from './auth.ts';
import { CircuitBreaker, type CircuitState, DEFAULT_CIRCUIT_BREAKER } from './circuit-breaker.ts';
import type { Sink } from './types.ts';

export type HttpSinkConfig = Extract<FlowWorkerConfig['sinks'][number], { type: 'http' }>;

export const CLOUDEVENTS_JSON = 'application/cloudevents+json; charset=utf-8';
const ERROR_BODY_BYTES = 2048;

export interface HttpSinkOptions {
  env: Env;
  /** Observes each request: status code as text, or "error" / "timeout". */
  observe?: (code: string, seconds: number) => void;
  /** Called when the circuit breaker changes state. */
  onCircuitChange?: (from: CircuitState, to: CircuitState) => void;
  /** Longest sink-wide pause a Retry-After can ask for; default 5 min (the flow's maxBackoff is apt). */
  maxRetryAfterMs?: number;
  /** Monotonic clock in ms; default performance.now. */
  now?: () => number;
}

const DEFAULT_MAX_RETRY_AFTER_MS = 300_000;

/** The request headers for one event (pure, for tests). */
export function httpSinkHeaders(
  config: HttpSinkConfig,
  event: EventHead,
  auth: [string, string] | undefined,
): Record<string, string> {
  const headers: Record<string, string> = { ...config.headers };
  headers['content-type'] = CLOUDEVENTS_JSON;
  headers[config.idempotencyKeyHeader] = idempotencyKey(event);
  headers.traceparent = event.traceparent;
  if (auth) headers[auth[0]] = auth[1];
  return headers;
}

async function readSome(body: AsyncIterable<Uint8Array> & { destroy(): void }): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    chunks.push(Buffer.from(chunk));
    size += chunk.length;
    if (size >= ERROR_BODY_BYTES) {
      body.destroy();
      break;
    }
  }
  return Buffer.concat(chunks).subarray(0, ERROR_BODY_BYTES).toString('utf8');
}

export function createHttpSink(config: HttpSinkConfig, options: HttpSinkOptions): Sink {
  const auth = config.auth ? authHeader(config.auth, options.env, `sink ${config.name}`) : undefined;
  const agent = new Agent({
    connections: config.maxInFlight,
    headersTimeout: config.timeoutMs,
    bodyTimeout: config.timeoutMs,
  });
  const slots = new Semaphore(config.maxInFlight);
  const bucket = config.rateLimit
    ? new TokenBucket({
        requestsPerSecond: config.rateLimit.requestsPerSecond,
        burst: config.rateLimit.burst,
      })
    : undefined;
  const observe = options.observe ?? (() => {});
  const closing = new AbortController();
  const now = options.now ?? (() => performance.now());
  const breaker = new CircuitBreaker({
    ...(config.circuitBreaker ?? DEFAULT_CIRCUIT_BREAKER),
    now,
    ...(options.onCircuitChange ? { onChange: options.onCircuitChange } : {}),
  });
  const maxPauseMs = options.maxRetryAfterMs ?? DEFAULT_MAX_RETRY_AFTER_MS;
  /** Sink-wide: no request before this (a Retry-After on 429/503). */
  let pausedUntil = 0;
  const what = `sink ${config.name}: ${config.method} ${config.url}`;

  /** Throws, without calling the sink, while it asked to be left alone. */
  const checkPause = () => {
    const left = Math.ceil(pausedUntil - now());
    if (left > 0) {
      throw new SinkError(`${what}: the sink asked to wait (Retry-After); ${left} ms left`, {
        sink: config.name,
        permanent: false,
        code: FlowErrorCode.SinkThrottled,
        retryAfterMs: left,
      });
    }
  };

  return {
    name: config.name,
    type: 'http',
    circuit: () => breaker.state,
    async deliver(event, body) {
      const release = await slots.acquire();
      let probe = false;
      let started = now();
      const seconds = () => (now() - started) / 1000;
      try {
        checkPause();
        await bucket?.acquire(closing.signal);
        checkPause();
        const admission = breaker.admit();
        if (!admission.allowed) {
          throw new SinkError(
            `${what}: circuit open after repeated failures; not called, retrying in ${admission.retryInMs} ms`,
            {
              sink: config.name,
              permanent: false,
              code: FlowErrorCode.SinkCircuitOpen,
              retryAfterMs: admission.retryInMs,
            },
          );
        }
        probe = admission.probe;
        started = now();
        const res = await request(config.url, {
          dispatcher: agent,
          method: config.method,
          headers: httpSinkHeaders(config, event, auth),
          body,
          signal: AbortSignal.any([AbortSignal.timeout(config.timeoutMs), closing.signal]),
        });
        const status = res.statusCode;
        const outcome = classifyHttpStatus(status);
        observe(String(status), seconds());
        // 429 and permanent answers come from a sink that is up; 408/5xx count against it.
        if (outcome === 'transient' && status !== 429) breaker.failure(probe);
        else breaker.success(probe);
        if (outcome === 'delivered') {
          await res.body.dump();
          return;
        }
        const text = await readSome(res.body).catch(() => '');
        const retryAfter = res.headers['retry-after'];
        const askedMs = parseRetryAfterMs(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter, Date.now());
        const retryAfterMs = askedMs === undefined ? undefined : Math.min(askedMs, maxPauseMs);
        if (retryAfterMs !== undefined && (status === 429 || status === 503)) {
          pausedUntil = Math.max(pausedUntil, now() + retryAfterMs);
        }
        const permanent = outcome === 'permanent';
        throw new SinkError(
          `${what} answered ${status}${text ? `: ${text}` : ''}${
            permanent
              ? ' (not retried: fix the event, the mapping or the sink, then replay from the dead-letter stream)'
              : ''
          }`,
          {
            sink: config.name,
            permanent,
            status,
            code: permanent
              ? FlowErrorCode.SinkRejected
              : status === 429
                ? FlowErrorCode.SinkThrottled
                : FlowErrorCode.SinkUnavailable,
            ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
          },
        );
      } catch (err) {
        if (err instanceof SinkError) throw err;
        breaker.failure(probe);
        const e = err as Error & { code?: string };
        const timedOut =
          e.name === 'TimeoutError' ||
          e.code === 'UND_ERR_HEADERS_TIMEOUT' ||
          e.code === 'UND_ERR_BODY_TIMEOUT' ||
          e.code === 'UND_ERR_CONNECT_TIMEOUT';
        observe(timedOut ? 'timeout' : 'error', seconds());
        throw new SinkError(
          timedOut
            ? `sink ${config.name}: ${config.method} ${config.url} got no answer within ${config.timeoutMs} ms`
            : `sink ${config.name}: ${config.method} ${config.url} failed: ${e.code ? `${e.code} ` : ''}${e.message}`,
          {
            sink: config.name,
            permanent: false,
            code: timedOut ? FlowErrorCode.SinkTimeout : FlowErrorCode.SinkUnavailable,
          },
          { cause: err },
        );
      } finally {
        release();
      }
    },
    async close() {
      closing.abort();
      await agent.close().catch(() => {});
    },
  };
}
