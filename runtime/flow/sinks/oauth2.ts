// OAuth 2.0 client-credentials grant (RFC 6749 §4.4) for the HTTP sinks: one access token per
// sink, cached until shortly before it expires, fetched by at most one request at a time.
//
// Choices the RFC leaves open:
// - No (or an unreadable) expires_in: the token is assumed to live DEFAULT_LIFETIME_S (5 min), so
//   it is reused for 4.5 min. Servers that omit it usually issue long-lived tokens; caching for a
//   while keeps the endpoint from being asked per event, and a token revoked sooner is caught by
//   the sink's 401 and invalidate().
// - A 2xx whose body is not JSON or has no access_token is OAUTH2_BAD_RESPONSE and transient: the
//   credentials were accepted, so the fault is the server's or a proxy's (a maintenance page, a
//   truncated body) and tends to pass; dead-lettering events for it would lose them for a blip.
//   A token_type other than Bearer is permanent instead: a deliberate answer retrying cannot change.
// - Failures are not cached: the next token() asks again. The caller's backoff paces the retries,
//   and single flight bounds the load to one request at a time.
//
// The client secret, the Authorization header and tokens never reach a message: server-supplied
// text is reduced to the `error` code and a sanitised, truncated error_description with the secret
// redacted, and no error keeps the request or the response as a property or cause.

import { Agent, type Dispatcher, request } from 'undici';
import { TallyError } from '../../../api/errors.ts';
import { classifyHttpStatus, parseRetryAfterMs } from '../classify.ts';

export interface OAuth2ClientCredentials {
  /** e.g. https://erp.example.com/services/rest/auth/oauth2/v1/token */
  tokenUrl: string;
  clientId: string;
  /** A secret: never in errors, logs or thrown messages. */
  clientSecret: string;
  /** Space-separated scopes. */
  scope?: string;
  /** Extra form parameter some servers need (Auth0, some ERPs). */
  audience?: string;
  /**
   * 'basic' (default; RFC 6749 §2.3.1: client_id and client_secret each form-urlencoded, joined by
   * ':', base64 in `Authorization: Basic`) or 'body' (client_id / client_secret form fields).
   */
  clientAuth?: 'basic' | 'body';
  /** Whole exchange (connect, answer, body); default 10 000. */
  timeoutMs?: number;
}

export interface TokenProvider {
  /**
   * A valid access token. Cached until `expires_in` minus a skew of 30 s or 10 % of the lifetime,
   * whichever is smaller (no expires_in: a lifetime of 5 min). Concurrent callers share one
   * in-flight fetch; a failed fetch is not remembered, so the next call fetches again.
   * Rejects with OAuth2Error.
   */
  token(): Promise<string>;
  /**
   * The sink got 401 with `refused`: drop it if it is still the cached token, so the next token()
   * fetches a new one. True when retrying with token() makes sense: the refused token was the
   * current one (or the one last dropped), or another (newer) token is cached or being fetched.
   * False when the provider holds nothing to retry with for it (a token it never issued) and after
   * close(). A token that is refused again after a refresh also gives true: the caller bounds its
   * own retries (one per event is apt).
   */
  invalidate(refused: string): boolean;
  /** Aborts a fetch in flight and closes the provider's own connections (not an injected dispatcher). */
  close(): Promise<void>;
}

export type OAuth2ErrorCode = 'OAUTH2_REFUSED' | 'OAUTH2_UNAVAILABLE' | 'OAUTH2_BAD_RESPONSE';

export interface OAuth2ErrorDetails {
  code: OAuth2ErrorCode;
  permanent: boolean;
  /** HTTP status when the token endpoint answered. */
  status?: number;
  /** Delay the token endpoint asked for (Retry-After on 429/503). */
  retryAfterMs?: number;
}

/** No token: refused (fix the config), unavailable (retry later) or an unusable answer. */
export class OAuth2Error extends TallyError {
  override name = 'OAuth2Error';
  readonly code: OAuth2ErrorCode;
  readonly permanent: boolean;
  readonly status: number | undefined;
  readonly retryAfterMs: number | undefined;
  constructor(message: string, details: OAuth2ErrorDetails, options?: ErrorOptions) {
    super(message, options);
    this.code = details.code;
    this.permanent = details.permanent;
    this.status = details.status;
    this.retryAfterMs = details.retryAfterMs;
  }
}

