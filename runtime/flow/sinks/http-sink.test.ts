import { describe, expect, it } from 'vitest';
import { authHeader } from './auth.ts';
import { CLOUDEVENTS_JSON, type HttpSinkConfig, httpSinkHeaders } from './http-sink.ts';

const config: HttpSinkConfig = {
  name: 'erp',
  type: 'http',
  url: 'http://erp/orders',
  method: 'POST',
  headers: { 'x-tenant': 'eu' },
  idempotencyKeyHeader: 'Idempotency-Key',
  timeoutMs: 1000,
  maxInFlight: 4,
};

describe('httpSinkHeaders', () => {
  it('sends the CloudEvent in structured mode with the idempotency key and trace', () => {
    const event = {
      tallyentity: 'Order',
      subject: 'o-1',
      tallyversion: '7',
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    } as Parameters<typeof httpSinkHeaders>[1];
    expect(httpSinkHeaders(config, event, ['Authorization', 'Bearer t'])).toEqual({
      'x-tenant': 'eu',
      'content-type': CLOUDEVENTS_JSON,
      'Idempotency-Key': 'Order:o-1:7',
      traceparent: event.traceparent,
      Authorization: 'Bearer t',
    });
  });
});

describe('authHeader', () => {
  const env = { TOKEN: 'tok', USER: 'u', PASS: 'p' };
  it('builds bearer, basic and API-key headers from the environment', () => {
    expect(authHeader({ type: 'bearer', token: { env: 'TOKEN' } }, env, 'sink erp')).toEqual([
      'Authorization',
      'Bearer tok',
    ]);
    expect(
      authHeader({ type: 'basic', username: { env: 'USER' }, password: { env: 'PASS' } }, env, 'sink erp'),
    ).toEqual(['Authorization', `Basic ${Buffer.from('u:p').toString('base64')}`]);
    expect(authHeader({ type: 'apiKey', token: { env: 'TOKEN' } }, env, 'sink erp')).toEqual([
      'X-API-Key',
      'tok',
    ]);
    expect(authHeader({ type: 'apiKey', token: { env: 'TOKEN' }, header: 'X-Key' }, env, 'sink erp')).toEqual(
      ['X-Key', 'tok'],
    );
  });
  it('names the missing variable', () => {
    expect(() => authHeader({ type: 'bearer', token: { env: 'NOPE' } }, env, 'sink erp')).toThrow(
      /NOPE \(sink erp auth token\) is not set/,
    );
  });
});
