// Loopback NetSuite-style ERP: OAuth 2.0 client credentials, the REST record service for salesOrder
// (create, upsert by eid, merge update, get, query by externalId) and ERP events out (fulfillments,
// inventory, invoices, credit memos) signed like the project's hmac-sha256-hex receiver expects.
//
// Error bodies follow NetSuite's RFC 9457-style shape:
//   {"type":"https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.1","title":"Bad Request","status":400,
//    "o:errorDetails":[{"detail":"...","o:errorPath":"<field>","o:errorCode":"<code>"}]}
// Codes used (chosen once, used everywhere):
//   INVALID_FIELD       a key the record does not have: detail "Invalid field name: <key>"
//   USER_ERROR          a required field missing, an empty item list, a malformed request
//   INVALID_VALUE       a field of the wrong type or format (quantity "2", tranDate "20/11/2026")
//   INVALID_KEY_OR_REF  a reference to a record that does not exist (customer, item, currency)
//   DUP_RECORD          POST with an externalId that is taken (400)
//   NONEXISTENT_ID      unknown internal id / eid (404)
//   INVALID_LOGIN       missing, revoked or expired bearer token (401)
//   UNSUPPORTED_MEDIA_TYPE  a write without Content-Type: application/json (415)
//   CONCURRENCY_LIMIT_EXCEEDED  429 (failNext or more than `concurrencyLimit` requests in flight)
// `failNext` and `concurrencyLimit` apply to the record service; `failNextToken` to the token endpoint.
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { type Decimal, format, money, mul, round, toDecimal } from './decimal.ts';
import {
  basicCredentials,
  DESTROY,
  type Fault,
  Faults,
  faultReply,
  header,
  isJsonContentType,
  isPlainObject,
  json,
  type RecordedRequest,
  type Reply,
  Router,
  type SimRequest,
  serve,
} from './http.ts';
import { CURRENCIES, type NsErrorDetail, netSuiteError, validateSalesOrder } from './netsuite-shapes.ts';

export { type NsErrorDetail, netSuiteError } from './netsuite-shapes.ts';

export interface NetSuiteRecord {
  id: string;
  tranId: string;
  externalId?: string;
  [field: string]: unknown;
}

export interface NetSuiteEvent {
  eventType: 'itemFulfillment.create' | 'inventory.update' | 'invoice.create' | 'creditMemo.create';
  [field: string]: unknown;
}

export interface EmittedEvent {
  event: NetSuiteEvent;
  /** The receiver's status; undefined when no `events` receiver is configured. */
  status: number | undefined;
  headers: Record<string, string>;
  body: string;
}

export interface ShipOptions {
  trackingNumber: string;
  carrier: string;
  /** Lines to ship by sku (or item internal id); default: everything not shipped yet. */
  items?: { sku?: string; itemId?: string; quantity: number }[];
}

export interface NetSuiteSimulatorOptions {
  /** Default 0 (any free port). */
  port?: number;
  /** Default `tally-netsuite-client` / `tally-netsuite-secret`. */
  clientId?: string;
  clientSecret?: string;
  /** `expires_in` of issued tokens. Default 3600. */
  tokenTtlSeconds?: number;
  /** Clock in ms (token expiry, dates, signature timestamps). Default `Date.now`. */
  now?: () => number;
  /** Where ERP events are POSTed, and the HMAC secret they are signed with. */
  events?: { url: string; secret: string };
  /** More record-service requests than this in flight at once get 429 CONCURRENCY_LIMIT_EXCEEDED. */
  concurrencyLimit?: number;
  /** Called after a create commits; `true` drops the connection without an answer. */
  crashAfterCreate?: () => boolean;
  /** First internal id handed out. Default 1001. */
  firstInternalId?: number;
  /** Known customer internal ids. Default `['201', '202', '203']`. */
  customers?: string[];
  /** Known items. Default: the demo catalogue's SKUs as items 501..504. */
  items?: { id: string; sku: string }[];
  /** Known locations. Default `1` Main Warehouse, `2` East Coast DC. */
  locations?: { id: string; name: string }[];
}

