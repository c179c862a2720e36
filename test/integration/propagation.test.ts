// ERP-to-channel propagation end to end on loopback, with the shipped example flows run standalone on
// a real nats-server against the simulators: NetSuite inventory levels reach Shopify and Amazon
// (examples/netsuite-inventory-to-channels), NetSuite invoices reach the B2B portal with exact totals
// (examples/netsuite-invoices-to-b2b-portal), NetSuite credit memos become Shopify refunds on the right
// order (examples/netsuite-credits-to-shopify-refunds), and CRM accounts become customer master data
// that mappings resolve with $customer (examples/crm-customers).
import { createHmac } from 'node:crypto';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { IntegrationFlowSpec } from '../../api/integration-flow.ts';
import type { DeadLetterSummary } from '../../runtime/flow/dead-letters/record.ts';
import { DeadLetterStore } from '../../runtime/flow/dead-letters/store.ts';
import { openKvState } from '../../runtime/flow/state/kv-store.ts';
import { compilePart, evaluatePart } from '../../runtime/mapping/engine.ts';
import { withXrefs } from '../../runtime/xref/context.ts';
import { xrefBucketName } from '../../runtime/xref/keys.ts';
import { type XrefStore, xrefStore } from '../../runtime/xref/store.ts';
import { type B2bPortalSimulator, startB2bPortalSimulator } from '../../simulators/b2b-portal.ts';
import { type NetSuiteSimulator, startNetSuiteSimulator } from '../../simulators/netsuite.ts';
import { type ShopifySimulator, startShopifySimulator } from '../../simulators/shopify.ts';
import { type SpApiSimulator, startSpApiSimulator } from '../../simulators/sp-api.ts';
import { type NatsServerHandle, startNatsServer } from '../harness/nats.ts';
import { waitUntil } from '../harness/process.ts';
import { repoPath } from '../harness/tools.ts';
import { sample } from './support/flow-worker.ts';
import { startExampleFlows } from './support/two-way.ts';

// The demo secrets of the examples' Secret files.
const INVENTORY_SECRET = 'demo-netsuite-inventory-secret';
const INVOICE_SECRET = 'demo-netsuite-invoice-secret';
const CREDIT_SECRET = 'demo-netsuite-credit-secret';
const CRM_SECRET = 'demo-crm-webhook-secret';

// Ids the example mappings are configured with (their lookup tables and params).
const SELLER_ID = 'A2TALLYDEMO7X';
const SHOPIFY_ITEMS = { 'HOODIE-L-GRY': 49100000000502, 'MUG-WHT': 49100000000503 } as const;
const SHOPIFY_MAIN = 65000000001;
const SHOPIFY_EAST = 65000000002;

const HOSTS = {
  erp: 'https://erp.example.com',
  shopify: 'https://tally-demo.myshopify.com',
  amazon: 'https://sellingpartnerapi-na.amazon.com',
  portal: 'https://portal.example.com',
};

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

/** Simulators and flows of the running test; stopped last-started first (flows before simulators). */
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Run {
  flow: string;
  store: XrefStore;
  logs: Record<string, unknown>[];
  /** The flow's webhook endpoint. */
  webhook: string;
  metrics(): Promise<string>;
  deadLetters(): Promise<DeadLetterSummary[]>;
}

/** One example folder's flow in its own namespace, its sinks pointed at the given simulators. */
async function start(
  namespace: string,
  folder: string,
  hosts: Record<string, string>,
  tweak: (spec: IntegrationFlowSpec) => void = () => {},
): Promise<Run> {
  const run = await startExampleFlows({
    nc,
    natsUrl: nats.url,
    namespace,
    paths: [repoPath(`examples/${folder}`)],
    hosts,
    tweak: (_name, spec) => tweak(spec),
  });
  cleanups.push(() => run.stop());
  expect(run.flows).toHaveLength(1);
  const flow = run.flows[0]!;
  const webhook = flow.spec.source.webhook!.path;
  const { store, logs } = run;
  return {
    flow: flow.name,
    store,
    logs,
    webhook: `http://127.0.0.1:${flow.worker.port}${webhook}`,
    metrics: () => flow.worker.registry.metrics(),
    async deadLetters() {
      const dlq = await DeadLetterStore.open({ servers: [nats.url], flow: { namespace, name: flow.name } });
      try {
        const out: DeadLetterSummary[] = [];
        for await (const d of dlq.scan()) out.push(d);
        return out;
      } finally {
        await dlq.close();
      }
    },
  };
}

