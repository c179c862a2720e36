// Pure: the Kubernetes objects that run one IntegrationFlow's workers — a ConfigMap with the
// WorkerConfig, a Deployment running `tally runtime` from the operator's own image, and a
// Service when the source is a webhook. Applied with server-side apply, owned by the flow.
import { API_VERSION } from '../../api/common.ts';
import type { IntegrationFlowSpec } from '../../api/integration-flow.ts';
import type { WorkerConfig } from '../../api/worker-config.ts';
import type { KubeObject } from '../kube/resources.ts';
import { canonicalJson, configHash } from './hash.ts';
import {
  CONFIG_HASH_ANNOTATION,
  flowLabels,
  flowSelector,
  flowWorkerName,
  WORKER_CONFIG_DIR,
  WORKER_CONFIG_KEY,
  WORKER_HTTP_PORT,
} from './labels.ts';
import type { SecretEnvVar } from './worker-config.ts';

export interface FlowOwner {
  namespace: string;
  name: string;
  uid: string;
  spec: IntegrationFlowSpec;
}

export interface RenderOptions {
  /** The operator's own image: workers run the same binary. */
  image: string;
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  serviceAccountName?: string;
}

export interface FlowObjects {
  configMap: KubeObject;
  deployment: KubeObject;
  service: KubeObject | undefined;
  hash: string;
}

function ownerReference(flow: FlowOwner) {
  return {
    apiVersion: API_VERSION,
    kind: 'IntegrationFlow',
    name: flow.name,
    uid: flow.uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

const DEFAULT_RESOURCES = {
  requests: { cpu: '100m', memory: '128Mi' },
  limits: { memory: '512Mi' },
};

export function renderFlowObjects(
  flow: FlowOwner,
  worker: { config: WorkerConfig; env: SecretEnvVar[] },
  opts: RenderOptions,
): FlowObjects {
  const name = flowWorkerName(flow.name);
  const labels = flowLabels(flow.name);
  const metadata = (kindName: string) => ({
    name: kindName,
    namespace: flow.namespace,
    labels,
    ownerReferences: [ownerReference(flow)],
  });
  const configText = `${canonicalJson(worker.config)}\n`;
  // The hash covers the config and where secrets come from, so either change rolls the workers.
  const hash = configHash({ config: worker.config, env: worker.env, image: opts.image });

  const configMap: KubeObject = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: metadata(name),
    data: { [WORKER_CONFIG_KEY]: configText },
  };

  const deployment: KubeObject = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: metadata(name),
    spec: {
      replicas: flow.spec.suspend ? 0 : flow.spec.replicas,
      selector: { matchLabels: flowSelector(flow.name) },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        metadata: { labels, annotations: { [CONFIG_HASH_ANNOTATION]: hash } },
        spec: {
          ...(opts.serviceAccountName ? { serviceAccountName: opts.serviceAccountName } : {}),
          automountServiceAccountToken: false,
          terminationGracePeriodSeconds: 30,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: 65532,
            runAsGroup: 65532,
            seccompProfile: { type: 'RuntimeDefault' },
          },
          containers: [
            {
              name: 'worker',
              image: opts.image,
              imagePullPolicy: opts.imagePullPolicy ?? 'IfNotPresent',
              args: ['runtime', '--config', `${WORKER_CONFIG_DIR}/${WORKER_CONFIG_KEY}`],
              env: [
                { name: 'TALLY_LOG_LEVEL', value: 'info' },
                { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                ...worker.env,
              ],
              ports: [{ name: 'http', containerPort: WORKER_HTTP_PORT, protocol: 'TCP' }],
              readinessProbe: {
                httpGet: { path: '/readyz', port: 'http' },
                periodSeconds: 5,
                failureThreshold: 3,
              },
              livenessProbe: {
                httpGet: { path: '/healthz', port: 'http' },
                periodSeconds: 10,
                failureThreshold: 6,
                initialDelaySeconds: 5,
              },
              resources: flow.spec.resources ?? DEFAULT_RESOURCES,
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ['ALL'] },
              },
              volumeMounts: [{ name: 'config', mountPath: WORKER_CONFIG_DIR, readOnly: true }],
            },
          ],
          volumes: [{ name: 'config', configMap: { name } }],
        },
      },
    },
  };

  const service: KubeObject | undefined =
    flow.spec.source.type === 'webhook'
      ? {
          apiVersion: 'v1',
          kind: 'Service',
          metadata: metadata(name),
          spec: {
            type: 'ClusterIP',
            selector: flowSelector(flow.name),
            ports: [{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }],
          },
        }
      : undefined;

  return { configMap, deployment, service, hash };
}