export interface Counts {
  total: number;
  byExternalId: Record<string, number>;
}

export interface NetSuiteSimulator {
  url: string;
  close(): Promise<void>;
  /** Where ERP events go from now on (the receiver may start after the simulator). */
  setEvents(events: { url: string; secret: string } | undefined): void;
  requests: RecordedRequest[];
  readonly tokensIssued: number;
  counts: {
    tokensIssued: number;
    tokensRefused: number;
    recordRequestsUnauthorized: number;
    faultsInjected: number;
    concurrencyRejected: number;
    crashes: number;
  };
  /** Record-service requests answer these statuses first (429/503 carry `Retry-After` when given). */
  failNext(statuses: number[], retryAfterSeconds?: number): void;
  /** Token-endpoint requests answer these statuses first (OAuth error bodies). */
  failNextToken(statuses: number[], retryAfterSeconds?: number): void;
  /** Invalidates every token issued so far. */
  revokeTokens(): void;
  addCustomer(id: string): void;
  addItem(internalId: string, sku: string): void;
  creates(): Counts;
  updates(): Counts;
  salesOrders(): NetSuiteRecord[];
  salesOrder(ref: { id: string } | { externalId: string }): NetSuiteRecord | undefined;
  /** itemFulfillment, invoice and creditMemo records created by the ERP-side helpers. */
  records(type: 'itemFulfillment' | 'invoice' | 'creditMemo'): NetSuiteRecord[];
  emitted: EmittedEvent[];
  shipSalesOrder(
    internalId: string,
    options: ShipOptions,
  ): Promise<{ event: NetSuiteEvent; status?: number }>;
  setInventory(
    sku: string,
    location: string | { id: string; name: string },
    onHand: number,
    available?: number,
  ): Promise<{ event: NetSuiteEvent; status?: number }>;
  invoiceSalesOrder(internalId: string): Promise<{ event: NetSuiteEvent; status?: number }>;
  creditMemo(
    internalId: string,
    amount: number | string,
    reason: string,
  ): Promise<{ event: NetSuiteEvent; status?: number }>;
}

const nsReply = (
  status: number,
  detail: string,
  code: string,
  path?: string,
  headers?: Record<string, string>,
) =>
  json(
    status,
    netSuiteError(status, [
      { detail, ...(path !== undefined && { 'o:errorPath': path }), 'o:errorCode': code },
    ]),
    headers,
  );

const INVALID_LOGIN =
  'Invalid login attempt. For more details, see the Login Audit Trail in the NetSuite UI at Setup > Users/Roles > User Management > View Login Audit Trail.';
const CONCURRENCY =
  'Request blocked by the concurrency limit: the account is processing the maximum number of concurrent requests. Retry the request later.';

const FAULT_DETAILS: Record<number, [string, string]> = {
  400: ['The request could not be processed.', 'USER_ERROR'],
  401: [INVALID_LOGIN, 'INVALID_LOGIN'],
  403: ['Permission Violation: you do not have access to this record.', 'INSUFFICIENT_PERMISSION'],
  429: [CONCURRENCY, 'CONCURRENCY_LIMIT_EXCEEDED'],
  500: ['An unexpected error occurred. Error ID: simulated.', 'UNEXPECTED_ERROR'],
  503: ['The service is temporarily unavailable. Retry the request later.', 'SERVICE_UNAVAILABLE'],
};

const RECORD = '/services/rest/record/v1';

interface StoredSalesOrder {
  id: string;
  tranId: string;
  fields: Record<string, unknown>;
  createdDate: string;
  lastModifiedDate: string;
  /** Quantity shipped per line index. */
  shipped: number[];
}

