import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { credentialSecrets, REDACTED, redact, redactUrl } from './redact.ts';

describe('redact', () => {
  it('masks the credentials of request headers a target echoes back as JSON', () => {
    const body = JSON.stringify({
      error: 'bad request',
      headers: {
        authorization: 'Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0YWxseSJ9.c2lnbmF0dXJl',
        'x-api-key': 'k-1234567890',
        'x-shopify-access-token': 'shpat_0123456789abcdef0123456789abcdef',
        cookie: 'session=abc123; theme=dark',
        'idempotency-key': 'Order:shopify-51:2026-11-20T16:15:02Z',
        'content-type': 'application/json',
      },
    });
    const out = redact(body);
    expect(out).not.toMatch(/eyJ|k-1234567890|shpat_|abc123/);
    expect(JSON.parse(out)).toEqual({
      error: 'bad request',
      headers: {
        authorization: REDACTED,
        'x-api-key': REDACTED,
        'x-shopify-access-token': REDACTED,
        cookie: REDACTED,
        'idempotency-key': 'Order:shopify-51:2026-11-20T16:15:02Z',
        'content-type': 'application/json',
      },
    });
  });

  it('masks header lines, keeping the auth scheme', () => {
    expect(redact('Authorization: Bearer s3cr3t-token-value\r\nAccept: */*')).toBe(
      `Authorization: Bearer ${REDACTED}\r\nAccept: */*`,
    );
    expect(redact('authorization=Basic dXNlcjpwYXNz')).toBe(`authorization=Basic ${REDACTED}`);
    expect(redact('Set-Cookie: sid=1a2b3c; Path=/; HttpOnly')).toBe(`Set-Cookie: ${REDACTED}`);
  });

  it('masks password=, secrets and tokens in query strings and forms', () => {
    expect(redact('user=bob&password=hunter2&grant_type=client_credentials')).toBe(
      `user=bob&password=${REDACTED}&grant_type=client_credentials`,
    );
    expect(redact('GET /orders?access_token=abc123&page=2')).toBe(
      `GET /orders?access_token=${REDACTED}&page=2`,
    );
    expect(redact("client_secret: 'xyz987654'")).toBe(`client_secret: '${REDACTED}'`);
    expect(redact('{"refresh_token":"r-\\"quoted\\"-1"}')).toBe(`{"refresh_token":"${REDACTED}"}`);
    expect(redact('db_password=pa55;next')).toBe(`db_password=${REDACTED};next`);
  });

  it('masks well-known token formats wherever they appear', () => {
    const samples = [
      'sk_live_51HabcdefGHIJKLmnop',
      'rk_test_0123456789',
      'shpat_0123456789abcdef0123456789abcdef',
      'shpss_0123456789abcdef0123456789abcdef',
      'ghp_0123456789abcdefABCDEF0123456789',
      'xoxb-123456789012-abcdefghij',
      'AKIAIOSFODNN7EXAMPLE',
      'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig-nature_x',
      'eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.',
    ];
    for (const token of samples) {
      expect(redact(`the target said: invalid key ${token} (see docs)`)).toBe(
        `the target said: invalid key ${REDACTED} (see docs)`,
      );
    }
    expect(redact('Bearer abcdefgh12345678 was refused')).toBe(`Bearer ${REDACTED} was refused`);
    expect(redact('-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----')).toBe(REDACTED);
  });

  it('masks the userinfo of URLs', () => {
    expect(redact('POST https://user:p%40ss@erp.example.com/api failed')).toBe(
      `POST https://${REDACTED}@erp.example.com/api failed`,
    );
    expect(redact('at http://a@b:c@host:8080/x')).toBe(`at http://${REDACTED}@host:8080/x`);
    expect(redact('https://erp.example.com/orders?email=a@b.example')).toBe(
      'https://erp.example.com/orders?email=a@b.example',
    );
    expect(redactUrl('https://u:p@h.example/x?token=abc&x=1')).toBe(
      `https://${REDACTED}@h.example/x?token=${REDACTED}&x=1`,
    );
    expect(redactUrl('not a url, password=x1')).toBe(`not a url, password=${REDACTED}`);
  });

  it('masks the exact secrets it is given, whatever surrounds them', () => {
    const header = `Basic ${Buffer.from('bob:hunter22').toString('base64')}`;
    const secrets = credentialSecrets(header);
    expect(secrets).toEqual([header, header.slice(6), 'bob:hunter22', 'hunter22']);
    expect(redact('echo <p>hunter22</p> and Ym9iOmh1bnRlcjIy', { secrets })).toBe(
      `echo <p>${REDACTED}</p> and ${REDACTED}`,
    );
    // Short values would mask noise; they are left to the patterns.
    expect(redact('abc appears', { secrets: ['abc', undefined] })).toBe('abc appears');
  });

  it('leaves ordinary error text alone', () => {
    const texts = [
      'sink erp-orders: POST https://erp.example.com/api/sales-orders answered 422: {"error":"unknown sku SKU-1"}',
      'OAuth 2.0 token endpoint https://erp.example.com/token answered 401: {"error":"invalid_client"}',
      'Basic authentication failed; a Bearer token is required',
      'Idempotency-Key: Order:shopify-51:3 tokenUrl: https://a.example/t token_type: bearer',
      'X-Signature-Timestamp is more than 300000 ms from the server clock',
      'OAuth 2.0 token endpoint https://erp.example.com/token refused the client credentials: 401 invalid_client',
    ];
    for (const t of texts) expect(redact(t)).toBe(t);
  });

  it('is idempotent and never lets a known secret through', () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 40 }),
        fc.stringMatching(/^[A-Za-z0-9]{6,24}$/).filter((s) => !REDACTED.includes(s)),
        fc.string({ maxLength: 40 }),
        (before, secret, after) => {
          const once = redact(`${before}${secret}${after}`, { secrets: [secret] });
          expect(once).not.toContain(secret);
          expect(redact(once)).toBe(once);
        },
      ),
    );
  });
});
