// Names and labels of the objects the operator owns for a flow.
export const MANAGED_BY = 'tally-operator';
export const MANAGED_SELECTOR = `app.kubernetes.io/managed-by=${MANAGED_BY}`;
export const FLOW_LABEL = 'tally.dev/flow';
export const POLICY_LABEL = 'tally.dev/policy';
export const CONFIG_HASH_ANNOTATION = 'tally.dev/config-hash';
export const FINALIZER = 'tally.dev/cleanup';
export const WORKER_CONFIG_KEY = 'worker.json';
export const WORKER_CONFIG_DIR = '/etc/tally';
export const WORKER_HTTP_PORT = 8080;

export function flowWorkerName(flowName: string): string {
  return `tally-flow-${flowName}`;
}

export function flowLabels(flowName: string): Record<string, string> {
  return {
    'app.kubernetes.io/name': 'tally-flow-worker',
    'app.kubernetes.io/instance': flowName,
    'app.kubernetes.io/component': 'flow-worker',
    'app.kubernetes.io/part-of': 'tally',
    'app.kubernetes.io/managed-by': MANAGED_BY,
    [FLOW_LABEL]: flowName,
  };
}

/** The subset that selects the pods (immutable on a Deployment, so kept minimal). */
export function flowSelector(flowName: string): Record<string, string> {
  return { 'app.kubernetes.io/name': 'tally-flow-worker', [FLOW_LABEL]: flowName };
}

export function policyWorkerName(policyName: string): string {
  return `tally-recon-${policyName}`;
}

export function policyLabels(policyName: string): Record<string, string> {
  return {
    'app.kubernetes.io/name': 'tally-recon-worker',
    'app.kubernetes.io/instance': policyName,
    'app.kubernetes.io/component': 'reconciliation-worker',
    'app.kubernetes.io/part-of': 'tally',
    'app.kubernetes.io/managed-by': MANAGED_BY,
    [POLICY_LABEL]: policyName,
  };
}

export function policySelector(policyName: string): Record<string, string> {
  return { 'app.kubernetes.io/name': 'tally-recon-worker', [POLICY_LABEL]: policyName };
}
