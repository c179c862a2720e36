import { request as httpRequest } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { type SignatureSettings, verifySignature } from '../runtime/flow/sources/webhook-signature.ts';
import { type NetSuiteSimulator, type NetSuiteSimulatorOptions, startNetSuiteSimulator } from './netsuite.ts';
import { startReceiver } from './receiver.ts';

const ID = 'tally-netsuite-client';
const SECRET = 'tally-netsuite-secret';
const SO_PATH = '/services/rest/record/v1/salesOrder';
const EVENTS: SignatureSettings = {
  scheme: 'hmac-sha256-hex',
  header: 'X-Signature',
  timestampHeader: 'X-Signature-Timestamp',
  toleranceMs: 300_000,
};

const order = (externalId?: string, extra: Record<string, unknown> = {}) => ({
  ...(externalId !== undefined && { externalId }),
  entity: { id: '201' },
  tranDate: '2026-11-20',
  currency: { refName: 'USD' },
  otherRefNum: 'PO-77',
  memo: 'Shopify #1001',
  shippingCost: 4.99,
  custbody_channel: 'shopify',
  item: {
    items: [
      { item: { id: '501' }, quantity: 2, rate: '19.99' },
      { item: { id: '503' }, quantity: 1, rate: 9.5 },
    ],
  },
  ...extra,
});

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

async function start(options: NetSuiteSimulatorOptions = {}): Promise<NetSuiteSimulator> {
  const sim = await startNetSuiteSimulator(options);
  closers.push(sim.close);
  return sim;
}

