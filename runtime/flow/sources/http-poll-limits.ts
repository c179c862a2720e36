// Rate-limit decisions of the HTTP poller, as pure functions with the clock passed in: what a
// response says about when the next request may go (Retry-After on 429/503, quota headers, Amazon's
// per-operation rate), and the backoff after failures. The poller sleeps; nothing here does.
import { retryDelayMs } from '../backoff.ts';
import { parseRetryAfterMs } from '../classify.ts';

export type Headers = Readonly<Record<string, string | string[] | undefined>>;

/** The first value of a header (node lowercases names). */
export function header(headers: Headers, name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/** Longest pause a server may impose through Retry-After or a quota reset; beyond it we assume garbage. */
export const MAX_PAUSE_MS = 60 * 60_000;
/** Pause when the quota is used up but the server did not say when it resets. */
export const QUOTA_PAUSE_WITHOUT_RESET_MS = 10_000;
/** Never space requests further apart than this because of x-amzn-RateLimit-Limit. */
export const MAX_REQUEST_SPACING_MS = 10 * 60_000;

/**
 * A quota reset as absolute time. Servers write it three ways: delta seconds (IETF RateLimit-Reset,
 * most APIs), Unix epoch seconds (GitHub, Twitter) or epoch milliseconds; an HTTP date also occurs.
 * Numbers below 1e9 are deltas (1e9 s is 2001-09-09, so no real epoch value is that small).
 */
export function parseResetAt(value: string | undefined, nowMs: number): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  if (/^[0-9]+(\.[0-9]+)?$/.test(v)) {
    const n = Number(v);
    if (n >= 1e12) return n;
    if (n >= 1e9) return n * 1000;
    return nowMs + n * 1000;
  }
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : at;
}

