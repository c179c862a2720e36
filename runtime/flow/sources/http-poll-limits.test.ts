import { describe, expect, it } from 'vitest';
import {
  classifyPollStatus,
  MAX_PAUSE_MS,
  nextCycleDelayMs,
  parseResetAt,
  QUOTA_PAUSE_WITHOUT_RESET_MS,
  quotaAdvice,
  RequestPacer,
  retryDecision,
} from './http-poll-limits.ts';

const NOW = Date.parse('2026-03-01T12:00:00Z');

describe('parseResetAt', () => {
  it('reads delta seconds, epoch seconds, epoch milliseconds and HTTP dates', () => {
    expect(parseResetAt('30', NOW)).toBe(NOW + 30_000);
    expect(parseResetAt(String(NOW / 1000 + 60), NOW)).toBe(NOW + 60_000);
    expect(parseResetAt(String(NOW + 5_000), NOW)).toBe(NOW + 5_000);
    expect(parseResetAt('Sun, 01 Mar 2026 12:00:10 GMT', NOW)).toBe(NOW + 10_000);
    expect(parseResetAt('soon', NOW)).toBeUndefined();
    expect(parseResetAt(undefined, NOW)).toBeUndefined();
  });
});

describe('quotaAdvice', () => {
  it('pauses until the reset when the quota is used up', () => {
    expect(quotaAdvice({ 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '20' }, NOW)).toEqual({
      pauseUntilMs: NOW + 20_000,
    });
    expect(quotaAdvice({ 'ratelimit-remaining': '0', 'ratelimit-reset': '3' }, NOW)).toEqual({
      pauseUntilMs: NOW + 3_000,
    });
    expect(quotaAdvice({ ratelimit: 'limit=100, remaining=0, reset=7' }, NOW)).toEqual({
      pauseUntilMs: NOW + 7_000,
    });
  });

  it('does not pause while quota remains', () => {
    expect(quotaAdvice({ 'x-ratelimit-remaining': '12', 'x-ratelimit-reset': '20' }, NOW)).toEqual({});
    expect(quotaAdvice({}, NOW)).toEqual({});
  });

  it('pauses briefly without a usable reset, and never beyond the cap', () => {
    expect(quotaAdvice({ 'x-ratelimit-remaining': '0' }, NOW).pauseUntilMs).toBe(
      NOW + QUOTA_PAUSE_WITHOUT_RESET_MS,
    );
    expect(
      quotaAdvice({ 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(NOW / 1000 + 86_400) }, NOW)
        .pauseUntilMs,
    ).toBe(NOW + MAX_PAUSE_MS);
  });

  it('spaces requests by x-amzn-RateLimit-Limit (requests per second)', () => {
    expect(quotaAdvice({ 'x-amzn-ratelimit-limit': '0.5' }, NOW)).toEqual({ minSpacingMs: 2_000 });
    expect(quotaAdvice({ 'x-amzn-ratelimit-limit': '20' }, NOW)).toEqual({ minSpacingMs: 50 });
    expect(quotaAdvice({ 'x-amzn-ratelimit-limit': 'x' }, NOW)).toEqual({});
  });
});

describe('classifyPollStatus', () => {
  it('sorts statuses', () => {
    expect([200, 204, 429, 503, 500, 408, 401, 404, 301].map(classifyPollStatus)).toEqual([
      'ok',
      'ok',
      'throttled',
      'throttled',
      'retry',
      'retry',
      'rejected',
      'rejected',
      'rejected',
    ]);
  });
});

describe('retryDecision', () => {
  it("follows the server's Retry-After in seconds or as a date", () => {
    expect(retryDecision(1, '2', NOW)).toEqual({ delayMs: 2_000, reason: 'retry_after' });
    expect(retryDecision(3, 'Sun, 01 Mar 2026 12:00:05 GMT', NOW)).toEqual({
      delayMs: 5_000,
      reason: 'retry_after',
    });
  });
  it('backs off exponentially with jitter otherwise', () => {
    const mid = () => 0.5;
    expect(retryDecision(1, undefined, NOW, { initialMs: 1_000, maxMs: 60_000 }, mid).delayMs).toBe(1_000);
    expect(retryDecision(4, undefined, NOW, { initialMs: 1_000, maxMs: 60_000 }, mid).delayMs).toBe(8_000);
    expect(retryDecision(20, undefined, NOW, { initialMs: 1_000, maxMs: 60_000 }, mid).delayMs).toBe(60_000);
    const low = retryDecision(2, undefined, NOW, { initialMs: 1_000, maxMs: 60_000 }, () => 0).delayMs;
    const high = retryDecision(2, undefined, NOW, { initialMs: 1_000, maxMs: 60_000 }, () => 1).delayMs;
    expect(low).toBeLessThan(high);
  });
});

describe('nextCycleDelayMs', () => {
  it('is the interval after success and grows after failures, never below the interval', () => {
    expect(nextCycleDelayMs(60_000, 0)).toBe(60_000);
    expect(nextCycleDelayMs(5_000, 1, () => 0.5)).toBe(5_000);
    expect(nextCycleDelayMs(5_000, 3, () => 0.5)).toBe(20_000);
    expect(nextCycleDelayMs(5_000, 30, () => 0.5)).toBe(300_000);
    expect(nextCycleDelayMs(600_000, 30, () => 0.5)).toBe(600_000);
  });
});

describe('RequestPacer', () => {
  it('holds requests until a quota reset or a Retry-After time', () => {
    const p = new RequestPacer();
    expect(p.waitMs(NOW).ms).toBe(0);
    p.observe({ 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '4' }, NOW);
    expect(p.waitMs(NOW + 1_000)).toEqual({ ms: 3_000, reason: 'quota' });
    p.holdUntil(NOW + 9_000);
    expect(p.waitMs(NOW)).toEqual({ ms: 9_000, reason: 'retry_after' });
    expect(p.waitMs(NOW + 10_000).ms).toBe(0);
  });
  it('spaces request starts as Amazon asks', () => {
    const p = new RequestPacer();
    p.started(NOW);
    p.observe({ 'x-amzn-ratelimit-limit': '2' }, NOW + 10);
    expect(p.waitMs(NOW + 100).ms).toBe(400);
    expect(p.waitMs(NOW + 600).ms).toBe(0);
  });
});
