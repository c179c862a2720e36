// Pure: the Kubernetes objects that run a resource's workers — a ConfigMap with the WorkerConfig,
// a Deployment running `tally runtime` from the operator's own image, and (for webhook flows) a
// Service. Applied with server-side apply, owned by the IntegrationFlow or ReconciliationPolicy.
import { API_VERSION } from '../../api/common.ts';
import type { IntegrationFlowSpec } from '../../api/integration-flow.ts';
import type { ReconciliationPolicySpec } from '../../api/reconciliation-policy.ts';
import type { AnyWorkerConfig } from '../../api/worker-config.ts';
import type { KubeObject } from '../kube/resources.ts';
import { canonicalJson, configHash } from './hash.ts';
import {
  CONFIG_HASH_ANNOTATION,
  flowLabels,
  flowSelector,
  flowWorkerName,
  policyLabels,
  policySelector,
  policyWorkerName,
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

export interface PolicyOwner {
  namespace: string;
  name: string;
  uid: string;
  spec: ReconciliationPolicySpec;
}

/** Everything that differs between the workers of a flow and of a policy. */
interface Workload {
  ownerKind: 'IntegrationFlow' | 'ReconciliationPolicy';
  namespace: string;
  ownerName: string;
  uid: string;
  name: string;
  labels: Record<string, string>;
  selector: Record<string, string>;
  replicas: number;
  resources: unknown;
  service: boolean;
}

const DEFAULT_RESOURCES = {
  requests: { cpu: '100m', memory: '128Mi' },
  limits: { memory: '512Mi' },
};

export function renderFlowObjects(
  flow: FlowOwner,
  worker: { config: AnyWorkerConfig; env: SecretEnvVar[] },
  opts: RenderOptions,
): FlowObjects {
  return renderWorkload(
    {
      ownerKind: 'IntegrationFlow',
      namespace: flow.namespace,
      ownerName: flow.name,
      uid: flow.uid,
      name: flowWorkerName(flow.name),
      labels: flowLabels(flow.name),
      selector: flowSelector(flow.name),
      replicas: flow.spec.suspend ? 0 : flow.spec.replicas,
      resources: flow.spec.resources,
      service: flow.spec.source.type === 'webhook',
    },
    worker,
    opts,
  );
}

/** One worker per policy: its state is the stream it replays, so a second replica adds nothing. */
export function renderPolicyObjects(
  policy: PolicyOwner,
  worker: { config: AnyWorkerConfig; env: SecretEnvVar[] },
  opts: RenderOptions,
): FlowObjects {
  return renderWorkload(
    {
      ownerKind: 'ReconciliationPolicy',
      namespace: policy.namespace,
      ownerName: policy.name,
      uid: policy.uid,
      name: policyWorkerName(policy.name),
      labels: policyLabels(policy.name),
      selector: policySelector(policy.name),
      replicas: policy.spec.suspend ? 0 : 1,
      resources: policy.spec.resources,
      service: false,
    },
    worker,
    opts,
  );
}

function renderWorkload(
  w: Workload,
  worker: { config: AnyWorkerConfig; env: SecretEnvVar[] },
  opts: RenderOptions,
): FlowObjects {
  const { name, labels } = w;
  const metadata = (kindName: string) => ({
    name: kindName,
    namespace: w.namespace,
    labels,
    ownerReferences: [
      {
        apiVersion: API_VERSION,
        kind: w.ownerKind,
        name: w.ownerName,
        uid: w.uid,
        controller: true,
        blockOwnerDeletion: true,
      },
    ],
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
      replicas: w.replicas,
      selector: { matchLabels: w.selector },
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
              resources: w.resources ?? DEFAULT_RESOURCES,
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

  const service: KubeObject | undefined = w.service
    ? {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: metadata(name),
        spec: {
          type: 'ClusterIP',
          selector: w.selector,
          ports: [{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }],
        },
      }
    : undefined;

  return { configMap, deployment, service, hash };
}
