import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  contentHashId,
  ingestHeaders,
  signedContentId,
  usableId,
  webhookIds,
  webhookMsgId,
} from './ingest.ts';
import { parseTraceparent } from './trace.ts';

describe('webhookMsgId', () => {
  const body = Buffer.from('{"id":1}');
  it('uses the Shopify webhook id, else X-Request-Id, else a hash of the body', () => {
    expect(webhookMsgId({ 'x-shopify-webhook-id': 'wh-1', 'x-request-id': 'r-1' }, body)).toBe('wh-1');
    expect(webhookMsgId({ 'x-request-id': 'r-1' }, body)).toBe('r-1');
    expect(webhookMsgId({}, body)).toBe(contentHashId(body));
    expect(contentHashId(body)).toMatch(/^sha256:[0-9a-f]{64}$/);
  });
  it('ignores ids that cannot be a header value', () => {
    expect(usableId('a b')).toBeUndefined();
    expect(usableId('x'.repeat(257))).toBeUndefined();
    expect(webhookMsgId({ 'x-shopify-webhook-id': 'bad id' }, body)).toBe(contentHashId(body));
  });
});

describe('webhookIds', () => {
  const body = Buffer.from('{"id":1}');
  const shopify = { scheme: 'shopify-hmac-sha256' as const };
  it('deduplicates signed Shopify requests by the body, keeping the unsigned webhook id for lineage', () => {
    const first = webhookIds(shopify, { 'x-shopify-webhook-id': 'wh-1' }, body);
    expect(first).toEqual({ msgId: contentHashId(body), deliveryId: 'wh-1' });
    // A captured request replayed under a new webhook id is the same message.
    expect(webhookIds(shopify, { 'x-shopify-webhook-id': 'wh-forged' }, body).msgId).toBe(first.msgId);
    expect(webhookIds(shopify, {}, body)).toEqual({ msgId: contentHashId(body) });
    expect(webhookIds(shopify, {}, Buffer.from('{"id":2}')).msgId).not.toBe(first.msgId);
  });
  it('covers the signed timestamp too for hmac-sha256-hex with a timestampHeader', () => {
    const hex = { scheme: 'hmac-sha256-hex' as const, timestampHeader: 'X-Signature-Timestamp' };
    const ids = webhookIds(hex, { 'x-signature-timestamp': ' 1700000000 ', 'x-request-id': 'r-1' }, body);
    expect(ids).toEqual({ msgId: signedContentId('1700000000', body), deliveryId: 'r-1' });
    expect(signedContentId('1700000000', body)).toBe(
      `sha256:${createHash('sha256').update('1700000000.{"id":1}').digest('hex')}`,
    );
    // Re-signed later (a new timestamp): another request, not a replay.
    expect(webhookIds(hex, { 'x-signature-timestamp': '1700000001' }, body).msgId).not.toBe(ids.msgId);
    expect(webhookIds({ scheme: 'hmac-sha256-hex' }, { 'x-request-id': 'r-1' }, body).msgId).toBe(
      contentHashId(body),
    );
  });
  it('keeps the delivery id of unsigned requests (scheme none) as the dedupe id', () => {
    expect(webhookIds({ scheme: 'none' }, { 'x-request-id': 'r-1' }, body)).toEqual({ msgId: 'r-1' });
    expect(webhookIds({ scheme: 'none' }, {}, body)).toEqual({ msgId: contentHashId(body) });
  });
});

describe('ingestHeaders', () => {
  it('carries source, receipt time, trace and kept channel headers', () => {
    const trace = parseTraceparent('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01')!;
    expect(
      ingestHeaders({
        source: 'webhook',
        trace,
        receivedAt: new Date('2026-01-01T00:00:00Z'),
        kept: { 'x-shopify-topic': 'orders/create' },
        sourceMsgId: 'wh-1',
      }),
    ).toEqual({
      'x-shopify-topic': 'orders/create',
      'Tally-Source-Msg-Id': 'wh-1',
      'Tally-Source': 'webhook',
      'Tally-Received-At': '2026-01-01T00:00:00.000Z',
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    });
  });
});
