// Concurrency and rate bounds for sinks: a counting semaphore and a token bucket with an injected clock.
import { setTimeout as sleep } from 'node:timers/promises';

export class Semaphore {
  readonly #max: number;
  #used = 0;
  readonly #waiting: (() => void)[] = [];
  constructor(max: number) {
    this.#max = Math.max(1, max);
  }
  get inUse(): number {
    return this.#used;
  }
  async acquire(): Promise<() => void> {
    if (this.#used >= this.#max) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    else this.#used++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiting.shift();
      // Hand the slot straight to the next waiter so the count never overshoots.
      if (next) next();
      else this.#used--;
    };
  }
}

export interface TokenBucketOptions {
  requestsPerSecond: number;
  burst: number;
  now?: () => number;
}

/** Classic token bucket: `take()` returns 0 when a token was available, else how long to wait. */
export class TokenBucket {
  readonly #rate: number;
  readonly #burst: number;
  readonly #now: () => number;
  #tokens: number;
  #last: number;
  constructor(o: TokenBucketOptions) {
    this.#rate = o.requestsPerSecond / 1000;
    this.#burst = Math.max(1, o.burst);
    this.#now = o.now ?? (() => performance.now());
    this.#tokens = this.#burst;
    this.#last = this.#now();
  }
  take(): number {
    const now = this.#now();
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#last) * this.#rate);
    this.#last = now;
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return 0;
    }
    return Math.ceil((1 - this.#tokens) / this.#rate);
  }
  async acquire(signal?: AbortSignal): Promise<void> {
    for (let wait = this.take(); wait > 0; wait = this.take()) {
      await sleep(wait, undefined, signal ? { signal } : {});
    }
  }
}
