// The reconciliation worker in the worker shell (runtime/worker) on a real nats-server: a SIGTERM
// during start-up stops the process at once, a reports stream that cannot be created fails the start
// naming it, and readiness follows NATS, with a stop while it is away ending within the grace period
// and the close allowance.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type JetStreamManager, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_VERSION } from '../../api/common.ts';
import type { ReconWorkerConfig } from '../../api/worker-config.ts';
import {
  canonicalStreamConfig,
  policyFilterSubjects,
  policyNames,
  reconStreamConfig,
} from '../../runtime/nats/canonical.ts';
import { ordersVsInvoicesPolicy } from '../../runtime/reconcile/testing.ts';
import { runReconWorker } from '../../runtime/reconcile/worker.ts';
import { DEFAULT_CLOSE_MS } from '../../runtime/worker/shell.ts';
import { makeTempDir, removeTempDir } from '../harness/cleanup.ts';
import { type NatsServerHandle, startNatsServer } from '../harness/nats.ts';
import { freePort } from '../harness/ports.ts';
import { spawnChild, waitUntil } from '../harness/process.ts';
import { repoPath } from '../harness/tools.ts';

let nats: NatsServerHandle;
let nc: NatsConnection;
let jsm: JetStreamManager;
let dir: string;

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  jsm = await jetstreamManager(nc);
  dir = makeTempDir('worker-shell-recon');
});
afterAll(async () => {
  await nc?.close();
  await nats?.stop();
  if (dir) removeTempDir(dir);
});

function configFor(ns: string, servers: string[]): ReconWorkerConfig {
  const spec = ordersVsInvoicesPolicy();
  const n = policyNames(ns, 'orders');
  return {
    apiVersion: API_VERSION,
    kind: 'WorkerConfig',
    role: 'reconciliation',
    policy: { namespace: ns, name: 'orders' },
    spec,
    nats: {
      servers,
      canonicalStream: canonicalStreamConfig(ns).name,
      filterSubjects: policyFilterSubjects(ns, spec),
      stateBucket: n.stateBucket,
      exceptionsSubject: n.exceptionsSubject,
      reportsSubject: n.reportsSubject,
    },
    http: { port: 8080 },
  };
}

const readyz = async (port: number) => {
  const res = await fetch(`http://127.0.0.1:${port}/readyz`);
  return { status: res.status, checks: ((await res.json()) as { checks: Record<string, boolean> }).checks };
};

describe('reconciliation worker in the worker shell', () => {
  it('tally runtime stopped with SIGTERM while it waits for NATS exits 0 at once, readiness having said so', async () => {
    const file = join(dir, 'away.json');
    writeFileSync(file, JSON.stringify(configFor('away', [`nats://127.0.0.1:${await freePort()}`])));
    const port = await freePort();
    const child = spawnChild({
      name: 'recon-worker',
      command: process.execPath,
      args: [repoPath('bin/tally.mjs'), 'runtime', '--config', file],
      logFile: join(dir, 'away.log'),
      env: { PATH: process.env.PATH, TALLY_HTTP_PORT: String(port), TALLY_HTTP_HOST: '127.0.0.1' },
    });
    try {
      await waitUntil(
        'readiness saying NATS is away',
        async () => (await readyz(port)).checks.nats === false,
        {
          children: [child],
          timeoutMs: 20_000,
        },
      );
      expect((await readyz(port)).status).toBe(503);
      // No SIGKILL fallback within the test: the exit must come from the SIGTERM itself.
      const exit = await child.stop({ signal: 'SIGTERM', graceMs: 30_000 });
      expect(exit).toMatchObject({ code: 0, signal: null });
      expect(readFileSync(child.logFile, 'utf8')).toContain('SIGTERM received; stopping gracefully');
    } finally {
      await child.stop({ signal: 'SIGKILL' });
    }
  });

  it('fails to start naming the reports stream, with the cause, when it cannot be created, and leaves nothing listening', async () => {
    const ns = 'squat';
    await jsm.streams.add(canonicalStreamConfig(ns));
    // Another stream already captures the subjects the reports stream needs: creating it fails.
    await jsm.streams.add({ name: 'squatter', subjects: [`tally.${ns}.recon.>`] });
    const port = await freePort();
    const err = await runReconWorker(configFor(ns, [nats.url]), {
      logger: pino({ level: 'silent' }),
      processMetrics: false,
      env: { TALLY_HTTP_PORT: String(port), TALLY_HTTP_HOST: '127.0.0.1' },
    }).then(
      async (worker) => {
        await worker.stop();
        return undefined;
      },
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ name: 'WorkerError', code: 'WORKER_STREAM_UNAVAILABLE' });
    expect((err as Error).message).toContain(reconStreamConfig(ns).name);
    expect((err as Error).cause).toBeInstanceOf(Error);
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
  });

  it('says on /readyz which check holds, turns not ready when NATS goes away, and then stops within the grace period and the close allowance', async () => {
    const own = await startNatsServer();
    const ownNc = await connect({ servers: own.url });
    try {
      const ownJsm = await jetstreamManager(ownNc);
      await ownJsm.streams.add(canonicalStreamConfig('gone'));
      await ownNc.close();
      const lines: Record<string, unknown>[] = [];
      const graceMs = 300;
      const worker = await runReconWorker(configFor('gone', [own.url]), {
        logger: pino({ level: 'debug' }, { write: (l: string) => void lines.push(JSON.parse(l)) }),
        processMetrics: false,
        graceMs,
        tickMs: 50,
        env: { TALLY_HTTP_PORT: '0', TALLY_HTTP_HOST: '127.0.0.1' },
      });
      await worker.caughtUp;
      expect((await readyz(worker.port)).checks).toEqual({
        nats: true,
        canonicalStream: true,
        caughtUp: true,
        accepting: true,
      });
      await own.halt();
      await waitUntil('worker sees NATS gone', () => !worker.ready(), { timeoutMs: 10_000 });
      const t0 = Date.now();
      await worker.stop();
      expect(Date.now() - t0).toBeLessThan(graceMs + DEFAULT_CLOSE_MS + 1_000);
      expect(lines.map((l) => l.msg)).toContain('stopped');
    } finally {
      await ownNc.close().catch(() => {});
      await own.stop();
    }
  });
});