async function netsuiteSim(): Promise<NetSuiteSimulator> {
  const sim = await startNetSuiteSimulator();
  cleanups.push(() => sim.close());
  return sim;
}
async function shopifySim(): Promise<ShopifySimulator> {
  const sim = await startShopifySimulator();
  cleanups.push(() => sim.close());
  return sim;
}
async function spApiSim(): Promise<SpApiSimulator> {
  const sim = await startSpApiSimulator();
  cleanups.push(() => sim.close());
  return sim;
}
async function portalSim(): Promise<B2bPortalSimulator> {
  const sim = await startB2bPortalSimulator();
  cleanups.push(() => sim.close());
  return sim;
}

/**
 * POSTs `body` signed the way the examples' webhooks verify it (hex HMAC-SHA256 over
 * "<timestamp>.<body>"). No delivery id header: the flow dedupes by a hash of the body, as it does
 * the simulator's own events, so sending a record again means sending it as saved again.
 */
async function postSigned(
  url: string,
  body: string,
  secret: string,
  names = { signature: 'x-signature', timestamp: 'x-signature-timestamp' },
): Promise<number> {
  const ts = String(Math.floor(Date.now() / 1000));
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      [names.signature]: createHmac('sha256', secret).update(`${ts}.${body}`).digest('hex'),
      [names.timestamp]: ts,
    },
    body,
  });
  await res.arrayBuffer();
  return res.status;
}

/** A sales order keyed in at the ERP through its REST record API; resolves to its internal id. */
async function createSalesOrder(netsuite: NetSuiteSimulator, fields: Record<string, unknown>) {
  const tokenRes = await fetch(`${netsuite.url}/services/rest/auth/oauth2/v1/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from('tally-netsuite-client:tally-netsuite-secret').toString('base64')}`,
    },
    body: 'grant_type=client_credentials',
  });
  const { access_token } = (await tokenRes.json()) as { access_token: string };
  const res = await fetch(`${netsuite.url}/services/rest/record/v1/salesOrder`, {
    method: 'POST',
    headers: { authorization: `Bearer ${access_token}`, 'content-type': 'application/json' },
    body: JSON.stringify(fields),
  });
  expect(res.status, await res.text()).toBe(204);
  return res.headers.get('location')!.split('/').pop()!;
}

/** An ERP event as NetSuite sends it when the record is saved again (a later lastModified). */
function savedAgain(emitted: { body: string }, n: number): string {
  const event = JSON.parse(emitted.body) as { lastModified: string };
  return JSON.stringify({
    ...event,
    lastModified: new Date(Date.parse(event.lastModified) + n * 1000).toISOString(),
  });
}

const writes = async (run: Run, sink: string, outcome: string) =>
  sample(await run.metrics(), 'tally_flow_sink_writes_total', { sink, outcome });
const deadLettered = async (run: Run, reason: string) =>
  sample(await run.metrics(), 'tally_flow_messages_dead_lettered_total', { reason });

