// The HTTP sink speaking a target's own API, against a loopback server: outbound body, URL template,
// create vs update from the cross-reference store, capture, "already exists", and the precise
// failure of each bad case.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { xrefStore } from '../../xref/store.ts';
import { classifyFailure } from '../classify.ts';
import { memoryStateStore } from '../state/kv-store.ts';
import type { EventHead } from '../transform.ts';
import { createHttpSink, type HttpSinkConfig } from './http-sink.ts';

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;
let server: Server;
let base: string;
let handler: Handler = (_q, _b, res) => res.writeHead(500).end();
const seen: { method: string; url: string; body: string; headers: IncomingMessage['headers'] }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, body, headers: req.headers });
      handler(req, body, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const event = (subject: string, version = '1'): EventHead =>
  ({
    id: `e-${subject}-${version}`,
    tallyentity: 'Order',
    subject,
    tallyversion: version,
    tallyflow: 'default/orders',
    traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
  }) as EventHead;

function sinkConfig(over: Partial<HttpSinkConfig> = {}): HttpSinkConfig {
  return {
    name: 'erp',
    type: 'http',
    url: `${base}/salesOrder/eid:{orderId}`,
    method: 'PUT',
    headers: {},
    idempotencyKeyHeader: 'Idempotency-Key',
    timeoutMs: 2000,
    maxInFlight: 4,
    bodyMapping: {
      name: 'default/order-to-erp',
      generation: 1,
      entity: 'Order',
      expression: '{"externalId": orderId, "memo": "web"}',
      output: { format: 'json' },
      headers: { 'X-Tenant': '"eu"' },
      params: {},
      lookups: {},
      limits: { timeoutMs: 1000, maxDepth: 500 },
    },
    xref: {
      system: 'erp',
      entity: 'Order',
      capture: '$substringAfter(headers.location, "/salesOrder/")',
      links: { shop: 'channelOrderId' },
    },
    update: { url: `${base}/salesOrder/{id}`, method: 'PATCH' },
    ...over,
  };
}

function setup(over: Partial<HttpSinkConfig> = {}) {
  const store = xrefStore(memoryStateStore());
  const sink = createHttpSink(sinkConfig(over), { env: {}, xref: store, flow: 'default/orders' });
  return { store, sink };
}

const created: Handler = (_q, _b, res) => res.writeHead(204, { location: `${base}/salesOrder/77` }).end();

describe('HTTP sink with an outbound mapping and a cross-reference', () => {
  it('creates with the target body, captures the id, then updates to that id', async () => {
    const { store, sink } = setup();
    handler = created;
    seen.length = 0;
    const data = { orderId: 'web-1', channelOrderId: '#1' };
    expect(await sink.deliver(event('web-1'), new Uint8Array(), data)).toEqual({
      outcome: 'created',
      targetId: '77',
      system: 'erp',
    });
    expect(seen[0]).toMatchObject({
      method: 'PUT',
      url: '/salesOrder/eid:web-1',
      body: '{"externalId":"web-1","memo":"web"}',
    });
    expect(seen[0]?.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(seen[0]?.headers['x-tenant']).toBe('eu');
    expect(await store.get('Order', 'web-1')).toMatchObject({
      ids: { erp: '77', shop: '#1' },
      provenance: { erp: { by: 'default/orders', version: '1' } },
    });
    handler = (_q, _b, res) => res.writeHead(204).end();
    expect(await sink.deliver(event('web-1', '2'), new Uint8Array(), data)).toMatchObject({
      outcome: 'updated',
    });
    expect(seen[1]).toMatchObject({ method: 'PATCH', url: '/salesOrder/77' });
    await sink.close();
  });

  it('without an update, an event whose id is known is not sent again', async () => {
    const { store, sink } = setup({ update: undefined });
    await store.link({ entity: 'Order', key: 'web-2', ids: { erp: '5' }, provenance: { by: 't', at: '' } });
    seen.length = 0;
    expect(await sink.deliver(event('web-2'), new Uint8Array(), { orderId: 'web-2' })).toEqual({
      outcome: 'known',
      targetId: '5',
      system: 'erp',
    });
    expect(seen).toHaveLength(0);
    await sink.close();
  });

  it('"already exists" is delivered when the answer names the id, a conflict when nothing does', async () => {
    const { store, sink } = setup({
      method: 'POST',
      url: `${base}/invoices`,
      update: undefined,
      alreadyExists: { statuses: [409], bodyPattern: 'duplicate' },
      xref: { system: 'erp', entity: 'Order', capture: 'body.invoiceId', links: {} },
    });
    handler = (_q, _b, res) =>
      res
        .writeHead(409, { 'content-type': 'application/json' })
        .end('{"error":"duplicate","invoiceId":"INV-9"}');
    expect(await sink.deliver(event('web-3'), new Uint8Array(), { orderId: 'web-3' })).toMatchObject({
      outcome: 'already_exists',
      targetId: 'INV-9',
    });
    expect((await store.get('Order', 'web-3'))?.ids.erp).toBe('INV-9');
    handler = (_q, _b, res) =>
      res.writeHead(409, { 'content-type': 'application/json' }).end('{"error":"duplicate"}');
    const err = await sink.deliver(event('web-4'), new Uint8Array(), { orderId: 'web-4' }).catch((e) => e);
    expect(classifyFailure(err)).toMatchObject({ reason: 'sink_duplicate', permanent: true });
    expect(err.message).toMatch(
      /already exists there, but Tally holds no erp id for Order web-4.*tally xref put/,
    );
    // A 409 that is not a duplicate (bodyPattern does not match) is a conflict at the target: retried.
    handler = (_q, _b, res) => res.writeHead(409).end('version conflict');
    const other = await sink.deliver(event('web-5'), new Uint8Array(), { orderId: 'web-5' }).catch((e) => e);
    expect(classifyFailure(other)).toMatchObject({ reason: 'sink_conflict', permanent: false });
    // A plain 4xx is permanent.
    handler = (_q, _b, res) => res.writeHead(422).end('{"errors":{"base":["bad"]}}');
    const bad = await sink.deliver(event('web-9'), new Uint8Array(), { orderId: 'web-9' }).catch((e) => e);
    expect(classifyFailure(bad)).toMatchObject({ reason: 'sink_rejected', permanent: true });
    await sink.close();
  });

  it('an answer without the id to capture is capture_missing, permanent, saying what to do', async () => {
    const { sink } = setup();
    handler = (_q, _b, res) => res.writeHead(204).end();
    const err = await sink.deliver(event('web-6'), new Uint8Array(), { orderId: 'web-6' }).catch((e) => e);
    expect(classifyFailure(err)).toMatchObject({ reason: 'capture_missing', permanent: true });
    expect(err.message).toMatch(
      /answered 204 but xref.capture .* found no id in the answer; the target has the event/,
    );
    await sink.close();
  });

  it('a URL template naming a value the event lacks is sink_url_template, before any request', async () => {
    const { sink } = setup({ url: `${base}/orders/{erpCustomer}/salesOrder` });
    seen.length = 0;
    const err = await sink.deliver(event('web-7'), new Uint8Array(), { orderId: 'web-7' }).catch((e) => e);
    expect(classifyFailure(err)).toMatchObject({ reason: 'sink_url_template', permanent: true });
    expect(seen).toHaveLength(0);
    await sink.close();
  });

  it('an outbound mapping that fails is a mapping failure naming the expression', async () => {
    const { sink } = setup();
    const broken = sinkConfig();
    broken.bodyMapping!.expression = '$lookup("missing", orderId)';
    const s2 = createHttpSink(broken, { env: {}, xref: xrefStore(memoryStateStore()) });
    const err = await s2.deliver(event('web-8'), new Uint8Array(), { orderId: 'web-8' }).catch((e) => e);
    expect(classifyFailure(err)).toMatchObject({ reason: 'mapping_evaluation', permanent: true });
    expect(err.message).toMatch(/no lookup table named "missing"/);
    await Promise.all([sink.close(), s2.close()]);
  });
});
