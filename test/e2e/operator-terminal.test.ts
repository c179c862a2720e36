// The operator process on the real control plane: a flow that needs a user change is Stalled, its
// Event and tally_operator_reconcile_total{result="terminal"} carry the same reason, and the
// operator logs the error as an object (pino's err serializer: type, code, stack).
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as yaml from 'js-yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runKubectl } from '../harness/kubectl.ts';
import { type NatsServerHandle, startNatsServer } from '../harness/nats.ts';
import { waitUntil } from '../harness/process.ts';
import { helmTemplate } from './support/helm.ts';
import { type OperatorProcess, startOperatorProcess } from './support/operator-process.ts';

const kubeconfig = inject('adminKubeconfig');
const admin = { kubeconfig };
const ns = `terminal-${randomBytes(3).toString('hex')}`;

let nats: NatsServerHandle;
let operator: OperatorProcess;

async function kubectl(...args: string[]) {
  const r = await runKubectl(args, admin);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** The value of one sample of the operator's metrics, 0 when absent. */
async function sample(name: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(operator.metricsUrl)).text();
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && want.every((w) => l.includes(w)));
  return line ? Number(line.split(' ').pop()) : 0;
}

// Valid for the apiserver (the CRD cannot parse JSONata), invalid for the operator.
const flow = {
  apiVersion: 'tally.dev/v1alpha1',
  kind: 'IntegrationFlow',
  metadata: { name: 'bad-key', namespace: ns },
  spec: {
    channel: 'shopify-us',
    entity: 'Order',
    mappingRef: { name: 'shopify-order' },
    source: { type: 'webhook', webhook: { path: '/webhooks/orders', signature: { scheme: 'none' } } },
    sinks: [{ name: 'erp', type: 'http', http: { url: 'http://erp.example:8080/orders' } }],
    delivery: { partitionKey: 'customer.(', partitions: 2 },
  },
};

beforeAll(async () => {
  nats = await startNatsServer();
  await kubectl('create', 'namespace', ns);
  const rbac = await helmTemplate('templates/rbac.yaml');
  const role = rbac.find((d) => d.kind === 'ClusterRole')!;
  const binding = {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: `tally-operator-e2e-${ns}` },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role.metadata.name },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'tally-operator' }],
  };
  const applied = await runKubectl(['apply', '-f', '-'], {
    ...admin,
    input: [role, binding].map((d) => yaml.dump(d)).join('---\n'),
  });
  expect(applied.code, applied.stderr).toBe(0);
  operator = await startOperatorProcess(inject('operatorKubeconfig'), nats.url);
  const r = await runKubectl(['apply', '-f', '-'], { ...admin, input: yaml.dump(flow) });
  expect(r.code, r.stderr).toBe(0);
});

afterAll(async () => {
  await operator?.stop();
  await nats?.stop();
  await runKubectl(['delete', 'clusterrolebinding', `tally-operator-e2e-${ns}`, '--ignore-not-found'], admin);
});

describe('a flow the user must fix, on the control plane', () => {
  it('is Stalled, and its Event and the terminal reconcile metric carry the same reason', async () => {
    const jsonpath = (type: string, field: string) =>
      kubectl(
        'get',
        'iflow',
        'bad-key',
        '-n',
        ns,
        '-o',
        `jsonpath={.status.conditions[?(@.type=="${type}")].${field}}`,
      );
    await waitUntil('Stalled', async () => (await jsonpath('Stalled', 'status')) === 'True', {
      timeoutMs: 30_000,
    });
    expect(await jsonpath('Stalled', 'reason')).toBe('InvalidPartitionKey');
    expect(await jsonpath('Stalled', 'message')).toMatch(
      /^spec\.delivery\.partitionKey is not a valid JSONata/,
    );
    await waitUntil(
      'terminal reconcile counted',
      async () =>
        (await sample('tally_operator_reconcile_total', {
          kind: 'IntegrationFlow',
          result: 'terminal',
          reason: 'InvalidPartitionKey',
        })) >= 1,
      { timeoutMs: 15_000 },
    );
    const reasons = await kubectl(
      'get',
      'events.events.k8s.io',
      '-n',
      ns,
      '-o',
      'jsonpath={.items[*].reason}',
    );
    expect(reasons.split(' ')).toContain('InvalidPartitionKey');
    // Counted as terminal, never as an error to retry.
    expect(await sample('tally_operator_reconcile_total', { kind: 'IntegrationFlow', result: 'error' })).toBe(
      0,
    );
  });

  it('logs the terminal reconcile with the error as an object', async () => {
    type Line = { key?: string; err?: Record<string, unknown> };
    const terminalLine = () =>
      readFileSync(operator.child.logFile, 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Line)
        .find((l) => l.key === `IntegrationFlow/${ns}/bad-key` && l.err?.type === 'TerminalError');
    await waitUntil('the terminal log line', () => terminalLine() !== undefined, { timeoutMs: 30_000 });
    const line = terminalLine();
    expect(line?.err).toMatchObject({ code: 'TERMINAL', reason: 'InvalidPartitionKey' });
    expect(line?.err?.stack).toEqual(expect.stringContaining('TerminalError'));
  });
});