describe('NetSuite inventory -> Shopify inventory levels and Amazon listing quantities', () => {
  async function setup(namespace: string) {
    const netsuite = await netsuiteSim();
    const shopify = await shopifySim();
    const amazon = await spApiSim();
    for (const [sku, id] of Object.entries(SHOPIFY_ITEMS)) shopify.addInventoryItem(id, sku);
    amazon.addListing(SELLER_ID, 'HOODIE-L-GRY');
    amazon.addListing(SELLER_ID, 'MUG-WHT-11OZ');
    const run = await start(namespace, 'netsuite-inventory-to-channels', {
      [HOSTS.shopify]: shopify.url,
      [HOSTS.amazon]: amazon.url,
    });
    netsuite.setEvents({ url: run.webhook, secret: INVENTORY_SECRET });
    return { netsuite, shopify, amazon, run };
  }

  it("sets each channel's quantity to the ERP's available, per location, the latest level last", async () => {
    const { netsuite, shopify, amazon, run } = await setup('prop-inventory');
    expect((await netsuite.setInventory('HOODIE-L-GRY', '1', 40, 34)).status).toBe(202);
    expect((await netsuite.setInventory('MUG-WHT', 'East Coast DC', 10, 7)).status).toBe(202);
    // A later count of the same item and location: it must be the one that stays.
    expect((await netsuite.setInventory('HOODIE-L-GRY', '1', 30, 28)).status).toBe(202);

    await waitUntil('every level reached both channels', async () => {
      const text = await run.metrics();
      return (
        sample(text, 'tally_flow_messages_delivered_total', { sink: 'shopify-inventory-levels' }) === 3 &&
        sample(text, 'tally_flow_messages_delivered_total', { sink: 'amazon-listing-quantities' }) === 3
      );
    });
    const levels = shopify.inventoryLevels();
    expect(levels.get(`${SHOPIFY_ITEMS['HOODIE-L-GRY']}:${SHOPIFY_MAIN}`)).toBe(28);
    expect(levels.get(`${SHOPIFY_ITEMS['MUG-WHT']}:${SHOPIFY_EAST}`)).toBe(7);
    expect(levels.size).toBe(2);
    expect(shopify.counts.inventorySets).toBe(3);
    expect(shopify.counts.unauthorized).toBe(0);

    expect(amazon.quantity(SELLER_ID, 'HOODIE-L-GRY')).toBe(28);
    expect(amazon.quantity(SELLER_ID, 'MUG-WHT-11OZ')).toBe(7); // the listing's own seller SKU
    expect(amazon.counts).toMatchObject({ accepted: 3, rejected: 0, unauthorized: 0 });
    // The two counts of the hoodie arrived in the ERP's order (the mug's partition runs beside them).
    const hoodie = amazon.submissions.filter((s) => s.sku === 'HOODIE-L-GRY');
    expect(
      hoodie.map((s) => (s.patches[0]?.value?.[0] as { quantity?: number } | undefined)?.quantity),
    ).toEqual([34, 28]);
    expect(amazon.submissions.filter((s) => s.sku === 'MUG-WHT-11OZ')).toHaveLength(1);
    expect(hoodie[1]).toMatchObject({
      sellerId: SELLER_ID,
      productType: 'PRODUCT',
      marketplaceIds: ['ATVPDKIKX0DER'],
      preview: false,
      patches: [
        {
          op: 'replace',
          path: '/attributes/fulfillment_availability',
          value: [{ fulfillment_channel_code: 'DEFAULT', quantity: 28 }],
        },
      ],
    });
    expect(await deadLettered(run, 'mapping_evaluation')).toBe(0);
  });

  it('an oversold level is negative on Shopify and 0 on Amazon; an unmapped location is dead-lettered, not guessed', async () => {
    const { netsuite, shopify, amazon, run } = await setup('prop-inventory-bad');
    // A count at a location no mapping knows (NetSuite gives it internal id 3).
    await netsuite.setInventory('HOODIE-L-GRY', 'Returns Cage', 5, 5);
    await netsuite.setInventory('MUG-WHT', '1', 0, -2);
    await waitUntil(
      'the oversold level is on Amazon',
      () => amazon.quantity(SELLER_ID, 'MUG-WHT-11OZ') === 0,
    );
    expect(shopify.inventoryLevels().get(`${SHOPIFY_ITEMS['MUG-WHT']}:${SHOPIFY_MAIN}`)).toBe(-2);
    await waitUntil(
      'the unmapped location is dead-lettered',
      async () => (await deadLettered(run, 'mapping_evaluation')) === 1,
    );
    const [dead] = await run.deadLetters();
    expect(dead).toMatchObject({ reason: 'mapping_evaluation' });
    expect(dead?.message).toContain('table "netsuiteLocations" has no key "3"');
    // Nothing of it reached a channel: one write each, the oversold mug.
    expect(shopify.counts.inventorySets).toBe(1);
    expect(amazon.counts.accepted).toBe(1);
  });
});

