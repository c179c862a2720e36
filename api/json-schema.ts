// The canonical model published as JSON Schema (draft 2020-12) for users' own tooling: one schema per
// entity and one for the CloudEvents envelope, generated from the zod schemas, so they cannot drift.
// Pure: cli/gen-schemas.ts writes them to schemas/canonical/v1/, and a test fails when those are stale.
//
// They describe what Tally emits (zod's output side): fields with a default, such as Order.discounts,
// are always present and therefore required.
import { z } from 'zod';
import {
  CANONICAL_ENTITIES,
  CANONICAL_MODEL_VERSION,
  type CanonicalEntity,
  canonicalSchemas,
  eventType,
} from './canonical/index.ts';
import { canonicalEventSchema } from './envelope.ts';

export type JsonSchema = Record<string, unknown>;

/** Where the schemas are published; each `$id` is this plus the file name. */
export const SCHEMA_BASE_URL = `https://tally.dev/schemas/canonical/${CANONICAL_MODEL_VERSION}/`;

/** Where the generated files are committed (repo-relative). */
export const SCHEMA_DIR = `schemas/canonical/${CANONICAL_MODEL_VERSION}`;

export const EVENT_SCHEMA_FILE = 'event.json';

/** order.json, inventory-level.json, ... */
export function schemaFileName(entity: CanonicalEntity): string {
  return `${entity.replace(/([a-z])([A-Z])/g, '$1-$2').toLowerCase()}.json`;
}

/** The `$id` of an entity's schema, e.g. https://tally.dev/schemas/canonical/v1/order.json (a dataschema). */
export function canonicalSchemaId(entity: CanonicalEntity): string {
  return `${SCHEMA_BASE_URL}${schemaFileName(entity)}`;
}

function toJsonSchema(schema: z.ZodType): JsonSchema {
  // 'throw': a zod construct JSON Schema cannot express must fail generation, not vanish from it.
  return z.toJSONSchema(schema, { target: 'draft-2020-12', unrepresentable: 'throw' }) as JsonSchema;
}

/** The JSON Schema of one canonical entity, with its `$id`, title and description first. */
export function entityJsonSchema(entity: CanonicalEntity): JsonSchema {
  const { $schema, description, ...rest } = toJsonSchema(canonicalSchemas[entity]);
  return {
    $schema,
    $id: canonicalSchemaId(entity),
    title: `Tally canonical ${entity} (${CANONICAL_MODEL_VERSION})`,
    description: `${String(description)} The data of CloudEvents of type ${eventType(entity)}. Money is a decimal string plus an ISO 4217 currency, never a binary float.`,
    ...rest,
  };
}

/**
 * The CloudEvents 1.0 envelope of every canonical event. Beyond the envelope's own fields, `tallyentity`
 * selects the schema `data` must satisfy and the `type` it must carry (relative `$ref`s, resolved against
 * this schema's `$id`: load the entity schemas beside it).
 */
export function eventJsonSchema(): JsonSchema {
  const { $schema, description, ...rest } = toJsonSchema(canonicalEventSchema);
  return {
    $schema,
    $id: `${SCHEMA_BASE_URL}${EVENT_SCHEMA_FILE}`,
    title: `Tally canonical event (CloudEvents 1.0, model ${CANONICAL_MODEL_VERSION})`,
    description: `${String(description)} A CloudEvents 1.0 envelope with Tally's lineage (flow, mapping, source message) and a W3C trace context; subject is the business key, data the canonical entity named by tallyentity.`,
    ...rest,
    allOf: CANONICAL_ENTITIES.map((entity) => ({
      if: { properties: { tallyentity: { const: entity } }, required: ['tallyentity'] },
      // biome-ignore lint/suspicious/noThenProperty: the if/then keywords of JSON Schema, not a thenable.
      then: {
        properties: { type: { const: eventType(entity) }, data: { $ref: schemaFileName(entity) } },
      },
    })),
  };
}

/** Every published schema by file name, as the generator writes it and the staleness test reads it. */
export function renderSchemaFiles(): Record<string, string> {
  const files: Record<string, string> = {};
  for (const entity of CANONICAL_ENTITIES) files[schemaFileName(entity)] = render(entityJsonSchema(entity));
  files[EVENT_SCHEMA_FILE] = render(eventJsonSchema());
  return files;
}

function render(schema: JsonSchema): string {
  return `${JSON.stringify(schema, null, 2)}\n`;
}
