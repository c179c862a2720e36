import { describe, expect, it } from 'vitest';
import { nakDelayMs, retryDelayMs } from './backoff.ts';

const policy = { initialMs: 1_000, maxMs: 120_000 };

describe('retryDelayMs', () => {
  it('doubles from initialBackoff by delivery count, capped at maxBackoff (no jitter at random 0.5)', () => {
    const mid = () => 0.5;
    expect([1, 2, 3, 4, 5, 6, 7, 8, 9].map((n) => retryDelayMs(n, policy, mid))).toEqual([
      1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 120_000, 120_000,
    ]);
    expect(retryDelayMs(10_000, policy, mid)).toBe(120_000);
  });

  it('jitters by ±20 % and never exceeds maxBackoff', () => {
    expect(retryDelayMs(1, policy, () => 0)).toBe(800);
    expect(retryDelayMs(1, policy, () => 1)).toBe(1_200);
    expect(retryDelayMs(8, policy, () => 1)).toBe(120_000);
    for (let i = 0; i < 200; i++) {
      const d = retryDelayMs(3, policy);
      expect(d).toBeGreaterThanOrEqual(3_200);
      expect(d).toBeLessThanOrEqual(4_800);
    }
  });

  it('treats a count below 1 as the first attempt', () => {
    expect(retryDelayMs(0, policy, () => 0.5)).toBe(1_000);
  });
});

describe('nakDelayMs', () => {
  it('lets a longer Retry-After win, capped at maxBackoff', () => {
    expect(nakDelayMs(1_000, undefined, 120_000)).toBe(1_000);
    expect(nakDelayMs(1_000, 30_000, 120_000)).toBe(30_000);
    expect(nakDelayMs(5_000, 1_000, 120_000)).toBe(5_000);
    expect(nakDelayMs(1_000, 3_600_000, 120_000)).toBe(120_000);
  });
});
