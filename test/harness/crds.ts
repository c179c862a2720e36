import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { HarnessError, HarnessErrorCode } from './errors.ts';
import { describeKubectl, runKubectl } from './kubectl.ts';
import { repoPath } from './tools.ts';

/** Anything with an admin kubeconfig: a ControlPlane, or `{ adminKubeconfig: inject('adminKubeconfig') }`. */
export interface AdminTarget {
  readonly adminKubeconfig: string;
}

const MANIFEST = /\.(ya?ml|json)$/i;

/** Manifest files (.yaml, .yml, .json) under `dir`, recursively, sorted; [] if dir is missing. */
export function listManifestFiles(dir: string = repoPath('crds')): string[] {
  if (!existsSync(dir)) return [];
  const files: string[] = [];
  const walk = (d: string): void => {
    for (const entry of readdirSync(d).sort()) {
      const path = join(d, entry);
      if (statSync(path).isDirectory()) walk(path);
      else if (MANIFEST.test(entry)) files.push(path);
    }
  };
  walk(dir);
  return files;
}

/**
 * `kubectl apply --server-side` every manifest under `dir` (default `<repo>/crds`), then waits until each
 * CustomResourceDefinition among them is Established. Returns the CRD names. Throws NO_CRDS if the
 * folder has no manifest.
 */
export async function installCrds(
  target: AdminTarget,
  dir: string = repoPath('crds'),
  options: { timeoutSeconds?: number } = {},
): Promise<string[]> {
  const files = listManifestFiles(dir);
  if (files.length === 0) {
    throw new HarnessError(
      HarnessErrorCode.NoCrds,
      `no CRD manifests (*.yaml, *.yml, *.json) in ${dir}: generate them first (npm run gen:crds)`,
    );
  }
  const kubeconfig = target.adminKubeconfig;
  const applyArgs = [
    ...['apply', '--server-side', '--force-conflicts', '--field-manager=tally-test-harness', '-o', 'name'],
    ...files.flatMap((f) => ['-f', f]),
  ];
  const applied = await runKubectl(applyArgs, { kubeconfig });
  if (applied.code !== 0)
    throw new HarnessError(HarnessErrorCode.CommandFailed, describeKubectl(applyArgs, applied));

  const prefix = 'customresourcedefinition.apiextensions.k8s.io/';
  const names = applied.stdout
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.startsWith(prefix))
    .map((line) => line.slice(prefix.length));
  if (names.length === 0) return names;

  const timeoutSeconds = options.timeoutSeconds ?? 60;
  const waitArgs = [
    ...['wait', '--for=condition=Established', `--timeout=${timeoutSeconds}s`],
    ...names.map((n) => `crd/${n}`),
  ];
  const waited = await runKubectl(waitArgs, { kubeconfig, timeoutMs: (timeoutSeconds + 30) * 1000 });
  if (waited.code !== 0)
    throw new HarnessError(HarnessErrorCode.CommandFailed, describeKubectl(waitArgs, waited));
  return names;
}
