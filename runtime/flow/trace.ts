// W3C trace context (traceparent) carried from the webhook to every sink.
import { hash, randomBytes } from 'node:crypto';
import { TRACEPARENT } from '../../api/envelope.ts';

export interface TraceContext {
  traceId: string;
  spanId: string;
  flags: string;
}

/** The parsed header, or undefined when it is absent or invalid (all-zero ids are invalid). */
export function parseTraceparent(value: string | undefined): TraceContext | undefined {
  const v = value?.trim().toLowerCase();
  if (!v || !TRACEPARENT.test(v)) return undefined;
  const [, traceId = '', spanId = '', flags = ''] = v.split('-');
  if (/^0+$/.test(traceId) || /^0+$/.test(spanId)) return undefined;
  return { traceId, spanId, flags };
}

export function formatTraceparent(t: TraceContext): string {
  return `00-${t.traceId}-${t.spanId}-${t.flags}`;
}

/** A new sampled trace. */
export function newTrace(random: (n: number) => Buffer = randomBytes): TraceContext {
  return { traceId: random(16).toString('hex'), spanId: random(8).toString('hex'), flags: '01' };
}

/** Use the incoming traceparent when valid, else start a new trace. */
export function traceFromHeader(value: string | undefined): TraceContext {
  return parseTraceparent(value) ?? newTrace();
}

/**
 * The span of one hop, derived from a seed (the event id) so a redelivered message gets the same
 * span id and the envelope stays byte-identical.
 */
export function childSpan(parent: TraceContext, seed: string): TraceContext {
  const spanId = hash('sha256', seed, 'hex').slice(0, 16);
  return {
    traceId: parent.traceId,
    spanId: /^0+$/.test(spanId) ? '0000000000000001' : spanId,
    flags: parent.flags,
  };
}

/** A trace derived from a seed, for messages that arrived without one: redeliveries agree on it. */
export function traceFromSeed(seed: string): TraceContext {
  const h = hash('sha256', `trace\n${seed}`, 'hex');
  return { traceId: h.slice(0, 32), spanId: h.slice(32, 48), flags: '01' };
}
