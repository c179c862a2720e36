// Renders the Helm chart with the pinned helm binary.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import * as yaml from 'js-yaml';
import { repoPath, toolPath } from '../../harness/tools.ts';

const run = promisify(execFile);

export interface RenderedDoc {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  [k: string]: unknown;
}

/** `helm template` of charts/tally, optionally one template file only. */
export async function helmTemplate(showOnly?: string, namespace = 'tally-system'): Promise<RenderedDoc[]> {
  const args = ['template', 'tally', repoPath('charts/tally'), '--namespace', namespace];
  if (showOnly) args.push('--show-only', showOnly);
  const { stdout } = await run(toolPath('helm'), args);
  return yaml.loadAll(stdout).filter((d): d is RenderedDoc => !!d);
}
