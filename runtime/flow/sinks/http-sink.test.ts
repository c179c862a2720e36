import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { SinkError } from '../errors.ts';
import { authHeader } from './auth.ts';
import { CLOUDEVENTS_JSON, createHttpSink, type HttpSinkConfig, httpSinkHeaders } from './http-sink.ts';

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

describe('createHttpSink error messages', () => {
  /** A target that refuses every request with 400, echoing the request headers in its body. */
  async function echoTarget(status = 400) {
    const server = createServer((req, res) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'invalid order', received: { url: req.url, headers: req.headers } }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/orders`;
    return {
      url,
      close: () => {
        server.closeAllConnections();
        return new Promise<void>((r) => server.close(() => r()));
      },
    };
  }
  const event = {
    id: 'e-1',
    tallyentity: 'Order',
    subject: 'o-1',
    tallyversion: '7',
    traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
  } as Parameters<ReturnType<typeof createHttpSink>['deliver']>[0];

  it('never carry the credentials a target echoes back, in any header or format', async () => {
    const cases: { auth: HttpSinkConfig['auth']; env: Record<string, string>; secret: string }[] = [
      {
        auth: { type: 'bearer', token: { env: 'T' } },
        env: { T: 'opaque-token-1234567' },
        secret: 'opaque-token-1234567',
      },
      {
        // A header name no pattern knows and a value of no known format: masked as the sent value.
        auth: { type: 'apiKey', header: 'X-Partner-Auth', token: { env: 'T' } },
        env: { T: 'plainvalue42' },
        secret: 'plainvalue42',
      },
      {
        auth: { type: 'basic', username: { env: 'U' }, password: { env: 'P' } },
        env: { U: 'tally', P: 'hunter2-hunter2' },
        secret: Buffer.from('tally:hunter2-hunter2').toString('base64'),
      },
    ];
    for (const c of cases) {
      const target = await echoTarget();
      const sink = createHttpSink({ ...config, url: target.url, auth: c.auth }, { env: c.env });
      try {
        const err = await sink.deliver(event, Buffer.from('{}')).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(SinkError);
        const message = (err as SinkError).message;
        expect(message).toMatch(/answered 400: \{"error":"invalid order"/);
        expect(message).toContain('"idempotency-key":"Order:o-1:7"');
        expect(message).not.toContain(c.secret);
        expect(message).not.toContain('hunter2');
      } finally {
        await sink.close();
        await target.close();
      }
    }
  });
});
