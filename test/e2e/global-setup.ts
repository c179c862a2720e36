// One real control plane (etcd + kube-apiserver) for the whole e2e project, with the generated CRDs
// from crds/ installed (TALLY_E2E_SKIP_CRDS=1 skips that, for debugging the harness). Tests read the kubeconfig paths with `inject('adminKubeconfig')` etc.
import type { TestProject } from 'vitest/node';
import { type ControlPlane, startControlPlane } from '../harness/control-plane.ts';
import { installCrds, listManifestFiles } from '../harness/crds.ts';
import { repoPath } from '../harness/tools.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Kubeconfig of the admin user (group system:masters). */
    adminKubeconfig: string;
    /** Kubeconfig of `tally-user`, who has no RBAC grants. */
    userKubeconfig: string;
    /** https://127.0.0.1:<port> */
    apiServerUrl: string;
    /** Kubeconfig of user `tally-operator` (no grants until a test binds the chart's ClusterRole). */
    operatorKubeconfig: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const cp: ControlPlane = await startControlPlane();
  try {
    const crdsDir = repoPath('crds');
    if (process.env.TALLY_E2E_SKIP_CRDS === '1') {
      process.stderr.write('[tally harness] TALLY_E2E_SKIP_CRDS=1: not installing crds/\n');
    } else if (listManifestFiles(crdsDir).length === 0) {
      process.stderr.write(`[tally harness] WARNING: no CRD manifests in ${crdsDir}; skipping CRD install\n`);
    } else {
      const t0 = performance.now();
      const names = await installCrds(cp, crdsDir);
      const ms = Math.round(performance.now() - t0);
      process.stderr.write(
        `[tally harness] installed ${names.length} CRDs in ${ms} ms: ${names.join(', ')}\n`,
      );
    }
  } catch (error) {
    await cp.stop();
    throw error;
  }
  project.provide('adminKubeconfig', cp.adminKubeconfig);
  project.provide('userKubeconfig', cp.userKubeconfig);
  project.provide('apiServerUrl', cp.url);
  project.provide('operatorKubeconfig', await cp.addUser('tally-operator'));
  return () => cp.stop();
}
