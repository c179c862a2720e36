// The CloudEvents 1.0 envelope around every canonical event, with Tally's lineage and a W3C
// trace context as extension attributes (lowercase alphanumeric names, as the spec requires).
import { z } from 'zod';
import { CANONICAL_ENTITIES } from './canonical/index.ts';

export const TRACEPARENT = /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

export const canonicalEventSchema = z
  .object({
    specversion: z.literal('1.0').describe('CloudEvents version.'),
    id: z.string().min(1).describe('Unique event id; also the Nats-Msg-Id used for dedupe.'),
    source: z.string().min(1).describe('URI-reference of the producer: /tally/<namespace>/flows/<flow>.'),
    type: z.string().min(1).describe('dev.tally.<entity>.v1'),
    subject: z.string().min(1).describe('The business key, e.g. the order id.'),
    time: z.iso.datetime({ offset: true }).describe('When the event was produced.'),
    datacontenttype: z.literal('application/json'),
    dataschema: z.string().optional().describe('URI of the canonical entity schema.'),
    data: z.unknown().describe('The canonical entity.'),
    // Tally extensions
    tallyentity: z.enum(CANONICAL_ENTITIES).describe('Canonical entity name.'),
    tallychannel: z.string().min(1).describe('Channel the event came from.'),
    tallyflow: z.string().min(1).describe('namespace/name of the IntegrationFlow.'),
    tallymapping: z.string().min(1).describe('namespace/name of the CanonicalMapping.'),
    tallymappingversion: z.string().min(1).describe('Generation of the mapping that produced the data.'),
    tallysourceid: z
      .string()
      .min(1)
      .describe('Id of the source message (Nats-Msg-Id of the ingested payload).'),
    tallyversion: z
      .string()
      .min(1)
      .describe('Version of the business entity; with the subject it forms the idempotency key.'),
    traceparent: z.string().regex(TRACEPARENT).describe('W3C trace context carried across every hop.'),
    tracestate: z.string().optional(),
  })
  .strict()
  .describe('A canonical event.');
export type CanonicalEvent = z.infer<typeof canonicalEventSchema>;

/** The key sinks deduplicate on: stable across retries and replays of the same entity version. */
export function idempotencyKey(
  event: Pick<CanonicalEvent, 'tallyentity' | 'subject' | 'tallyversion'>,
): string {
  return `${event.tallyentity}:${event.subject}:${event.tallyversion}`;
}
