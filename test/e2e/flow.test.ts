// The first flow end to end: kubectl apply -> operator -> rendered Deployment -> worker processes
// (started by the process agent from exactly that pod template) -> NATS JetStream -> ERP HTTP peer.
// One operator and nats-server for the file; every test has a namespace (and so a flow, streams and
// an ERP) of its own, so any one of them runs alone with -t.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import * as yaml from 'js-yaml';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { type ErpPeer, startErpPeer } from '../../cli/demo/erp-simulator.ts';
import { shopifyHeaders, shopifyOrder } from '../../cli/demo/shopify-traffic.ts';
import { partitionOf } from '../../runtime/flow/partition.ts';
import { flowNames } from '../../runtime/nats/flow-resources.ts';
import { runKubectl } from '../harness/kubectl.ts';
import { type NatsServerHandle, startNatsServer } from '../harness/nats.ts';
import { waitUntil } from '../harness/process.ts';
import { repoPath } from '../harness/tools.ts';
import { helmTemplate } from './support/helm.ts';
import { type OperatorProcess, startOperatorProcess } from './support/operator-process.ts';
import { type RunningPod, readDeployment, runPod } from './support/process-agent.ts';

const kubeconfig = inject('adminKubeconfig');
const operatorKubeconfig = inject('operatorKubeconfig');
const admin = { kubeconfig };
const run = randomBytes(3).toString('hex');
const SECRET = 'demo-shopify-signing-secret';
const WEBHOOK = '/webhooks/shopify/orders';
const FLOW = 'shopify-orders';
const DEPLOYMENT = `tally-flow-${FLOW}`;
/** An ERP URL for flows whose workers never run. */
const NO_ERP = 'http://127.0.0.1:9';

let nats: NatsServerHandle;
let nc: NatsConnection;
let operator: OperatorProcess;
/** What the current test started, stopped after it. */
const pods: RunningPod[] = [];
const erps: ErpPeer[] = [];

