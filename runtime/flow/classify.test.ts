import { describe, expect, it } from 'vitest';
import { BusError, BusErrorCode } from '../bus/errors.ts';
import { BusinessKeyError, CanonicalValidationError, MappingEvaluationError } from '../mapping/errors.ts';
import {
  classifyFailure,
  classifyHttpStatus,
  FAILURE_REASONS,
  isSinkWait,
  parseRetryAfterMs,
} from './classify.ts';
import { EnvelopeError, FlowErrorCode, PayloadError, SinkError } from './errors.ts';

describe('classifyHttpStatus', () => {
  it.each([
    [200, 'delivered'],
    [201, 'delivered'],
    [204, 'delivered'],
    [408, 'transient'],
    [429, 'transient'],
    [500, 'transient'],
    [502, 'transient'],
    [503, 'transient'],
    [504, 'transient'],
    [400, 'permanent'],
    [401, 'permanent'],
    [403, 'permanent'],
    [404, 'permanent'],
    [409, 'transient'],
    [422, 'permanent'],
    [301, 'permanent'],
  ] as const)('%i is %s', (status, outcome) => {
    expect(classifyHttpStatus(status)).toBe(outcome);
  });
});

describe('parseRetryAfterMs', () => {
  it('reads seconds and HTTP dates', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfterMs('7', now)).toBe(7_000);
    expect(parseRetryAfterMs('Thu, 01 Jan 2026 00:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfterMs('soon', now)).toBeUndefined();
    expect(parseRetryAfterMs(undefined, now)).toBeUndefined();
  });
});

describe('classifyFailure', () => {
  it('marks payload, mapping and envelope errors permanent with bounded reasons', () => {
    expect(classifyFailure(new PayloadError('x'))).toMatchObject({
      reason: 'invalid_json',
      permanent: true,
      code: 'FLOW_INVALID_JSON',
    });
    expect(classifyFailure(new MappingEvaluationError('boom'))).toMatchObject({
      reason: 'mapping_evaluation',
      permanent: true,
      errorClass: 'MappingEvaluationError',
      code: 'MAPPING_EVALUATION',
    });
    expect(classifyFailure(new CanonicalValidationError('Order', []))).toMatchObject({
      reason: 'mapping_validation',
      permanent: true,
    });
    expect(classifyFailure(new BusinessKeyError('no key'))).toMatchObject({
      reason: 'mapping_business_key',
      permanent: true,
    });
    expect(classifyFailure(new EnvelopeError('bad'))).toMatchObject({
      reason: 'invalid_envelope',
      permanent: true,
    });
  });

  it('keeps sink permanence and Retry-After', () => {
    const rejected = new SinkError('422', {
      sink: 'erp',
      permanent: true,
      status: 422,
      code: FlowErrorCode.SinkRejected,
    });
    expect(classifyFailure(rejected)).toMatchObject({ reason: 'sink_rejected', permanent: true });
    const busy = new SinkError('429', {
      sink: 'erp',
      permanent: false,
      status: 429,
      retryAfterMs: 5_000,
      code: FlowErrorCode.SinkUnavailable,
    });
    expect(classifyFailure(busy)).toMatchObject({
      reason: 'sink_unavailable',
      permanent: false,
      retryAfterMs: 5_000,
    });
    const slow = new SinkError('slow', { sink: 'erp', permanent: false, code: FlowErrorCode.SinkTimeout });
    expect(classifyFailure(slow)).toMatchObject({ reason: 'sink_timeout', permanent: false });
  });

  it('tells a throttling sink and an open circuit apart from a failing sink', () => {
    const throttled = new SinkError('429', {
      sink: 'erp',
      permanent: false,
      status: 429,
      retryAfterMs: 1_000,
      code: FlowErrorCode.SinkThrottled,
    });
    expect(classifyFailure(throttled)).toMatchObject({ reason: 'sink_throttled', retryAfterMs: 1_000 });
    const open = new SinkError('open', {
      sink: 'erp',
      permanent: false,
      retryAfterMs: 300,
      code: FlowErrorCode.SinkCircuitOpen,
    });
    expect(classifyFailure(open)).toMatchObject({ reason: 'sink_circuit_open', retryAfterMs: 300 });
  });

  it('retries bus and unknown errors', () => {
    expect(classifyFailure(new BusError(BusErrorCode.Unavailable, 'down'))).toMatchObject({
      reason: 'bus_unavailable',
      permanent: false,
    });
    expect(classifyFailure(new TypeError('oops'))).toMatchObject({
      reason: 'internal',
      permanent: false,
      code: 'INTERNAL',
    });
    expect(classifyFailure('string')).toMatchObject({ reason: 'internal' });
  });

  it('only ever yields reasons from the bounded list', () => {
    const errors = [
      new PayloadError('a'),
      new MappingEvaluationError('b'),
      new Error('c'),
      new EnvelopeError('d'),
    ];
    for (const e of errors) expect(FAILURE_REASONS).toContain(classifyFailure(e).reason);
  });
});

describe('isSinkWait', () => {
  const sinkError = (code: FlowErrorCode, permanent = false) =>
    new SinkError('x', { sink: 'erp', permanent, code });
  it('is true for an open circuit and for throttling only: the deliveries that spend no attempt', () => {
    expect(isSinkWait(sinkError(FlowErrorCode.SinkCircuitOpen))).toBe(true);
    expect(isSinkWait(sinkError(FlowErrorCode.SinkThrottled))).toBe(true);
    expect(isSinkWait(sinkError(FlowErrorCode.SinkUnavailable))).toBe(false);
    expect(isSinkWait(sinkError(FlowErrorCode.SinkTimeout))).toBe(false);
    expect(isSinkWait(sinkError(FlowErrorCode.SinkConflict))).toBe(false);
    expect(isSinkWait(sinkError(FlowErrorCode.SinkThrottled, true))).toBe(false);
    expect(isSinkWait(new BusError(BusErrorCode.Unavailable, 'away'))).toBe(false);
    expect(isSinkWait(new Error('x'))).toBe(false);
  });
});
