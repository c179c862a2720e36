import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HarnessError, HarnessErrorCode } from './errors.ts';

/** Binaries installed by `bash tools/install.sh` into `.tools/bin/`. */
export type ToolName = 'nats-server' | 'etcd' | 'kube-apiserver' | 'kubectl' | 'helm' | 'promtool';

/** Absolute path of the repository root (this file lives in `<root>/test/harness/`). */
export const repoRoot: string = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');

/** Absolute path of a file or folder inside the repository. */
export function repoPath(...parts: string[]): string {
  return join(repoRoot, ...parts);
}

/** Folder holding the pinned binaries: `$TALLY_TOOLS_BIN`, else `<root>/.tools/bin`. */
export function toolsBinDir(): string {
  const fromEnv = process.env.TALLY_TOOLS_BIN;
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : repoPath('.tools', 'bin');
}

/** Absolute path of an installed, executable tool; throws TOOL_MISSING naming the install script. */
export function toolPath(name: ToolName): string {
  const path = join(toolsBinDir(), name);
  try {
    accessSync(path, constants.X_OK);
  } catch (cause) {
    throw new HarnessError(
      HarnessErrorCode.ToolMissing,
      `${name} not found (or not executable) at ${path}: run \`bash tools/install.sh\` ` +
        '(or point TALLY_TOOLS_BIN at a folder holding it)',
      { cause },
    );
  }
  return path;
}
