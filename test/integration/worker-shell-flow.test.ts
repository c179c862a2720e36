// The flow worker in the worker shell (runtime/worker) on a real nats-server, with the logger
// `tally run` gives it: one order through, then a stop, and every line names the flow and channel
// exactly once.
import { type JetStreamManager, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runFlowWorker } from '../../runtime/flow/worker.ts';
import { createLogger } from '../../runtime/telemetry/logger.ts';
import { type NatsServerHandle, startNatsServer } from '../harness/nats.ts';
import { provision } from './support/flow-delivery.ts';
import {
  ErpPeer,
  SECRET_ENV,
  shopifyOrder,
  shopifySignature,
  shopifyWorkerConfig,
  waitFor,
} from './support/flow-worker.ts';

const SECRET = 'worker-shell-secret';

let nats: NatsServerHandle;
let nc: NatsConnection;
let jsm: JetStreamManager;
let erp: ErpPeer;

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  jsm = await jetstreamManager(nc);
  // The example's own NATS sink subject.
  await jsm.streams.add({ name: 'SHELL_CANONICAL', subjects: ['tally.canonical.>'] });
  erp = new ErpPeer();
  await erp.start();
});
afterAll(async () => {
  await erp?.stop();
  await nc?.close();
  await nats?.stop();
});

/** `"key":` occurrences in a raw line: a key bound twice is written twice, which JSON.parse hides. */
const occurrences = (line: string, key: string) => line.split(`"${key}":`).length - 1;

describe('flow worker in the worker shell', () => {
  it("writes flow and channel once on every line when the caller's logger already has them", async () => {
    const config = shopifyWorkerConfig({ namespace: 'logkeys', natsUrl: nats.url, erpUrl: erp.url });
    await provision(jsm, config);
    const lines: string[] = [];
    // As cli/standalone.ts makes it for each flow of `tally run`.
    const logger = createLogger({
      flow: `${config.flow.namespace}/${config.flow.name}`,
      channel: config.flow.channel,
      level: 'debug',
      destination: { write: (l: string) => void lines.push(l) },
    });
    const worker = await runFlowWorker(config, {
      logger,
      env: { [SECRET_ENV]: SECRET, TALLY_HTTP_HOST: '127.0.0.1', TALLY_HTTP_PORT: '0' },
      processMetrics: false,
      graceMs: 2_000,
    });
    try {
      await waitFor('worker ready', () => worker.ready());
      const body = JSON.stringify(shopifyOrder(1));
      const res = await fetch(`http://127.0.0.1:${worker.port}/webhooks/shopify/orders`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-shopify-hmac-sha256': shopifySignature(body, SECRET),
          'x-shopify-topic': 'orders/create',
          'x-shopify-webhook-id': 'logkeys-1',
        },
        body,
      });
      expect(res.status).toBe(202);
      await waitFor('ERP delivery', () => erp.requests.length === 1);
    } finally {
      await worker.stop();
    }
    const messages = lines.map((l) => JSON.parse(l).msg);
    expect(messages).toEqual(expect.arrayContaining(['flow worker started', 'stopped']));
    for (const line of lines) {
      expect({ line, flow: occurrences(line, 'flow'), channel: occurrences(line, 'channel') }).toEqual({
        line,
        flow: 1,
        channel: 1,
      });
    }
  });
});
