import { describe, expect, it } from 'vitest';
import { memoryStateStore } from './kv-store.ts';
import { Lease, leaseDecision } from './lease.ts';

describe('leaseDecision', () => {
  it('takes a free or lapsed lease, renews its own, waits for a live one', () => {
    expect(leaseDecision(undefined, 'a', 10)).toBe('take');
    expect(leaseDecision({ holder: 'a', until: 5, acquiredAt: '' }, 'a', 10)).toBe('renew');
    expect(leaseDecision({ holder: 'b', until: 5, acquiredAt: '' }, 'a', 10)).toBe('take');
    expect(leaseDecision({ holder: 'b', until: 50, acquiredAt: '' }, 'a', 10)).toBe('wait');
  });
});

describe('Lease', () => {
  it('lets one holder at a time have it, hands over on release or expiry', async () => {
    const store = memoryStateStore();
    let now = 1_000;
    const a = new Lease({ store, key: 'lease', holder: 'a', ttlMs: 100, now: () => now });
    const b = new Lease({ store, key: 'lease', holder: 'b', ttlMs: 100, now: () => now });
    expect(await a.acquire()).toBe(true);
    expect(await b.acquire()).toBe(false);
    expect(b.holderSeen).toBe('a');
    now += 50;
    expect(await a.acquire()).toBe(true); // renewed until 1150
    now += 80;
    expect(await b.acquire()).toBe(false);
    expect(a.held()).toBe(true);
    now += 100; // a died: lapsed
    expect(a.held()).toBe(false);
    expect(await b.acquire()).toBe(true);
    expect(await a.acquire()).toBe(false);
    await b.release();
    expect(await a.acquire()).toBe(true);
  });

  it('loses a race for the same lease cleanly', async () => {
    const store = memoryStateStore();
    const leases = ['a', 'b', 'c'].map((h) => new Lease({ store, key: 'lease', holder: h, ttlMs: 1_000 }));
    const won = await Promise.all(leases.map((l) => l.acquire()));
    expect(won.filter(Boolean)).toHaveLength(1);
  });
});
