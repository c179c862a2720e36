// Replays of captured webhooks, on a real nats-server and a flow worker: a signed request sent again
// with a new (unsigned) delivery id header is the same message within the duplicate window, and a
// signed timestamp older than the tolerance is refused; validation keeps the tolerance within the
// duplicate window, so no replay falls between the two.
import { createHmac } from 'node:crypto';
import { type JetStreamManager, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { integrationFlowSpecSchema, TOLERANCE_MESSAGE } from '../../api/integration-flow.ts';
import type { WorkerConfig } from '../../api/worker-config.ts';
import { contentHashId, signedContentId } from '../../runtime/flow/ingest.ts';
import { type FlowWorkerHandle, runFlowWorker } from '../../runtime/flow/worker.ts';
import { type NatsServerHandle, startNatsServer } from '../harness/nats.ts';
import { provision } from './support/flow-delivery.ts';
import {
  ErpPeer,
  SECRET_ENV,
  sample,
  shopifyFlow,
  shopifyOrder,
  shopifySignature,
  shopifyWorkerConfig,
  waitFor,
} from './support/flow-worker.ts';

const SECRET = 'itest-replay-secret';
let nats: NatsServerHandle;
let nc: NatsConnection;
let jsm: JetStreamManager;
let erp: ErpPeer;
const workers: FlowWorkerHandle[] = [];
let seq = 0;

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  jsm = await jetstreamManager(nc);
  erp = new ErpPeer();
  await erp.start();
});

afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop()));
});

afterAll(async () => {
  await erp?.stop();
  await nc?.close();
  await nats?.stop();
});

async function startFlow(edit?: Parameters<typeof shopifyWorkerConfig>[0]['edit']) {
  const config = shopifyWorkerConfig({
    namespace: `replay${++seq}`,
    natsUrl: nats.url,
    erpUrl: erp.url,
    delivery: { initialBackoff: '50ms', maxBackoff: '200ms' },
    ...(edit ? { edit } : {}),
  });
  await provision(jsm, config);
  const logs: Record<string, unknown>[] = [];
  const worker = await runFlowWorker(config, {
    env: { [SECRET_ENV]: SECRET, TALLY_HTTP_HOST: '127.0.0.1', TALLY_HTTP_PORT: '0' },
    logger: pino({ level: 'debug' }, { write: (l: string) => void logs.push(JSON.parse(l)) }),
    graceMs: 5_000,
    processMetrics: false,
  });
  workers.push(worker);
  await waitFor('worker ready', () => worker.ready(), { timeoutMs: 20_000 });
  return { config, worker, logs, base: `http://127.0.0.1:${worker.port}` };
}

