// The Kubernetes resources the operator reads and writes, and their REST paths.
import { GROUP, VERSION } from '../../api/common.ts';

export interface ResourceType {
  group: string; // '' for the core group
  version: string;
  plural: string;
  kind: string;
  namespaced: boolean;
}

export const INTEGRATION_FLOWS: ResourceType = {
  group: GROUP,
  version: VERSION,
  plural: 'integrationflows',
  kind: 'IntegrationFlow',
  namespaced: true,
};
export const CANONICAL_MAPPINGS: ResourceType = {
  group: GROUP,
  version: VERSION,
  plural: 'canonicalmappings',
  kind: 'CanonicalMapping',
  namespaced: true,
};
export const RECONCILIATION_POLICIES: ResourceType = {
  group: GROUP,
  version: VERSION,
  plural: 'reconciliationpolicies',
  kind: 'ReconciliationPolicy',
  namespaced: true,
};
export const DEPLOYMENTS: ResourceType = {
  group: 'apps',
  version: 'v1',
  plural: 'deployments',
  kind: 'Deployment',
  namespaced: true,
};
export const CONFIG_MAPS: ResourceType = {
  group: '',
  version: 'v1',
  plural: 'configmaps',
  kind: 'ConfigMap',
  namespaced: true,
};
export const SERVICES: ResourceType = {
  group: '',
  version: 'v1',
  plural: 'services',
  kind: 'Service',
  namespaced: true,
};
export const SECRETS: ResourceType = {
  group: '',
  version: 'v1',
  plural: 'secrets',
  kind: 'Secret',
  namespaced: true,
};
export const EVENTS: ResourceType = {
  group: 'events.k8s.io',
  version: 'v1',
  plural: 'events',
  kind: 'Event',
  namespaced: true,
};

export function apiVersionOf(r: ResourceType): string {
  return r.group ? `${r.group}/${r.version}` : r.version;
}

/** REST path of a collection (name absent) or an object, optionally a subresource. */
export function resourcePath(
  r: ResourceType,
  namespace?: string,
  name?: string,
  subresource?: string,
): string {
  const base = r.group ? `/apis/${r.group}/${r.version}` : `/api/${r.version}`;
  const ns = r.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  const obj = name ? `/${encodeURIComponent(name)}` : '';
  const sub = name && subresource ? `/${subresource}` : '';
  return `${base}${ns}/${r.plural}${obj}${sub}`;
}

/** Minimal shape every Kubernetes object has. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    generation?: number;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    finalizers?: string[];
    deletionTimestamp?: string;
    creationTimestamp?: string;
    ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean }[];
  };
  [key: string]: unknown;
}