export async function startNetSuiteSimulator(
  options: NetSuiteSimulatorOptions = {},
): Promise<NetSuiteSimulator> {
  const clientId = options.clientId ?? 'tally-netsuite-client';
  const clientSecret = options.clientSecret ?? 'tally-netsuite-secret';
  const ttl = options.tokenTtlSeconds ?? 3600;
  const now = options.now ?? Date.now;
  const iso = () => new Date(now()).toISOString();
  const today = () => iso().slice(0, 10);

  let eventsTarget = options.events;
  const requests: RecordedRequest[] = [];
  const faults = new Faults();
  const tokenFaults = new Faults();
  const counts: NetSuiteSimulator['counts'] = {
    tokensIssued: 0,
    tokensRefused: 0,
    recordRequestsUnauthorized: 0,
    faultsInjected: 0,
    concurrencyRejected: 0,
    crashes: 0,
  };
  const tokens = new Map<string, number>(); // token → expiry (ms)
  const customers = new Set(options.customers ?? ['201', '202', '203']);
  const items = new Map<string, string>(
    // internal id → sku
    (
      options.items ?? [
        { id: '501', sku: 'TSHIRT-M-BLK' },
        { id: '502', sku: 'HOODIE-L-GRY' },
        { id: '503', sku: 'MUG-WHT' },
        { id: '504', sku: 'CAP-NVY' },
      ]
    ).map((i) => [i.id, i.sku]),
  );
  const locations = (
    options.locations ?? [
      { id: '1', name: 'Main Warehouse' },
      { id: '2', name: 'East Coast DC' },
    ]
  ).map((l) => ({ ...l }));
  const refs = { customers, items };
  const orders = new Map<string, StoredSalesOrder>();
  const byEid = new Map<string, string>();
  const others = {
    itemFulfillment: new Map<string, NetSuiteRecord>(),
    invoice: new Map<string, NetSuiteRecord>(),
    creditMemo: new Map<string, NetSuiteRecord>(),
  };
  const createCounts: Counts = { total: 0, byExternalId: {} };
  const updateCounts: Counts = { total: 0, byExternalId: {} };
  const emitted: EmittedEvent[] = [];
  let nextId = options.firstInternalId ?? 1001;
  let base = '';

  const bump = (c: Counts, eid: unknown) => {
    c.total += 1;
    if (typeof eid === 'string') c.byExternalId[eid] = (c.byExternalId[eid] ?? 0) + 1;
  };
  const location = (id: string) => ({ location: `${base}${RECORD}/salesOrder/${id}` });
  const created = (id: string) => ({ status: 204, headers: location(id) }) satisfies Reply;

  // ---- record service ---------------------------------------------------------------------------

  const view = (so: StoredSalesOrder): NetSuiteRecord => ({
    links: [{ rel: 'self', href: `${base}${RECORD}/salesOrder/${so.id}` }],
    id: so.id,
    tranId: so.tranId,
    ...structuredClone(so.fields),
    createdDate: so.createdDate,
    lastModifiedDate: so.lastModifiedDate,
  });

  const find = (ref: string): StoredSalesOrder | undefined => {
    if (ref.startsWith('eid:')) {
      const id = byEid.get(ref.slice(4));
      return id === undefined ? undefined : orders.get(id);
    }
    return orders.get(ref);
  };

  const notFound = (ref: string) =>
    nsReply(
      404,
      `The record instance does not exist. Provide a valid record instance ID. (${ref})`,
      'NONEXISTENT_ID',
    );

  type Body = { ok: true; fields: Record<string, unknown> } | { ok: false; reply: Reply };
  function jsonBody(req: SimRequest): Body {
    if (!isJsonContentType(req.headers)) {
      const reply = nsReply(
        415,
        'Unsupported media type. Send the record as application/json.',
        'UNSUPPORTED_MEDIA_TYPE',
      );
      return { ok: false, reply };
    }
    if (req.jsonError || !isPlainObject(req.json)) {
      return { ok: false, reply: nsReply(400, 'The request body must be a JSON object.', 'USER_ERROR') };
    }
    return { ok: true, fields: req.json };
  }

  function commitCreate(fields: Record<string, unknown>): Reply | typeof DESTROY {
    const id = String(nextId++);
    const at = iso();
    const so: StoredSalesOrder = {
      id,
      tranId: `SO-${id}`,
      fields: structuredClone(fields),
      createdDate: at,
      lastModifiedDate: at,
      shipped: [],
    };
    orders.set(id, so);
    if (typeof fields.externalId === 'string') byEid.set(fields.externalId, id);
    bump(createCounts, fields.externalId);
    if (options.crashAfterCreate?.()) {
      counts.crashes += 1;
      return DESTROY;
    }
    return created(id);
  }

  const badRequest = (details: NsErrorDetail[]) => json(400, netSuiteError(400, details));

  function createSalesOrder(req: SimRequest): Reply | typeof DESTROY {
    const body = jsonBody(req);
    if (!body.ok) return body.reply;
    const fields = body.fields;
    const errors = validateSalesOrder(fields, refs);
    if (errors.length) return badRequest(errors);
    const eid = fields.externalId;
    if (typeof eid === 'string' && byEid.has(eid)) {
      return nsReply(
        400,
        `A record with this external ID already exists: ${eid}. (internal id ${byEid.get(eid)})`,
        'DUP_RECORD',
        'externalId',
      );
    }
    return commitCreate(fields);
  }

  function upsertSalesOrder(req: SimRequest, ref: string): Reply | typeof DESTROY {
    if (!ref.startsWith('eid:')) {
      return nsReply(
        405,
        'PUT is supported only as an upsert by external ID: salesOrder/eid:<externalId>.',
        'USER_ERROR',
      );
    }
    const eid = ref.slice(4);
    const body = jsonBody(req);
    if (!body.ok) return body.reply;
    const fields = body.fields;
    const errors = validateSalesOrder(fields, refs);
    if (fields.externalId !== undefined && fields.externalId !== eid) {
      errors.push({
        detail: `externalId in the body (${String(fields.externalId)}) does not match the eid in the URL (${eid}).`,
        'o:errorPath': 'externalId',
        'o:errorCode': 'INVALID_VALUE',
      });
    }
    if (errors.length) return badRequest(errors);
    const merged = { ...fields, externalId: eid };
    const existing = find(ref);
    if (!existing) return commitCreate(merged);
    existing.fields = structuredClone(merged);
    existing.lastModifiedDate = iso();
    bump(updateCounts, eid);
    return created(existing.id);
  }

  function patchSalesOrder(req: SimRequest, ref: string): Reply {
    const body = jsonBody(req);
    if (!body.ok) return body.reply;
    const patch = body.fields;
    const so = find(ref);
    if (!so) return notFound(ref);
    const merged = { ...so.fields, ...patch };
    const errors = validateSalesOrder(merged, refs);
    const eid = merged.externalId;
    if (typeof eid === 'string' && byEid.has(eid) && byEid.get(eid) !== so.id) {
      errors.push({
        detail: `A record with this external ID already exists: ${eid}. (internal id ${byEid.get(eid)})`,
        'o:errorPath': 'externalId',
        'o:errorCode': 'DUP_RECORD',
      });
    }
    if (errors.length) return badRequest(errors);
    if (so.fields.externalId !== eid) {
      if (typeof so.fields.externalId === 'string') byEid.delete(so.fields.externalId);
      if (typeof eid === 'string') byEid.set(eid, so.id);
    }
    so.fields = structuredClone(merged);
    so.lastModifiedDate = iso();
    bump(updateCounts, eid);
    return created(so.id);
  }

  function listSalesOrders(req: SimRequest): Reply {
    const q = req.query.get('q');
    let matches = [...orders.values()];
    if (q !== null) {
      const m = /^\s*externalId\s+IS\s+(?:"([^"]*)"|(\S+))\s*$/.exec(q);
      if (!m) {
        return nsReply(
          400,
          `Invalid search query: ${q}. Supported: externalId IS "<value>".`,
          'INVALID_PARAMETER',
          'q',
        );
      }
      const eid = m[1] ?? m[2];
      matches = matches.filter((so) => so.fields.externalId === eid);
    }
    return json(200, {
      links: [
        {
          rel: 'self',
          href: `${base}${RECORD}/salesOrder${q === null ? '' : `?q=${encodeURIComponent(q)}`}`,
        },
      ],
      count: matches.length,
      hasMore: false,
      offset: 0,
      totalResults: matches.length,
      items: matches.map((so) => ({
        links: [{ rel: 'self', href: `${base}${RECORD}/salesOrder/${so.id}` }],
        id: so.id,
      })),
    });
  }

  const OTHER_TYPES = new Set(Object.keys(others));
  const router = new Router()
    .on('POST', new RegExp(`^${RECORD}/salesOrder$`), (req) => createSalesOrder(req))
    .on('GET', new RegExp(`^${RECORD}/salesOrder$`), (req) => listSalesOrders(req))
    .on('GET', new RegExp(`^${RECORD}/salesOrder/([^/]+)$`), (_req, [ref]) => {
      const so = find(ref!);
      return so ? json(200, view(so)) : notFound(ref!);
    })
    .on('PUT', new RegExp(`^${RECORD}/salesOrder/([^/]+)$`), (req, [ref]) => upsertSalesOrder(req, ref!))
    .on('PATCH', new RegExp(`^${RECORD}/salesOrder/([^/]+)$`), (req, [ref]) => patchSalesOrder(req, ref!))
    .on('GET', new RegExp(`^${RECORD}/(\\w+)/([^/]+)$`), (_req, [type, id]) => {
      if (!OTHER_TYPES.has(type!)) {
        return nsReply(404, `Record type '${type}' does not exist.`, 'NONEXISTENT_ID');
      }
      const rec = others[type as keyof typeof others].get(id!);
      return rec ? json(200, structuredClone(rec)) : notFound(id!);
    });

  // ---- OAuth 2.0 token endpoint -----------------------------------------------------------------

  const oauthFaultBody = (fault: Fault) =>
    fault.status === 429 || fault.status === 503
      ? { error: 'temporarily_unavailable', error_description: 'Too many requests. Retry later.' }
      : fault.status === 401
        ? { error: 'invalid_client', error_description: 'Invalid client credentials.' }
        : { error: 'server_error', error_description: `Simulated HTTP ${fault.status}.` };

  function token(req: SimRequest): Reply {
    const fault = tokenFaults.take();
    if (fault) {
      counts.faultsInjected += 1;
      return faultReply(fault, oauthFaultBody(fault));
    }
    if (req.method !== 'POST') return json(405, { error: 'invalid_request', error_description: 'Use POST.' });
    if (!(header(req.headers, 'content-type') ?? '').startsWith('application/x-www-form-urlencoded')) {
      return json(400, {
        error: 'invalid_request',
        error_description: 'The body must be application/x-www-form-urlencoded.',
      });
    }
    const form = new URLSearchParams(req.raw.toString('utf8'));
    const basic = basicCredentials(req.headers);
    const id = basic?.user ?? form.get('client_id');
    const secret = basic?.pass ?? form.get('client_secret');
    if (id !== clientId || secret !== clientSecret) {
      counts.tokensRefused += 1;
      return json(
        401,
        { error: 'invalid_client', error_description: 'Invalid client credentials.' },
        basic ? { 'www-authenticate': 'Basic realm="NetSuite"' } : {},
      );
    }
    const grant = form.get('grant_type');
    if (grant === null) {
      return json(400, { error: 'invalid_request', error_description: 'grant_type is required.' });
    }
    if (grant !== 'client_credentials') return json(400, { error: 'unsupported_grant_type' });
    const accessToken = randomBytes(24).toString('hex');
    tokens.set(accessToken, now() + ttl * 1000);
    counts.tokensIssued += 1;
    return json(
      200,
      { access_token: accessToken, token_type: 'Bearer', expires_in: ttl },
      { 'cache-control': 'no-store' },
    );
  }

  const validBearer = (req: SimRequest) => {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header(req.headers, 'authorization') ?? '');
    const expiry = m ? tokens.get(m[1]!) : undefined;
    return expiry !== undefined && now() < expiry;
  };

  const served = await serve({
    port: options.port,
    requests,
    handle: (req) => {
      if (req.path === '/services/rest/auth/oauth2/v1/token') return token(req);
      if (!req.path.startsWith(`${RECORD}/`)) {
        return nsReply(404, `No resource at ${req.path}.`, 'NONEXISTENT_ID');
      }
      if (options.concurrencyLimit !== undefined && req.inFlightAtArrival > options.concurrencyLimit) {
        counts.concurrencyRejected += 1;
        return nsReply(429, CONCURRENCY, 'CONCURRENCY_LIMIT_EXCEEDED');
      }
      const fault = faults.take();
      if (fault) {
        counts.faultsInjected += 1;
        const [detail, code] = FAULT_DETAILS[fault.status] ?? [
          `Simulated HTTP ${fault.status}.`,
          'USER_ERROR',
        ];
        return faultReply(fault, netSuiteError(fault.status, [{ detail, 'o:errorCode': code }]));
      }
      if (!validBearer(req)) {
        counts.recordRequestsUnauthorized += 1;
        return nsReply(401, INVALID_LOGIN, 'INVALID_LOGIN', undefined, {
          'www-authenticate': 'Bearer error="invalid_token"',
        });
      }
      const match = router.match(req.method, req.path);
      if (match === undefined)
        return nsReply(404, `Record type or resource ${req.path} does not exist.`, 'NONEXISTENT_ID');
      if (match === 'method_not_allowed') {
        return nsReply(405, `Method ${req.method} is not allowed on ${req.path}.`, 'USER_ERROR');
      }
      return match.handler(req, match.params);
    },
  });
  base = served.url;

  // ---- ERP events out ---------------------------------------------------------------------------

  async function emit(event: NetSuiteEvent): Promise<{ event: NetSuiteEvent; status?: number }> {
    const body = JSON.stringify(event);
    const timestamp = String(Math.floor(now() / 1000));
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'x-event-id': randomUUID(),
    };
    let status: number | undefined;
    const target = eventsTarget;
    if (target) {
      // Same construction runtime/flow/sources/webhook-signature.ts verifies: hex HMAC-SHA256 over `${timestamp}.${body}`.
      headers['x-signature'] = createHmac('sha256', target.secret)
        .update(`${timestamp}.${body}`)
        .digest('hex');
      headers['x-signature-timestamp'] = timestamp;
      const res = await fetch(target.url, { method: 'POST', headers, body });
      await res.arrayBuffer();
      status = res.status;
    }
    emitted.push({ event, status, headers, body });
    return status === undefined ? { event } : { event, status };
  }

  const salesOrderOrThrow = (internalId: string) => {
    const so = orders.get(internalId);
    if (!so) throw new Error(`netsuite simulator: no salesOrder ${internalId}`);
    return so;
  };
  const lines = (so: StoredSalesOrder) =>
    ((so.fields.item as { items: Record<string, unknown>[] }).items ?? []).map((l) => ({
      itemId: (l.item as { id: string }).id,
      quantity: l.quantity as number,
      rate: l.rate as number | string,
      amount: l.amount as number | string | undefined,
      description: l.description as string | undefined,
    }));
  const createdFrom = (so: StoredSalesOrder) => ({
    id: so.id,
    externalId: (so.fields.externalId as string | undefined) ?? null,
    tranId: so.tranId,
  });
  const currencyOf = (so: StoredSalesOrder) => {
    const c = so.fields.currency as { id?: string; refName?: string } | undefined;
    return (
      CURRENCIES.find(
        (x) => (c?.id ?? '1') === x.id || (c?.refName !== undefined && x.refName === c.refName),
      ) ?? CURRENCIES[0]!
    );
  };
  /** A rate as a decimal string with at least 2 places ("9.50", "1.2345"). */
  const rateString = (rate: number | string) => {
    const d = toDecimal(rate);
    return format(d.scale < 2 ? round(d, 2) : d);
  };
  const lineAmount = (l: {
    quantity: number;
    rate: number | string;
    amount?: number | string | undefined;
  }): Decimal =>
    round(l.amount !== undefined ? toDecimal(l.amount) : mul(toDecimal(l.quantity), toDecimal(l.rate)), 2);

  async function shipSalesOrder(internalId: string, ship: ShipOptions) {
    const so = salesOrderOrThrow(internalId);
    const soLines = lines(so);
    const picked: { index: number; quantity: number }[] = [];
    const left = (i: number) =>
      soLines[i]!.quantity -
      (so.shipped[i] ?? 0) -
      picked.filter((p) => p.index === i).reduce((s, p) => s + p.quantity, 0);
    if (ship.items === undefined) {
      soLines.forEach((_l, i) => {
        const q = left(i);
        if (q > 0) picked.push({ index: i, quantity: q });
      });
    } else {
      for (const want of ship.items) {
        let need = want.quantity;
        soLines.forEach((l, i) => {
          const matches =
            want.itemId !== undefined ? l.itemId === want.itemId : items.get(l.itemId) === want.sku;
          const q = Math.min(need, left(i));
          if (matches && q > 0) {
            picked.push({ index: i, quantity: q });
            need -= q;
          }
        });
        if (need > 0)
          throw new Error(`netsuite simulator: cannot ship ${want.quantity} of ${want.sku ?? want.itemId}`);
      }
    }
    if (picked.length === 0) throw new Error(`netsuite simulator: salesOrder ${internalId} is fully shipped`);
    for (const p of picked) so.shipped[p.index] = (so.shipped[p.index] ?? 0) + p.quantity;

    const id = String(nextId++);
    const tranDate = today();
    const shippedItems = picked.map((p) => {
      const itemId = soLines[p.index]!.itemId;
      return {
        item: { id: itemId, sku: items.get(itemId) ?? null },
        quantity: p.quantity,
        orderLine: p.index + 1,
      };
    });
    const packages = [{ packageTrackingNumber: ship.trackingNumber, packageCarrier: ship.carrier }];
    others.itemFulfillment.set(id, {
      id,
      tranId: `IF-${id}`,
      createdFrom: createdFrom(so),
      tranDate,
      shipStatus: { id: 'C', refName: 'Shipped' },
      package: { items: packages },
      item: {
        items: shippedItems.map((s) => ({
          item: { id: s.item.id, refName: s.item.sku },
          quantity: s.quantity,
          orderLine: s.orderLine,
        })),
      },
      lastModifiedDate: iso(),
    });
    return emit({
      eventType: 'itemFulfillment.create',
      recordType: 'itemFulfillment',
      id,
      createdFrom: createdFrom(so),
      tranDate,
      shipStatus: 'shipped',
      packages,
      items: shippedItems,
      lastModified: iso(),
    });
  }

  async function setInventory(
    sku: string,
    where: string | { id: string; name: string },
    onHand: number,
    available = onHand,
  ) {
    const itemId = [...items].find(([, s]) => s === sku)?.[0];
    if (itemId === undefined) throw new Error(`netsuite simulator: no item with sku ${sku}`);
    let loc =
      typeof where === 'string'
        ? locations.find((l) => l.id === where || l.name === where)
        : locations.find((l) => l.id === where.id);
    if (!loc) {
      loc = typeof where === 'string' ? { id: String(locations.length + 1), name: where } : { ...where };
      locations.push(loc);
    }
    return emit({
      eventType: 'inventory.update',
      recordType: 'inventoryItem',
      item: { id: itemId, sku },
      location: { id: loc.id, name: loc.name },
      quantityOnHand: onHand,
      quantityAvailable: available,
      lastModified: iso(),
    });
  }

  async function invoiceSalesOrder(internalId: string) {
    const so = salesOrderOrThrow(internalId);
    const id = String(nextId++);
    const tranDate = today();
    const due = new Date(`${tranDate}T00:00:00Z`);
    due.setUTCDate(due.getUTCDate() + 30);
    const invoiceLines = lines(so).map((l, i) => ({
      line: i + 1,
      item: { id: l.itemId, sku: items.get(l.itemId) ?? null },
      ...(l.description !== undefined && { description: l.description }),
      quantity: l.quantity,
      rate: rateString(l.rate),
      amount: format(lineAmount(l)),
    }));
    const subtotal = money(invoiceLines.map((l) => l.amount));
    const shipping = money([(so.fields.shippingCost as number | undefined) ?? 0]);
    // NetSuite stores a discount as a negative amount; accept either sign and subtract its size.
    const discount = money([Math.abs((so.fields.discountTotal as number | undefined) ?? 0)]);
    const taxTotal = '0.00';
    const total = money([subtotal, shipping, `-${discount}`, taxTotal]);
    const record: NetSuiteRecord = {
      id,
      tranId: `INV-${id}`,
      createdFrom: createdFrom(so),
      entity: so.fields.entity,
      tranDate,
      dueDate: due.toISOString().slice(0, 10),
      currency: currencyOf(so),
      ...(so.fields.otherRefNum !== undefined && { otherRefNum: so.fields.otherRefNum }),
      ...(so.fields.memo !== undefined && { memo: so.fields.memo }),
      lines: invoiceLines,
      subtotal,
      discountTotal: discount,
      shippingCost: shipping,
      taxTotal,
      total,
    };
    others.invoice.set(id, record);
    return emit({
      eventType: 'invoice.create',
      recordType: 'invoice',
      ...structuredClone(record),
      lastModified: iso(),
    });
  }

  async function creditMemo(internalId: string, amount: number | string, reason: string) {
    const so = salesOrderOrThrow(internalId);
    const id = String(nextId++);
    const value = money([amount]);
    const record: NetSuiteRecord = {
      id,
      tranId: `CM-${id}`,
      createdFrom: createdFrom(so),
      entity: so.fields.entity,
      tranDate: today(),
      currency: currencyOf(so),
      amount: value,
      total: value,
      memo: reason,
    };
    others.creditMemo.set(id, record);
    return emit({
      eventType: 'creditMemo.create',
      recordType: 'creditMemo',
      ...structuredClone(record),
      lastModified: iso(),
    });
  }

  const copyCounts = (c: Counts): Counts => ({ total: c.total, byExternalId: { ...c.byExternalId } });

  return {
    setEvents(events) {
      eventsTarget = events;
    },
    url: served.url,
    close: served.close,
    requests,
    get tokensIssued() {
      return counts.tokensIssued;
    },
    counts,
    failNext: (statuses, retryAfterSeconds) => faults.push(statuses, retryAfterSeconds),
    failNextToken: (statuses, retryAfterSeconds) => tokenFaults.push(statuses, retryAfterSeconds),
    revokeTokens: () => tokens.clear(),
    addCustomer: (id) => {
      customers.add(id);
    },
    addItem: (internalId, sku) => {
      items.set(internalId, sku);
    },
    creates: () => copyCounts(createCounts),
    updates: () => copyCounts(updateCounts),
    salesOrders: () => [...orders.values()].map(view),
    salesOrder: (ref) => {
      const so = 'id' in ref ? orders.get(ref.id) : find(`eid:${ref.externalId}`);
      return so ? view(so) : undefined;
    },
    records: (type) => [...others[type].values()].map((r) => structuredClone(r)),
    emitted,
    shipSalesOrder,
    setInventory,
    invoiceSalesOrder,
    creditMemo,
  };
}
