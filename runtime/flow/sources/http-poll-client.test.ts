import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchPage, PollRequestError } from './http-poll-client.ts';
import { RequestPacer } from './http-poll-limits.ts';
import { createPollMetrics } from './http-poll-metrics.ts';

const TOKEN = 'shpat_0123456789abcdef0123456789abcdef';

/** An API that refuses every request, echoing the request headers in its answer (as some do). */
let server: Server;
let base = '';
let status = 401;
beforeAll(async () => {
  server = createServer((req, res) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: 'refused', url: req.url, headers: req.headers }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

function deps(logs: Record<string, unknown>[]) {
  return {
    agent: new Agent({ connections: 1 }),
    timeoutMs: 2_000,
    maxBodyBytes: 1 << 20,
    maxAttempts: 2,
    backoff: { initialMs: 1, maxMs: 2 },
    pacer: new RequestPacer(),
    metrics: createPollMetrics(new Registry(), { flow: 'ns/f', channel: 'c' }, () => undefined),
    logger: pino({ level: 'debug' }, { write: (l: string) => void logs.push(JSON.parse(l)) }),
    headersFor: () => ({ 'user-agent': 'tally-poller', 'X-Shopify-Access-Token': TOKEN }),
    wait: async () => {},
  };
}

describe('fetchPage error messages', () => {
  it('mask the credentials an API echoes back, and secrets in the URL', async () => {
    for (const answer of [401, 503]) {
      status = answer;
      const logs: Record<string, unknown>[] = [];
      const d = deps(logs);
      const err = await fetchPage(
        `${base}/orders?api_key=k-9876543210&page=1`,
        new AbortController().signal,
        d,
      ).catch((e: unknown) => e);
      await d.agent.close();
      expect(err).toBeInstanceOf(PollRequestError);
      const message = (err as Error).message;
      expect(message).toContain(`GET ${base}/orders?api_key=[redacted]&page=1 answered ${answer}`);
      expect(message).toContain('"x-shopify-access-token":"[redacted]"');
      expect(message).toContain('"user-agent":"tally-poller"');
      for (const text of [message, JSON.stringify(logs)]) {
        expect(text).not.toContain(TOKEN);
        expect(text).not.toContain('k-9876543210');
      }
    }
  });
});
