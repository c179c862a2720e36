// Pure generator: zod schemas -> CustomResourceDefinition objects with structural OpenAPI v3
// schemas (what the apiserver accepts), CEL rules, printer columns, short names and a category.
import { z } from 'zod';
import { GROUP, VERSION } from './common.ts';
import { CATEGORY, type ResourceDefinition } from './resources.ts';

type JsonSchema = Record<string, unknown>;

/** zod's JSON Schema carries a few things a structural CRD schema must not. */
function toStructural(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(toStructural);
  if (node === null || typeof node !== 'object') return node;
  const src = node as JsonSchema;
  const out: JsonSchema = {};
  for (const [k, v] of Object.entries(src)) {
    if (k === '$schema' || k === 'propertyNames' || k === 'id') continue;
    // additionalProperties: false is the default of structural schemas and is not allowed there.
    if (k === 'additionalProperties' && v === false) continue;
    if (k === 'const') {
      out.enum = [v];
      continue;
    }
    out[k] = k === 'properties' ? mapValues(v as JsonSchema, toStructural) : toStructural(v);
  }
  if (out['x-kubernetes-int-or-string'] === true) {
    delete out.anyOf;
    delete out.type;
  }
  // Integers: JSON Schema's safe-integer bounds are noise in a CRD.
  if (out.type === 'integer') {
    if (out.maximum === Number.MAX_SAFE_INTEGER) delete out.maximum;
    if (out.minimum === Number.MIN_SAFE_INTEGER) delete out.minimum;
    out.format ??= 'int64';
  }
  return out;
}

function mapValues(obj: JsonSchema, f: (v: unknown) => unknown): JsonSchema {
  return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, f(v)]));
}

export function openApiSchema(schema: z.ZodType): JsonSchema {
  const json = z.toJSONSchema(schema, { target: 'openapi-3.0', io: 'input', unrepresentable: 'throw' });
  return toStructural(json) as JsonSchema;
}

export function buildCrd(def: ResourceDefinition): JsonSchema {
  const spec = openApiSchema(def.spec);
  const status = openApiSchema(def.status);
  const root: JsonSchema = {
    type: 'object',
    description: def.description,
    required: ['spec'],
    properties: {
      apiVersion: { type: 'string', description: 'APIVersion of this object: tally.dev/v1alpha1.' },
      kind: { type: 'string', description: `Kind of this object: ${def.kind}.` },
      metadata: { type: 'object' },
      spec,
      status,
    },
  };
  if (def.maxNameLength < 253) {
    root['x-kubernetes-validations'] = [
      {
        rule: `size(self.metadata.name) <= ${def.maxNameLength} && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')`,
        message: `metadata.name must be a DNS label of at most ${def.maxNameLength} characters: lowercase letters, digits and '-' (it is embedded in the names of worker Deployments, JetStream streams and NATS subjects)`,
      },
    ];
  }
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${def.plural}.${GROUP}`,
      labels: { 'app.kubernetes.io/part-of': 'tally' },
    },
    spec: {
      group: GROUP,
      scope: 'Namespaced',
      names: {
        kind: def.kind,
        listKind: `${def.kind}List`,
        plural: def.plural,
        singular: def.singular,
        shortNames: def.shortNames,
        categories: [CATEGORY],
      },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: def.printerColumns,
          schema: { openAPIV3Schema: root },
        },
      ],
    },
  };
}
