// Retry delays: exponential from initialBackoff to maxBackoff by delivery count, with jitter so
// that a burst of failures does not come back as a burst.

export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
  /** Fraction of the delay randomised either way; default 0.2 (±20 %). */
  jitter?: number;
}

/** Delay before the next delivery after attempt `deliveryCount` (1-based) failed. */
export function retryDelayMs(
  deliveryCount: number,
  policy: BackoffPolicy,
  random: () => number = Math.random,
): number {
  const attempt = Math.max(1, Math.floor(deliveryCount));
  const exp = Math.min(attempt - 1, 52); // 2^52 already exceeds any maxBackoff
  const base = Math.min(policy.maxMs, policy.initialMs * 2 ** exp);
  const jitter = policy.jitter ?? 0.2;
  const factor = 1 - jitter + 2 * jitter * random();
  return Math.max(0, Math.min(policy.maxMs, Math.round(base * factor)));
}

/** A sink's Retry-After wins when it asks for longer, capped at maxBackoff. */
export function nakDelayMs(backoffMs: number, retryAfterMs: number | undefined, maxMs: number): number {
  if (retryAfterMs === undefined) return backoffMs;
  return Math.min(maxMs, Math.max(backoffMs, retryAfterMs));
}
