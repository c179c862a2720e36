// Runs `tally operator` as a real process against the e2e control plane and a nats-server.
import { join } from 'node:path';
import { makeTempDir, removeTempDir } from '../../harness/cleanup.ts';
import { freePort } from '../../harness/ports.ts';
import { type ChildHandle, spawnChild, waitForHttp } from '../../harness/process.ts';
import { repoPath } from '../../harness/tools.ts';

export const OPERATOR_IMAGE = 'ghcr.io/tally-dev/tally:e2e';

export interface OperatorProcess {
  child: ChildHandle;
  metricsUrl: string;
  stop(): Promise<void>;
}

export async function startOperatorProcess(kubeconfig: string, natsUrl: string): Promise<OperatorProcess> {
  const dir = makeTempDir('operator');
  const port = await freePort();
  const child = spawnChild({
    name: 'tally-operator',
    command: process.execPath,
    args: [
      repoPath('bin/tally.mjs'),
      'operator',
      '--kubeconfig',
      kubeconfig,
      '--nats-url',
      natsUrl,
      '--image',
      OPERATOR_IMAGE,
      '--metrics-port',
      String(port),
      '--metrics-host',
      '127.0.0.1',
    ],
    logFile: join(dir, 'operator.log'),
    cwd: repoPath(''),
    env: { PATH: process.env.PATH, HOME: dir, TALLY_LOG_LEVEL: 'debug' },
    orphanDir: dir,
  });
  const metricsUrl = `http://127.0.0.1:${port}/metrics`;
  await waitForHttp(`http://127.0.0.1:${port}/readyz`, { children: [child], timeoutMs: 30_000 });
  return {
    child,
    metricsUrl,
    async stop() {
      await child.stop({ signal: 'SIGTERM', graceMs: 10_000 });
      removeTempDir(dir);
    },
  };
}
