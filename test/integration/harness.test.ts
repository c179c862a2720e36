// Proves the integration-tier harness: a real nats-server with JetStream that survives restarts and
// leaves nothing behind.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { HarnessError, HarnessErrorCode } from '../harness/errors.ts';
import { type NatsServerHandle, startNatsServer } from '../harness/nats.ts';
import { repoPath, toolPath } from '../harness/tools.ts';

/** False once the pid is gone or a zombie (pid 1 in a container may never reap it). */
function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function waitDead(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true;
    await sleep(100);
  }
  return !isAlive(pid);
}

describe('startNatsServer', () => {
  let server: NatsServerHandle | undefined;
  let nc: NatsConnection | undefined;
  afterEach(async () => {
    await nc?.close().catch(() => {});
    nc = undefined;
    await server?.stop();
    server = undefined;
  });

  it('runs JetStream whose streams and messages survive a restart and a crash', async () => {
    server = await startNatsServer();
    expect(server.url).toBe(`nats://127.0.0.1:${server.port}`);
    const health = await fetch(`${server.monitorUrl}/healthz?js-enabled-only=true`);
    expect(health.status).toBe(200);

    nc = await connect({ servers: server.url });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'HARNESS', subjects: ['harness.>'] });
    const ack = await jetstream(nc).publish('harness.one', 'hello');
    expect(ack.seq).toBe(1);
    await nc.close();
    nc = undefined;

    const pidBefore = server.pid!;
    await server.restart();
    expect(server.pid).not.toBe(pidBefore);
    expect(isAlive(pidBefore)).toBe(false);

    nc = await connect({ servers: server.url });
    let info = await (await jetstreamManager(nc)).streams.info('HARNESS');
    expect(info.state.messages).toBe(1);
    const stored = await (await jetstreamManager(nc)).streams.getMessage('HARNESS', { seq: 1 });
    expect(stored?.string()).toBe('hello');
    await jetstream(nc).publish('harness.two', 'world');
    await nc.close();
    nc = undefined;

    // A crash (SIGKILL) keeps acknowledged messages too; the same port and store come back.
    await server.halt({ signal: 'SIGKILL' });
    expect(server.running()).toBe(false);
    await server.start();
    nc = await connect({ servers: server.url });
    info = await (await jetstreamManager(nc)).streams.info('HARNESS');
    expect(info.state.messages).toBe(2);
  });

  it('stop() kills the server and removes its temp dir', async () => {
    const s = await startNatsServer();
    const pid = s.pid!;
    expect(isAlive(pid)).toBe(true);
    expect(existsSync(s.storeDir)).toBe(true);
    await s.stop();
    expect(isAlive(pid)).toBe(false);
    expect(existsSync(s.dir)).toBe(false);
    await s.stop(); // idempotent
  });

  it('fails fast with the log tail when the server cannot start', async () => {
    const t0 = Date.now();
    const error = await startNatsServer({ args: ['--no-such-flag'] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HarnessError);
    expect((error as HarnessError).code).toBe(HarnessErrorCode.ChildExited);
    expect((error as HarnessError).message).toMatch(/nats-server exited with code \d+ while waiting/);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('a watchdog kills the server (and removes its dir) when the process that started it is SIGKILLed', async () => {
    const script =
      `const { startNatsServer } = await import(${JSON.stringify(repoPath('test/harness/nats.ts'))});` +
      'const s = await startNatsServer();' +
      'console.log(JSON.stringify({ pid: s.pid, dir: s.dir }));' +
      'setInterval(() => {}, 1000);';
    const helper = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const lines = createInterface({ input: helper.stdout });
    const first = await new Promise<string>((resolve, reject) => {
      lines.once('line', resolve);
      helper.once('exit', (code) => reject(new Error(`helper exited with ${code}`)));
    });
    lines.close();
    const { pid, dir } = JSON.parse(first) as { pid: number; dir: string };
    try {
      expect(isAlive(pid)).toBe(true);
      helper.kill('SIGKILL');
      expect(await waitDead(pid, 8000)).toBe(true);
      // ...and removes the temp dir nobody else will clean up.
      await vi.waitFor(() => expect(existsSync(dir)).toBe(false), { timeout: 5000, interval: 100 });
    } finally {
      if (isAlive(pid)) process.kill(pid, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('toolPath', () => {
  it('names the install script when a binary is missing', () => {
    const saved = process.env.TALLY_TOOLS_BIN;
    process.env.TALLY_TOOLS_BIN = '/nonexistent';
    try {
      expect(() => toolPath('etcd')).toThrow(/bash tools\/install\.sh/);
    } finally {
      if (saved === undefined) delete process.env.TALLY_TOOLS_BIN;
      else process.env.TALLY_TOOLS_BIN = saved;
    }
  });
});
