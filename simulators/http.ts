// Shared plumbing for the loopback API simulators: one node:http server per simulator that reads the
// whole body, records the request, and hands a parsed view to a synchronous-looking handler. Kept free
// of test-framework imports because the demo uses the simulators too.
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  /** Path with query string, as sent. */
  path: string;
  headers: IncomingHttpHeaders;
  /** JSON or form fields when the body parses as such, the text otherwise, undefined when empty. */
  body: unknown;
  rawBody: string;
}

export interface SimRequest {
  method: string;
  /** Path without the query string. */
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  raw: Buffer;
  /** The parsed JSON body; `undefined` when the body is empty or not JSON (see `jsonError`). */
  json: unknown;
  /** True when a non-empty body failed to parse as JSON. */
  jsonError: boolean;
  /** Requests in flight on this server when this one arrived, itself included. */
  inFlightAtArrival: number;
}

export interface Reply {
  status: number;
  /** Serialised as JSON unless it is a string or Buffer. */
  body?: unknown;
  headers?: Record<string, string>;
}

/** Returned by a handler to drop the connection without answering (a target dying mid-request). */
export const DESTROY = Symbol('destroy-socket');

export type HandlerResult = Reply | typeof DESTROY | Promise<Reply | typeof DESTROY>;
export type Handler = (req: SimRequest) => HandlerResult;

export interface ServeOptions {
  port?: number | undefined;
  /** Every request is appended here before it is handled. */
  requests: RecordedRequest[];
  handle: Handler;
  /** Headers added to every answer (e.g. rate-limit headers); called after the handler. */
  commonHeaders?: () => Record<string, string>;
}

export interface Served {
  url: string;
  close(): Promise<void>;
}

export const json = (status: number, body: unknown, headers: Record<string, string> = {}): Reply => ({
  status,
  body,
  headers,
});

function recordedBody(text: string, contentType: string | undefined): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    // not JSON: fall through
  }
  if (contentType?.startsWith('application/x-www-form-urlencoded')) {
    return Object.fromEntries(new URLSearchParams(text));
  }
  return text;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function write(res: ServerResponse, reply: Reply, common: Record<string, string>): void {
  const headers: Record<string, string> = { ...common, ...reply.headers };
  let payload: string | Buffer | undefined;
  if (reply.body !== undefined) {
    if (typeof reply.body === 'string' || Buffer.isBuffer(reply.body)) payload = reply.body;
    else {
      payload = JSON.stringify(reply.body);
      headers['content-type'] ??= 'application/json; charset=utf-8';
    }
  }
  res.writeHead(reply.status, headers).end(payload);
}

/** Starts a loopback server on 127.0.0.1 (port 0 = any free port). */
export async function serve(options: ServeOptions): Promise<Served> {
  let inFlight = 0;
  const server = createServer((req, res) => {
    inFlight += 1;
    const arrival = inFlight;
    // 'close' fires on both a finished answer and a dropped socket, so the count never leaks.
    res.on('close', () => {
      inFlight -= 1;
    });
    void (async () => {
      const raw = await readBody(req);
      const text = raw.toString('utf8');
      const target = new URL(req.url ?? '/', 'http://simulator');
      const method = req.method ?? 'GET';
      options.requests.push({
        method,
        path: req.url ?? '/',
        headers: req.headers,
        body: recordedBody(text, req.headers['content-type']),
        rawBody: text,
      });
      let parsed: unknown;
      let jsonError = false;
      if (text.trim() !== '') {
        try {
          parsed = JSON.parse(text);
        } catch {
          jsonError = true;
        }
      }
      const reply = await options.handle({
        method,
        path: target.pathname,
        query: target.searchParams,
        headers: req.headers,
        raw,
        json: parsed,
        jsonError,
        inFlightAtArrival: arrival,
      });
      if (reply === DESTROY) {
        req.socket.destroy();
        return;
      }
      write(res, reply, options.commonHeaders?.() ?? {});
    })().catch((err: unknown) => {
      // A simulator bug must surface as a loud 500, not a hung request.
      if (!res.headersSent) {
        write(res, json(500, { error: 'simulator_error', message: String(err) }), {});
      } else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        // Keep-alive sockets from fetch would otherwise hold close() open.
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface Fault {
  status: number;
  retryAfterSeconds?: number | undefined;
}

/** Queue of statuses to answer with before answering normally (`failNext`). */
export class Faults {
  readonly #queue: Fault[] = [];

  push(statuses: number[], retryAfterSeconds?: number): void {
    for (const status of statuses) this.#queue.push({ status, retryAfterSeconds });
  }

  take(): Fault | undefined {
    return this.#queue.shift();
  }

  get pending(): number {
    return this.#queue.length;
  }
}

/** An injected answer; `Retry-After` goes on 429 and 503, the statuses where it means something. */
export function faultReply(fault: Fault, body: unknown, headers: Record<string, string> = {}): Reply {
  const h = { ...headers };
  if (fault.retryAfterSeconds !== undefined && (fault.status === 429 || fault.status === 503)) {
    h['retry-after'] = String(fault.retryAfterSeconds);
  }
  return json(fault.status, body, h);
}

type RouteHandler<R> = (req: SimRequest, params: string[]) => R;

export type RouteMatch<R> = { handler: RouteHandler<R>; params: string[] } | 'method_not_allowed' | undefined;

/** Regex routes; captured groups arrive URI-decoded as `params`. */
export class Router<R = HandlerResult> {
  readonly #routes: { methods: string[]; pattern: RegExp; handler: RouteHandler<R> }[] = [];

  on(methods: string | string[], pattern: RegExp, handler: RouteHandler<R>): this {
    this.#routes.push({ methods: typeof methods === 'string' ? [methods] : methods, pattern, handler });
    return this;
  }

  match(method: string, path: string): RouteMatch<R> {
    let pathMatched = false;
    for (const route of this.#routes) {
      const m = route.pattern.exec(path);
      if (!m) continue;
      pathMatched = true;
      if (!route.methods.includes(method)) continue;
      const params = m.slice(1).map((p) => (p === undefined ? '' : safeDecode(p)));
      return { handler: route.handler, params };
    }
    return pathMatched ? 'method_not_allowed' : undefined;
  }
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

export function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

export function isJsonContentType(headers: IncomingHttpHeaders): boolean {
  return /^application\/(?:[\w.+-]+\+)?json\b/i.test(header(headers, 'content-type') ?? '');
}

export const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

export const isInteger = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);

/** A real calendar date in YYYY-MM-DD form (rejects 2026-02-30). */
export function isIsoDate(v: unknown): v is string {
  if (typeof v !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(v)) return false;
  const d = new Date(`${v}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === v;
}

/** Credentials from an `Authorization: Basic` header, or undefined when absent or malformed. */
export function basicCredentials(headers: IncomingHttpHeaders): { user: string; pass: string } | undefined {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header(headers, 'authorization') ?? '');
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), pass: decoded.slice(colon + 1) };
}
