// One HTTP server per worker: /metrics, /healthz, /readyz and the source's routes. Closing stops
// accepting connections, lets requests in progress finish (up to a grace period), then cuts the rest.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';

export type RouteHandler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

export interface Readiness {
  ready: boolean;
  /** What is (not) ready, shown in the /readyz body. */
  checks: Record<string, boolean>;
}

export interface HttpServerOptions {
  registry: Registry;
  readiness: () => Readiness;
  /** Exact paths to handlers. */
  routes: ReadonlyMap<string, RouteHandler>;
  logger: Logger;
}

export interface HttpServerHandle {
  readonly port: number;
  close(graceMs: number): Promise<void>;
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
) {
  if (res.headersSent) return;
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/** The listen address: TALLY_HTTP_HOST / TALLY_HTTP_PORT override the config (port 0 = any free port). */
export function listenAddress(
  configPort: number,
  env: Readonly<Record<string, string | undefined>>,
): { host: string; port: number } {
  const host = env.TALLY_HTTP_HOST || '0.0.0.0';
  const raw = env.TALLY_HTTP_PORT;
  if (raw === undefined || raw === '') return { host, port: configPort };
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`TALLY_HTTP_PORT must be a port number from 0 to 65535, not ${JSON.stringify(raw)}`);
  }
  return { host, port };
}

export async function startHttpServer(
  options: HttpServerOptions,
  address: { host: string; port: number },
): Promise<HttpServerHandle> {
  const log = options.logger;
  let active = 0;
  let idle: (() => void) | undefined;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (req.method === 'GET' || req.method === 'HEAD') {
      if (path === '/healthz') return sendJson(res, 200, { status: 'ok' });
      if (path === '/readyz') {
        const r = options.readiness();
        return sendJson(res, r.ready ? 200 : 503, {
          status: r.ready ? 'ready' : 'not ready',
          checks: r.checks,
        });
      }
      if (path === '/metrics') {
        const text = await options.registry.metrics();
        res.writeHead(200, { 'content-type': options.registry.contentType });
        res.end(text);
        return;
      }
    }
    const route = options.routes.get(path);
    if (route) return route(req, res);
    sendJson(res, 404, { error: `no route for ${req.method} ${path}` });
  };

  const server: Server = createServer((req, res) => {
    active++;
    res.on('close', () => {
      active--;
      if (active === 0) idle?.();
    });
    handle(req, res).catch((err: unknown) => {
      log.error({ err, path: req.url }, 'request failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  });
  // Slow clients must not hold a connection forever.
  server.requestTimeout = 60_000;
  server.headersTimeout = 20_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(address.port, address.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  log.info({ host: address.host, port }, 'http server listening');

  let closing: Promise<void> | undefined;
  return {
    port,
    close(graceMs: number) {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        const drained =
          active === 0
            ? Promise.resolve()
            : new Promise<void>((resolve) => {
                idle = resolve;
              });
        let timer: NodeJS.Timeout | undefined;
        const expired = new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(true), graceMs);
        });
        const late = await Promise.race([drained.then(() => false), expired]);
        clearTimeout(timer);
        if (late) log.warn({ active }, 'requests still running after the grace period; closing them');
        server.closeAllConnections();
        await closed;
      })();
      return closing;
    },
  };
}
