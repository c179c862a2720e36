// The Helm chart installed for real on the single-node cluster: `helm install` of charts/tally with
// the local image, the operator pod Ready; `kubectl apply` of examples/shopify-orders, whose workers
// the operator renders and the kubelet runs; a signed webhook through the worker Service reaches a
// loopback ERP (reachable from pods through an `erp` Service whose endpoint is the node) exactly
// once; and deleting a worker pod while orders arrive loses none of them.
//
// No CoreDNS: the example's sink URL (http://erp.erp-system.svc:8080/...) is pointed at the `erp`
// Service's ClusterIP before it is applied; everything else is applied as it is in examples/.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as yaml from 'js-yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { shopifyHeaders, shopifyOrder } from '../../cli/demo/shopify-traffic.ts';
import { flowWorkerName } from '../../operator/render/labels.ts';
import { type Receiver, startReceiver } from '../../simulators/receiver.ts';
import { type Cluster, startCluster } from '../harness/cluster.ts';
import { runCommand } from '../harness/cluster-exec.ts';
import { buildImages } from '../harness/images.ts';
import { repoPath, toolPath } from '../harness/tools.ts';
import { apply, eventually, getJson, kubectlOk } from './support/kube.ts';
import { type Forwarder, forwardFromNode, type NodeNats, nodeNats } from './support/node-services.ts';

const skip = inject('kubeSkip');
const OPERATOR_NS = 'tally-system';
const NS = `shop-${randomBytes(3).toString('hex')}`;
const FLOW = 'shopify-orders';
const WORKER = flowWorkerName(FLOW);
const SECRET = 'demo-shopify-signing-secret'; // examples/shopify-orders/secret.yaml

interface Deployment {
  spec: { replicas: number };
  status: { readyReplicas?: number; updatedReplicas?: number; availableReplicas?: number };
}

