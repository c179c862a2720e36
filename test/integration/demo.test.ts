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
  it('carries each accepted order round trip (ERP sales order, shipment, Shopify fulfillment), dead-letters the unmappable one and rejects forged ones', async () => {
    const demo = startDemo(['--orders', '30', '--rate', '100']);
    expect(await demo.exited, demo.output()).toBe(0);
    expect(demo.output()).toContain(
      'sent 30 | accepted 202: 27 | rejected 401: 3 | ERP sales orders: 26 | shipped: 26 | Shopify fulfillments: 26 | dead-lettered: 1',
    );
    expect(demo.output()).toContain('ERP creates: 26 for 26 sales order(s)');
    // Every hop of the first order is printed.
    expect(demo.output()).toMatch(/#1000 {2}Shopify order 5100000000000 sent as a signed webhook/);
    expect(demo.output()).toMatch(
      /#1000 {2}-> NetSuite sales order \d+ .*id captured: Order shopify-5100000000000 = netsuite \d+, shopify 5100000000000/,
    );
    expect(demo.output()).toMatch(
      /#1000 {2}-> Shopify fulfillment \d+ on order 5100000000000, tracking 1Z\d+; order fulfilled/,
    );
  });

  it('stops cleanly on Ctrl-C and leaves no nats-server behind', async () => {
    const demo = startDemo([]);
    await waitUntil('traffic', () => /sent \d+ \| accepted/.test(demo.output()), { timeoutMs: 30_000 });
    const port = Number(/nats:\/\/127\.0\.0\.1:(\d+)/.exec(demo.output())?.[1]);
    expect(await canConnect(port)).toBe(true);
    demo.child.kill('SIGINT');
    expect(await demo.exited).toBe(0);
    expect(demo.output()).toContain('Stopped: nats-server, workers and simulators are down');
    expect(await canConnect(port)).toBe(false);
  });
});
