// `tally validate` as CI runs it: the real binary in a child process, real files.
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { invalidFixtures } from '../test/fixtures/invalid-resources.ts';

const root = join(import.meta.dirname, '..');
const run = promisify(execFile);

async function tally(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [join(root, 'bin/tally.mjs'), ...args], {
      cwd: root,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('tally validate', () => {
  it('accepts every example and exits 0', async () => {
    const r = await tally('validate', '-f', 'examples');
    expect(r.stdout).toMatch(/resource\(s\) checked, (\d+) valid, 0 invalid, 0 problem\(s\)/);
    expect(r.code).toBe(0);
  });

  it.each(invalidFixtures().map((f) => ({ ...f, name: basename(f.file) })))(
    'rejects $name with one precise line and exits 1',
    async (fx) => {
      const r = await tally('validate', '-f', fx.file);
      expect(r.code).toBe(1);
      const line = r.stdout.split('\n').find((l) => l.includes(fx.expectValidate));
      expect(line, r.stdout).toBeDefined();
      // file, resource and field path lead the line
      expect(line!.startsWith(`${fx.file}#1: `)).toBe(true);
    },
  );

  it('resolves mappingRef among the given files', async () => {
    const alone = await tally('validate', '-f', 'examples/shopify-orders/flow.yaml');
    expect(alone.code).toBe(1);
    expect(alone.stdout).toContain(
      'IntegrationFlow/shopify-orders spec.mappingRef.name: refers to CanonicalMapping "shopify-order", which is not among the given files',
    );
    const both = await tally(
      'validate',
      '-f',
      'examples/shopify-orders/flow.yaml',
      '-f',
      'examples/shopify-orders/mapping.yaml',
    );
    expect(both.code).toBe(0);
  });

  it('reports a flow whose entity disagrees with its mapping', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tally-validate-'));
    const file = join(dir, 'pair.yaml');
    await writeFile(
      file,
      `apiVersion: tally.dev/v1alpha1
kind: CanonicalMapping
metadata: { name: m }
spec: { entity: Invoice, expression: "$", businessKey: invoiceId }
---
apiVersion: tally.dev/v1alpha1
kind: IntegrationFlow
metadata: { name: f }
spec:
  channel: erp
  entity: Order
  mappingRef: { name: m }
  source: { type: nats, nats: { subject: a } }
  sinks: [{ name: out, type: nats, nats: { subject: b } }]
`,
    );
    const r = await tally('validate', '-f', file);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(
      `${file}#2: IntegrationFlow/f spec.entity: is Order but CanonicalMapping "m" produces Invoice`,
    );
  });

  it('reports YAML syntax errors with line and column', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tally-validate-'));
    const file = join(dir, 'broken.yaml');
    await writeFile(file, 'apiVersion: tally.dev/v1alpha1\nkind: [unclosed\n');
    const r = await tally('validate', '-f', file);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(new RegExp(`${file}: is not valid YAML \\(line \\d+, column \\d+\\)`));
  });

  it('prints machine-readable JSON with -o json', async () => {
    const r = await tally('validate', '-f', 'test/fixtures/invalid/policy-key-count.yaml', '-o', 'json');
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout);
    expect(report.valid).toBe(false);
    expect(report.problems).toEqual([
      expect.objectContaining({
        kind: 'ReconciliationPolicy',
        name: 'orders-vs-invoices',
        path: 'spec.erp.keyFields',
        message: 'channel.keyFields and erp.keyFields must have the same number of fields',
      }),
    ]);
  });

  it.each([
    [[], 'no input'],
    [['-f', 'does/not/exist.yaml'], 'cannot read does/not/exist.yaml'],
    [['-f', 'examples', '-o', 'xml'], '-o xml is not supported'],
    [['--bogus'], "Unknown option '--bogus'"],
  ])('exits 2 on a usage error: %j', async (args, message) => {
    const r = await tally('validate', ...args);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
  });
});
