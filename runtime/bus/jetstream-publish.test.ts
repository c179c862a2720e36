import { describe, expect, it } from 'vitest';
import { BusError, BusErrorCode } from './errors.ts';
import { parsePublishReply } from './jetstream-publish.ts';

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
