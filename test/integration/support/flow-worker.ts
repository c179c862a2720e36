// Fixtures for flow-worker integration tests: the Shopify example as a WorkerConfig (rendered from
// examples/shopify-orders by the operator's own renderer), signed webhook requests, a recording ERP
// peer on loopback, bounded waits.
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import * as yaml from 'js-yaml';
import { type CanonicalMappingSpec, canonicalMappingSchema } from '../../../api/canonical-mapping.ts';
import {
  type IntegrationFlowSpec,
  integrationFlowSchema,
  integrationFlowSpecSchema,
} from '../../../api/integration-flow.ts';
import type { WorkerConfig } from '../../../api/worker-config.ts';
import { renderWorkerConfig } from '../../../operator/render/worker-config.ts';
import { repoPath } from '../../harness/tools.ts';

/** The variable the render names for the webhook signing secret (a secretKeyRef in a cluster). */
export const SECRET_ENV = 'TALLY_WEBHOOK_SECRET';

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
  /** The ERP sink's URL (the example's points into a cluster). */
  erpUrl: string;
  maxBodyBytes?: number;
  /** Over the example's spec.delivery. */
  delivery?: Partial<IntegrationFlowSpec['delivery']>;
  /** The mapping's metadata.generation, which the events carry as tallymappingversion; default 1. */
  mappingGeneration?: number;
  /** Changes of the flow spec before it is rendered (source, sinks); the result is validated again. */
  edit?: (spec: IntegrationFlowSpec) => void;
  /** Changes of the mapping spec before it is rendered (e.g. a bug in the expression). */
  editMapping?: (spec: CanonicalMappingSpec) => void;
}

/**
 * The WorkerConfig of examples/shopify-orders as the operator renders it (renderWorkerConfig: the
 * flow's sinks plus the namespace's canonical sink, the secret as a variable), pointed at loopback peers.
 */
export function shopifyWorkerConfig(o: ShopifyConfigOptions): WorkerConfig {
  const namespace = o.namespace ?? 'itest';
  const { flow, mapping } = shopifyFlow(namespace);
  const draft = flow.spec;
  const erp = draft.sinks.find((s) => s.type === 'http');
  if (!erp?.http) throw new Error('examples/shopify-orders/flow.yaml has no HTTP sink');
  erp.http.url = o.erpUrl;
  if (o.maxBodyBytes !== undefined) draft.source.webhook!.maxBodyBytes = o.maxBodyBytes;
  draft.delivery = { ...draft.delivery, ...o.delivery };
  o.edit?.(draft);
  // Edited specs pass the same schema (and its cross-field rules) the apiserver would apply.
  const spec = integrationFlowSpecSchema.parse(draft);
  o.editMapping?.(mapping.spec);
  const { config, env } = renderWorkerConfig({
    namespace,
    name: flow.metadata.name,
    spec,
    mapping: { name: mapping.metadata.name, generation: o.mappingGeneration ?? 1, spec: mapping.spec },
    // The example's lookup tables are all inline (a ConfigMap table would be read from the API).
    lookups: Object.fromEntries(
      mapping.spec.lookups.map((l) => {
        if (!l.inline) throw new Error(`lookup table ${l.name} is not inline`);
        return [l.name, { values: l.inline, ...(l.default !== undefined ? { default: l.default } : {}) }];
      }),
    ),
    natsServers: [o.natsUrl],
  });
  const unexpected = env.map((e) => e.name).filter((n) => n !== SECRET_ENV);
  if (unexpected.length > 0)
    throw new Error(`the render asks for other secrets too: ${unexpected.join(', ')}`);
  return config;
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
