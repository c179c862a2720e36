// The kube tier's images and docker: images/build.sh (content-hashed, a no-op when nothing changed)
// and a dockerd started here only when none answers, stopped again only if started here.
import { mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { haveCommand, runCommand } from './cluster-exec.ts';
import { HarnessError, HarnessErrorCode } from './errors.ts';
import { type ChildHandle, spawnChild, waitUntil } from './process.ts';
import { repoPath } from './tools.ts';

/** The Tally image as docker names it (images/build.sh tags it). */
export const TALLY_DOCKER_IMAGE = 'tally:local';

export interface ImageTarball {
  /** Reference as containerd (and a pod spec) names it, e.g. docker.io/library/tally:local. */
  image: string;
  /** `docker save` tarball for `ctr images import`. */
  tar: string;
}

export interface BuiltImages {
  tally: ImageTarball;
  pause: ImageTarball;
  /** Wall time of images/build.sh. */
  ms: number;
  /** Its output (what was built, or "nothing to do"). */
  output: string;
}

export function imagesCacheDir(): string {
  return process.env.TALLY_IMAGES_CACHE || join(homedir(), '.cache', 'tally', 'images');
}

/** Runs images/build.sh (bounded); returns the tarballs it reports in images.json. */
export async function buildImages(
  options: { timeoutMs?: number; log?: (line: string) => void } = {},
): Promise<BuiltImages> {
  const log = options.log ?? ((line: string) => process.stderr.write(`[tally images] ${line}\n`));
  const t0 = performance.now();
  const r = await runCommand('bash', [repoPath('images/build.sh')], {
    timeoutMs: options.timeoutMs ?? 1_200_000,
  });
  const output = `${r.stdout}${r.stderr}`.trim();
  if (r.code !== 0) {
    throw new HarnessError(
      HarnessErrorCode.CommandFailed,
      `images/build.sh exited ${r.code}:\n${output.slice(-4000)}`,
    );
  }
  const ms = Math.round(performance.now() - t0);
  for (const line of output.split('\n')) log(line.replace(/^images: /, ''));
  const json = JSON.parse(readFileSync(join(imagesCacheDir(), 'images.json'), 'utf8')) as {
    tally: ImageTarball;
    pause: ImageTarball;
  };
  return { ...json, ms, output };
}

export interface Dockerd {
  /** True when this process started dockerd (and stop() will stop it). */
  readonly startedHere: boolean;
  stop(): Promise<void>;
}

export async function dockerAnswers(): Promise<boolean> {
  return (
    (await runCommand('docker', ['info', '--format', '{{.ServerVersion}}'], { timeoutMs: 15_000 })).code === 0
  );
}

/**
 * A dockerd to talk to: the running one, else one started here the way images/build.sh starts it
 * (no iptables, no IP forwarding or masquerading, no bridge unless docker0 exists: containers use
 * --network host or none), so that the host network is left as it was.
 */
export async function ensureDockerd(
  options: { timeoutMs?: number; log?: (line: string) => void } = {},
): Promise<Dockerd> {
  const log = options.log ?? ((line: string) => process.stderr.write(`[tally images] ${line}\n`));
  if (!(await haveCommand('docker'))) {
    throw new HarnessError(HarnessErrorCode.ToolMissing, 'no docker client: apt-get install -y docker.io');
  }
  if (await dockerAnswers()) return { startedHere: false, stop: async () => undefined };
  if (!(await haveCommand('dockerd')) || process.getuid?.() !== 0) {
    throw new HarnessError(
      HarnessErrorCode.ToolMissing,
      'dockerd is not running, and cannot be started here (needs root and docker.io)',
    );
  }
  const flags = ['--iptables=false', '--ip-forward=false', '--ip-masq=false'];
  if ((await runCommand('ip', ['link', 'show', 'docker0'])).code !== 0) flags.push('--bridge=none');
  const dir = imagesCacheDir();
  mkdirSync(dir, { recursive: true });
  const netnsMount = '/run/docker/netns/default';
  const netnsMounted = (): boolean => readFileSync('/proc/mounts', 'utf8').includes(` ${netnsMount} `);
  const hadNetnsMount = netnsMounted();
  const t0 = performance.now();
  const child: ChildHandle = spawnChild({
    name: 'dockerd',
    command: 'dockerd',
    args: flags,
    logFile: join(dir, 'dockerd.log'),
  });
  try {
    await waitUntil('dockerd', dockerAnswers, {
      timeoutMs: options.timeoutMs ?? 60_000,
      children: [child],
      intervalMs: 200,
    });
  } catch (error) {
    await child.stop({ graceMs: 10_000 });
    throw error;
  }
  log(
    `started dockerd ${flags.join(' ')} (pid ${child.pid}, ${((performance.now() - t0) / 1000).toFixed(1)}s)`,
  );
  return {
    startedHere: true,
    stop: async () => {
      await child.stop({ graceMs: 20_000 });
      // dockerd leaves its bind mount of the host's network namespace behind.
      if (!hadNetnsMount && netnsMounted()) await runCommand('umount', [netnsMount]);
      log(`stopped the dockerd started here (pid ${child.pid})`);
    },
  };
}
