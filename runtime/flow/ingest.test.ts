import { describe, expect, it } from 'vitest';
import { contentHashId, ingestHeaders, usableId, webhookMsgId } from './ingest.ts';
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

describe('ingestHeaders', () => {
  it('carries source, receipt time, trace and kept channel headers', () => {
    const trace = parseTraceparent('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01')!;
    expect(
      ingestHeaders({
        source: 'webhook',
        trace,
        receivedAt: new Date('2026-01-01T00:00:00Z'),
        kept: { 'x-shopify-topic': 'orders/create' },
      }),
    ).toEqual({
      'x-shopify-topic': 'orders/create',
      'Tally-Source': 'webhook',
      'Tally-Received-At': '2026-01-01T00:00:00.000Z',
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    });
  });
});
