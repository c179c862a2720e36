// The contract between operator and worker: one validated object, rendered by the operator into
// a ConfigMap and read by `tally runtime --config FILE`. Secrets never appear here: the config
// names environment variables that the Deployment fills from secretKeyRefs.
import { z } from 'zod';
import { CANONICAL_ENTITIES } from './canonical/index.ts';
import { API_VERSION } from './common.ts';
import { deliverySchema, httpPollSourceSchema, streamSettingsSchema } from './integration-flow.ts';
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
    type: z.enum(['bearer', 'basic', 'apiKey']),
    token: secretEnv.optional(),
    username: secretEnv.optional(),
    password: secretEnv.optional(),
    header: z.string().optional(),
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
      url: z.string(),
      method: z.enum(['POST', 'PUT']),
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
]);

export const workerMappingSchema = z
  .object({
    name: z.string().describe('namespace/name'),
    generation: z.number().int(),
    entity: z.enum(CANONICAL_ENTITIES),
    expression: z.string(),
    businessKey: z.string(),
    /** Lookup tables resolved by the operator (ConfigMap tables inlined). */
    lookups: z.record(
      z.string(),
      z.object({ values: z.record(z.string(), z.string()), default: z.string().optional() }),
    ),
    limits: z.object({ timeoutMs: z.number().int(), maxDepth: z.number().int() }).strict(),
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

export class WorkerConfigError extends Error {
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
