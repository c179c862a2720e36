// Loopback Amazon Selling Partner API (Listings Items 2021-08-01) simulator: PATCH and GET of a
// seller's listing, with the inventory patch (`/attributes/fulfillment_availability`) checked in detail.
// Errors use SP-API's body `{"errors":[{"code","message","details"}]}`:
//   403 Unauthorized (wrong/missing x-amz-access-token), 400 InvalidInput (bad query or body),
//   404 NotFound (sku not listed for the seller), 429 QuotaExceeded (failNext).
import { randomBytes, randomUUID } from 'node:crypto';
import {
  type Fault,
  Faults,
  faultReply,
  header,
  isInteger,
  isJsonContentType,
  isPlainObject,
  json,
  type RecordedRequest,
  type Reply,
  Router,
  type SimRequest,
  serve,
} from './http.ts';

export interface SpApiSimulatorOptions {
  /** Default 0 (any free port). */
  port?: number;
  /** Expected `x-amz-access-token` (an LWA access token). Default `Atza|simulator`. */
  accessToken?: string;
  /** Marketplaces the seller sells in. Default US, CA, MX. */
  marketplaceIds?: string[];
}

export interface SpApiSubmission {
  sellerId: string;
  sku: string;
  submissionId: string;
  productType: string;
  patches: { op: string; path: string; value?: unknown[] }[];
  marketplaceIds: string[];
  preview: boolean;
}

export interface SpApiSimulator {
  url: string;
  close(): Promise<void>;
  requests: RecordedRequest[];
  /** `rejected`: 4xx answers to authenticated requests (bad shape, unknown sku). */
  counts: { faultsInjected: number; unauthorized: number; accepted: number; rejected: number };
  /** Answer the next requests with these statuses (429/503 carry `Retry-After` when given). */
  failNext(statuses: number[], retryAfterSeconds?: number): void;
  addListing(sellerId: string, sku: string, productType?: string): void;
  /** DEFAULT-channel (merchant-fulfilled) quantity last accepted, undefined when never set. */
  quantity(sellerId: string, sku: string): number | undefined;
  /** Current attributes of a listing (the accepted patches applied). */
  attributes(sellerId: string, sku: string): Record<string, unknown[]> | undefined;
  submissions: SpApiSubmission[];
}

const err = (code: string, message: string) => ({ errors: [{ code, message, details: '' }] });
const invalid = (message: string) => json(400, err('InvalidInput', message));

const FAULT_BODIES: Record<number, unknown> = {
  400: err('InvalidInput', 'Request has missing or invalid parameters and cannot be parsed.'),
  403: err('Unauthorized', 'Access to requested resource is denied.'),
  404: err('NotFound', 'The resource specified does not exist.'),
  413: err('RequestTooLarge', 'The request size exceeded the maximum accepted size.'),
  415: err('UnsupportedMediaType', 'The request payload is in an unsupported format.'),
  429: err('QuotaExceeded', 'You exceeded your quota for the requested resource.'),
  500: err('InternalFailure', 'We encountered an internal error. Please try again.'),
  503: err('ServiceUnavailable', 'Temporary overloading or maintenance of the server.'),
};

const OPS = new Set(['add', 'replace', 'delete', 'merge']);
const QUERY_KEYS = new Set(['marketplaceIds', 'includedData', 'mode', 'issueLocale']);
const AVAILABILITY_KEYS = new Set([
  'fulfillment_channel_code',
  'quantity',
  'lead_time_to_ship_max_days',
  'restock_date',
  'is_inventory_available',
  'marketplace_id',
]);

interface Listing {
  productType: string;
  attributes: Record<string, unknown[]>;
}

