import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  headerValue,
  parseTimestampMs,
  type SignatureSettings,
  verifySignature,
} from './webhook-signature.ts';

const secret = 'shh';
const body = Buffer.from('{"id":1}');
const now = 1_800_000_000_000;

const shopify: SignatureSettings = {
  scheme: 'shopify-hmac-sha256',
  header: 'X-Shopify-Hmac-Sha256',
  toleranceMs: 0,
};
const hex: SignatureSettings = { scheme: 'hmac-sha256-hex', header: 'X-Signature', toleranceMs: 300_000 };
const hexTs: SignatureSettings = { ...hex, timestampHeader: 'X-Timestamp' };

const b64 = (data: string | Buffer) => createHmac('sha256', secret).update(data).digest('base64');
const hexOf = (data: string | Buffer) => createHmac('sha256', secret).update(data).digest('hex');

describe('verifySignature', () => {
  it('accepts a Shopify base64 HMAC of the raw body, header name case-insensitive', () => {
    const r = verifySignature(shopify, {
      rawBody: body,
      headers: { 'x-shopify-hmac-sha256': b64(body) },
      secret,
      nowMs: now,
    });
    expect(r).toEqual({ ok: true });
  });

  it('rejects a Shopify signature made with another secret or over another body', () => {
    const other = createHmac('sha256', 'nope').update(body).digest('base64');
    for (const sig of [other, b64('{"id":2}'), 'garbage', '']) {
      const r = verifySignature(shopify, {
        rawBody: body,
        headers: { 'x-shopify-hmac-sha256': sig },
        secret,
        nowMs: now,
      });
      expect(r.ok).toBe(false);
    }
  });

  it('says the header is missing when it is', () => {
    const r = verifySignature(shopify, { rawBody: body, headers: {}, secret, nowMs: now });
    expect(r).toMatchObject({
      ok: false,
      reason: 'missing_signature',
      message: 'missing X-Shopify-Hmac-Sha256 header',
    });
  });

  it('accepts hex HMAC with or without the sha256= prefix, in any case', () => {
    for (const sig of [hexOf(body), `sha256=${hexOf(body)}`, hexOf(body).toUpperCase()]) {
      const r = verifySignature(hex, { rawBody: body, headers: { 'x-signature': sig }, secret, nowMs: now });
      expect(r).toEqual({ ok: true });
    }
    const bad = verifySignature(hex, {
      rawBody: body,
      headers: { 'x-signature': hexOf('x') },
      secret,
      nowMs: now,
    });
    expect(bad).toMatchObject({ ok: false, reason: 'bad_signature' });
  });

  it('signs "<timestamp>.<body>" when a timestamp header is configured, within the tolerance', () => {
    const ts = String(Math.floor(now / 1000));
    const sig = hexOf(`${ts}.${body.toString()}`);
    const at = (nowMs: number) =>
      verifySignature(hexTs, {
        rawBody: body,
        headers: { 'x-signature': sig, 'x-timestamp': ts },
        secret,
        nowMs,
      });
    expect(at(now)).toEqual({ ok: true });
    expect(at(now + 300_000)).toEqual({ ok: true });
    expect(at(now - 300_000)).toEqual({ ok: true });
    expect(at(now + 300_001)).toMatchObject({ ok: false, reason: 'stale_timestamp' });
    expect(at(now - 301_000)).toMatchObject({ ok: false, reason: 'stale_timestamp' });
  });

  it('rejects a body-only signature when the timestamp is required, and a missing timestamp', () => {
    const ts = String(Math.floor(now / 1000));
    const bodyOnly = verifySignature(hexTs, {
      rawBody: body,
      headers: { 'x-signature': hexOf(body), 'x-timestamp': ts },
      secret,
      nowMs: now,
    });
    expect(bodyOnly).toMatchObject({ ok: false, reason: 'bad_signature' });
    const missing = verifySignature(hexTs, {
      rawBody: body,
      headers: { 'x-signature': hexOf(body) },
      secret,
      nowMs: now,
    });
    expect(missing).toMatchObject({ ok: false, reason: 'missing_timestamp' });
  });

  it('a replayed request with a changed timestamp does not verify', () => {
    const ts = String(Math.floor(now / 1000) - 3600);
    const sig = hexOf(`${ts}.${body.toString()}`);
    const fresh = String(Math.floor(now / 1000));
    const r = verifySignature(hexTs, {
      rawBody: body,
      headers: { 'x-signature': sig, 'x-timestamp': fresh },
      secret,
      nowMs: now,
    });
    expect(r).toMatchObject({ ok: false, reason: 'bad_signature' });
  });

  it('scheme none accepts anything', () => {
    expect(
      verifySignature(
        { scheme: 'none', header: 'X', toleranceMs: 0 },
        { rawBody: body, headers: {}, secret: undefined, nowMs: now },
      ),
    ).toEqual({ ok: true });
  });
});

describe('helpers', () => {
  it('reads timestamps in seconds or milliseconds', () => {
    expect(parseTimestampMs('1800000000')).toBe(1_800_000_000_000);
    expect(parseTimestampMs('1800000000123')).toBe(1_800_000_000_123);
    expect(parseTimestampMs('12.5')).toBeUndefined();
    expect(parseTimestampMs('')).toBeUndefined();
  });
  it('finds headers case-insensitively, first value of a list', () => {
    expect(headerValue({ 'x-a': ['1', '2'] }, 'X-A')).toBe('1');
    expect(headerValue({}, 'X-A')).toBeUndefined();
  });
});
