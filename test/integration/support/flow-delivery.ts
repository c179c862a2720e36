// Fixtures for the delivery and chaos tests: an idempotent order sink on loopback that records
// what it applied (per idempotency key, in order) and can be scripted to fail, throttle or hold;
// flow configs rendered from the Shopify example; and ways to put orders on a flow.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/transport-node';
import { pino } from 'pino';
import type { IntegrationFlowSpec } from '../../../api/integration-flow.ts';
import type { WorkerConfig } from '../../../api/worker-config.ts';
import { ensureFlowNats, ensureNamespaceStreams } from '../../../operator/nats/provisioner.ts';
import { INGEST_HEADERS } from '../../../runtime/flow/ingest.ts';
import { createIngestRouter } from '../../../runtime/flow/partition.ts';
import { flowNames, isOrdered, partitionCount } from '../../../runtime/nats/flow-resources.ts';
import { shopifyOrder, shopifyWorkerConfig } from './flow-worker.ts';

export interface SinkRequest {
  /** Idempotency-Key header. */
  key: string;
  /** The business key (CloudEvent subject). */
  orderId: string;
  /** tallyversion of the event. */
  version: string;
  /** The event id: the same for every delivery of one source message. */
  eventId: string;
  status: number;
  /** Date.now() when the request arrived (before any scripted delay). */
  at: number;
}

/** What the sink answers instead of applying the event; undefined applies it. */
export type SinkScript = (
  req: Omit<SinkRequest, 'status'>,
  n: number,
) => { status: number; headers?: Record<string, string> } | undefined;

/**
 * An idempotent order sink (like an ERP order API): the first request with an Idempotency-Key is
 * applied and answered 201, repeats 200. `applied` counts applications per key, so a duplicate
 * would show as 2 — whatever the number of requests; `appliedVersions` keeps per order the
 * versions in the order they were applied.
 */
export class OrderSink {
  readonly requests: SinkRequest[] = [];
  readonly applied = new Map<string, number>();
  readonly appliedVersions = new Map<string, string[]>();
  script: SinkScript | undefined;
  /** Extra time before each answer. */
  delayMs: () => number = () => 0;
  #held: Promise<void> | undefined;
  #release: (() => void) | undefined;
  /** Requests waiting in hold(). */
  holding = 0;
  #server: Server | undefined;
  url = '';

  /** Keeps every request waiting until release(): a sink that stopped answering. */
  hold(): void {
    this.#held ??= new Promise((resolve) => {
      this.#release = resolve;
    });
  }

  release(): void {
    this.#release?.();
    this.#held = undefined;
    this.#release = undefined;
  }

  count(status: number): number {
    return this.requests.filter((r) => r.status === status).length;
  }

  async start(): Promise<void> {
    this.#server = createServer((req, res) => void this.#handle(req, res));
    this.#server.keepAliveTimeout = 30_000;
    await new Promise<void>((resolve) => this.#server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/api/sales-orders`;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const at = Date.now();
    const event = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
      id: string;
      subject: string;
      tallyversion: string;
    };
    const seen = {
      key: String(req.headers['idempotency-key'] ?? ''),
      orderId: event.subject,
      version: event.tallyversion,
      eventId: event.id,
      at,
    };
    if (this.#held) {
      this.holding++;
      await this.#held;
      this.holding--;
    }
    const delay = this.delayMs();
    if (delay > 0) await sleep(delay);
    const scripted = this.script?.(seen, this.requests.length + 1);
    let status: number;
    if (scripted) status = scripted.status;
    else if (this.applied.has(seen.key)) status = 200;
    else {
      this.applied.set(seen.key, (this.applied.get(seen.key) ?? 0) + 1);
      const versions = this.appliedVersions.get(seen.orderId) ?? [];
      versions.push(seen.version);
      this.appliedVersions.set(seen.orderId, versions);
      status = 201;
    }
    this.requests.push({ ...seen, status });
    res.writeHead(status, { 'content-type': 'application/json', ...scripted?.headers });
    res.end(JSON.stringify({ status }));
  }

  async stop(): Promise<void> {
    this.release();
    if (!this.#server) return;
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server!.close(() => resolve()));
  }
}

