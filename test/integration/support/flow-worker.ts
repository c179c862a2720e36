// Fixtures for flow-worker integration tests: the Shopify example as a WorkerConfig (built the way
// the operator renders it), signed webhook requests, a recording ERP peer on loopback, bounded waits.
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import * as yaml from 'js-yaml';
import { canonicalMappingSchema } from '../../../api/canonical-mapping.ts';
import { durationMs } from '../../../api/common.ts';
import { integrationFlowSchema } from '../../../api/integration-flow.ts';
import { parseWorkerConfig, type WorkerConfig } from '../../../api/worker-config.ts';
import { flowNames } from '../../../runtime/nats/flow-resources.ts';
import { repoPath } from '../../harness/tools.ts';

export const SECRET_ENV = 'SHOPIFY_WEBHOOK_SECRET';

export function loadExample(file: string): unknown {
  return yaml.load(readFileSync(repoPath(`examples/shopify-orders/${file}`), 'utf8'));
}

export function shopifyFlow(namespace: string) {
  const flow = integrationFlowSchema.parse({
    ...(loadExample('flow.yaml') as object),
    metadata: { ...(loadExample('flow.yaml') as { metadata: object }).metadata, namespace },
  });
  const mapping = canonicalMappingSchema.parse(loadExample('mapping.yaml'));
  return { flow, mapping };
}

export interface ShopifyConfigOptions {
  namespace?: string;
  natsUrl: string;
  erpUrl: string;
  maxBodyBytes?: number;
  delivery?: Partial<WorkerConfig['delivery']>;
}

/** The WorkerConfig for examples/shopify-orders, pointed at loopback peers. */
export function shopifyWorkerConfig(o: ShopifyConfigOptions): WorkerConfig {
  const namespace = o.namespace ?? 'itest';
  const { flow, mapping } = shopifyFlow(namespace);
  const spec = flow.spec;
  const names = flowNames({ namespace, name: flow.metadata.name });
  const webhook = spec.source.webhook!;
  return parseWorkerConfig({
    apiVersion: 'tally.dev/v1alpha1',
    kind: 'WorkerConfig',
    role: 'flow',
    flow: { namespace, name: flow.metadata.name, channel: spec.channel, entity: spec.entity },
    nats: {
      servers: [o.natsUrl],
      stream: names.stream,
      ingestSubject: names.ingestSubject(0),
      consumer: names.consumer,
      deadLetterSubject: names.deadLetterSubject,
      deadLetterStream: names.deadLetterStream,
      stateBucket: names.stateBucket,
    },
    source: {
      type: 'webhook',
      path: webhook.path,
      maxBodyBytes: o.maxBodyBytes ?? webhook.maxBodyBytes,
      signature: {
        scheme: webhook.signature.scheme,
        header: webhook.signature.header ?? 'X-Shopify-Hmac-Sha256',
        secret: { env: SECRET_ENV },
        toleranceMs: durationMs(webhook.signature.tolerance),
      },
    },
    mapping: {
      name: `${namespace}/${mapping.metadata.name}`,
      generation: 3,
      entity: mapping.spec.entity,
      expression: mapping.spec.expression,
      businessKey: mapping.spec.businessKey,
      lookups: Object.fromEntries(
        mapping.spec.lookups.map((l) => [
          l.name,
          { values: l.inline ?? {}, ...(l.default !== undefined ? { default: l.default } : {}) },
        ]),
      ),
      limits: mapping.spec.limits,
    },
    sinks: spec.sinks.map((s) =>
      s.type === 'http'
        ? {
            name: s.name,
            type: 'http',
            url: o.erpUrl,
            method: s.http!.method,
            headers: s.http!.headers ?? {},
            idempotencyKeyHeader: s.http!.idempotencyKeyHeader,
            timeoutMs: durationMs(s.http!.timeout),
            maxInFlight: s.http!.maxInFlight,
            ...(s.http!.rateLimit
              ? {
                  rateLimit: {
                    requestsPerSecond: s.http!.rateLimit.requestsPerSecond,
                    burst: s.http!.rateLimit.burst ?? s.http!.rateLimit.requestsPerSecond,
                  },
                }
              : {}),
          }
        : { name: s.name, type: 'nats', subject: s.nats!.subject },
    ),
    delivery: { ...spec.delivery, ...o.delivery },
    stream: spec.stream,
    http: { port: 8080 },
  });
}

/** A Shopify order payload; `n` makes id, name and totals distinct. */
export function shopifyOrder(n: number, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const base = (loadExample('mapping.yaml') as { spec: { tests: { input: Record<string, unknown> }[] } }).spec
    .tests[0]!.input;
  return { ...base, id: 7_000_000_000 + n, name: `#${2000 + n}`, ...overrides };
}

export function shopifySignature(body: string | Buffer, secret: string): string {
  return createHmac('sha256', secret).update(body).digest('base64');
}

export interface ErpRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
  status: number;
}

/** A loopback ERP: records every request, stores each Idempotency-Key once, fails as scripted. */
export class ErpPeer {
  readonly requests: ErpRequest[] = [];
  /** Idempotency key -> the stored body (first successful request). */
  readonly stored = new Map<string, unknown>();
  /** Idempotency key -> statuses to answer before accepting (e.g. [500, 500]). */
  readonly script = new Map<string, number[]>();
  /** Delay before answering each request (a slow ERP). */
  delayMs = 0;
  #server: Server | undefined;
  url = '';

  async start(): Promise<void> {
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', async () => {
        if (this.delayMs > 0) await sleep(this.delayMs);
        const body = Buffer.concat(chunks).toString('utf8');
        const key = String(req.headers['idempotency-key'] ?? '');
        const planned = this.script.get(key)?.shift();
        let status: number;
        if (planned !== undefined) status = planned;
        else if (this.stored.has(key)) status = 200;
        else {
          this.stored.set(key, JSON.parse(body));
          status = 201;
        }
        this.requests.push({
          method: req.method ?? '',
          url: req.url ?? '',
          headers: req.headers,
          body,
          status,
        });
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ status }));
      });
    });
    await new Promise<void>((resolve) => this.#server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/api/sales-orders`;
  }

  async stop(): Promise<void> {
    if (!this.#server) return;
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server!.close(() => resolve()));
  }
}

/** Polls until `check` returns a value other than undefined/false, or fails after timeoutMs. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  { timeoutMs = 10_000, intervalMs = 50 } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    await sleep(intervalMs);
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`,
  );
}

/** Value of one sample in a Prometheus text exposition, 0 when absent. */
export function sample(metricsText: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of metricsText.split('\n')) {
    if (line.startsWith('#') || !line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (.+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries(
      [...(m[3] ?? '').matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]),
    );
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[4]);
  }
  return 0;
}
