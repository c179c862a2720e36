// The contract between operator and worker: one validated object, rendered by the operator into
// a ConfigMap and read by `tally runtime --config FILE`. Secrets never appear here: the config
// names environment variables that the Deployment fills from secretKeyRefs.

import { z } from 'zod';
import { CANONICAL_ENTITIES } from './canonical/index.ts';
import { OUTPUT_FORMATS } from './canonical-mapping.ts';
import { API_VERSION } from './common.ts';
import { TallyError } from './errors.ts';
import {
  AUTH_TYPES,
  deliverySchema,
  HTTP_SINK_METHODS,
  httpPollSourceSchema,
  streamSettingsSchema,
} from './integration-flow.ts';
import { reconciliationPolicySpecSchema } from './reconciliation-policy.ts';

/** A secret the worker reads from its environment. */
const secretEnv = z.object({ env: z.string().regex(/^[A-Z_][A-Z0-9_]*$/) }).strict();

const signatureConfig = z
  .object({
    scheme: z.enum(['shopify-hmac-sha256', 'hmac-sha256-hex', 'none']),
    header: z.string(),
    secret: secretEnv.optional(),
    timestampHeader: z.string().optional(),
    toleranceMs: z.number().int().min(0),
  })
  .strict();

const httpAuthConfig = z
  .object({
    type: z.enum(AUTH_TYPES),
    token: secretEnv.optional(),
    username: secretEnv.optional(),
    password: secretEnv.optional(),
    header: z.string().optional(),
    /** oauth2ClientCredentials */
    tokenUrl: z.string().optional(),
    clientId: secretEnv.optional(),
    clientSecret: secretEnv.optional(),
    scope: z.string().optional(),
    clientAuth: z.enum(['basic', 'body']).optional(),
  })
  .strict();

const lookupTables = z.record(
  z.string(),
  z.object({ values: z.record(z.string(), z.string()), default: z.string().optional() }),
);
const mappingLimits = z.object({ timeoutMs: z.number().int(), maxDepth: z.number().int() }).strict();

/** An outbound CanonicalMapping, resolved by the operator: canonical entity -> the target's request. */
export const workerOutboundMappingSchema = z
  .object({
    name: z.string().describe('namespace/name'),
    generation: z.number().int(),
    entity: z.enum(CANONICAL_ENTITIES),
    expression: z.string(),
    output: z.object({ format: z.enum(OUTPUT_FORMATS), contentType: z.string().optional() }).strict(),
    headers: z.record(z.string(), z.string()).default({}),
    params: z.record(z.string(), z.string()).default({}),
    lookups: lookupTables,
    limits: mappingLimits,
  })
  .strict();

export const workerSourceSchema = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal('webhook'),
      path: z.string(),
      maxBodyBytes: z.number().int().min(1),
      signature: signatureConfig,
    })
    .strict(),
  z
    .object({
      type: z.literal('httpPoll'),
      poll: httpPollSourceSchema.omit({ auth: true }),
      auth: httpAuthConfig.optional(),
    })
    .strict(),
  z.object({ type: z.literal('nats'), subject: z.string() }).strict(),
  z.object({ type: z.literal('batch'), format: z.enum(['csv', 'jsonl']) }).strict(),
]);

export const workerSinkSchema = z.discriminatedUnion('type', [
  z
    .object({
      name: z.string(),
      type: z.literal('http'),
      /** A URL template: {name} placeholders in its path and query. */
      url: z.string(),
      method: z.enum(HTTP_SINK_METHODS),
      bodyMapping: workerOutboundMappingSchema.optional(),
      update: z
        .object({ url: z.string(), method: z.enum(HTTP_SINK_METHODS) })
        .strict()
        .optional(),
      xref: z
        .object({
          system: z.string(),
          entity: z.enum(CANONICAL_ENTITIES),
          capture: z.string().optional(),
          links: z.record(z.string(), z.string()).default({}),
        })
        .strict()
        .optional(),
      alreadyExists: z
        .object({ statuses: z.array(z.number().int()), bodyPattern: z.string().optional() })
        .strict()
        .optional(),
      headers: z.record(z.string(), z.string()).default({}),
      auth: httpAuthConfig.optional(),
      idempotencyKeyHeader: z.string(),
      timeoutMs: z.number().int().min(1),
      maxInFlight: z.number().int().min(1),
      rateLimit: z
        .object({ requestsPerSecond: z.number().int().min(1), burst: z.number().int().min(1) })
        .optional(),
      /** Absent: failureThreshold 5, coolDownMs 30 000. */
      circuitBreaker: z
        .object({ failureThreshold: z.number().int().min(1), coolDownMs: z.number().int().min(1) })
        .strict()
        .optional(),
    })
    .strict(),
  z.object({ name: z.string(), type: z.literal('nats'), subject: z.string() }).strict(),
  z
    .object({
      name: z.string(),
      type: z.literal('masterData'),
      entity: z.enum(CANONICAL_ENTITIES),
      links: z.record(z.string(), z.string()).default({}),
    })
    .strict(),
]);

