import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CANONICAL_ENTITIES } from '../../api/canonical/index.ts';
import { canonicalEventSchema, idempotencyKey } from '../../api/envelope.ts';
import { schemaFileName } from '../../api/json-schema.ts';
import { buildEnvelope, entityVersion, eventId } from './envelope.ts';
import { EnvelopeError } from './errors.ts';
import { parseTraceparent } from './trace.ts';

const trace = parseTraceparent('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01')!;
const input = {
  flow: { namespace: 'shop', name: 'shopify-orders', channel: 'shopify-us', entity: 'Order' as const },
  mapping: { name: 'shop/shopify-order', generation: 4 },
  output: { orderId: 'shopify-1', version: 1795191302000, updatedAt: '2026-11-20T10:15:02-06:00' },
  key: 'shopify-1',
  sourceMsgId: 'b54557e1-0ea2-4ee8-9f4b-4f44d1f2f0a1',
  trace,
  time: new Date('2026-11-20T16:15:03.000Z'),
};

describe('buildEnvelope', () => {
  it('builds a valid CloudEvent with Tally lineage', () => {
    const e = buildEnvelope(input);
    expect(canonicalEventSchema.parse(e)).toEqual(e);
    expect(e).toMatchObject({
      specversion: '1.0',
      source: '/tally/shop/flows/shopify-orders',
      type: 'dev.tally.order.v1',
      subject: 'shopify-1',
      time: '2026-11-20T16:15:03.000Z',
      datacontenttype: 'application/json',
      dataschema: 'https://tally.dev/schemas/canonical/v1/order.json',
      tallyentity: 'Order',
      tallychannel: 'shopify-us',
      tallyflow: 'shop/shopify-orders',
      tallymapping: 'shop/shopify-order',
      tallymappingversion: '4',
      tallysourceid: input.sourceMsgId,
      tallyversion: '1795191302000',
      data: input.output,
    });
    expect(idempotencyKey(e)).toBe('Order:shopify-1:1795191302000');
  });

  it('is deterministic: a redelivery yields the same event', () => {
    expect(buildEnvelope(input)).toEqual(buildEnvelope({ ...input }));
    expect(buildEnvelope(input).id).not.toBe(buildEnvelope({ ...input, sourceMsgId: 'other' }).id);
  });

  it('continues the trace with a new span', () => {
    const e = buildEnvelope(input);
    const t = parseTraceparent(e.traceparent)!;
    expect(t.traceId).toBe(trace.traceId);
    expect(t.spanId).not.toBe(trace.spanId);
    expect(t.flags).toBe('01');
  });

  it('rejects an empty business key with an EnvelopeError naming the field', () => {
    expect(() => buildEnvelope({ ...input, key: '' })).toThrow(EnvelopeError);
    expect(() => buildEnvelope({ ...input, key: '' })).toThrow(/subject/);
  });

  it('rejects an empty channel and an invalid time with an EnvelopeError naming the field', () => {
    expect(() => buildEnvelope({ ...input, flow: { ...input.flow, channel: '' } })).toThrow(/tallychannel/);
    expect(() => buildEnvelope({ ...input, time: new Date(Number.NaN) })).toThrow(EnvelopeError);
    expect(() => buildEnvelope({ ...input, time: new Date(Number.NaN) })).toThrow(/time/);
  });

  it('satisfies the envelope schema for every entity and for versions from each source', () => {
    for (const entity of CANONICAL_ENTITIES) {
      for (const output of [{ version: 3 }, { updatedAt: '2026-11-20T10:15:02Z' }, {}]) {
        const e = buildEnvelope({ ...input, flow: { ...input.flow, entity }, output });
        expect(canonicalEventSchema.safeParse(e).success, `${entity} ${JSON.stringify(output)}`).toBe(true);
        // The dataschema is the $id of the schema published for the entity.
        const published = JSON.parse(
          readFileSync(
            new URL(`../../schemas/canonical/v1/${schemaFileName(entity)}`, import.meta.url),
            'utf8',
          ),
        ) as { $id: string };
        expect(e.dataschema).toBe(published.$id);
      }
    }
  });
});

describe('eventId', () => {
  it('is a UUID (version 8) that depends on flow and source id', () => {
    const id = eventId({ namespace: 'a', name: 'b' }, 'x');
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(eventId({ namespace: 'a', name: 'b' }, 'x')).toBe(id);
    expect(eventId({ namespace: 'a', name: 'c' }, 'x')).not.toBe(id);
  });
});

describe('entityVersion', () => {
  it('prefers version, then updatedAt, then the source message id', () => {
    expect(entityVersion({ version: 7, updatedAt: 'u' }, 's')).toBe('7');
    expect(entityVersion({ updatedAt: '2026-01-01T00:00:00Z' }, 's')).toBe('2026-01-01T00:00:00Z');
    expect(entityVersion({}, 's')).toBe('s');
    expect(entityVersion({ version: null }, 's')).toBe('s');
  });
});
