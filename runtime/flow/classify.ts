// Decisions about failures, as pure functions: is an HTTP answer delivered / transient / permanent,
// and what bounded reason and permanence does an error carry.
import { BusError } from '../bus/errors.ts';
import { MappingError } from '../mapping/errors.ts';
import { XrefMissingError } from '../xref/context.ts';
import { EnvelopeError, FlowErrorCode, PayloadError, SinkError } from './errors.ts';
import { StateStoreError } from './state/kv-store.ts';

export type HttpOutcome = 'delivered' | 'transient' | 'permanent';

/**
 * A sink failure that says "the sink is unavailable or asked us to wait", not "this message is bad"
 * (reasons sink_circuit_open and sink_throttled): the circuit was open (no request), the sink-wide
 * Retry-After pause was not over (no request), or the sink answered 429. A delivery whose every
 * failure is one of these spends no attempt of `delivery.maxDeliver` and is never dead-lettered:
 * the message waits for the sink (see processor.ts).
 */
export function isSinkWait(err: unknown): boolean {
  return (
    err instanceof SinkError &&
    !err.permanent &&
    (err.code === FlowErrorCode.SinkCircuitOpen || err.code === FlowErrorCode.SinkThrottled)
  );
}

/**
 * 2xx delivered; 408, 409 (a concurrent change at the target, e.g. an optimistic-lock conflict), 429
 * and 5xx may pass; any other answer (4xx, 3xx, 1xx) needs a fix first.
 */
export function classifyHttpStatus(status: number): HttpOutcome {
  if (status >= 200 && status < 300) return 'delivered';
  if (status === 408 || status === 409 || status === 429 || status >= 500) return 'transient';
  return 'permanent';
}

/** Retry-After as delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfterMs(value: string | undefined, nowMs: number): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  if (/^[0-9]+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

/** Bounded values of the `reason` label and the Tally-Error-Reason header. */
export const FAILURE_REASONS = [
  'invalid_json',
  'mapping_compile',
  'mapping_evaluation',
  'mapping_limit',
  'mapping_validation',
  'mapping_business_key',
  'invalid_envelope',
  'sink_rejected',
  'sink_unavailable',
  'sink_timeout',
  'sink_throttled',
  'sink_circuit_open',
  'sink_url_template',
  'sink_auth_refused',
  'capture_missing',
  'sink_duplicate',
  'sink_conflict',
  'waiting_for_xref',
  'bus_unavailable',
  'internal',
] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];

export interface Failure {
  reason: FailureReason;
  permanent: boolean;
  /** Error class name and stable code for the dead-letter record. */
  errorClass: string;
  code: string;
  message: string;
  /** Delay a sink asked for. */
  retryAfterMs?: number;
}

/** Sink failures whose reason is their code's, permanent or not. */
const SINK_CODE_REASONS: Partial<Record<string, FailureReason>> = {
  [FlowErrorCode.SinkUrlTemplate]: 'sink_url_template',
  [FlowErrorCode.SinkAuthRefused]: 'sink_auth_refused',
  [FlowErrorCode.CaptureMissing]: 'capture_missing',
  [FlowErrorCode.SinkDuplicate]: 'sink_duplicate',
  [FlowErrorCode.SinkConflict]: 'sink_conflict',
};

export function classifyFailure(err: unknown): Failure {
  const e = err instanceof Error ? err : new Error(String(err));
  const base = { errorClass: e.name, message: e.message };
  if (e instanceof PayloadError) return { ...base, reason: 'invalid_json', permanent: true, code: e.code };
  if (e instanceof MappingError) {
    const reason = `mapping_${e.reason}` as FailureReason;
    return {
      ...base,
      reason: FAILURE_REASONS.includes(reason) ? reason : 'mapping_evaluation',
      permanent: e.permanent,
      code: e.code,
    };
  }
  if (e instanceof EnvelopeError)
    return { ...base, reason: 'invalid_envelope', permanent: true, code: e.code };
  if (e instanceof XrefMissingError) {
    return { ...base, reason: 'waiting_for_xref', permanent: false, code: e.code };
  }
  if (e instanceof StateStoreError)
    return { ...base, reason: 'bus_unavailable', permanent: false, code: e.code };
  if (e instanceof SinkError) {
    const reason: FailureReason = SINK_CODE_REASONS[e.code]
      ? SINK_CODE_REASONS[e.code]!
      : e.permanent
        ? 'sink_rejected'
        : e.code === FlowErrorCode.SinkTimeout
          ? 'sink_timeout'
          : e.code === FlowErrorCode.SinkThrottled
            ? 'sink_throttled'
            : e.code === FlowErrorCode.SinkCircuitOpen
              ? 'sink_circuit_open'
              : 'sink_unavailable';
    return {
      ...base,
      reason,
      permanent: e.permanent,
      code: e.code,
      ...(e.retryAfterMs !== undefined ? { retryAfterMs: e.retryAfterMs } : {}),
    };
  }
  if (e instanceof BusError) return { ...base, reason: 'bus_unavailable', permanent: false, code: e.code };
  const maybe = (e as { code?: unknown }).code;
  const code = typeof maybe === 'string' ? maybe : 'INTERNAL';
  return { ...base, reason: 'internal', permanent: false, code };
}