export const workerMappingSchema = z
  .object({
    name: z.string().describe('namespace/name'),
    generation: z.number().int(),
    entity: z.enum(CANONICAL_ENTITIES),
    expression: z.string(),
    businessKey: z.string(),
    /** Lookup tables resolved by the operator (ConfigMap tables inlined). */
    lookups: lookupTables,
    limits: mappingLimits,
  })
  .strict();

export const flowWorkerConfigSchema = z
  .object({
    apiVersion: z.literal(API_VERSION),
    kind: z.literal('WorkerConfig'),
    role: z.literal('flow'),
    flow: z
      .object({
        namespace: z.string(),
        name: z.string(),
        channel: z.string(),
        entity: z.enum(CANONICAL_ENTITIES),
      })
      .strict(),
    nats: z
      .object({
        servers: z.array(z.string()).min(1),
        /** JetStream names the operator created for this flow. */
        stream: z.string(),
        ingestSubject: z.string().describe('Subject (prefix) source payloads are published to.'),
        consumer: z.string(),
        deadLetterSubject: z.string(),
        deadLetterStream: z.string(),
        stateBucket: z.string().describe('KV bucket for cursors and other worker state.'),
        xrefBucket: z
          .string()
          .optional()
          .describe("The namespace's cross-reference store (KV bucket); absent in older configs."),
      })
      .strict(),
    source: workerSourceSchema,
    mapping: workerMappingSchema,
    sinks: z.array(workerSinkSchema).min(1),
    delivery: deliverySchema,
    stream: streamSettingsSchema,
    http: z.object({ port: z.number().int().min(1).max(65535) }).strict(),
  })
  .strict();
export type FlowWorkerConfig = z.output<typeof flowWorkerConfigSchema>;

export const workerConfigSchema = flowWorkerConfigSchema;
export type WorkerConfig = FlowWorkerConfig;

export class WorkerConfigError extends TallyError {
  override name = 'WorkerConfigError';
  readonly code = 'WORKER_CONFIG_INVALID';
}

/** Parse and validate a WorkerConfig; the message lists every problem with its path. */
export function parseWorkerConfig(raw: unknown): WorkerConfig {
  const result = workerConfigSchema.safeParse(raw);
  if (result.success) return result.data;
  const problems = result.error.issues
    .map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`)
    .join('\n');
  throw new WorkerConfigError(`worker config is invalid:\n${problems}`, { cause: result.error });
}

/** The reconciliation worker of one ReconciliationPolicy. */
export const reconWorkerConfigSchema = z
  .object({
    apiVersion: z.literal(API_VERSION),
    kind: z.literal('WorkerConfig'),
    role: z.literal('reconciliation'),
    policy: z.object({ namespace: z.string(), name: z.string() }).strict(),
    spec: reconciliationPolicySpecSchema,
    nats: z
      .object({
        servers: z.array(z.string()).min(1),
        /** The namespace's canonical stream that flows publish their canonical events to. */
        canonicalStream: z.string(),
        /** Subject filters of the two sides on that stream. */
        filterSubjects: z.array(z.string()).min(1),
        /** KV bucket holding final and preliminary reports. */
        stateBucket: z.string(),
        exceptionsSubject: z.string(),
        reportsSubject: z.string(),
      })
      .strict(),
    http: z.object({ port: z.number().int().min(1).max(65535) }).strict(),
  })
  .strict();
export type ReconWorkerConfig = z.output<typeof reconWorkerConfigSchema>;

export const anyWorkerConfigSchema = z.discriminatedUnion('role', [
  flowWorkerConfigSchema,
  reconWorkerConfigSchema,
]);
export type AnyWorkerConfig = z.output<typeof anyWorkerConfigSchema>;

/** Parse a WorkerConfig of either role; the message lists every problem with its path. */
export function parseAnyWorkerConfig(raw: unknown): AnyWorkerConfig {
  const result = anyWorkerConfigSchema.safeParse(raw);
  if (result.success) return result.data;
  const problems = result.error.issues
    .map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`)
    .join('\n');
  throw new WorkerConfigError(`worker config is invalid:\n${problems}`, { cause: result.error });
}
