// The README's demo: runs by itself with a bounded order count, and stops cleanly on Ctrl-C
// (SIGINT) leaving no nats-server behind.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { canConnect, waitUntil } from '../harness/process.ts';
import { repoPath } from '../harness/tools.ts';

function startDemo(args: string[]) {
  const child = spawn(process.execPath, [join(repoPath('bin'), 'tally.mjs'), 'demo', ...args], {
    cwd: repoPath(''),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    out += c.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

describe('tally demo', () => {
  it('delivers the accepted orders, dead-letters the unmappable one and rejects forged ones', async () => {
    const demo = startDemo(['--orders', '30', '--rate', '100']);
    expect(await demo.exited, demo.output()).toBe(0);
    expect(demo.output()).toContain(
      'sent 30 | accepted 202: 27 | rejected 401: 3 | delivered to ERP: 26 | dead-lettered: 1',
    );
    expect(demo.output()).toContain('ERP received 26 request(s) for 26 distinct order(s)');
  });

  it('stops cleanly on Ctrl-C and leaves no nats-server behind', async () => {
    const demo = startDemo([]);
    await waitUntil('traffic', () => /sent \d+ \| accepted/.test(demo.output()), { timeoutMs: 30_000 });
    const port = Number(/nats:\/\/127\.0\.0\.1:(\d+)/.exec(demo.output())?.[1]);
    expect(await canConnect(port)).toBe(true);
    demo.child.kill('SIGINT');
    expect(await demo.exited).toBe(0);
    expect(demo.output()).toContain('Stopped: nats-server, worker and ERP simulator are down.');
    expect(await canConnect(port)).toBe(false);
  });
});
