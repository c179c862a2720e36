import type { IncomingMessage } from 'node:http';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { BodyError, readBody } from './body.ts';
import { listenAddress } from './server.ts';

function fakeRequest(headers: Record<string, string> = {}) {
  const stream = new PassThrough() as PassThrough & { headers: Record<string, string> };
  stream.headers = headers;
  return stream;
}

describe('readBody', () => {
  it('reads a body within the limit', async () => {
    const req = fakeRequest();
    const p = readBody(req as unknown as IncomingMessage, 10);
    req.end('{"a":1}');
    expect((await p).toString()).toBe('{"a":1}');
  });

  it('refuses a declared Content-Length over the limit without reading', async () => {
    const req = fakeRequest({ 'content-length': '11' });
    await expect(readBody(req as unknown as IncomingMessage, 10)).rejects.toMatchObject({
      code: 'BODY_TOO_LARGE',
    });
  });

  it('stops a streamed body at the limit', async () => {
    const req = fakeRequest();
    const p = readBody(req as unknown as IncomingMessage, 10);
    req.write('123456');
    req.write('789012');
    await expect(p).rejects.toBeInstanceOf(BodyError);
  });
});

describe('listenAddress', () => {
  it('binds all interfaces on the config port unless the environment says otherwise', () => {
    expect(listenAddress(8080, {})).toEqual({ host: '0.0.0.0', port: 8080 });
    expect(listenAddress(8080, { TALLY_HTTP_PORT: '0', TALLY_HTTP_HOST: '127.0.0.1' })).toEqual({
      host: '127.0.0.1',
      port: 0,
    });
    expect(() => listenAddress(8080, { TALLY_HTTP_PORT: 'http' })).toThrow(/TALLY_HTTP_PORT/);
  });
});
