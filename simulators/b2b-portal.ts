// Loopback B2B customer portal invoice API: a strict receiver for invoices pushed from the ERP side.
// Money travels as decimal strings and totals are checked with exact decimal arithmetic, so a client
// that sums floats, drops tax or sends numbers fails here. Error bodies:
//   401 {"error":"unauthorized"}              415 {"error":"unsupported_media_type"}
//   400 {"error":"invalid_json"}              404 {"error":"not_found"}
//   422 {"error":"validation_failed","details":[{"field","message"}]}
//   409 {"error":"duplicate","invoiceId":"<existing id>"}   (same invoiceNumber again)
//   429 {"error":"rate_limited"} / 5xx {"error":"unavailable"}   (failNext)

import {
  add,
  type Decimal,
  eq,
  format,
  isDecimalString,
  mul,
  parseDecimal,
  round,
  toDecimal,
} from './decimal.ts';
import {
  basicCredentials,
  type Fault,
  Faults,
  faultReply,
  isInteger,
  isIsoDate,
  isJsonContentType,
  isPlainObject,
  json,
  type RecordedRequest,
  type Reply,
  Router,
  type SimRequest,
  serve,
} from './http.ts';

export interface PortalInvoiceLine {
  lineNumber: number;
  sku: string;
  description?: string;
  quantity: number;
  unitPrice: string;
  amount: string;
}

export interface PortalInvoice {
  invoiceNumber: string;
  purchaseOrderNumber: string;
  buyerId: string;
  issueDate: string;
  dueDate: string;
  currency: string;
  lines: PortalInvoiceLine[];
  taxTotal: string;
  total: string;
}

export interface StoredPortalInvoice extends PortalInvoice {
  invoiceId: string;
  status: 'received';
  receivedAt: string;
}

export interface B2bPortalSimulatorOptions {
  /** Default 0 (any free port). */
  port?: number;
  /** Basic-auth credentials. Default `tally` / `portal-secret`. */
  username?: string;
  password?: string;
  /** Known buyer ids; when given, any other buyerId is a validation error. */
  buyers?: string[];
}

export interface B2bPortalSimulator {
  url: string;
  close(): Promise<void>;
  requests: RecordedRequest[];
  counts: {
    faultsInjected: number;
    unauthorized: number;
    received: number;
    duplicates: number;
    invalid: number;
  };
  /** Answer the next requests with these statuses (429/503 carry `Retry-After` when given). */
  failNext(statuses: number[], retryAfterSeconds?: number): void;
  invoices(): StoredPortalInvoice[];
}

const FIELDS = new Set([
  'invoiceNumber',
  'purchaseOrderNumber',
  'buyerId',
  'issueDate',
  'dueDate',
  'currency',
  'lines',
  'taxTotal',
  'total',
]);
const LINE_FIELDS = new Set(['lineNumber', 'sku', 'description', 'quantity', 'unitPrice', 'amount']);

type Detail = { field: string; message: string };

/** Field-level problems with an invoice body; empty when it is acceptable. */
export function validateInvoice(body: Record<string, unknown>, buyers?: Set<string>): Detail[] {
  const out: Detail[] = [];
  const bad = (field: string, message: string) => out.push({ field, message });
  const money = (field: string, v: unknown): Decimal | undefined => {
    if (!isDecimalString(v, 2)) {
      bad(field, 'must be a decimal string with at most 2 decimal places, e.g. "12.50"');
      return undefined;
    }
    return parseDecimal(v);
  };

  for (const k of Object.keys(body)) if (!FIELDS.has(k)) bad(k, 'unknown field');
  for (const k of ['invoiceNumber', 'purchaseOrderNumber', 'buyerId']) {
    if (typeof body[k] !== 'string' || (body[k] as string).trim() === '') bad(k, 'is required');
  }
  if (buyers && typeof body.buyerId === 'string' && !buyers.has(body.buyerId))
    bad('buyerId', 'unknown buyer');
  for (const k of ['issueDate', 'dueDate'])
    if (!isIsoDate(body[k])) bad(k, 'must be a date in YYYY-MM-DD form');
  if (isIsoDate(body.issueDate) && isIsoDate(body.dueDate) && body.dueDate < body.issueDate) {
    bad('dueDate', 'must not be before issueDate');
  }
  if (typeof body.currency !== 'string' || !/^[A-Z]{3}$/.test(body.currency)) {
    bad('currency', 'must be an ISO 4217 code such as "USD"');
  }

  let sum: Decimal | undefined = { units: 0n, scale: 2 };
  if (!Array.isArray(body.lines) || body.lines.length === 0) {
    bad('lines', 'must be a non-empty array');
    sum = undefined;
  } else {
    const seen = new Set<number>();
    for (const [i, line] of (body.lines as unknown[]).entries()) {
      const at = `lines[${i}]`;
      if (!isPlainObject(line)) {
        bad(at, 'must be an object');
        sum = undefined;
        continue;
      }
      for (const k of Object.keys(line)) if (!LINE_FIELDS.has(k)) bad(`${at}.${k}`, 'unknown field');
      if (!isInteger(line.lineNumber) || line.lineNumber < 1)
        bad(`${at}.lineNumber`, 'must be a positive integer');
      else if (seen.has(line.lineNumber)) bad(`${at}.lineNumber`, 'is duplicated');
      else seen.add(line.lineNumber);
      if (typeof line.sku !== 'string' || line.sku === '') bad(`${at}.sku`, 'is required');
      if (line.description !== undefined && typeof line.description !== 'string') {
        bad(`${at}.description`, 'must be a string');
      }
      const quantityOk = isInteger(line.quantity) && line.quantity > 0;
      if (!quantityOk) bad(`${at}.quantity`, 'must be a positive integer');
      let unitPrice: Decimal | undefined;
      if (!isDecimalString(line.unitPrice, 4)) {
        bad(`${at}.unitPrice`, 'must be a decimal string with at most 4 decimal places');
      } else unitPrice = parseDecimal(line.unitPrice);
      const amount = money(`${at}.amount`, line.amount);
      if (amount && unitPrice && quantityOk) {
        const expected = round(mul(toDecimal(line.quantity as number), unitPrice), 2);
        if (!eq(amount, expected)) {
          bad(`${at}.amount`, `must equal quantity × unitPrice rounded to 2 places (${format(expected)})`);
        }
      }
      sum = amount && sum ? add(sum, amount) : undefined;
    }
  }
  const tax = money('taxTotal', body.taxTotal);
  const total = money('total', body.total);
  if (sum && tax && total) {
    const expected = add(sum, tax);
    if (!eq(total, expected))
      bad('total', `must equal the sum of line amounts plus taxTotal (${format(expected)})`);
  }
  return out;
}

