// The client-credentials token provider against a real token endpoint on 127.0.0.1: what it sends,
// how long it caches, single flight, invalidation and the classification of failures.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createTokenProvider,
  type OAuth2ClientCredentials,
  OAuth2Error,
  type TokenProvider,
} from './oauth2.ts';

const CLIENT_ID = 'tally flow';
// Characters that form-urlencoding changes, so a server that decodes Basic credentials proves it.
const SECRET = 'pa ss+w/rd:ü%42';
const formEncode = (v: string) => new URLSearchParams([['', v]]).toString().slice(1);
const BASIC = Buffer.from(`${formEncode(CLIENT_ID)}:${formEncode(SECRET)}`).toString('base64');

interface Hit {
  path: string;
  authorization: string | undefined;
  accept: string | undefined;
  contentType: string | undefined;
  form: URLSearchParams;
  /** How the client authenticated, as the endpoint decoded it. */
  via: 'basic' | 'body' | 'none';
}
interface Answer {
  status: number;
  body: string;
  headers?: Record<string, string>;
}

let server: Server;
let base: string;
let hits: Hit[];
let issued: number;
/** Answer for a request whose credentials and grant_type check out; default: a new token. */
let answer: (hit: Hit) => Answer | Promise<Answer>;
/** Resolves on each request arriving, before it is answered. */
let onHit: () => void;

const json = (status: number, body: unknown, headers?: Record<string, string>): Answer => ({
  status,
  body: JSON.stringify(body),
  headers: { 'content-type': 'application/json', ...headers },
});
const newToken = (extra: Record<string, unknown> = {}): Answer =>
  json(200, { access_token: `tok-${++issued}`, token_type: 'Bearer', expires_in: 3600, ...extra });

/** The endpoint's check of the client, per RFC 6749 §2.3.1 (Basic parts are form-urldecoded). */
function authenticate(req: IncomingMessage, form: URLSearchParams): [Hit['via'], string?, string?] {
  const auth = req.headers.authorization;
  if (auth?.startsWith('Basic ')) {
    const decoded = Buffer.from(auth.slice(6), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const dec = (s: string) => decodeURIComponent(s.replace(/\+/g, ' '));
    return ['basic', dec(decoded.slice(0, colon)), dec(decoded.slice(colon + 1))];
  }
  if (form.has('client_id')) return ['body', form.get('client_id')!, form.get('client_secret') ?? ''];
  return ['none'];
}

async function handle(req: IncomingMessage, res: ServerResponse) {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
  const [via, id, secret] = authenticate(req, form);
  const hit: Hit = {
    path: req.url ?? '',
    authorization: req.headers.authorization,
    accept: req.headers.accept,
    contentType: req.headers['content-type'],
    form,
    via,
  };
  hits.push(hit);
  onHit();
  let a: Answer;
  if (req.method !== 'POST') a = json(405, { error: 'invalid_request' });
  else if (form.get('grant_type') !== 'client_credentials')
    a = json(400, { error: 'unsupported_grant_type' });
  else if (id !== CLIENT_ID || secret !== SECRET) {
    a = json(401, { error: 'invalid_client', error_description: 'Client authentication failed' });
  } else a = await answer(hit);
  if (!res.destroyed) res.writeHead(a.status, a.headers).end(a.body);
}

/** Resolves when the endpoint has received `n` requests in all. */
function hitCount(n: number): Promise<void> {
  return new Promise((resolve) => {
    const check = () => {
      if (hits.length >= n) resolve();
    };
    const prev = onHit;
    onHit = () => {
      prev();
      check();
    };
    check();
  });
}

/** An answer held back until the test releases it (to keep a fetch in flight). */
function gate(): { answer: () => Promise<Answer>; release: () => void } {
  let release!: () => void;
  const open = new Promise<void>((r) => {
    release = r;
  });
  return {
    answer: async () => {
      await open;
      return newToken();
    },
    release,
  };
}

const providers: TokenProvider[] = [];
let clock: number;
function provider(config: Partial<OAuth2ClientCredentials> = {}): TokenProvider {
  const p = createTokenProvider(
    { tokenUrl: `${base}/token`, clientId: CLIENT_ID, clientSecret: SECRET, ...config },
    { now: () => clock },
  );
  providers.push(p);
  return p;
}

async function failure(p: Promise<unknown>): Promise<OAuth2Error> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(OAuth2Error);
  return err as OAuth2Error;
}

