// The flow worker end to end on a real nats-server and real HTTP on loopback: signed Shopify
// webhooks -> flow stream -> mapping -> ERP (HTTP) and a NATS subject, with dedupe, retries,
// dead-lettering and graceful stop.
import { request as httpRequest } from 'node:http';
import { type JetStreamManager, jetstreamManager } from '@nats-io/jetstream';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { CanonicalEvent } from '../../api/envelope.ts';
import type { WorkerConfig } from '../../api/worker-config.ts';
import { WorkerStartupError } from '../../runtime/flow/errors.ts';
import { type FlowWorkerHandle, runFlowWorker } from '../../runtime/flow/worker.ts';
import { type NatsServerHandle, startNatsServer } from '../harness/nats.ts';
import { provision } from './support/flow-delivery.ts';
import {
  ErpPeer,
  SECRET_ENV,
  type ShopifyConfigOptions,
  sample,
  shopifyOrder,
  shopifySignature,
  shopifyWorkerConfig,
  waitFor,
} from './support/flow-worker.ts';

const SECRET = 'itest-shopify-secret';
const CANONICAL_STREAM = 'ITEST_CANONICAL';
const FAST_DELIVERY = { initialBackoff: '50ms', maxBackoff: '400ms', ackWait: '10s' } as const;

let nats: NatsServerHandle;
let nc: NatsConnection;
let jsm: JetStreamManager;
let erp: ErpPeer;
const workers: FlowWorkerHandle[] = [];
let namespaceSeq = 0;

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: CANONICAL_STREAM, subjects: ['tally.canonical.>'], duplicate_window: 120e9 });
  erp = new ErpPeer();
  await erp.start();
});

afterAll(async () => {
  await erp?.stop();
  await nc?.close();
  await nats?.stop();
});

afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop()));
});

interface Flow {
  config: WorkerConfig;
  logs: Record<string, unknown>[];
  worker: FlowWorkerHandle;
  base: string;
}

/**
 * Renders the example flow (mapping at generation 3) in a fresh namespace, creates its streams,
 * consumer and the namespace's streams (as the operator does) and starts a worker.
 */
async function startFlow(overrides: Partial<ShopifyConfigOptions> = {}): Promise<Flow> {
  const namespace = `it${++namespaceSeq}`;
  const config = shopifyWorkerConfig({
    namespace,
    natsUrl: nats.url,
    erpUrl: erp.url,
    delivery: FAST_DELIVERY,
    mappingGeneration: 3,
    ...overrides,
  });
  await provision(jsm, config);
  const { worker, logs } = await startWorker(config);
  return { config, logs, worker, base: `http://127.0.0.1:${worker.port}` };
}

async function startWorker(config: WorkerConfig) {
  const logs: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  const worker = await runFlowWorker(config, {
    env: { [SECRET_ENV]: SECRET, TALLY_HTTP_HOST: '127.0.0.1', TALLY_HTTP_PORT: '0' },
    logger,
    graceMs: 5_000,
    processMetrics: false,
  });
  workers.push(worker);
  await waitFor('worker ready', () => worker.ready());
  return { worker, logs };
}

