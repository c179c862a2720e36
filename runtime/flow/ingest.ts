// Putting a source payload on the flow stream: the dedupe id (Nats-Msg-Id) and the headers that
// travel with it. Pure helpers; the sources do the I/O.
import { createHash } from 'node:crypto';
import { DLQ_HEADERS } from './dead-letters/headers.ts';
import { headerValue, type SignatureScheme } from './sources/webhook-signature.ts';
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
  /**
   * The channel's own delivery id when the dedupe id (Nats-Msg-Id) is not it: the id the event is
   * known by (event id, logs, dead letters, replays), as for a replayed dead letter.
   */
  sourceMsgId: DLQ_HEADERS.sourceMsgId,
} as const;

/** A value that can be a Nats-Msg-Id (a header value): visible ASCII, at most 256 characters. */
export function usableId(value: string | undefined): string | undefined {
  const v = value?.trim();
  return v && /^[\x21-\x7e]{1,256}$/.test(v) ? v : undefined;
}

export function contentHashId(data: Uint8Array): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** The channel's delivery id header (X-Shopify-Webhook-Id, X-Request-Id), when usable. */
export function webhookDeliveryId(
  headers: Readonly<Record<string, string | string[] | undefined>>,
): string | undefined {
  for (const name of DELIVERY_ID_HEADERS) {
    const raw = headers[name];
    const id = usableId(Array.isArray(raw) ? raw[0] : raw);
    if (id) return id;
  }
  return undefined;
}

/** What a webhook request is stored under. */
export interface WebhookIds {
  /** Nats-Msg-Id: a repeat within the stream's duplicate window is stored once. */
  msgId: string;
  /** The channel's delivery id, for lineage (Tally-Source-Msg-Id) when it is not `msgId`. */
  deliveryId?: string;
}

/**
 * The dedupe id of a webhook request. Signed requests (shopify-hmac-sha256, hmac-sha256-hex) are
 * deduplicated by a digest of exactly what the signature covers — the raw body, and for
 * hmac-sha256-hex with a timestamp `${timestamp}.${body}` — because the delivery id header is not
 * signed: a captured request replayed with a new X-Shopify-Webhook-Id is the same stored message
 * within the stream's duplicate window (and validation keeps the timestamp tolerance within that
 * window). Unsigned requests (scheme none) keep the channel's delivery id, else a body digest.
 */
export function webhookIds(
  signature: { scheme: SignatureScheme; timestampHeader?: string | undefined },
  headers: Readonly<Record<string, string | string[] | undefined>>,
  body: Uint8Array,
): WebhookIds {
  const deliveryId = webhookDeliveryId(headers);
  if (signature.scheme === 'none') return { msgId: deliveryId ?? contentHashId(body) };
  const timestamp = signature.timestampHeader
    ? headerValue(headers, signature.timestampHeader)?.trim()
    : undefined;
  const msgId = timestamp !== undefined ? signedContentId(timestamp, body) : contentHashId(body);
  return deliveryId ? { msgId, deliveryId } : { msgId };
}

/** sha256 of `${timestamp}.${body}`, the bytes an hmac-sha256-hex signature with a timestamp covers. */
export function signedContentId(timestamp: string, body: Uint8Array): string {
  return `sha256:${createHash('sha256').update(`${timestamp}.`).update(body).digest('hex')}`;
}

/** The channel's delivery id when it sent one, else a hash of the raw body (unsigned requests). */
export function webhookMsgId(
  headers: Readonly<Record<string, string | string[] | undefined>>,
  body: Uint8Array,
): string {
  return webhookIds({ scheme: 'none' }, headers, body).msgId;
}

export function ingestHeaders(input: {
  source: 'webhook' | 'nats';
  trace: TraceContext;
  receivedAt: Date;
  kept?: Readonly<Record<string, string>>;
  /** The channel's delivery id, when the message is stored under another dedupe id. */
  sourceMsgId?: string;
}): Record<string, string> {
  return {
    ...input.kept,
    ...(input.sourceMsgId ? { [INGEST_HEADERS.sourceMsgId]: input.sourceMsgId } : {}),
    [INGEST_HEADERS.source]: input.source,
    [INGEST_HEADERS.receivedAt]: input.receivedAt.toISOString(),
    [INGEST_HEADERS.traceparent]: formatTraceparent(input.trace),
  };
}
