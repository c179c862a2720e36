// Which dead letters a `tally dlq` command acts on. Pure: parsing of time bounds and the match.

export interface DeadLetterFilter {
  /** Any of these reasons (Tally-Error-Reason), compared without case. */
  reasons?: readonly string[];
  /** Any of these error classes (Tally-Error-Class), compared without case. */
  errorClasses?: readonly string[];
  /** Stored at or after (inclusive). */
  since?: Date;
  /** Stored before (exclusive). */
  until?: Date;
  /** Only these dead-letter stream sequences. */
  seqs?: readonly number[];
}

export interface FilterSubject {
  seq: number;
  storedAt: Date;
  reason: string;
  errorClass: string;
}

function anyOf(wanted: readonly string[] | undefined, value: string): boolean {
  if (!wanted || wanted.length === 0) return true;
  const v = value.toLowerCase();
  return wanted.some((w) => w.toLowerCase() === v);
}

export function matchesFilter(d: FilterSubject, f: DeadLetterFilter): boolean {
  if (f.seqs && f.seqs.length > 0 && !f.seqs.includes(d.seq)) return false;
  if (f.since && d.storedAt.getTime() < f.since.getTime()) return false;
  if (f.until && d.storedAt.getTime() >= f.until.getTime()) return false;
  return anyOf(f.reasons, d.reason) && anyOf(f.errorClasses, d.errorClass);
}

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};
const DURATION = /^(?:[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h|d|w))+$/;

/** "90s", "15m", "1h30m", "7d", "2w" in milliseconds; undefined when not a duration. */
export function parseDurationMs(text: string): number | undefined {
  if (!DURATION.test(text)) return undefined;
  let total = 0;
  for (const m of text.matchAll(/([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d|w)/g))
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
  return Math.round(total);
}

// RFC 3339 date-time (a "T" or space between date and time; Z or an offset is required).
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/;

/**
 * A --since/--until value: a duration counts back from `now` ("2h" = two hours ago), an RFC 3339
 * timestamp is taken as is. Throws RangeError on anything else.
 */
export function parseTimeBound(text: string, now: Date): Date {
  const t = text.trim();
  const ms = parseDurationMs(t);
  if (ms !== undefined) return new Date(now.getTime() - ms);
  if (RFC3339.test(t)) {
    const at = Date.parse(t);
    if (!Number.isNaN(at)) return new Date(at);
  }
  throw new RangeError(
    `${JSON.stringify(text)} is neither a duration (e.g. 30m, 2h, 7d) nor an RFC 3339 time (e.g. 2026-11-20T10:00:00Z)`,
  );
}
