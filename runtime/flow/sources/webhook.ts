// Webhook source: verify the signature on the raw body, then put the payload on the flow stream.
// Signed requests are deduplicated (Nats-Msg-Id) by a digest of what the signature covers, not by
// the channel's delivery id, which is not signed: a captured webhook replayed with a new
// X-Shopify-Webhook-Id within the duplicate window is stored once (ingest.ts webhookIds). The
// delivery id travels as Tally-Source-Msg-Id, the id the event is known by. 202 only once
// JetStream has it; 503 while NATS is unreachable so the channel retries; 401/400/413 publish nothing.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FlowWorkerConfig } from '../../../api/worker-config.ts';
import type { BusWriter } from '../../bus/types.ts';
import { BodyError, BodyErrorCode, readBody } from '../../http/body.ts';
import { sendJson } from '../../http/server.ts';
import type { Logger } from '../../telemetry/logger.ts';
import type { FlowMetrics } from '../../telemetry/metrics.ts';
import { ingestHeaders, KEPT_WEBHOOK_HEADERS, webhookIds } from '../ingest.ts';
import type { IngestRouter } from '../partition.ts';
import { traceFromHeader } from '../trace.ts';
import { verifySignature } from './webhook-signature.ts';

export type WebhookSourceConfig = Extract<FlowWorkerConfig['source'], { type: 'webhook' }>;

export interface WebhookDeps {
  source: WebhookSourceConfig;
  /** The shared signing secret (undefined only for scheme none). */
  secret: string | undefined;
  bus: () => (BusWriter & { connected(): boolean }) | undefined;
  /** The flow-stream subject (partition) of each payload. */
  route: IngestRouter;
  metrics: FlowMetrics;
  logger: Logger;
  /** False while stopping: new requests get 503. */
  accepting: () => boolean;
  now?: () => number;
}

const RETRY_AFTER_S = '5';

export function createWebhookHandler(deps: WebhookDeps) {
  const { source, metrics, logger } = deps;
  const now = deps.now ?? Date.now;

  const reply = (
    res: ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ) => {
    metrics.webhook(status);
    sendJson(res, status, body, headers);
  };

  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method !== 'POST') {
      return reply(res, 405, { error: `use POST on ${source.path}` }, { allow: 'POST' });
    }
    if (!deps.accepting()) {
      return reply(
        res,
        503,
        { error: 'worker is shutting down; retry' },
        { 'retry-after': RETRY_AFTER_S, connection: 'close' },
      );
    }
    let body: Buffer;
    try {
      body = await readBody(req, source.maxBodyBytes);
    } catch (err) {
      if (err instanceof BodyError && err.code === BodyErrorCode.TooLarge) {
        logger.warn({ limit: source.maxBodyBytes }, 'webhook body too large; rejected');
        // Close the connection rather than read (and discard) the rest of the body.
        return reply(res, 413, { error: err.message }, { connection: 'close' });
      }
      logger.warn({ err }, 'webhook body unreadable');
      return reply(res, 400, { error: (err as Error).message }, { connection: 'close' });
    }

    const verdict = verifySignature(source.signature, {
      rawBody: body,
      headers: req.headers,
      secret: deps.secret,
      nowMs: now(),
    });
    if (!verdict.ok) {
      logger.warn({ reason: verdict.reason }, `webhook rejected: ${verdict.message}`);
      return reply(res, 401, { error: verdict.message });
    }

    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch (err) {
      return reply(res, 400, { error: `body is not valid JSON: ${(err as Error).message}` });
    }

    const bus = deps.bus();
    if (!bus?.connected()) {
      return reply(res, 503, { error: 'message bus unavailable; retry' }, { 'retry-after': RETRY_AFTER_S });
    }

    const { msgId, deliveryId } = webhookIds(source.signature, req.headers, body);
    /** The id the event is known by: the channel's delivery id, else the dedupe id. */
    const sourceMsgId = deliveryId ?? msgId;
    const incoming = req.headers.traceparent;
    const trace = traceFromHeader(Array.isArray(incoming) ? incoming[0] : incoming);
    const kept: Record<string, string> = {};
    for (const name of KEPT_WEBHOOK_HEADERS) {
      const v = req.headers[name];
      const value = Array.isArray(v) ? v[0] : v;
      if (value && !/[\r\n]/.test(value)) kept[name] = value.slice(0, 1024);
    }
    const log = logger.child({ sourceMsgId, traceId: trace.traceId });
    try {
      const { subject } = await deps.route(body, parsed);
      const ack = await bus.publish(subject, body, {
        msgId,
        headers: ingestHeaders({
          source: 'webhook',
          trace,
          receivedAt: new Date(now()),
          kept,
          ...(deliveryId ? { sourceMsgId: deliveryId } : {}),
        }),
      });
      metrics.received('webhook', ack.duplicate);
      log.debug({ seq: ack.seq, msgId, duplicate: ack.duplicate }, 'webhook accepted');
      return reply(res, 202, { id: sourceMsgId, duplicate: ack.duplicate });
    } catch (err) {
      log.error({ err }, 'webhook could not be stored; answering 503 so the channel retries');
      return reply(res, 503, { error: 'message bus unavailable; retry' }, { 'retry-after': RETRY_AFTER_S });
    }
  };
}