/** Everything an error could show in a log line: message, stack, own properties, cause. */
function everything(err: unknown): string {
  return `${String(err)}\n${(err as Error).stack}\n${inspect(err, { depth: 5 })}\n${JSON.stringify(err)}`;
}

beforeAll(async () => {
  server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

beforeEach(() => {
  hits = [];
  issued = 0;
  clock = 0;
  answer = () => newToken();
  onHit = () => {};
});

afterEach(async () => {
  await Promise.all(providers.splice(0).map((p) => p.close()));
});

describe('createTokenProvider: the request', () => {
  it('POSTs grant_type=client_credentials with Basic credentials (form-urlencoded) and Accept JSON', async () => {
    const p = provider();
    expect(await p.token()).toBe('tok-1');
    expect(hits).toHaveLength(1);
    const hit = hits[0]!;
    expect(hit.via).toBe('basic');
    expect(hit.authorization).toBe(`Basic ${BASIC}`);
    expect(hit.accept).toBe('application/json');
    expect(hit.contentType).toBe('application/x-www-form-urlencoded');
    expect(hit.form.get('grant_type')).toBe('client_credentials');
    // Basic means the secret is not also in the body.
    expect(hit.form.has('client_secret')).toBe(false);
    expect(hit.form.has('scope')).toBe(false);
  });

  it("sends the credentials as form fields with clientAuth 'body'", async () => {
    const p = provider({ clientAuth: 'body' });
    expect(await p.token()).toBe('tok-1');
    expect(hits[0]!.via).toBe('body');
    expect(hits[0]!.authorization).toBeUndefined();
    expect(hits[0]!.form.get('client_secret')).toBe(SECRET);
  });

  it('sends the scope and the audience', async () => {
    const p = provider({ scope: 'orders:write stock:read', audience: 'https://erp.example.com' });
    await p.token();
    expect(hits[0]!.form.get('scope')).toBe('orders:write stock:read');
    expect(hits[0]!.form.get('audience')).toBe('https://erp.example.com');
  });

  it('rejects a config it cannot use, without echoing the URL', () => {
    expect(() => provider({ tokenUrl: 'not a url' })).toThrow(TypeError);
    expect(() => provider({ tokenUrl: 'ftp://erp/token' })).toThrow(/http\(s\)/);
    expect(() => provider({ clientSecret: '' })).toThrow(/clientSecret is empty/);
  });
});

describe('createTokenProvider: caching', () => {
  it('fetches once and caches', async () => {
    const p = provider();
    expect(await p.token()).toBe('tok-1');
    clock = 60_000;
    expect(await p.token()).toBe('tok-1');
    expect(await p.token()).toBe('tok-1');
    expect(hits).toHaveLength(1);
  });

  it('refetches 30 s before a long expiry', async () => {
    const p = provider();
    expect(await p.token()).toBe('tok-1'); // expires_in 3600: skew min(30 s, 360 s) = 30 s
    clock = 3_569_999;
    expect(await p.token()).toBe('tok-1');
    clock = 3_570_000;
    expect(await p.token()).toBe('tok-2');
    expect(hits).toHaveLength(2);
  });

  it('refetches 10 % of the lifetime early for a short-lived token', async () => {
    answer = () => newToken({ expires_in: 60 }); // skew min(30 s, 6 s) = 6 s
    const p = provider();
    await p.token();
    clock = 53_999;
    expect(await p.token()).toBe('tok-1');
    clock = 54_000;
    expect(await p.token()).toBe('tok-2');
  });

  it('assumes 5 min without expires_in, and reads a numeric string', async () => {
    answer = () => newToken({ expires_in: undefined });
    const p = provider();
    await p.token();
    clock = 269_999;
    expect(await p.token()).toBe('tok-1');
    clock = 270_000;
    answer = () => newToken({ expires_in: '120' }); // skew 12 s
    expect(await p.token()).toBe('tok-2');
    clock = 270_000 + 107_999;
    expect(await p.token()).toBe('tok-2');
    clock = 270_000 + 108_000;
    expect(await p.token()).toBe('tok-3');
  });

  it('counts the lifetime from when the request was sent', async () => {
    const g = gate();
    answer = g.answer;
    const p = provider();
    const pending = p.token();
    await hitCount(1);
    clock = 10_000; // the answer takes 10 s to come
    g.release();
    expect(await pending).toBe('tok-1');
    answer = () => newToken();
    clock = 3_569_999;
    expect(await p.token()).toBe('tok-1');
    clock = 3_570_000;
    expect(await p.token()).toBe('tok-2');
  });

  it('shares one fetch among 20 concurrent callers', async () => {
    const g = gate();
    answer = g.answer;
    const p = provider();
    const calls = Array.from({ length: 20 }, () => p.token());
    // The request is at the endpoint, unanswered: every call above overlapped with it.
    await hitCount(1);
    calls.push(p.token());
    g.release();
    expect(new Set(await Promise.all(calls))).toEqual(new Set(['tok-1']));
    expect(hits).toHaveLength(1);
  });

  it('shares one failing fetch too, and does not remember the failure', async () => {
    const g = gate();
    answer = async () => {
      await g.answer();
      return json(503, { error: 'server_error' });
    };
    const p = provider();
    const calls = Array.from({ length: 5 }, () => failure(p.token()));
    await hitCount(1);
    g.release();
    for (const err of await Promise.all(calls)) expect(err.code).toBe('OAUTH2_UNAVAILABLE');
    expect(hits).toHaveLength(1);
    answer = () => newToken();
    expect(await p.token()).toBe('tok-2');
    expect(hits).toHaveLength(2);
  });
});

describe('createTokenProvider: invalidate', () => {
  it('drops the current token when refused, so the next call fetches a new one', async () => {
    const p = provider();
    const first = await p.token();
    expect(p.invalidate(first)).toBe(true);
    expect(await p.token()).toBe('tok-2');
    expect(hits).toHaveLength(2);
  });

  it('keeps a newer token when an old one is refused after a refresh', async () => {
    const p = provider();
    const old = await p.token();
    p.invalidate(old);
    const fresh = await p.token();
    // A request sent with the old token got its 401 late: retry, but with the token we have.
    expect(p.invalidate(old)).toBe(true);
    expect(await p.token()).toBe(fresh);
    expect(hits).toHaveLength(2);
  });

  it('says retry to every caller refused with the same token, with one refetch', async () => {
    const p = provider();
    const t = await p.token();
    expect(p.invalidate(t)).toBe(true);
    expect(p.invalidate(t)).toBe(true); // a second 401 before anyone refetched
    const [a, b] = await Promise.all([p.token(), p.token()]);
    expect(a).toBe('tok-2');
    expect(b).toBe('tok-2');
    expect(hits).toHaveLength(2);
  });

  it('says retry when a newer token is being fetched', async () => {
    const g = gate();
    answer = g.answer;
    const p = provider();
    const pending = p.token();
    await hitCount(1);
    expect(p.invalidate('tok-0')).toBe(true);
    g.release();
    expect(await pending).toBe('tok-1');
  });

  it('says no retry for a token it never issued, or once closed', async () => {
    const p = provider();
    expect(p.invalidate('someone-elses')).toBe(false);
    const t = await p.token();
    await p.close();
    expect(p.invalidate(t)).toBe(false);
  });
});

describe('createTokenProvider: failures', () => {
  it('gives OAUTH2_REFUSED for wrong credentials, without the secret, the header or a token', async () => {
    const good = provider({ tokenUrl: `${base}/token?tenant=eu` });
    const token = await good.token();
    // A careless server echoing what it was sent, at length.
    answer = (hit) =>
      json(401, {
        error: 'invalid_client',
        error_description: `secret ${hit.via === 'basic' ? SECRET : ''} rejected; header ${hit.authorization} ${'x'.repeat(300)}`,
      });
    good.invalidate(token);
    const err = await failure(good.token());
    expect(err.code).toBe('OAUTH2_REFUSED');
    expect(err.permanent).toBe(true);
    expect(err.status).toBe(401);
    expect(err.name).toBe('OAuth2Error');
    expect(err.message).toMatch(
      new RegExp(
        `^OAuth 2\\.0 token endpoint ${base}/token refused the client credentials: 401 invalid_client \\(secret \\[redacted\\] rejected; header Basic \\[redacted\\] x+…\\); check the client id and secret Secrets`,
      ),
    );
    // The description is cut at 200 characters.
    const description = /invalid_client \((.*?)\); check/.exec(err.message)![1]!;
    expect(description.length).toBeLessThanOrEqual(200);
    const shown = everything(err);
    for (const leak of [SECRET, formEncode(SECRET), BASIC, token, 'tenant=eu'])
      expect(shown).not.toContain(leak);
  });

  it('gives OAUTH2_REFUSED for a wrong secret checked by the endpoint itself, and retries next time', async () => {
    const p = provider({ clientSecret: 'wrong-secret', clientAuth: 'body' });
    const err = await failure(p.token());
    expect(err.code).toBe('OAUTH2_REFUSED');
    expect(err.permanent).toBe(true);
    expect(err.message).toContain('401 invalid_client (Client authentication failed)');
    expect(everything(err)).not.toContain('wrong-secret');
    await failure(p.token());
    expect(hits).toHaveLength(2);
  });

  it('gives OAUTH2_UNAVAILABLE for 503 with its Retry-After, and the next call retries', async () => {
    answer = () => json(503, { error: 'temporarily_unavailable' }, { 'retry-after': '7' });
    const p = provider();
    const err = await failure(p.token());
    expect(err.code).toBe('OAUTH2_UNAVAILABLE');
    expect(err.permanent).toBe(false);
    expect(err.status).toBe(503);
    expect(err.retryAfterMs).toBe(7000);
    answer = () => newToken();
    expect(await p.token()).toBe('tok-1');
    expect(hits).toHaveLength(2);
  });

  it('gives OAUTH2_UNAVAILABLE for 429', async () => {
    answer = () => ({ status: 429, body: 'slow down' });
    const err = await failure(provider().token());
    expect(err.code).toBe('OAUTH2_UNAVAILABLE');
    expect(err.message).not.toContain('slow down');
  });

  it('gives OAUTH2_UNAVAILABLE when the endpoint cannot be reached', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const err = await failure(provider({ tokenUrl: `http://127.0.0.1:${port}/token` }).token());
    expect(err.code).toBe('OAUTH2_UNAVAILABLE');
    expect(err.permanent).toBe(false);
    expect(err.message).toContain('ECONNREFUSED');
    expect(everything(err)).not.toContain(BASIC);
  });

  it('gives OAUTH2_UNAVAILABLE when the endpoint does not answer in time', async () => {
    answer = () => new Promise<Answer>(() => {});
    const err = await failure(provider({ timeoutMs: 150 }).token());
    expect(err.code).toBe('OAUTH2_UNAVAILABLE');
    expect(err.message).toContain('no answer within 150 ms');
  });

  it('gives OAUTH2_BAD_RESPONSE (transient) for a 200 that is not JSON or has no access_token', async () => {
    answer = () => ({
      status: 200,
      body: '<html>maintenance</html>',
      headers: { 'content-type': 'text/html' },
    });
    const p = provider();
    const notJson = await failure(p.token());
    expect(notJson.code).toBe('OAUTH2_BAD_RESPONSE');
    expect(notJson.permanent).toBe(false);
    expect(notJson.message).toContain('not a JSON object (content-type text/html)');
    answer = () => json(200, { token_type: 'Bearer', expires_in: 3600 });
    const noToken = await failure(p.token());
    expect(noToken.code).toBe('OAUTH2_BAD_RESPONSE');
    expect(noToken.message).toContain('no access_token');
  });

  it('accepts token_type bearer in any case, and refuses another type for good', async () => {
    answer = () => newToken({ token_type: 'bearer' });
    expect(await provider().token()).toBe('tok-1');
    answer = () => newToken({ token_type: 'DPoP' });
    const err = await failure(provider().token());
    expect(err.code).toBe('OAUTH2_BAD_RESPONSE');
    expect(err.permanent).toBe(true);
    expect(everything(err)).not.toContain('tok-2');
  });

  it('does not follow a redirect (it would carry the credentials elsewhere)', async () => {
    answer = () => ({ status: 302, body: '', headers: { location: `${base}/elsewhere` } });
    const err = await failure(provider().token());
    expect(err.code).toBe('OAUTH2_REFUSED');
    expect(err.message).toContain('302; check the token URL');
    expect(hits.map((h) => h.path)).toEqual(['/token']);
  });

  it('close() aborts a fetch in flight, and token() then refuses', async () => {
    answer = () => new Promise<Answer>(() => {});
    const p = provider();
    const pending = failure(p.token());
    await hitCount(1);
    await p.close();
    const err = await pending;
    expect(err.code).toBe('OAUTH2_UNAVAILABLE');
    expect(err.message).toContain('closed');
    expect((await failure(p.token())).message).toContain('closed');
  });
});
