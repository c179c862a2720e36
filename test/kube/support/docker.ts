// Containers of the image tests: long-running ones under the harness's process watchdog (the
// attached `docker run` proxies our SIGTERM to the container and --rm removes it), so that nothing
// outlives the test even if it is killed.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { type CommandResult, runCommand } from '../../harness/cluster-exec.ts';
import { type ChildHandle, type ExitInfo, spawnChild } from '../../harness/process.ts';

/** What every container here gets: any non-root uid, a read-only root filesystem. */
export const LOCKED_DOWN = [
  '--read-only',
  '--user',
  '1000',
  '--cap-drop',
  'ALL',
  '--security-opt',
  'no-new-privileges',
];

/** `docker run --rm` to completion (bounded). */
export function dockerRunOnce(
  args: readonly string[],
  image: string,
  command: readonly string[],
  timeoutMs = 60_000,
): Promise<CommandResult> {
  return runCommand('docker', ['run', '--rm', ...args, image, ...command], { timeoutMs });
}

export interface Container {
  readonly name: string;
  readonly child: ChildHandle;
  /** SIGTERM (proxied to the container), SIGKILL after the grace period; then `docker rm -f`. */
  stop(graceMs?: number): Promise<ExitInfo>;
}

export function startContainer(
  dir: string,
  args: readonly string[],
  image: string,
  command: readonly string[],
): Container {
  const name = `tally-kube-${randomBytes(4).toString('hex')}`;
  const child = spawnChild({
    name: `docker ${name}`,
    command: 'docker',
    args: ['run', '--rm', '--name', name, '--sig-proxy=true', ...args, image, ...command],
    logFile: join(dir, `${name}.log`),
  });
  return {
    name,
    child,
    stop: async (graceMs = 15_000) => {
      const info = await child.stop({ signal: 'SIGTERM', graceMs });
      await runCommand('docker', ['rm', '-f', name], { timeoutMs: 30_000 });
      return info;
    },
  };
}
