import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { verifySignature } from '../runtime/flow/sources/webhook-signature.ts';
import { startReceiver } from './receiver.ts';
import { type ShopifyOrder, type ShopifySimulator, startShopifySimulator } from './shopify.ts';

const TOKEN = 'shpat_test';
const ORDER: ShopifyOrder = {
  id: 5001,
  name: '#1001',
  fulfillment_status: null,
  line_items: [
    { id: 11, sku: 'TSHIRT-M-BLK', quantity: 2, price: '19.99' },
    { id: 12, sku: 'MUG-WHT', quantity: 1, price: '9.50' },
  ],
};

let sim: ShopifySimulator;
const closers: (() => Promise<void>)[] = [];

async function call(method: string, path: string, body?: unknown, token: string | null = TOKEN) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token !== null) headers['x-shopify-access-token'] = token;
  const res = await fetch(`${sim.url}${path}`, {
    method,
    headers,
    ...(body !== undefined && { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

const fulfil = (orderId: number, fulfillment: unknown) =>
  call('POST', `/admin/api/2025-10/orders/${orderId}/fulfillments.json`, { fulfillment });

beforeEach(async () => {
  sim = await startShopifySimulator({ accessToken: TOKEN });
  sim.addOrder(ORDER);
});
afterEach(async () => {
  await sim.close();
  for (const close of closers.splice(0)) await close();
});

describe('shopify simulator: orders and auth', () => {
  it('answers a known order and 404s an unknown one, on any dated API version', async () => {
    const r = await call('GET', '/admin/api/2025-10/orders/5001.json');
    expect(r.status).toBe(200);
    expect(r.body.order).toMatchObject({ id: 5001, name: '#1001', fulfillment_status: null });
    expect((await call('GET', '/admin/api/2024-01/orders/5001.json')).status).toBe(200);
    const missing = await call('GET', '/admin/api/2025-10/orders/9.json');
    expect(missing).toMatchObject({ status: 404, body: { errors: 'Not Found' } });
    expect((await call('GET', '/admin/api/latest/orders/5001.json')).status).toBe(404);
  });

  it('refuses a missing or wrong access token with Shopify 401 body', async () => {
    for (const token of [null, 'nope']) {
      const r = await call('GET', '/admin/api/2025-10/orders/5001.json', undefined, token);
      expect(r.status).toBe(401);
      expect(r.body).toEqual({
        errors: '[API] Invalid API key or access token (unrecognized login or wrong password)',
      });
    }
    expect(sim.counts.unauthorized).toBe(2);
  });

  it('records method, path, headers and parsed body of every request', async () => {
    await fulfil(5001, { tracking_number: '1Z1' });
    expect(sim.requests).toHaveLength(1);
    expect(sim.requests[0]).toMatchObject({
      method: 'POST',
      path: '/admin/api/2025-10/orders/5001/fulfillments.json',
      body: { fulfillment: { tracking_number: '1Z1' } },
    });
    expect(sim.requests[0]!.headers['x-shopify-access-token']).toBe(TOKEN);
  });
});

describe('shopify simulator: fulfillments', () => {
  it('creates a partial then a complete fulfillment and tracks fulfillment_status', async () => {
    const first = await fulfil(5001, {
      tracking_number: '1Z999',
      tracking_company: 'UPS',
      notify_customer: false,
      line_items: [{ id: 11, quantity: 1 }],
    });
    expect(first.status).toBe(201);
    expect(first.body.fulfillment).toMatchObject({
      order_id: 5001,
      status: 'success',
      tracking_company: 'UPS',
      tracking_number: '1Z999',
      tracking_numbers: ['1Z999'],
      line_items: [{ id: 11, sku: 'TSHIRT-M-BLK', quantity: 1 }],
    });
    expect(typeof first.body.fulfillment.id).toBe('number');
    expect(sim.order(5001)?.fulfillment_status).toBe('partial');

    // Absent line_items means everything still open: 1 × line 11 and 1 × line 12.
    const rest = await fulfil(5001, { tracking_numbers: ['1Z1000'], tracking_company: 'UPS' });
    expect(rest.status).toBe(201);
    expect(
      rest.body.fulfillment.line_items.map((l: { id: number; quantity: number }) => [l.id, l.quantity]),
    ).toEqual([
      [11, 1],
      [12, 1],
    ]);
    expect(sim.order(5001)?.fulfillment_status).toBe('fulfilled');

    const list = await call('GET', '/admin/api/2025-10/orders/5001/fulfillments.json');
    expect(list.body.fulfillments).toHaveLength(2);
    expect(sim.fulfillments(5001)).toHaveLength(2);

    const again = await fulfil(5001, { tracking_number: 'X' });
    expect(again).toMatchObject({
      status: 422,
      body: { errors: { base: ['Line items are already fulfilled'] } },
    });
  });

  it('answers 400 when the body is not exactly {"fulfillment": {...}}', async () => {
    const expected = { errors: { fulfillment: 'Required parameter missing or invalid' } };
    const path = '/admin/api/2025-10/orders/5001/fulfillments.json';
    for (const body of [
      { tracking_number: '1Z' },
      { fulfillment: { tracking_number: '1Z' }, order_id: 5001 },
      { fulfillment: [] },
      'not json',
    ]) {
      const r = await call('POST', path, body);
      expect(r.status).toBe(400);
      expect(r.body).toEqual(expected);
    }
    expect(sim.fulfillments()).toHaveLength(0);
  });

  it('answers 404 for an unknown order', async () => {
    expect(await fulfil(42, { tracking_number: '1Z' })).toMatchObject({
      status: 404,
      body: { errors: 'Not Found' },
    });
  });

  it("answers 422 in Shopify's base shape for foreign line items, over-fulfilment and bad fields", async () => {
    const cases: [unknown, string][] = [
      [{ line_items: [{ id: 99, quantity: 1 }] }, 'Line item 99 does not belong to order 5001'],
      [
        { line_items: [{ id: 11, quantity: 3 }] },
        'Line item 11: quantity 3 exceeds the fulfillable quantity 2',
      ],
      [{ line_items: [{ id: 11, quantity: 0 }] }, 'line_items[].quantity must be a positive integer'],
      [{ line_items: [{ id: '11' }] }, 'line_items[].id must be an integer'],
      [{ trackingNumber: '1Z' }, 'Unknown fulfillment field: trackingNumber'],
      [{ tracking_number: 123 }, 'tracking_number must be a string'],
      [{ location_id: '1' }, 'location_id must be an integer'],
    ];
    for (const [fulfillment, message] of cases) {
      const r = await fulfil(5001, fulfillment);
      expect(r.status, message).toBe(422);
      expect(r.body).toEqual({ errors: { base: [message] } });
    }
    expect(sim.order(5001)?.fulfillment_status).toBeNull();
  });
});

describe('shopify simulator: inventory levels', () => {
  const set = (body: unknown) => call('POST', '/admin/api/2025-10/inventory_levels/set.json', body);

  it('sets a level for a tracked item', async () => {
    sim.addInventoryItem(808, 'MUG-WHT');
    const r = await set({ location_id: 1, inventory_item_id: 808, available: 7 });
    expect(r.status).toBe(200);
    expect(r.body.inventory_level).toMatchObject({ inventory_item_id: 808, location_id: 1, available: 7 });
    expect(typeof r.body.inventory_level.updated_at).toBe('string');
    expect(sim.inventoryLevels()).toEqual(new Map([['808:1', 7]]));
    expect(sim.counts.inventorySets).toBe(1);
  });

  it('rejects unknown items, non-integers, missing and extra keys with Shopify error shapes', async () => {
    sim.addInventoryItem(808, 'MUG-WHT');
    expect(await set({ location_id: 1, inventory_item_id: 9, available: 1 })).toMatchObject({
      status: 422,
      body: { errors: ['Inventory item does not have inventory tracking enabled'] },
    });
    expect(await set({ location_id: 1, inventory_item_id: 808, available: '7' })).toMatchObject({
      status: 422,
      body: { errors: { available: ['is not a number'] } },
    });
    expect(await set({ location_id: 1, inventory_item_id: 808, available: 1.5 })).toMatchObject({
      status: 422,
      body: { errors: { available: ['must be an integer'] } },
    });
    expect(await set({ location_id: 1, inventory_item_id: 808 })).toMatchObject({
      status: 400,
      body: { errors: { available: 'Required parameter missing or invalid' } },
    });
    expect(await set({ location_id: 1, inventory_item_id: 808, available: 1, sku: 'MUG-WHT' })).toMatchObject(
      {
        status: 422,
        body: { errors: { sku: ['is not a permitted parameter'] } },
      },
    );
    expect(sim.inventoryLevels().size).toBe(0);
  });
});

describe('shopify simulator: refunds', () => {
  const refund = (body: unknown) => call('POST', '/admin/api/2025-10/orders/5001/refunds.json', body);

  it('creates a refund with line items and transactions', async () => {
    const r = await refund({
      refund: {
        currency: 'USD',
        notify: false,
        note: 'damaged',
        refund_line_items: [{ line_item_id: 12, quantity: 1, restock_type: 'no_restock' }],
        transactions: [{ parent_id: 77, amount: '9.50', kind: 'refund', gateway: 'shopify_payments' }],
        shipping: { amount: '0.00' },
      },
    });
    expect(r.status).toBe(201);
    expect(r.body.refund).toMatchObject({
      order_id: 5001,
      note: 'damaged',
      refund_line_items: [{ line_item_id: 12, quantity: 1, restock_type: 'no_restock' }],
      transactions: [{ parent_id: 77, amount: '9.50', kind: 'refund', status: 'success' }],
    });
    expect(sim.refunds()).toHaveLength(1);
  });

  it('rejects numeric amounts, other kinds, foreign line items and over-refunds with 422', async () => {
    const bad: [unknown, string][] = [
      [{ transactions: [{ amount: 9.5, kind: 'refund' }] }, 'transactions'],
      [{ transactions: [{ amount: '9.5.0', kind: 'refund' }] }, 'transactions'],
      [{ transactions: [{ amount: '9.50', kind: 'sale' }] }, 'transactions'],
      [{ refund_line_items: [{ line_item_id: 99, quantity: 1 }] }, 'refund_line_items'],
      [{ refund_line_items: [{ line_item_id: 12, quantity: 2 }] }, 'refund_line_items'],
      [
        { refund_line_items: [{ line_item_id: 12, quantity: 1, restock_type: 'legacy' }] },
        'refund_line_items',
      ],
      [{ amount: '9.50' }, 'amount'],
    ];
    for (const [body, field] of bad) {
      const r = await refund({ refund: body });
      expect(r.status, JSON.stringify(body)).toBe(422);
      expect(Object.keys(r.body.errors)).toEqual([field]);
    }
    expect(await refund({ transactions: [] })).toMatchObject({
      status: 400,
      body: { errors: { refund: 'Required parameter missing or invalid' } },
    });
    expect(sim.refunds()).toHaveLength(0);
  });
});

describe('shopify simulator: faults and call limit', () => {
  it('failNext answers the given statuses first, 429 with Retry-After', async () => {
    sim.failNext([429, 503], 2);
    const a = await call('GET', '/admin/api/2025-10/orders/5001.json');
    expect(a.status).toBe(429);
    expect(a.headers.get('retry-after')).toBe('2');
    expect(a.body.errors).toMatch(/^Exceeded 2 calls per second/);
    expect((await call('GET', '/admin/api/2025-10/orders/5001.json')).status).toBe(503);
    expect((await call('GET', '/admin/api/2025-10/orders/5001.json')).status).toBe(200);
    expect(sim.counts.faultsInjected).toBe(2);
  });

  it('enforces the leaky bucket with X-Shopify-Shop-Api-Call-Limit and Retry-After: 1', async () => {
    await sim.close();
    let t = 1_000_000;
    sim = await startShopifySimulator({
      accessToken: TOKEN,
      bucket: { size: 2, leakPerSecond: 1 },
      now: () => t,
    });
    sim.addOrder(ORDER);
    const path = '/admin/api/2025-10/orders/5001.json';
    const one = await call('GET', path);
    expect(one.headers.get('x-shopify-shop-api-call-limit')).toBe('1/2');
    const two = await call('GET', path);
    expect(two.headers.get('x-shopify-shop-api-call-limit')).toBe('2/2');
    const three = await call('GET', path);
    expect(three.status).toBe(429);
    expect(three.headers.get('retry-after')).toBe('1');
    expect(three.body).toEqual({
      errors:
        'Exceeded 1 calls per second for api client. Reduce request rates to resume uninterrupted service.',
    });
    t += 1000; // one call leaks out
    expect((await call('GET', path)).status).toBe(200);
    expect(sim.counts.throttled).toBe(1);
  });
});

describe('shopify simulator: webhooks out', () => {
  it('sends a Shopify-signed orders/create webhook and then accepts fulfillments for it', async () => {
    const receiver = await startReceiver();
    closers.push(receiver.close);
    const order: ShopifyOrder = {
      id: 6001,
      name: '#2001',
      line_items: [{ id: 1, sku: 'CAP-NVY', quantity: 1 }],
    };
    expect(await sim.sendOrderWebhook(`${receiver.url}/hooks/shopify`, order, 'whsec')).toBe(200);

    const delivery = receiver.requests[0]!;
    expect(delivery.headers['x-shopify-topic']).toBe('orders/create');
    expect(delivery.headers['x-shopify-shop-domain']).toBe('tally-demo.myshopify.com');
    expect(delivery.headers['x-shopify-webhook-id']).toMatch(/^[0-9a-f-]{36}$/);
    const verdict = verifySignature(
      { scheme: 'shopify-hmac-sha256', header: 'X-Shopify-Hmac-Sha256', toleranceMs: 0 },
      {
        rawBody: Buffer.from(delivery.rawBody),
        headers: delivery.headers,
        secret: 'whsec',
        nowMs: Date.now(),
      },
    );
    expect(verdict).toEqual({ ok: true });

    receiver.status = 500;
    expect(await sim.sendOrderWebhook(receiver.url, { ...order, id: 6002 }, 'whsec')).toBe(500);
    expect(receiver.requests[1]!.headers['x-shopify-webhook-id']).not.toBe(
      delivery.headers['x-shopify-webhook-id'],
    );

    expect((await fulfil(6001, { tracking_number: '1Z' })).status).toBe(201);
  });
});
