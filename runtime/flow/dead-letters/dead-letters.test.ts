import { describe, expect, it } from 'vitest';
import type { BusMessage } from '../../bus/types.ts';
import { eventId } from '../envelope.ts';
import { sourceMsgIdOf } from '../processor.ts';
import { matchesFilter, parseDurationMs, parseTimeBound } from './filter.ts';
import { DLQ_HEADERS, deadLetterHeaders } from './headers.ts';
import { header, originalSourceMsgId, summarize } from './record.ts';
import { REPLAY_HEADERS, replayHeaders, replayMsgId } from './replay.ts';

const now = new Date('2026-11-26T12:00:00Z');
const dlqHeaders = deadLetterHeaders({
  original: {
    'Nats-Msg-Id': 'wh-1',
    traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    'x-shopify-topic': 'orders/create',
    'Tally-Source': 'webhook',
    'Tally-Received-At': '2026-11-26T11:00:00.000Z',
  },
  error: {
    name: 'CanonicalValidationError',
    code: 'CANONICAL_INVALID',
    message: 'bad',
    reason: 'mapping_validation',
  },
  attempts: 1,
  firstReceived: new Date('2026-11-26T11:00:00Z'),
  now: new Date('2026-11-26T11:00:01Z'),
  flow: 'shop/shopify-orders',
  sourceMsgId: 'wh-1',
});
// What JetStream stores with the dead letter.
const stored = { ...dlqHeaders, 'Nats-Msg-Id': 'dlq:wh-1' };

describe('parseTimeBound', () => {
  it('counts a duration back from now', () => {
    expect(parseTimeBound('2h', now).toISOString()).toBe('2026-11-26T10:00:00.000Z');
    expect(parseTimeBound('1h30m', now).toISOString()).toBe('2026-11-26T10:30:00.000Z');
    expect(parseTimeBound('7d', now).toISOString()).toBe('2026-11-19T12:00:00.000Z');
    expect(parseTimeBound('1w', now).toISOString()).toBe('2026-11-19T12:00:00.000Z');
    expect(parseTimeBound('500ms', now).toISOString()).toBe('2026-11-26T11:59:59.500Z');
  });

  it('takes RFC 3339 times with a zone as they are', () => {
    expect(parseTimeBound('2026-11-20T10:00:00Z', now).toISOString()).toBe('2026-11-20T10:00:00.000Z');
    expect(parseTimeBound('2026-11-20T10:00:00.250-06:00', now).toISOString()).toBe(
      '2026-11-20T16:00:00.250Z',
    );
  });

  it.each(['', 'yesterday', '2h ago', '-2h', '2026-11-20', '2026-11-20T10:00:00', '10', '2x'])(
    'refuses %j',
    (text) => {
      expect(() => parseTimeBound(text, now)).toThrow(RangeError);
    },
  );

  it('parses durations', () => {
    expect(parseDurationMs('90s')).toBe(90_000);
    expect(parseDurationMs('1.5h')).toBe(5_400_000);
    expect(parseDurationMs('h')).toBeUndefined();
  });
});

describe('matchesFilter', () => {
  const d = {
    seq: 7,
    storedAt: new Date('2026-11-26T11:00:00Z'),
    reason: 'mapping_validation',
    errorClass: 'CanonicalValidationError',
  };

  it('matches everything without a filter', () => {
    expect(matchesFilter(d, {})).toBe(true);
  });

  it('matches any of several reasons or classes, ignoring case, and ANDs the kinds', () => {
    expect(matchesFilter(d, { reasons: ['invalid_json', 'MAPPING_VALIDATION'] })).toBe(true);
    expect(matchesFilter(d, { reasons: ['invalid_json'] })).toBe(false);
    expect(matchesFilter(d, { errorClasses: ['canonicalvalidationerror'] })).toBe(true);
    expect(matchesFilter(d, { reasons: ['mapping_validation'], errorClasses: ['SinkError'] })).toBe(false);
  });

  it('takes since as inclusive and until as exclusive', () => {
    expect(matchesFilter(d, { since: d.storedAt })).toBe(true);
    expect(matchesFilter(d, { since: new Date(d.storedAt.getTime() + 1) })).toBe(false);
    expect(matchesFilter(d, { until: d.storedAt })).toBe(false);
    expect(matchesFilter(d, { until: new Date(d.storedAt.getTime() + 1) })).toBe(true);
  });

  it('selects by sequence', () => {
    expect(matchesFilter(d, { seqs: [1, 7] })).toBe(true);
    expect(matchesFilter(d, { seqs: [1] })).toBe(false);
    expect(matchesFilter(d, { seqs: [] })).toBe(true);
  });
});

