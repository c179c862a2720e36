// The two-way example (examples/netsuite-round-trip) on the control plane: kubectl apply -> operator
// (runs every mapping's embedded tests, inbound and outbound; resolves the sinks' outbound mappings)
// -> rendered Deployments -> worker processes started by the process agent from exactly those pod
// templates -> NetSuite-style ERP and Shopify Admin simulators on loopback. A Shopify order becomes
// one ERP sales order, the ERP's id lands in the namespace's cross-reference store, the ERP ships it,
// and the Shopify order gets a fulfillment with the tracking number. Also: an outbound mapping whose
// tests fail, and a sink referring to an inbound mapping, keep the flow from becoming Ready.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import * as yaml from 'js-yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { IntegrationFlowSpec } from '../../api/integration-flow.ts';
import { shopifyOrder } from '../../cli/demo/shopify-traffic.ts';
import { retargetSinks } from '../../cli/standalone.ts';
import { openKvState } from '../../runtime/flow/state/kv-store.ts';
import { xrefBucketName } from '../../runtime/xref/keys.ts';
import { type XrefStore, xrefStore } from '../../runtime/xref/store.ts';
import { type NetSuiteSimulator, startNetSuiteSimulator } from '../../simulators/netsuite.ts';
import { type ShopifySimulator, startShopifySimulator } from '../../simulators/shopify.ts';
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
const ns = `rt-${randomBytes(3).toString('hex')}`;
const BINDING = `tally-operator-e2e-${ns}`;

const ORDER_FLOW = 'shopify-orders-to-netsuite';
const SHIPMENT_FLOW = 'netsuite-shipments-to-shopify';
const SHOPIFY_SECRET = 'demo-shopify-signing-secret'; // examples/shopify-orders/secret.yaml
// Every secret value of the example (examples/netsuite-round-trip/secrets.yaml and the Shopify one):
// none may appear in a rendered object.
const SECRET_VALUES = [
  'tally-netsuite-client',
  'tally-netsuite-secret',
  'demo-netsuite-event-secret',
  'shpat_simulator',
  SHOPIFY_SECRET,
];
const EXAMPLE = 'examples/netsuite-round-trip';
const MAPPING_FILES = {
  'shopify-order': 'examples/shopify-orders/mapping.yaml',
  'order-to-netsuite': `${EXAMPLE}/order-to-netsuite.yaml`,
  'netsuite-fulfillment': `${EXAMPLE}/netsuite-fulfillment.yaml`,
  'shipment-to-shopify-fulfillment': `${EXAMPLE}/shipment-to-shopify.yaml`,
} as const;

interface Doc {
  metadata: { name: string; [k: string]: unknown };
  spec: Record<string, unknown>;
  [k: string]: unknown;
}
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string } };
}
interface RenderedSink {
  name: string;
  type: string;
  url?: string;
  method?: string;
  update?: { url: string; method: string };
  bodyMapping?: {
    name: string;
    generation: number;
    entity: string;
    expression: string;
    lookups: Record<string, { values: Record<string, string>; default?: string }>;
  };
  xref?: { system: string; entity: string; capture?: string; links: Record<string, string> };
  auth?: {
    type: string;
    tokenUrl?: string;
    clientId?: { env: string };
    clientSecret?: { env: string };
  };
}
interface RenderedConfig {
  nats: { xrefBucket: string; servers: string[] };
  sinks: RenderedSink[];
}

let nats: NatsServerHandle | undefined;
let nc: NatsConnection | undefined;
let operator: OperatorProcess | undefined;
let netsuite: NetSuiteSimulator | undefined;
let shopify: ShopifySimulator | undefined;
let store: XrefStore;
const pods = new Map<string, RunningPod>();

