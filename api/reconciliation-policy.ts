// ReconciliationPolicy: which canonical events form the two sides, how they match, and when
// a disagreement breaches the policy.
import { z } from 'zod';
import { CANONICAL_ENTITIES } from './canonical/index.ts';
import {
  API_VERSION,
  decimalString,
  deletionPolicy,
  duration,
  identifier,
  objectMetaSchema,
  resourceRequirements,
  statusBase,
  withRules,
} from './common.ts';

const fieldPath = () =>
  z
    .string()
    .min(1)
    .max(256)
    .regex(
      /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/,
      'must be a dotted field path, e.g. totals.grandTotal',
    )
    .describe('Dotted path into the canonical event data, e.g. totals.grandTotal.');

export const sideSelectorSchema = z
  .object({
    entity: z.enum(CANONICAL_ENTITIES).describe('Canonical entity on this side.'),
    channels: z
      .array(identifier())
      .max(64)
      .optional()
      .describe('Only events from these channels (IntegrationFlow.spec.channel); every channel when absent.'),
    flows: z
      .array(identifier())
      .max(64)
      .optional()
      .describe('Only events produced by these IntegrationFlows.'),
    keyFields: z
      .array(fieldPath())
      .min(1)
      .max(8)
      .describe('Fields forming the match key on this side, in order.'),
    businessTimeField: fieldPath().describe(
      'Field with the business time that assigns an event to a window, e.g. placedAt.',
    ),
    amountField: fieldPath()
      .optional()
      .describe(
        'Money field summed per window and currency on this side, e.g. totals.grandTotal; variances are its differences.',
      ),
    statusField: fieldPath()
      .optional()
      .describe(
        'Status field; reports break open keys down by it (e.g. return milestones), rule status compares it.',
      ),
    versionField: fieldPath()
      .optional()
      .describe(
        'Field ordering versions of one key (a number or timestamp); the latest is compared. Default: version, then updatedAt, then arrival order.',
      ),
  })
  .strict()
  .describe('Which canonical events form one side of the comparison.');

const COMPARE_RULES = ['exact', 'absolute', 'percent', 'dateLag', 'status', 'lessOrEqual'] as const;

export const compareRuleSchema = withRules(
  z
    .object({
      name: identifier().describe('Name of the compared field, used in exceptions and reports.'),
      channelField: fieldPath().describe('Field on the channel side.'),
      erpField: fieldPath().describe('Field on the ERP side.'),
      rule: z
        .enum(COMPARE_RULES)
        .describe(
          'exact equality; absolute tolerance in minor units; percent tolerance; date lag for timestamps; status (equal through statusEquivalences); lessOrEqual (the channel value must not exceed the ERP value, e.g. channel reservations against ERP availability).',
        ),
      toleranceMinor: z
        .number()
        .int()
        .min(0)
        .optional()
        .describe('Largest allowed difference in minor units (rule absolute), e.g. 100 for 1.00 USD.'),
      tolerancePercent: decimalString()
        .optional()
        .describe('Largest allowed difference in percent (rule percent), e.g. "0.5".'),
      maxLag: duration()
        .optional()
        .describe('Latest the ERP time may follow the channel time (rule dateLag), e.g. 48h.'),
      exceptionReason: z
        .string()
        .max(63)
        .regex(/^[a-z][a-z0-9_]*$/, 'must be a lowercase snake_case word')
        .optional()
        .describe('Reason put on exceptions this rule raises, e.g. oversell_risk; default field_mismatch.'),
    })
    .strict()
    .describe('How one field is compared between the two sides.'),
  [
    {
      cel: "(self.rule == 'absolute') == has(self.toleranceMinor)",
      message: 'toleranceMinor is required for rule absolute and allowed only there',
      field: 'toleranceMinor',
      check: (r) => (r.rule === 'absolute') === (r.toleranceMinor !== undefined),
    },
    {
      cel: "(self.rule == 'percent') == has(self.tolerancePercent)",
      message: 'tolerancePercent is required for rule percent and allowed only there',
      field: 'tolerancePercent',
      check: (r) => (r.rule === 'percent') === (r.tolerancePercent !== undefined),
    },
    {
      cel: "(self.rule == 'dateLag') == has(self.maxLag)",
      message: 'maxLag is required for rule dateLag and allowed only there',
      field: 'maxLag',
      check: (r) => (r.rule === 'dateLag') === (r.maxLag !== undefined),
    },
  ],
);