describe('NetSuite invoices -> B2B portal invoices', () => {
  /** The CRM master data the invoice mappings read, as the crm-customers flow keeps it. */
  async function seedCustomers(store: XrefStore) {
    const provenance = { by: 'test', at: new Date().toISOString() };
    await store.link({
      entity: 'Customer',
      key: 'C-10000',
      ids: { 'b2b-portal': 'BUY-ACME-HQ' },
      provenance,
      data: {
        value: {
          customerId: 'C-10000',
          name: 'Acme Outdoor Group',
          region: 'us-central',
          tier: 'strategic',
          channelAccounts: [{ channel: 'b2b-portal', id: 'BUY-ACME-HQ' }],
        },
      },
    });
    await store.link({
      entity: 'Customer',
      key: 'C-10042',
      ids: { netsuite: '202', shopify: '7001' },
      provenance,
      data: {
        value: {
          customerId: 'C-10042',
          name: 'Acme Outdoor Denver',
          parentAccountId: 'C-10000',
          region: 'us-west',
          tier: 'gold',
          channelAccounts: [
            { channel: 'shopify-us', id: '7001' },
            { channel: 'netsuite', id: '202' },
          ],
        },
      },
    });
  }

  /** A B2B sales order of customer 202 with a 4-place rate, freight and an order discount. */
  const B2B_ORDER = {
    entity: { id: '202' },
    tranDate: '2026-11-20',
    otherRefNum: 'PO-88120',
    currency: { refName: 'USD' },
    item: {
      items: [
        { item: { id: '502' }, quantity: 12, rate: '41.625' },
        { item: { id: '503' }, quantity: 24, rate: '7.10' },
      ],
    },
    shippingCost: 25,
    discountTotal: -20,
  };

  async function setup(namespace: string, tweak?: (spec: IntegrationFlowSpec) => void) {
    const netsuite = await netsuiteSim();
    const portal = await portalSim();
    const run = await start(
      namespace,
      'netsuite-invoices-to-b2b-portal',
      { [HOSTS.portal]: portal.url },
      tweak,
    );
    await seedCustomers(run.store);
    return { netsuite, portal, run };
  }

  it('delivers the invoice with exact totals to the parent account, records its id, and never sends it twice', async () => {
    const { netsuite, portal, run } = await setup('prop-invoice');
    netsuite.setEvents({ url: run.webhook, secret: INVOICE_SECRET });
    const so = await createSalesOrder(netsuite, B2B_ORDER);
    const sent = await netsuite.invoiceSalesOrder(so);
    expect(sent.status).toBe(202);
    const invoiceNumber = sent.event.tranId as string;

    await waitUntil('the portal has the invoice', () => portal.invoices().length === 1);
    const [invoice] = portal.invoices();
    expect(invoice).toMatchObject({
      invoiceId: 'INV-P-1',
      invoiceNumber,
      purchaseOrderNumber: 'PO-88120',
      // NetSuite customer 202 is the CRM's C-10042, whose group C-10000 holds the portal account.
      buyerId: 'BUY-ACME-HQ',
      currency: 'USD',
      issueDate: sent.event.tranDate,
      dueDate: sent.event.dueDate,
      taxTotal: '0.00',
      total: '674.90', // 499.50 + 170.40 + 25.00 freight - 20.00 discount
    });
    expect(sent.event.total).toBe('674.90');
    expect(invoice?.lines).toEqual([
      { lineNumber: 1, sku: 'HOODIE-L-GRY', quantity: 12, unitPrice: '41.625', amount: '499.50' },
      { lineNumber: 2, sku: 'MUG-WHT', quantity: 24, unitPrice: '7.10', amount: '170.40' },
      {
        lineNumber: 3,
        sku: 'FREIGHT',
        description: 'Freight',
        quantity: 1,
        unitPrice: '25.00',
        amount: '25.00',
      },
      {
        lineNumber: 4,
        sku: 'DISCOUNT',
        description: 'Invoice discount',
        quantity: 1,
        unitPrice: '-20.00',
        amount: '-20.00',
      },
    ]);
    await waitUntil(
      "the portal's id is recorded",
      async () => (await run.store.get('Invoice', invoiceNumber))?.ids['b2b-portal'] === 'INV-P-1',
    );
    expect(await writes(run, 'b2b-portal-invoices', 'created')).toBe(1);

    // NetSuite sends the same invoice again: Tally knows the portal has it and sends nothing.
    expect(await postSigned(run.webhook, savedAgain(netsuite.emitted[0]!, 1), INVOICE_SECRET)).toBe(202);
    await waitUntil(
      'the resend is delivered as known',
      async () => (await writes(run, 'b2b-portal-invoices', 'known')) === 1,
    );
    expect(portal.counts).toMatchObject({ received: 1, duplicates: 0 });

    // The store lost the record (restored from an older backup): the create is sent, the portal says
    // 409 duplicate, and that counts as delivered with the portal's id read from the 409 body.
    expect(await run.store.delete('Invoice', invoiceNumber)).toBe(true);
    expect(await postSigned(run.webhook, savedAgain(netsuite.emitted[0]!, 2), INVOICE_SECRET)).toBe(202);
    await waitUntil(
      'the resend is delivered as already_exists',
      async () => (await writes(run, 'b2b-portal-invoices', 'already_exists')) === 1,
    );
    expect((await run.store.get('Invoice', invoiceNumber))?.ids['b2b-portal']).toBe('INV-P-1');
    expect(portal.counts).toMatchObject({ received: 1, duplicates: 1 });
    expect(portal.invoices()).toHaveLength(1);
    expect(await writes(run, 'b2b-portal-invoices', 'created')).toBe(1);
    const delivered = run.logs.filter((l) => l.msg === 'delivered' && l.businessKey === invoiceNumber);
    expect(delivered.map((l) => l.targets)).toEqual([
      { 'b2b-portal-invoices': { outcome: 'created', system: 'b2b-portal', id: 'INV-P-1' } },
      { 'b2b-portal-invoices': { outcome: 'known', system: 'b2b-portal', id: 'INV-P-1' } },
      { 'b2b-portal-invoices': { outcome: 'already_exists', system: 'b2b-portal', id: 'INV-P-1' } },
    ]);
    expect(await deadLettered(run, 'sink_rejected')).toBe(0);
  });

  it("an invoice whose totals do not add up is refused by the portal (422) and dead-lettered with the portal's reason", async () => {
    const { netsuite, portal, run } = await setup('prop-invoice-422');
    // The ERP event as NetSuite would send it, but with a total nobody can reconcile.
    const so = await createSalesOrder(netsuite, B2B_ORDER);
    const { event } = await netsuite.invoiceSalesOrder(so); // no receiver configured: kept, not sent
    const body = JSON.stringify({ ...event, total: '694.90' });
    expect(await postSigned(run.webhook, body, INVOICE_SECRET)).toBe(202);

    await waitUntil('dead-lettered', async () => (await deadLettered(run, 'sink_rejected')) === 1);
    expect(portal.invoices()).toHaveLength(0);
    expect(portal.counts.invalid).toBe(1); // permanent: asked once, not retried
    const portalSays = 'must equal the sum of line amounts plus taxTotal (674.90)';
    const [dead] = await run.deadLetters();
    expect(dead).toMatchObject({ reason: 'sink_rejected', attempts: 1 });
    expect(dead?.message).toContain('answered 422');
    expect(dead?.message).toContain(portalSays);
    const line = run.logs.find((l) => l.msg === 'dead-lettered');
    expect(line).toMatchObject({ reason: 'sink_rejected', businessKey: event.tranId });
    expect(String(line?.err)).toContain(portalSays);
    expect(await run.store.get('Invoice', event.tranId as string)).toBeUndefined();
    // The portal's password never shows in the logs.
    expect(JSON.stringify(run.logs)).not.toContain('portal-secret');
  });

  it('an invoice of a customer the CRM has not sent waits for the master data, then is delivered', async () => {
    const { netsuite, portal, run } = await setup('prop-invoice-wait');
    netsuite.setEvents({ url: run.webhook, secret: INVOICE_SECRET });
    netsuite.addCustomer('240');
    const so = await createSalesOrder(netsuite, { ...B2B_ORDER, entity: { id: '240' }, otherRefNum: 'PO-5' });
    await netsuite.invoiceSalesOrder(so);
    await waitUntil(
      'the invoice waits for its customer',
      async () =>
        sample(await run.metrics(), 'tally_flow_messages_retried_total', { reason: 'waiting_for_xref' }) > 0,
    );
    expect(portal.requests).toHaveLength(0);
    const waited = run.logs.find((l) => l.reason === 'waiting_for_xref');
    expect(String(waited?.err)).toContain('Customer "240" of netsuite is not in the cross-reference store');
    // The CRM account arrives (here written as the crm-customers flow writes it).
    await run.store.link({
      entity: 'Customer',
      key: 'C-30007',
      ids: { netsuite: '240', 'b2b-portal': 'BUY-RIDGE' },
      provenance: { by: 'test', at: new Date().toISOString() },
      data: {
        value: {
          customerId: 'C-30007',
          name: 'Ridgeline Supply',
          channelAccounts: [{ channel: 'b2b-portal', id: 'BUY-RIDGE' }],
        },
      },
    });
    await waitUntil('the portal has the invoice', () => portal.invoices().length === 1);
    expect(portal.invoices()[0]).toMatchObject({ buyerId: 'BUY-RIDGE', purchaseOrderNumber: 'PO-5' });
  });
});

