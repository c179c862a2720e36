// The published JSON Schemas: committed files match what api/ generates, and the example mappings'
// expected outputs satisfy them. No JSON Schema validator (such as ajv) is a dependency, so the
// committed schemas are read back into validators with zod's own JSON Schema importer (z.fromJSONSchema):
// the check runs against the published documents, not against the zod schemas they came from.
import { globSync, readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as yaml from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { CANONICAL_ENTITIES, type CanonicalEntity, canonicalSchemas, eventType } from './canonical/index.ts';
import {
  canonicalSchemaId,
  EVENT_SCHEMA_FILE,
  type JsonSchema,
  renderSchemaFiles,
  SCHEMA_BASE_URL,
  SCHEMA_DIR,
  schemaFileName,
} from './json-schema.ts';

const root = join(import.meta.dirname, '..');

function published(file: string): JsonSchema {
  return JSON.parse(readFileSync(join(root, SCHEMA_DIR, file), 'utf8')) as JsonSchema;
}

interface ExactCase {
  file: string;
  mapping: string;
  name: string;
  entity: CanonicalEntity;
  expected: unknown;
}

/** The exact-match test cases of every example mapping: their expected output is a whole entity. */
function exactCases(): ExactCase[] {
  const examples = join(root, 'examples');
  interface Mapping {
    kind?: string;
    metadata: { name: string };
    spec: {
      entity: CanonicalEntity;
      direction?: string;
      tests?: { name: string; match?: string; expected: unknown; expectedError?: string }[];
    };
  }
  return globSync('**/*.yaml', { cwd: examples }).flatMap((file) =>
    (yaml.loadAll(readFileSync(join(examples, file), 'utf8')) as (Mapping | null)[])
      // Inbound mappings produce canonical entities; outbound ones produce the target's requests.
      .filter((doc): doc is Mapping => doc?.kind === 'CanonicalMapping' && doc.spec.direction !== 'outbound')
      .flatMap((doc) =>
        (doc.spec.tests ?? [])
          .filter((t) => (t.match ?? 'exact') === 'exact' && t.expectedError === undefined)
          .map((t) => ({
            file,
            mapping: doc.metadata.name,
            name: t.name,
            entity: doc.spec.entity,
            expected: t.expected,
          })),
      ),
  );
}

describe('published JSON Schemas', () => {
  it(`${SCHEMA_DIR}/ matches what api/ generates (run \`npm run gen:schemas\` when this fails)`, async () => {
    const expected = renderSchemaFiles();
    const onDisk = (await readdir(join(root, SCHEMA_DIR))).filter((f) => f.endsWith('.json')).sort();
    expect(onDisk).toEqual(Object.keys(expected).sort());
    // Compared as JSON: the generator lets biome format the files.
    for (const [file, text] of Object.entries(expected)) {
      const committed = JSON.parse(await readFile(join(root, SCHEMA_DIR, file), 'utf8'));
      expect(committed, `${SCHEMA_DIR}/${file} is stale`).toEqual(JSON.parse(text));
    }
  });

  it.each(CANONICAL_ENTITIES)('%s: draft 2020-12 with an $id, a title and a description', (entity) => {
    const schema = published(schemaFileName(entity));
    expect(schema).toMatchObject({
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      $id: canonicalSchemaId(entity),
      title: expect.stringContaining(entity),
      description: expect.stringContaining(eventType(entity)),
      type: 'object',
      additionalProperties: false,
    });
    expect(canonicalSchemaId('InventoryLevel')).toBe(
      'https://tally.dev/schemas/canonical/v1/inventory-level.json',
    );
  });

  it('the envelope ties tallyentity to the type and to the schema of data', () => {
    const event = published(EVENT_SCHEMA_FILE);
    expect(event.$id).toBe(`${SCHEMA_BASE_URL}${EVENT_SCHEMA_FILE}`);
    const rules = event.allOf as {
      if: { properties: { tallyentity: { const: string } } };
      then: { properties: { type: { const: string }; data: { $ref: string } } };
    }[];
    expect(rules.map((r) => r.if.properties.tallyentity.const)).toEqual([...CANONICAL_ENTITIES]);
    for (const r of rules) {
      const entity = r.if.properties.tallyentity.const as CanonicalEntity;
      expect(r.then.properties.type.const).toBe(eventType(entity));
      // The relative $ref resolves against the envelope's $id to the entity schema's $id.
      expect(new URL(r.then.properties.data.$ref, event.$id as string).href).toBe(canonicalSchemaId(entity));
    }
  });

  const cases = exactCases();

  it('has exact example cases for most entities', () => {
    const entities = new Set(cases.map((c) => c.entity));
    for (const e of ['Order', 'InventoryLevel', 'Invoice', 'Return', 'Shipment'])
      expect(entities).toContain(e);
  });

  it.each(cases.map((c) => [`${c.mapping}/${c.name}`, c] as const))(
    'example %s: the expected output satisfies the published schema',
    (_name, c) => {
      const validator = z.fromJSONSchema(published(schemaFileName(c.entity)) as never);
      const result = validator.safeParse(c.expected);
      expect(result.error?.issues ?? [], `${c.file}: ${c.name}`).toEqual([]);
      // ...and the zod schema it was generated from agrees.
      expect(canonicalSchemas[c.entity].safeParse(c.expected).success).toBe(true);
    },
  );

  it('the published schema rejects what the canonical model rejects', () => {
    const order = cases.find((c) => c.entity === 'Order')!.expected as Record<string, unknown>;
    const validator = z.fromJSONSchema(published('order.json') as never);
    const totals = order.totals as Record<string, unknown>;
    for (const bad of [
      { ...order, totals: { ...totals, grandTotal: { amount: 43.22, currency: 'USD' } } }, // a float
      { ...order, totals: { ...totals, grandTotal: { amount: '43.22', currency: 'usd' } } },
      { ...order, status: 'shipped' },
      { ...order, placedAt: '2026-11-20' },
      { ...order, giftMessage: 'hi' },
      { ...order, lines: [] },
    ]) {
      expect(validator.safeParse(bad).success, JSON.stringify(bad).slice(0, 200)).toBe(false);
      expect(canonicalSchemas.Order.safeParse(bad).success).toBe(false);
    }
  });

  it('the envelope schema accepts a canonical event and rejects one without lineage', () => {
    const { allOf: _conditional, ...envelope } = published(EVENT_SCHEMA_FILE);
    // zod's importer has no if/then: the envelope is checked here, data against its entity schema below.
    const validator = z.fromJSONSchema(envelope as never);
    const order = cases.find((c) => c.entity === 'Order')!;
    const event = {
      specversion: '1.0',
      id: 'evt-1',
      source: '/tally/shop/flows/shopify-orders',
      type: eventType('Order'),
      subject: 'shopify-5123456789012',
      time: '2026-11-20T16:15:03Z',
      datacontenttype: 'application/json',
      dataschema: canonicalSchemaId('Order'),
      data: order.expected,
      tallyentity: 'Order',
      tallychannel: 'shopify-us',
      tallyflow: 'shop/shopify-orders',
      tallymapping: 'shop/shopify-order',
      tallymappingversion: '2',
      tallysourceid: 'wh-1',
      tallyversion: '1795191302000',
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    };
    expect(validator.safeParse(event).error?.issues ?? []).toEqual([]);
    const { tallyflow: _lineage, ...withoutLineage } = event;
    expect(validator.safeParse(withoutLineage).success).toBe(false);
    expect(z.fromJSONSchema(published('order.json') as never).safeParse(event.data).success).toBe(true);
  });
});
