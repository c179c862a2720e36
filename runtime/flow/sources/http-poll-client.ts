// One page of a polled listing over HTTP: GET with auth, paced by the API's quota, retried on
// 429/503 (after Retry-After), 408/5xx and network errors (exponential backoff with jitter), and
// given up after a few attempts so the cycle ends and the next one starts later. Never a tight loop:
// every retry waits.

import { type Agent, request } from 'undici';
import { TallyError } from '../../../api/errors.ts';
import type { Logger } from '../../telemetry/logger.ts';
import { credentialSecrets, redact, redactUrl } from '../redact.ts';
import {
  classifyPollStatus,
  DEFAULT_POLL_BACKOFF,
  type Headers,
  header,
  type PollBackoff,
  type RequestPacer,
  retryDecision,
} from './http-poll-limits.ts';
import type { PollMetrics, PollOutcome } from './http-poll-metrics.ts';

export const POLL_ERROR_CODES = {
  http: 'POLL_HTTP_ERROR',
  throttled: 'POLL_THROTTLED',
  network: 'POLL_NETWORK_ERROR',
  invalidResponse: 'POLL_INVALID_RESPONSE',
} as const;

/** A page could not be fetched; `outcome` is the poll-cycle outcome it leads to. */
export class PollRequestError extends TallyError {
  override name = 'PollRequestError';
  readonly code: (typeof POLL_ERROR_CODES)[keyof typeof POLL_ERROR_CODES];
  readonly outcome: PollOutcome;
  readonly status: number | undefined;
  constructor(
    code: PollRequestError['code'],
    outcome: PollOutcome,
    message: string,
    options?: ErrorOptions & { status?: number },
  ) {
    super(message, options);
    this.code = code;
    this.outcome = outcome;
    this.status = options?.status;
  }
}

export interface Page {
  status: number;
  headers: Headers;
  body: unknown;
}

export interface PageFetcherDeps {
  agent: Agent;
  timeoutMs: number;
  maxBodyBytes: number;
  maxAttempts: number;
  backoff?: PollBackoff;
  pacer: RequestPacer;
  metrics: PollMetrics;
  logger: Logger;
  /** Request headers for a URL (auth only to the configured origin). */
  headersFor: (url: string) => Record<string, string>;
  /** Sleep that rejects when the signal aborts (the poller's, renewing its lease meanwhile). */
  wait: (ms: number, signal: AbortSignal) => Promise<void>;
  now?: () => number;
  random?: () => number;
}

const SNIPPET_BYTES = 512;
/** Request headers that carry no credentials (every other one may: the auth header). */
const PLAIN_HEADERS = new Set(['accept', 'user-agent', 'content-type']);

async function readBody(
  body: AsyncIterable<Uint8Array> & { destroy(): void },
  limit: number,
): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > limit) {
      body.destroy();
      return undefined;
    }
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks);
}

async function snippet(body: AsyncIterable<Uint8Array> & { destroy(): void }): Promise<string> {
  try {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of body) {
      chunks.push(Buffer.from(chunk));
      size += chunk.length;
      if (size >= SNIPPET_BYTES) {
        body.destroy();
        break;
      }
    }
    return Buffer.concat(chunks).subarray(0, SNIPPET_BYTES).toString('utf8').replace(/\s+/g, ' ').trim();
  } catch {
    return '';
  }
}