describe('NetSuite credit memos -> Shopify refunds', () => {
  it('refunds the credited amount on the Shopify order the store links to the sales order, once', async () => {
    const netsuite = await netsuiteSim();
    const shopify = await shopifySim();
    const run = await start('prop-credit', 'netsuite-credits-to-shopify-refunds', {
      [HOSTS.shopify]: shopify.url,
    });
    netsuite.setEvents({ url: run.webhook, secret: CREDIT_SECRET });

    // A Shopify order, its ERP sales order (imported without an externalId), and the store linking them.
    const shopifyId = 5100000000021;
    shopify.addOrder({
      id: shopifyId,
      name: '#1021',
      currency: 'USD',
      line_items: [{ id: 13100000000001, sku: 'HOODIE-L-GRY', quantity: 2 }],
    });
    const other = 5100000000022;
    shopify.addOrder({
      id: other,
      name: '#1022',
      line_items: [{ id: 13100000000002, sku: 'CAP-NVY', quantity: 1 }],
    });
    const so = await createSalesOrder(netsuite, {
      entity: { id: '201' },
      tranDate: '2026-11-20',
      otherRefNum: '#1021',
      item: { items: [{ item: { id: '502' }, quantity: 2, rate: '49.00' }] },
    });
    const orderKey = `shopify-${shopifyId}`;
    await run.store.link({
      entity: 'Order',
      key: orderKey,
      ids: { netsuite: so, shopify: String(shopifyId) },
      provenance: { by: 'test', at: new Date().toISOString() },
    });

    const sent = await netsuite.creditMemo(so, '19.00', 'Damaged in transit');
    expect(sent.status).toBe(202);
    await waitUntil('Shopify has the refund', () => shopify.refunds(shopifyId).length === 1);
    const [refund] = shopify.refunds(shopifyId);
    const creditKey = `netsuite-cm-${sent.event.id}`;
    expect(refund).toMatchObject({
      order_id: shopifyId,
      currency: 'USD',
      notify: false,
      note: `Credit ${creditKey}: Damaged in transit`,
      refund_line_items: [],
      transactions: [{ kind: 'refund', amount: '19.00', currency: 'USD', gateway: 'manual' }],
    });
    expect(shopify.refunds(other)).toHaveLength(0);
    await waitUntil(
      'the refund id is recorded',
      async () => (await run.store.get('Credit', creditKey))?.ids.shopify === String(refund!.id),
    );
    expect(await writes(run, 'shopify-refunds', 'created')).toBe(1);

    // The same credit memo sent again is not refunded a second time.
    expect(await postSigned(run.webhook, savedAgain(netsuite.emitted[0]!, 1), CREDIT_SECRET)).toBe(202);
    await waitUntil(
      'the resend is delivered as known',
      async () => (await writes(run, 'shopify-refunds', 'known')) === 1,
    );
    expect(shopify.refunds()).toHaveLength(1);
    expect(shopify.counts.refundsCreated).toBe(1);
  });

  it('a credit memo of an order Shopify never had waits, then is dead-lettered as waiting_for_xref', async () => {
    const netsuite = await netsuiteSim();
    const shopify = await shopifySim();
    const run = await start(
      'prop-credit-orphan',
      'netsuite-credits-to-shopify-refunds',
      { [HOSTS.shopify]: shopify.url },
      (spec) => {
        spec.delivery.maxDeliver = 3;
      },
    );
    netsuite.setEvents({ url: run.webhook, secret: CREDIT_SECRET });
    // A B2B order: Tally knows its canonical key, but it has no Shopify id.
    const so = await createSalesOrder(netsuite, {
      entity: { id: '202' },
      tranDate: '2026-11-20',
      item: { items: [{ item: { id: '504' }, quantity: 1, rate: '14.25' }] },
    });
    await run.store.link({
      entity: 'Order',
      key: 'portal-PO-7',
      ids: { netsuite: so },
      provenance: { by: 'test', at: new Date().toISOString() },
    });
    await netsuite.creditMemo(so, '5.00', 'Goodwill');
    await waitUntil(
      'dead-lettered after maxDeliver',
      async () => (await deadLettered(run, 'waiting_for_xref')) === 1,
    );
    const [dead] = await run.deadLetters();
    expect(dead).toMatchObject({ reason: 'waiting_for_xref', attempts: 3 });
    expect(dead?.message).toContain('Order "portal-PO-7" has no shopify id yet');
    expect(shopify.requests).toHaveLength(0);
  });
});

