import { describe, expect, it } from 'vitest';
import { CircuitBreaker, type CircuitState, HALF_OPEN_RETRY_MS } from './circuit-breaker.ts';

function breaker(threshold = 3, coolDownMs = 1_000) {
  let now = 0;
  const changes: [CircuitState, CircuitState][] = [];
  const b = new CircuitBreaker({
    failureThreshold: threshold,
    coolDownMs,
    now: () => now,
    onChange: (from, to) => changes.push([from, to]),
  });
  return { b, changes, tick: (ms: number) => (now += ms) };
}

describe('CircuitBreaker', () => {
  it('opens after the threshold of consecutive failures; an answer in between resets the count', () => {
    const { b, changes } = breaker(3);
    b.failure(false);
    b.failure(false);
    b.success(false);
    b.failure(false);
    b.failure(false);
    expect(b.state).toBe('closed');
    b.failure(false);
    expect(b.state).toBe('open');
    expect(changes).toEqual([['closed', 'open']]);
  });

  it('refuses while open with the time left, then lets exactly one probe through', () => {
    const { b, tick } = breaker(1, 1_000);
    b.failure(false);
    expect(b.admit()).toEqual({ allowed: false, retryInMs: 1_000 });
    tick(400);
    expect(b.admit()).toEqual({ allowed: false, retryInMs: 600 });
    tick(600);
    expect(b.admit()).toEqual({ allowed: true, probe: true });
    expect(b.state).toBe('half_open');
    expect(b.admit()).toEqual({ allowed: false, retryInMs: HALF_OPEN_RETRY_MS });
  });

  it('closes when the probe gets an answer, opens again for a full cool-down when it fails', () => {
    const { b, changes, tick } = breaker(1, 1_000);
    b.failure(false);
    tick(1_000);
    expect(b.admit()).toMatchObject({ probe: true });
    b.failure(true);
    expect(b.state).toBe('open');
    tick(999);
    expect(b.admit().allowed).toBe(false);
    tick(1);
    expect(b.admit()).toMatchObject({ probe: true });
    b.success(true);
    expect(b.state).toBe('closed');
    expect(b.admit()).toEqual({ allowed: true, probe: false });
    expect(changes).toEqual([
      ['closed', 'open'],
      ['open', 'half_open'],
      ['half_open', 'open'],
      ['open', 'half_open'],
      ['half_open', 'closed'],
    ]);
  });

  it('is not closed by a late answer to a request sent before it opened', () => {
    const { b } = breaker(1);
    b.failure(false);
    b.success(false);
    expect(b.state).toBe('open');
  });
});
