// `tally demo`: the local demo of the round trip. Starts a nats-server with JetStream (from .tools,
// see tools/install.sh), a NetSuite-style ERP and a Shopify Admin API simulator (simulators/), and
// the example flows of examples/netsuite-round-trip in standalone mode (the same worker code the
// operator deploys). Shopify order webhooks become ERP sales orders (the ERP's id captured in the
// cross-reference store); the ERP ships each one, and the Shopify order gets a fulfillment with the
// tracking number. Forged signatures and unmappable payloads are mixed in. Each hop is printed for
// the first orders; Ctrl-C stops everything and leaves no process behind.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { pino } from 'pino';
import { openKvState } from '../runtime/flow/state/kv-store.ts';
import { xrefBucketName } from '../runtime/xref/keys.ts';
import { xrefStore } from '../runtime/xref/store.ts';
import { startNetSuiteSimulator } from '../simulators/netsuite.ts';
import { startShopifySimulator } from '../simulators/shopify.ts';
import { shopifyHeaders, shopifyOrder } from './demo/shopify-traffic.ts';
import { UsageError } from './errors.ts';
import { retargetSinks, startStandalone } from './standalone.ts';

const SECRET = 'demo-shopify-signing-secret'; // examples/shopify-orders/secret.yaml
const EVENTS_SECRET = 'demo-netsuite-event-secret'; // examples/netsuite-round-trip/secrets.yaml
const ORDER_FLOW = 'shopify-orders-to-netsuite';
const SHIPMENT_FLOW = 'netsuite-shipments-to-shopify';
/** Orders whose every hop is printed. */
const TRACED = 3;

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

  say('Tally demo: Shopify order -> NetSuite sales order -> ERP shipment -> Shopify fulfillment');
  const nats = await startNatsServer();
  say(`  nats-server with JetStream   ${nats.url}`);
  // Kept on purpose after the demo: the log names the dead letters and every hop.
  const logDir = mkdtempSync(join(tmpdir(), 'tally-demo-'));
  const logFile = join(logDir, 'workers.log');
  const logDestination = pino.destination({ dest: logFile, sync: false });
  const netsuite = await startNetSuiteSimulator();
  const shopify = await startShopifySimulator();
  say(`  NetSuite-style ERP           ${netsuite.url}/services/rest/record/v1 (OAuth 2.0)`);
  say(`  Shopify Admin API            ${shopify.url}/admin/api/2025-10`);
  const closeSimulators = () => Promise.all([netsuite.close(), shopify.close()]);
  const run = await startStandalone({
    paths: [
      'examples/netsuite-round-trip',
      'examples/shopify-orders/mapping.yaml',
      'examples/shopify-orders/secret.yaml',
    ],
    natsServers: [nats.url],
    port: 0,
    logDestination,
    override: (_name, spec) => {
      retargetSinks(spec, {
        'https://erp.example.com': netsuite.url,
        'https://tally-demo.myshopify.com': shopify.url,
      });
      spec.replicas = 1;
    },
  }).catch(async (err) => {
    await closeSimulators();
    await nats.stop();
    throw err;
  });
  const flowOf = (name: string) => run.flows.find((f) => f.name === name)!;
  const orders = flowOf(ORDER_FLOW);
  const shipments = flowOf(SHIPMENT_FLOW);
  const webhook = `http://127.0.0.1:${orders.worker.port}${orders.spec.source.webhook?.path ?? '/webhook'}`;
  const erpEvents = `http://127.0.0.1:${shipments.worker.port}${shipments.spec.source.webhook?.path ?? '/webhook'}`;
  netsuite.setEvents({ url: erpEvents, secret: EVENTS_SECRET });
  say(`  order flow (Shopify webhook) ${webhook}`);
  say(`  shipment flow (ERP events)   ${erpEvents}`);
  say(
    `  metrics                      http://127.0.0.1:${orders.worker.port}/metrics, :${shipments.worker.port}/metrics`,
  );
  say(`  worker logs (JSON, kept)     ${logFile}`);
  say(
    `Sending ${Number.isFinite(limit) ? limit : 'orders until Ctrl-C,'} at ${rate}/s; every 10th is forged, every 15th unmappable.\n`,
  );

  const nc = await connect({ servers: nats.url });
  const jsm = await jetstreamManager(nc);
  const store = xrefStore(await openKvState(nc, xrefBucketName('default'), { history: 5 }));
  const counts = { sent: 0, accepted: 0, rejected: 0, errors: 0 };
  const traced = new Map<string, number>(); // canonical key -> order number, for the first orders
  let tracedSoFar = 0;
  const shipped = new Set<string>(); // sales order internal ids
  const dead = async () =>
    (await jsm.streams.info(orders.deadLetterStream)).state.messages +
    (await jsm.streams.info(shipments.deadLetterStream)).state.messages;
  const status = async () =>
    `sent ${counts.sent} | accepted 202: ${counts.accepted} | rejected 401: ${counts.rejected} | ERP sales orders: ${netsuite.salesOrders().length} | shipped: ${shipped.size} | Shopify fulfillments: ${shopify.counts.fulfillmentsCreated} | dead-lettered: ${await dead()}`;

  const send = async (n: number) => {
    const forged = n % 10 === 9;
    const unmappable = n % 15 === 14;
    let code: number;
    if (unmappable || forged) {
      const body = JSON.stringify(
        unmappable ? { id: n, note: 'a payload the mapping cannot read' } : shopifyOrder({ n }),
      );
      const res = await fetch(webhook, {
        method: 'POST',
        body,
        headers: shopifyHeaders(body, forged ? 'wrong-secret' : SECRET, `demo-${n}`),
      });
      await res.arrayBuffer();
      code = res.status;
    } else {
      const order = shopifyOrder({ n });
      if (tracedSoFar < TRACED) {
        tracedSoFar++;
        traced.set(`shopify-${order.id}`, n);
        say(`${order.name}  Shopify order ${order.id} sent as a signed webhook`);
      }
      code = await shopify.sendOrderWebhook(webhook, order, SECRET);
    }
    counts.sent++;
    if (code === 202) counts.accepted++;
    else if (code === 401) counts.rejected++;
    else counts.errors++;
  };

  /** The ERP ships every sales order whose id Tally has captured; the first ones are traced. */
  const shipCaptured = async () => {
    for (const so of netsuite.salesOrders()) {
      if (shipped.has(so.id) || !so.externalId) continue;
      const record = await store.get('Order', so.externalId);
      if (record?.ids.netsuite !== so.id) continue;
      shipped.add(so.id);
      const tracking = `1Z${so.id.padStart(16, '0')}`;
      const name = traced.has(so.externalId) ? String(so.otherRefNum) : undefined;
      if (name) {
        say(
          `${name}  -> NetSuite sales order ${so.id} (${so.tranId}); id captured: Order ${so.externalId} = netsuite ${so.id}, shopify ${record.ids.shopify}`,
        );
        say(`${name}  -> NetSuite ships it: UPS ${tracking}`);
      }
      await netsuite.shipSalesOrder(so.id, { trackingNumber: tracking, carrier: 'UPS' });
    }
    for (const [key, n] of traced) {
      const shopifyId = Number(key.slice('shopify-'.length));
      const f = shopify.fulfillments(shopifyId)[0];
      if (!f) continue;
      traced.delete(key);
      say(
        `#${1000 + n}  -> Shopify fulfillment ${f.id} on order ${shopifyId}, tracking ${f.tracking_number}; order ${shopify.order(shopifyId)?.fulfillment_status}`,
      );
    }
  };

  let lastPrint = 0;
  try {
    for (let n = 0; n < limit && !stop.signal.aborted; n++) {
      await send(n);
      await shipCaptured();
      if (Date.now() - lastPrint > 2000) {
        say(await status());
        lastPrint = Date.now();
      }
      await new Promise((r) => setTimeout(r, 1000 / rate));
    }
    // Let the round trips finish: each accepted order is fulfilled in Shopify or dead-lettered.
    const deadline = Date.now() + 30_000;
    while (!stop.signal.aborted && Date.now() < deadline) {
      await shipCaptured();
      if (shopify.counts.fulfillmentsCreated + (await dead()) >= counts.accepted && traced.size === 0) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    say(`\n${await status()}`);
    say(
      `ERP creates: ${netsuite.creates().total} for ${netsuite.salesOrders().length} sales order(s); OAuth tokens issued: ${netsuite.tokensIssued}.`,
    );
    say(
      `Dead letters keep the payload and the error: streams ${orders.deadLetterStream}, ${shipments.deadLetterStream}.`,
    );
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await nc.close();
    await run.stop();
    await closeSimulators();
    await nats.stop();
    cleanupNow();
    say(
      `Stopped: nats-server, workers and simulators are down (the JetStream store is removed; the worker log stays in ${logFile}).`,
    );
  }
  return counts.errors === 0 ? 0 : 1;
}
