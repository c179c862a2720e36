// Reading the values a policy compares out of canonical data, and normalising them so that
// comparisons are exact: money to integer minor units, timestamps to epoch milliseconds.
import { type Money, toMinorUnits } from '../../api/canonical/money.ts';

export function getPath(data: unknown, path: string): unknown {
  let v: unknown = data;
  for (const part of path.split('.')) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

export function isMoney(v: unknown): v is Money {
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof (v as Money).amount === 'string' &&
    typeof (v as Money).currency === 'string'
  );
}

/** A value reduced to what comparisons need, JSON-safe (bigints as strings) for snapshots and reports. */
export type Scalar =
  | { t: 'money'; minor: string; currency: string }
  | { t: 'number'; v: number }
  | { t: 'string'; v: string }
  | { t: 'bool'; v: boolean }
  | { t: 'missing' };

export function toScalar(v: unknown): Scalar {
  if (v === undefined || v === null) return { t: 'missing' };
  if (isMoney(v)) return { t: 'money', minor: toMinorUnits(v).toString(), currency: v.currency };
  if (typeof v === 'number') return { t: 'number', v };
  if (typeof v === 'boolean') return { t: 'bool', v };
  if (typeof v === 'string') return { t: 'string', v };
  return { t: 'string', v: JSON.stringify(v) };
}

/** Human-readable value for exceptions and reports. */
export function showScalar(s: Scalar): string | number | boolean | null {
  switch (s.t) {
    case 'money':
      return `${s.minor} minor ${s.currency}`;
    case 'missing':
      return null;
    default:
      return s.v;
  }
}

/** Versions order the updates of one key: numbers, then timestamps, compared as numbers. */
export function versionOf(data: unknown, field: string | undefined): number | undefined {
  const candidates = field ? [getPath(data, field)] : [getPath(data, 'version'), getPath(data, 'updatedAt')];
  for (const c of candidates) {
    if (typeof c === 'number' && Number.isFinite(c)) return c;
    if (typeof c === 'string') {
      const n = Number(c);
      if (c.trim() !== '' && Number.isFinite(n)) return n;
      const t = Date.parse(c);
      if (Number.isFinite(t)) return t;
    }
  }
  return undefined;
}