describe('summarize', () => {
  it('reads the dead-letter headers', () => {
    const s = summarize({ seq: 3, storedAt: now, headers: stored, stream: 'tally_dlq_shop_shopify-orders' });
    expect(s).toEqual({
      seq: 3,
      storedAt: now,
      flow: 'shop/shopify-orders',
      reason: 'mapping_validation',
      errorClass: 'CanonicalValidationError',
      errorCode: 'CANONICAL_INVALID',
      message: 'bad',
      attempts: 1,
      firstReceived: new Date('2026-11-26T11:00:00Z'),
      sourceMsgId: 'wh-1',
    });
  });

  it('copes with missing headers', () => {
    const s = summarize({ seq: 4, storedAt: now, headers: {}, stream: 'S' });
    expect(s).toMatchObject({
      reason: '',
      attempts: undefined,
      firstReceived: undefined,
      sourceMsgId: 'S:4',
    });
  });

  it('finds the original source id: header, else the dead letter dedupe id, else the stream position', () => {
    expect(originalSourceMsgId({ 'tally-source-msg-id': 'a' }, 'S', 1)).toBe('a');
    expect(originalSourceMsgId({ 'Nats-Msg-Id': 'dlq:b' }, 'S', 1)).toBe('b');
    expect(originalSourceMsgId({ 'Nats-Msg-Id': 'other' }, 'S', 1)).toBe('S:1');
    expect(header({ 'X-A': '1' }, 'x-a')).toBe('1');
  });
});

describe('replay', () => {
  const replayed = replayHeaders({
    headers: stored,
    sourceMsgId: 'wh-1',
    stream: 'tally_dlq_shop_shopify-orders',
    seq: 3,
  });

  it('restores the original headers, drops the error record and JetStream headers, keeps the source id', () => {
    expect(replayed).toEqual({
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      'x-shopify-topic': 'orders/create',
      'Tally-Source': 'webhook',
      'Tally-Received-At': '2026-11-26T11:00:00.000Z',
      [REPLAY_HEADERS.sourceMsgId]: 'wh-1',
      [REPLAY_HEADERS.replayOf]: 'tally_dlq_shop_shopify-orders:3',
    });
  });

  it('does not pile up lineage when a replay is dead-lettered and replayed again', () => {
    const again = replayHeaders({
      headers: {
        ...replayed,
        [DLQ_HEADERS.errorReason]: 'invalid_json',
        'Nats-Msg-Id': 'dlq:replay:x:3:wh-1',
      },
      sourceMsgId: 'wh-1',
      stream: 'S',
      seq: 9,
    });
    expect(again[REPLAY_HEADERS.replayOf]).toBe('S:9');
    expect(Object.keys(again).filter((k) => k.toLowerCase().startsWith('tally-error'))).toEqual([]);
  });

  it('gets a new dedupe id per run, the same within a run', () => {
    expect(replayMsgId('r1', 3, 'wh-1')).toBe('replay:r1:3:wh-1');
    expect(replayMsgId('r1', 3, 'wh-1')).not.toBe(replayMsgId('r2', 3, 'wh-1'));
  });

  it('makes the processor see the original source id, so the event id is the original one', () => {
    const message = (headers: Record<string, string>, streamSeq: number): BusMessage => ({
      subject: 'tally.shop.shopify-orders.in.0',
      data: new Uint8Array(),
      headers,
      deliveryCount: 1,
      streamSeq,
      storedAt: now,
      ack: async () => {},
      nak: async () => {},
      term: async () => {},
      inProgress: () => {},
    });
    const stream = 'tally_flow_shop_shopify-orders';
    const original = message({ 'Nats-Msg-Id': 'wh-1' }, 1);
    const replay = message({ ...replayed, 'Nats-Msg-Id': replayMsgId('r1', 3, 'wh-1') }, 42);
    expect(sourceMsgIdOf(original, stream)).toBe('wh-1');
    expect(sourceMsgIdOf(replay, stream)).toBe('wh-1');
    const flow = { namespace: 'shop', name: 'shopify-orders' };
    expect(eventId(flow, sourceMsgIdOf(replay, stream))).toBe(eventId(flow, sourceMsgIdOf(original, stream)));
    // A stream-position source id survives too; an unusable header value is ignored.
    const positional = message({ [REPLAY_HEADERS.sourceMsgId]: `${stream}:1` }, 43);
    expect(sourceMsgIdOf(positional, stream)).toBe(`${stream}:1`);
    expect(
      sourceMsgIdOf(message({ [REPLAY_HEADERS.sourceMsgId]: 'has space', 'Nats-Msg-Id': 'm' }, 44), stream),
    ).toBe('m');
  });
});
