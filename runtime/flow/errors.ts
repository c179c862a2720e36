// Errors of the flow worker. Each failure of a message is classified into a bounded `reason`
// (a metric label and the Tally-Error-Reason header) and permanent vs transient.
import { CodedError, TallyError } from '../../api/errors.ts';

export const FlowErrorCode = {
  InvalidJson: 'FLOW_INVALID_JSON',
  InvalidEnvelope: 'FLOW_INVALID_ENVELOPE',
  SinkRejected: 'FLOW_SINK_REJECTED',
  SinkUnavailable: 'FLOW_SINK_UNAVAILABLE',
  SinkTimeout: 'FLOW_SINK_TIMEOUT',
  /** The sink answered 429, or asked to be left alone (Retry-After) and the wait is not over. */
  SinkThrottled: 'FLOW_SINK_THROTTLED',
  /** The sink's circuit breaker is open: it was not called. */
  SinkCircuitOpen: 'FLOW_SINK_CIRCUIT_OPEN',
  /** The sink URL template names a value this event does not give. */
  SinkUrlTemplate: 'FLOW_SINK_URL_TEMPLATE',
  /** The credentials were refused (token endpoint, or 401 again with a fresh token). */
  SinkAuthRefused: 'FLOW_SINK_AUTH_REFUSED',
  /** The target took the event but its answer lacks the id xref.capture selects. */
  CaptureMissing: 'FLOW_CAPTURE_MISSING',
  /** The target says the object exists, and neither Tally nor the answer knows its id. */
  SinkDuplicate: 'FLOW_SINK_DUPLICATE',
  /** 409 Conflict (a concurrent change at the target): retried. */
  SinkConflict: 'FLOW_SINK_CONFLICT',
  MissingSecret: 'FLOW_MISSING_SECRET',
  UnsupportedSource: 'FLOW_UNSUPPORTED_SOURCE',
} as const;
export type FlowErrorCode = (typeof FlowErrorCode)[keyof typeof FlowErrorCode];

/** The source payload is not JSON: retrying cannot help. */
export class PayloadError extends TallyError {
  override name = 'PayloadError';
  readonly code = FlowErrorCode.InvalidJson;
}

/** The mapped event does not form a valid CloudEvents envelope (a mapping or config bug). */
export class EnvelopeError extends TallyError {
  override name = 'EnvelopeError';
  readonly code = FlowErrorCode.InvalidEnvelope;
}

export interface SinkErrorDetails {
  sink: string;
  permanent: boolean;
  /** HTTP status when the sink answered. */
  status?: number;
  /** Delay the sink asked for (Retry-After). */
  retryAfterMs?: number;
  code: FlowErrorCode;
}

/** A sink did not take the event: transient (retry later) or permanent (dead-letter). */
export class SinkError extends TallyError {
  override name = 'SinkError';
  readonly code: FlowErrorCode;
  readonly sink: string;
  readonly permanent: boolean;
  readonly status: number | undefined;
  readonly retryAfterMs: number | undefined;
  constructor(message: string, details: SinkErrorDetails, options?: ErrorOptions) {
    super(message, options);
    this.code = details.code;
    this.sink = details.sink;
    this.permanent = details.permanent;
    this.status = details.status;
    this.retryAfterMs = details.retryAfterMs;
  }
}

/** The worker cannot start with this config or environment; the message says what to set. */
export class WorkerStartupError extends CodedError<FlowErrorCode> {
  override name = 'WorkerStartupError';
}