async function postWebhook(
  flow: Flow,
  body: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${flow.base}/webhooks/shopify/orders`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-shopify-hmac-sha256': shopifySignature(body, SECRET),
      'x-shopify-topic': 'orders/create',
      ...headers,
    },
    body,
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

const metricsText = async (flow: Flow) => (await fetch(`${flow.base}/metrics`)).text();
const streamCount = async (stream: string) => (await jsm.streams.info(stream)).state.messages;
const consumerInfo = (flow: Flow) => jsm.consumers.info(flow.config.nats.stream, flow.config.nats.consumer);
const erpFor = (orderId: string) => erp.requests.filter((r) => JSON.parse(r.body).subject === orderId);

async function canonicalMessages(): Promise<{ event: CanonicalEvent; msgId: string }[]> {
  const n = await streamCount(CANONICAL_STREAM);
  const out: { event: CanonicalEvent; msgId: string }[] = [];
  for (let seq = 1; seq <= n; seq++) {
    const m = await jsm.streams.getMessage(CANONICAL_STREAM, { seq });
    if (m) out.push({ event: m.json<CanonicalEvent>(), msgId: m.header.get('Nats-Msg-Id') });
  }
  return out;
}

describe('flow worker (webhook -> JetStream -> mapping -> sinks)', () => {
  it('delivers each signed order exactly once to the ERP and the NATS sink, and counts it', async () => {
    const flow = await startFlow();
    const n = 5;
    const ids = Array.from({ length: n }, (_, i) => 100 + i + namespaceSeq * 1000);
    for (const id of ids) {
      const r = await postWebhook(flow, JSON.stringify(shopifyOrder(id)), {
        'x-shopify-webhook-id': `wh-${id}`,
      });
      expect(r).toEqual({ status: 202, json: { id: `wh-${id}`, duplicate: false } });
    }
    const orderIds = ids.map((id) => `shopify-${7_000_000_000 + id}`);
    await waitFor('ERP to get every order', () =>
      orderIds.every((o) => erp.stored.has(`Order:${o}:1795191302000`)),
    );

    for (const [i, orderId] of orderIds.entries()) {
      const reqs = erpFor(orderId);
      expect(reqs).toHaveLength(1);
      const [req] = reqs;
      expect(req!.method).toBe('POST');
      expect(req!.headers['content-type']).toBe('application/cloudevents+json; charset=utf-8');
      expect(req!.headers['idempotency-key']).toBe(`Order:${orderId}:1795191302000`);
      const event = JSON.parse(req!.body) as CanonicalEvent;
      expect(event).toMatchObject({
        specversion: '1.0',
        type: 'dev.tally.order.v1',
        source: `/tally/${flow.config.flow.namespace}/flows/shopify-orders`,
        subject: orderId,
        tallychannel: 'shopify-us',
        tallyflow: `${flow.config.flow.namespace}/shopify-orders`,
        tallymapping: `${flow.config.flow.namespace}/shopify-order`,
        tallymappingversion: '3',
        tallysourceid: `wh-${ids[i]}`,
        tallyversion: '1795191302000',
      });
      expect(event.data).toMatchObject({
        orderId,
        channelOrderId: `#${2000 + ids[i]!}`,
        status: 'confirmed',
        totals: { grandTotal: { amount: '43.22', currency: 'USD' } },
      });
      expect(req!.headers.traceparent).toBe(event.traceparent);
    }

    const canonical = await waitFor('NATS sink messages', async () => {
      const all = (await canonicalMessages()).filter((m) => orderIds.includes(m.event.subject));
      return all.length >= n ? all : undefined;
    });
    expect(canonical).toHaveLength(n);
    for (const m of canonical) expect(m.msgId).toBe(m.event.id);

    await waitFor('consumer settled', async () => (await consumerInfo(flow)).num_ack_pending === 0);
    const text = await metricsText(flow);
    const labels = { flow: `${flow.config.flow.namespace}/shopify-orders`, channel: 'shopify-us' };
    expect(sample(text, 'tally_flow_messages_received_total', { ...labels, source: 'webhook' })).toBe(n);
    expect(sample(text, 'tally_flow_messages_delivered_total', { ...labels, sink: 'erp-orders' })).toBe(n);
    expect(sample(text, 'tally_flow_messages_delivered_total', { ...labels, sink: 'canonical-orders' })).toBe(
      n,
    );
    expect(sample(text, 'tally_webhook_requests_total', { ...labels, code: '202' })).toBe(n);
    expect(sample(text, 'tally_orders_total', { channel: 'shopify-us', currency: 'USD' })).toBe(n);
    expect(sample(text, 'tally_order_value_total', { channel: 'shopify-us', currency: 'USD' })).toBeCloseTo(
      43.22 * n,
      6,
    );
    expect(sample(text, 'tally_flow_processing_seconds_count', labels)).toBe(n);
    expect(sample(text, 'tally_flow_sink_request_seconds_count', { sink: 'erp-orders', code: '201' })).toBe(
      n,
    );
    expect(text).not.toMatch(/shopify-7\d{9}/); // business keys never become labels

    const delivered = flow.logs.find((l) => l.msg === 'delivered' && l.businessKey === orderIds[0]);
    expect(delivered).toMatchObject({
      flow: labels.flow,
      channel: 'shopify-us',
      sourceMsgId: `wh-${ids[0]}`,
      traceId: expect.stringMatching(/^[0-9a-f]{32}$/),
    });
  });

  it('delivers a webhook sent twice with the same X-Shopify-Webhook-Id once', async () => {
    const flow = await startFlow();
    const id = 1;
    const body = JSON.stringify(shopifyOrder(namespaceSeq * 1000 + id));
    const before = await streamCount(flow.config.nats.stream);
    const first = await postWebhook(flow, body, { 'x-shopify-webhook-id': 'dup-1' });
    const second = await postWebhook(flow, body, { 'x-shopify-webhook-id': 'dup-1' });
    expect(first).toEqual({ status: 202, json: { id: 'dup-1', duplicate: false } });
    expect(second).toEqual({ status: 202, json: { id: 'dup-1', duplicate: true } });
    expect(await streamCount(flow.config.nats.stream)).toBe(before + 1);
    const orderId = `shopify-${7_000_000_000 + namespaceSeq * 1000 + id}`;
    await waitFor('ERP delivery', () => erpFor(orderId).length === 1);
    await waitFor('consumer settled', async () => (await consumerInfo(flow)).num_ack_pending === 0);
    expect(erpFor(orderId)).toHaveLength(1);
    const text = await metricsText(flow);
    expect(sample(text, 'tally_flow_messages_received_total', { source: 'webhook' })).toBe(2);
    expect(sample(text, 'tally_flow_messages_deduplicated_total', { source: 'webhook' })).toBe(1);
    expect(sample(text, 'tally_flow_messages_delivered_total', { sink: 'erp-orders' })).toBe(1);
  });

  it('refuses bad or missing signatures (401), non-JSON (400) and oversize bodies (413), publishing nothing', async () => {
    const flow = await startFlow({ maxBodyBytes: 4096 });
    const stream = flow.config.nats.stream;
    const body = JSON.stringify(shopifyOrder(1));

    const forged = await postWebhook(flow, body, {
      'x-shopify-hmac-sha256': shopifySignature(body, 'wrong-secret'),
    });
    expect(forged.status).toBe(401);
    expect(forged.json.error).toMatch(/X-Shopify-Hmac-Sha256/);
    const tampered = await fetch(`${flow.base}/webhooks/shopify/orders`, {
      method: 'POST',
      headers: { 'x-shopify-hmac-sha256': shopifySignature(body, SECRET) },
      body: body.replace('43.22', '0.01'),
    });
    expect(tampered.status).toBe(401);
    const unsigned = await fetch(`${flow.base}/webhooks/shopify/orders`, { method: 'POST', body });
    expect(unsigned.status).toBe(401);

    const notJson = await postWebhook(flow, 'this is not json');
    expect(notJson.status).toBe(400);

    // Declared too large: refused before the body is read.
    const declared = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        `${flow.base}/webhooks/shopify/orders`,
        { method: 'POST', headers: { 'content-length': '1048576', 'content-type': 'application/json' } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.flushHeaders();
    });
    expect(declared).toBe(413);
    // Streamed (chunked) past the limit.
    const big = JSON.stringify({ ...shopifyOrder(2), note: 'x'.repeat(8192) });
    const chunked = await fetch(`${flow.base}/webhooks/shopify/orders`, {
      method: 'POST',
      headers: { 'x-shopify-hmac-sha256': shopifySignature(big, SECRET) },
      body: new Blob([big]).stream(),
      duplex: 'half',
    } as RequestInit).catch((err: Error) => err);
    // The server may cut the connection before the client has read the answer; either way nothing is stored.
    if (!(chunked instanceof Error)) expect(chunked.status).toBe(413);
    else console.log('chunked oversize: client saw', chunked.message);

    expect(await streamCount(stream)).toBe(0);
    const text = await metricsText(flow);
    expect(sample(text, 'tally_webhook_requests_total', { code: '401' })).toBe(3);
    expect(sample(text, 'tally_webhook_requests_total', { code: '400' })).toBe(1);
    expect(sample(text, 'tally_webhook_requests_total', { code: '413' })).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'tally_flow_messages_received_total', { source: 'webhook' })).toBe(0);
  });

  it('dead-letters a payload the mapping rejects, with the error headers, and acks it', async () => {
    const flow = await startFlow();
    const body = JSON.stringify({ id: 42, note: 'no line items, no totals' });
    expect((await postWebhook(flow, body, { 'x-shopify-webhook-id': 'bad-1' })).status).toBe(202);
    const dlq = flow.config.nats.deadLetterStream;
    await waitFor('dead letter', async () => (await streamCount(dlq)) === 1);
    const m = (await jsm.streams.getMessage(dlq, { seq: 1 }))!;
    expect(m.string()).toBe(body);
    expect(m.subject).toBe(flow.config.nats.deadLetterSubject);
    const h = (k: string) => m.header.get(k);
    // Deduplicated by the id the source message was stored under (a redelivery dead-letters once).
    const stored = (await jsm.streams.getMessage(flow.config.nats.stream, { seq: 1 }))!;
    expect(h('Nats-Msg-Id')).toBe(`dlq:${stored.header.get('Nats-Msg-Id')}`);
    expect(h('Tally-Error-Class')).toMatch(
      /^(CanonicalValidationError|MappingEvaluationError|BusinessKeyError)$/,
    );
    expect(h('Tally-Error-Code')).not.toBe('');
    expect(h('Tally-Error-Reason')).toMatch(/^mapping_/);
    expect(h('Tally-Error-Message').length).toBeGreaterThan(0);
    expect(h('Tally-Error-Message')).not.toMatch(/\n/);
    expect(h('Tally-Attempts')).toBe('1');
    expect(h('Tally-Flow')).toBe(`${flow.config.flow.namespace}/shopify-orders`);
    expect(h('Tally-Source-Msg-Id')).toBe('bad-1');
    expect(Date.parse(h('Tally-First-Received'))).not.toBeNaN();
    expect(Date.parse(h('Tally-Dead-Lettered-At'))).not.toBeNaN();
    expect(h('x-shopify-topic')).toBe('orders/create');
    expect(h('traceparent')).toMatch(/^00-/);

    await waitFor('consumer settled', async () => {
      const info = await consumerInfo(flow);
      return info.num_ack_pending === 0 && info.num_pending === 0;
    });
    const text = await metricsText(flow);
    expect(sample(text, 'tally_flow_messages_dead_lettered_total', { reason: h('Tally-Error-Reason') })).toBe(
      1,
    );
    expect(sample(text, 'tally_flow_messages_failed_total', { reason: h('Tally-Error-Reason') })).toBe(1);
    expect(erp.requests.filter((r) => r.body.includes('"tallysourceid":"bad-1"'))).toHaveLength(0);
  });

  it('retries a sink that answers 500 twice and delivers once', async () => {
    const flow = await startFlow();
    const n = namespaceSeq * 1000 + 7;
    const orderId = `shopify-${7_000_000_000 + n}`;
    const key = `Order:${orderId}:1795191302000`;
    erp.script.set(key, [500, 500]);
    expect(
      (await postWebhook(flow, JSON.stringify(shopifyOrder(n)), { 'x-shopify-webhook-id': `retry-${n}` }))
        .status,
    ).toBe(202);
    await waitFor('ERP to accept', () => erp.stored.has(key));
    await waitFor('consumer settled', async () => (await consumerInfo(flow)).num_ack_pending === 0);
    expect(erpFor(orderId).map((r) => r.status)).toEqual([500, 500, 201]);
    // Same event each attempt: same id, same idempotency key.
    expect(new Set(erpFor(orderId).map((r) => JSON.parse(r.body).id)).size).toBe(1);
    const canonical = (await canonicalMessages()).filter((m) => m.event.subject === orderId);
    expect(canonical).toHaveLength(1); // the NATS sink deduped the re-sends by Nats-Msg-Id
    const text = await metricsText(flow);
    expect(sample(text, 'tally_flow_messages_retried_total', { reason: 'sink_unavailable' })).toBe(2);
    expect(sample(text, 'tally_flow_messages_delivered_total', { sink: 'erp-orders' })).toBe(1);
    expect(sample(text, 'tally_flow_sink_request_seconds_count', { sink: 'erp-orders', code: '500' })).toBe(
      2,
    );
  });

  it('answers 503 while NATS is down and recovers when it is back', async () => {
    const flow = await startFlow();
    await nats.halt();
    await waitFor('not ready', async () => (await fetch(`${flow.base}/readyz`)).status === 503);
    expect((await fetch(`${flow.base}/healthz`)).status).toBe(200);
    const n = namespaceSeq * 1000 + 9;
    const body = JSON.stringify(shopifyOrder(n));
    expect((await postWebhook(flow, body, { 'x-shopify-webhook-id': `down-${n}` })).status).toBe(503);
    await nats.start();
    await waitFor('ready again', async () => (await fetch(`${flow.base}/readyz`)).status === 200, {
      timeoutMs: 20_000,
    });
    // The channel retries; now it goes through.
    expect((await postWebhook(flow, body, { 'x-shopify-webhook-id': `down-${n}` })).status).toBe(202);
    await waitFor('ERP delivery after recovery', () => erpFor(`shopify-${7_000_000_000 + n}`).length === 1, {
      timeoutMs: 20_000,
    });
    // The test's own connection reconnects on its own schedule; later tests need it.
    await waitFor('test connection back', async () => (await streamCount(flow.config.nats.stream)) >= 1, {
      timeoutMs: 20_000,
    });
  });

  it('stops gracefully: in-flight messages finish, nothing is left unacked, nothing is lost', async () => {
    const flow = await startFlow();
    const ids = Array.from({ length: 40 }, (_, i) => namespaceSeq * 1000 + i);
    erp.delayMs = 200; // slow ERP: messages are mid-delivery when the stop comes
    try {
      await Promise.all(
        ids.map((id) =>
          postWebhook(flow, JSON.stringify(shopifyOrder(id)), { 'x-shopify-webhook-id': `stop-${id}` }),
        ),
      );
      await waitFor(
        'deliveries in progress',
        async () => sample(await metricsText(flow), 'tally_flow_in_flight') > 0,
      );
      await flow.worker.stop();
    } finally {
      erp.delayMs = 0;
    }
    expect(flow.worker.ready()).toBe(false);
    // What was in progress finished within the grace period: nothing was left over for redelivery.
    const messages = flow.logs.map((l) => l.msg);
    expect(messages).toContain('stopped');
    expect(messages).not.toContain(
      'messages still in progress after the grace period; they will be redelivered',
    );
    const after = await consumerInfo(flow);
    expect(after.num_ack_pending).toBe(0);
    const orderIds = ids.map((id) => `shopify-${7_000_000_000 + id}`);
    // Every request the ERP got was answered (in-flight work finished), and whatever was not
    // delivered is still pending in the stream.
    const orderRequests = orderIds.flatMap((o) => erpFor(o));
    expect(orderRequests.every((r) => r.status === 201)).toBe(true);
    const deliveredBeforeStop = orderIds.filter((o) => erpFor(o).length > 0).length;
    expect(deliveredBeforeStop).toBeGreaterThan(0);
    expect(deliveredBeforeStop + after.num_pending).toBe(ids.length);

    // A new worker picks up whatever the first one had not started.
    await startWorker(flow.config);
    await waitFor('all delivered', () => orderIds.every((o) => erpFor(o).length >= 1));
    for (const o of orderIds) expect(erp.stored.has(`Order:${o}:1795191302000`)).toBe(true);
  });

  it('takes a NATS source: republishes with its Nats-Msg-Id, replies once stored; a sink subject without a stream gets a plain publish', async () => {
    const sourceSubject = `itest.source.${namespaceSeq + 1}.orders`;
    const sinkSubject = `itest.core.${namespaceSeq + 1}.orders`;
    const flow = await startFlow({
      edit: (spec) => {
        spec.source = { type: 'nats', nats: { subject: sourceSubject } };
        for (const s of spec.sinks) if (s.type === 'nats') s.nats = { subject: sinkSubject };
      },
    });
    const onSink: CanonicalEvent[] = [];
    const sub = nc.subscribe(sinkSubject, {
      callback: (_e, m) => {
        onSink.push(m.json<CanonicalEvent>());
      },
    });
    try {
      const n = namespaceSeq * 1000 + 1;
      const h = headers();
      h.set('Nats-Msg-Id', `nats-${n}`);
      const reply = await nc.request(sourceSubject, JSON.stringify(shopifyOrder(n)), {
        headers: h,
        timeout: 5_000,
      });
      expect(reply.json()).toEqual({ id: `nats-${n}`, duplicate: false });
      const again = await nc.request(sourceSubject, JSON.stringify(shopifyOrder(n)), {
        headers: h,
        timeout: 5_000,
      });
      expect(again.json()).toEqual({ id: `nats-${n}`, duplicate: true });
      const orderId = `shopify-${7_000_000_000 + n}`;
      await waitFor('ERP delivery', () => erpFor(orderId).length === 1);
      await waitFor('plain NATS delivery', () => onSink.length === 1);
      await waitFor('consumer settled', async () => (await consumerInfo(flow)).num_ack_pending === 0);
      expect(onSink[0]).toMatchObject({ subject: orderId, tallysourceid: `nats-${n}` });
      expect(await streamCount(flow.config.nats.stream)).toBe(1);
      const text = await metricsText(flow);
      expect(sample(text, 'tally_flow_messages_received_total', { source: 'nats' })).toBe(2);
      expect(
        sample(text, 'tally_flow_sink_request_seconds_count', { sink: 'canonical-orders', code: 'core' }),
      ).toBe(1);
    } finally {
      sub.unsubscribe();
    }
  });

  it('refuses to start without the webhook secret, naming the variable', async () => {
    const config = shopifyWorkerConfig({ namespace: 'nostart', natsUrl: nats.url, erpUrl: erp.url });
    const err = await runFlowWorker(config, {
      env: { TALLY_HTTP_HOST: '127.0.0.1', TALLY_HTTP_PORT: '0' },
      logger: pino({ level: 'silent' }),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkerStartupError);
    expect((err as WorkerStartupError).code).toBe('FLOW_MISSING_SECRET');
    expect((err as Error).message).toMatch(SECRET_ENV);
  });
});
