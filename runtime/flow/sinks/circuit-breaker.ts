// A circuit breaker per sink, as a small state machine with an injected clock. Closed: requests go
// out; after `failureThreshold` transient failures in a row it opens. Open: nothing goes out for
// `coolDownMs` (events wait in the stream instead of hammering a sink that is down). Then one probe
// request goes out (half-open): an answer closes the circuit, another failure opens it again.

export type CircuitState = 'closed' | 'open' | 'half_open';

export const CIRCUIT_STATES: readonly CircuitState[] = ['closed', 'open', 'half_open'];

export interface CircuitBreakerOptions {
  failureThreshold: number;
  coolDownMs: number;
  now?: () => number;
  /** Called on every change of state (for metrics and logs). */
  onChange?: (from: CircuitState, to: CircuitState) => void;
}

export type Admission = { allowed: true; probe: boolean } | { allowed: false; retryInMs: number };

/** How long a request waits while the probe of a half-open circuit is out. */
export const HALF_OPEN_RETRY_MS = 1_000;

export const DEFAULT_CIRCUIT_BREAKER = { failureThreshold: 5, coolDownMs: 30_000 } as const;

export class CircuitBreaker {
  readonly #threshold: number;
  readonly #coolDownMs: number;
  readonly #now: () => number;
  readonly #onChange: CircuitBreakerOptions['onChange'];
  #state: CircuitState = 'closed';
  #failures = 0;
  #openedAt = 0;
  #probeOut = false;

  constructor(o: CircuitBreakerOptions) {
    this.#threshold = Math.max(1, o.failureThreshold);
    this.#coolDownMs = Math.max(1, o.coolDownMs);
    this.#now = o.now ?? (() => performance.now());
    this.#onChange = o.onChange;
  }

  get state(): CircuitState {
    return this.#state;
  }

  /** Transient failures in a row so far. */
  get consecutiveFailures(): number {
    return this.#failures;
  }

  /** May a request go out now? A half-open circuit lets exactly one probe through at a time. */
  admit(): Admission {
    if (this.#state === 'open') {
      const left = this.#openedAt + this.#coolDownMs - this.#now();
      if (left > 0) return { allowed: false, retryInMs: Math.ceil(left) };
      this.#set('half_open');
    }
    if (this.#state === 'half_open') {
      if (this.#probeOut)
        return { allowed: false, retryInMs: Math.min(HALF_OPEN_RETRY_MS, this.#coolDownMs) };
      this.#probeOut = true;
      return { allowed: true, probe: true };
    }
    return { allowed: true, probe: false };
  }

  /** The sink answered (any answer that shows it is up: 2xx, a 4xx, 429). */
  success(probe: boolean): void {
    this.#failures = 0;
    if (probe) this.#probeOut = false;
    // A late answer to a request sent before the circuit opened does not close it: only a probe does.
    if (this.#state === 'half_open' && probe) this.#set('closed');
  }

  /** A transient failure: 5xx, 408, a timeout or a network error. */
  failure(probe: boolean): void {
    this.#failures++;
    if (probe) this.#probeOut = false;
    if (this.#state === 'half_open' && probe) this.#open();
    else if (this.#state === 'closed' && this.#failures >= this.#threshold) this.#open();
  }

  #open(): void {
    this.#openedAt = this.#now();
    this.#set('open');
  }

  #set(to: CircuitState): void {
    const from = this.#state;
    if (from === to) return;
    this.#state = to;
    this.#onChange?.(from, to);
  }
}
