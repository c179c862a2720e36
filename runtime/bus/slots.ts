// A bound on messages held by a worker, shared by all the consumers it pulls from (one per
// partition in an ordered flow). A consumer takes slots before it asks the server for messages
// and gives back each one when its message is settled, so a worker never holds more than `max`
// messages however slow its sinks are: backpressure, not buffering.

export class Slots {
  readonly max: number;
  #used = 0;
  readonly #waiting: { resolve: () => void; reject: (err: unknown) => void }[] = [];

  constructor(max: number) {
    this.max = Math.max(1, Math.floor(max));
  }

  /** Slots taken: messages requested from the server or being handled. */
  get used(): number {
    return this.#used;
  }

  get free(): number {
    return this.max - this.#used;
  }

  /**
   * Waits (first come, first served) until a slot is free, then takes as many free ones as there
   * are, up to `want`; resolves to how many it took (at least 1). Rejects when the signal aborts.
   */
  async take(want: number, signal?: AbortSignal): Promise<number> {
    signal?.throwIfAborted();
    if (this.#used >= this.max || this.#waiting.length > 0) {
      await new Promise<void>((resolve, reject) => {
        const waiter = {
          resolve: () => {
            signal?.removeEventListener('abort', onAbort);
            resolve();
          },
          reject,
        };
        const onAbort = () => {
          const i = this.#waiting.indexOf(waiter);
          if (i >= 0) this.#waiting.splice(i, 1);
          reject(signal?.reason);
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        this.#waiting.push(waiter);
      });
      // The slot handed over by give() is already counted as ours.
      const more = Math.min(Math.max(0, want - 1), this.free);
      this.#used += more;
      return 1 + more;
    }
    const n = Math.min(Math.max(1, want), this.free);
    this.#used += n;
    return n;
  }

  /** Gives back `n` slots; waiters get them first. */
  give(n = 1): void {
    for (let i = 0; i < n; i++) {
      const next = this.#waiting.shift();
      // Handed straight to the next waiter: the count does not change.
      if (next) next.resolve();
      else this.#used = Math.max(0, this.#used - 1);
    }
  }
}
