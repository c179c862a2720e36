import { afterEach, describe, expect, it, vi } from 'vitest';
import { WorkQueue } from './queue.ts';

afterEach(() => {
  vi.useRealTimers();
});

describe('WorkQueue', () => {
  it('merges repeated adds of a key into one item', async () => {
    const q = new WorkQueue();
    q.add('a');
    q.add('a');
    q.add('b');
    q.add('a');
    expect(q.length).toBe(2);
    expect(await q.get()).toBe('a');
    expect(await q.get()).toBe('b');
  });

  it('never hands a key being processed to a second worker, and re-queues it when done', async () => {
    const q = new WorkQueue();
    q.add('a');
    const first = await q.get();
    q.add('a'); // event while processing
    expect(q.length).toBe(0);
    let second: string | undefined;
    void q.get().then((k) => {
      second = k;
    });
    await Promise.resolve();
    expect(second).toBeUndefined();
    q.done(first!);
    await Promise.resolve();
    expect(second).toBe('a');
  });

  it('backs off exponentially per key, capped, and forget() starts over', () => {
    vi.useFakeTimers();
    const q = new WorkQueue({ baseDelayMs: 100, maxDelayMs: 1000 });
    expect([1, 2, 3, 4, 5, 6].map(() => q.addRateLimited('k'))).toEqual([100, 200, 400, 800, 1000, 1000]);
    q.forget('k');
    expect(q.addRateLimited('k')).toBe(100);
  });

  it('adds after a delay, keeping the earliest pending delay', async () => {
    vi.useFakeTimers();
    const q = new WorkQueue();
    q.addAfter('k', 1000);
    q.addAfter('k', 5000);
    vi.advanceTimersByTime(999);
    expect(q.length).toBe(0);
    vi.advanceTimersByTime(1);
    expect(q.length).toBe(1);
  });

  it('releases waiting workers on shutdown', async () => {
    const q = new WorkQueue();
    const pending = q.get();
    q.shutDown();
    expect(await pending).toBeUndefined();
    q.add('x');
    expect(q.length).toBe(0);
  });
});