/** Remaining and reset of the draft-7 combined header `RateLimit: limit=100, remaining=0, reset=30`. */
function combinedRateLimit(value: string | undefined): { remaining?: string; reset?: string } {
  if (!value) return {};
  const out: { remaining?: string; reset?: string } = {};
  const remaining = /(?:^|[\s,;])(?:remaining|r)=("?)([0-9]+)\1/i.exec(value);
  const reset = /(?:^|[\s,;])(?:reset|t)=("?)([0-9]+)\1/i.exec(value);
  if (remaining) out.remaining = remaining[2]!;
  if (reset) out.reset = reset[2]!;
  return out;
}

export interface QuotaAdvice {
  /** The quota is used up: send nothing before this time (epoch ms). */
  pauseUntilMs?: number;
  /** Keep at least this long between request starts (x-amzn-RateLimit-Limit). */
  minSpacingMs?: number;
}

/**
 * What the quota headers of a response ask of the next request. Read: X-RateLimit-Remaining /
 * X-RateLimit-Reset (GitHub and most REST APIs), RateLimit-Remaining / RateLimit-Reset (IETF draft),
 * the combined `RateLimit` header, and x-amzn-RateLimit-Limit (Amazon SP-API: requests per second
 * allowed for the operation, so requests are spaced 1/limit seconds apart).
 */
export function quotaAdvice(headers: Headers, nowMs: number): QuotaAdvice {
  const advice: QuotaAdvice = {};
  const combined = combinedRateLimit(header(headers, 'ratelimit'));
  const remainingText =
    header(headers, 'x-ratelimit-remaining') ?? header(headers, 'ratelimit-remaining') ?? combined.remaining;
  const resetText =
    header(headers, 'x-ratelimit-reset') ?? header(headers, 'ratelimit-reset') ?? combined.reset;
  const remaining = remainingText !== undefined ? Number(remainingText.trim()) : Number.NaN;
  if (Number.isFinite(remaining) && remaining <= 0) {
    const resetAt = parseResetAt(resetText, nowMs);
    const until = resetAt !== undefined && resetAt > nowMs ? resetAt : nowMs + QUOTA_PAUSE_WITHOUT_RESET_MS;
    advice.pauseUntilMs = Math.min(until, nowMs + MAX_PAUSE_MS);
  }
  const amzn = Number(header(headers, 'x-amzn-ratelimit-limit')?.trim() ?? Number.NaN);
  if (Number.isFinite(amzn) && amzn > 0) {
    advice.minSpacingMs = Math.min(MAX_REQUEST_SPACING_MS, Math.ceil(1000 / amzn));
  }
  return advice;
}

export type ResponseClass = 'ok' | 'throttled' | 'retry' | 'rejected';

/** 2xx ok; 429 and 503 throttled (Retry-After applies); 408 and other 5xx retried with backoff; anything else needs a fix. */
export function classifyPollStatus(status: number): ResponseClass {
  if (status >= 200 && status < 300) return 'ok';
  if (status === 429 || status === 503) return 'throttled';
  if (status === 408 || status >= 500) return 'retry';
  return 'rejected';
}

export interface PollBackoff {
  initialMs: number;
  maxMs: number;
}

export const DEFAULT_POLL_BACKOFF: PollBackoff = { initialMs: 1_000, maxMs: 60_000 };

export interface RetryDecision {
  delayMs: number;
  reason: 'retry_after' | 'backoff';
}

/**
 * How long to wait before attempt `attempt + 1` after a throttled or failed attempt: the server's
 * Retry-After when it sent one (capped at MAX_PAUSE_MS), else exponential backoff with jitter.
 */
export function retryDecision(
  attempt: number,
  retryAfter: string | undefined,
  nowMs: number,
  policy: PollBackoff = DEFAULT_POLL_BACKOFF,
  random: () => number = Math.random,
): RetryDecision {
  const asked = parseRetryAfterMs(retryAfter, nowMs);
  if (asked !== undefined) return { delayMs: Math.min(asked, MAX_PAUSE_MS), reason: 'retry_after' };
  return {
    delayMs: retryDelayMs(attempt, { initialMs: policy.initialMs, maxMs: policy.maxMs }, random),
    reason: 'backoff',
  };
}

/** Delay before the next poll cycle: the interval after a success; after failures it grows, up to 5 min (or the interval if longer). */
export function nextCycleDelayMs(
  intervalMs: number,
  consecutiveFailures: number,
  random: () => number = Math.random,
): number {
  if (consecutiveFailures <= 0) return intervalMs;
  const cap = Math.max(intervalMs, 5 * 60_000);
  const grown = retryDelayMs(
    consecutiveFailures,
    { initialMs: Math.max(1_000, intervalMs), maxMs: cap },
    random,
  );
  return Math.max(intervalMs, grown);
}

/**
 * Paces requests: remembers quota pauses and Retry-After across requests (and across cycles), and
 * Amazon-style spacing. `waitMs(now)` says how long the next request must wait.
 */
export class RequestPacer {
  #notBefore = 0;
  #spacingMs = 0;
  #lastStart = Number.NEGATIVE_INFINITY;
  #reason: 'quota' | 'retry_after' = 'quota';

  /** Milliseconds until the next request may start (0 = now), and why. */
  waitMs(nowMs: number): { ms: number; reason: 'quota' | 'retry_after' } {
    const earliest = Math.max(this.#notBefore, this.#lastStart + this.#spacingMs);
    return { ms: Math.max(0, Math.ceil(earliest - nowMs)), reason: this.#reason };
  }

  started(nowMs: number): void {
    this.#lastStart = nowMs;
  }

  /** Take in a response's quota headers. */
  observe(headers: Headers, nowMs: number): void {
    const advice = quotaAdvice(headers, nowMs);
    if (advice.pauseUntilMs !== undefined && advice.pauseUntilMs > this.#notBefore) {
      this.#notBefore = advice.pauseUntilMs;
      this.#reason = 'quota';
    }
    if (advice.minSpacingMs !== undefined) this.#spacingMs = advice.minSpacingMs;
  }

  /** A server asked (Retry-After) for no request before `untilMs`. */
  holdUntil(untilMs: number): void {
    if (untilMs > this.#notBefore) {
      this.#notBefore = untilMs;
      this.#reason = 'retry_after';
    }
  }
}
