import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { credentialHeaderReason } from '../api/validate.ts';
import { invalidFixtures } from '../test/fixtures/invalid-resources.ts';
import { tally } from '../test/support/tally-cli.ts';

async function tempFile(name: string, text: string): Promise<string> {
  const file = join(await mkdtemp(join(tmpdir(), 'tally-validate-')), name);
  await writeFile(file, text);
  return file;
}

const FIXTURES = 'test/fixtures/validate';

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
    ['an empty file', `${FIXTURES}/empty.yaml`, 'the file is empty or holds only comments'],
    ['a file of comments only', `${FIXTURES}/comments-only.yaml`, 'the file is empty or holds only comments'],
  ])('fails on %s: no resources found, and where', async (_what, file, why) => {
    const r = await tally('validate', '-f', file);
    expect(r.code).toBe(1);
    expect(r.stdout.split('\n')).toEqual([
      `${file}: no resources found: ${why}`,
      '0 resource(s) checked, 0 valid, 0 invalid, 1 problem(s)',
      '',
    ]);
  });

  it('fails on a folder without YAML or JSON files, and on several inputs none of which holds a resource', async () => {
    const dir = join(await mkdtemp(join(tmpdir(), 'tally-validate-')), 'nothing-here');
    await mkdir(dir);
    const empty = await tally('validate', '-f', dir, '-o', 'json');
    expect(empty.code).toBe(1);
    const report = JSON.parse(empty.stdout);
    expect(report.valid).toBe(false);
    expect(report.problems).toEqual([
      expect.objectContaining({
        file: dir,
        message: 'no resources found: no .yaml, .yml or .json files there',
      }),
    ]);
    const both = await tally('validate', '-f', `${FIXTURES}/empty.yaml`, `${FIXTURES}/comments-only.yaml`);
    expect(both.code).toBe(1);
    expect(both.stdout).toContain(
      `${FIXTURES}/empty.yaml, ${FIXTURES}/comments-only.yaml: no resources found: the files are empty or hold only comments`,
    );
    // One input with resources is enough.
    const mixed = await tally(
      'validate',
      '-f',
      `${FIXTURES}/empty.yaml`,
      '-f',
      `${FIXTURES}/mapping-without-tests.yaml`,
    );
    expect(mixed.code, mixed.stdout).toBe(0);
  });

  it('warns about a mapping without test cases (exit 0); --strict fails on it (exit 1)', async () => {
    const file = `${FIXTURES}/mapping-without-tests.yaml`;
    const warning = `${file}#1: CanonicalMapping/untested-price spec.tests: warning: has no test cases, so nothing checks the expression before real payloads reach it: add at least one (a sample input and its expected output; tally mapping test runs them)`;
    const lax = await tally('validate', '-f', file);
    expect(lax.code).toBe(0);
    expect(lax.stdout.split('\n')).toEqual([
      warning,
      '1 resource(s) checked, 1 valid, 0 invalid, 0 problem(s), 1 warning(s)',
      '',
    ]);
    const strict = await tally('validate', '-f', file, '--strict');
    expect(strict.code).toBe(1);
    expect(strict.stdout.split('\n')).toEqual([
      warning,
      '1 resource(s) checked, 0 valid, 1 invalid, 0 problem(s), 1 warning(s) (failing: --strict)',
      '',
    ]);
  });

  it('lists warnings in the JSON report, valid unless --strict', async () => {
    const file = `${FIXTURES}/mapping-without-tests.yaml`;
    const lax = await tally('validate', '-f', file, '-o', 'json');
    expect(lax.code).toBe(0);
    const report = JSON.parse(lax.stdout);
    expect(report).toMatchObject({ valid: true, problems: [] });
    expect(report.warnings).toEqual([
      {
        file,
        document: 1,
        kind: 'CanonicalMapping',
        name: 'untested-price',
        path: 'spec.tests',
        message: expect.stringMatching(/^has no test cases/),
      },
    ]);
    const strict = await tally('validate', '-f', file, '-o', 'json', '--strict');
    expect(strict.code).toBe(1);
    expect(JSON.parse(strict.stdout)).toMatchObject({
      valid: false,
      problems: [],
      warnings: [expect.anything()],
    });
    const examples = JSON.parse((await tally('validate', '-f', 'examples', '-o', 'json')).stdout);
    expect(examples.warnings).toEqual([]);
  });

  it('documents --strict in its usage', async () => {
    const r = await tally('validate', '--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('[--strict]');
    expect(r.stdout).toMatch(/--strict +fail on warnings too/);
  });

  it('refuses credentials in the static headers of an HTTP sink, pointing at auth', async () => {
    const file = `${FIXTURES}/flow-secret-headers.yaml`;
    const r = await tally('validate', '-f', file);
    expect(r.code).toBe(1);
    const lines = r.stdout.split('\n').filter((l) => l.includes('.http.headers.'));
    expect(lines.map((l) => l.slice(0, l.indexOf(': must not hold a secret')))).toEqual([
      `${file}#1: IntegrationFlow/leaky-orders spec.sinks[0].http.headers.Authorization`,
      `${file}#1: IntegrationFlow/leaky-orders spec.sinks[1].http.headers.x-shopify-access-token`,
      `${file}#1: IntegrationFlow/leaky-orders spec.sinks[1].http.headers.X-Erp-Api-Key`,
      `${file}#1: IntegrationFlow/leaky-orders spec.sinks[1].http.headers.X-Forward`,
    ]);
    expect(lines[0]).toContain(
      'must not hold a secret (Authorization is a credential header): headers are stored in plain text in the IntegrationFlow; put the credential in a Secret and use spec.sinks[0].http.auth instead, e.g. auth: { type: bearer, tokenSecretRef: { name: <secret>, key: <key> } }',
    );
    expect(lines[1]).toContain('auth: { type: apiKey, header: x-shopify-access-token, tokenSecretRef:');
    expect(lines[3]).toContain('(its value looks like a Stripe secret key)');
    expect(r.stdout).not.toContain('X-Trace-Source');
    // The secret itself is not repeated in the output.
    expect(r.stdout).not.toContain('example-token-not-a-real-one');
  });

  it.each([
    ['Authorization', 'Bearer abc'],
    ['proxy-authorization', 'x'],
    ['Cookie', 'session=1'],
    ['X-API-Key', 'k'],
    ['x-api-key', 'k'],
    ['X-Partner-Api-Key', 'k'],
    ['X-Auth-Token', 't'],
    ['X-Client-Secret', 's'],
    ['X-Shopify-Access-Token', 't'],
    ['x-amz-access-token', 't'],
    ['X-Anything', 'Bearer abcdefghijkl'],
    ['X-Anything', 'Basic dXNlcjpwYXNzd29yZA=='],
    ['X-Anything', 'sk_live_EXAMPLEnotARealKey'],
    ['X-Anything', 'shpat_0example'],
  ])('treats header %s: %s as a credential', (name, value) => {
    expect(credentialHeaderReason(name, value)).toBeDefined();
  });

  it.each([
    ['X-Trace-Source', 'tally'],
    ['Accept', 'application/json'],
    ['Idempotency-Key', 'k'],
    ['X-Plan', 'Basic'],
    ['X-Shopify-Api-Version', '2026-01'],
    ['User-Agent', 'tally/0.1'],
  ])('lets header %s: %s through', (name, value) => {
    expect(credentialHeaderReason(name, value)).toBeUndefined();
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
