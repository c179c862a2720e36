import { describe, expect, it } from 'vitest';
import { Slots } from './slots.ts';

describe('Slots', () => {
  it('takes what is free up to the wish, never more than max', async () => {
    const s = new Slots(5);
    expect(await s.take(3)).toBe(3);
    expect(await s.take(10)).toBe(2);
    expect(s.free).toBe(0);
    s.give(2);
    expect(await s.take(1)).toBe(1);
    expect(s.used).toBe(4);
  });

  it('makes a taker wait while all are taken, first come first served', async () => {
    const s = new Slots(1);
    await s.take(1);
    const order: string[] = [];
    const a = s.take(1).then((n) => order.push(`a${n}`));
    const b = s.take(1).then((n) => order.push(`b${n}`));
    await Promise.resolve();
    expect(order).toEqual([]);
    s.give();
    await a;
    expect(order).toEqual(['a1']);
    s.give();
    await b;
    expect(order).toEqual(['a1', 'b1']);
    expect(s.used).toBe(1);
  });

  it('stops waiting when the signal aborts, leaving the count alone', async () => {
    const s = new Slots(1);
    await s.take(1);
    const stop = new AbortController();
    const waiting = s.take(1, stop.signal);
    stop.abort(new Error('stopping'));
    await expect(waiting).rejects.toThrow('stopping');
    s.give();
    expect(s.used).toBe(0);
  });
});