export const windowSchema = z
  .object({
    timeZone: z
      .string()
      .min(1)
      .max(64)
      .regex(/^[A-Za-z_]+(\/[A-Za-z0-9_+-]+)*$/, 'must be an IANA time zone such as America/Chicago')
      .describe('IANA time zone of the business day, e.g. America/Chicago.'),
    cutoff: z
      .string()
      .regex(/^([01][0-9]|2[0-3]):[0-5][0-9]$/, 'must be a time of day HH:MM, e.g. 23:59')
      .default('23:59')
      .describe('Local time at which a business day ends.'),
    lateness: duration()
      .default('48h')
      .describe(
        'How long after the cutoff events may still arrive before the window is final; later ones become amendments.',
      ),
  })
  .strict()
  .describe('Business-day windows events are assigned to by their business time.');

export const thresholdsSchema = z
  .object({
    maxMissingPercent: decimalString()
      .optional()
      .describe('Breach when more than this percent of keys are missing on either side, e.g. "0.5".'),
    maxMismatchPercent: decimalString()
      .optional()
      .describe('Breach when more than this percent of keys mismatch.'),
    maxVarianceAmount: decimalString()
      .optional()
      .describe(
        'Breach when the absolute variance of a window exceeds this amount in any currency, e.g. "100.00".',
      ),
  })
  .strict()
  .describe('When a window breaches the policy.');

export const reconciliationPolicySpecSchema = withRules(
  z
    .object({
      channel: sideSelectorSchema.describe(
        'The channel side, e.g. orders captured by web shops and marketplaces.',
      ),
      erp: sideSelectorSchema.describe('The ERP side, e.g. ERP invoices.'),
      compare: z
        .array(compareRuleSchema)
        .max(32)
        .default([])
        .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'] })
        .describe('Fields compared for keys present on both sides.'),
      statusEquivalences: z
        .array(
          z
            .object({
              channel: z.string().max(64).describe('Status on the channel side.'),
              erp: z
                .array(z.string().max(64))
                .min(1)
                .max(16)
                .describe('ERP statuses that count as the same.'),
            })
            .strict(),
        )
        .max(32)
        .optional()
        .describe('Statuses that mean the same thing on both sides.'),
      window: windowSchema,
      thresholds: thresholdsSchema.prefault({}),
      exceptions: z
        .object({
          subject: z
            .string()
            .max(256)
            .regex(/^[^\s*>]+$/, 'must be a NATS subject without wildcards')
            .optional()
            .describe(
              'Subject exception events are published to; default tally.exceptions.<namespace>.<policy>.',
            ),
        })
        .strict()
        .prefault({})
        .describe('Where exceptions go.'),
      resources: resourceRequirements().optional(),
      suspend: z.boolean().default(false).describe('Stop the reconciliation worker while keeping its state.'),
      deletionPolicy: deletionPolicy(),
    })
    .strict()
    .describe('Desired state of a ReconciliationPolicy.'),
  [
    {
      cel: 'size(self.channel.keyFields) == size(self.erp.keyFields)',
      message: 'channel.keyFields and erp.keyFields must have the same number of fields',
      field: 'erp.keyFields',
      check: (p) => p.channel.keyFields.length === p.erp.keyFields.length,
    },
  ],
);
export type ReconciliationPolicySpec = z.output<typeof reconciliationPolicySpecSchema>;

export const reconciliationPolicyStatusSchema = z
  .object({
    ...statusBase,
    lastFinalWindow: z
      .string()
      .optional()
      .describe('The latest business day whose window is final (YYYY-MM-DD).'),
    matchRate: z
      .string()
      .optional()
      .describe('Match rate of the last final window, in percent, e.g. "99.42".'),
    breached: z.boolean().optional().describe('Whether the last final window breached a threshold.'),
    openExceptions: z.number().int().optional().describe('Exceptions not yet resolved.'),
  })
  .describe('Observed state of a ReconciliationPolicy, written by the operator.');

export const reconciliationPolicySchema = z
  .object({
    apiVersion: z.literal(API_VERSION),
    kind: z.literal('ReconciliationPolicy'),
    metadata: objectMetaSchema,
    spec: reconciliationPolicySpecSchema,
    status: reconciliationPolicyStatusSchema.optional(),
  })
  .describe('ReconciliationPolicy');
export type ReconciliationPolicy = z.output<typeof reconciliationPolicySchema>;
