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

/** A record of the cross-reference store, as a test case sees it (the ids one business object has). */
export const xrefFixtureSchema = z
  .object({
    entity: z.enum(CANONICAL_ENTITIES).describe('The canonical entity, e.g. Order.'),
    key: z.string().min(1).max(256).describe('Its canonical business key (system "tally").'),
    ids: z
      .record(identifier(), z.string().min(1).max(256))
      .describe('Its id in each system, e.g. {shopify: "5123456789012", netsuite: "1042"}.'),
    data: anyJson()
      .optional()
      .describe('Master data (Customer, Product): the canonical record that $customer / $product return.'),
  })
  .strict()
  .describe('One business object the cross-reference store knows, for a test case.');

export const mappingTestCaseSchema = z
  .object({
    name: identifier().describe('Name of the case, shown when it fails.'),
    input: anyJson().describe(
      'inbound: a source payload, as the channel sends it; outbound: a canonical entity (checked against its schema).',
    ),
    expected: anyJson()
      .optional()
      .describe(
        'inbound: the canonical output; outbound: the request body before encoding (a string for xml and text). Required unless expectedError is set.',
      ),
    match: z
      .enum(['exact', 'partial'])
      .default('exact')
      .describe(
        'exact: the output equals expected; partial: every field in expected is present with that value.',
      ),
    expectedHeaders: z
      .record(z.string(), z.string())
      .optional()
      .describe('outbound: headers the mapping must give (others may be present).'),
    expectedParams: z
      .record(z.string(), z.string())
      .optional()
      .describe('outbound: URL template values the mapping must give (others may be present).'),
    xrefs: z
      .array(xrefFixtureSchema)
      .max(64)
      .default([])
      .describe('What the cross-reference store holds while this case runs ($xref, $customer, $product).'),
    expectedError: z
      .string()
      .max(1024)
      .optional()
      .describe(
        'The case must fail with an error whose message contains this text (e.g. "waiting for cross-reference"); expected is then ignored.',
      ),
  })
  .strict()
  // Checked by tally validate and the operator only: CEL cannot see `expected` (an untyped field).
  .superRefine((t, ctx) => {
    if (t.expected === undefined && t.expectedError === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['expected'],
        message: 'a test case needs expected (or expectedError, for a case that must fail)',
      });
    }
  })
  .describe('An embedded test case run by `tally validate`, `tally mapping test` and the operator.');

export const OUTPUT_FORMATS = ['json', 'form', 'xml', 'text'] as const;

export const mappingOutputSchema = z
  .object({
    format: z
      .enum(OUTPUT_FORMATS)
      .default('json')
      .describe(
        "How the expression's value is encoded as the request body: json; form (an object of scalar values, application/x-www-form-urlencoded); xml or text (the expression gives the document as a string).",
      ),
    contentType: z
      .string()
      .max(256)
      .optional()
      .describe(
        'Content-Type of the body; default application/json, application/x-www-form-urlencoded, application/xml or text/plain (charset utf-8).',
      ),
  })
  .strict()
  .describe('outbound: the encoding of the request body.');

const jsonataMap = (what: string) =>
  z
    .record(z.string().min(1).max(128), z.string().min(1).max(4096))
    .refine((m) => Object.keys(m).length <= 32, 'allows at most 32 entries')
    .describe(what);

export const canonicalMappingSpecSchema = withRules(
  z
    .object({
      direction: z
        .enum(['inbound', 'outbound'])
        .default('inbound')
        .describe(
          "inbound: a channel or ERP payload becomes a canonical entity (a flow's mappingRef). outbound: a canonical entity becomes the request a target system expects (an HTTP sink's bodyMappingRef).",
        ),
      channel: identifier()
        .optional()
        .describe('The channel (inbound) or target system (outbound) whose shape this mapping speaks.'),
      entity: z
        .enum(CANONICAL_ENTITIES)
        .describe(
          'inbound: the canonical entity the expression produces (its output is validated against it); outbound: the canonical entity it reads.',
        ),
      expression: z
        .string()
        .min(1)
        .max(262144)
        .describe(
          'JSONata expression: inbound, from the source payload to the canonical entity; outbound, from the canonical entity to the request body.',
        ),
      businessKey: z
        .string()
        .min(1)
        .max(1024)
        .optional()
        .describe(
          'inbound (required): JSONata expression over the canonical output giving the business key, e.g. orderId.',
        ),
      output: mappingOutputSchema.optional(),
      headers: jsonataMap(
        'outbound: request headers, each a JSONata expression over the canonical entity (non-secret values only; credentials come from the sink auth).',
      ).optional(),
      params: jsonataMap(
        "outbound: values for the {name} placeholders of the sink URL template, each a JSONata expression over the canonical entity, e.g. {\"shopifyOrderId\": \"$xref('Order', 'tally', orderId, 'shopify')\"}.",
      ).optional(),
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
    {
      cel: "(has(self.direction) && self.direction == 'outbound') || has(self.businessKey)",
      message: 'businessKey is required for an inbound mapping',
      field: 'businessKey',
      reason: 'FieldValueRequired',
      check: (m) => m.direction === 'outbound' || m.businessKey !== undefined,
    },
    {
      cel: "(has(self.direction) && self.direction == 'outbound') || (!has(self.output) && !has(self.headers) && !has(self.params))",
      message: 'output, headers and params are only for outbound mappings (set direction: outbound)',
      field: 'direction',
      check: (m) =>
        m.direction === 'outbound' ||
        (m.output === undefined && m.headers === undefined && m.params === undefined),
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
