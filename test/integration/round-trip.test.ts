// Two-way sync end to end on loopback, with the shipped example flows (examples/netsuite-round-trip)
// run standalone on a real nats-server against the NetSuite-style ERP and Shopify Admin simulators:
// a Shopify order becomes an ERP sales order, the ERP's id is captured, the ERP ships it, and the
// Shopify order gets a fulfillment with the tracking number.
import { Writable } from 'node:stream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { shopifyOrder } from '../../cli/demo/shopify-traffic.ts';
import { retargetSinks, type startStandalone } from '../../cli/standalone.ts';
import { openKvState } from '../../runtime/flow/state/kv-store.ts';
import { xrefBucketName } from '../../runtime/xref/keys.ts';
import { type XrefStore, xrefStore } from '../../runtime/xref/store.ts';
import { type NetSuiteSimulator, startNetSuiteSimulator } from '../../simulators/netsuite.ts';
import { type ShopifySimulator, startShopifySimulator } from '../../simulators/shopify.ts';
import { type NatsServerHandle, startNatsServer } from '../harness/nats.ts';
import { waitUntil } from '../harness/process.ts';
import { repoPath } from '../harness/tools.ts';
import { sample } from './support/flow-worker.ts';
import { startExampleFlows } from './support/two-way.ts';

const SHOPIFY_SECRET = 'demo-shopify-signing-secret'; // examples/shopify-orders/secret.yaml
const EVENTS_SECRET = 'demo-netsuite-event-secret'; // examples/netsuite-round-trip/secrets.yaml
const PATHS = [
  repoPath('examples/netsuite-round-trip'),
  repoPath('examples/shopify-orders/mapping.yaml'),
  repoPath('examples/shopify-orders/secret.yaml'),
];

let nats: NatsServerHandle;
let nc: NatsConnection;

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
});
afterAll(async () => {
  await nc?.close();
  await nats?.stop();
});

interface Run {
  netsuite: NetSuiteSimulator;
  shopify: ShopifySimulator;
  store: XrefStore;
  orders: string;
  shipments: string;
  logs: Record<string, unknown>[];
  metrics(flow: 'orders' | 'shipments'): Promise<string>;
  stop(): Promise<void>;
}

const running: Run[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.stop()));
});

/** The example's two flows in their own namespace, pointed at fresh simulators. */
async function start(
  namespace: string,
  tweak: (
    name: string,
    spec: Parameters<NonNullable<Parameters<typeof startStandalone>[0]['override']>>[1],
  ) => void = () => {},
  netsuiteOptions: Parameters<typeof startNetSuiteSimulator>[0] = {},
): Promise<Run> {
  const netsuite = await startNetSuiteSimulator(netsuiteOptions);
  const shopify = await startShopifySimulator();
  const flows = await startExampleFlows({
    nc,
    natsUrl: nats.url,
    namespace,
    paths: PATHS,
    hosts: { 'https://erp.example.com': netsuite.url, 'https://tally-demo.myshopify.com': shopify.url },
    tweak,
  });
  const { flow, logs, store } = flows;
  const orders = `http://127.0.0.1:${flow('shopify-orders-to-netsuite').worker.port}/webhooks/shopify/orders`;
  const shipments = `http://127.0.0.1:${flow('netsuite-shipments-to-shopify').worker.port}/webhooks/netsuite/events`;
  netsuite.setEvents({ url: shipments, secret: EVENTS_SECRET });
  const run: Run = {
    netsuite,
    shopify,
    store,
    orders,
    shipments,
    logs,
    async metrics(which) {
      const name = which === 'orders' ? 'shopify-orders-to-netsuite' : 'netsuite-shipments-to-shopify';
      return flow(name).worker.registry.metrics();
    },
    async stop() {
      await flows.stop();
      await Promise.all([netsuite.close(), shopify.close()]);
    },
  };
  running.push(run);
  return run;
}