/** Fetch one page; throws PollRequestError after the attempts, or the signal's reason when stopped. */
export async function fetchPage(url: string, signal: AbortSignal, deps: PageFetcherDeps): Promise<Page> {
  const now = deps.now ?? Date.now;
  const random = deps.random ?? Math.random;
  const backoff = deps.backoff ?? DEFAULT_POLL_BACKOFF;
  // What error messages (and so logs) show of the request: credentials masked, the API's answer too
  // (an error body may echo the request's headers or carry tokens of its own).
  const shown = redactUrl(url);
  const secrets = Object.entries(deps.headersFor(url))
    .filter(([name]) => !PLAIN_HEADERS.has(name.toLowerCase()))
    .flatMap(([, value]) => credentialSecrets(value));
  const masked = (text: string) => redact(text, { secrets });
  let last: PollRequestError | undefined;
  for (let attempt = 1; attempt <= deps.maxAttempts; attempt++) {
    signal.throwIfAborted();
    const pace = deps.pacer.waitMs(now());
    if (pace.ms > 0) {
      // Short pauses (request spacing) are routine; long ones are worth a line.
      deps.logger[pace.ms >= 5_000 ? 'info' : 'debug'](
        { waitMs: pace.ms, reason: pace.reason },
        'waiting before the next request (API rate limit)',
      );
      deps.metrics.waited(pace.reason, pace.ms / 1000);
      await deps.wait(pace.ms, signal);
    }
    deps.pacer.started(now());
    let res: Awaited<ReturnType<typeof request>>;
    try {
      res = await request(url, {
        dispatcher: deps.agent,
        method: 'GET',
        headers: { accept: 'application/json', ...deps.headersFor(url) },
        signal: AbortSignal.any([AbortSignal.timeout(deps.timeoutMs), signal]),
      });
    } catch (err) {
      signal.throwIfAborted();
      deps.metrics.request('error');
      const e = err as Error & { code?: string };
      const timedOut = e.name === 'TimeoutError' || /TIMEOUT/.test(e.code ?? '');
      last = new PollRequestError(
        POLL_ERROR_CODES.network,
        'network_error',
        timedOut
          ? `GET ${shown} got no answer within ${deps.timeoutMs} ms`
          : `GET ${shown} failed: ${e.code ? `${e.code} ` : ''}${masked(e.message)}`,
        { cause: err },
      );
      if (attempt < deps.maxAttempts) {
        const d = retryDecision(attempt, undefined, now(), backoff, random);
        deps.logger.warn({ err: last, attempt, retryInMs: d.delayMs }, 'poll request failed; retrying');
        deps.metrics.waited('backoff', d.delayMs / 1000);
        await deps.wait(d.delayMs, signal);
      }
      continue;
    }
    deps.metrics.request(String(res.statusCode));
    deps.pacer.observe(res.headers, now());
    const cls = classifyPollStatus(res.statusCode);
    if (cls === 'ok') {
      const buf = await readBody(res.body, deps.maxBodyBytes).catch((cause: unknown) => {
        throw new PollRequestError(
          POLL_ERROR_CODES.network,
          'network_error',
          `GET ${shown}: the response body broke off: ${masked((cause as Error).message)}`,
          { cause },
        );
      });
      if (!buf) {
        throw new PollRequestError(
          POLL_ERROR_CODES.invalidResponse,
          'invalid_response',
          `GET ${shown} answered more than ${deps.maxBodyBytes} bytes; ask the API for smaller pages`,
          { status: res.statusCode },
        );
      }
      try {
        const text = buf.toString('utf8');
        return {
          status: res.statusCode,
          headers: res.headers,
          body: text.trim() === '' ? null : JSON.parse(text),
        };
      } catch (cause) {
        throw new PollRequestError(
          POLL_ERROR_CODES.invalidResponse,
          'invalid_response',
          `GET ${shown} answered ${res.statusCode} with a body that is not JSON (${header(res.headers, 'content-type') ?? 'no content-type'}): ${masked((cause as Error).message)}`,
          { cause, status: res.statusCode },
        );
      }
    }
    const text = masked(await snippet(res.body));
    if (cls === 'rejected') {
      throw new PollRequestError(
        POLL_ERROR_CODES.http,
        'http_error',
        `GET ${shown} answered ${res.statusCode}${text ? `: ${text}` : ''} (not retried until the next poll: check source.httpPoll.url and the credentials)`,
        { status: res.statusCode },
      );
    }
    const throttled = cls === 'throttled';
    last = new PollRequestError(
      throttled ? POLL_ERROR_CODES.throttled : POLL_ERROR_CODES.http,
      throttled ? 'throttled' : 'http_error',
      `GET ${shown} answered ${res.statusCode}${text ? `: ${text}` : ''}`,
      { status: res.statusCode },
    );
    const d = retryDecision(
      attempt,
      throttled ? header(res.headers, 'retry-after') : undefined,
      now(),
      backoff,
      random,
    );
    if (d.reason === 'retry_after') {
      // Also holds the next cycle back should this be the last attempt.
      deps.pacer.holdUntil(now() + d.delayMs);
      deps.logger.warn(
        { status: res.statusCode, retryAfterMs: d.delayMs, attempt },
        'the API asked to slow down; waiting as it said (Retry-After)',
      );
    } else if (attempt < deps.maxAttempts) {
      deps.logger.warn(
        { status: res.statusCode, retryInMs: d.delayMs, attempt },
        'poll request failed; retrying',
      );
      deps.metrics.waited('backoff', d.delayMs / 1000);
      await deps.wait(d.delayMs, signal);
    }
  }
  throw (
    last ?? new PollRequestError(POLL_ERROR_CODES.network, 'network_error', `GET ${shown} was not attempted`)
  );
}