export async function startB2bPortalSimulator(
  options: B2bPortalSimulatorOptions = {},
): Promise<B2bPortalSimulator> {
  const username = options.username ?? 'tally';
  const password = options.password ?? 'portal-secret';
  const buyers = options.buyers ? new Set(options.buyers) : undefined;
  const requests: RecordedRequest[] = [];
  const faults = new Faults();
  const counts: B2bPortalSimulator['counts'] = {
    faultsInjected: 0,
    unauthorized: 0,
    received: 0,
    duplicates: 0,
    invalid: 0,
  };
  const stored = new Map<string, StoredPortalInvoice>(); // invoiceId → invoice
  const byNumber = new Map<string, string>(); // invoiceNumber → invoiceId
  let next = 1;

  function receive(req: SimRequest): Reply {
    if (!isJsonContentType(req.headers)) return json(415, { error: 'unsupported_media_type' });
    if (req.jsonError || req.json === undefined) return json(400, { error: 'invalid_json' });
    if (!isPlainObject(req.json)) {
      counts.invalid += 1;
      return json(422, {
        error: 'validation_failed',
        details: [{ field: '', message: 'must be a JSON object' }],
      });
    }
    const details = validateInvoice(req.json, buyers);
    if (details.length) {
      counts.invalid += 1;
      return json(422, { error: 'validation_failed', details });
    }
    const invoice = structuredClone(req.json) as unknown as PortalInvoice;
    const existing = byNumber.get(invoice.invoiceNumber);
    if (existing !== undefined) {
      counts.duplicates += 1;
      return json(409, { error: 'duplicate', invoiceId: existing });
    }
    const invoiceId = `INV-P-${next++}`;
    stored.set(invoiceId, {
      ...invoice,
      invoiceId,
      status: 'received',
      receivedAt: new Date().toISOString(),
    });
    byNumber.set(invoice.invoiceNumber, invoiceId);
    counts.received += 1;
    return json(201, { invoiceId, status: 'received' }, { location: `/api/v1/invoices/${invoiceId}` });
  }

  const router = new Router<Reply>()
    .on('POST', /^\/api\/v1\/invoices$/, (req) => receive(req))
    .on('GET', /^\/api\/v1\/invoices\/([^/]+)$/, (_req, [id]) => {
      const invoice = stored.get(id!);
      return invoice ? json(200, invoice) : json(404, { error: 'not_found' });
    });

  const faultBody = (fault: Fault) =>
    fault.status === 429
      ? { error: 'rate_limited' }
      : fault.status >= 500
        ? { error: 'unavailable' }
        : { error: 'rejected' };

  const served = await serve({
    port: options.port,
    requests,
    handle: (req) => {
      const fault = faults.take();
      if (fault) {
        counts.faultsInjected += 1;
        return faultReply(fault, faultBody(fault));
      }
      const creds = basicCredentials(req.headers);
      if (creds?.user !== username || creds.pass !== password) {
        counts.unauthorized += 1;
        return json(401, { error: 'unauthorized' }, { 'www-authenticate': 'Basic realm="b2b-portal"' });
      }
      const match = router.match(req.method, req.path);
      if (match === undefined) return json(404, { error: 'not_found' });
      if (match === 'method_not_allowed') return json(405, { error: 'method_not_allowed' });
      return match.handler(req, match.params);
    },
  });

  return {
    url: served.url,
    close: served.close,
    requests,
    counts,
    failNext: (statuses, retryAfterSeconds) => faults.push(statuses, retryAfterSeconds),
    invoices: () => [...stored.values()].map((i) => structuredClone(i)),
  };
}
