// `tally demo`: the local demo. Starts a nats-server with JetStream (from .tools, see
// tools/install.sh), a simulated ERP order API, and the example Shopify order flow in standalone
// mode (the same worker code the operator deploys), then drives signed channel traffic into it —
// including forged signatures and unmappable payloads — and prints what happened. Ctrl-C stops
// everything and leaves no process behind.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { pino } from 'pino';
import { startErpPeer } from './demo/erp-simulator.ts';
import { shopifyHeaders, shopifyOrder } from './demo/shopify-traffic.ts';
import { UsageError } from './errors.ts';
import { startStandalone } from './standalone.ts';

const SECRET = 'demo-shopify-signing-secret'; // examples/shopify-orders/secret.yaml

export const DEMO_USAGE = `Usage: tally demo [--orders N] [--rate PER_SECOND]

  --orders N   stop by itself after N orders (default: run until Ctrl-C)
  --rate R     orders per second (default 5)`;

export async function demoCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      orders: { type: 'string' },
      rate: { type: 'string', default: '5' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${DEMO_USAGE}\n`);
    return 0;
  }
  const limit = values.orders === undefined ? Number.POSITIVE_INFINITY : Number(values.orders);
  const rate = Number(values.rate);
  if (!(limit > 0) || !(rate > 0 && rate <= 1000))
    throw new UsageError(`--orders must be > 0 and --rate in (0, 1000]\n\n${DEMO_USAGE}`);

  const say = (line: string) => process.stdout.write(`${line}\n`);
  // The harness owns starting and reaping nats-server (also used by the tests and benchmarks).
  const { startNatsServer } = await import('../test/harness/nats.ts');
  const { cleanupNow } = await import('../test/harness/cleanup.ts');

  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  say('Tally demo: Shopify order webhooks -> canonical Order -> ERP order API + NATS subject');
  const nats = await startNatsServer();
  say(`  nats-server with JetStream   ${nats.url}`);
  const logDir = mkdtempSync(join(tmpdir(), 'tally-demo-'));
  const logFile = join(logDir, 'worker.log');
  const logDestination = pino.destination({ dest: logFile, sync: false });
  const erp = await startErpPeer();
  say(`  simulated ERP order API      ${erp.url}/api/sales-orders`);
  const run = await startStandalone({
    paths: ['examples/shopify-orders'],
    natsServers: [nats.url],
    port: 0,
    logDestination,
    override: (_name, spec) => {
      const http = spec.sinks.find((s) => s.type === 'http')?.http;
      if (http) http.url = `${erp.url}/api/sales-orders`;
    },
  }).catch(async (err) => {
    await erp.close();
    await nats.stop();
    throw err;
  });
  const flow = run.flows[0]!;
  const base = `http://127.0.0.1:${flow.worker.port}`;
  const webhook = `${base}${flow.spec.source.webhook?.path ?? '/webhook'}`;
  say(`  flow worker (webhook)        ${webhook}`);
  say(`  metrics                      ${base}/metrics`);
  say(`  worker logs (JSON)           ${logFile}`);
  say(
    `Sending ${Number.isFinite(limit) ? limit : 'orders until Ctrl-C,'} at ${rate}/s; every 10th is forged, every 15th unmappable.\n`,
  );

  const nc = await connect({ servers: nats.url });
  const jsm = await jetstreamManager(nc);
  const counts = { sent: 0, accepted: 0, rejected: 0, errors: 0 };
  const status = async () => {
    const dead = (await jsm.streams.info(flow.deadLetterStream)).state.messages;
    return `sent ${counts.sent} | accepted 202: ${counts.accepted} | rejected 401: ${counts.rejected} | delivered to ERP: ${erp.applied.size} | dead-lettered: ${dead}`;
  };

  const send = async (n: number) => {
    const forged = n % 10 === 9;
    const unmappable = n % 15 === 14;
    const body = JSON.stringify(
      unmappable ? { id: n, note: 'a payload the mapping cannot read' } : shopifyOrder({ n }),
    );
    const res = await fetch(webhook, {
      method: 'POST',
      body,
      headers: shopifyHeaders(body, forged ? 'wrong-secret' : SECRET, `demo-${n}`),
    });
    counts.sent++;
    if (res.status === 202) counts.accepted++;
    else if (res.status === 401) counts.rejected++;
    else counts.errors++;
  };

  let lastPrint = 0;
  try {
    for (let n = 0; n < limit && !stop.signal.aborted; n++) {
      await send(n);
      if (Date.now() - lastPrint > 2000) {
        say(await status());
        lastPrint = Date.now();
      }
      await new Promise((r) => setTimeout(r, 1000 / rate));
    }
    // Let the pipeline drain what was accepted: each accepted order is delivered or dead-lettered.
    const deadline = Date.now() + 15_000;
    while (!stop.signal.aborted && Date.now() < deadline) {
      const dead = (await jsm.streams.info(flow.deadLetterStream)).state.messages;
      if (erp.applied.size + dead >= counts.accepted) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    say(`\n${await status()}`);
    say(
      `ERP received ${erp.requests.length} request(s) for ${erp.applied.size} distinct order(s) (idempotency keys).`,
    );
    say(`Dead letters keep the payload and the error: stream ${flow.deadLetterStream}.`);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await nc.close();
    await run.stop();
    await erp.close();
    await nats.stop();
    cleanupNow();
    say('Stopped: nats-server, worker and ERP simulator are down.');
  }
  return counts.errors === 0 ? 0 : 1;
}
