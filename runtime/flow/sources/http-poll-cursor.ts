// The poller's watermark, as pure functions: comparing cursor values (timestamps, numbers, strings),
// the record ids that dedupe (Nats-Msg-Id), and from one poll cycle the cursor to store next.
//
// Dedupe id: `poll:<sha256 of the record as canonical JSON>` (object keys sorted). The same record
// fetched again, in this cycle or a later one, gets the same id, so JetStream drops the repeat within
// the stream's duplicate window; a changed record (new updatedAt) is a new event with a new id. An
// id of "<cursor>:<record id>" would need a record-id field the API spec does not have, and the hash
// needs no configuration.
//
// Beyond the duplicate window, repeats are avoided by the stored state itself: records older than
// the stored cursor are skipped (the watermark says everything before it is done), and the ids of
// the records AT the cursor are stored with it, so an API whose updated-since filter is inclusive
// (>=) does not hand the boundary records back as new events every poll.
import { createHash } from 'node:crypto';
import { canonicalJson } from '../../../api/json.ts';

export type CursorValue = string | number;

/** What the poller keeps in the flow's KV bucket (key `cursor`). */
export interface PollState {
  v: 1;
  /** Largest cursor value over every record published so far (as the API wrote it). */
  cursor: CursorValue;
  /** Dedupe ids of the records whose cursor value equals `cursor` (bounded). */
  atCursor: string[];
  /** When this state was stored (ISO 8601). */
  updatedAt: string;
}

/** Most ids kept for the records at the cursor; more records sharing one exact cursor value are rare. */
export const MAX_IDS_AT_CURSOR = 500;

const ISO_DATE = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$/i;
const DECIMAL = /^-?\d+(\.\d+)?$/;

/** A usable cursor value (string or finite number), else undefined. */
export function asCursorValue(v: unknown): CursorValue | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'string') return v === '' ? undefined : v;
  return undefined;
}

/** Epoch ms when the value is an ISO 8601 date/time; undefined otherwise. */
export function cursorTimeMs(v: CursorValue): number | undefined {
  if (typeof v !== 'string' || !ISO_DATE.test(v.trim())) return undefined;
  const t = Date.parse(v.trim());
  return Number.isNaN(t) ? undefined : t;
}

function compareDecimalStrings(a: string, b: string): number {
  const na = Number(a);
  const nb = Number(b);
  // Long integers lose precision as numbers: compare them as digit strings.
  if (Number.isSafeInteger(na) && Number.isSafeInteger(nb)) return Math.sign(na - nb);
  if (/^\d+$/.test(a) && /^\d+$/.test(b)) {
    const x = a.replace(/^0+(?=\d)/, '');
    const y = b.replace(/^0+(?=\d)/, '');
    return x.length !== y.length ? Math.sign(x.length - y.length) : x < y ? -1 : x > y ? 1 : 0;
  }
  return Math.sign(na - nb);
}

/**
 * Order of two cursor values: numerically for numbers (and decimal strings), by instant for ISO 8601
 * timestamps (so "2026-01-01T10:00:00+02:00" equals "2026-01-01T08:00:00Z"), else as strings.
 */
export function compareCursor(a: CursorValue, b: CursorValue): number {
  if (typeof a === 'number' && typeof b === 'number') return Math.sign(a - b);
  const sa = String(a).trim();
  const sb = String(b).trim();
  if (DECIMAL.test(sa) && DECIMAL.test(sb)) return compareDecimalStrings(sa, sb);
  const ta = cursorTimeMs(sa);
  const tb = cursorTimeMs(sb);
  if (ta !== undefined && tb !== undefined) return Math.sign(ta - tb);
  return sa < sb ? -1 : sa > sb ? 1 : 0;
}

/** JSON with object keys sorted at every level, so equal records hash equally whatever the key order. */
/** The Nats-Msg-Id of a polled record. */
export function pollRecordId(record: unknown): string {
  return `poll:${createHash('sha256').update(canonicalJson(record)).digest('hex')}`;
}

export type Admission = 'publish' | 'before_cursor' | 'seen';

/**
 * Follows one poll cycle: decides per record whether to publish it, and tracks the largest cursor
 * value (with the ids at it) for the state stored once every record of the cycle is acknowledged.
 */
export class CursorTracker {
  readonly #stored: PollState | undefined;
  readonly #storedIds: ReadonlySet<string>;
  #max: CursorValue | undefined;
  #atMax = new Set<string>();

  constructor(stored: PollState | undefined) {
    this.#stored = stored;
    this.#storedIds = new Set(stored?.atCursor ?? []);
    this.#max = stored?.cursor;
    if (stored) this.#atMax = new Set(stored.atCursor);
  }

  /** Decide for one record (its cursor value, undefined when it has none) and remember it when published. */
  admit(value: CursorValue | undefined, id: string): Admission {
    const stored = this.#stored;
    if (value !== undefined && stored) {
      const c = compareCursor(value, stored.cursor);
      if (c < 0) return 'before_cursor';
      if (c === 0 && this.#storedIds.has(id)) return 'seen';
    }
    if (value === undefined) return 'publish';
    if (this.#max === undefined || compareCursor(value, this.#max) > 0) {
      this.#max = value;
      this.#atMax = new Set([id]);
    } else if (compareCursor(value, this.#max) === 0) {
      this.#atMax.add(id);
    }
    return 'publish';
  }

  /** The state to store after the cycle, or undefined when no record carried a cursor value. */
  result(now: Date): PollState | undefined {
    if (this.#max === undefined) return undefined;
    const ids = [...this.#atMax];
    return {
      v: 1,
      cursor: this.#max,
      atCursor: ids.length > MAX_IDS_AT_CURSOR ? ids.slice(ids.length - MAX_IDS_AT_CURSOR) : ids,
      updatedAt: now.toISOString(),
    };
  }

  /** True when result() differs from the stored state in cursor or ids. */
  changed(): boolean {
    const s = this.#stored;
    if (this.#max === undefined) return false;
    if (!s || compareCursor(this.#max, s.cursor) !== 0 || String(this.#max) !== String(s.cursor)) return true;
    if (this.#atMax.size !== this.#storedIds.size) return true;
    for (const id of this.#atMax) if (!this.#storedIds.has(id)) return true;
    return false;
  }
}

/** Parse a stored state; undefined (start from cursor.initial) when it is absent or unreadable. */
export function parsePollState(raw: unknown): PollState | undefined {
  if (!raw || typeof raw !== 'object') return undefined;
  const s = raw as Partial<PollState>;
  const cursor = asCursorValue(s.cursor);
  if (s.v !== 1 || cursor === undefined) return undefined;
  return {
    v: 1,
    cursor,
    atCursor: Array.isArray(s.atCursor) ? s.atCursor.filter((x): x is string => typeof x === 'string') : [],
    updatedAt: typeof s.updatedAt === 'string' ? s.updatedAt : '',
  };
}

/** Seconds from the cursor to now when the cursor is a timestamp (how far behind the source the flow is). */
export function cursorLagSeconds(cursor: CursorValue | undefined, nowMs: number): number | undefined {
  if (cursor === undefined) return undefined;
  const t = cursorTimeMs(cursor);
  return t === undefined ? undefined : Math.max(0, (nowMs - t) / 1000);
}
