import { describe, expect, it } from 'vitest';
import { TRACEPARENT } from '../../api/envelope.ts';
import {
  childSpan,
  formatTraceparent,
  newTrace,
  parseTraceparent,
  traceFromHeader,
  traceFromSeed,
} from './trace.ts';

describe('traceparent', () => {
  it('parses a valid header and rejects invalid or all-zero ids', () => {
    const v = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    expect(formatTraceparent(parseTraceparent(v)!)).toBe(v);
    expect(parseTraceparent(v.toUpperCase())).toBeDefined();
    expect(parseTraceparent('00-00000000000000000000000000000000-b7ad6b7169203331-01')).toBeUndefined();
    expect(parseTraceparent('00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01')).toBeUndefined();
    expect(parseTraceparent('garbage')).toBeUndefined();
    expect(parseTraceparent(undefined)).toBeUndefined();
  });

  it('keeps an incoming trace, else starts one', () => {
    const v = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00';
    expect(formatTraceparent(traceFromHeader(v))).toBe(v);
    expect(formatTraceparent(traceFromHeader('bad'))).toMatch(TRACEPARENT);
    expect(newTrace().traceId).not.toBe(newTrace().traceId);
  });

  it('derives spans and seeded traces deterministically', () => {
    const t = traceFromSeed('x');
    expect(traceFromSeed('x')).toEqual(t);
    expect(formatTraceparent(t)).toMatch(TRACEPARENT);
    expect(childSpan(t, 'e1')).toEqual(childSpan(t, 'e1'));
    expect(childSpan(t, 'e1').traceId).toBe(t.traceId);
  });
});
