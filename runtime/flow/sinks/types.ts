import type { EventHead } from '../transform.ts';

/** One destination of canonical events. deliver() resolves once the sink has it, or throws SinkError. */
export interface Sink {
  readonly name: string;
  readonly type: 'http' | 'nats';
  /** `body` is the serialised envelope (so every sink sends the same bytes). */
  deliver(event: EventHead, body: Uint8Array): Promise<void>;
  /** State of the sink's circuit breaker, for sinks that have one. */
  circuit?(): 'closed' | 'open' | 'half_open';
  close(): Promise<void>;
}
