// The CanonicalMappings shipped in examples/ must pass their own embedded test cases.
import { globSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as yaml from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { type CanonicalMappingSpec, canonicalMappingSpecSchema } from '../../api/canonical-mapping.ts';
import { formatTestResults, runTestCases } from './test-cases.ts';
import type { MappingDefinition } from './types.ts';

const examples = fileURLToPath(new URL('../../examples/', import.meta.url));

interface Resource {
  kind?: string;
  metadata?: { name?: string };
  spec?: unknown;
}

const mappings = globSync('**/*.yaml', { cwd: examples }).flatMap((file) =>
  (yaml.loadAll(readFileSync(`${examples}${file}`, 'utf8')) as Resource[])
    .filter((doc) => doc?.kind === 'CanonicalMapping')
    .map((doc) => ({
      file,
      name: doc.metadata?.name ?? '',
      spec: canonicalMappingSpecSchema.parse(doc.spec),
    })),
);

/** What the operator hands the engine, with the tables inline (the examples use no ConfigMaps). */
function definition(name: string, spec: CanonicalMappingSpec): MappingDefinition {
  return {
    name: `default/${name}`,
    generation: 1,
    entity: spec.entity,
    expression: spec.expression,
    businessKey: spec.businessKey,
    lookups: Object.fromEntries(
      spec.lookups.map((t) => [
        t.name,
        { values: t.inline ?? {}, ...(t.default === undefined ? {} : { default: t.default }) },
      ]),
    ),
    limits: { timeoutMs: spec.limits.timeoutMs ?? 100, maxDepth: spec.limits.maxDepth ?? 500 },
  };
}

describe('examples', () => {
  it('has CanonicalMappings with test cases', () => {
    expect(mappings.length).toBeGreaterThanOrEqual(2);
    for (const m of mappings) expect(m.spec.tests.length, m.file).toBeGreaterThan(0);
  });

  it.each(mappings.map((m) => [m.file, m] as const))('%s passes its embedded tests', async (_file, m) => {
    const def = definition(m.name, m.spec);
    const results = await runTestCases(def, m.spec.tests);
    expect(
      results.every((r) => r.passed),
      formatTestResults(def.name, results),
    ).toBe(true);
  });
});