export async function startSpApiSimulator(options: SpApiSimulatorOptions = {}): Promise<SpApiSimulator> {
  const token = options.accessToken ?? 'Atza|simulator';
  const marketplaces = new Set(
    options.marketplaceIds ?? ['ATVPDKIKX0DER', 'A2EUQ1WTGCTBG2', 'A1AM78C64UM0Y8'],
  );
  const requests: RecordedRequest[] = [];
  const faults = new Faults();
  const counts: SpApiSimulator['counts'] = { faultsInjected: 0, unauthorized: 0, accepted: 0, rejected: 0 };
  const listings = new Map<string, Listing>();
  const submissions: SpApiSubmission[] = [];
  const key = (sellerId: string, sku: string) => `${sellerId}\u0000${sku}`;

  /** The marketplaceIds query parameter, or a 400 reply. */
  function marketplaceIds(req: SimRequest): string[] | Reply {
    const extra = [...req.query.keys()].find((k) => !QUERY_KEYS.has(k));
    if (extra) return invalid(`Unknown query parameter: ${extra}.`);
    const raw = req.query.get('marketplaceIds');
    if (!raw) return invalid('Missing required parameter: marketplaceIds.');
    const ids = raw.split(',').map((s) => s.trim());
    const unknown = ids.find((id) => !marketplaces.has(id));
    if (unknown !== undefined) return invalid(`Invalid marketplaceIds: ${unknown}.`);
    return ids;
  }

  /** Reasons the patch set is malformed; empty when it is good. */
  function checkPatches(patches: unknown[]): string | undefined {
    if (patches.length === 0) return 'patches must contain at least one patch.';
    for (const [i, p] of patches.entries()) {
      const at = `patches[${i}]`;
      if (!isPlainObject(p)) return `${at} must be an object.`;
      const extra = Object.keys(p).find((k) => !['op', 'path', 'value'].includes(k));
      if (extra) return `${at} has an unknown property: ${extra}.`;
      if (typeof p.op !== 'string' || !OPS.has(p.op))
        return `${at}.op must be one of add, replace, merge, delete.`;
      if (typeof p.path !== 'string' || !/^\/attributes\/[a-z0-9_]+$/.test(p.path)) {
        return `${at}.path must look like /attributes/<attribute_name>.`;
      }
      if (p.op !== 'delete' && !Array.isArray(p.value)) return `${at}.value must be an array.`;
      if (p.value !== undefined && !Array.isArray(p.value)) return `${at}.value must be an array.`;
      if (p.path === '/attributes/fulfillment_availability' && p.op !== 'delete') {
        const values = p.value as unknown[];
        if (values.length === 0) return `${at}.value must not be empty.`;
        for (const [j, v] of values.entries()) {
          const vat = `${at}.value[${j}]`;
          if (!isPlainObject(v)) return `${vat} must be an object.`;
          const bad = Object.keys(v).find((k) => !AVAILABILITY_KEYS.has(k));
          if (bad) return `${vat} has an unknown property: ${bad}.`;
          if (typeof v.fulfillment_channel_code !== 'string' || v.fulfillment_channel_code === '') {
            return `${vat}.fulfillment_channel_code is required.`;
          }
          if (v.quantity !== undefined && (!isInteger(v.quantity) || v.quantity < 0)) {
            return `${vat}.quantity must be an integer greater than or equal to 0.`;
          }
          if (v.fulfillment_channel_code === 'DEFAULT' && v.quantity === undefined) {
            return `${vat}.quantity is required for fulfillment_channel_code DEFAULT.`;
          }
        }
      }
    }
    return undefined;
  }

  function patchListing(req: SimRequest, sellerId: string, sku: string): Reply {
    const ids = marketplaceIds(req);
    if (!Array.isArray(ids)) return ids;
    if (!isJsonContentType(req.headers)) return json(415, FAULT_BODIES[415]);
    const body = req.json;
    if (req.jsonError || !isPlainObject(body)) return invalid('The request body must be a JSON object.');
    const extra = Object.keys(body).find((k) => k !== 'productType' && k !== 'patches');
    if (extra) return invalid(`Unknown property in the request body: ${extra}.`);
    if (typeof body.productType !== 'string' || body.productType === '') {
      return invalid('productType is required and must be a string.');
    }
    if (!Array.isArray(body.patches)) return invalid('patches is required and must be an array.');
    const problem = checkPatches(body.patches);
    if (problem) return invalid(problem);
    const listing = listings.get(key(sellerId, sku));
    if (!listing) return json(404, err('NotFound', `SKU ${sku} is not listed for seller ${sellerId}.`));
    const preview = req.query.get('mode') === 'VALIDATION_PREVIEW';
    const patches = body.patches as SpApiSubmission['patches'];
    if (!preview) {
      for (const p of patches) {
        const name = p.path.slice('/attributes/'.length);
        if (p.op === 'delete') delete listing.attributes[name];
        else if (p.op === 'merge' && Array.isArray(listing.attributes[name])) {
          listing.attributes[name] = [...listing.attributes[name]!, ...(p.value ?? [])];
        } else listing.attributes[name] = structuredClone(p.value ?? []);
      }
    }
    const submissionId = randomBytes(16).toString('hex');
    submissions.push({
      sellerId,
      sku,
      submissionId,
      productType: body.productType,
      patches: structuredClone(patches),
      marketplaceIds: ids,
      preview,
    });
    counts.accepted += 1;
    return json(200, { sku, status: preview ? 'VALID' : 'ACCEPTED', submissionId, issues: [] });
  }

  function getListing(req: SimRequest, sellerId: string, sku: string): Reply {
    const ids = marketplaceIds(req);
    if (!Array.isArray(ids)) return ids;
    const listing = listings.get(key(sellerId, sku));
    if (!listing) return json(404, err('NotFound', `SKU ${sku} is not listed for seller ${sellerId}.`));
    return json(200, {
      sku,
      summaries: ids.map((marketplaceId) => ({
        marketplaceId,
        productType: listing.productType,
        status: ['BUYABLE'],
      })),
      attributes: structuredClone(listing.attributes),
      issues: [],
    });
  }

  const ITEM = /^\/listings\/2021-08-01\/items\/([^/]+)\/([^/]+)$/;
  const router = new Router<Reply>()
    .on('PATCH', ITEM, (req, [sellerId, sku]) => patchListing(req, sellerId!, sku!))
    .on('GET', ITEM, (req, [sellerId, sku]) => getListing(req, sellerId!, sku!));

  const faultBody = (fault: Fault) =>
    FAULT_BODIES[fault.status] ?? err('InternalFailure', `HTTP ${fault.status}`);

  const served = await serve({
    port: options.port,
    requests,
    // Every SP-API answer carries a request id and the operation's rate (Listings Items: 5 req/s).
    commonHeaders: () => ({ 'x-amzn-requestid': randomUUID(), 'x-amzn-ratelimit-limit': '5.0' }),
    handle: (req) => {
      const fault = faults.take();
      if (fault) {
        counts.faultsInjected += 1;
        return faultReply(fault, faultBody(fault));
      }
      if (header(req.headers, 'x-amz-access-token') !== token) {
        counts.unauthorized += 1;
        return json(403, FAULT_BODIES[403]);
      }
      const match = router.match(req.method, req.path);
      if (match === undefined) return json(404, err('NotFound', 'The resource specified does not exist.'));
      if (match === 'method_not_allowed') {
        return json(405, err('MethodNotAllowed', `Method ${req.method} is not allowed on this resource.`));
      }
      const reply = match.handler(req, match.params);
      if (reply.status >= 400) counts.rejected += 1;
      return reply;
    },
  });

  return {
    url: served.url,
    close: served.close,
    requests,
    counts,
    failNext: (statuses, retryAfterSeconds) => faults.push(statuses, retryAfterSeconds),
    addListing: (sellerId, sku, productType = 'PRODUCT') => {
      listings.set(key(sellerId, sku), { productType, attributes: {} });
    },
    quantity: (sellerId, sku) => {
      const values = listings.get(key(sellerId, sku))?.attributes.fulfillment_availability as
        | { fulfillment_channel_code: string; quantity?: number }[]
        | undefined;
      return values?.find((v) => v.fulfillment_channel_code === 'DEFAULT')?.quantity;
    },
    attributes: (sellerId, sku) => {
      const listing = listings.get(key(sellerId, sku));
      return listing ? structuredClone(listing.attributes) : undefined;
    },
    submissions,
  };
}
