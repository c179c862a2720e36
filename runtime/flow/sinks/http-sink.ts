// HTTP sink: POST/PUT the CloudEvent (structured mode) with an idempotency key, bounded in
// flight and in rate. 2xx delivered; 408/429/5xx/network errors transient; other answers permanent.
import { Agent, request } from 'undici';
import type { CanonicalEvent } from '../../../api/envelope.ts';
import { idempotencyKey } from '../../../api/envelope.ts';
import type { FlowWorkerConfig } from '../../../api/worker-config.ts';
import { classifyHttpStatus, parseRetryAfterMs } from '../classify.ts';
import { FlowErrorCode, SinkError } from '../errors.ts';
import { Semaphore, TokenBucket } from '../limits.ts';
import type { Env } from '../secrets.ts';
import { authHeader } from './auth.ts';
import type { Sink } from './types.ts';

export type HttpSinkConfig = Extract<FlowWorkerConfig['sinks'][number], { type: 'http' }>;

export const CLOUDEVENTS_JSON = 'application/cloudevents+json; charset=utf-8';
const ERROR_BODY_BYTES = 2048;

export interface HttpSinkOptions {
  env: Env;
  /** Observes each request: status code as text, or "error" / "timeout". */
  observe?: (code: string, seconds: number) => void;
}

/** The request headers for one event (pure, for tests). */
export function httpSinkHeaders(
  config: HttpSinkConfig,
  event: CanonicalEvent,
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

  return {
    name: config.name,
    type: 'http',
    async deliver(event, body) {
      const release = await slots.acquire();
      const started = performance.now();
      const seconds = () => (performance.now() - started) / 1000;
      try {
        await bucket?.acquire(closing.signal);
        const res = await request(config.url, {
          dispatcher: agent,
          method: config.method,
          headers: httpSinkHeaders(config, event, auth),
          body,
          signal: AbortSignal.any([AbortSignal.timeout(config.timeoutMs), closing.signal]),
        });
        const outcome = classifyHttpStatus(res.statusCode);
        observe(String(res.statusCode), seconds());
        if (outcome === 'delivered') {
          await res.body.dump();
          return;
        }
        const text = await readSome(res.body).catch(() => '');
        const retryAfter = res.headers['retry-after'];
        const retryAfterMs = parseRetryAfterMs(
          Array.isArray(retryAfter) ? retryAfter[0] : retryAfter,
          Date.now(),
        );
        const permanent = outcome === 'permanent';
        throw new SinkError(
          `sink ${config.name}: ${config.method} ${config.url} answered ${res.statusCode}${text ? `: ${text}` : ''}${
            permanent
              ? ' (not retried: fix the event, the mapping or the sink, then replay from the dead-letter stream)'
              : ''
          }`,
          {
            sink: config.name,
            permanent,
            status: res.statusCode,
            code: permanent ? FlowErrorCode.SinkRejected : FlowErrorCode.SinkUnavailable,
            ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
          },
        );
      } catch (err) {
        if (err instanceof SinkError) throw err;
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
