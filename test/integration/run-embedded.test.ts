// `tally run -f examples/shopify-orders` with no NATS URL, as a new user types it: the real binary
// starts a temporary nats-server of its own, says where it is, serves the webhook, stores the order
// on the namespace's canonical stream, and on Ctrl-C leaves neither the server nor its store behind.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterEach, describe, expect, it } from 'vitest';
import { shopifyHeaders, shopifyOrder } from '../../cli/demo/shopify-traffic.ts';
import { canonicalStreamName, canonicalSubject } from '../../runtime/nats/canonical.ts';
import { xrefBucketName } from '../../runtime/xref/keys.ts';
import { canConnect, waitUntil } from '../harness/process.ts';
import { repoPath } from '../harness/tools.ts';

const SECRET = 'demo-shopify-signing-secret'; // examples/shopify-orders/secret.yaml

function startRun(args: string[], extraEnv: Record<string, string> = {}) {
  const env = { ...process.env, ...extraEnv };
  delete env.TALLY_NATS_URL; // the case under test: no NATS URL at all
  const child = spawn(process.execPath, [join(repoPath('bin'), 'tally.mjs'), 'run', ...args], {
    cwd: repoPath(''),
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, stdout: () => stdout, output: () => `${stdout}\n--- stderr\n${stderr}`, exited };
}

const running: ReturnType<typeof startRun>[] = [];
afterEach(async () => {
  for (const r of running.splice(0)) {
    if (r.child.exitCode === null && r.child.signalCode === null) {
      r.child.kill('SIGKILL');
      await r.exited;
    }
  }
});

describe('tally run without a NATS URL', () => {
  it('starts a temporary nats-server, stores a posted order on the canonical stream, and removes server and store on Ctrl-C', async () => {
    const run = startRun(['-f', 'examples/shopify-orders', '--port', '0']);
    running.push(run);
    // Fails at once, with the output, should tally run exit instead.
    await Promise.race([
      waitUntil('tally run to be running', () => /^Running\./m.test(run.stdout()), { timeoutMs: 30_000 }),
      run.exited.then((code) => {
        if (!/^Running\./m.test(run.stdout()))
          throw new Error(`tally run exited with ${code} before running`);
      }),
    ]).catch((err: Error) => {
      throw new Error(`${err.message}\n${run.output()}`);
    });

    // It says what it started, where, and that it is temporary.
    const out = run.stdout();
    const server = /^nats-server (nats:\/\/127\.0\.0\.1:(\d+)) \(temporary; .*pid (\d+)\)$/m.exec(out);
    const store = /^ {2}JetStream store (\S+) \(temporary: removed when tally run stops\)$/m.exec(out);
    const flow = /^flow shopify-orders: listening on (http:\/\/127\.0\.0\.1:\d+) \(webhook (\S+)\)/m.exec(
      out,
    );
    expect(server, out).not.toBeNull();
    expect(store, out).not.toBeNull();
    expect(flow, out).not.toBeNull();
    const [, natsUrl, natsPort, natsPid] = server!;
    const storeDir = store![1]!;
    expect(existsSync(storeDir)).toBe(true);

    const order = shopifyOrder({ n: 1 });
    const body = JSON.stringify(order);
    const res = await fetch(`${flow![1]}${flow![2]}`, {
      method: 'POST',
      body,
      headers: shopifyHeaders(body, SECRET, 'run-embedded-1'),
    });
    await res.arrayBuffer();
    expect(res.status).toBe(202);

    // The order is stored on the namespace's canonical stream, read at the printed URL.
    const nc = await connect({ servers: natsUrl! });
    try {
      const jsm = await jetstreamManager(nc);
      const stream = canonicalStreamName('default');
      await waitUntil('the order on the canonical stream', async () => {
        return (await jsm.streams.info(stream)).state.messages === 1;
      });
      const stored = await jsm.streams.getMessage(stream, { seq: 1 });
      expect(stored!.subject).toBe(canonicalSubject('default', 'Order', 'shopify-us'));
      expect(stored!.json<{ subject: string }>()).toMatchObject({
        subject: `shopify-${order.id}`,
      });
      // The namespace's cross-reference bucket exists, as under the operator.
      expect((await jsm.streams.info(`KV_${xrefBucketName('default')}`)).config.name).toBe(
        `KV_${xrefBucketName('default')}`,
      );
    } finally {
      await nc.close();
    }

    run.child.kill('SIGINT');
    expect(await run.exited, run.output()).toBe(0);
    expect(run.stdout()).toContain('Stopped the temporary nats-server');
    expect(await canConnect(Number(natsPort))).toBe(false);
    expect(() => process.kill(Number(natsPid), 0)).toThrow(/ESRCH/);
    expect(existsSync(storeDir)).toBe(false);
  });

  it('says how to get nats-server when neither the pinned one nor one on PATH is there', async () => {
    const emptyTools = mkdtempSync(join(tmpdir(), 'tally-no-tools-'));
    try {
      // PATH: only the folder of node itself, which holds no nats-server.
      const run = startRun(['-f', 'examples/shopify-orders', '--port', '0'], {
        TALLY_TOOLS_BIN: emptyTools,
        PATH: dirname(process.execPath),
      });
      running.push(run);
      expect(await run.exited, run.output()).toBe(1);
      expect(run.output()).toContain(
        `tally run: no nats-server at ${join(emptyTools, 'nats-server')} nor on PATH: run \`npm run tools\``,
      );
    } finally {
      rmSync(emptyTools, { recursive: true, force: true });
    }
  });
});