async function kubectl(...args: string[]): Promise<string> {
  const r = await runKubectl(args, admin);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function apply(docs: unknown[]): Promise<void> {
  const r = await runKubectl(['apply', '-n', ns, '-f', '-'], {
    ...admin,
    input: docs.map((d) => yaml.dump(d)).join('---\n'),
  });
  if (r.code !== 0) throw new Error(`kubectl apply: ${r.stderr}`);
}

const load = (file: string) => yaml.load(readFileSync(repoPath(file), 'utf8')) as Doc;

/** An example flow with its sinks (and token URL) pointed at the simulators, one replica. */
function exampleFlow(file: string): Doc {
  const flow = load(file);
  retargetSinks(flow.spec as unknown as IntegrationFlowSpec, {
    'https://erp.example.com': netsuite!.url,
    'https://tally-demo.myshopify.com': shopify!.url,
  });
  flow.spec.replicas = 1;
  return flow;
}

/** An example mapping, exactly as shipped (the apiserver must accept it). */
const applicableMapping = (file: string): Doc => load(file);

const caseCount = (file: string) => (load(file).spec.tests as unknown[]).length;

const field = (kind: string, name: string, path: string) =>
  kubectl('get', kind, name, '-n', ns, '-o', `jsonpath={${path}}`);
const readyReason = (kind: string, name: string) =>
  field(kind, name, '.status.conditions[?(@.type=="Ready")].reason');

async function waitReady(...objects: string[]): Promise<void> {
  const r = await runKubectl(['wait', '-n', ns, '--for=condition=Ready', ...objects, '--timeout=90s'], admin);
  expect(r.code, `${r.stderr}\n${operator?.child.logTail(30)}`).toBe(0);
}

async function waitReason(kind: string, name: string, reason: string): Promise<void> {
  await waitUntil(
    `${kind}/${name} Ready reason ${reason}`,
    async () => (await readyReason(kind, name)) === reason,
    {
      timeoutMs: 60_000,
      intervalMs: 250,
      children: operator ? [operator.child] : [],
    },
  );
}

/** A sample of a Prometheus text exposition (0 when absent). */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (.+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries(
      [...(m[3] ?? '').matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]),
    );
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[4]);
  }
  return 0;
}

const metrics = async (pod: RunningPod) => (await fetch(`${pod.url}/metrics`)).text();

/** Runs `step`, logging (not throwing) a failure, so every cleanup step runs. */
async function bestEffort(what: string, step: () => Promise<unknown>): Promise<void> {
  try {
    await step();
  } catch (err) {
    process.stderr.write(`[round-trip e2e] cleanup: ${what} failed: ${(err as Error).message}\n`);
  }
}

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  netsuite = await startNetSuiteSimulator();
  shopify = await startShopifySimulator();
  await kubectl('create', 'namespace', ns);
  // The operator runs with exactly the chart's RBAC: its ClusterRole, bound to its user.
  const rbac = await helmTemplate('templates/rbac.yaml');
  const role = rbac.find((d) => d.kind === 'ClusterRole')!;
  const binding = {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: BINDING },
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

afterAll(async () => {
  for (const [name, pod] of pods) await bestEffort(`stop pod ${name}`, () => pod.stop());
  pods.clear();
  // Flows carry the operator's finalizer: delete them while the operator still runs.
  if (operator) {
    await bestEffort('delete the flows', () =>
      kubectl('delete', 'integrationflow', '--all', '-n', ns, '--timeout=60s'),
    );
  }
  await bestEffort('delete the mappings and secrets', () =>
    kubectl('delete', 'canonicalmapping,secret', '--all', '-n', ns, '--timeout=30s'),
  );
  await bestEffort('stop the operator', async () => operator?.stop());
  // No namespace controller runs on this control plane: the namespace stays Terminating, empty.
  await bestEffort('delete the namespace', () => kubectl('delete', 'namespace', ns, '--wait=false'));
  await bestEffort('delete the ClusterRoleBinding', () =>
    kubectl('delete', 'clusterrolebinding', BINDING, '--ignore-not-found'),
  );
  await bestEffort('close NATS', async () => nc?.close());
  await bestEffort('stop the simulators', async () => Promise.all([netsuite?.close(), shopify?.close()]));
  await bestEffort('stop nats-server', async () => nats?.stop());
});

