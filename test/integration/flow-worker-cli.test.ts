// `tally runtime --config FILE` as a process: a bad config fails fast naming the field; a good
// one runs until SIGTERM and then exits 0 after a graceful stop.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import * as yaml from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NatsServerHandle, startNatsServer } from '../harness/nats.ts';
import { freePort } from '../harness/ports.ts';
import { repoPath } from '../harness/tools.ts';
import { provision } from './support/flow-delivery.ts';
import { SECRET_ENV, shopifyWorkerConfig, waitFor } from './support/flow-worker.ts';

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function tally(args: string[], env: Record<string, string> = {}, onStart?: (pid: number) => Promise<void>) {
  const child = spawn(process.execPath, [repoPath('bin/tally.mjs'), ...args], {
    env: { ...process.env, TALLY_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d;
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d;
  });
  // Never outlive the test.
  const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const done = new Promise<Run>((resolve) => {
    child.on('exit', (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, stdout, stderr });
    });
  });
  if (onStart) void onStart(child.pid!).catch(() => child.kill('SIGKILL'));
  return done;
}

let dir: string;
let nats: NatsServerHandle;
let nc: NatsConnection;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tally-runtime-cli-'));
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
});

afterAll(async () => {
  await nc?.close();
  await nats?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('tally runtime', () => {
  it('exits 1 at once with every bad field of the config named', async () => {
    // "At once": before it reaches for NATS. Nothing listens on this port, and the worker would
    // keep reconnecting (until the test's SIGKILL) had it not stopped at the config.
    const config = shopifyWorkerConfig({
      natsUrl: `nats://127.0.0.1:${await freePort()}`,
      erpUrl: 'http://127.0.0.1:9/erp',
    }) as unknown as {
      nats: Record<string, unknown>;
      sinks: Record<string, unknown>[];
    };
    delete config.nats.stream;
    config.sinks[0]!.timeoutMs = 'ten seconds';
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, yaml.dump(config));
    const run = await tally(['runtime', '--config', file]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('worker config is invalid');
    expect(run.stderr).toMatch(/nats\.stream/);
    expect(run.stderr).toMatch(/sinks\.0\.timeoutMs/);
    expect(run.stderr).toContain(file);
  });

  it('exits non-zero on a file that is not YAML, and 2 without --config', async () => {
    const file = join(dir, 'broken.yaml');
    writeFileSync(file, 'apiVersion: [unclosed\n');
    const broken = await tally(['runtime', '--config', file]);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toMatch(/not valid YAML/);
    const missing = await tally(['runtime']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--config FILE is required/);
  });

  it('exits 1 naming the variable when the webhook secret is missing', async () => {
    const file = join(dir, 'nosecret.yaml');
    writeFileSync(
      file,
      yaml.dump(shopifyWorkerConfig({ natsUrl: nats.url, erpUrl: 'http://127.0.0.1:9/erp' })),
    );
    const run = await tally(['runtime', '--config', file], { [SECRET_ENV]: '' });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(SECRET_ENV);
  });

  it('runs until SIGTERM, then stops gracefully and exits 0', async () => {
    const config = shopifyWorkerConfig({
      namespace: 'cli',
      natsUrl: nats.url,
      erpUrl: 'http://127.0.0.1:9/erp',
    });
    await provision(await jetstreamManager(nc), config);
    const file = join(dir, 'good.yaml');
    writeFileSync(file, yaml.dump(config));
    const port = await freePort();
    let sawReady = false;
    const run = await tally(
      ['runtime', '--config', file],
      { [SECRET_ENV]: 'secret', TALLY_HTTP_HOST: '127.0.0.1', TALLY_HTTP_PORT: String(port) },
      async (pid) => {
        await waitFor(
          'worker ready',
          async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200,
          {
            timeoutMs: 20_000,
            intervalMs: 100,
          },
        );
        sawReady = true;
        process.kill(pid, 'SIGTERM');
      },
    );
    expect(sawReady).toBe(true);
    expect(run.stderr).toMatch(/SIGTERM received; stopping gracefully/);
    expect(run).toMatchObject({ code: 0, signal: null });
  });
});
