// The generated CRDs on a real kube-apiserver: they install, the examples pass server-side
// dry-run, invalid resources are rejected with the expected messages, kubectl explain documents
// fields, and kubectl get shows the printer columns and the `tally` category.
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { invalidFixtures } from '../fixtures/invalid-resources.ts';
import { runKubectl } from '../harness/kubectl.ts';
import { repoPath } from '../harness/tools.ts';

const admin = { kubeconfig: inject('adminKubeconfig') };
const user = { kubeconfig: inject('userKubeconfig') };
const ns = `crds-${randomBytes(3).toString('hex')}`;

function exampleFiles(): string[] {
  const dir = repoPath('examples');
  return readdirSync(dir, { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => join(dir, f));
}

beforeAll(async () => {
  const r = await runKubectl(['create', 'namespace', ns], admin);
  expect(r.code, r.stderr).toBe(0);
});

describe('generated CRDs on the apiserver', () => {
  it('are all Established', async () => {
    const r = await runKubectl(
      [
        'get',
        'crd',
        '-l',
        'app.kubernetes.io/part-of=tally',
        '-o',
        'jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Established")].status}{"\\n"}{end}',
      ],
      admin,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n').sort()).toEqual([
      'canonicalmappings.tally.dev=True',
      'integrationflows.tally.dev=True',
      'reconciliationpolicies.tally.dev=True',
    ]);
  });

  it.each(exampleFiles().map((f) => [f.slice(repoPath('').length)]))(
    'accepts %s with --dry-run=server',
    async (file) => {
      const r = await runKubectl(['apply', '--dry-run=server', '-n', ns, '-f', repoPath(file)], admin);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/created \(server dry run\)/);
    },
  );

  it.each(invalidFixtures().map((f) => [f.file.split('/').pop()!, f]))('rejects %s', async (_name, fx) => {
    const r = await runKubectl(['apply', '--dry-run=server', '-n', ns, '-f', fx.file], admin);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(fx.expectApiserver);
  });

  it('documents fields for kubectl explain', async () => {
    const flow = await runKubectl(['explain', 'integrationflow.spec.delivery.maxDeliver'], admin);
    expect(flow.code, flow.stderr).toBe(0);
    expect(flow.stdout).toContain('Attempts before a message goes to the dead-letter stream.');
    const mapping = await runKubectl(['explain', 'canonicalmappings.spec.tests'], admin);
    expect(mapping.stdout).toContain('Embedded test cases: input to expected canonical output.');
    expect(mapping.stdout).toMatch(/match\s+<string>/);
    const policy = await runKubectl(['explain', 'rpol.spec.window.cutoff'], admin);
    expect(policy.stdout).toContain('Local time at which a business day ends.');
  });

  it('applies defaults, shows printer columns, and lists all kinds under `kubectl get tally`', async () => {
    for (const f of [
      'shopify-orders/mapping.yaml',
      'shopify-orders/flow.yaml',
      'reconciliation/orders-vs-invoices.yaml',
    ]) {
      const r = await runKubectl(['apply', '-n', ns, '-f', repoPath('examples', f)], admin);
      expect(r.code, r.stderr).toBe(0);
    }
    const defaults = await runKubectl(
      [
        'get',
        'integrationflow',
        'shopify-orders',
        '-n',
        ns,
        '-o',
        'jsonpath={.spec.delivery.ackWait} {.spec.stream.storage}',
      ],
      admin,
    );
    expect(defaults.stdout).toBe('30s file');

    const flows = await runKubectl(['get', 'integrationflows', '-n', ns], admin);
    expect(flows.stdout.split('\n')[0]).toMatch(/^NAME\s+READY\s+CHANNEL\s+ENTITY\s+SOURCE\s+AGE$/);
    expect(flows.stdout).toMatch(/shopify-orders\s+shopify-us\s+Order\s+webhook/);

    const all = await runKubectl(['get', 'tally', '-n', ns, '-o', 'name'], admin);
    expect(all.stdout.trim().split('\n').sort()).toEqual([
      'canonicalmapping.tally.dev/shopify-order',
      'integrationflow.tally.dev/shopify-orders',
      'reconciliationpolicy.tally.dev/orders-vs-invoices',
    ]);
    const short = await runKubectl(['get', 'iflow,cmap,rpol', '-n', ns, '-o', 'name'], admin);
    expect(short.stdout.trim().split('\n')).toHaveLength(3);
  });

  it('is subject to RBAC: a user without grants cannot create flows', async () => {
    const r = await runKubectl(
      ['apply', '-n', ns, '-f', repoPath('examples/shopify-orders/flow.yaml')],
      user,
    );
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('cannot');
    expect(r.stderr).toContain('integrationflows');
  });
});