describe('round trip on the control plane: Shopify order -> NetSuite -> shipment -> Shopify fulfillment', () => {
  it('runs every mapping test (outbound ones too) and makes both flows Ready after kubectl apply', async () => {
    await kubectl('apply', '-n', ns, '-f', repoPath(EXAMPLE, 'secrets.yaml'));
    await kubectl('apply', '-n', ns, '-f', repoPath('examples/shopify-orders/secret.yaml'));
    await apply(Object.values(MAPPING_FILES).map(applicableMapping));
    await apply([
      exampleFlow(`${EXAMPLE}/orders-to-netsuite.yaml`),
      exampleFlow(`${EXAMPLE}/netsuite-shipments.yaml`),
    ]);

    await waitReady(...Object.keys(MAPPING_FILES).map((m) => `canonicalmapping/${m}`));
    for (const [name, file] of Object.entries(MAPPING_FILES)) {
      expect(await field('cmap', name, '.status.testsPassed'), name).toBe(String(caseCount(file)));
      expect(await field('cmap', name, '.status.testsFailed'), name).toBe('0');
      expect(await readyReason('cmap', name), name).toBe('TestsPassed');
    }
    await waitReady(`integrationflow/${ORDER_FLOW}`, `integrationflow/${SHIPMENT_FLOW}`);
    for (const flow of [ORDER_FLOW, SHIPMENT_FLOW]) {
      expect(await readyReason('iflow', flow)).toBe('Reconciled');
      expect(await field('iflow', flow, '.status.replicas')).toBe('1');
    }
  });

  it('renders the order flow with its resolved outbound mapping, the xref bucket, and OAuth credentials only as secretKeyRefs', async () => {
    const worker = `tally-flow-${ORDER_FLOW}`;
    const cm = JSON.parse(await kubectl('get', 'configmap', worker, '-n', ns, '-o', 'json')) as {
      data: Record<string, string>;
    };
    const config = JSON.parse(cm.data['worker.json']!) as RenderedConfig;
    expect(config.nats.xrefBucket).toBe(xrefBucketName(ns));
    expect(config.nats.xrefBucket).toBe(`tally_xref_${ns}`);

    const sink = config.sinks.find((s) => s.name === 'netsuite-sales-orders')!;
    expect(sink).toBeDefined();
    expect(sink.url).toBe(`${netsuite!.url}/services/rest/record/v1/salesOrder/eid:{orderId}`);
    expect(sink.method).toBe('PUT');
    expect(sink.update).toEqual({
      url: `${netsuite!.url}/services/rest/record/v1/salesOrder/{id}`,
      method: 'PATCH',
    });
    const outbound = load(MAPPING_FILES['order-to-netsuite']);
    const generation = await field('cmap', 'order-to-netsuite', '.metadata.generation');
    expect(sink.bodyMapping?.name).toBe(`${ns}/order-to-netsuite`);
    expect(sink.bodyMapping?.generation).toBe(Number(generation));
    expect(sink.bodyMapping?.entity).toBe('Order');
    expect(sink.bodyMapping?.expression).toBe(outbound.spec.expression);
    // Its lookup tables are resolved into the config.
    expect(sink.bodyMapping?.lookups.netsuiteItems?.values).toMatchObject({ 'HOODIE-L-GRY': '502' });
    expect(sink.bodyMapping?.lookups.netsuiteCustomers?.default).toBe('201');
    expect(sink.xref).toMatchObject({
      system: 'netsuite',
      entity: 'Order',
      capture: '$substringAfter(headers.location, "/salesOrder/")',
      links: { shopify: '$substringAfter(orderId, "shopify-")' },
    });
    expect(sink.auth?.type).toBe('oauth2ClientCredentials');
    expect(sink.auth?.tokenUrl).toBe(`${netsuite!.url}/services/rest/auth/oauth2/v1/token`);
    const idEnv = sink.auth?.clientId?.env;
    const secretEnv = sink.auth?.clientSecret?.env;
    expect(idEnv).toMatch(/^TALLY_SINK_\d+_CLIENT_ID$/);
    expect(secretEnv).toMatch(/^TALLY_SINK_\d+_CLIENT_SECRET$/);

    // No secret value anywhere in the ConfigMap (data, labels, annotations).
    const cmText = JSON.stringify(cm);
    for (const value of SECRET_VALUES) expect(cmText, value).not.toContain(value);

    const dep = await readDeployment(kubeconfig, ns, worker);
    expect(dep.spec.replicas).toBe(1);
    const env = (dep.spec.template.spec.containers[0]!.env ?? []) as EnvVar[];
    const byName = (name: string | undefined) => env.find((e) => e.name === name);
    expect(byName(idEnv)).toEqual({
      name: idEnv,
      valueFrom: { secretKeyRef: { name: 'netsuite-oauth', key: 'client-id' } },
    });
    expect(byName(secretEnv)).toEqual({
      name: secretEnv,
      valueFrom: { secretKeyRef: { name: 'netsuite-oauth', key: 'client-secret' } },
    });
    expect(byName('TALLY_WEBHOOK_SECRET')).toEqual({
      name: 'TALLY_WEBHOOK_SECRET',
      valueFrom: { secretKeyRef: { name: 'shopify-webhook', key: 'secret' } },
    });
    for (const e of env) if (e.valueFrom?.secretKeyRef) expect(e.value, e.name).toBeUndefined();
    const depText = JSON.stringify(dep);
    for (const value of SECRET_VALUES) expect(depText, value).not.toContain(value);
  });

  it('creates the sales order once, captures its id, and fulfils the Shopify order with the tracking number', async () => {
    const orderPod = await runPod(kubeconfig, ns, `tally-flow-${ORDER_FLOW}`);
    pods.set(ORDER_FLOW, orderPod);
    const shipmentPod = await runPod(kubeconfig, ns, `tally-flow-${SHIPMENT_FLOW}`);
    pods.set(SHIPMENT_FLOW, shipmentPod);
    const children = [orderPod.child, shipmentPod.child];
    store = xrefStore(await openKvState(nc!, xrefBucketName(ns)));

    // 1. Shopify sends the signed orders/create webhook to the order flow's pod.
    const order = shopifyOrder({ n: 1 });
    const key = `shopify-${order.id}`;
    expect(
      await shopify!.sendOrderWebhook(`${orderPod.url}/webhooks/shopify/orders`, order, SHOPIFY_SECRET),
    ).toBe(202);

    // 2. The ERP holds the sales order in its own shape, created once, with a token it issued.
    await waitUntil(
      'the ERP has the sales order',
      () => netsuite!.salesOrder({ externalId: key }) !== undefined,
      {
        timeoutMs: 30_000,
        children,
      },
    );
    const so = netsuite!.salesOrder({ externalId: key })!;
    expect(so).toMatchObject({
      externalId: key,
      entity: { id: '201' }, // customer shopify-7001 is not in netsuiteCustomers: the cash-sale default
      otherRefNum: order.name,
      memo: `Shopify order ${order.name}`,
    });
    expect(netsuite!.creates().byExternalId[key]).toBe(1);
    expect(netsuite!.tokensIssued).toBeGreaterThanOrEqual(1);

    // 3. The ERP's internal id and the Shopify id are in the namespace's cross-reference store.
    await waitUntil(
      'the ERP id is captured',
      async () => (await store.get('Order', key))?.ids.netsuite === so.id,
      {
        timeoutMs: 30_000,
        children,
      },
    );
    const record = await store.get('Order', key);
    expect(record).toMatchObject({
      entity: 'Order',
      key,
      ids: { netsuite: so.id, shopify: String(order.id) },
    });
    expect(record?.provenance.netsuite).toMatchObject({ by: `${ns}/${ORDER_FLOW}` });

    // 4. The ERP's events go to the shipment flow's pod; the ERP ships the order.
    netsuite!.setEvents({
      url: `${shipmentPod.url}/webhooks/netsuite/events`,
      secret: 'demo-netsuite-event-secret',
    });
    const shipped = await netsuite!.shipSalesOrder(so.id, {
      trackingNumber: '1Z999AA10123456784',
      carrier: 'UPS',
    });
    expect(shipped.status).toBe(202);

    // 5. Shopify has one fulfillment with the tracking number on that order.
    await waitUntil('Shopify has the fulfillment', () => shopify!.fulfillments(order.id).length === 1, {
      timeoutMs: 30_000,
      children,
    });
    const fulfillment = shopify!.fulfillments(order.id)[0]!;
    expect(fulfillment).toMatchObject({
      order_id: order.id,
      tracking_number: '1Z999AA10123456784',
      tracking_company: 'UPS',
      notify_customer: true,
    });
    expect(shopify!.order(order.id)?.fulfillment_status).toBe('fulfilled');
    const shipmentKey = `netsuite-if-${shipped.event.id}`;
    await waitUntil(
      'the fulfillment id is captured',
      async () => (await store.get('Shipment', shipmentKey))?.ids.shopify === String(fulfillment.id),
      { timeoutMs: 15_000, children },
    );

    await new Promise((r) => setTimeout(r, 500)); // a duplicate would arrive now
    expect(netsuite!.creates().byExternalId[key]).toBe(1);
    expect(netsuite!.salesOrders()).toHaveLength(1);
    expect(shopify!.fulfillments()).toHaveLength(1);
    expect(
      sample(await metrics(orderPod), 'tally_flow_sink_writes_total', {
        sink: 'netsuite-sales-orders',
        outcome: 'created',
      }),
    ).toBe(1);
    expect(
      sample(await metrics(shipmentPod), 'tally_flow_messages_delivered_total', {
        sink: 'shopify-fulfillments',
      }),
    ).toBe(1);
    expect(sample(await metrics(orderPod), 'tally_flow_messages_dead_lettered_total')).toBe(0);
    expect(sample(await metrics(shipmentPod), 'tally_flow_messages_dead_lettered_total')).toBe(0);
  });

  it('an outbound mapping whose tests fail is Stalled/TestsFailed, and the flow using it is not Ready (MappingNotReady)', async () => {
    const mapping = applicableMapping(MAPPING_FILES['shipment-to-shopify-fulfillment']);
    mapping.metadata.name = 'broken-fulfillment';
    const tests = mapping.spec.tests as {
      name: string;
      expected: { fulfillment: Record<string, unknown> };
    }[];
    tests[0]!.expected.fulfillment.tracking_company = 'United Parcel Service';
    const flow = exampleFlow(`${EXAMPLE}/netsuite-shipments.yaml`);
    flow.metadata.name = 'broken-shipments';
    const sinks = flow.spec.sinks as { http: { bodyMappingRef: { name: string } } }[];
    sinks[0]!.http.bodyMappingRef.name = 'broken-fulfillment';
    (flow.spec.source as { webhook: { path: string } }).webhook.path = '/webhooks/netsuite/broken';
    await apply([mapping, flow]);

    await waitReason('cmap', 'broken-fulfillment', 'TestsFailed');
    expect(await field('cmap', 'broken-fulfillment', '.status.conditions[?(@.type=="Stalled")].status')).toBe(
      'True',
    );
    expect(await field('cmap', 'broken-fulfillment', '.status.conditions[?(@.type=="Ready")].status')).toBe(
      'False',
    );
    expect(await field('cmap', 'broken-fulfillment', '.status.testsFailed')).toBe('1');
    expect(await field('cmap', 'broken-fulfillment', '.status.testsPassed')).toBe(String(tests.length - 1));
    const message = await field(
      'cmap',
      'broken-fulfillment',
      '.status.conditions[?(@.type=="Ready")].message',
    );
    expect(message).toContain('ups-shipment');
    expect(message).toContain('United Parcel Service');

    await waitReason('iflow', 'broken-shipments', 'MappingNotReady');
    expect(await field('iflow', 'broken-shipments', '.status.conditions[?(@.type=="Ready")].status')).toBe(
      'False',
    );
    expect(await field('iflow', 'broken-shipments', '.status.conditions[?(@.type=="Stalled")].status')).toBe(
      'True',
    );
    expect(
      await field('iflow', 'broken-shipments', '.status.conditions[?(@.type=="Ready")].message'),
    ).toContain('broken-fulfillment');
    const r = await runKubectl(['get', 'deployment', 'tally-flow-broken-shipments', '-n', ns], admin);
    expect(r.stderr).toContain('NotFound');

    await kubectl('delete', 'iflow', 'broken-shipments', '-n', ns, '--timeout=60s');
    await kubectl('delete', 'cmap', 'broken-fulfillment', '-n', ns, '--timeout=30s');
  });

  it('a sink whose bodyMappingRef names an inbound mapping is not Ready (MappingDirectionMismatch)', async () => {
    const flow = exampleFlow(`${EXAMPLE}/netsuite-shipments.yaml`);
    flow.metadata.name = 'wrong-direction';
    const sinks = flow.spec.sinks as { http: { bodyMappingRef: { name: string } } }[];
    sinks[0]!.http.bodyMappingRef.name = 'netsuite-fulfillment'; // inbound, same entity (Shipment)
    (flow.spec.source as { webhook: { path: string } }).webhook.path = '/webhooks/netsuite/wrong';
    await apply([flow]);

    await waitReason('iflow', 'wrong-direction', 'MappingDirectionMismatch');
    expect(await field('iflow', 'wrong-direction', '.status.conditions[?(@.type=="Ready")].status')).toBe(
      'False',
    );
    expect(await field('iflow', 'wrong-direction', '.status.conditions[?(@.type=="Stalled")].status')).toBe(
      'True',
    );
    const message = await field('iflow', 'wrong-direction', '.status.conditions[?(@.type=="Ready")].message');
    expect(message).toContain('spec.sinks[0].http.bodyMappingRef.name');
    expect(message).toContain('netsuite-fulfillment');
    const r = await runKubectl(['get', 'deployment', 'tally-flow-wrong-direction', '-n', ns], admin);
    expect(r.stderr).toContain('NotFound');
    await kubectl('delete', 'iflow', 'wrong-direction', '-n', ns, '--timeout=60s');

    // The working flows were not disturbed.
    expect(await readyReason('iflow', ORDER_FLOW)).toBe('Reconciled');
    expect(await readyReason('iflow', SHIPMENT_FLOW)).toBe('Reconciled');
  });
});
