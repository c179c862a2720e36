// Masks credentials in text that leaves the worker: error messages (and so dead letters, the
// reason's log line) built from a target's answer or a URL. A target that echoes the request back
// in its error body — headers included — must not leak the sink's token into Tally-Error-Message.
// Pure; the patterns are deliberately broad (a masked non-secret costs less than a leaked secret).

/** What a masked value is replaced with. */
export const REDACTED = '[redacted]';

/** Shortest known secret value that is masked wherever it appears (shorter ones would mask noise). */
const MIN_SECRET_LENGTH = 6;

/** Well-known token formats, masked wherever they appear. */
const TOKEN_PATTERNS: readonly RegExp[] = [
  // JSON Web Tokens (header.payload.signature; alg none has an empty signature).
  /\beyJ[0-9A-Za-z_-]{4,}\.eyJ[0-9A-Za-z_-]{4,}\.[0-9A-Za-z_-]*/g,
  // Stripe secret and restricted keys, webhook signing secrets.
  /\b(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{6,}/g,
  /\bwhsec_[0-9A-Za-z+/=]{6,}/g,
  // Shopify access tokens (admin, custom app, private app, shared secret).
  /\bshp(?:at|ca|pa|ss)_[0-9A-Za-z]{6,}/g,
  // GitHub tokens.
  /\b(?:ghp|gho|ghu|ghs|ghr)_[0-9A-Za-z]{6,}/g,
  /\bgithub_pat_[0-9A-Za-z_]{6,}/g,
  // Slack tokens.
  /\bxox[abprs]-[0-9A-Za-z-]{6,}/g,
  // AWS access key ids.
  /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/g,
  // PEM private keys.
  /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)/g,
];

/** `Bearer <token>` anywhere (a bare token of 8 characters or more). */
const BEARER = /\b(Bearer)(\s+)(?!\[redacted\])([A-Za-z0-9._~+/=:-]{8,})/gi;
/** `Basic <base64>` anywhere, when it looks like base64 and not a word ("Basic authentication"). */
const BASIC = /\b(Basic)(\s+)([A-Za-z0-9+/]{8,}={0,2})(?![A-Za-z0-9+/=])/gi;
const looksEncoded = (s: string) => /[0-9+/=]/.test(s) || /[a-z].*[A-Z]|[A-Z].*[a-z]/.test(s.slice(1));

/** Userinfo of a URL: `https://user:pass@host/` -> `https://[redacted]@host/` (up to the last @). */
const URL_USERINFO = /\b([A-Za-z][A-Za-z0-9+.-]*:\/\/)(?!\[redacted\]@)[^/?#\s"'<>]*@/g;

/** Cookie headers: every pair of the value is a potential session. */
const COOKIE = /\b((?:set-)?cookie)(["']?\s*[:=]\s*)(?!\[redacted\])(["']?)[^"'\r\n]+/gi;

/**
 * Names whose values are secrets, wherever they appear as `name=value` (query, form),
 * `name: value` (headers, YAML) or `"name": "value"` (JSON): password, client_secret, access_token,
 * X-API-Key, Authorization, X-Shopify-Access-Token, ...
 */
const SECRET_NAME =
  '[A-Za-z0-9_.-]*(?:password|passwd|passphrase|pwd|secret|token|api[-_]?key|apikey|access[-_]?key|authorization|session[-_]?id|private[-_]?key)[A-Za-z0-9_.-]*';
const SCHEMES = '(?:Bearer|Basic|Digest|Token)';
const KEY_VALUE = new RegExp(
  // 1: opening quote of the name; 2: the name; 3: the separator; 4: the value (an auth scheme is kept).
  `(["']?)\\b(${SECRET_NAME})\\1(\\s*[:=]\\s*)("(?:[^"\\\\]|\\\\.)*"|'[^']*'|(?:${SCHEMES}\\s+|(?!${SCHEMES}\\s))(?!\\[redacted\\])[^\\s"',;&}\\]<>]+)`,
  'gi',
);

/** Names that merely mention a secret: tokenUrl, token_type, api_key_header, ... */
const NOT_SECRET_NAME = /(?:url|uri|endpoint|type|header|expires?(?:[-_]?in|[-_]?at)?)$/i;

function maskValue(value: string): string {
  if (value.startsWith('"')) return `"${REDACTED}"`;
  if (value.startsWith("'")) return `'${REDACTED}'`;
  const scheme = new RegExp(`^(${SCHEMES})(\\s+)`, 'i').exec(value);
  return scheme ? `${scheme[1]}${scheme[2]}${REDACTED}` : REDACTED;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export interface RedactOptions {
  /**
   * Secret values known to the caller (the sink's token, password, API key), masked wherever
   * they appear, whatever surrounds them. Values shorter than 6 characters are ignored.
   */
  secrets?: readonly (string | undefined)[];
}

/** `text` with credentials masked. Idempotent: redact(redact(t)) === redact(t). */
export function redact(text: string, options: RedactOptions = {}): string {
  if (text === '') return text;
  let out = text;
  const known = [...new Set((options.secrets ?? []).filter((s): s is string => !!s))]
    .filter((s) => s.length >= MIN_SECRET_LENGTH)
    .sort((a, b) => b.length - a.length);
  for (const secret of known) out = out.replace(new RegExp(escapeRegExp(secret), 'g'), REDACTED);
  out = out.replace(URL_USERINFO, (_m, scheme: string) => `${scheme}${REDACTED}@`);
  out = out.replace(
    COOKIE,
    (_m, name: string, sep: string, quote: string) => `${name}${sep}${quote}${REDACTED}`,
  );
  out = out.replace(KEY_VALUE, (m, quote: string, name: string, sep: string, value: string) =>
    NOT_SECRET_NAME.test(name) ? m : `${quote}${name}${quote}${sep}${maskValue(value)}`,
  );
  out = out.replace(BEARER, (_m, scheme: string, space: string) => `${scheme}${space}${REDACTED}`);
  out = out.replace(BASIC, (m, scheme: string, space: string, value: string) =>
    looksEncoded(value) ? `${scheme}${space}${REDACTED}` : m,
  );
  for (const pattern of TOKEN_PATTERNS) out = out.replace(pattern, REDACTED);
  return out;
}

/**
 * The secret parts of a credential header value, for RedactOptions.secrets: the value itself, the
 * credentials after an auth scheme, and for Basic the decoded `user:password` and the password.
 */
export function credentialSecrets(value: string | undefined): string[] {
  if (!value) return [];
  const out = [value];
  const m = /^\s*(\w+)\s+(\S+)\s*$/.exec(value);
  if (m) {
    out.push(m[2]!);
    if (m[1]!.toLowerCase() === 'basic') {
      const decoded = Buffer.from(m[2]!, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon >= 0) out.push(decoded, decoded.slice(colon + 1));
    }
  }
  return out;
}

/** A URL for messages: userinfo and secret query values masked; not a URL -> redacted text. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.username || u.password) {
      u.username = '';
      u.password = '';
      return redact(u.href.replace('://', `://${REDACTED}@`));
    }
    return redact(u.href);
  } catch {
    return redact(url);
  }
}
