// The kube tier (docs/kubernetes-testing.md) needs root on Linux, docker, debootstrap, the cluster
// binaries (bash tools/install.sh --kube) and a few host packages. Here only that is checked, fast:
// the tests build the images and start the cluster themselves (this setup runs before every tier).
// When something is missing the tier is skipped and the reason printed; with TALLY_KUBE=1 (CI) it
// is an error instead. TALLY_KUBE=0 skips it on purpose.
import type { TestProject } from 'vitest/node';
import { kubeTierSkipReason } from './support/prerequisites.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Why the kube tier cannot run here; '' when it can. */
    kubeSkip: string;
  }
}

export default async function setup(project: TestProject): Promise<void> {
  const reason = await kubeTierSkipReason();
  if (reason !== '' && process.env.TALLY_KUBE === '1') {
    throw new Error(`TALLY_KUBE=1, but the kube tier cannot run: ${reason}`);
  }
  if (reason !== '') process.stderr.write(`\n[tally kube] SKIPPING the kube tier: ${reason}\n\n`);
  project.provide('kubeSkip', reason);
}
