import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../../api/json.ts';
import {
  CursorTracker,
  compareCursor,
  cursorLagSeconds,
  MAX_IDS_AT_CURSOR,
  type PollState,
  parsePollState,
  pollRecordId,
} from './http-poll-cursor.ts';

describe('compareCursor', () => {
  it('orders timestamps by instant, whatever the offset', () => {
    expect(compareCursor('2026-01-01T10:00:00+02:00', '2026-01-01T08:00:00Z')).toBe(0);
    expect(compareCursor('2026-01-01T08:00:00.001Z', '2026-01-01T08:00:00Z')).toBe(1);
    expect(compareCursor('2025-12-31', '2026-01-01T00:00:00Z')).toBe(-1);
  });
  it('orders numbers and decimal strings numerically, long integers exactly', () => {
    expect(compareCursor(9, 10)).toBe(-1);
    expect(compareCursor('9', '10')).toBe(-1);
    expect(compareCursor(10, '9')).toBe(1);
    expect(compareCursor('12345678901234567891', '12345678901234567890')).toBe(1);
    expect(compareCursor('0012', '12')).toBe(0);
  });
  it('falls back to string order', () => {
    expect(compareCursor('b', 'a')).toBe(1);
    expect(compareCursor('etag-1', 'etag-1')).toBe(0);
  });
});

describe('pollRecordId', () => {
  it('is the same for the same record whatever its key order, and differs when it changes', () => {
    const a = { id: 1, updatedAt: '2026-01-01T00:00:00Z', lines: [{ sku: 'A', q: 1 }] };
    const b = { lines: [{ q: 1, sku: 'A' }], updatedAt: '2026-01-01T00:00:00Z', id: 1 };
    expect(pollRecordId(a)).toBe(pollRecordId(b));
    expect(pollRecordId(a)).toMatch(/^poll:[0-9a-f]{64}$/);
    expect(pollRecordId({ ...a, updatedAt: '2026-01-01T00:00:01Z' })).not.toBe(pollRecordId(a));
    expect(canonicalJson({ b: [1, { d: null, c: 'x' }], a: undefined })).toBe('{"b":[1,{"c":"x","d":null}]}');
  });
});

const state = (cursor: string | number, atCursor: string[] = []): PollState => ({
  v: 1,
  cursor,
  atCursor,
  updatedAt: '',
});

describe('CursorTracker', () => {
  it('keeps the largest cursor and the ids at it', () => {
    const t = new CursorTracker(undefined);
    expect(t.admit('2026-01-02T00:00:00Z', 'a')).toBe('publish');
    expect(t.admit('2026-01-03T00:00:00Z', 'b')).toBe('publish');
    expect(t.admit('2026-01-03T00:00:00Z', 'c')).toBe('publish');
    expect(t.admit('2026-01-01T00:00:00Z', 'd')).toBe('publish');
    expect(t.admit(undefined, 'e')).toBe('publish');
    expect(t.changed()).toBe(true);
    expect(t.result(new Date(0))).toEqual({
      v: 1,
      cursor: '2026-01-03T00:00:00Z',
      atCursor: ['b', 'c'],
      updatedAt: '1970-01-01T00:00:00.000Z',
    });
  });

  it('skips records before the stored cursor and those already published at it', () => {
    const t = new CursorTracker(state(100, ['x']));
    expect(t.admit(99, 'old')).toBe('before_cursor');
    expect(t.admit(100, 'x')).toBe('seen');
    expect(t.admit(100, 'y')).toBe('publish');
    expect(t.result(new Date(0))?.atCursor).toEqual(['x', 'y']);
    expect(t.changed()).toBe(true);
  });

  it('is unchanged when a cycle brings nothing new', () => {
    const t = new CursorTracker(state('2026-01-01T00:00:00Z', ['x']));
    expect(t.admit('2026-01-01T00:00:00Z', 'x')).toBe('seen');
    expect(t.changed()).toBe(false);
    expect(new CursorTracker(undefined).result(new Date())).toBeUndefined();
  });

  it('bounds the ids kept at the cursor', () => {
    const t = new CursorTracker(undefined);
    for (let i = 0; i < MAX_IDS_AT_CURSOR + 10; i++) t.admit(5, `id${i}`);
    const r = t.result(new Date());
    expect(r?.atCursor).toHaveLength(MAX_IDS_AT_CURSOR);
    expect(r?.atCursor.at(-1)).toBe(`id${MAX_IDS_AT_CURSOR + 9}`);
  });
});

describe('parsePollState / cursorLagSeconds', () => {
  it('reads what it stored and refuses anything else', () => {
    expect(parsePollState(state('c', ['a', 1 as unknown as string]))).toEqual(state('c', ['a']));
    expect(parsePollState({ v: 2, cursor: 'c' })).toBeUndefined();
    expect(parsePollState('x')).toBeUndefined();
  });
  it('measures lag only for timestamp cursors', () => {
    expect(cursorLagSeconds('2026-01-01T00:00:00Z', Date.parse('2026-01-01T00:01:00Z'))).toBe(60);
    expect(cursorLagSeconds(12345, Date.now())).toBeUndefined();
    expect(cursorLagSeconds(undefined, Date.now())).toBeUndefined();
  });
});
