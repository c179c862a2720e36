// Webhook signature verification on the raw request body. Pure: the caller passes headers, the
// secret and the clock. Comparisons are timing-safe.
import { createHmac, timingSafeEqual } from 'node:crypto';

export type SignatureScheme = 'shopify-hmac-sha256' | 'hmac-sha256-hex' | 'none';

export interface SignatureSettings {
  scheme: SignatureScheme;
  /** Header with the signature (case-insensitive). */
  header: string;
  /** hmac-sha256-hex only: header with the Unix timestamp signed together with the body. */
  timestampHeader?: string | undefined;
  toleranceMs: number;
}

export type SignatureFailure =
  | 'missing_signature'
  | 'bad_signature'
  | 'missing_timestamp'
  | 'stale_timestamp';

export type VerifyResult = { ok: true } | { ok: false; reason: SignatureFailure; message: string };

export type HeaderBag = Readonly<Record<string, string | string[] | undefined>>;

/** A header by case-insensitive name; the first value when repeated. */
export function headerValue(headers: HeaderBag, name: string): string | undefined {
  const wanted = name.toLowerCase();
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() === wanted) return Array.isArray(v) ? v[0] : v;
  }
  return undefined;
}

function safeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Unix timestamp in seconds, or milliseconds when it has 13 digits or more. */
export function parseTimestampMs(text: string): number | undefined {
  const t = text.trim();
  if (!/^[0-9]{1,16}$/.test(t)) return undefined;
  const n = Number(t);
  return t.length >= 13 ? n : n * 1000;
}

export function verifySignature(
  settings: SignatureSettings,
  input: { rawBody: Buffer; headers: HeaderBag; secret: string | undefined; nowMs: number },
): VerifyResult {
  if (settings.scheme === 'none') return { ok: true };
  const secret = input.secret ?? '';
  const provided = headerValue(input.headers, settings.header)?.trim();
  if (!provided) {
    return { ok: false, reason: 'missing_signature', message: `missing ${settings.header} header` };
  }
  const bad: VerifyResult = {
    ok: false,
    reason: 'bad_signature',
    message: `${settings.header} does not match the request body`,
  };

  if (settings.scheme === 'shopify-hmac-sha256') {
    const expected = createHmac('sha256', secret).update(input.rawBody).digest('base64');
    return safeEqual(Buffer.from(provided), Buffer.from(expected)) ? { ok: true } : bad;
  }

  // hmac-sha256-hex, optionally over `${timestamp}.${body}`.
  const hex = provided.replace(/^sha256=/i, '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) return bad;
  const mac = createHmac('sha256', secret);
  let timestampMs: number | undefined;
  if (settings.timestampHeader) {
    const ts = headerValue(input.headers, settings.timestampHeader)?.trim();
    timestampMs = ts === undefined ? undefined : parseTimestampMs(ts);
    if (ts === undefined || timestampMs === undefined) {
      return {
        ok: false,
        reason: 'missing_timestamp',
        message: `missing or malformed ${settings.timestampHeader} header (want a Unix timestamp)`,
      };
    }
    mac.update(`${ts}.`);
  }
  mac.update(input.rawBody);
  if (!safeEqual(Buffer.from(hex, 'hex'), mac.digest())) return bad;
  if (timestampMs !== undefined && Math.abs(input.nowMs - timestampMs) > settings.toleranceMs) {
    return {
      ok: false,
      reason: 'stale_timestamp',
      message: `${settings.timestampHeader} is more than ${settings.toleranceMs} ms from the server clock`,
    };
  }
  return { ok: true };
}
