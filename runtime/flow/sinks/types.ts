import type { SinkWriteOutcome } from '../../telemetry/metrics.ts';
import type { EventHead } from '../transform.ts';

/** What a sink that keeps cross-references did: for logs and the sink-write metric. */
export interface SinkReceipt {
  outcome: SinkWriteOutcome;
  /** The target's id of the object (captured now, or known before). */
  targetId?: string;
  /** The system that id belongs to. */
  system?: string;
}

/** One destination of canonical events. deliver() resolves once the sink has it, or throws SinkError. */
export interface Sink {
  readonly name: string;
  readonly type: 'http' | 'nats' | 'masterData';
  /**
   * `body` is the serialised envelope (every sink without an outbound mapping sends the same bytes);
   * `data` the canonical entity, which outbound mappings and URL templates read.
   */
  deliver(event: EventHead, body: Uint8Array, data?: unknown): Promise<SinkReceipt | undefined>;
  /** State of the sink's circuit breaker, for sinks that have one. */
  circuit?(): 'closed' | 'open' | 'half_open';
  close(): Promise<void>;
}
