// The three custom resources: their schemas and how they appear in kubectl.
import type { z } from 'zod';
import {
  canonicalMappingSchema,
  canonicalMappingSpecSchema,
  canonicalMappingStatusSchema,
} from './canonical-mapping.ts';
import {
  integrationFlowSchema,
  integrationFlowSpecSchema,
  integrationFlowStatusSchema,
} from './integration-flow.ts';
import {
  reconciliationPolicySchema,
  reconciliationPolicySpecSchema,
  reconciliationPolicyStatusSchema,
} from './reconciliation-policy.ts';

export interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'date' | 'boolean' | 'number';
  jsonPath: string;
  description: string;
  priority?: number;
}

export interface ResourceDefinition {
  kind: 'IntegrationFlow' | 'CanonicalMapping' | 'ReconciliationPolicy';
  plural: string;
  singular: string;
  shortNames: string[];
  description: string;
  spec: z.ZodType;
  status: z.ZodType;
  /** Whole-object schema used by `tally validate`. */
  object: z.ZodType;
  printerColumns: PrinterColumn[];
  /** Longest metadata.name: names are embedded in Deployment, stream and consumer names. */
  maxNameLength: number;
}

const READY: PrinterColumn = {
  name: 'Ready',
  type: 'string',
  jsonPath: '.status.conditions[?(@.type=="Ready")].status',
  description: 'Whether the resource is reconciled and working.',
};
const REASON: PrinterColumn = {
  name: 'Reason',
  type: 'string',
  jsonPath: '.status.conditions[?(@.type=="Ready")].reason',
  description: 'Why it is (not) ready.',
  priority: 1,
};
const AGE: PrinterColumn = {
  name: 'Age',
  type: 'date',
  jsonPath: '.metadata.creationTimestamp',
  description: 'Time since creation.',
};

export const CATEGORY = 'tally';

export const RESOURCES: ResourceDefinition[] = [
  {
    kind: 'IntegrationFlow',
    plural: 'integrationflows',
    singular: 'integrationflow',
    shortNames: ['iflow', 'flows'],
    description:
      'IntegrationFlow moves one business stream from a source system (webhook, HTTP polling, NATS subject, batch file) through a CanonicalMapping to one or more sinks, over NATS JetStream, at least once and deduplicated.',
    spec: integrationFlowSpecSchema,
    status: integrationFlowStatusSchema,
    object: integrationFlowSchema,
    maxNameLength: 48,
    printerColumns: [
      READY,
      {
        name: 'Channel',
        type: 'string',
        jsonPath: '.spec.channel',
        description: 'Sales channel or source system.',
      },
      { name: 'Entity', type: 'string', jsonPath: '.spec.entity', description: 'Canonical entity produced.' },
      { name: 'Source', type: 'string', jsonPath: '.spec.source.type', description: 'Kind of source.' },
      {
        name: 'Mapping',
        type: 'string',
        jsonPath: '.spec.mappingRef.name',
        description: 'CanonicalMapping used.',
        priority: 1,
      },
      {
        name: 'Replicas',
        type: 'integer',
        jsonPath: '.spec.replicas',
        description: 'Worker replicas.',
        priority: 1,
      },
      REASON,
      AGE,
    ],
  },
  {
    kind: 'CanonicalMapping',
    plural: 'canonicalmappings',
    singular: 'canonicalmapping',
    shortNames: ['cmap', 'mappings'],
    description:
      'CanonicalMapping turns one channel payload into a canonical entity with a JSONata expression and lookup tables, and carries test cases that are run before anything is applied.',
    spec: canonicalMappingSpecSchema,
    status: canonicalMappingStatusSchema,
    object: canonicalMappingSchema,
    maxNameLength: 253,
    printerColumns: [
      READY,
      { name: 'Entity', type: 'string', jsonPath: '.spec.entity', description: 'Canonical entity produced.' },
      {
        name: 'Channel',
        type: 'string',
        jsonPath: '.spec.channel',
        description: 'Channel whose payloads it reads.',
      },
      {
        name: 'Tests',
        type: 'integer',
        jsonPath: '.status.testsPassed',
        description: 'Embedded test cases passing.',
      },
      REASON,
      AGE,
    ],
  },
  {
    kind: 'ReconciliationPolicy',
    plural: 'reconciliationpolicies',
    singular: 'reconciliationpolicy',
    shortNames: ['rpol', 'recon'],
    description:
      'ReconciliationPolicy continuously compares canonical events of a channel side and an ERP side per business-day window, and reports matches, mismatches, missing records and breaches.',
    spec: reconciliationPolicySpecSchema,
    status: reconciliationPolicyStatusSchema,
    object: reconciliationPolicySchema,
    maxNameLength: 48,
    printerColumns: [
      READY,
      {
        name: 'Window',
        type: 'string',
        jsonPath: '.status.lastFinalWindow',
        description: 'Last final business day.',
      },
      {
        name: 'Match',
        type: 'string',
        jsonPath: '.status.matchRate',
        description: 'Match rate of that window, percent.',
      },
      {
        name: 'Breached',
        type: 'boolean',
        jsonPath: '.status.breached',
        description: 'Whether it breached the policy.',
      },
      REASON,
      AGE,
    ],
  },
];

export function resourceByKind(kind: string): ResourceDefinition | undefined {
  return RESOURCES.find((r) => r.kind === kind);
}
