// Pagination of a polled REST listing, as pure functions: the URL of the first page, and from one
// response the URL of the next page (RFC 8288 Link rel="next", a next token, or page numbers until
// an empty page). The poller does the I/O and evaluates the token path; nothing here fetches.
import { TallyError } from '../../../api/errors.ts';

export type PaginationType = 'none' | 'linkHeader' | 'nextToken' | 'pageNumber';

export interface PaginationConfig {
  type: PaginationType;
  /** nextToken: JSONata path of the token in the body (the poller evaluates it). */
  tokenField?: string | undefined;
  /** nextToken: query parameter taking the token; without it the token must be a URL (e.g. OData nextLink). */
  tokenParam?: string | undefined;
  /** pageNumber: query parameter with the page number; default "page". */
  pageParam?: string | undefined;
}

export const DEFAULT_PAGE_PARAM = 'page';
/** Page numbers start at 1. */
export const FIRST_PAGE = 1;

export const PAGINATION_ERROR_CODES = {
  invalidNext: 'POLL_PAGINATION_INVALID_NEXT',
} as const;

/** The response named a next page that cannot be requested (not a URL, another scheme). */
export class PaginationError extends TallyError {
  override name = 'PaginationError';
  readonly code = PAGINATION_ERROR_CODES.invalidNext;
}

export interface LinkValue {
  /** The target as written (a URI reference, maybe relative). */
  target: string;
  /** Lower-cased relation types (rel may list several, space separated). */
  rels: string[];
  /** Other parameters, lower-cased names, unquoted values. */
  params: Record<string, string>;
}

/**
 * Parse an RFC 8288 Link header: `<url>; rel="next", <url>; rel="prev last"`. Commas inside
 * `<...>` and inside quoted parameter values do not split links. Malformed parts are skipped.
 */
export function parseLinkHeader(value: string | undefined): LinkValue[] {
  if (!value) return [];
  const out: LinkValue[] = [];
  let i = 0;
  const n = value.length;
  while (i < n) {
    const open = value.indexOf('<', i);
    if (open < 0) break;
    const close = value.indexOf('>', open + 1);
    if (close < 0) break;
    const target = value.slice(open + 1, close).trim();
    i = close + 1;
    const params: Record<string, string> = {};
    // Parameters until the next top-level comma.
    while (i < n) {
      while (i < n && (value[i] === ' ' || value[i] === '\t')) i++;
      if (value[i] === ',') {
        i++;
        break;
      }
      if (value[i] !== ';') {
        // Junk between links: skip to the next comma outside quotes.
        while (i < n && value[i] !== ',') i++;
        continue;
      }
      i++;
      while (i < n && (value[i] === ' ' || value[i] === '\t')) i++;
      const nameStart = i;
      while (i < n && !'=;,'.includes(value[i]!)) i++;
      const name = value.slice(nameStart, i).trim().toLowerCase();
      let paramValue = '';
      if (value[i] === '=') {
        i++;
        while (i < n && (value[i] === ' ' || value[i] === '\t')) i++;
        if (value[i] === '"') {
          i++;
          let v = '';
          while (i < n && value[i] !== '"') {
            if (value[i] === '\\' && i + 1 < n) i++;
            v += value[i];
            i++;
          }
          i++; // closing quote
          paramValue = v;
        } else {
          const vs = i;
          while (i < n && !';, \t'.includes(value[i]!)) i++;
          paramValue = value.slice(vs, i).trim();
        }
      }
      if (name && !(name in params)) params[name] = paramValue;
    }
    const rels = (params.rel ?? '').toLowerCase().split(/\s+/).filter(Boolean);
    out.push({ target, rels, params });
  }
  return out;
}

/** An absolute http(s) URL for a reference resolved against `base`, or a PaginationError. */
export function resolveHttpUrl(reference: string, base: string, what: string): string {
  let url: URL;
  try {
    url = new URL(reference, base);
  } catch (cause) {
    throw new PaginationError(`${what} ${JSON.stringify(reference.slice(0, 200))} is not a URL`, { cause });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new PaginationError(`${what} ${url.href.slice(0, 200)} is not an http(s) URL`);
  }
  return url.href;
}

/** The rel="next" target of a Link header, resolved against the URL that was requested. */
export function nextFromLinkHeader(link: string | undefined, requestUrl: string): string | undefined {
  const next = parseLinkHeader(link).find((l) => l.rels.includes('next'));
  return next ? resolveHttpUrl(next.target, requestUrl, 'the Link rel="next" target') : undefined;
}

/** `base` with the given query parameters set (replacing any of the same name); undefined values are left out. */
export function withParams(base: string, params: Readonly<Record<string, string | undefined>>): string {
  const url = new URL(base);
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined) url.searchParams.set(k, v);
  }
  return url.href;
}

export interface PollRequest {
  url: string;
  /** 1-based position of the page in this poll cycle. */
  index: number;
  /** pageNumber: the page number requested. */
  pageNumber?: number;
}

/** The first request of a poll cycle: the listing URL with the cursor (and page 1 when paging by number). */
export function firstRequest(
  url: string,
  pagination: PaginationConfig,
  cursor: { param: string; value: string } | undefined,
): PollRequest {
  const params: Record<string, string | undefined> = {};
  if (cursor) params[cursor.param] = cursor.value;
  if (pagination.type === 'pageNumber') {
    params[pagination.pageParam ?? DEFAULT_PAGE_PARAM] = String(FIRST_PAGE);
    return { url: withParams(url, params), index: 1, pageNumber: FIRST_PAGE };
  }
  return { url: withParams(url, params), index: 1 };
}

export interface PageResponse {
  /** The Link header, if any. */
  link?: string | undefined;
  /** nextToken: the value of tokenField in the body (undefined/null/"" = no more pages). */
  token?: unknown;
  /** Records on the page. */
  recordCount: number;
}

/**
 * The request for the page after `current`, or undefined when `current` was the last page.
 * `first` is the cycle's first request (a token is passed as a parameter on it, so the cursor stays).
 */
export function nextRequest(
  pagination: PaginationConfig,
  first: PollRequest,
  current: PollRequest,
  response: PageResponse,
): PollRequest | undefined {
  const index = current.index + 1;
  switch (pagination.type) {
    case 'none':
      return undefined;
    case 'linkHeader': {
      const url = nextFromLinkHeader(response.link, current.url);
      return url ? { url, index } : undefined;
    }
    case 'nextToken': {
      const token = response.token;
      if (token === undefined || token === null || token === '' || token === false) return undefined;
      if (typeof token !== 'string' && typeof token !== 'number') {
        throw new PaginationError(
          `pagination.tokenField gave a ${Array.isArray(token) ? 'list' : typeof token}, not a string token; point it at the field holding the next token`,
        );
      }
      if (pagination.tokenParam) {
        return { url: withParams(first.url, { [pagination.tokenParam]: String(token) }), index };
      }
      return {
        url: resolveHttpUrl(String(token), current.url, 'the next-page token (no tokenParam set)'),
        index,
      };
    }
    case 'pageNumber': {
      if (response.recordCount === 0) return undefined;
      const pageNumber = (current.pageNumber ?? FIRST_PAGE) + 1;
      return {
        url: withParams(current.url, { [pagination.pageParam ?? DEFAULT_PAGE_PARAM]: String(pageNumber) }),
        index,
        pageNumber,
      };
    }
  }
}

/** Credentials go only to the origin of the configured URL, never to a host a Link header names. */
export function sameOrigin(a: string, b: string): boolean {
  try {
    return new URL(a).origin === new URL(b).origin;
  } catch {
    return false;
  }
}
