import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isFinal, windowBounds, windowOf } from './windows.ts';

const chicago = { timeZone: 'America/Chicago', cutoff: '23:59', lateness: '48h' };
const t = (iso: string) => Date.parse(iso);

describe('business-day windows', () => {
  it('assigns by local business time with the cutoff', () => {
    // 23:58 CST on Nov 20 = 05:58Z Nov 21
    expect(windowOf(t('2026-11-21T05:58:00Z'), chicago)).toBe('2026-11-20');
    // exactly 23:59:00 is still the 20th; 23:59:30 is the 21st
    expect(windowOf(t('2026-11-21T05:59:00Z'), chicago)).toBe('2026-11-20');
    expect(windowOf(t('2026-11-21T05:59:30Z'), chicago)).toBe('2026-11-21');
    // midnight cutoff: the calendar day
    expect(windowOf(t('2026-11-20T12:00:00Z'), { timeZone: 'UTC', cutoff: '00:00' })).toBe('2026-11-20');
    expect(windowOf(t('2026-11-21T00:00:00Z'), { timeZone: 'UTC', cutoff: '00:00' })).toBe('2026-11-20');
  });

  it('computes bounds across a DST change (Chicago, 2026-11-01 is 25 hours long)', () => {
    const b = windowBounds('2026-11-01', { timeZone: 'America/Chicago', cutoff: '00:00', lateness: '0s' });
    expect(new Date(b.startMs).toISOString()).toBe('2026-11-01T05:00:00.000Z');
    expect(new Date(b.endMs).toISOString()).toBe('2026-11-02T06:00:00.000Z');
  });

  it('becomes final after the lateness allowance', () => {
    const b = windowBounds('2026-11-20', chicago);
    expect(isFinal('2026-11-20', chicago, b.endMs + 47 * 3600_000)).toBe(false);
    expect(isFinal('2026-11-20', chicago, b.endMs + 48 * 3600_000)).toBe(true);
  });

  it('every instant falls inside the bounds of its own window', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: Date.UTC(2025, 0, 1), max: Date.UTC(2028, 0, 1) }),
        fc.constantFrom('America/Chicago', 'Europe/Berlin', 'Asia/Kolkata', 'UTC'),
        fc.constantFrom('23:59', '00:00', '18:00'),
        (ms, timeZone, cutoff) => {
          const spec = { timeZone, cutoff, lateness: '1h' };
          const w = windowOf(ms, spec);
          const b = windowBounds(w, spec);
          expect(ms > b.startMs - 60_000 && ms <= b.endMs + 59_999).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });
});
