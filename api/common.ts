// Shared schema pieces of the tally.dev API: group/version, names, durations, decimals,
// secret references and status conditions. Pure: no I/O.
import { z } from 'zod';

export const GROUP = 'tally.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}` as const;

/** A cross-field rule written twice on purpose: as CEL for the apiserver, as a predicate for `tally validate`. */
export interface CrossFieldRule<T> {
  /** CEL expression evaluated by the apiserver (x-kubernetes-validations). */
  cel: string;
  /** The message both the apiserver and `tally validate` print. */
  message: string;
  /** Field path (relative to the object the rule sits on) the message is about. */
  field?: string;
  /** Same rule, in TypeScript; returns true when the value is valid. */
  check: (value: T) => boolean;
  /** Optional CEL `reason` (FieldValueInvalid by default). */
  reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
}

/** Attach cross-field rules to an object schema: CEL into the generated CRD, the predicate into zod. */
export function withRules<S extends z.ZodType>(schema: S, rules: CrossFieldRule<z.output<S>>[]): S {
  const refined = schema.superRefine((value, ctx) => {
    for (const r of rules) {
      if (!passes(r, value)) {
        ctx.addIssue({ code: 'custom', message: r.message, path: r.field ? r.field.split('.') : [] });
      }
    }
  }) as unknown as S;
  const validations = rules.map((r) => ({
    rule: r.cel,
    message: r.message,
    ...(r.field ? { fieldPath: `.${r.field}` } : {}),
    ...(r.reason ? { reason: r.reason } : {}),
  }));
  const previous = (schema.meta()?.['x-kubernetes-validations'] as unknown[] | undefined) ?? [];
  return refined.meta({ ...schema.meta(), 'x-kubernetes-validations': [...previous, ...validations] }) as S;
}

/** A predicate that throws saw a value whose own fields are invalid; those fields report it. */
function passes<T>(rule: CrossFieldRule<T>, value: T): boolean {
  try {
    return rule.check(value);
  } catch {
    return true;
  }
}

/** Any JSON value, kept as-is by the apiserver (test-case inputs and expected outputs). */
export const anyJson = () => z.unknown().meta({ 'x-kubernetes-preserve-unknown-fields': true });

/** A Kubernetes object name (RFC 1123 subdomain), as used by references. */
export const objectName = () =>
  z
    .string()
    .min(1)
    .max(253)
    .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'must be a lowercase RFC 1123 name, e.g. "shopify-orders"');

/** An RFC 1123 label: namespaces and the names of flows and policies (safe in subjects and streams). */
export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** A short lowercase identifier: channel names, sink names, side names. */
export const identifier = () =>
  z
    .string()
    .min(1)
    .max(63)
    .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be lowercase letters, digits and "-", e.g. "shopify-eu"');

/** Go/CEL duration strings ("500ms", "30s", "1h30m"): the apiserver's CEL `duration()` reads the same syntax. */
export const DURATION_PATTERN = /^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$/;
export const duration = () =>
  z.string().max(32).regex(DURATION_PATTERN, 'must be a duration such as "500ms", "30s", "5m" or "1h30m"');

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/** Parse a duration string into milliseconds. Throws on malformed input (schemas check it first). */
export function durationMs(text: string): number {
  if (!DURATION_PATTERN.test(text)) throw new RangeError(`not a duration: ${JSON.stringify(text)}`);
  let total = 0;
  for (const m of text.matchAll(/([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)/g)) {
    total += Number(m[1]) * (UNIT_MS[m[2]!] ?? 0);
  }
  return Math.round(total);
}

/** A non-negative decimal kept as a string: the API never carries binary floating point. */
export const decimalString = () =>
  z
    .string()
    .max(32)
    .regex(/^[0-9]+(\.[0-9]+)?$/, 'must be a non-negative decimal written as a string, e.g. "0.5"');

/** A reference to one key of a Secret in the resource's namespace. Secrets are never inline. */
export const secretKeyRef = () =>
  z
    .object({
      name: objectName().describe('Name of the Secret, in the same namespace as this resource.'),
      key: z
        .string()
        .min(1)
        .max(253)
        .regex(/^[-._a-zA-Z0-9]+$/, 'must be a Secret data key')
        .describe('Key inside the Secret whose value is used.'),
    })
    .strict()
    .describe('A key of a Secret in the same namespace.');

/** Kubernetes-style condition (metav1.Condition), kept in status.conditions. */
export const conditionSchema = z
  .object({
    type: z.string().max(316).describe('Condition type: Ready, Reconciling or Stalled.'),
    status: z.enum(['True', 'False', 'Unknown']).describe('Status of the condition: True, False or Unknown.'),
    reason: z
      .string()
      .max(1024)
      .describe('One CamelCase word saying why, shared with Events and metric labels.'),
    message: z.string().max(32768).describe('Human-readable details: what is wrong and what to do about it.'),
    observedGeneration: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe('The metadata.generation this condition was computed from.'),
    lastTransitionTime: z.string().describe('When the status last changed (RFC 3339).'),
  })
  .describe('A status condition following the Kubernetes conventions.');
export type Condition = z.infer<typeof conditionSchema>;

export const statusBase = {
  observedGeneration: z
    .number()
    .int()
    .min(0)
    .optional()
    .describe('The metadata.generation the operator last reconciled.'),
  conditions: z
    .array(conditionSchema)
    .max(16)
    .optional()
    .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] })
    .describe('Ready, Reconciling and Stalled conditions (kstatus), read by kubectl wait, Argo CD and Flux.'),
};

/** Minimal ObjectMeta used by offline validation; the apiserver owns the full type. */
export const objectMetaSchema = z
  .object({
    name: z
      .string()
      .min(1)
      .max(253)
      .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'must be a lowercase RFC 1123 name'),
    namespace: z.string().optional(),
    labels: z.record(z.string(), z.string()).optional(),
    annotations: z.record(z.string(), z.string()).optional(),
    generation: z.number().int().optional(),
    uid: z.string().optional(),
    resourceVersion: z.string().optional(),
  })
  .loose();

export const deletionPolicy = () =>
  z
    .enum(['Delete', 'Retain'])
    .default('Delete')
    .describe(
      'What happens to the NATS JetStream resources (streams, consumers, KV buckets) when this resource is deleted: Delete removes them, Retain keeps them for inspection or reuse.',
    );

/** Compute resources for worker pods, as in a container spec. */
export const resourceRequirements = () => {
  const quantity = z
    .union([z.string(), z.number()])
    .meta({ 'x-kubernetes-int-or-string': true })
    .describe('A Kubernetes quantity, e.g. "100m", "256Mi".');
  return z
    .object({
      requests: z
        .record(z.string(), quantity)
        .optional()
        .describe('Minimum resources, e.g. {cpu: 100m, memory: 128Mi}.'),
      limits: z.record(z.string(), quantity).optional().describe('Maximum resources, e.g. {memory: 256Mi}.'),
    })
    .strict()
    .describe('CPU and memory for each worker pod.');
};
