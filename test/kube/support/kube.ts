// kubectl helpers for the kube tier's tests.
import * as yaml from 'js-yaml';
import type { Cluster } from '../../harness/cluster.ts';
import { describeKubectl } from '../../harness/kubectl.ts';
import { waitUntil } from '../../harness/process.ts';

export async function kubectlOk(cluster: Cluster, args: string[], input?: string): Promise<string> {
  const r = await cluster.kubectl(args, input === undefined ? {} : { input });
  if (r.code !== 0) throw new Error(describeKubectl(args, r));
  return r.stdout;
}

export async function apply(cluster: Cluster, docs: readonly object[]): Promise<void> {
  await kubectlOk(cluster, ['apply', '-f', '-'], docs.map((d) => yaml.dump(d)).join('---\n'));
}

export async function getJson<T>(cluster: Cluster, args: string[]): Promise<T> {
  return JSON.parse(await kubectlOk(cluster, [...args, '-o', 'json'])) as T;
}

export interface PodStatus {
  phase?: string;
  podIP?: string;
  conditions?: { type: string; status: string }[];
  containerStatuses?: { ready: boolean; restartCount: number; state?: Record<string, unknown> }[];
}

export async function podStatus(cluster: Cluster, ns: string, name: string): Promise<PodStatus> {
  return (await getJson<{ status: PodStatus }>(cluster, ['get', 'pod', name, '-n', ns])).status;
}

export const isReady = (s: PodStatus): boolean =>
  s.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

/** Polls until `check`; on timeout the error names `what` and the last error. */
export function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  return waitUntil(what, check, { timeoutMs, intervalMs: 250 });
}
