import { describe, expect, it } from 'vitest';
import { Semaphore, TokenBucket } from './limits.ts';

describe('TokenBucket', () => {
  it('allows a burst, then one request per 1/rate', () => {
    let now = 0;
    const bucket = new TokenBucket({ requestsPerSecond: 10, burst: 2, now: () => now });
    expect(bucket.take()).toBe(0);
    expect(bucket.take()).toBe(0);
    expect(bucket.take()).toBe(100);
    now += 100;
    expect(bucket.take()).toBe(0);
    now += 10_000;
    expect([bucket.take(), bucket.take(), bucket.take()]).toEqual([0, 0, 100]);
  });
});

describe('Semaphore', () => {
  it('never lets more than max through and hands slots on in order', async () => {
    const sem = new Semaphore(2);
    const r1 = await sem.acquire();
    const r2 = await sem.acquire();
    const order: number[] = [];
    const third = sem.acquire().then((r) => {
      order.push(3);
      return r;
    });
    await Promise.resolve();
    expect(order).toEqual([]);
    expect(sem.inUse).toBe(2);
    r1();
    r1(); // a second release is ignored
    const r3 = await third;
    expect(order).toEqual([3]);
    expect(sem.inUse).toBe(2);
    r2();
    r3();
    expect(sem.inUse).toBe(0);
  });
});
