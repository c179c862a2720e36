// CanonicalMapping: how one channel's payload becomes a canonical entity.
import { z } from 'zod';
import { CANONICAL_ENTITIES } from './canonical/index.ts';
import {
  API_VERSION,
  anyJson,
  identifier,
  objectMetaSchema,
  objectName,
  statusBase,
  withRules,
} from './common.ts';

export const lookupTableSchema = withRules(
  z
    .object({
      name: z
        .string()
        .min(1)
        .max(63)
        .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an identifier usable in JSONata, e.g. statusCodes')
        .describe('Name the expression calls the table by: $lookup("statusCodes", key).'),
      inline: z.record(z.string(), z.string()).optional().describe('The table itself: keys to values.'),
      configMapRef: z
        .object({
          name: objectName().describe('ConfigMap in the same namespace.'),
          key: z
            .string()
            .max(253)
            .optional()
            .describe('Data key holding the table as JSON or YAML; every key of the ConfigMap when absent.'),
        })
        .strict()
        .optional()
        .describe('Read the table from a ConfigMap (large or shared tables).'),
      default: z
        .string()
        .max(1024)
        .optional()
        .describe('Value returned for keys the table lacks; absent makes a missing key an error.'),
    })
    .strict()
    .describe(
      'A lookup table callable from the expression (status codes, SKU cross-references, channel ids).',
    ),
  [
    {
      cel: 'has(self.inline) != has(self.configMapRef)',
      message: 'exactly one of inline or configMapRef must be set',
      check: (t) => (t.inline !== undefined) !== (t.configMapRef !== undefined),
    },
  ],
);

export const mappingTestCaseSchema = z
  .object({
    name: identifier().describe('Name of the case, shown when it fails.'),
    input: anyJson().describe('A source payload, as the channel sends it.'),
    expected: anyJson().describe('The canonical output the mapping must produce for it.'),
    match: z
      .enum(['exact', 'partial'])
      .default('exact')
      .describe(
        'exact: the output equals expected; partial: every field in expected is present with that value.',
      ),
  })
  .strict()
  .describe('An embedded test case run by `tally validate`, `tally mapping test` and the operator.');

export const canonicalMappingSpecSchema = withRules(
  z
    .object({
      channel: identifier().optional().describe('The channel whose payloads this mapping reads.'),
      entity: z
        .enum(CANONICAL_ENTITIES)
        .describe('Canonical entity the expression produces; its output is validated against it.'),
      expression: z
        .string()
        .min(1)
        .max(262144)
        .describe('JSONata expression from the source payload to the canonical entity.'),
      businessKey: z
        .string()
        .min(1)
        .max(1024)
        .describe('JSONata expression over the canonical output giving the business key, e.g. orderId.'),
      lookups: z
        .array(lookupTableSchema)
        .max(32)
        .default([])
        .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'] })
        .describe('Lookup tables the expression can call with $lookup(table, key).'),
      tests: z
        .array(mappingTestCaseSchema)
        .max(256)
        .default([])
        .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'] })
        .describe('Embedded test cases: input to expected canonical output.'),
      limits: z
        .object({
          timeoutMs: z
            .number()
            .int()
            .min(1)
            .max(10_000)
            .default(100)
            .describe('Longest time one evaluation may run.'),
          maxDepth: z
            .number()
            .int()
            .min(1)
            .max(10_000)
            .default(500)
            .describe('Deepest recursion an evaluation may reach.'),
        })
        .strict()
        .prefault({})
        .describe('Safety limits: a mapping that loops or recurses too deep is stopped with an error.'),
    })
    .strict()
    .describe('Desired state of a CanonicalMapping.'),
  [
    {
      cel: 'self.tests.all(t, self.tests.exists_one(o, o.name == t.name))',
      message: 'test case names must be unique',
      field: 'tests',
      check: (m) => new Set(m.tests.map((t) => t.name)).size === m.tests.length,
    },
  ],
);
export type CanonicalMappingSpec = z.output<typeof canonicalMappingSpecSchema>;

export const canonicalMappingStatusSchema = z
  .object({
    ...statusBase,
    testsPassed: z
      .number()
      .int()
      .optional()
      .describe('Embedded test cases that passed at observedGeneration.'),
    testsFailed: z
      .number()
      .int()
      .optional()
      .describe('Embedded test cases that failed at observedGeneration.'),
  })
  .describe('Observed state of a CanonicalMapping, written by the operator.');

export const canonicalMappingSchema = z
  .object({
    apiVersion: z.literal(API_VERSION),
    kind: z.literal('CanonicalMapping'),
    metadata: objectMetaSchema,
    spec: canonicalMappingSpecSchema,
    status: canonicalMappingStatusSchema.optional(),
  })
  .describe('CanonicalMapping');
export type CanonicalMapping = z.output<typeof canonicalMappingSchema>;
