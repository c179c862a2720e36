// A lease in the flow's KV bucket so that one replica at a time does a job (polling an API) while
// the others stand by. Taken and renewed with compare-and-set on the key's revision; lapses `ttlMs`
// after the last renewal when its holder dies; released on a graceful stop so a successor takes
// over at once. Expiry compares wall clocks of the replicas: skew must stay well below the TTL.
import { STATE_ERROR_CODES, type StateStore, StateStoreError } from './kv-store.ts';

export interface LeaseRecord {
  holder: string;
  /** Epoch ms after which others may take the lease. */
  until: number;
  acquiredAt: string;
}

export type LeaseDecision = 'take' | 'renew' | 'wait';

/** Pure: with the current record (undefined = nobody), may `me` hold the lease now? */
export function leaseDecision(current: LeaseRecord | undefined, me: string, nowMs: number): LeaseDecision {
  if (!current) return 'take';
  if (current.holder === me) return 'renew';
  return current.until <= nowMs ? 'take' : 'wait';
}

export interface LeaseOptions {
  store: StateStore;
  key: string;
  /** Unique per process: host name and a random part. */
  holder: string;
  ttlMs: number;
  now?: () => number;
}

export class Lease {
  readonly #o: Required<LeaseOptions>;
  #revision: number | undefined;
  #until = 0;
  #holderSeen: string | undefined;

  constructor(options: LeaseOptions) {
    this.#o = { now: Date.now, ...options };
  }

  /** Holder last seen in the store (for logs). */
  get holderSeen(): string | undefined {
    return this.#holderSeen;
  }

  /** True while we hold it by our own clock (a renewal is due well before it runs out). */
  held(): boolean {
    return this.#revision !== undefined && this.#o.now() < this.#until;
  }

  /**
   * Take or renew the lease; false when another holder has it (or won a race for it). Throws
   * StateStoreError (unavailable) when the store cannot be reached: treat that as not held.
   */
  async acquire(): Promise<boolean> {
    const { store, key, holder, ttlMs } = this.#o;
    const now = this.#o.now();
    const entry = await store.get<LeaseRecord>(key);
    this.#holderSeen = entry?.value.holder;
    const decision = leaseDecision(entry?.value, holder, now);
    if (decision === 'wait') {
      this.#revision = undefined;
      return false;
    }
    const record: LeaseRecord = {
      holder,
      until: now + ttlMs,
      acquiredAt:
        decision === 'renew' && entry?.value.acquiredAt
          ? entry.value.acquiredAt
          : new Date(now).toISOString(),
    };
    try {
      this.#revision = await store.put(key, record, entry ? entry.revision : 0);
      this.#until = record.until;
      this.#holderSeen = holder;
      return true;
    } catch (err) {
      this.#revision = undefined;
      if (err instanceof StateStoreError && err.code === STATE_ERROR_CODES.conflict) return false;
      throw err;
    }
  }

  /** Give the lease up (only if still ours), so a successor need not wait for it to lapse. */
  async release(): Promise<void> {
    const { store, key, holder } = this.#o;
    if (this.#revision === undefined) return;
    const revision = this.#revision;
    this.#revision = undefined;
    try {
      const record: LeaseRecord = { holder, until: 0, acquiredAt: new Date(this.#o.now()).toISOString() };
      await store.put(key, record, revision);
    } catch {
      // Someone else has it already, or NATS is away: it lapses by itself.
    }
  }
}
