import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as yaml from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { tally } from '../test/support/tally-cli.ts';

const root = join(import.meta.dirname, '..');

async function tempFile(name: string, text: string): Promise<string> {
  const file = join(await mkdtemp(join(tmpdir(), 'tally-mapping-test-')), name);
  await writeFile(file, text);
  return file;
}

/** The EDI example's first test input: a payload known to map. */
function ediPayload(): Record<string, unknown> {
  const doc = yaml.load(readFileSync(join(root, 'examples/edi-850-orders/mapping.yaml'), 'utf8')) as {
    spec: { tests: { input: Record<string, unknown> }[] };
  };
  return structuredClone(doc.spec.tests[0]!.input);
}

const PRICE_MAPPING = `apiVersion: tally.dev/v1alpha1
kind: CanonicalMapping
metadata: { name: price }
spec:
  entity: Price
  expression: '{"sku": item, "amount": $money(price, "USD"), "validFrom": "2026-01-01T00:00:00Z"}'
  businessKey: sku
  tests:
    - name: right
      input: { item: MUG, price: "9.5" }
      expected: { sku: MUG, amount: { amount: "9.50", currency: USD }, validFrom: "2026-01-01T00:00:00Z" }
    - name: wrong-amount
      input: { item: MUG, price: "9.5" }
      match: partial
      expected: { amount: { amount: "9.51" } }
    - name: not-an-amount
      input: { item: MUG, price: nine }
      match: partial
      expected: { sku: MUG }
`;

describe('tally mapping test', () => {
  it('passes every example mapping and exits 0', async () => {
    const r = await tally('mapping', 'test', '-f', 'examples');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    for (const name of [
      'shopify-order',
      'amazon-order',
      'b2b-portal-order',
      'erp-sales-order',
      'erp-invoice',
      'erp-inventory-level',
      'returns-rma',
      'edi-850-order',
    ]) {
      expect(r.stdout).toMatch(new RegExp(`^PASS ${name} \\((\\d+)/\\1\\)$`, 'm'));
    }
    expect(r.stdout).toMatch(/^(\d+) mapping\(s\): \1 passed, 0 failed; (\d+)\/\2 case\(s\) passed$/m);
  });

  it('prints FAIL with a diff per failing case and exits 1', async () => {
    const file = await tempFile('price.yaml', PRICE_MAPPING);
    const r = await tally('mapping', 'test', '-f', file);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`FAIL price (1/3)  ${file}#1\n`);
    expect(r.stdout).toContain('  wrong-amount:\n    amount.amount: expected "9.51", got "9.50"\n');
    expect(r.stdout).toContain('  not-an-amount:\n    error: spec.expression failed at line 1');
    expect(r.stdout).not.toContain('  right:');
  });

  it('reports a compile error on the field it is in', async () => {
    const file = await tempFile(
      'broken.yaml',
      PRICE_MAPPING.replace('businessKey: sku', 'businessKey: "sku &"'),
    );
    const r = await tally('mapping', 'test', '-f', file);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('FAIL price  ');
    expect(r.stdout).toMatch(/^ {2}spec\.businessKey: has a syntax error at line 1, column \d+/m);
  });

  it('reads configMapRef tables from ConfigMaps among the files, and names a missing one', async () => {
    const alone = await tally('mapping', 'test', '-f', 'examples/amazon-orders/mapping.yaml');
    expect(alone.code).toBe(1);
    expect(alone.stdout).toContain(
      'spec.lookups[3].configMapRef.name: lookup table "sellerSkus" reads ConfigMap "amazon-sku-xref" (namespace default), which is not among the given files: pass the file that defines it with -f',
    );
    const both = await tally(
      'mapping',
      'test',
      '-f',
      'examples/amazon-orders/mapping.yaml',
      '-f',
      'examples/amazon-orders/sku-xref.yaml',
    );
    expect(both.code, both.stdout).toBe(0);
    expect(both.stdout).toMatch(/^PASS amazon-order \(3\/3\)$/m);
  });

  it('maps --input payloads: the canonical output and its business key, or the error', async () => {
    const good = ediPayload();
    const truncated = ediPayload();
    (truncated.CTT_loop as { CTT: Record<string, string> }[])[0]!.CTT.CTT01 = '3';
    const file = await tempFile('850s.json', JSON.stringify([good, truncated]));
    const r = await tally('mapping', 'test', '-f', 'examples/edi-850-orders', '--input', file);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(
      `input ${file}[0]: key edi-acme-4500098765\n{\n  "orderId": "edi-acme-4500098765",`,
    );
    expect(r.stdout).toContain(`input ${file}[1]: FAIL\n`);
    expect(r.stdout).toContain('CTT01 says 3 line items but the 850 has 2');
    expect(r.stdout).toContain('1/2 input(s) mapped');
  });

  it('exits 0 when every --input maps, and reads YAML payloads too', async () => {
    const file = await tempFile('po.yaml', yaml.dump(ediPayload()));
    const r = await tally(
      'mapping',
      'test',
      '-f',
      'examples',
      '--mapping',
      'edi-850-order',
      '-i',
      file,
      '-o',
      'json',
    );
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.passed).toBe(true);
    expect(report.mappings).toHaveLength(1);
    expect(report.mappings[0]).toMatchObject({
      name: 'edi-850-order',
      passed: true,
      problems: [],
      cases: [
        { name: 'original-po-with-allowance', passed: true },
        { name: 'cancellation-with-freight-charge', passed: true },
      ],
      inputs: [{ input: file, key: 'edi-acme-4500098765', output: { status: 'pending' } }],
    });
  });

  it('prints JSON with -o json', async () => {
    const file = await tempFile('price.yaml', PRICE_MAPPING);
    const r = await tally('mapping', 'test', '-f', file, '-o', 'json');
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout);
    expect(report.passed).toBe(false);
    expect(report.mappings[0].cases.map((c: { passed: boolean }) => c.passed)).toEqual([true, false, false]);
  });

  it('reports an invalid mapping with its schema problems instead of running it', async () => {
    const file = await tempFile('invalid.yaml', PRICE_MAPPING.replace('entity: Price', 'entity: Banana'));
    const r = await tally('mapping', 'test', '-f', file);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('FAIL price  ');
    expect(r.stdout).toContain('  spec.entity: is "Banana": expected one of');
  });

  it('exits 1 for a --mapping that is not among the files', async () => {
    const r = await tally('mapping', 'test', '-f', 'examples', '--mapping', 'nope');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('no CanonicalMapping named "nope" in examples: expected one of');
  });

  it.each([
    [['mapping'], 'Usage: tally mapping test'],
    [['mapping', 'run'], 'unknown subcommand "mapping run"'],
    [['mapping', 'test'], 'no input: pass -f'],
    [['mapping', 'test', '-f', 'examples', '-o', 'xml'], '-o xml is not supported'],
    [
      ['mapping', 'test', '-f', 'examples', '--input', 'examples/erp-inventory/flow.yaml'],
      '--input needs exactly one mapping, but the files hold ',
    ],
    [
      ['mapping', 'test', '-f', 'examples', '--mapping', 'erp-invoice', '--input', 'nope.json'],
      'cannot read --input nope.json',
    ],
    [['mapping', 'test', '--bogus'], "Unknown option '--bogus'"],
  ])('exits 2 on a usage error: %j', async (args, message) => {
    const r = await tally(...args);
    expect(r.code).toBe(2);
    expect(r.stdout + r.stderr).toContain(message);
  });
});