describe.skipIf(skip !== '')('the chart on a real cluster', () => {
  let cluster: Cluster;
  let nats: NodeNats;
  let erp: Receiver;
  let erpFromPods: Forwarder;
  let image: string;
  let webhookUrl: string;
  const sent = new Set<string>();

  /** POSTs order n like Shopify does: redelivered (same webhook id) until it is acknowledged. */
  async function deliver(n: number): Promise<number> {
    const body = JSON.stringify(shopifyOrder({ n }));
    const headers = shopifyHeaders(body, SECRET, `kube-wh-${n}`);
    let attempts = 0;
    for (const until = Date.now() + 60_000; Date.now() < until; ) {
      attempts++;
      const status = await fetch(webhookUrl, {
        method: 'POST',
        headers,
        body,
        signal: AbortSignal.timeout(10_000),
      }).then(
        (r) => r.status,
        () => 0,
      );
      if (status === 202) {
        sent.add(String(n));
        return attempts;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`order ${n} was never acknowledged`);
  }

  /** Sales orders the ERP received, by Idempotency-Key. */
  const erpKeys = (): Map<string, number> => {
    const keys = new Map<string, number>();
    for (const r of erp.requests) {
      if (r.method !== 'POST') continue;
      const k = String(r.headers['idempotency-key']);
      keys.set(k, (keys.get(k) ?? 0) + 1);
    }
    return keys;
  };

  beforeAll(async () => {
    const images = await buildImages();
    image = images.tally.image;
    cluster = await startCluster({
      images: [images.pause.tar, images.tally.tar],
      sandboxImage: images.pause.image,
    });
    nats = await nodeNats(cluster.network.nodeIp);
    await nats.start();
    erp = await startReceiver({ status: 201 });
    erpFromPods = await forwardFromNode(cluster.network.nodeIp, Number(new URL(erp.url).port));
  }, 900_000);

  afterAll(async () => {
    await erpFromPods?.close();
    await erp?.close();
    await nats?.stop();
    await cluster?.stop();
  }, 180_000);

  it('helm install with the local image: the operator pod becomes Ready', async () => {
    const [repository, tag] = ['tally', 'local'];
    expect(image).toBe(`docker.io/library/${repository}:${tag}`);
    const t0 = Date.now();
    const r = await runCommand(
      toolPath('helm'),
      [
        ...['install', 'tally', repoPath('charts/tally'), '--kubeconfig', cluster.adminKubeconfig],
        ...['--namespace', OPERATOR_NS, '--create-namespace', '--wait', '--timeout', '180s'],
        ...[
          '--set',
          `image.repository=${repository}`,
          '--set',
          `image.tag=${tag}`,
          '--set',
          'image.pullPolicy=Never',
        ],
        ...['--set', `nats.url=${nats.url}`],
      ],
      { timeoutMs: 240_000 },
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const d = await getJson<Deployment>(cluster, ['get', 'deployment', 'tally-operator', '-n', OPERATOR_NS]);
    expect(d.status.readyReplicas).toBe(1);
    process.stderr.write(
      `[tally kube] helm install --wait: operator Ready in ${((Date.now() - t0) / 1000).toFixed(1)}s\n`,
    );
    // In-cluster config: the operator reached the apiserver through the `kubernetes` Service.
    const logs = await kubectlOk(cluster, ['logs', '-n', OPERATOR_NS, 'deployment/tally-operator']);
    expect(logs).not.toMatch(/"level":(50|60)/);
  });

  it('kubectl apply of examples/shopify-orders: the operator runs its workers behind a Service', async () => {
    // The ERP as pods see it: Service erp.erp-system:8080 -> the node IP, where the forwarder to the
    // loopback receiver listens.
    await kubectlOk(cluster, ['create', 'namespace', 'erp-system']);
    await kubectlOk(cluster, ['create', 'namespace', NS]);
    await apply(cluster, [
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'erp', namespace: 'erp-system' },
        spec: { ports: [{ name: 'http', port: 8080, targetPort: erpFromPods.port, protocol: 'TCP' }] },
      },
      {
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: {
          name: 'erp-node',
          namespace: 'erp-system',
          labels: { 'kubernetes.io/service-name': 'erp' },
        },
        addressType: 'IPv4',
        ports: [{ name: 'http', port: erpFromPods.port, protocol: 'TCP' }],
        endpoints: [{ addresses: [cluster.network.nodeIp], conditions: { ready: true } }],
      },
    ]);
    const erpIp = (
      await getJson<{ spec: { clusterIP: string } }>(cluster, ['get', 'service', 'erp', '-n', 'erp-system'])
    ).spec.clusterIP;
    const docs = ['flow.yaml', 'mapping.yaml', 'secret.yaml'].flatMap((f) =>
      yaml.loadAll(readFileSync(repoPath('examples', 'shopify-orders', f), 'utf8')),
    ) as { kind: string; spec?: { sinks?: { http?: { url: string } }[] } }[];
    for (const sink of docs.find((d) => d.kind === 'IntegrationFlow')?.spec?.sinks ?? []) {
      if (sink.http) sink.http.url = sink.http.url.replace('erp.erp-system.svc:8080', `${erpIp}:8080`);
    }
    await kubectlOk(cluster, ['apply', '-n', NS, '-f', '-'], docs.map((d) => yaml.dump(d)).join('---\n'));
    await eventually(
      `deployment ${WORKER} 2/2 ready`,
      async () => {
        const r = await cluster.kubectl(['get', 'deployment', WORKER, '-n', NS, '-o', 'json']);
        if (r.code !== 0) return false;
        const d = JSON.parse(r.stdout) as Deployment;
        return d.spec.replicas === 2 && d.status.readyReplicas === 2;
      },
      120_000,
    );
    const pod = await getJson<{
      items: { spec: { containers: { image: string; imagePullPolicy: string }[] } }[];
    }>(cluster, ['get', 'pods', '-n', NS, '-l', `tally.dev/flow=${FLOW}`]);
    expect(pod.items[0]?.spec.containers[0]).toMatchObject({
      image: 'tally:local',
      imagePullPolicy: 'Never',
    });
    const svc = await getJson<{ spec: { clusterIP: string } }>(cluster, ['get', 'service', WORKER, '-n', NS]);
    webhookUrl = `http://${svc.spec.clusterIP}/webhooks/shopify/orders`;
  });

  it('a signed webhook through the worker Service reaches the ERP once', async () => {
    expect(webhookUrl).toBeDefined();
    await eventually('the worker Service answers', async () => {
      const r = await fetch(webhookUrl.replace(/\/webhooks.*/, '/readyz')).catch(() => undefined);
      return r?.status === 200;
    });
    await deliver(1);
    await eventually('the ERP got the order', async () => erpKeys().size === 1, 60_000);
    // A redelivery of the same webhook (same id) is a duplicate: no second sales order.
    await deliver(1);
    await new Promise((r) => setTimeout(r, 3000));
    expect([...erpKeys().values()]).toEqual([1]);
    const order = erp.requests.find((r) => r.method === 'POST');
    expect(order?.path).toBe('/api/sales-orders');
  });

  it('deleting a worker pod while orders arrive loses none of them', async () => {
    expect(webhookUrl).toBeDefined();
    const pods = await getJson<{ items: { metadata: { name: string } }[] }>(cluster, [
      ...['get', 'pods', '-n', NS, '-l', `tally.dev/flow=${FLOW}`],
    ]);
    const victim = pods.items[0]!.metadata.name;
    let retried = 0;
    const t0 = Date.now();
    for (let n = 2; n <= 31; n++) {
      if (n === 8) await kubectlOk(cluster, ['delete', 'pod', victim, '-n', NS, '--wait=false']);
      retried += (await deliver(n)) - 1;
      await new Promise((r) => setTimeout(r, 100)); // spread over the victim's graceful stop
    }
    const sendSeconds = ((Date.now() - t0) / 1000).toFixed(1);
    await eventually('the ERP got every order', async () => erpKeys().size === sent.size, 120_000);
    await eventually(
      `deployment ${WORKER} back to 2/2`,
      async () => {
        const d = await getJson<Deployment>(cluster, ['get', 'deployment', WORKER, '-n', NS]);
        return d.status.readyReplicas === 2 && d.status.availableReplicas === 2;
      },
      120_000,
    );
    const after = await getJson<{ items: { metadata: { name: string } }[] }>(cluster, [
      ...['get', 'pods', '-n', NS, '-l', `tally.dev/flow=${FLOW}`],
    ]);
    expect(after.items.map((p) => p.metadata.name)).not.toContain(victim);
    const keys = erpKeys();
    const duplicates = [...keys.values()].filter((c) => c > 1).length;
    process.stderr.write(
      `[tally kube] ${sent.size} orders acknowledged in ${sendSeconds}s (${retried} webhook retries while a pod went away), ` +
        `${keys.size} distinct sales orders at the ERP, ${duplicates} delivered more than once\n`,
    );
    expect(keys.size).toBe(sent.size);
  });
});