async function kubectl(...args: string[]) {
  const r = await runKubectl(args, admin);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

function exampleMappingCases(): number {
  const mapping = yaml.load(readFileSync(repoPath('examples/shopify-orders/mapping.yaml'), 'utf8')) as {
    spec: { tests: unknown[] };
  };
  return mapping.spec.tests.length;
}

function exampleFlowYaml(erpUrl: string): string {
  const flow = yaml.load(readFileSync(repoPath('examples/shopify-orders/flow.yaml'), 'utf8')) as {
    spec: { sinks: { name: string; http?: { url: string } }[] };
  };
  flow.spec.sinks[0]!.http!.url = `${erpUrl}/api/sales-orders`;
  return yaml.dump(flow);
}

let namespaces = 0;

/** A namespace of the test's own, with the example's webhook Secret. */
async function newNamespace(): Promise<string> {
  const ns = `flow-${run}-${++namespaces}`;
  await kubectl('create', 'namespace', ns);
  await kubectl('apply', '-n', ns, '-f', repoPath('examples/shopify-orders/secret.yaml'));
  return ns;
}

interface ReadyFlow {
  ns: string;
  names: ReturnType<typeof flowNames>;
  erp: ErpPeer;
}

/** The example flow in a namespace of its own, applied with kubectl and Ready, delivering to an ERP of its own. */
async function readyFlow(): Promise<ReadyFlow> {
  const ns = await newNamespace();
  const erp = await startErpPeer();
  erps.push(erp);
  await kubectl('apply', '-n', ns, '-f', repoPath('examples/shopify-orders/mapping.yaml'));
  const r = await runKubectl(['apply', '-n', ns, '-f', '-'], { ...admin, input: exampleFlowYaml(erp.url) });
  expect(r.code, r.stderr).toBe(0);
  const waited = await runKubectl(
    ['wait', '-n', ns, '--for=condition=Ready', `integrationflow/${FLOW}`, '--timeout=60s'],
    admin,
  );
  expect(waited.code, `${waited.stderr}\n${operator.child.logTail(30)}`).toBe(0);
  return { ns, names: flowNames({ namespace: ns, name: FLOW }), erp };
}

/** Starts replica `index` of the flow's rendered pod template. */
async function startPod(ns: string, index: number): Promise<RunningPod> {
  const pod = await runPod(kubeconfig, ns, DEPLOYMENT, index);
  pods.push(pod);
  return pod;
}

/** Merges `delivery` into the example flow's spec.delivery. */
const patchDelivery = (ns: string, delivery: Record<string, unknown>) =>
  kubectl('patch', 'iflow', FLOW, '-n', ns, '--type=merge', '-p', JSON.stringify({ spec: { delivery } }));

async function post(pod: RunningPod, body: string, headers: Record<string, string>) {
  return fetch(`${pod.url}${WEBHOOK}`, { method: 'POST', body, headers });
}

async function metricSum(name: string, labels: Record<string, string> = {}): Promise<number> {
  let total = 0;
  for (const pod of pods) {
    const text = await (await fetch(`${pod.url}/metrics`)).text();
    for (const line of text.split('\n')) {
      if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
      if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
        total += Number(line.split(' ').pop());
    }
  }
  return total;
}

async function streamMessages(stream: string): Promise<number> {
  const jsm = await jetstreamManager(nc);
  return (await jsm.streams.info(stream)).state.messages;
}

/** Every message of the flow stream taken and acknowledged: nothing more is coming to the sinks. */
async function consumerSettled(names: ReadyFlow['names']): Promise<void> {
  const jsm = await jetstreamManager(nc);
  await waitUntil(
    'consumer settled',
    async () => {
      const c = await jsm.consumers.info(names.stream, names.consumer);
      return c.num_pending === 0 && c.num_ack_pending === 0;
    },
    { timeoutMs: 30_000 },
  );
}

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  // The operator runs with exactly the chart's RBAC: its ClusterRole, bound to its user.
  const rbac = await helmTemplate('templates/rbac.yaml');
  const role = rbac.find((d) => d.kind === 'ClusterRole')!;
  const binding = {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: `tally-operator-e2e-flow-${run}` },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role.metadata.name },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'tally-operator' }],
  };
  const applied = await runKubectl(['apply', '-f', '-'], {
    ...admin,
    input: [role, binding].map((d) => yaml.dump(d)).join('---\n'),
  });
  expect(applied.code, applied.stderr).toBe(0);
  operator = await startOperatorProcess(operatorKubeconfig, nats.url);
});

afterEach(async () => {
  for (const p of pods.splice(0)) await p.stop();
  for (const e of erps.splice(0)) await e.close();
});

afterAll(async () => {
  await operator?.stop();
  await nc?.close();
  await nats?.stop();
});

