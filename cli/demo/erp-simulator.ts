// A loopback HTTP server standing in for the ERP order API (demo and tests): records every
// request and answers like an idempotent API (a repeated Idempotency-Key is acknowledged, not applied twice).
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ErpRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: unknown;
}

export interface ErpPeer {
  url: string;
  requests: ErpRequest[];
  /** Distinct idempotency keys applied. */
  applied: Map<string, unknown>;
  /** Status codes to answer with before answering normally (e.g. [500, 500]). */
  failNext: number[];
  close(): Promise<void>;
}

export async function startErpPeer(keyHeader = 'idempotency-key'): Promise<ErpPeer> {
  const peer: Omit<ErpPeer, 'url' | 'close'> = { requests: [], applied: new Map(), failNext: [] };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // recorded as text
      }
      peer.requests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body });
      const failure = peer.failNext.shift();
      if (failure) {
        res.writeHead(failure).end();
        return;
      }
      const key = String(req.headers[keyHeader] ?? '');
      const replay = peer.applied.has(key);
      if (!replay) peer.applied.set(key, body);
      res
        .writeHead(replay ? 200 : 201, { 'content-type': 'application/json' })
        .end(JSON.stringify({ ok: true, replay }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    ...peer,
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
