import { describe, expect, it } from 'vitest';
import type { DeadLetter } from '../../runtime/flow/dead-letters/record.ts';
import {
  decodePayload,
  formatListTable,
  formatReplayTable,
  formatShowText,
  isoSeconds,
  printable,
  showJson,
  summaryJson,
  truncate,
} from './format.ts';
import { plainStep } from './progress.ts';

const d: DeadLetter = {
  seq: 12,
  storedAt: new Date('2026-11-26T11:00:01.234Z'),
  flow: 'shop/shopify-orders',
  reason: 'mapping_validation',
  errorClass: 'CanonicalValidationError',
  errorCode: 'CANONICAL_INVALID',
  message: `the output is not a valid Order: ${'x'.repeat(200)}`,
  attempts: 1,
  firstReceived: new Date('2026-11-26T11:00:00Z'),
  sourceMsgId: 'wh-1',
  subject: 'tally.shop.shopify-orders.dlq',
  headers: { 'Tally-Error-Reason': 'mapping_validation', 'x-evil': 'a\u001b[2Jb' },
  data: Buffer.from(JSON.stringify({ id: 1, name: '#1001' })),
};

describe('formatting', () => {
  it('escapes control characters and bidi overrides', () => {
    expect(printable('a\u001b[31mb\u202ec\nd')).toBe('a\\u001b[31mb\\u202ec\\u000ad');
    expect(printable('a\nb\tc', true)).toBe('a\nb\tc');
  });

  it('truncates on characters with an ellipsis', () => {
    expect(truncate('abcdef', 4)).toBe('abc…');
    expect(truncate('abc', 4)).toBe('abc');
    expect(truncate('€€€€€', 3)).toBe('€€…');
  });

  it('lists one aligned line per dead letter with a cut message', () => {
    const out = formatListTable([d, { ...d, seq: 3, attempts: undefined, reason: '' }]);
    const lines = out.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^SEQ +DEAD-LETTERED +ATTEMPTS +REASON +ERROR CLASS +SOURCE MSG ID +MESSAGE$/);
    expect(lines[1]).toMatch(
      /^12 +2026-11-26T11:00:01Z +1 +mapping_validation +CanonicalValidationError +wh-1 +the output/,
    );
    expect(lines[1]!.endsWith('…')).toBe(true);
    expect(lines[2]).toMatch(/^3 +2026-11-26T11:00:01Z +- +- +Canonical/);
    expect(lines[1]!.indexOf('wh-1')).toBe(lines[0]!.indexOf('SOURCE MSG ID'));
    expect(isoSeconds(undefined)).toBe('-');
  });

  it('shows headers (escaped) and the payload pretty-printed', () => {
    const out = formatShowText(d, 'tally_dlq_shop_shopify-orders');
    expect(out).toContain(
      'Dead letter 12 in tally_dlq_shop_shopify-orders (subject tally.shop.shopify-orders.dlq)',
    );
    expect(out).toContain('Reason:          mapping_validation');
    expect(out).toContain('Error class:     CanonicalValidationError (CANONICAL_INVALID)');
    expect(out).toContain('  x-evil: a\\u001b[2Jb');
    expect(out).not.toContain('\u001b');
    expect(out).toContain('Payload (23 bytes, JSON):\n{\n  "id": 1,\n  "name": "#1001"\n}\n');
  });

  it('decodes payloads as JSON, text or base64', () => {
    expect(decodePayload(Buffer.from('{"a":1}'))).toEqual({ encoding: 'json', value: { a: 1 } });
    expect(decodePayload(Buffer.from('not json'))).toEqual({ encoding: 'utf8', value: 'not json' });
    expect(decodePayload(Uint8Array.from([0xff, 0xfe]))).toEqual({ encoding: 'base64', value: '//4=' });
    expect(formatShowText({ ...d, data: Buffer.from('a\u001bb\nc') }, 'S')).toContain(
      'text, not JSON):\na\\u001bb\nc',
    );
  });

  it('gives JSON with ISO times and the decoded payload', () => {
    expect(summaryJson(d)).toMatchObject({
      seq: 12,
      deadLetteredAt: '2026-11-26T11:00:01.234Z',
      attempts: 1,
    });
    expect(summaryJson({ ...d, attempts: undefined, firstReceived: undefined })).toMatchObject({
      attempts: null,
      firstReceived: null,
    });
    expect(showJson(d, 'S')).toMatchObject({
      stream: 'S',
      payloadEncoding: 'json',
      payload: { id: 1, name: '#1001' },
    });
  });

  it('tabulates replay results', () => {
    const out = formatReplayTable([
      { seq: 1, sourceMsgId: 'a', reason: 'r', result: 'replayed', replaySeq: 9, purged: true },
      { seq: 2, sourceMsgId: 'b', reason: 'r', result: 'failed', error: 'timeout' },
    ]);
    expect(out).toMatch(/^1 +a +r +replayed +9 +yes$/m);
    expect(out).toMatch(/^2 +b +r +failed: timeout +- +-$/m);
  });

  it('prints plain progress lines about every 10 %', () => {
    expect(plainStep(5)).toBe(1);
    expect(plainStep(100)).toBe(10);
    expect(plainStep(101)).toBe(11);
  });
});