describe('Shopify order webhook -> ERP, end to end', () => {
  it('becomes Ready after kubectl apply, with its owned objects rendered', async () => {
    const { ns } = await readyFlow();
    expect(
      await kubectl(
        'get',
        'canonicalmapping',
        'shopify-order',
        '-n',
        ns,
        '-o',
        'jsonpath={.status.testsPassed}',
      ),
    ).toBe(String(exampleMappingCases()));

    const dep = await readDeployment(kubeconfig, ns, DEPLOYMENT);
    const container = dep.spec.template.spec.containers[0]!;
    expect(container.image).toBe('ghcr.io/tally-dev/tally:e2e');
    expect(container.args).toEqual(['runtime', '--config', '/etc/tally/worker.json']);
    expect(dep.spec.replicas).toBe(2);
    expect(dep.spec.template.metadata.annotations?.['tally.dev/config-hash']).toMatch(/^[0-9a-f]{16}$/);
    expect(
      await kubectl('get', 'service', DEPLOYMENT, '-n', ns, '-o', 'jsonpath={.spec.ports[0].port}'),
    ).toBe('80');
    const owner = await kubectl(
      'get',
      'configmap',
      DEPLOYMENT,
      '-n',
      ns,
      '-o',
      'jsonpath={.metadata.ownerReferences[0].kind}',
    );
    expect(owner).toBe('IntegrationFlow');
    const events = await kubectl(
      'get',
      'events.events.k8s.io',
      '-n',
      ns,
      '-o',
      'jsonpath={.items[*].reason}',
    );
    expect(events).toContain('Reconciled');
  });

  it('runs two workers from the rendered pod template that deliver each order exactly once', async () => {
    const { ns, names, erp } = await readyFlow();
    const workers = [await startPod(ns, 0), await startPod(ns, 1)];
    const sub = nc.subscribe('tally.canonical.order.shopify-us');
    const onNats: string[] = [];
    void (async () => {
      for await (const m of sub) onNats.push((m.json() as { subject: string }).subject);
    })();

    const N = 20;
    for (let n = 0; n < N; n++) {
      const body = JSON.stringify(shopifyOrder({ n }));
      const res = await post(workers[n % 2]!, body, shopifyHeaders(body, SECRET, `wh-${n}`));
      expect(res.status).toBe(202);
    }
    // Shopify retries a delivery it thinks failed: same webhook id, other worker -> deduped.
    const again = JSON.stringify(shopifyOrder({ n: 3 }));
    expect((await post(workers[0]!, again, shopifyHeaders(again, SECRET, 'wh-3'))).status).toBe(202);

    await waitUntil('ERP received all orders', () => erp.applied.size >= N, { timeoutMs: 30_000 });
    await waitUntil('NATS sink received all orders', () => onNats.length >= N, { timeoutMs: 10_000 });
    // No duplicate can arrive any more: the retried webhook was stored once, and JetStream holds no
    // message for the workers, pending or unacknowledged (a message is acked once every sink has it).
    expect(await streamMessages(names.stream)).toBe(N);
    await consumerSettled(names);
    await nc.flush(); // anything the sinks published before their acks has reached this connection
    expect(erp.requests).toHaveLength(N);
    expect(erp.applied.size).toBe(N);
    const first = erp.requests[0]!;
    expect(first.headers['content-type']).toContain('application/cloudevents+json');
    expect(first.headers['idempotency-key']).toMatch(/^Order:shopify-510000000000\d+:\d+$/);
    expect((first.body as { type: string }).type).toBe('dev.tally.order.v1');
    expect(onNats).toHaveLength(N);
    expect(new Set(onNats).size).toBe(N);
    sub.unsubscribe();

    expect(await metricSum('tally_flow_messages_delivered_total', { sink: 'erp-orders' })).toBe(N);
    expect(await metricSum('tally_flow_messages_received_total')).toBe(N + 1);
  });

  it('rejects a bad signature with 401 and publishes nothing', async () => {
    const { ns, names } = await readyFlow();
    const pod = await startPod(ns, 0);
    const before = await streamMessages(names.stream);
    const body = JSON.stringify(shopifyOrder({ n: 99 }));
    const res = await post(pod, body, shopifyHeaders(body, 'not-the-secret', 'wh-forged'));
    expect(res.status).toBe(401);
    expect(await streamMessages(names.stream)).toBe(before);
  });

  it('sends a payload that fails the mapping to the dead-letter stream', async () => {
    const { ns, names, erp } = await readyFlow();
    const pod = await startPod(ns, 0);
    const body = JSON.stringify({ id: 42, note: 'not an order' });
    expect((await post(pod, body, shopifyHeaders(body, SECRET, 'wh-bad'))).status).toBe(202);
    await waitUntil('dead letter', async () => (await streamMessages(names.deadLetterStream)) === 1, {
      timeoutMs: 15_000,
    });
    const jsm = await jetstreamManager(nc);
    const dead = await jsm.streams.getMessage(names.deadLetterStream, {
      last_by_subj: names.deadLetterSubject,
    });
    expect(dead).not.toBeNull();
    expect(dead!.header.get('Tally-Error-Reason')).toMatch(/validation|evaluation/);
    expect(dead!.json()).toEqual({ id: 42, note: 'not an order' });
    // Dead-lettered and acknowledged: it never reached the ERP.
    await consumerSettled(names);
    expect(erp.requests).toHaveLength(0);
  });

  it('rolls the workers when the mapping changes: the config hash changes', async () => {
    const { ns } = await readyFlow();
    const dep = await readDeployment(kubeconfig, ns, DEPLOYMENT);
    const before = dep.spec.template.metadata.annotations!['tally.dev/config-hash'];
    await kubectl(
      'patch',
      'canonicalmapping',
      'shopify-order',
      '-n',
      ns,
      '--type=json',
      '-p',
      JSON.stringify([{ op: 'add', path: '/spec/lookups/0/inline/e2e-marker', value: 'pending' }]),
    );
    await waitUntil(
      'config hash change',
      async () =>
        (await readDeployment(kubeconfig, ns, DEPLOYMENT)).spec.template.metadata.annotations![
          'tally.dev/config-hash'
        ] !== before,
      { timeoutMs: 30_000 },
    );
  });

  it('reports MappingNotFound and recovers by itself when the mapping appears', async () => {
    const ns = await newNamespace();
    const flow = exampleFlowYaml(NO_ERP)
      .replace('name: shopify-orders', 'name: late-orders')
      .replace('name: shopify-order\n', 'name: late-mapping\n');
    await runKubectl(['apply', '-n', ns, '-f', '-'], { ...admin, input: flow });
    await waitUntil(
      'MappingNotFound',
      async () =>
        (await kubectl(
          'get',
          'iflow',
          'late-orders',
          '-n',
          ns,
          '-o',
          'jsonpath={.status.conditions[?(@.type=="Ready")].reason}',
        )) === 'MappingNotFound',
    );
    // kstatus: a missing dependency the user must create is Stalled, not Reconciling.
    const stalled = await kubectl(
      'get',
      'iflow',
      'late-orders',
      '-n',
      ns,
      '-o',
      'jsonpath={.status.conditions[?(@.type=="Stalled")].status}',
    );
    expect(stalled).toBe('True');
    const mapping = readFileSync(repoPath('examples/shopify-orders/mapping.yaml'), 'utf8').replace(
      'name: shopify-order\n',
      'name: late-mapping\n',
    );
    await runKubectl(['apply', '-n', ns, '-f', '-'], { ...admin, input: mapping });
    const waited = await runKubectl(
      ['wait', '-n', ns, '--for=condition=Ready', 'iflow/late-orders', '--timeout=60s'],
      admin,
    );
    expect(waited.code, waited.stderr).toBe(0);
  });

  it('reports a failing embedded test case on the mapping with a diff', async () => {
    const ns = await newNamespace();
    const mapping = readFileSync(repoPath('examples/shopify-orders/mapping.yaml'), 'utf8')
      .replace('name: shopify-order\n', 'name: broken-mapping\n')
      .replace(
        'grandTotal: { amount: "9.50", currency: USD }',
        'grandTotal: { amount: "9.51", currency: USD }',
      );
    await runKubectl(['apply', '-n', ns, '-f', '-'], { ...admin, input: mapping });
    await waitUntil(
      'TestsFailed',
      async () =>
        (await kubectl(
          'get',
          'cmap',
          'broken-mapping',
          '-n',
          ns,
          '-o',
          'jsonpath={.status.conditions[?(@.type=="Ready")].reason}',
        )) === 'TestsFailed',
    );
    const message = await kubectl(
      'get',
      'cmap',
      'broken-mapping',
      '-n',
      ns,
      '-o',
      'jsonpath={.status.conditions[?(@.type=="Ready")].message}',
    );
    expect(message).toContain('cancelled-order-status');
    expect(message).toContain('"9.51"');
    expect(message).toContain('"9.50"');
  });

  it('updates the durable consumer when the delivery settings change', async () => {
    const { ns, names } = await readyFlow();
    await patchDelivery(ns, { maxDeliver: 7, ackWait: '45s' });
    const jsm = await jetstreamManager(nc);
    await waitUntil('consumer updated', async () => {
      const c = (await jsm.consumers.info(names.stream, names.consumer)).config;
      return c.ack_wait === 45_000_000_000;
    });
  });

  it('keeps the JetStream resources of a flow deleted with deletionPolicy Retain', async () => {
    const { ns, names } = await readyFlow();
    await kubectl(
      'patch',
      'iflow',
      FLOW,
      '-n',
      ns,
      '--type=merge',
      '-p',
      '{"spec":{"deletionPolicy":"Retain"}}',
    );
    await waitUntil('Retain observed', async () =>
      (
        await kubectl(
          'get',
          'iflow',
          FLOW,
          '-n',
          ns,
          '-o',
          'jsonpath={.status.observedGeneration}/{.metadata.generation}',
        )
      )
        .split('/')
        .every((v, _i, a) => v === a[0]),
    );
    await kubectl('delete', 'iflow', FLOW, '-n', ns, '--timeout=60s');
    const jsm = await jetstreamManager(nc);
    expect((await jsm.streams.info(names.stream)).config.name).toBe(names.stream);
    expect((await jsm.streams.info(names.deadLetterStream)).config.name).toBe(names.deadLetterStream);
    const r = await runKubectl(['get', 'deployment', DEPLOYMENT, '-n', ns], admin);
    expect(r.stderr).toContain('NotFound');
  });

  it('reports consumers of removed partitions that still hold messages, and forgets them once reused', async () => {
    const { ns, names } = await readyFlow();
    const jsm = await jetstreamManager(nc);
    const js = jetstream(nc);
    const consumerNames = async () => {
      const out: string[] = [];
      for await (const c of jsm.consumers.list(names.stream)) out.push(c.name);
      return out.sort();
    };
    await patchDelivery(ns, { partitionKey: '$string(id)', partitions: 4 });
    await waitUntil('four partition consumers', async () => {
      const present = await consumerNames();
      return ['worker-0', 'worker-1', 'worker-2', 'worker-3'].every((c) => present.includes(c));
    });
    // The layout `tally dlq replay` routes by, kept on the stream.
    const layout = async () => (await jsm.streams.info(names.stream)).config.metadata ?? {};
    expect(await layout()).toMatchObject({
      'tally.dev/partitions': '4',
      'tally.dev/partition-key': '$string(id)',
    });
    // Orders waiting on every partition, with no worker running to take them.
    const held = new Map<number, number>();
    for (let n = 1; held.size < 4 || n <= 12; n++) {
      const order = shopifyOrder({ n: 9_000 + n });
      const p = partitionOf(String(order.id), 4);
      held.set(p, (held.get(p) ?? 0) + 1);
      await js.publish(names.ingestSubject(p), JSON.stringify(order), { msgID: `retire-${n}` });
    }

    await patchDelivery(ns, { partitions: 2 });
    const field = (path: string) => kubectl('get', 'iflow', FLOW, '-n', ns, '-o', `jsonpath={${path}}`);
    const retired = async () =>
      JSON.parse((await field('.status.retiredConsumers')) || '[]') as {
        name: string;
        pending: number;
        ackPending: number;
      }[];
    await waitUntil('retired consumers reported', async () => (await retired()).length === 2);
    expect(await retired()).toEqual([
      { name: 'worker-2', pending: held.get(2), ackPending: 0 },
      { name: 'worker-3', pending: held.get(3), ackPending: 0 },
    ]);
    const ready = await field('.status.conditions[?(@.type=="Ready")].message');
    expect(ready).toContain('2 consumer(s) of removed partitions still hold messages');
    expect(await consumerNames()).toEqual(['worker-0', 'worker-1', 'worker-2', 'worker-3']);
    expect(await layout()).toMatchObject({ 'tally.dev/partitions': '2' });

    // Partitions set back (docs/delivery.md): the kept consumers serve again and are no longer retired.
    await patchDelivery(ns, { partitions: 4 });
    await waitUntil('retired consumers forgotten', async () => (await retired()).length === 0);
    expect((await jsm.consumers.info(names.stream, 'worker-3')).num_pending).toBe(held.get(3));
  });

  it('removes the stream and the owned objects when the flow is deleted', async () => {
    const { ns, names } = await readyFlow();
    await kubectl('delete', 'integrationflow', FLOW, '-n', ns, '--timeout=60s');
    const jsm = await jetstreamManager(nc);
    await expect(jsm.streams.info(names.stream)).rejects.toThrow(/stream not found/);
    await expect(jsm.streams.info(names.deadLetterStream)).rejects.toThrow(/stream not found/);
    for (const kind of ['deployment', 'configmap', 'service']) {
      const r = await runKubectl(['get', kind, DEPLOYMENT, '-n', ns], admin);
      expect(r.stderr).toContain('NotFound');
    }
  });
});
