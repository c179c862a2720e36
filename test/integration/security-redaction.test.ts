// "Lets no one in": credentials never reach a dead letter or a log line. On a real nats-server, a
// flow worker with a bearer-authenticated HTTP sink whose target echoes the request headers back in
// its error answers (as many APIs do in debug mode): first 503 (retried), then 400 (dead-lettered).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type JetStreamManager, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { integrationFlowSpecSchema } from '../../api/integration-flow.ts';
import { renderWorkerConfig } from '../../operator/render/worker-config.ts';
import { DLQ_HEADERS } from '../../runtime/flow/dead-letters/headers.ts';
import { type FlowWorkerHandle, runFlowWorker } from '../../runtime/flow/worker.ts';
import { type NatsServerHandle, startNatsServer } from '../harness/nats.ts';
import { provision } from './support/flow-delivery.ts';
import { SECRET_ENV, shopifyFlow, shopifyOrder, shopifySignature, waitFor } from './support/flow-worker.ts';

const WEBHOOK_SECRET = 'itest-webhook-secret';
/** An opaque token (no well-known format): only the sink's knowledge of what it sent can mask it. */
const TOKEN = 'tok-9f8e7d6c5b4a39281706';
const TOKEN_ENV = 'TALLY_SINK_0_TOKEN';

let nats: NatsServerHandle;
let nc: NatsConnection;
let jsm: JetStreamManager;
let target: Server;
let targetUrl = '';
const seen: { authorization: string | undefined; status: number }[] = [];
let worker: FlowWorkerHandle | undefined;

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  jsm = await jetstreamManager(nc);
  // Echoes every request header; 503 the first time, 400 after.
  target = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const status = seen.length === 0 ? 503 : 400;
      seen.push({ authorization: req.headers.authorization, status });
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'rejected', debug: { method: req.method, headers: req.headers } }));
    });
  });
  await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
  targetUrl = `http://127.0.0.1:${(target.address() as AddressInfo).port}/api/sales-orders`;
});

afterAll(async () => {
  await worker?.stop();
  target?.closeAllConnections();
  await new Promise<void>((r) => (target ? target.close(() => r()) : r()));
  await nc?.close();
  await nats?.stop();
});

/** The Shopify example with its ERP sink at `targetUrl`, authenticated with a bearer token. */
function securedConfig() {
  const namespace = 'redact';
  const { flow, mapping } = shopifyFlow(namespace);
  const draft = flow.spec;
  draft.sinks = draft.sinks.filter((s) => s.type === 'http');
  const { rateLimit: _none, ...http } = draft.sinks[0]!.http!;
  draft.sinks[0]!.http = {
    ...http,
    url: targetUrl,
    auth: { type: 'bearer', tokenSecretRef: { name: 'erp-token', key: 'token' }, clientAuth: 'basic' },
  };
  draft.delivery = { ...draft.delivery, maxDeliver: 3, initialBackoff: '50ms', maxBackoff: '200ms' };
  const spec = integrationFlowSpecSchema.parse(draft);
  const { config, env } = renderWorkerConfig({
    namespace,
    name: flow.metadata.name,
    spec,
    mapping: { name: mapping.metadata.name, generation: 1, spec: mapping.spec },
    lookups: Object.fromEntries(
      mapping.spec.lookups.map((l) => [
        l.name,
        { values: l.inline!, ...(l.default !== undefined ? { default: l.default } : {}) },
      ]),
    ),
    natsServers: [nats.url],
  });
  expect(env.map((e) => e.name).sort()).toEqual([SECRET_ENV, TOKEN_ENV].sort());
  return config;
}

describe('credentials in error text', () => {
  it('never puts the bearer token a target echoes into the dead letter or the log', async () => {
    const config = securedConfig();
    await provision(jsm, config);
    const logs: string[] = [];
    worker = await runFlowWorker(config, {
      env: {
        [SECRET_ENV]: WEBHOOK_SECRET,
        [TOKEN_ENV]: TOKEN,
        TALLY_HTTP_HOST: '127.0.0.1',
        TALLY_HTTP_PORT: '0',
      },
      logger: pino({ level: 'trace' }, { write: (line: string) => void logs.push(line) }),
      graceMs: 5_000,
      processMetrics: false,
    });
    await waitFor('worker ready', () => worker!.ready(), { timeoutMs: 20_000 });

    const body = JSON.stringify(shopifyOrder(1));
    const res = await fetch(`http://127.0.0.1:${worker.port}/webhooks/shopify/orders`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-shopify-hmac-sha256': shopifySignature(body, WEBHOOK_SECRET),
        'x-shopify-topic': 'orders/create',
        'x-shopify-webhook-id': 'redact-1',
      },
      body,
    });
    expect(res.status).toBe(202);
    const dlq = config.nats.deadLetterStream;
    await waitFor('the dead letter', async () => (await jsm.streams.info(dlq)).state.messages === 1, {
      timeoutMs: 20_000,
    });

    // The target did get the token, and echoed it twice (503, then 400).
    expect(seen).toEqual([
      { authorization: `Bearer ${TOKEN}`, status: 503 },
      { authorization: `Bearer ${TOKEN}`, status: 400 },
    ]);
    const dead = (await jsm.streams.getMessage(dlq, { seq: 1 }))!;
    const message = dead.header.get(DLQ_HEADERS.errorMessage);
    expect(dead.header.get(DLQ_HEADERS.errorReason)).toBe('sink_rejected');
    // The answer is there, for the operator to read, with the credential masked.
    expect(message).toContain('answered 400: {"error":"rejected","debug":{"method":"POST","headers":{');
    expect(message).toContain('"authorization":"[redacted]"');
    expect(message).toContain('"idempotency-key":"Order:shopify-7000000001:');
    expect(message).not.toContain(TOKEN);
    for (const key of dead.header.keys()) expect(dead.header.get(key)).not.toContain(TOKEN);
    expect(Buffer.from(dead.data).toString('utf8')).not.toContain(TOKEN);

    // The log: the retry (503) and the dead letter (400), one reason each, no token anywhere. (The
    // line is written once the dead letter is stored and the message termed.)
    await waitFor('the dead-letter log line', () => logs.some((l) => l.includes('"msg":"dead-lettered"')));
    const lines = logs.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.filter((l) => l.msg === 'failed; retrying').map((l) => l.reason)).toEqual([
      'sink_unavailable',
    ]);
    const deadLine = lines.find((l) => l.msg === 'dead-lettered');
    expect(deadLine).toMatchObject({ reason: 'sink_rejected', err: message });
    expect(logs.join('\n')).not.toContain(TOKEN);
  });
});