describe('CRM accounts -> customer master data', () => {
  const CRM_HEADERS = { signature: 'x-crm-signature', timestamp: 'x-crm-timestamp' };
  const account = (a: Record<string, unknown>) =>
    JSON.stringify({ type: 'account.updated', occurredAt: new Date().toISOString(), account: a });
  const GROUP = {
    id: '001Dn00000ACME000',
    accountNumber: 'C-10000',
    name: 'Acme Outdoor Group',
    parent: null,
    salesRegion: 'NA-CENTRAL',
    tier: 'Strategic',
    externalIds: { portalBuyerId: 'BUY-ACME-HQ' },
    lastModifiedDate: '2026-11-18T15:00:00Z',
  };
  const STORE = {
    id: '001Dn00000ACME042',
    accountNumber: 'C-10042',
    name: 'Acme Outdoor Denver',
    parent: { id: '001Dn00000ACME000', accountNumber: 'C-10000' },
    salesRegion: 'NA-WEST',
    tier: 'Gold',
    externalIds: { shopifyCustomerId: 7001, netsuiteCustomerId: '202' },
    lastModifiedDate: '2026-11-18T15:04:05Z',
  };

  /** What a mapping calling `expression` gets from the namespace's store. */
  async function evaluate(store: XrefStore, expression: string): Promise<unknown> {
    const limits = { timeoutMs: 1000, maxDepth: 100 };
    const part = compilePart('expression', expression, { lookups: {}, limits }, 'auto');
    return withXrefs(store, (bindings) => evaluatePart(part, {}, limits, bindings));
  }

  it('keeps each account as master data linked by its channel ids, so $customer("shopify", "7001") resolves it and its parent', async () => {
    const run = await start('prop-crm', 'crm-customers', {});
    expect(await postSigned(run.webhook, account(GROUP), CRM_SECRET, CRM_HEADERS)).toBe(202);
    expect(await postSigned(run.webhook, account(STORE), CRM_SECRET, CRM_HEADERS)).toBe(202);
    await waitUntil(
      'both accounts are master data',
      async () =>
        (await run.store.get('Customer', 'C-10042'))?.data !== undefined &&
        (await run.store.get('Customer', 'C-10000'))?.data !== undefined,
    );
    const record = await run.store.get('Customer', 'C-10042');
    expect(record).toMatchObject({
      key: 'C-10042',
      ids: { shopify: '7001', netsuite: '202', crm: '001Dn00000ACME042' },
      data: {
        customerId: 'C-10042',
        name: 'Acme Outdoor Denver',
        parentAccountId: 'C-10000',
        region: 'us-west',
        tier: 'gold',
      },
    });
    expect(record?.ids['b2b-portal']).toBeUndefined();
    expect(record?.provenance.shopify).toMatchObject({ by: 'prop-crm/crm-customers' });
    expect((await run.store.get('Customer', 'C-10000'))?.ids).toEqual({
      'b2b-portal': 'BUY-ACME-HQ',
      crm: '001Dn00000ACME000',
    });

    // What a mapping sees: the Shopify account resolves to the canonical customer, then its parent.
    expect(
      await evaluate(run.store, '$customer("shopify", "7001").[customerId, parentAccountId, region, tier]'),
    ).toEqual(['C-10042', 'C-10000', 'us-west', 'gold']);
    expect(
      await evaluate(
        run.store,
        '$customer("tally", $customer("shopify", "7001").parentAccountId).channelAccounts[channel = "b2b-portal"].id',
      ),
    ).toBe('BUY-ACME-HQ');
    expect(await evaluate(run.store, '$xrefFind("Customer", "netsuite", "202", "tally")')).toBe('C-10042');

    // A later change of the account replaces its master data.
    expect(
      await postSigned(run.webhook, account({ ...STORE, tier: 'Platinum' }), CRM_SECRET, CRM_HEADERS),
    ).toBe(202);
    await waitUntil(
      'the change is kept',
      async () =>
        ((await run.store.get('Customer', 'C-10042'))?.data as { tier?: string } | undefined)?.tier ===
        'platinum',
    );
    const text = await run.metrics();
    expect(sample(text, 'tally_flow_messages_delivered_total', { sink: 'customer-master-data' })).toBe(3);
    expect(sample(text, 'tally_flow_messages_dead_lettered_total', {})).toBe(0);
  });

  it('an account in an unmapped sales region is dead-lettered, and an unsigned one is refused', async () => {
    const run = await start('prop-crm-bad', 'crm-customers', {});
    const apac = account({ ...STORE, id: '001Dn00000ZZZ001', accountNumber: 'C-90001', salesRegion: 'APAC' });
    expect(await postSigned(run.webhook, apac, CRM_SECRET, CRM_HEADERS)).toBe(202);
    expect(await postSigned(run.webhook, account(GROUP), 'not-the-crm-secret', CRM_HEADERS)).toBe(401);
    await waitUntil('dead-lettered', async () => (await deadLettered(run, 'mapping_evaluation')) === 1);
    const [dead] = await run.deadLetters();
    expect(dead?.message).toContain('table "salesRegions" has no key "APAC"');
    expect(await run.store.get('Customer', 'C-90001')).toBeUndefined();
    expect(await run.store.get('Customer', 'C-10000')).toBeUndefined();
  });
});