async function tokenFor(sim: NetSuiteSimulator): Promise<string> {
  const res = await fetch(`${sim.url}/services/rest/auth/oauth2/v1/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${ID}:${SECRET}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: 'grant_type=client_credentials',
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { access_token: string }).access_token;
}

async function call(
  sim: NetSuiteSimulator,
  token: string | undefined,
  method: string,
  path: string,
  body?: unknown,
  contentType = 'application/json',
) {
  const headers: Record<string, string> = { 'content-type': contentType };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${sim.url}${path}`, {
    method,
    headers,
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, body: text ? JSON.parse(text) : undefined };
}

describe('netsuite simulator: OAuth 2.0 client credentials', () => {
  it('issues bearer tokens for Basic or body credentials and counts them', async () => {
    const sim = await start({ tokenTtlSeconds: 900 });
    await tokenFor(sim);
    const res = await fetch(`${sim.url}/services/rest/auth/oauth2/v1/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        client_id: ID,
        client_secret: SECRET,
        scope: 'rest_webservices',
      }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ token_type: 'Bearer', expires_in: 900 });
    expect(sim.tokensIssued).toBe(2);
  });

  it('refuses bad client credentials (401 invalid_client) and other grants (400)', async () => {
    const sim = await start();
    const post = (body: string, auth?: string) =>
      fetch(`${sim.url}/services/rest/auth/oauth2/v1/token`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          ...(auth && { authorization: `Basic ${Buffer.from(auth).toString('base64')}` }),
        },
        body,
      });
    const bad = await post('grant_type=client_credentials', `${ID}:wrong`);
    expect(bad.status).toBe(401);
    expect(await bad.json()).toMatchObject({ error: 'invalid_client' });
    const grant = await post('grant_type=password', `${ID}:${SECRET}`);
    expect(grant.status).toBe(400);
    expect(await grant.json()).toEqual({ error: 'unsupported_grant_type' });
    expect(sim.tokensIssued).toBe(0);
  });

  it('refuses record calls without a valid bearer with the INVALID_LOGIN body', async () => {
    const sim = await start();
    for (const token of [undefined, 'made-up']) {
      const r = await call(sim, token, 'GET', `${SO_PATH}/1001`);
      expect(r.status).toBe(401);
      expect(r.body).toEqual({
        type: 'https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.2',
        title: 'Unauthorized',
        status: 401,
        'o:errorDetails': [
          {
            detail:
              'Invalid login attempt. For more details, see the Login Audit Trail in the NetSuite UI at Setup > Users/Roles > User Management > View Login Audit Trail.',
            'o:errorCode': 'INVALID_LOGIN',
          },
        ],
      });
    }
  });

  it('revokeTokens makes issued tokens fail with 401 until a new one is fetched', async () => {
    const sim = await start();
    const token = await tokenFor(sim);
    expect((await call(sim, token, 'POST', SO_PATH, order('A-1'))).status).toBe(204);
    sim.revokeTokens();
    expect((await call(sim, token, 'GET', `${SO_PATH}/eid:A-1`)).status).toBe(401);
    const fresh = await tokenFor(sim);
    expect((await call(sim, fresh, 'GET', `${SO_PATH}/eid:A-1`)).status).toBe(200);
    expect(sim.tokensIssued).toBe(2);
  });

  it('refuses a token once the injected clock passes its expiry', async () => {
    let t = Date.UTC(2026, 10, 20);
    const sim = await start({ tokenTtlSeconds: 60, now: () => t });
    const token = await tokenFor(sim);
    expect((await call(sim, token, 'GET', SO_PATH)).status).toBe(200);
    t += 60_000;
    expect((await call(sim, token, 'GET', SO_PATH)).status).toBe(401);
  });
});

describe('netsuite simulator: salesOrder record service', () => {
  it('POST creates with 204 + Location and no body; GET returns the record with id and tranId', async () => {
    const sim = await start();
    const token = await tokenFor(sim);
    const r = await call(sim, token, 'POST', SO_PATH, order('shopify-1001'));
    expect(r.status).toBe(204);
    expect(r.text).toBe('');
    expect(r.headers.get('location')).toBe(`${sim.url}${SO_PATH}/1001`);
    const got = await call(sim, token, 'GET', `${SO_PATH}/1001`);
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({
      id: '1001',
      tranId: 'SO-1001',
      externalId: 'shopify-1001',
      entity: { id: '201' },
      custbody_channel: 'shopify',
    });
    expect(sim.creates()).toEqual({ total: 1, byExternalId: { 'shopify-1001': 1 } });
  });

  it('POST with a taken externalId is a 400 DUP_RECORD and creates nothing', async () => {
    const sim = await start();
    const token = await tokenFor(sim);
    await call(sim, token, 'POST', SO_PATH, order('dup-1'));
    const r = await call(sim, token, 'POST', SO_PATH, order('dup-1'));
    expect(r.status).toBe(400);
    expect(r.body).toEqual({
      type: 'https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.1',
      title: 'Bad Request',
      status: 400,
      'o:errorDetails': [
        {
          detail: 'A record with this external ID already exists: dup-1. (internal id 1001)',
          'o:errorPath': 'externalId',
          'o:errorCode': 'DUP_RECORD',
        },
      ],
    });
    expect(sim.salesOrders()).toHaveLength(1);
  });

  it('PUT eid: upserts: one create, then updates, same internal id', async () => {
    const sim = await start();
    const token = await tokenFor(sim);
    const first = await call(sim, token, 'PUT', `${SO_PATH}/eid:shopify-7`, order());
    const second = await call(
      sim,
      token,
      'PUT',
      `${SO_PATH}/eid:shopify-7`,
      order(undefined, { memo: 'again' }),
    );
    const third = await call(sim, token, 'PUT', `${SO_PATH}/eid:shopify-7`, order('shopify-7'));
    for (const r of [first, second, third]) {
      expect(r.status).toBe(204);
      expect(r.headers.get('location')).toBe(`${sim.url}${SO_PATH}/1001`);
    }
    expect(sim.creates()).toEqual({ total: 1, byExternalId: { 'shopify-7': 1 } });
    expect(sim.updates()).toEqual({ total: 2, byExternalId: { 'shopify-7': 2 } });
    expect(sim.salesOrder({ externalId: 'shopify-7' })?.memo).toBe('Shopify #1001');
    const mismatch = await call(sim, token, 'PUT', `${SO_PATH}/eid:shopify-7`, order('other'));
    expect(mismatch.status).toBe(400);
    expect(mismatch.body['o:errorDetails'][0]).toMatchObject({
      'o:errorPath': 'externalId',
      'o:errorCode': 'INVALID_VALUE',
    });
  });

  it('PATCH merges by internal id or eid, and 404s NONEXISTENT_ID for unknown records', async () => {
    const sim = await start();
    const token = await tokenFor(sim);
    await call(sim, token, 'POST', SO_PATH, order('p-1'));
    expect((await call(sim, token, 'PATCH', `${SO_PATH}/1001`, { memo: 'changed' })).status).toBe(204);
    expect((await call(sim, token, 'PATCH', `${SO_PATH}/eid:p-1`, { custbody_note: 'x' })).status).toBe(204);
    expect(sim.salesOrder({ id: '1001' })).toMatchObject({
      memo: 'changed',
      custbody_note: 'x',
      otherRefNum: 'PO-77',
    });
    expect(sim.updates().total).toBe(2);
    for (const ref of ['9999', 'eid:nope']) {
      const r = await call(sim, token, 'PATCH', `${SO_PATH}/${ref}`, { memo: 'x' });
      expect(r.status).toBe(404);
      expect(r.body).toMatchObject({ title: 'Not Found', status: 404 });
      expect(r.body['o:errorDetails'][0]['o:errorCode']).toBe('NONEXISTENT_ID');
    }
    const bad = await call(sim, token, 'PATCH', `${SO_PATH}/1001`, { memoo: 'typo' });
    expect(bad.body['o:errorDetails']).toEqual([
      { detail: 'Invalid field name: memoo', 'o:errorPath': 'memoo', 'o:errorCode': 'INVALID_FIELD' },
    ]);
  });

  it('looks up by externalId with q=externalId IS "<x>"', async () => {
    const sim = await start();
    const token = await tokenFor(sim);
    await call(sim, token, 'POST', SO_PATH, order('q-1'));
    await call(sim, token, 'POST', SO_PATH, order('q-2'));
    const q = encodeURIComponent('externalId IS "q-2"');
    const r = await call(sim, token, 'GET', `${SO_PATH}?q=${q}`);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ count: 1, items: [{ id: '1002', links: [{ rel: 'self' }] }] });
    const none = await call(sim, token, 'GET', `${SO_PATH}?q=${encodeURIComponent('externalId IS "zz"')}`);
    expect(none.body).toMatchObject({ count: 0, items: [] });
  });

  it('validates the record shape with NetSuite error codes and paths', async () => {
    const sim = await start();
    const token = await tokenFor(sim);
    const detailsOf = async (body: unknown) => {
      const r = await call(sim, token, 'POST', SO_PATH, body);
      expect(r.status).toBe(400);
      expect(r.body).toMatchObject({ title: 'Bad Request', status: 400 });
      return (r.body['o:errorDetails'] as Record<string, string>[]).map((d) => [
        d['o:errorPath'],
        d['o:errorCode'],
      ]);
    };
    expect(await detailsOf(order('v', { customer: { id: '201' } }))).toEqual([['customer', 'INVALID_FIELD']]);
    const { entity: _e, ...noEntity } = order('v');
    expect(await detailsOf(noEntity)).toEqual([['entity', 'USER_ERROR']]);
    expect(await detailsOf(order('v', { entity: { id: '999' } }))).toEqual([
      ['entity', 'INVALID_KEY_OR_REF'],
    ]);
    expect(await detailsOf(order('v', { entity: { id: 201 } }))).toEqual([['entity', 'INVALID_VALUE']]);
    expect(await detailsOf(order('v', { tranDate: '20/11/2026' }))).toEqual([['tranDate', 'INVALID_VALUE']]);
    expect(await detailsOf(order('v', { currency: { refName: 'XYZ' } }))).toEqual([
      ['currency', 'INVALID_KEY_OR_REF'],
    ]);
    expect(await detailsOf(order('v', { shippingCost: '4.99' }))).toEqual([
      ['shippingCost', 'INVALID_VALUE'],
    ]);
    expect(await detailsOf(order('v', { item: { items: [] } }))).toEqual([['item.items', 'USER_ERROR']]);
    expect(await detailsOf(order('v', { item: [{ item: { id: '501' }, quantity: 1, rate: 1 }] }))).toEqual([
      ['item', 'INVALID_VALUE'],
    ]);
    expect(
      await detailsOf(
        order('v', {
          item: {
            items: [
              { item: { id: '777' }, quantity: 1, rate: '1.00' },
              { item: { id: '501' }, quantity: '2', rate: 'abc', sku: 'X' },
            ],
          },
        }),
      ),
    ).toEqual([
      ['item.items[0].item', 'INVALID_KEY_OR_REF'],
      ['item.items[1].sku', 'INVALID_FIELD'],
      ['item.items[1].quantity', 'INVALID_VALUE'],
      ['item.items[1].rate', 'INVALID_VALUE'],
    ]);
    expect(sim.salesOrders()).toHaveLength(0);
    sim.addCustomer('999');
    sim.addItem('777', 'NEW-SKU');
    const ok = await call(sim, token, 'POST', SO_PATH, {
      ...order('v2'),
      entity: { id: '999' },
      item: { items: [{ item: { id: '777' }, quantity: 1, rate: '1.00' }] },
    });
    expect(ok.status).toBe(204);
  });

  it('answers 415 to a write that is not application/json', async () => {
    const sim = await start();
    const token = await tokenFor(sim);
    const r = await call(sim, token, 'POST', SO_PATH, order('ct'), 'text/plain');
    expect(r.status).toBe(415);
    expect(r.body['o:errorDetails'][0]['o:errorCode']).toBe('UNSUPPORTED_MEDIA_TYPE');
  });
});

describe('netsuite simulator: faults', () => {
  it('failNext([429], 2) answers CONCURRENCY_LIMIT_EXCEEDED with Retry-After: 2, then normally', async () => {
    const sim = await start();
    const token = await tokenFor(sim);
    sim.failNext([429], 2);
    const r = await call(sim, token, 'POST', SO_PATH, order('f-1'));
    expect(r.status).toBe(429);
    expect(r.headers.get('retry-after')).toBe('2');
    expect(r.body).toMatchObject({
      type: 'https://www.rfc-editor.org/rfc/rfc6585.html#section-4',
      title: 'Too Many Requests',
      status: 429,
      'o:errorDetails': [{ 'o:errorCode': 'CONCURRENCY_LIMIT_EXCEEDED' }],
    });
    expect(r.body['o:errorDetails'][0].detail).toMatch(/concurrency limit/);
    expect(sim.salesOrders()).toHaveLength(0);
    expect((await call(sim, token, 'POST', SO_PATH, order('f-1'))).status).toBe(204);
    expect(sim.counts.faultsInjected).toBe(1);
  });

  it('concurrencyLimit rejects requests beyond the limit while others are in flight', async () => {
    const sim = await start({ concurrencyLimit: 1 });
    const token = await tokenFor(sim);
    const url = new URL(`${sim.url}${SO_PATH}`);
    const body = JSON.stringify(order('c-1'));
    // Expect: 100-continue makes the server acknowledge the headers, so the request is provably in
    // flight while its body is withheld.
    const held = httpRequest(url, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        expect: '100-continue',
      },
    });
    const heldStatus = new Promise<number>((resolve, reject) => {
      held.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      held.on('error', reject);
    });
    await new Promise<void>((resolve) => held.on('continue', () => resolve()));
    const rejected = await call(sim, token, 'GET', SO_PATH);
    expect(rejected.status).toBe(429);
    expect(rejected.body['o:errorDetails'][0]['o:errorCode']).toBe('CONCURRENCY_LIMIT_EXCEEDED');
    held.end(body);
    expect(await heldStatus).toBe(204);
    expect((await call(sim, token, 'GET', SO_PATH)).status).toBe(200);
    expect(sim.counts.concurrencyRejected).toBe(1);
  });

  it('crashAfterCreate commits the record but drops the connection without an answer', async () => {
    let crash = true;
    const sim = await start({ crashAfterCreate: () => crash });
    const token = await tokenFor(sim);
    await expect(call(sim, token, 'POST', SO_PATH, order('crash-1'))).rejects.toThrow();
    crash = false;
    const q = encodeURIComponent('externalId IS "crash-1"');
    const found = await call(sim, token, 'GET', `${SO_PATH}?q=${q}`);
    expect(found.body).toMatchObject({ count: 1, items: [{ id: '1001' }] });
    expect(sim.creates().total).toBe(1);
    expect(sim.counts.crashes).toBe(1);
    // The client's retry of the create is refused as a duplicate: the case the hook exists to test.
    expect(
      (await call(sim, token, 'POST', SO_PATH, order('crash-1'))).body['o:errorDetails'][0]['o:errorCode'],
    ).toBe('DUP_RECORD');
  });
});

describe('netsuite simulator: ERP events out', () => {
  it('ships a sales order: itemFulfillment record plus an event the project verifier accepts', async () => {
    const receiver = await startReceiver();
    closers.push(receiver.close);
    const sim = await start({ events: { url: `${receiver.url}/erp/events`, secret: 'erp-secret' } });
    const token = await tokenFor(sim);
    await call(sim, token, 'POST', SO_PATH, order('shopify-5001'));

    const { event, status } = await sim.shipSalesOrder('1001', {
      trackingNumber: '1Z999',
      carrier: 'UPS',
      items: [{ sku: 'TSHIRT-M-BLK', quantity: 1 }],
    });
    expect(status).toBe(200);
    expect(event).toMatchObject({
      eventType: 'itemFulfillment.create',
      recordType: 'itemFulfillment',
      id: '1002',
      createdFrom: { id: '1001', externalId: 'shopify-5001', tranId: 'SO-1001' },
      shipStatus: 'shipped',
      packages: [{ packageTrackingNumber: '1Z999', packageCarrier: 'UPS' }],
      items: [{ item: { id: '501', sku: 'TSHIRT-M-BLK' }, quantity: 1, orderLine: 1 }],
    });

    const delivery = receiver.requests[0]!;
    expect(JSON.parse(delivery.rawBody)).toEqual(event);
    const verify = (rawBody: string) =>
      verifySignature(EVENTS, {
        rawBody: Buffer.from(rawBody),
        headers: delivery.headers,
        secret: 'erp-secret',
        nowMs: Date.now(),
      });
    expect(verify(delivery.rawBody)).toEqual({ ok: true });
    expect(verify(delivery.rawBody.replace('1Z999', '1Z998')).ok).toBe(false);

    const record = await call(sim, token, 'GET', '/services/rest/record/v1/itemFulfillment/1002');
    expect(record.body).toMatchObject({ id: '1002', createdFrom: { id: '1001' } });

    // Without items: ships what is left (one more shirt, one mug).
    const rest = await sim.shipSalesOrder('1001', { trackingNumber: '1Z1000', carrier: 'UPS' });
    expect(rest.event.items).toEqual([
      { item: { id: '501', sku: 'TSHIRT-M-BLK' }, quantity: 1, orderLine: 1 },
      { item: { id: '503', sku: 'MUG-WHT' }, quantity: 1, orderLine: 2 },
    ]);
    expect(sim.emitted).toHaveLength(2);
  });

  it('emits inventory, invoice (exact decimal totals) and credit memo events', async () => {
    const receiver = await startReceiver();
    closers.push(receiver.close);
    const now = Date.UTC(2026, 10, 21, 9, 30);
    const sim = await start({ now: () => now, events: { url: receiver.url, secret: 's' } });
    const token = await tokenFor(sim);
    await call(sim, token, 'POST', SO_PATH, order('inv-1'));

    const inv = await sim.setInventory('MUG-WHT', 'Main Warehouse', 12, 10);
    expect(inv.event).toEqual({
      eventType: 'inventory.update',
      recordType: 'inventoryItem',
      item: { id: '503', sku: 'MUG-WHT' },
      location: { id: '1', name: 'Main Warehouse' },
      quantityOnHand: 12,
      quantityAvailable: 10,
      lastModified: '2026-11-21T09:30:00.000Z',
    });

    const invoice = await sim.invoiceSalesOrder('1001');
    expect(invoice.event).toMatchObject({
      eventType: 'invoice.create',
      createdFrom: { id: '1001', externalId: 'inv-1' },
      tranDate: '2026-11-21',
      dueDate: '2026-12-21',
      otherRefNum: 'PO-77',
      currency: { id: '1', refName: 'USD' },
      lines: [
        { line: 1, item: { sku: 'TSHIRT-M-BLK' }, quantity: 2, rate: '19.99', amount: '39.98' },
        { line: 2, item: { sku: 'MUG-WHT' }, quantity: 1, rate: '9.50', amount: '9.50' },
      ],
      subtotal: '49.48',
      shippingCost: '4.99',
      taxTotal: '0.00',
      total: '54.47',
    });

    const memo = await sim.creditMemo('1001', '5.00', 'damaged mug');
    expect(memo.event).toMatchObject({ eventType: 'creditMemo.create', amount: '5.00', memo: 'damaged mug' });
    expect(receiver.requests.map((r) => (r.body as { eventType: string }).eventType)).toEqual([
      'inventory.update',
      'invoice.create',
      'creditMemo.create',
    ]);
    for (const r of receiver.requests) {
      expect(r.headers['x-signature-timestamp']).toBe(String(now / 1000));
      const verdict = verifySignature(EVENTS, {
        rawBody: Buffer.from(r.rawBody),
        headers: r.headers,
        secret: 's',
        nowMs: now,
      });
      expect(verdict).toEqual({ ok: true });
    }
  });

  it('without an events receiver, records the event with no status', async () => {
    const sim = await start();
    const { event, status } = await sim.setInventory('CAP-NVY', '2', 3);
    expect(status).toBeUndefined();
    expect(event).toMatchObject({ location: { id: '2', name: 'East Coast DC' }, quantityAvailable: 3 });
    expect(sim.emitted).toHaveLength(1);
  });
});
