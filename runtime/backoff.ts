// Exponential backoff, the one every retry loop in Tally uses (flow redeliveries, the HTTP polling
// source, backfill publishes, the operator's work queue and informers). Pure.

export interface BackoffPolicy {
  /** Delay after the first failure. */
  initialMs: number;
  maxMs: number;
  /** Fraction of the delay randomised either way; default 0.2 (±20 %). 0 for exact delays. */
  jitter?: number;
}

/** Delay before the next try after the `failures`-th consecutive failure (1-based). */
export function retryDelayMs(
  failures: number,
  policy: BackoffPolicy,
  random: () => number = Math.random,
): number {
  const attempt = Math.max(1, Math.floor(failures));
  const exp = Math.min(attempt - 1, 52); // 2^52 already exceeds any maxBackoff
  const base = Math.min(policy.maxMs, policy.initialMs * 2 ** exp);
  const jitter = policy.jitter ?? 0.2;
  const factor = 1 - jitter + 2 * jitter * random();
  return Math.max(0, Math.min(policy.maxMs, Math.round(base * factor)));
}
