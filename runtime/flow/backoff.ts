// Retry delays of flow redeliveries: exponential from initialBackoff to maxBackoff by delivery count
// (../backoff.ts), with jitter so that a burst of failures does not come back as a burst.
export { type BackoffPolicy, retryDelayMs } from '../backoff.ts';

/** A sink's Retry-After wins when it asks for longer, capped at maxBackoff. */
export function nakDelayMs(backoffMs: number, retryAfterMs: number | undefined, maxMs: number): number {
  if (retryAfterMs === undefined) return backoffMs;
  return Math.min(maxMs, Math.max(backoffMs, retryAfterMs));
}
