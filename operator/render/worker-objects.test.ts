import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as yaml from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { canonicalMappingSpecSchema } from '../../api/canonical-mapping.ts';
import { integrationFlowSpecSchema } from '../../api/integration-flow.ts';
import { renderWorkerConfig } from './worker-config.ts';
import { renderFlowObjects } from './worker-objects.ts';

const root = join(import.meta.dirname, '..', '..');
const load = (f: string) => yaml.load(readFileSync(join(root, 'examples', f), 'utf8')) as { spec: unknown };

function render(
  mutate?: (spec: ReturnType<typeof integrationFlowSpecSchema.parse>) => void,
  expression?: string,
) {
  const spec = integrationFlowSpecSchema.parse(load('shopify-orders/flow.yaml').spec);
  mutate?.(spec);
  const mappingSpec = canonicalMappingSpecSchema.parse(load('shopify-orders/mapping.yaml').spec);
  if (expression) mappingSpec.expression = expression;
  const worker = renderWorkerConfig({
    namespace: 'shop',
    name: 'shopify-orders',
    spec,
    mapping: { name: 'shopify-order', generation: 3, spec: mappingSpec },
    lookups: {},
    natsServers: ['nats://nats.tally:4222'],
  });
  return {
    worker,
    objects: renderFlowObjects({ namespace: 'shop', name: 'shopify-orders', uid: 'u-1', spec }, worker, {
      image: 'tally:1.2.3',
    }),
  };
}

type Container = {
  image: string;
  args: string[];
  env: { name: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[];
  securityContext: Record<string, unknown>;
  readinessProbe: { httpGet: { path: string } };
  livenessProbe: { httpGet: { path: string } };
  resources: unknown;
};
type PodSpec = { securityContext: Record<string, unknown>; containers: Container[] };
const podOf = (d: Record<string, unknown>) =>
  (d.spec as { template: { metadata: { annotations: Record<string, string> }; spec: PodSpec } }).template;

describe('renderFlowObjects', () => {
  it('runs `tally runtime` from the operator image as non-root with probes and resources', () => {
    const { objects } = render();
    const pod = podOf(objects.deployment);
    const c = pod.spec.containers[0]!;
    expect(c.image).toBe('tally:1.2.3');
    expect(c.args).toEqual(['runtime', '--config', '/etc/tally/worker.json']);
    expect(pod.spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532 });
    expect(c.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(c.readinessProbe.httpGet.path).toBe('/readyz');
    expect(c.livenessProbe.httpGet.path).toBe('/healthz');
    expect(c.resources).toBeDefined();
    expect(pod.metadata.annotations['tally.dev/config-hash']).toBe(objects.hash);
  });

  it('passes secrets only as secretKeyRefs, never as values in the ConfigMap', () => {
    const { objects } = render();
    const c = podOf(objects.deployment).spec.containers[0]!;
    expect(c.env.find((e) => e.name === 'TALLY_WEBHOOK_SECRET')?.valueFrom?.secretKeyRef).toEqual({
      name: 'shopify-webhook',
      key: 'secret',
    });
    const data = (objects.configMap as unknown as { data: Record<string, string> }).data['worker.json']!;
    expect(JSON.parse(data).source.signature.secret).toEqual({ env: 'TALLY_WEBHOOK_SECRET' });
  });

  it('owns everything through the flow and renders a Service only for webhook sources', () => {
    const { objects } = render();
    for (const o of [objects.configMap, objects.deployment, objects.service!]) {
      expect(o.metadata.ownerReferences).toEqual([
        expect.objectContaining({ kind: 'IntegrationFlow', uid: 'u-1', controller: true }),
      ]);
    }
    const nats = render((s) => {
      s.source = { type: 'nats', nats: { subject: 'in.orders' } };
    });
    expect(nats.objects.service).toBeUndefined();
  });

  it('changes the config hash when the mapping changes and keeps it when nothing changes', () => {
    const a = render().objects.hash;
    expect(render().objects.hash).toBe(a);
    expect(render(undefined, '$').objects.hash).not.toBe(a);
    expect(
      render((s) => {
        s.replicas = 5;
      }).objects.hash,
    ).toBe(a); // scaling does not restart pods
  });

  it('scales to zero when suspended', () => {
    const { objects } = render((s) => {
      s.suspend = true;
    });
    expect((objects.deployment.spec as { replicas: number }).replicas).toBe(0);
  });
});