async function post(base: string, body: string, headers: Record<string, string>) {
  const res = await fetch(`${base}/webhooks/shopify/orders`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

const stored = async (config: WorkerConfig) => (await jsm.streams.info(config.nats.stream)).state.messages;
const erpRequestsFor = (orderId: string) =>
  erp.requests.filter((r) => JSON.parse(r.body).subject === orderId);
const settled = (config: WorkerConfig) => async () => {
  const info = await jsm.consumers.info(config.nats.stream, config.nats.consumer);
  return info.num_pending === 0 && info.num_ack_pending === 0;
};

describe('replayed webhooks', () => {
  it('delivers a captured Shopify webhook replayed with a new X-Shopify-Webhook-Id once', async () => {
    const flow = await startFlow();
    const n = 501;
    const body = JSON.stringify(shopifyOrder(n));
    const signed = {
      'x-shopify-hmac-sha256': shopifySignature(body, SECRET),
      'x-shopify-topic': 'orders/create',
    };
    const first = await post(flow.base, body, { ...signed, 'x-shopify-webhook-id': 'orig-1' });
    expect(first).toEqual({ status: 202, json: { id: 'orig-1', duplicate: false } });
    // The attacker's copy: same body and signature, a fresh webhook id (the header is not signed).
    const replay = await post(flow.base, body, { ...signed, 'x-shopify-webhook-id': 'forged-2' });
    expect(replay).toEqual({ status: 202, json: { id: 'forged-2', duplicate: true } });
    const orderId = `shopify-${7_000_000_000 + n}`;
    await waitFor('ERP delivery', () => erpRequestsFor(orderId).length === 1);
    await waitFor('consumer settled', settled(flow.config));

    expect(await stored(flow.config)).toBe(1);
    expect(erpRequestsFor(orderId)).toHaveLength(1);
    // Stored under the body's digest; the original webhook id kept for lineage, and the event
    // known by it (logs, dead letters, replays).
    const m = (await jsm.streams.getMessage(flow.config.nats.stream, { seq: 1 }))!;
    expect(m.header.get('Nats-Msg-Id')).toBe(contentHashId(Buffer.from(body)));
    expect(m.header.get('Tally-Source-Msg-Id')).toBe('orig-1');
    expect(m.header.get('x-shopify-webhook-id')).toBe('orig-1');
    const delivered = flow.logs.filter((l) => l.msg === 'delivered');
    expect(delivered).toHaveLength(1);
    expect(delivered[0]).toMatchObject({ sourceMsgId: 'orig-1', businessKey: orderId });
    const text = await (await fetch(`${flow.base}/metrics`)).text();
    expect(sample(text, 'tally_flow_messages_received_total', { source: 'webhook' })).toBe(2);
    expect(sample(text, 'tally_flow_messages_deduplicated_total', { source: 'webhook' })).toBe(1);
  });

  it('deduplicates timestamp-signed requests by what is signed, and refuses them after the tolerance', async () => {
    const flow = await startFlow((spec) => {
      spec.source.webhook!.signature = {
        scheme: 'hmac-sha256-hex',
        header: 'X-Signature',
        timestampHeader: 'X-Signature-Timestamp',
        secretKeyRef: { name: 'shopify-webhook', key: 'secret' },
        tolerance: '2m',
      };
      spec.stream.duplicateWindow = '2m';
    });
    const sign = (body: string, ts: string) => ({
      'x-signature': createHmac('sha256', SECRET).update(`${ts}.${body}`).digest('hex'),
      'x-signature-timestamp': ts,
    });
    const n = 502;
    const body = JSON.stringify(shopifyOrder(n));
    const ts = String(Math.floor(Date.now() / 1000));
    expect(await post(flow.base, body, { ...sign(body, ts), 'x-request-id': 'r-1' })).toEqual({
      status: 202,
      json: { id: 'r-1', duplicate: false },
    });
    // Replayed within the tolerance under a new request id: the same signed bytes, stored once.
    expect(await post(flow.base, body, { ...sign(body, ts), 'x-request-id': 'r-forged' })).toEqual({
      status: 202,
      json: { id: 'r-forged', duplicate: true },
    });
    // Replayed after the tolerance: refused before anything is stored.
    const old = String(Math.floor(Date.now() / 1000) - 3 * 60);
    const stale = await post(flow.base, body, { ...sign(body, old), 'x-request-id': 'r-old' });
    expect(stale.status).toBe(401);
    expect(stale.json.error).toMatch(/X-Signature-Timestamp is more than 120000 ms from the server clock/);
    const orderId = `shopify-${7_000_000_000 + n}`;
    await waitFor('ERP delivery', () => erpRequestsFor(orderId).length === 1);
    await waitFor('consumer settled', settled(flow.config));
    expect(await stored(flow.config)).toBe(1);
    const m = (await jsm.streams.getMessage(flow.config.nats.stream, { seq: 1 }))!;
    expect(m.header.get('Nats-Msg-Id')).toBe(signedContentId(ts, Buffer.from(body)));
    expect(m.header.get('Tally-Source-Msg-Id')).toBe('r-1');
  });

  it('cannot be configured with a tolerance longer than the duplicate window', () => {
    const spec = shopifyFlow('replay').flow.spec;
    spec.source.webhook!.signature = {
      scheme: 'hmac-sha256-hex',
      header: 'X-Signature',
      timestampHeader: 'X-Signature-Timestamp',
      secretKeyRef: { name: 'shopify-webhook', key: 'secret' },
      tolerance: '10m',
    };
    const refused = integrationFlowSpecSchema.safeParse({
      ...spec,
      stream: { ...spec.stream, duplicateWindow: '5m' },
    });
    expect(refused.success).toBe(false);
    expect(refused.error!.issues).toEqual([
      expect.objectContaining({
        path: ['source', 'webhook', 'signature', 'tolerance'],
        message: TOLERANCE_MESSAGE,
      }),
    ]);
    const fits = integrationFlowSpecSchema.safeParse({
      ...spec,
      stream: { ...spec.stream, duplicateWindow: '10m' },
    });
    expect(fits.success).toBe(true);
  });
});
