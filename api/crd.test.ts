import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildCrd } from './crd.ts';
import { CRD_DIRS, renderCrdFiles } from './crd-files.ts';
import { RESOURCES } from './resources.ts';

const root = join(import.meta.dirname, '..');

describe('generated CRDs', () => {
  it.each(CRD_DIRS)(
    '%s/ matches what api/ generates (run `npm run gen:crds` when this fails)',
    async (dir) => {
      const expected = renderCrdFiles();
      const onDisk = (await readdir(join(root, dir))).filter((f) => f.endsWith('.yaml')).sort();
      expect(onDisk).toEqual(Object.keys(expected).sort());
      for (const [file, text] of Object.entries(expected)) {
        expect(await readFile(join(root, dir, file), 'utf8'), `${dir}/${file} is stale`).toBe(text);
      }
    },
  );

  it('documents every field, so kubectl explain has something to say', () => {
    const undocumented: string[] = [];
    const walk = (node: Record<string, unknown>, path: string) => {
      const props = node.properties as Record<string, Record<string, unknown>> | undefined;
      for (const [name, child] of Object.entries(props ?? {})) {
        const p = `${path}.${name}`;
        if (name !== 'metadata' && typeof child.description !== 'string') undocumented.push(p);
        walk(child, p);
      }
      if (node.items) walk(node.items as Record<string, unknown>, `${path}[]`);
      if (typeof node.additionalProperties === 'object') {
        walk(node.additionalProperties as Record<string, unknown>, `${path}{}`);
      }
    };
    for (const def of RESOURCES) {
      const crd = buildCrd(def) as {
        spec: { versions: { schema: { openAPIV3Schema: Record<string, unknown> } }[] };
      };
      walk(crd.spec.versions[0]!.schema.openAPIV3Schema, def.kind);
    }
    expect(undocumented).toEqual([]);
  });

  it('emits structural schemas: a type everywhere, no refs, no additionalProperties:false', () => {
    const offences: string[] = [];
    const walk = (node: Record<string, unknown>, path: string) => {
      const exempt =
        node['x-kubernetes-preserve-unknown-fields'] === true || node['x-kubernetes-int-or-string'] === true;
      if (!exempt && typeof node.type !== 'string') offences.push(`${path}: no type`);
      for (const bad of ['$ref', 'anyOf', 'oneOf', 'allOf', 'const', '$schema']) {
        if (bad in node) offences.push(`${path}: ${bad}`);
      }
      if (node.additionalProperties === false) offences.push(`${path}: additionalProperties false`);
      for (const [k, v] of Object.entries(
        (node.properties as Record<string, Record<string, unknown>>) ?? {},
      )) {
        walk(v, `${path}.${k}`);
      }
      if (node.items) walk(node.items as Record<string, unknown>, `${path}[]`);
    };
    for (const def of RESOURCES) {
      const crd = buildCrd(def) as {
        spec: { versions: { schema: { openAPIV3Schema: Record<string, unknown> } }[] };
      };
      walk(crd.spec.versions[0]!.schema.openAPIV3Schema, def.kind);
    }
    expect(offences).toEqual([]);
  });

  it('puts all three kinds in the tally category with short names and a Ready column', () => {
    for (const def of RESOURCES) {
      const crd = buildCrd(def) as {
        spec: {
          names: { categories: string[]; shortNames: string[] };
          versions: { additionalPrinterColumns: { name: string }[] }[];
        };
      };
      expect(crd.spec.names.categories).toEqual(['tally']);
      expect(crd.spec.names.shortNames.length).toBeGreaterThan(0);
      expect(crd.spec.versions[0]!.additionalPrinterColumns.map((c) => c.name)).toContain('Ready');
    }
  });
});
