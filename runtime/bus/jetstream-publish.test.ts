import type { NatsConnection } from '@nats-io/transport-node';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BusError, BusErrorCode } from './errors.ts';
import { JetStreamPublisher, parsePublishReply } from './jetstream-publish.ts';

const json = (v: unknown) => Buffer.from(JSON.stringify(v));

describe('parsePublishReply', () => {
  it('reads the stream ack, duplicate or not', () => {
    expect(parsePublishReply('a.b', undefined, json({ stream: 'S', seq: 7 }))).toEqual({
      stream: 'S',
      seq: 7,
      duplicate: false,
    });
    expect(parsePublishReply('a.b', undefined, json({ stream: 'S', seq: 7, duplicate: true }))).toEqual({
      stream: 'S',
      seq: 7,
      duplicate: true,
    });
  });

  it('says no stream captures the subject on no responders', () => {
    const err = parsePublishReply('a.b', { code: 503, description: '' }, new Uint8Array());
    expect(err).toBeInstanceOf(BusError);
    expect((err as BusError).code).toBe(BusErrorCode.NoStream);
    expect((err as BusError).message).toMatch(/a\.b: no JetStream stream/);
  });

  it('passes on what the stream refused, with its codes', () => {
    const err = parsePublishReply(
      'a.b',
      undefined,
      json({ error: { code: 503, err_code: 10077, description: 'maximum messages exceeded' } }),
    ) as BusError;
    expect(err.code).toBe(BusErrorCode.Unavailable);
    expect(err.message).toBe('publish to a.b: maximum messages exceeded (code 503, err_code 10077)');
  });

  it('refuses an answer that is not an ack', () => {
    for (const data of [Buffer.from('nope'), json({ seq: 1 }), json({ stream: 'S' })]) {
      expect(parsePublishReply('a.b', undefined, data)).toBeInstanceOf(BusError);
    }
    expect(
      parsePublishReply('a.b', { code: 408, description: 'Request Timeout' }, new Uint8Array()),
    ).toBeInstanceOf(BusError);
  });
});

describe('JetStreamPublisher', () => {
  /** A connection that takes publishes and never answers (the server's side is the integration tests'). */
  function silentConnection() {
    const published: { subject: string; reply?: string }[] = [];
    let closed = false;
    const nc = {
      publish: (subject: string, _data: Uint8Array, opts?: { reply?: string }) => {
        if (closed) throw new Error('closed connection');
        published.push({ subject, ...(opts?.reply ? { reply: opts.reply } : {}) });
      },
      subscribe: () => ({ isClosed: () => false, unsubscribe: () => {} }),
    };
    return { nc: nc as unknown as NatsConnection, published, close: () => (closed = true) };
  }

  afterEach(() => {
    vi.useRealTimers();
  });

  it('fails a publish nobody acks after its timeout, with one timer that stops when nothing waits', async () => {
    vi.useFakeTimers();
    const { nc, published } = silentConnection();
    const publisher = new JetStreamPublisher(nc, 1_000);
    const a = publisher.publish('orders.a', new Uint8Array([1]), { msgId: 'a' });
    const b = publisher.publish('orders.b', new Uint8Array([2]), { timeoutMs: 3_000 });
    expect(published.map((p) => p.subject)).toEqual(['orders.a', 'orders.b']);
    expect(new Set(published.map((p) => p.reply)).size).toBe(2);
    const failedA = expect(a).rejects.toMatchObject({
      code: BusErrorCode.Unavailable,
      message: /no ack within 1000 ms/,
    });
    await vi.advanceTimersByTimeAsync(1_300);
    await failedA;
    const failedB = expect(b).rejects.toMatchObject({ code: BusErrorCode.Unavailable });
    await vi.advanceTimersByTimeAsync(2_000);
    await failedB;
    expect(vi.getTimerCount()).toBe(0);
  });

  it('fails what waits when it closes, and a publish on a closed connection at once', async () => {
    const { nc, close } = silentConnection();
    const publisher = new JetStreamPublisher(nc, 60_000);
    const waiting = publisher.publish('orders.a', new Uint8Array([1]));
    publisher.close();
    await expect(waiting).rejects.toMatchObject({ code: BusErrorCode.Closed });
    close();
    await expect(publisher.publish('orders.a', new Uint8Array([1]))).rejects.toMatchObject({
      code: BusErrorCode.Closed,
      message: /closed connection/,
    });
  });
});
