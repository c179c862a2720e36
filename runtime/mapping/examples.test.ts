// The CanonicalMappings shipped in examples/ must pass their own embedded test cases.
import { globSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as yaml from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { type CanonicalMappingSpec, canonicalMappingSpecSchema } from '../../api/canonical-mapping.ts';
import { type ResolvedLookups, runSpecTests } from './definition.ts';
import { formatTestResults } from './test-cases.ts';

const examples = fileURLToPath(new URL('../../examples/', import.meta.url));

interface Resource {
  kind?: string;
  metadata?: { name?: string };
  spec?: unknown;
  data?: Record<string, string>;
}

const documents = globSync('**/*.yaml', { cwd: examples }).flatMap((file) =>
  (yaml.loadAll(readFileSync(`${examples}${file}`, 'utf8')) as Resource[]).map((doc) => ({ file, doc })),
);

const mappings = documents
  .filter(({ doc }) => doc?.kind === 'CanonicalMapping')
  .map(({ file, doc }) => ({
    file,
    name: doc.metadata?.name ?? '',
    spec: canonicalMappingSpecSchema.parse(doc.spec),
  }));

/** The ConfigMaps shipped beside the mappings, by name (configMapRef lookup tables read them). */
const configMaps = new Map(
  documents
    .filter(({ doc }) => doc?.kind === 'ConfigMap')
    .map(({ doc }) => [doc.metadata?.name ?? '', doc.data ?? {}]),
);

/** A configMapRef table as the operator reads it: the whole ConfigMap, or one key holding YAML. */
function configMapTable(ref: { name: string; key?: string | undefined }): Record<string, string> {
  const data = configMaps.get(ref.name);
  if (!data) throw new Error(`examples lack ConfigMap ${ref.name}`);
  if (!ref.key) return data;
  return yaml.load(data[ref.key] ?? '') as Record<string, string>;
}

/** The lookup tables as the operator resolves them. */
function lookupsOf(spec: CanonicalMappingSpec): ResolvedLookups {
  return Object.fromEntries(
    spec.lookups.map((t) => [
      t.name,
      {
        values: t.inline ?? configMapTable(t.configMapRef!),
        ...(t.default === undefined ? {} : { default: t.default }),
      },
    ]),
  );
}

describe('examples', () => {
  it('has CanonicalMappings with exact and partial test cases', () => {
    expect(mappings.length).toBeGreaterThanOrEqual(8);
    for (const m of mappings) {
      expect(new Set(m.spec.tests.map((t) => t.match)), m.file).toEqual(new Set(['exact', 'partial']));
    }
  });

  it.each(mappings.map((m) => [m.file, m] as const))('%s passes its embedded tests', async (_file, m) => {
    const name = `default/${m.name}`;
    const results = await runSpecTests(name, m.spec, lookupsOf(m.spec));
    expect(results.length, `${m.file} has no test cases`).toBeGreaterThan(0);
    expect(
      results.every((r) => r.passed),
      formatTestResults(name, results),
    ).toBe(true);
  });
});
