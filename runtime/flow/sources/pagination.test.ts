import { describe, expect, it } from 'vitest';
import {
  firstRequest,
  nextFromLinkHeader,
  nextRequest,
  PaginationError,
  parseLinkHeader,
  sameOrigin,
  withParams,
} from './pagination.ts';

describe('parseLinkHeader', () => {
  it('reads GitHub-style links with several relations', () => {
    const links = parseLinkHeader(
      '<https://api.example.com/orders?page=2>; rel="next", <https://api.example.com/orders?page=9>; rel="last"',
    );
    expect(links.map((l) => [l.target, l.rels])).toEqual([
      ['https://api.example.com/orders?page=2', ['next']],
      ['https://api.example.com/orders?page=9', ['last']],
    ]);
  });

  it('keeps commas inside the URL and quoted values, and splits rel lists', () => {
    const links = parseLinkHeader(
      '<https://x.test/a?fields=id,name>; title="a, b"; rel="prev next", </b>;rel=last',
    );
    expect(links[0]).toEqual({
      target: 'https://x.test/a?fields=id,name',
      rels: ['prev', 'next'],
      params: { title: 'a, b', rel: 'prev next' },
    });
    expect(links[1]).toMatchObject({ target: '/b', rels: ['last'] });
  });

  it('is case-insensitive in rel and tolerant of junk', () => {
    expect(parseLinkHeader('<u1>; REL="Next"')[0]?.rels).toEqual(['next']);
    expect(parseLinkHeader('garbage')).toEqual([]);
    expect(parseLinkHeader(undefined)).toEqual([]);
    expect(parseLinkHeader('<u1>; rel=next junk, <u2>; rel=prev').map((l) => l.rels)).toEqual([
      ['next'],
      ['prev'],
    ]);
  });
});

describe('nextFromLinkHeader', () => {
  it('resolves a relative next link against the URL requested', () => {
    expect(nextFromLinkHeader('</api/orders?cursor=abc>; rel="next"', 'http://h:1/api/orders?x=1')).toBe(
      'http://h:1/api/orders?cursor=abc',
    );
  });
  it('is undefined on the last page and rejects other schemes', () => {
    expect(nextFromLinkHeader('<http://h/p1>; rel="prev"', 'http://h/')).toBeUndefined();
    expect(() => nextFromLinkHeader('<ftp://h/p2>; rel="next"', 'http://h/')).toThrow(PaginationError);
  });
});

describe('firstRequest / nextRequest', () => {
  const base = 'http://erp.test/api/invoices?top=100';

  it('puts the cursor on the first page and nothing more without pagination', () => {
    const first = firstRequest(
      base,
      { type: 'none' },
      { param: 'modifiedSince', value: '2026-01-01T00:00:00Z' },
    );
    expect(first.url).toBe('http://erp.test/api/invoices?top=100&modifiedSince=2026-01-01T00%3A00%3A00Z');
    expect(nextRequest({ type: 'none' }, first, first, { recordCount: 100 })).toBeUndefined();
  });

  it('passes a next token as a parameter on the first URL (the cursor stays)', () => {
    const p = { type: 'nextToken' as const, tokenField: 'next', tokenParam: 'skipToken' };
    const first = firstRequest(base, p, { param: 'since', value: '5' });
    const second = nextRequest(p, first, first, { token: 'tok 1', recordCount: 3 });
    expect(second).toEqual({ url: `${base}&since=5&skipToken=tok+1`, index: 2 });
    const third = nextRequest(p, first, second!, { token: 'tok2', recordCount: 3 });
    expect(third?.url).toBe(`${base}&since=5&skipToken=tok2`);
    for (const token of [undefined, null, '', false]) {
      expect(nextRequest(p, first, second!, { token, recordCount: 3 })).toBeUndefined();
    }
    expect(() => nextRequest(p, first, first, { token: { a: 1 }, recordCount: 1 })).toThrow(/tokenField/);
  });

  it('follows a next token that is a URL when there is no tokenParam (OData nextLink)', () => {
    const p = { type: 'nextToken' as const, tokenField: '`@odata.nextLink`' };
    const first = firstRequest(base, p, undefined);
    expect(nextRequest(p, first, first, { token: '/api/invoices?$skiptoken=42', recordCount: 1 })?.url).toBe(
      'http://erp.test/api/invoices?$skiptoken=42',
    );
  });

  it('counts pages from 1 and stops at the first empty page', () => {
    const p = { type: 'pageNumber' as const, pageParam: 'p' };
    const first = firstRequest(base, p, { param: 'since', value: '7' });
    expect(first).toEqual({ url: `${base}&since=7&p=1`, index: 1, pageNumber: 1 });
    const second = nextRequest(p, first, first, { recordCount: 50 });
    expect(second).toEqual({ url: `${base}&since=7&p=2`, index: 2, pageNumber: 2 });
    expect(nextRequest(p, first, second!, { recordCount: 0 })).toBeUndefined();
    expect(firstRequest(base, { type: 'pageNumber' }, undefined).url).toBe(`${base}&page=1`);
  });

  it('follows Link headers', () => {
    const p = { type: 'linkHeader' as const };
    const first = firstRequest(base, p, undefined);
    expect(nextRequest(p, first, first, { link: '<?page=2>; rel="next"', recordCount: 1 })).toEqual({
      url: 'http://erp.test/api/invoices?page=2',
      index: 2,
    });
    expect(nextRequest(p, first, first, { recordCount: 1 })).toBeUndefined();
  });
});

describe('helpers', () => {
  it('withParams replaces a parameter of the same name', () => {
    expect(withParams('http://h/x?a=1&b=2', { a: '3', c: undefined })).toBe('http://h/x?a=3&b=2');
  });
  it('sameOrigin compares scheme, host and port', () => {
    expect(sameOrigin('http://h:80/a', 'http://h/b')).toBe(true);
    expect(sameOrigin('https://h/a', 'http://h/a')).toBe(false);
    expect(sameOrigin('http://evil/a', 'http://h/a')).toBe(false);
  });
});
