// Putting a source payload on the flow stream: the dedupe id (Nats-Msg-Id) and the headers that
// travel with it. Pure helpers; the sources do the I/O.
import { createHash } from 'node:crypto';
import { formatTraceparent, type TraceContext } from './trace.ts';

/** Headers a channel uses for its own delivery id, first match wins (Shopify, then the common one). */
export const DELIVERY_ID_HEADERS = ['x-shopify-webhook-id', 'x-request-id'] as const;

/** Channel headers worth keeping with the payload for lineage and replay (lowercase). */
export const KEPT_WEBHOOK_HEADERS = [
  'x-shopify-webhook-id',
  'x-shopify-topic',
  'x-shopify-shop-domain',
  'x-shopify-api-version',
  'x-shopify-triggered-at',
  'x-request-id',
] as const;

export const INGEST_HEADERS = {
  receivedAt: 'Tally-Received-At',
  source: 'Tally-Source',
  traceparent: 'traceparent',
} as const;

/** A value that can be a Nats-Msg-Id (a header value): visible ASCII, at most 256 characters. */
export function usableId(value: string | undefined): string | undefined {
  const v = value?.trim();
  return v && /^[\x21-\x7e]{1,256}$/.test(v) ? v : undefined;
}

export function contentHashId(data: Uint8Array): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** The channel's delivery id when it sent one, else a hash of the raw body. */
export function webhookMsgId(
  headers: Readonly<Record<string, string | string[] | undefined>>,
  body: Uint8Array,
): string {
  for (const name of DELIVERY_ID_HEADERS) {
    const raw = headers[name];
    const id = usableId(Array.isArray(raw) ? raw[0] : raw);
    if (id) return id;
  }
  return contentHashId(body);
}

export function ingestHeaders(input: {
  source: 'webhook' | 'nats';
  trace: TraceContext;
  receivedAt: Date;
  kept?: Readonly<Record<string, string>>;
}): Record<string, string> {
  return {
    ...input.kept,
    [INGEST_HEADERS.source]: input.source,
    [INGEST_HEADERS.receivedAt]: input.receivedAt.toISOString(),
    [INGEST_HEADERS.traceparent]: formatTraceparent(input.trace),
  };
}