export interface DeliveryFlowOptions {
  namespace: string;
  natsUrl: string;
  sinkUrl: string;
  /** Delivery settings over fast test defaults. */
  delivery?: Partial<IntegrationFlowSpec['delivery']>;
  /** Edits of the HTTP sink's spec (maxInFlight, circuitBreaker, timeout...). */
  http?: Partial<HttpSinkSpec>;
  /** A NATS source on this subject instead of the webhook. */
  natsSource?: string;
}

type HttpSinkSpec = NonNullable<IntegrationFlowSpec['sinks'][number]['http']>;

export const FAST = { initialBackoff: '50ms', maxBackoff: '1s', ackWait: '5s' } as const;

/**
 * The Shopify example flow pointed at loopback peers, with the given delivery settings, rendered as
 * the operator renders it: the ERP sink (no rate limit) and the namespace's canonical sink, which
 * the render adds to every flow (the example's own NATS sink is left out of the spec).
 */
export function deliveryFlowConfig(o: DeliveryFlowOptions): WorkerConfig {
  return shopifyWorkerConfig({
    namespace: o.namespace,
    natsUrl: o.natsUrl,
    erpUrl: o.sinkUrl,
    delivery: { ...FAST, ...o.delivery },
    edit: (spec) => {
      if (o.natsSource) spec.source = { type: 'nats', nats: { subject: o.natsSource } };
      spec.sinks = spec.sinks.filter((s) => s.type === 'http');
      const { rateLimit: _unlimited, ...http } = spec.sinks[0]!.http!;
      spec.sinks[0]!.http = { ...http, ...o.http };
    },
  });
}

/**
 * Creates what the operator's flow reconcile creates, with its own provisioner: the namespace's
 * streams (the canonical one the render's canonical sink publishes to) and the flow's streams and
 * consumers.
 */
export async function provision(jsm: JetStreamManager, config: WorkerConfig) {
  await ensureNamespaceStreams(jsm, config.flow.namespace);
  return ensureFlowNats(
    jsm,
    { namespace: config.flow.namespace, name: config.flow.name },
    { stream: config.stream, delivery: config.delivery },
  );
}

/** Order `n` at version `v` (updated_at moves on by v seconds, so tallyversion grows with v). */
export function orderVersion(n: number, v: number, overrides: Record<string, unknown> = {}) {
  const updated = new Date(Date.parse('2026-11-20T16:15:02Z') + v * 1000).toISOString();
  return shopifyOrder(n, { updated_at: updated, ...overrides });
}

export const orderIdOf = (n: number) => `shopify-${7_000_000_000 + n}`;

/**
 * Publishes payloads onto the flow stream as a source does: the partition the worker's router
 * picks, the Nats-Msg-Id, the ingest headers. Retries each publish (NATS may be restarting).
 */
export function streamPublisher(js: JetStreamClient, config: WorkerConfig) {
  const names = flowNames(config.flow);
  const ordered = isOrdered(config.delivery);
  const route = createIngestRouter({
    partitionKey: config.delivery.partitionKey,
    partitions: partitionCount(config.delivery),
    subject: (p) => (ordered ? names.ingestSubject(p) : config.nats.ingestSubject),
    logger: pino({ level: 'silent' }),
  });
  return async (payload: unknown, msgId: string, { deadline = Date.now() + 60_000 } = {}) => {
    const data = Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload));
    const { subject } = await route(data);
    for (let attempt = 1; ; attempt++) {
      const h = natsHeaders();
      h.set(INGEST_HEADERS.source, 'nats');
      h.set(INGEST_HEADERS.receivedAt, new Date().toISOString());
      try {
        return await js.publish(subject, data, { msgID: msgId, headers: h, timeout: 2_000 });
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await sleep(Math.min(50 * attempt, 500));
      }
    }
  };
}

/** Every message of a stream (by sequence), bounded. */
export async function streamMessages(jsm: JetStreamManager, stream: string, max = 10_000) {
  const info = await jsm.streams.info(stream);
  const out = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && out.length < max; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq }).catch(() => undefined);
    if (m) out.push(m);
  }
  return out;
}
