// A real single-node cluster (test/harness/cluster.ts) running a pod from the Tally image: a flow
// worker (`tally runtime`) from a ConfigMap-mounted WorkerConfig, with its secrets from a Secret.
// Its readiness probe keeps it out of the Service until NATS is there; logs and exec work; the
// securityContext holds (non-root uid/gid, read-only root filesystem, no capabilities, seccomp);
// and a Service reaches it from the host through kube-proxy. Finally the teardown leaves the host's
// firewall, sysctls, links and cgroups as they were.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { shopifyHeaders, shopifyOrder } from '../../cli/demo/shopify-traffic.ts';
import { type Cluster, startCluster } from '../harness/cluster.ts';
import { runCommand } from '../harness/cluster-exec.ts';
import { CLUSTER_SYSCTLS } from '../harness/cluster-host.ts';
import { buildImages } from '../harness/images.ts';
import { renderExampleFlow } from './support/flows.ts';
import { apply, eventually, getJson, isReady, kubectlOk, podStatus } from './support/kube.ts';
import { type NodeNats, nodeNats } from './support/node-services.ts';

const skip = inject('kubeSkip');
const NS = `kube-${randomBytes(3).toString('hex')}`;
const SHOPIFY_SECRET = 'demo-shopify-signing-secret'; // examples/shopify-orders/secret.yaml

async function hostState(): Promise<string> {
  const norm = (t: string) =>
    t
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('#'))
      .map((l) => l.replace(/ \[\d+:\d+\]$/, ''))
      .join('\n');
  const [v4, v6, links] = await Promise.all([
    runCommand('iptables-save', []),
    runCommand('ip6tables-save', []),
    runCommand('ip', ['-o', 'link', 'show']),
  ]);
  const sysctls = CLUSTER_SYSCTLS.filter((k) => existsSync(`/proc/sys/${k}`)).map(
    (k) => `${k}=${readFileSync(`/proc/sys/${k}`, 'utf8').trim()}`,
  );
  const linkNames = links.stdout
    .split('\n')
    .map((l) => l.split(': ')[1]?.split('@')[0])
    .filter(Boolean);
  return [norm(v4.stdout), norm(v6.stdout), linkNames.join(' '), sysctls.join('\n')].join('\n---\n');
}

