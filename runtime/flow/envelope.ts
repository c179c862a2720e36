// Wrap a mapped entity in its CloudEvents envelope. Deterministic: the same source message and
// mapping give the same event (id, time, trace span), so a redelivery is recognised downstream.
import { hash } from 'node:crypto';
import { CANONICAL_ENTITIES, type CanonicalEntity, eventType } from '../../api/canonical/index.ts';
import type { CanonicalEvent } from '../../api/envelope.ts';
import { canonicalSchemaId } from '../../api/json-schema.ts';
import { EnvelopeError } from './errors.ts';
import { childSpan, formatTraceparent, type TraceContext } from './trace.ts';

export interface EnvelopeInput {
  flow: { namespace: string; name: string; channel: string; entity: CanonicalEntity };
  mapping: { name: string; generation: number };
  /** The mapped entity and its business key. */
  output: Record<string, unknown>;
  key: string;
  /** Nats-Msg-Id of the ingested source message. */
  sourceMsgId: string;
  /** Trace context of the ingested message. */
  trace: TraceContext;
  /** When the flow stream stored the source message. */
  time: Date;
}

/** UUID-shaped (version 8, RFC 9562) id from SHA-256 of the flow and the source message id. */
export function eventId(flow: { namespace: string; name: string }, sourceMsgId: string): string {
  const h = hash('sha256', `${flow.namespace}/${flow.name}\n${sourceMsgId}`, 'buffer');
  h[6] = (h[6]! & 0x0f) | 0x80;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

/** The entity's version: its `version` field, else `updatedAt`, else the source message id. */
export function entityVersion(output: Record<string, unknown>, sourceMsgId: string): string {
  const v = output.version;
  if ((typeof v === 'number' && Number.isFinite(v)) || (typeof v === 'string' && v !== '')) return String(v);
  const u = output.updatedAt;
  if (typeof u === 'string' && u !== '') return u;
  return sourceMsgId;
}

/** The published JSON Schema of each entity (schemas/canonical/v1): the event's dataschema. */
const DATASCHEMAS = Object.fromEntries(CANONICAL_ENTITIES.map((e) => [e, canonicalSchemaId(e)])) as Record<
  CanonicalEntity,
  string
>;

export function buildEnvelope(input: EnvelopeInput): CanonicalEvent {
  const { flow, mapping } = input;
  if (Number.isNaN(input.time.getTime())) {
    throw new EnvelopeError('the canonical event envelope is invalid: time: not a valid time');
  }
  const id = eventId(flow, input.sourceMsgId);
  const event: CanonicalEvent = {
    specversion: '1.0',
    id,
    source: `/tally/${flow.namespace}/flows/${flow.name}`,
    type: eventType(flow.entity),
    subject: input.key,
    time: input.time.toISOString(),
    datacontenttype: 'application/json',
    dataschema: DATASCHEMAS[flow.entity],
    data: input.output,
    tallyentity: flow.entity,
    tallychannel: flow.channel,
    tallyflow: `${flow.namespace}/${flow.name}`,
    tallymapping: mapping.name,
    tallymappingversion: String(mapping.generation),
    tallysourceid: input.sourceMsgId,
    tallyversion: entityVersion(input.output, input.sourceMsgId),
    traceparent: formatTraceparent(childSpan(input.trace, id)),
  };
  // Every other attribute is made here from validated config; these come from the message. (The
  // whole shape is checked against canonicalEventSchema in the unit tests, not per event: a zod
  // parse of the envelope cost as much as the rest of building it.)
  const empty = (['subject', 'tallychannel', 'tallysourceid', 'tallyversion'] as const).filter(
    (k) => event[k] === '',
  );
  if (empty.length > 0) {
    const problems = empty.map((k) => `${k}: must not be empty`).join('; ');
    throw new EnvelopeError(`the canonical event envelope is invalid: ${problems}`);
  }
  return event;
}
