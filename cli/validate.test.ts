import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { invalidFixtures } from '../test/fixtures/invalid-resources.ts';
import { tally } from '../test/support/tally-cli.ts';

async function tempFile(name: string, text: string): Promise<string> {
  const file = join(await mkdtemp(join(tmpdir(), 'tally-validate-')), name);
  await writeFile(file, text);
  return file;
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
    const file = await tempFile(
      'pair.yaml',
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

  it('runs the embedded test cases and reports each failing case as one line', async () => {
    const file = await tempFile(
      'price.yaml',
      `apiVersion: tally.dev/v1alpha1
kind: CanonicalMapping
metadata: { name: price }
spec:
  entity: Price
  expression: '{"sku": item, "amount": $money(price, "USD"), "validFrom": "2026-01-01T00:00:00Z"}'
  businessKey: sku
  tests:
    - name: right
      input: { item: MUG, price: "9.5" }
      match: partial
      expected: { sku: MUG }
    - name: wrong-amount
      input: { item: MUG, price: "9.5" }
      match: partial
      expected: { sku: MUG, amount: { amount: "9.51" } }
    - name: missing-sku
      input: { price: "9.5" }
      match: partial
      expected: { sku: MUG }
`,
    );
    const r = await tally('validate', '-f', file);
    expect(r.code).toBe(1);
    expect(r.stdout.split('\n').slice(0, 3)).toEqual([
      `${file}#1: CanonicalMapping/price spec.tests[1]: case "wrong-amount" failed: amount.amount: expected "9.51", got "9.50" (run tally mapping test for the full diff)`,
      `${file}#1: CanonicalMapping/price spec.tests[2]: case "missing-sku" failed: error: the output of spec.expression is not a valid Price (1 problem); fix the expression for: sku: Invalid input: expected string, received undefined (run tally mapping test for the full diff)`,
      '1 resource(s) checked, 0 valid, 1 invalid, 2 problem(s)',
    ]);
  });

  it.each([
    ['expression', 'expression: \'{"sku": item\'', 'spec.expression: has a syntax error at line 1, column'],
    ['businessKey', 'businessKey: "sku &"', 'spec.businessKey: has a syntax error at line 1, column'],
  ])('reports a compile error of spec.%s on that field', async (part, line, message) => {
    const file = await tempFile(
      'broken.yaml',
      `apiVersion: tally.dev/v1alpha1
kind: CanonicalMapping
metadata: { name: broken }
spec:
  entity: Price
  expression: '{"sku": item, "amount": $money(price, "USD"), "validFrom": "2026-01-01T00:00:00Z"}'
  businessKey: sku
  tests: [{ name: any, input: {}, expected: {} }]
`.replace(new RegExp(`${part}: .*`), line),
    );
    const r = await tally('validate', '-f', file);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`${file}#1: CanonicalMapping/broken ${message}`);
    expect(r.stdout).not.toContain('spec.tests[0]');
  });

  it('does not run the tests of a mapping whose schema is invalid', async () => {
    const file = await tempFile(
      'invalid.yaml',
      `apiVersion: tally.dev/v1alpha1
kind: CanonicalMapping
metadata: { name: invalid }
spec:
  entity: Price
  expression: '$'
  businessKey: sku
  limits: { timeoutMs: 0 }
  tests: [{ name: fails, input: {}, expected: { sku: x } }]
`,
    );
    const r = await tally('validate', '-f', file);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(
      `${file}#1: CanonicalMapping/invalid spec.limits.timeoutMs: must be at least 1`,
    );
    expect(r.stdout).not.toContain('spec.tests[0]');
  });

  it('resolves configMapRef lookups among the given files, and reports a missing ConfigMap', async () => {
    const alone = await tally('validate', '-f', 'examples/amazon-orders/mapping.yaml');
    expect(alone.code).toBe(1);
    expect(alone.stdout).toContain(
      'examples/amazon-orders/mapping.yaml#1: CanonicalMapping/amazon-order spec.lookups[3].configMapRef.name: lookup table "sellerSkus" reads ConfigMap "amazon-sku-xref" (namespace default), which is not among the given files: pass the file that defines it with -f',
    );
    const folder = await tally('validate', '-f', 'examples/amazon-orders');
    expect(folder.code, folder.stdout).toBe(0);
  });

  it('reports a partition key that is not valid JSONata (the workers would refuse to start)', async () => {
    const file = await tempFile(
      'flow.yaml',
      `apiVersion: tally.dev/v1alpha1
kind: IntegrationFlow
metadata: { name: f }
spec:
  channel: erp
  entity: Order
  mappingRef: { name: m }
  source: { type: nats, nats: { subject: a } }
  sinks: [{ name: out, type: nats, nats: { subject: b } }]
  delivery: { partitions: 4, partitionKey: "$string(id" }
---
apiVersion: tally.dev/v1alpha1
kind: CanonicalMapping
metadata: { name: m }
spec: { entity: Order, expression: "$", businessKey: orderId }
`,
    );
    const r = await tally('validate', '-f', file);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(
      `${file}#1: IntegrationFlow/f spec.delivery.partitionKey: is not a valid JSONata expression`,
    );
  });

  it('reports YAML syntax errors with line and column', async () => {
    const file = await tempFile('broken.yaml', 'apiVersion: tally.dev/v1alpha1\nkind: [unclosed\n');
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