export interface TokenProviderOptions {
  /** Monotonic clock in ms; default performance.now. */
  now?: () => number;
  /** Connections to use (e.g. a proxy agent); the caller closes it. Default: the provider's own Agent. */
  dispatcher?: Dispatcher;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_LIFETIME_S = 300;
const MAX_SKEW_MS = 30_000;
const SKEW_FRACTION = 0.1;
/** Tokens (JWTs with many claims) stay well below this; a larger body is not a token answer. */
const MAX_BODY_BYTES = 256 * 1024;
const DESCRIPTION_CHARS = 200;
const ERROR_CODE_CHARS = 64;

interface Cached {
  token: string;
  /** now() from which it is no longer handed out. */
  refreshAt: number;
}

/** application/x-www-form-urlencoded serialisation of one value (RFC 6749 Appendix B). */
function formEncode(value: string): string {
  return new URLSearchParams([['', value]]).toString().slice(1);
}

/** The URL as it may appear in messages: no userinfo, query or fragment. */
function displayUrl(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

/** Printable ASCII only (no header or log injection), secrets replaced, at most `max` chars. */
function sanitize(text: string, secrets: readonly string[], max: number): string {
  // Redact before filtering, so a secret with non-ASCII characters is still recognised whole.
  const redact = (t: string) => secrets.reduce((acc, s) => (s ? acc.split(s).join('[redacted]') : acc), t);
  const out = redact(
    redact(text)
      .replace(/[^\x20-\x7e]+/g, ' ')
      .trim(),
  );
  return out.length > max ? `${out.slice(0, max - 1)}…` : out;
}

/** expires_in in ms, or undefined when absent or unreadable (some servers send a numeric string). */
function lifetimeMs(value: unknown): number | undefined {
  const n =
    typeof value === 'number' ? value : typeof value === 'string' && value.trim() ? Number(value) : NaN;
  return Number.isFinite(n) && n >= 0 ? n * 1000 : undefined;
}

async function readBody(
  body: Dispatcher.ResponseData['body'],
): Promise<{ text: string; truncated: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    chunks.push(Buffer.from(chunk));
    size += chunk.length;
    if (size > MAX_BODY_BYTES) {
      body.destroy();
      return { text: '', truncated: true };
    }
  }
  return { text: Buffer.concat(chunks).toString('utf8'), truncated: false };
}

function parseJson(text: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return v !== null && typeof v === 'object' && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

export function createTokenProvider(
  config: OAuth2ClientCredentials,
  options: TokenProviderOptions = {},
): TokenProvider {
  let url: URL;
  try {
    url = new URL(config.tokenUrl);
  } catch {
    // Not echoed: a malformed URL may still hold credentials.
    throw new TypeError('OAuth 2.0 tokenUrl is not a valid URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new TypeError(`OAuth 2.0 tokenUrl must be http(s), not ${url.protocol}`);
  }
  if (!config.clientId) throw new TypeError('OAuth 2.0 clientId is empty');
  if (!config.clientSecret) throw new TypeError('OAuth 2.0 clientSecret is empty');
  const where = `OAuth 2.0 token endpoint ${displayUrl(url)}`;
  const timeoutMs = config.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const clientAuth = config.clientAuth ?? 'basic';
  const now = options.now ?? (() => performance.now());

  // The request is the same every time: build it once.
  const form = new URLSearchParams({ grant_type: 'client_credentials' });
  if (config.scope?.trim()) form.set('scope', config.scope.trim());
  if (config.audience) form.set('audience', config.audience);
  const headers: Record<string, string> = {
    'content-type': 'application/x-www-form-urlencoded',
    accept: 'application/json',
  };
  const basic = Buffer.from(`${formEncode(config.clientId)}:${formEncode(config.clientSecret)}`).toString(
    'base64',
  );
  if (clientAuth === 'basic') {
    headers.authorization = `Basic ${basic}`;
  } else {
    form.set('client_id', config.clientId);
    form.set('client_secret', config.clientSecret);
  }
  const body = form.toString();
  // Every form a server could echo the secret in.
  const secrets = [config.clientSecret, formEncode(config.clientSecret), basic];

  const ownAgent = options.dispatcher
    ? undefined
    : new Agent({
        connections: 1,
        connectTimeout: timeoutMs,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
  const dispatcher = options.dispatcher ?? ownAgent!;
  const closing = new AbortController();

  let current: Cached | undefined;
  let inflight: Promise<string> | undefined;
  /** The last token dropped by invalidate(): a second 401 with it still deserves a retry. */
  let dropped: string | undefined;

  const unavailable = (message: string, status?: number, retryAfterMs?: number, cause?: unknown) =>
    new OAuth2Error(
      message,
      {
        code: 'OAUTH2_UNAVAILABLE',
        permanent: false,
        ...(status !== undefined ? { status } : {}),
        ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
      },
      cause === undefined ? undefined : { cause },
    );

  const fromTransportError = (err: unknown): OAuth2Error => {
    if (err instanceof OAuth2Error) return err;
    if (closing.signal.aborted) return unavailable(`${where}: the token provider was closed`);
    const e = err as Error & { code?: string };
    const timedOut =
      e.name === 'TimeoutError' ||
      e.code === 'UND_ERR_HEADERS_TIMEOUT' ||
      e.code === 'UND_ERR_BODY_TIMEOUT' ||
      e.code === 'UND_ERR_CONNECT_TIMEOUT';
    if (timedOut) return unavailable(`${where} gave no answer within ${timeoutMs} ms`);
    // Transport errors name the host and errno, never the request's headers or body: safe as a cause.
    return unavailable(
      `${where} could not be reached: ${e.code ? `${e.code} ` : ''}${sanitize(String(e.message), secrets, DESCRIPTION_CHARS)}`,
      undefined,
      undefined,
      err,
    );
  };

  /** An answer other than 2xx. */
  const fromErrorAnswer = (status: number, text: string, retryAfter: string | undefined): OAuth2Error => {
    const json = parseJson(text);
    const error = typeof json?.error === 'string' ? sanitize(json.error, secrets, ERROR_CODE_CHARS) : '';
    const description =
      typeof json?.error_description === 'string'
        ? sanitize(json.error_description, secrets, DESCRIPTION_CHARS)
        : '';
    const said = `${status}${error ? ` ${error}` : ''}${description ? ` (${description})` : ''}`;
    // Same split as the sink's own answers; some servers answer 400 temporarily_unavailable for an outage.
    if (classifyHttpStatus(status) === 'transient' || error === 'temporarily_unavailable') {
      const askedMs =
        status === 429 || status === 503 ? parseRetryAfterMs(retryAfter, Date.now()) : undefined;
      return unavailable(`${where} is unavailable: ${said}; retrying later`, status, askedMs);
    }
    let hint: string;
    if (status === 400 || status === 401 || status === 403) {
      hint =
        error === 'invalid_scope'
          ? 'check the scope'
          : error === 'unauthorized_client' || error === 'unsupported_grant_type'
            ? 'the client must be allowed the client_credentials grant'
            : `check the client id and secret Secrets (sent as ${clientAuth === 'basic' ? 'HTTP Basic' : 'form fields'}; see clientAuth)`;
      return new OAuth2Error(`${where} refused the client credentials: ${said}; ${hint}`, {
        code: 'OAUTH2_REFUSED',
        permanent: true,
        status,
      });
    }
    // 3xx (not followed: that would send the credentials elsewhere), 404, 405, ...: the URL is wrong.
    return new OAuth2Error(`${where} refused the token request: ${said}; check the token URL`, {
      code: 'OAUTH2_REFUSED',
      permanent: true,
      status,
    });
  };

  const badResponse = (status: number, what: string, permanent = false) =>
    new OAuth2Error(`${where} answered ${status} but ${what}`, {
      code: 'OAUTH2_BAD_RESPONSE',
      permanent,
      status,
    });

  const fetchToken = async (): Promise<string> => {
    // The lifetime counts from before the request: the server starts it somewhere in between.
    const sentAt = now();
    let res: Dispatcher.ResponseData;
    let text: string;
    let truncated: boolean;
    try {
      res = await request(url, {
        dispatcher,
        method: 'POST',
        headers,
        body,
        signal: AbortSignal.any([AbortSignal.timeout(timeoutMs), closing.signal]),
      });
      ({ text, truncated } = await readBody(res.body));
    } catch (err) {
      throw fromTransportError(err);
    }
    const status = res.statusCode;
    if (status < 200 || status >= 300) {
      const retryAfter = res.headers['retry-after'];
      throw fromErrorAnswer(status, text, Array.isArray(retryAfter) ? retryAfter[0] : retryAfter);
    }
    if (truncated) throw badResponse(status, `the body exceeds ${MAX_BODY_BYTES} bytes`);
    const json = parseJson(text);
    if (!json) {
      const type = sanitize(String(res.headers['content-type'] ?? 'none'), secrets, 80);
      throw badResponse(status, `the body is not a JSON object (content-type ${type})`);
    }
    const token = json.access_token;
    if (typeof token !== 'string' || token === '') throw badResponse(status, 'the body has no access_token');
    // It goes into a header: visible ASCII only.
    if (!/^[\x21-\x7e]+$/.test(token))
      throw badResponse(status, 'the access_token has characters a header cannot carry');
    const type = json.token_type;
    if (type !== undefined && (typeof type !== 'string' || type.toLowerCase() !== 'bearer')) {
      throw badResponse(
        status,
        `the token_type is ${typeof type === 'string' ? sanitize(type, [...secrets, token], ERROR_CODE_CHARS) : typeof type}, not Bearer`,
        true,
      );
    }
    const lifetime = lifetimeMs(json.expires_in) ?? DEFAULT_LIFETIME_S * 1000;
    current = { token, refreshAt: sentAt + lifetime - Math.min(MAX_SKEW_MS, lifetime * SKEW_FRACTION) };
    return token;
  };

  return {
    token() {
      if (closing.signal.aborted)
        return Promise.reject(unavailable(`${where}: the token provider was closed`));
      if (current && now() < current.refreshAt) return Promise.resolve(current.token);
      if (!inflight) {
        inflight = fetchToken().finally(() => {
          inflight = undefined;
        });
      }
      return inflight;
    },
    invalidate(refused) {
      if (closing.signal.aborted) return false;
      if (current?.token === refused) {
        current = undefined;
        dropped = refused;
        return true;
      }
      // Tokens are only ever replaced by newer ones: a different current token or a fetch in flight
      // is newer than the refused one, so leave it and let the caller retry with it.
      if (current || inflight) return true;
      return refused === dropped;
    },
    async close() {
      closing.abort();
      await inflight?.catch(() => {});
      current = undefined;
      await ownAgent?.close().catch(() => {});
    },
  };
}