describe('round trip: Shopify order -> NetSuite sales order -> shipment -> Shopify fulfillment', () => {
  it('creates the sales order once, captures its id, and fulfils the Shopify order with the tracking number', async () => {
    const run = await start('rt-happy');
    const order = shopifyOrder({ n: 1 });
    expect(await run.shopify.sendOrderWebhook(run.orders, order, SHOPIFY_SECRET)).toBe(202);

    // 1. The ERP has the sales order, in its own shape, created once.
    const key = `shopify-${order.id}`;
    await waitUntil(
      'the ERP has the sales order',
      () => run.netsuite.salesOrder({ externalId: key }) !== undefined,
    );
    const so = run.netsuite.salesOrder({ externalId: key })!;
    expect(so).toMatchObject({ externalId: key, entity: { id: '201' }, otherRefNum: order.name });
    expect(run.netsuite.creates().byExternalId[key]).toBe(1);

    // 2. Its internal id and the Shopify id are in the cross-reference store, with provenance.
    await waitUntil(
      'the ERP id is captured',
      async () => (await run.store.get('Order', key))?.ids.netsuite === so.id,
    );
    const record = await run.store.get('Order', key);
    expect(record).toMatchObject({ ids: { netsuite: so.id, shopify: String(order.id) } });
    expect(record?.provenance.netsuite).toMatchObject({ by: 'rt-happy/shopify-orders-to-netsuite' });

    // 3. The ERP ships it; the Shopify order gets a fulfillment with the tracking number.
    const shipped = await run.netsuite.shipSalesOrder(so.id as string, {
      trackingNumber: '1Z999AA10123456784',
      carrier: 'UPS',
    });
    expect(shipped.status).toBe(202);
    await waitUntil('Shopify has the fulfillment', () => run.shopify.fulfillments(order.id).length === 1);
    expect(run.shopify.fulfillments(order.id)[0]).toMatchObject({
      order_id: order.id,
      tracking_number: '1Z999AA10123456784',
      tracking_company: 'UPS',
    });
    expect(run.shopify.order(order.id)?.fulfillment_status).toBe('fulfilled');
    // The fulfillment's id is captured for the shipment.
    const shipmentKey = `netsuite-if-${shipped.event.id}`;
    await waitUntil(
      'the fulfillment id is captured',
      async () => (await run.store.get('Shipment', shipmentKey)) !== undefined,
    );
    expect((await run.store.get('Shipment', shipmentKey))?.ids.shopify).toBe(
      String(run.shopify.fulfillments(order.id)[0]!.id),
    );
    const text = await run.metrics('orders');
    expect(
      sample(text, 'tally_flow_sink_writes_total', { sink: 'netsuite-sales-orders', outcome: 'created' }),
    ).toBe(1);
    const delivered = run.logs.find((l) => l.msg === 'delivered' && l.businessKey === key);
    expect(delivered?.targets).toEqual({
      'netsuite-sales-orders': { outcome: 'created', system: 'netsuite', id: so.id },
    });
  });

  it('a newer version of the order updates the ERP record to its id (PATCH), never a second create', async () => {
    const run = await start('rt-update');
    const order = shopifyOrder({ n: 2 });
    const key = `shopify-${order.id}`;
    await run.shopify.sendOrderWebhook(run.orders, order, SHOPIFY_SECRET);
    await waitUntil('captured', async () => (await run.store.get('Order', key))?.ids.netsuite !== undefined);
    const later = {
      ...order,
      updated_at: '2026-11-25T10:00:00.000Z',
      line_items: [{ ...order.line_items[0]!, quantity: 9 }],
    };
    await run.shopify.sendOrderWebhook(run.orders, later, SHOPIFY_SECRET);
    await waitUntil('updated', () => run.netsuite.updates().byExternalId[key] === 1);
    expect(run.netsuite.creates().byExternalId[key]).toBe(1);
    const patch = run.netsuite.requests.find((r) => r.method === 'PATCH');
    expect(patch?.path).toBe(
      `/services/rest/record/v1/salesOrder/${(await run.store.get('Order', key))?.ids.netsuite}`,
    );
    expect(run.netsuite.salesOrder({ externalId: key })?.item).toMatchObject({ items: [{ quantity: 9 }] });
  });

  it('a shipment that arrives before its order is captured waits (waiting_for_xref), then is delivered', async () => {
    // The ERP commits the first create but drops the connection: the capture happens on the retry.
    let crashed = false;
    const run = await start(
      'rt-wait',
      (name, spec) => {
        if (name === 'shopify-orders-to-netsuite') {
          spec.delivery.initialBackoff = '4s';
          spec.delivery.maxBackoff = '4s';
        }
      },
      {
        crashAfterCreate: () => {
          if (crashed) return false;
          crashed = true;
          return true;
        },
      },
    );
    const order = shopifyOrder({ n: 3 });
    const key = `shopify-${order.id}`;
    await run.shopify.sendOrderWebhook(run.orders, order, SHOPIFY_SECRET);
    await waitUntil(
      'the ERP committed the create and dropped the answer',
      () => run.netsuite.counts.crashes === 1,
    );
    const so = run.netsuite.salesOrder({ externalId: key })!;
    // Precondition of what this test shows: nothing captured yet when the ERP ships.
    expect(await run.store.get('Order', key)).toBeUndefined();
    await run.netsuite.shipSalesOrder(so.id as string, { trackingNumber: 'TRK-3', carrier: 'UPS' });
    await waitUntil('Shopify has the fulfillment', () => run.shopify.fulfillments(order.id).length === 1, {
      timeoutMs: 30_000,
    });
    expect(run.netsuite.creates().byExternalId[key]).toBe(1); // the retried create was an upsert
    const text = await run.metrics('shipments');
    expect(sample(text, 'tally_flow_messages_retried_total', { reason: 'waiting_for_xref' })).toBeGreaterThan(
      0,
    );
    expect(sample(text, 'tally_flow_messages_dead_lettered_total', {})).toBe(0);
    const waited = run.logs.find((l) => l.reason === 'waiting_for_xref');
    expect(String(waited?.err)).toMatch(
      /waiting for cross-reference: Order "shopify-\d+" has no shopify id yet/,
    );
  });

  it('an expired or revoked token is fetched again once on 401; a 429 with Retry-After is waited out', async () => {
    const run = await start('rt-auth');
    await run.shopify.sendOrderWebhook(run.orders, shopifyOrder({ n: 4 }), SHOPIFY_SECRET);
    await waitUntil('first order in', () => run.netsuite.creates().total === 1);
    const tokens = run.netsuite.tokensIssued;
    run.netsuite.revokeTokens();
    await run.shopify.sendOrderWebhook(run.orders, shopifyOrder({ n: 5 }), SHOPIFY_SECRET);
    await waitUntil('second order in', () => run.netsuite.creates().total === 2);
    expect(run.netsuite.tokensIssued).toBe(tokens + 1);
    run.netsuite.failNext([429], 1);
    await run.shopify.sendOrderWebhook(run.orders, shopifyOrder({ n: 6 }), SHOPIFY_SECRET);
    await waitUntil('third order in', () => run.netsuite.creates().total === 3);
    const text = await run.metrics('orders');
    expect(sample(text, 'tally_flow_messages_retried_total', { reason: 'sink_throttled' })).toBe(1);
    expect(sample(text, 'tally_flow_messages_failed_total', { reason: 'sink_auth_refused' })).toBe(0);
  });

  it('credentials the token endpoint refuses dead-letter the event with sink_auth_refused, secret not shown', async () => {
    const run = await start('rt-refused', () => {}, { clientSecret: 'not-the-one-in-the-secret' });
    await run.shopify.sendOrderWebhook(run.orders, shopifyOrder({ n: 7 }), SHOPIFY_SECRET);
    await waitUntil(
      'dead-lettered',
      async () =>
        sample(await run.metrics('orders'), 'tally_flow_messages_dead_lettered_total', {
          reason: 'sink_auth_refused',
        }) === 1,
    );
    expect(run.netsuite.creates().total).toBe(0);
    const line = run.logs.find((l) => l.msg === 'dead-lettered');
    expect(String(line?.err)).toMatch(/refused the client credentials: 401 invalid_client/);
    expect(JSON.stringify(run.logs)).not.toContain('tally-netsuite-secret');
  });

  it('a shipment of an order the ERP never got from Tally is not lost: it waits, then is dead-lettered with waiting_for_xref', async () => {
    const run = await start('rt-orphan', (name, spec) => {
      if (name === 'netsuite-shipments-to-shopify') spec.delivery.maxDeliver = 3;
    });
    // A sales order keyed in by hand at the ERP: no Shopify id anywhere.
    const res = await fetch(`${run.netsuite.url}/services/rest/auth/oauth2/v1/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from('tally-netsuite-client:tally-netsuite-secret').toString('base64')}`,
      },
      body: 'grant_type=client_credentials',
    });
    const { access_token } = (await res.json()) as { access_token: string };
    const created = await fetch(`${run.netsuite.url}/services/rest/record/v1/salesOrder`, {
      method: 'POST',
      headers: { authorization: `Bearer ${access_token}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        entity: { id: '201' },
        tranDate: '2026-11-20',
        item: { items: [{ item: { id: '503' }, quantity: 1, rate: '9.50' }] },
      }),
    });
    const id = created.headers.get('location')!.split('/').pop()!;
    await run.netsuite.shipSalesOrder(id, { trackingNumber: 'T', carrier: 'UPS' });
    await waitUntil(
      'dead-lettered after maxDeliver',
      async () =>
        sample(await run.metrics('shipments'), 'tally_flow_messages_dead_lettered_total', {
          reason: 'waiting_for_xref',
        }) === 1,
    );
    const text = await run.metrics('shipments');
    expect(sample(text, 'tally_flow_messages_retried_total', { reason: 'waiting_for_xref' })).toBe(2);
    expect(run.shopify.fulfillments().length).toBe(0);
  });
});
