import { describe, expect, it } from 'vitest';
import { parseAckSubject } from './jetstream-message.ts';
import { pullStatus } from './jetstream-pull.ts';

describe('parseAckSubject', () => {
  it('reads the classic form', () => {
    expect(parseAckSubject('$JS.ACK.FLOW.worker.2.41.17.1795191302123456789.5')).toEqual({
      stream: 'FLOW',
      consumer: 'worker',
      deliveryCount: 2,
      streamSeq: 41,
      consumerSeq: 17,
      storedAtMs: 1795191302123,
      pending: 5,
    });
  });

  it('reads the form with a domain and account hash, with or without the trailing token', () => {
    const base = '$JS.ACK.hub.ACCHASH.FLOW.worker.1.7.3.1795191302000000000.0';
    for (const subject of [base, `${base}.r4nd0m`]) {
      expect(parseAckSubject(subject)).toMatchObject({
        stream: 'FLOW',
        consumer: 'worker',
        deliveryCount: 1,
        streamSeq: 7,
        consumerSeq: 3,
        storedAtMs: 1795191302000,
        pending: 0,
      });
    }
  });

  it('refuses what is not an ack subject', () => {
    for (const subject of [
      '_INBOX.abc',
      '$JS.ACK.FLOW.worker.x.1.1.1.1',
      '$JS.API.X.a.b.c.d.e.f',
      '$JS.ACK.a.b',
    ]) {
      expect(parseAckSubject(subject), subject).toBeUndefined();
    }
  });
});

describe('pullStatus', () => {
  it('treats heartbeats as nothing and expiries as the end of the request', () => {
    expect(pullStatus(100, 'Idle Heartbeat')).toEqual({ kind: 'heartbeat' });
    expect(pullStatus(408, 'Request Timeout')).toEqual({ kind: 'ended' });
    expect(pullStatus(404, 'No Messages')).toEqual({ kind: 'ended' });
  });

  it('ends the request on a harmless 409 and says why', () => {
    expect(pullStatus(409, 'Exceeded MaxWaiting')).toEqual({ kind: 'ended', note: 'Exceeded MaxWaiting' });
    expect(pullStatus(409, 'Leadership Change')).toMatchObject({ kind: 'ended' });
  });

  it('fails the consumer when it is gone or cannot be pulled from', () => {
    expect(pullStatus(409, 'Consumer Deleted')).toEqual({
      kind: 'failed',
      message: '409 Consumer Deleted',
    });
    expect(pullStatus(409, 'Consumer is push based')).toMatchObject({ kind: 'failed' });
    expect(pullStatus(503, '')).toMatchObject({ kind: 'failed', message: /no responders/ });
    expect(pullStatus(400, 'Bad Request')).toMatchObject({ kind: 'failed' });
  });
});
