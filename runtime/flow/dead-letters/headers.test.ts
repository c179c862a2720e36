import { describe, expect, it } from 'vitest';
import { DLQ_HEADERS, deadLetterHeaders, deadLetterMsgId, singleLine } from './headers.ts';

describe('deadLetterHeaders', () => {
  const input = {
    original: { 'Nats-Msg-Id': 'wh-1', traceparent: '00-aa-bb-01', 'x-shopify-topic': 'orders/create' },
    error: {
      name: 'CanonicalValidationError',
      code: 'CANONICAL_INVALID',
      message: 'line one\nline two',
      reason: 'mapping_validation',
    },
    attempts: 1,
    firstReceived: new Date('2026-11-20T16:15:00Z'),
    now: new Date('2026-11-20T16:15:01Z'),
    flow: 'shop/shopify-orders',
    sourceMsgId: 'wh-1',
  };

  it('keeps the original headers except JetStream ones and adds the error record', () => {
    const h = deadLetterHeaders(input);
    expect(h).toEqual({
      traceparent: '00-aa-bb-01',
      'x-shopify-topic': 'orders/create',
      [DLQ_HEADERS.errorClass]: 'CanonicalValidationError',
      [DLQ_HEADERS.errorCode]: 'CANONICAL_INVALID',
      [DLQ_HEADERS.errorMessage]: 'line one line two',
      [DLQ_HEADERS.errorReason]: 'mapping_validation',
      [DLQ_HEADERS.attempts]: '1',
      [DLQ_HEADERS.firstReceived]: '2026-11-20T16:15:00.000Z',
      [DLQ_HEADERS.deadLetteredAt]: '2026-11-20T16:15:01.000Z',
      [DLQ_HEADERS.flow]: 'shop/shopify-orders',
      [DLQ_HEADERS.sourceMsgId]: 'wh-1',
    });
    expect(deadLetterMsgId('wh-1')).toBe('dlq:wh-1');
  });

  it('truncates the message to 1 KiB on one line', () => {
    const h = deadLetterHeaders({ ...input, error: { ...input.error, message: `é${'x\r\n'.repeat(2000)}` } });
    const msg = h[DLQ_HEADERS.errorMessage]!;
    expect(Buffer.byteLength(msg)).toBeLessThanOrEqual(1024);
    expect(msg).not.toMatch(/[\r\n]/);
    expect(msg.endsWith('...')).toBe(true);
  });
});

describe('singleLine', () => {
  it('collapses line breaks and cuts on a character boundary', () => {
    expect(singleLine('a\n\nb\tc')).toBe('a b c');
    const cut = singleLine('€'.repeat(10), 10);
    expect(cut).toBe('€€...');
  });
});