describe.skipIf(skip !== '')('a real single-node cluster', () => {
  let cluster: Cluster;
  let nats: NodeNats;
  let before: string;
  let image: string;

  beforeAll(async () => {
    const images = await buildImages();
    image = images.tally.image;
    before = await hostState();
    cluster = await startCluster({
      images: [images.pause.tar, images.tally.tar],
      sandboxImage: images.pause.image,
    });
    nats = await nodeNats(cluster.network.nodeIp);
    await kubectlOk(cluster, ['create', 'namespace', NS]);
  }, 900_000);

  afterAll(async () => {
    await nats?.stop();
    await cluster?.stop();
  }, 180_000);

  it('has a Ready node registered as system:node:<name> under Node,RBAC', async () => {
    const node = await getJson<{
      status: {
        nodeInfo: { kubeletVersion: string; containerRuntimeVersion: string };
        conditions: { type: string; status: string }[];
      };
    }>(cluster, ['get', 'node', cluster.nodeName]);
    expect(node.status.conditions.find((c) => c.type === 'Ready')?.status).toBe('True');
    expect(node.status.nodeInfo.kubeletVersion).toBe('v1.36.3');
    expect(node.status.nodeInfo.containerRuntimeVersion).toBe('containerd://2.2.9');
    // The Node authorizer: the kubelet may read its own node, not list the cluster's secrets.
    const asNode = ['--as', `system:node:${cluster.nodeName}`, '--as-group', 'system:nodes'];
    expect(
      (await cluster.kubectl(['auth', 'can-i', 'get', `nodes/${cluster.nodeName}`, ...asNode])).stdout.trim(),
    ).toBe('yes');
    expect(
      (await cluster.kubectl(['auth', 'can-i', 'list', 'secrets', '-A', ...asNode])).stdout.trim(),
    ).toMatch(/^no\b/);
  });

  describe('a flow worker pod from the Tally image', () => {
    let flow: Awaited<ReturnType<typeof renderExampleFlow>>;
    const secretName = 'worker-secrets';

    beforeAll(async () => {
      flow = await renderExampleFlow('shopify-orders', { namespace: NS, natsServers: [nats.url] });
      const container = {
        name: 'worker',
        image,
        imagePullPolicy: 'Never',
        args: ['runtime', '--config', '/etc/tally/worker.yaml'],
        env: [
          { name: 'TALLY_HTTP_PORT', value: '8080' },
          ...Object.keys(flow.env).map((k) => ({
            name: k,
            valueFrom: { secretKeyRef: { name: secretName, key: k } },
          })),
        ],
        ports: [{ name: 'http', containerPort: 8080 }],
        readinessProbe: { httpGet: { path: '/readyz', port: 'http' }, periodSeconds: 1, failureThreshold: 1 },
        securityContext: {
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          capabilities: { drop: ['ALL'] },
        },
        volumeMounts: [{ name: 'config', mountPath: '/etc/tally', readOnly: true }],
      };
      await apply(cluster, [
        {
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: 'worker-config', namespace: NS },
          data: { 'worker.yaml': JSON.stringify(flow.config) },
        },
        {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: secretName, namespace: NS },
          stringData: flow.env,
        },
        {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name: 'worker', namespace: NS, labels: { app: 'tally-worker' } },
          spec: {
            terminationGracePeriodSeconds: 5,
            automountServiceAccountToken: false,
            securityContext: {
              runAsNonRoot: true,
              runAsUser: 65532,
              runAsGroup: 65532,
              seccompProfile: { type: 'RuntimeDefault' },
            },
            containers: [container],
            volumes: [{ name: 'config', configMap: { name: 'worker-config' } }],
          },
        },
        {
          apiVersion: 'v1',
          kind: 'Service',
          metadata: { name: 'worker', namespace: NS },
          spec: { selector: { app: 'tally-worker' }, ports: [{ port: 80, targetPort: 'http' }] },
        },
      ]);
    });

    it('runs, but is not Ready while NATS is away (readiness probe), and Ready once it is', async () => {
      await eventually('worker container running', async () => {
        const s = await podStatus(cluster, NS, 'worker');
        return s.containerStatuses?.[0]?.state?.running !== undefined;
      });
      // Several probe periods with NATS not listening: never Ready.
      for (let i = 0; i < 4; i++) {
        await new Promise((r) => setTimeout(r, 1000));
        expect(isReady(await podStatus(cluster, NS, 'worker'))).toBe(false);
      }
      await nats.start();
      await flow.provision();
      await eventually('worker Ready', async () => isReady(await podStatus(cluster, NS, 'worker')), 90_000);
      expect((await podStatus(cluster, NS, 'worker')).containerStatuses?.[0]?.restartCount).toBe(0);
    });

    it('has logs and exec, and runs as 65532:65532 with a read-only root, no capabilities, seccomp on', async () => {
      const logs = await kubectlOk(cluster, ['logs', '-n', NS, 'worker']);
      expect(logs).toMatch(/"msg"/); // JSON log lines of the worker
      const out = await kubectlOk(cluster, [
        ...['exec', '-n', NS, 'worker', '--', 'node', '-e'],
        [
          "const fs = require('node:fs');",
          "const st = fs.readFileSync('/proc/self/status', 'utf8');",
          "console.log('uid', process.getuid(), 'gid', process.getgid());",
          "console.log('CapEff', st.match(/CapEff:\\s*(\\w+)/)[1], 'Seccomp', st.match(/Seccomp:\\s*(\\d)/)[1]);",
          "for (const p of ['/app/x', '/tmp/x', '/etc/tally/x']) { try { fs.writeFileSync(p, 'x'); console.log(p, 'writable'); } catch (e) { console.log(p, e.code); } }",
        ].join(' '),
      ]);
      expect(out).toContain('uid 65532 gid 65532');
      expect(out).toContain('CapEff 0000000000000000 Seccomp 2');
      expect(out).toContain('/app/x EROFS');
      expect(out).toContain('/tmp/x EROFS');
      expect(out).toContain('/etc/tally/x EROFS');
    });

    it('is reached from the host through its Service (kube-proxy): /readyz and a signed webhook', async () => {
      const svc = await getJson<{ spec: { clusterIP: string } }>(cluster, [
        'get',
        'service',
        'worker',
        '-n',
        NS,
      ]);
      const base = `http://${svc.spec.clusterIP}`;
      expect(svc.spec.clusterIP.startsWith('10.0.0.')).toBe(true);
      // The endpoint appears in kube-proxy's rules within a sync period after the pod is Ready.
      await eventually(
        'GET /readyz via the ClusterIP',
        async () => (await fetch(`${base}/readyz`)).status === 200,
        30_000,
      );
      const body = JSON.stringify(shopifyOrder({ n: 1 }));
      const path = flow.spec.source.webhook?.path ?? '/webhooks/shopify/orders';
      const res = await fetch(`${base}${path}`, {
        method: 'POST',
        headers: shopifyHeaders(body, SHOPIFY_SECRET, `kube-${randomBytes(4).toString('hex')}`),
        body,
      });
      expect(res.status).toBe(202);
      // A ClusterIP no Service has: refused at once by the safety net, never sent off the machine.
      const used = (
        await kubectlOk(cluster, ['get', 'services', '-A', '-o', 'jsonpath={.items[*].spec.clusterIP}'])
      ).split(' ');
      const free = ['10.0.0.250', '10.0.0.251', '10.0.0.252', '10.0.0.253'].find((ip) => !used.includes(ip));
      const t0 = Date.now();
      const unused = await fetch(`http://${free}/`, { signal: AbortSignal.timeout(5000) }).then(
        () => 'answered',
        (e: Error) => (e.cause as { code?: string } | undefined)?.code ?? e.name,
      );
      expect(unused).toBe('ECONNREFUSED');
      expect(Date.now() - t0).toBeLessThan(2000);
    });
  });

  it('stops, leaving the firewall, sysctls, links and cgroups as they were', async () => {
    await nats.stop();
    const problems = await cluster.stop();
    expect(problems).toEqual([]);
    expect(await hostState()).toBe(before);
    expect(existsSync('/sys/fs/cgroup/memory/kubepods')).toBe(false);
    expect(existsSync(cluster.dir)).toBe(false);
  });
});
