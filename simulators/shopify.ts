// Loopback Shopify Admin REST simulator (any `YYYY-MM` API version): orders, fulfillments, inventory
// levels, refunds, the leaky-bucket call limit, and signed orders/create webhooks out. It enforces the
// request shapes and answers with Shopify's error bodies so a wrong outbound mapping fails a test:
//   401 {"errors":"[API] Invalid API key or access token (unrecognized login or wrong password)"}
//   404 {"errors":"Not Found"}
//   400 {"errors":{"<param>":"Required parameter missing or invalid"}}   missing/invalid top-level param
//   422 {"errors":{"base":["..."]}}            fulfillments (Shopify's shape for fulfillment errors)
//   422 {"errors":["..."]} | {"errors":{"<field>":["..."]}}   inventory levels and refunds
//   429 {"errors":"Exceeded N calls per second for api client. ..."} + Retry-After: 1
// Stricter than Shopify on one point: unknown keys inside a body are refused (422) instead of being
// silently dropped, because a silently dropped key is exactly the mapping bug tests should catch.
import { randomUUID } from 'node:crypto';
import { shopifyHeaders } from '../cli/demo/shopify-traffic.ts';
import { isDecimalString } from './decimal.ts';
import {
  type Fault,
  Faults,
  faultReply,
  header,
  isInteger,
  isPlainObject,
  json,
  type RecordedRequest,
  type Reply,
  Router,
  type SimRequest,
  serve,
} from './http.ts';

export interface ShopifyLineItem {
  id: number;
  sku?: string | null;
  quantity: number;
  [key: string]: unknown;
}

export interface ShopifyOrder {
  id: number;
  name?: string;
  line_items: ShopifyLineItem[];
  fulfillment_status?: string | null;
  [key: string]: unknown;
}

export interface ShopifyFulfillment {
  id: number;
  order_id: number;
  name: string;
  status: 'success';
  tracking_company: string | null;
  tracking_number: string | null;
  tracking_numbers: string[];
  tracking_url: string | null;
  tracking_urls: string[];
  location_id: number | null;
  notify_customer: boolean;
  line_items: (ShopifyLineItem & { quantity: number })[];
  created_at: string;
  updated_at: string;
}

export interface ShopifyRefund {
  id: number;
  order_id: number;
  created_at: string;
  note: string | null;
  notify: boolean;
  currency: string | null;
  refund_line_items: {
    id: number;
    line_item_id: number;
    quantity: number;
    restock_type: string;
    line_item: ShopifyLineItem;
  }[];
  transactions: {
    id: number;
    order_id: number;
    parent_id: number | null;
    kind: 'refund';
    gateway: string | null;
    status: 'success';
    amount: string;
    currency: string | null;
  }[];
  shipping?: { amount?: string; full_refund?: boolean };
}

export interface ShopifySimulatorOptions {
  /** Default 0 (any free port). */
  port?: number;
  /** Expected `X-Shopify-Access-Token`. Default `shpat_simulator`. */
  accessToken?: string;
  /** Sent as `X-Shopify-Shop-Domain` on webhooks. Default `tally-demo.myshopify.com`. */
  shopDomain?: string;
  /** Leaky bucket; when absent there is no call limit and no call-limit header. */
  bucket?: { size: number; leakPerSecond: number };
  /** Clock in ms (bucket leak, timestamps). Default `Date.now`. */
  now?: () => number;
}

export interface ShopifySimulator {
  url: string;
  close(): Promise<void>;
  requests: RecordedRequest[];
  counts: {
    faultsInjected: number;
    unauthorized: number;
    throttled: number;
    fulfillmentsCreated: number;
    inventorySets: number;
    refundsCreated: number;
    webhooksSent: number;
  };
  /** Answer the next requests with these statuses (429/503 carry `Retry-After` when given). */
  failNext(statuses: number[], retryAfterSeconds?: number): void;
  addOrder(order: ShopifyOrder): void;
  /** The stored order (with `fulfillment_status` and per-line `fulfillable_quantity` kept current). */
  order(id: number): ShopifyOrder | undefined;
  addInventoryItem(inventoryItemId: number, sku: string): void;
  fulfillments(orderId?: number): ShopifyFulfillment[];
  /** `${inventory_item_id}:${location_id}` → available. */
  inventoryLevels(): Map<string, number>;
  refunds(orderId?: number): ShopifyRefund[];
  /** POSTs `order` as a signed orders/create webhook and stores it; resolves to the receiver's status. */
  sendOrderWebhook(url: string, order: ShopifyOrder, secret: string): Promise<number>;
}

const UNAUTHORIZED = {
  errors: '[API] Invalid API key or access token (unrecognized login or wrong password)',
};
const NOT_FOUND = { errors: 'Not Found' };
const missingParam = (name: string) => ({ errors: { [name]: 'Required parameter missing or invalid' } });
const base422 = (message: string) => json(422, { errors: { base: [message] } });

const FAULT_BODIES: Record<number, unknown> = {
  400: { errors: 'Bad Request' },
  401: UNAUTHORIZED,
  402: { errors: 'Unavailable Shop' },
  403: { errors: 'Forbidden' },
  404: NOT_FOUND,
  423: { errors: 'Locked' },
  429: {
    errors:
      'Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service.',
  },
  500: { errors: 'Internal Server Error' },
  502: { errors: 'Bad Gateway' },
  503: { errors: 'Service Unavailable' },
  504: { errors: 'Gateway Timeout' },
};

const FULFILLMENT_KEYS = new Set([
  'tracking_number',
  'tracking_numbers',
  'tracking_company',
  'tracking_url',
  'tracking_urls',
  'notify_customer',
  'location_id',
  'line_items',
  'shipment_status',
]);
const REFUND_KEYS = new Set(['currency', 'notify', 'note', 'refund_line_items', 'transactions', 'shipping']);
const RESTOCK_TYPES = new Set(['no_restock', 'cancel', 'return']);

// Version segment: Shopify accepts any dated version (and answers 404 on anything else).
const V = String.raw`/admin/api/(\d{4}-(?:0[1-9]|1[0-2]))`;

export async function startShopifySimulator(
  options: ShopifySimulatorOptions = {},
): Promise<ShopifySimulator> {
  const token = options.accessToken ?? 'shpat_simulator';
  const shopDomain = options.shopDomain ?? 'tally-demo.myshopify.com';
  const now = options.now ?? Date.now;
  const iso = () => new Date(now()).toISOString();
  const requests: RecordedRequest[] = [];
  const faults = new Faults();
  const counts: ShopifySimulator['counts'] = {
    faultsInjected: 0,
    unauthorized: 0,
    throttled: 0,
    fulfillmentsCreated: 0,
    inventorySets: 0,
    refundsCreated: 0,
    webhooksSent: 0,
  };

  const orders = new Map<number, ShopifyOrder>();
  /** order id → line item id → quantity fulfilled so far. */
  const fulfilled = new Map<number, Map<number, number>>();
  /** order id → line item id → quantity refunded so far. */
  const refunded = new Map<number, Map<number, number>>();
  const fulfillmentList: ShopifyFulfillment[] = [];
  const refundList: ShopifyRefund[] = [];
  const inventoryItems = new Map<number, string>();
  const levels = new Map<string, number>();
  let nextId = 4_100_000_000_000;

  // Leaky bucket: `level` drains continuously at leakPerSecond; a call that would overflow is refused.
  let level = 0;
  let lastLeak = now();
  const bucket = options.bucket;
  const leak = () => {
    if (!bucket) return;
    const t = now();
    level = Math.max(0, level - ((t - lastLeak) / 1000) * bucket.leakPerSecond);
    lastLeak = t;
  };

  const done = (orderId: number, map: Map<number, Map<number, number>>) => {
    let m = map.get(orderId);
    if (!m) {
      m = new Map();
      map.set(orderId, m);
    }
    return m;
  };
  const remaining = (order: ShopifyOrder, line: ShopifyLineItem) =>
    line.quantity - (fulfilled.get(order.id)?.get(line.id) ?? 0);

  const refreshOrder = (order: ShopifyOrder) => {
    let any = false;
    let all = true;
    for (const line of order.line_items) {
      const left = remaining(order, line);
      line.fulfillable_quantity = left;
      if (left < line.quantity) any = true;
      if (left > 0) all = false;
      line.fulfillment_status = left === 0 ? 'fulfilled' : left < line.quantity ? 'partial' : null;
    }
    order.fulfillment_status = all ? 'fulfilled' : any ? 'partial' : null;
  };

  const addOrder = (order: ShopifyOrder) => {
    const copy = structuredClone(order);
    orders.set(copy.id, copy);
    refreshOrder(copy);
  };

  const router = new Router()
    .on('GET', new RegExp(`^${V}/orders/(\\d+)\\.json$`), (_req, [, id]) => {
      const order = orders.get(Number(id));
      return order ? json(200, { order }) : json(404, NOT_FOUND);
    })
    .on('GET', new RegExp(`^${V}/orders/(\\d+)/fulfillments\\.json$`), (_req, [, id]) => {
      const order = orders.get(Number(id));
      if (!order) return json(404, NOT_FOUND);
      return json(200, { fulfillments: fulfillmentList.filter((f) => f.order_id === order.id) });
    })
    .on('POST', new RegExp(`^${V}/orders/(\\d+)/fulfillments\\.json$`), (req, [, id]) =>
      createFulfillment(req, Number(id)),
    )
    .on('POST', new RegExp(`^${V}/inventory_levels/set\\.json$`), (req) => setInventoryLevel(req))
    .on('GET', new RegExp(`^${V}/orders/(\\d+)/refunds\\.json$`), (_req, [, id]) => {
      const order = orders.get(Number(id));
      if (!order) return json(404, NOT_FOUND);
      return json(200, { refunds: refundList.filter((r) => r.order_id === order.id) });
    })
    .on('POST', new RegExp(`^${V}/orders/(\\d+)/refunds\\.json$`), (req, [, id]) =>
      createRefund(req, Number(id)),
    );

  function createFulfillment(req: SimRequest, orderId: number): Reply {
    const body = req.json;
    if (!isPlainObject(body) || Object.keys(body).length !== 1 || !isPlainObject(body.fulfillment)) {
      return json(400, missingParam('fulfillment'));
    }
    const order = orders.get(orderId);
    if (!order) return json(404, NOT_FOUND);
    const f = body.fulfillment;
    for (const key of Object.keys(f)) {
      if (!FULFILLMENT_KEYS.has(key)) return base422(`Unknown fulfillment field: ${key}`);
    }
    const optString = (k: string) => f[k] === undefined || f[k] === null || typeof f[k] === 'string';
    const optStrings = (k: string) =>
      f[k] === undefined || (Array.isArray(f[k]) && f[k].every((s: unknown) => typeof s === 'string'));
    for (const k of ['tracking_number', 'tracking_company', 'tracking_url', 'shipment_status']) {
      if (!optString(k)) return base422(`${k} must be a string`);
    }
    for (const k of ['tracking_numbers', 'tracking_urls']) {
      if (!optStrings(k)) return base422(`${k} must be an array of strings`);
    }
    if (f.notify_customer !== undefined && typeof f.notify_customer !== 'boolean') {
      return base422('notify_customer must be a boolean');
    }
    if (f.location_id !== undefined && f.location_id !== null && !isInteger(f.location_id)) {
      return base422('location_id must be an integer');
    }

    // What to fulfil: line item id → quantity; absent line_items means everything still open.
    const wanted = new Map<number, number>();
    if (f.line_items === undefined) {
      for (const line of order.line_items) {
        const left = remaining(order, line);
        if (left > 0) wanted.set(line.id, left);
      }
      if (wanted.size === 0) return base422('Line items are already fulfilled');
    } else {
      if (!Array.isArray(f.line_items) || f.line_items.length === 0) {
        return base422('line_items must be a non-empty array');
      }
      for (const entry of f.line_items as unknown[]) {
        if (!isPlainObject(entry) || !isInteger(entry.id))
          return base422('line_items[].id must be an integer');
        const extra = Object.keys(entry).find((k) => k !== 'id' && k !== 'quantity');
        if (extra) return base422(`Unknown line item field: ${extra}`);
        const line = order.line_items.find((l) => l.id === entry.id);
        if (!line) return base422(`Line item ${entry.id} does not belong to order ${order.id}`);
        if (entry.quantity !== undefined && (!isInteger(entry.quantity) || entry.quantity <= 0)) {
          return base422('line_items[].quantity must be a positive integer');
        }
        const quantity = (entry.quantity as number | undefined) ?? remaining(order, line);
        wanted.set(line.id, (wanted.get(line.id) ?? 0) + quantity);
      }
      for (const [lineId, quantity] of wanted) {
        const line = order.line_items.find((l) => l.id === lineId)!;
        const left = remaining(order, line);
        if (left === 0) return base422('Line items are already fulfilled');
        if (quantity > left) {
          return base422(
            `Line item ${lineId}: quantity ${quantity} exceeds the fulfillable quantity ${left}`,
          );
        }
      }
    }

    const m = done(order.id, fulfilled);
    for (const [lineId, quantity] of wanted) m.set(lineId, (m.get(lineId) ?? 0) + quantity);
    refreshOrder(order);
    const trackingNumbers =
      (f.tracking_numbers as string[] | undefined) ??
      (typeof f.tracking_number === 'string' ? [f.tracking_number] : []);
    const trackingUrls =
      (f.tracking_urls as string[] | undefined) ??
      (typeof f.tracking_url === 'string' ? [f.tracking_url] : []);
    const at = iso();
    const fulfillment: ShopifyFulfillment = {
      id: nextId++,
      order_id: order.id,
      name: `${order.name ?? `#${order.id}`}.${fulfillmentList.filter((x) => x.order_id === order.id).length + 1}`,
      status: 'success',
      tracking_company: (f.tracking_company as string | null | undefined) ?? null,
      tracking_number: (f.tracking_number as string | null | undefined) ?? trackingNumbers[0] ?? null,
      tracking_numbers: trackingNumbers,
      tracking_url: (f.tracking_url as string | null | undefined) ?? trackingUrls[0] ?? null,
      tracking_urls: trackingUrls,
      location_id: (f.location_id as number | null | undefined) ?? null,
      notify_customer: (f.notify_customer as boolean | undefined) ?? false,
      line_items: [...wanted].map(([lineId, quantity]) => ({
        ...structuredClone(order.line_items.find((l) => l.id === lineId)!),
        quantity,
      })),
      created_at: at,
      updated_at: at,
    };
    fulfillmentList.push(fulfillment);
    counts.fulfillmentsCreated += 1;
    return json(201, { fulfillment });
  }

  function setInventoryLevel(req: SimRequest): Reply {
    const body = req.json;
    if (!isPlainObject(body)) return json(400, missingParam('inventory_item_id'));
    for (const key of ['location_id', 'inventory_item_id', 'available']) {
      if (body[key] === undefined || body[key] === null) return json(400, missingParam(key));
    }
    const extra = Object.keys(body).find(
      (k) => !['location_id', 'inventory_item_id', 'available'].includes(k),
    );
    if (extra) return json(422, { errors: { [extra]: ['is not a permitted parameter'] } });
    for (const key of ['location_id', 'inventory_item_id', 'available']) {
      const v = body[key];
      if (typeof v !== 'number') return json(422, { errors: { [key]: ['is not a number'] } });
      if (!isInteger(v)) return json(422, { errors: { [key]: ['must be an integer'] } });
    }
    const itemId = body.inventory_item_id as number;
    const locationId = body.location_id as number;
    const available = body.available as number;
    if (!inventoryItems.has(itemId)) {
      return json(422, { errors: ['Inventory item does not have inventory tracking enabled'] });
    }
    levels.set(`${itemId}:${locationId}`, available);
    counts.inventorySets += 1;
    return json(200, {
      inventory_level: {
        inventory_item_id: itemId,
        location_id: locationId,
        available,
        updated_at: iso(),
      },
    });
  }

  function createRefund(req: SimRequest, orderId: number): Reply {
    const body = req.json;
    if (!isPlainObject(body) || Object.keys(body).length !== 1 || !isPlainObject(body.refund)) {
      return json(400, missingParam('refund'));
    }
    const order = orders.get(orderId);
    if (!order) return json(404, NOT_FOUND);
    const r = body.refund;
    const err = (field: string, message: string) => json(422, { errors: { [field]: [message] } });
    for (const key of Object.keys(r))
      if (!REFUND_KEYS.has(key)) return err(key, 'is not a permitted parameter');
    if (r.currency !== undefined && (typeof r.currency !== 'string' || !/^[A-Z]{3}$/.test(r.currency))) {
      return err('currency', 'is invalid');
    }
    if (r.notify !== undefined && typeof r.notify !== 'boolean') return err('notify', 'must be a boolean');
    if (r.note !== undefined && r.note !== null && typeof r.note !== 'string')
      return err('note', 'must be a string');

    const lines: { line: ShopifyLineItem; quantity: number; restock_type: string }[] = [];
    if (r.refund_line_items !== undefined) {
      if (!Array.isArray(r.refund_line_items)) return err('refund_line_items', 'must be an array');
      const taken = new Map<number, number>();
      for (const entry of r.refund_line_items as unknown[]) {
        if (!isPlainObject(entry) || !isInteger(entry.line_item_id)) {
          return err('refund_line_items', 'line_item_id must be an integer');
        }
        const extra = Object.keys(entry).find(
          (k) => !['line_item_id', 'quantity', 'restock_type', 'location_id'].includes(k),
        );
        if (extra) return err('refund_line_items', `unknown field: ${extra}`);
        const line = order.line_items.find((l) => l.id === entry.line_item_id);
        if (!line)
          return err('refund_line_items', `line item ${entry.line_item_id} does not belong to this order`);
        if (!isInteger(entry.quantity) || entry.quantity <= 0) {
          return err('refund_line_items', 'quantity must be a positive integer');
        }
        const restock = entry.restock_type ?? 'no_restock';
        if (typeof restock !== 'string' || !RESTOCK_TYPES.has(restock)) {
          return err('refund_line_items', 'restock_type must be one of no_restock, cancel, return');
        }
        const already = (refunded.get(order.id)?.get(line.id) ?? 0) + (taken.get(line.id) ?? 0);
        if (entry.quantity > line.quantity - already) {
          return err(
            'refund_line_items',
            `cannot refund more items than were purchased (line item ${line.id})`,
          );
        }
        taken.set(line.id, (taken.get(line.id) ?? 0) + entry.quantity);
        lines.push({ line, quantity: entry.quantity, restock_type: restock });
      }
    }

    const transactions: ShopifyRefund['transactions'] = [];
    if (r.transactions !== undefined) {
      if (!Array.isArray(r.transactions)) return err('transactions', 'must be an array');
      for (const t of r.transactions as unknown[]) {
        if (!isPlainObject(t)) return err('transactions', 'must be objects');
        const extra = Object.keys(t).find(
          (k) => !['parent_id', 'amount', 'kind', 'gateway', 'currency'].includes(k),
        );
        if (extra) return err('transactions', `unknown field: ${extra}`);
        if (t.kind !== 'refund') return err('transactions', 'kind must be "refund"');
        if (!isDecimalString(t.amount, 2) || t.amount.startsWith('-')) {
          return err('transactions', 'amount must be a non-negative decimal string, e.g. "10.00"');
        }
        if (t.parent_id !== undefined && t.parent_id !== null && !isInteger(t.parent_id)) {
          return err('transactions', 'parent_id must be an integer');
        }
        if (t.gateway !== undefined && typeof t.gateway !== 'string') {
          return err('transactions', 'gateway must be a string');
        }
        transactions.push({
          id: nextId++,
          order_id: order.id,
          parent_id: (t.parent_id as number | null | undefined) ?? null,
          kind: 'refund',
          gateway: (t.gateway as string | undefined) ?? null,
          status: 'success',
          amount: t.amount,
          currency: (t.currency as string | undefined) ?? (r.currency as string | undefined) ?? null,
        });
      }
    }

    let shipping: ShopifyRefund['shipping'];
    if (r.shipping !== undefined) {
      if (!isPlainObject(r.shipping)) return err('shipping', 'must be an object');
      const extra = Object.keys(r.shipping).find((k) => k !== 'amount' && k !== 'full_refund');
      if (extra) return err('shipping', `unknown field: ${extra}`);
      const { amount, full_refund } = r.shipping;
      if (amount !== undefined && !isDecimalString(amount, 2))
        return err('shipping', 'amount must be a decimal string');
      if (full_refund !== undefined && typeof full_refund !== 'boolean') {
        return err('shipping', 'full_refund must be a boolean');
      }
      shipping = {
        ...(amount !== undefined && { amount: amount as string }),
        ...(full_refund !== undefined && { full_refund: full_refund as boolean }),
      };
    }

    const m = done(order.id, refunded);
    for (const l of lines) m.set(l.line.id, (m.get(l.line.id) ?? 0) + l.quantity);
    const refund: ShopifyRefund = {
      id: nextId++,
      order_id: order.id,
      created_at: iso(),
      note: (r.note as string | null | undefined) ?? null,
      notify: (r.notify as boolean | undefined) ?? false,
      currency: (r.currency as string | undefined) ?? null,
      refund_line_items: lines.map((l) => ({
        id: nextId++,
        line_item_id: l.line.id,
        quantity: l.quantity,
        restock_type: l.restock_type,
        line_item: structuredClone(l.line),
      })),
      transactions,
      ...(shipping && { shipping }),
    };
    refundList.push(refund);
    counts.refundsCreated += 1;
    return json(201, { refund });
  }

  const faultBody = (fault: Fault) => FAULT_BODIES[fault.status] ?? { errors: `HTTP ${fault.status}` };

  const served = await serve({
    port: options.port,
    requests,
    commonHeaders: (): Record<string, string> =>
      bucket
        ? { 'x-shopify-shop-api-call-limit': `${Math.min(bucket.size, Math.ceil(level))}/${bucket.size}` }
        : {},
    handle: (req) => {
      const fault = faults.take();
      if (fault) {
        counts.faultsInjected += 1;
        return faultReply(fault, faultBody(fault));
      }
      if (header(req.headers, 'x-shopify-access-token') !== token) {
        counts.unauthorized += 1;
        return json(401, UNAUTHORIZED);
      }
      if (bucket) {
        leak();
        if (level + 1 > bucket.size) {
          counts.throttled += 1;
          return json(
            429,
            {
              errors: `Exceeded ${bucket.leakPerSecond} calls per second for api client. Reduce request rates to resume uninterrupted service.`,
            },
            { 'retry-after': '1' },
          );
        }
        level += 1;
      }
      const match = router.match(req.method, req.path);
      // Shopify answers an unsupported method on a known path with the same 404.
      if (match === undefined || match === 'method_not_allowed') return json(404, NOT_FOUND);
      return match.handler(req, match.params);
    },
  });

  return {
    url: served.url,
    close: served.close,
    requests,
    counts,
    failNext: (statuses, retryAfterSeconds) => faults.push(statuses, retryAfterSeconds),
    addOrder,
    order: (id) => orders.get(id),
    addInventoryItem: (id, sku) => {
      inventoryItems.set(id, sku);
    },
    fulfillments: (orderId) =>
      fulfillmentList
        .filter((f) => orderId === undefined || f.order_id === orderId)
        .map((f) => structuredClone(f)),
    inventoryLevels: () => new Map(levels),
    refunds: (orderId) =>
      refundList
        .filter((r) => orderId === undefined || r.order_id === orderId)
        .map((r) => structuredClone(r)),
    async sendOrderWebhook(url, order, secret) {
      addOrder(order);
      const body = JSON.stringify(order);
      const headers = { ...shopifyHeaders(body, secret, randomUUID()), 'x-shopify-shop-domain': shopDomain };
      const res = await fetch(url, { method: 'POST', headers, body });
      await res.arrayBuffer();
      counts.webhooksSent += 1;
      return res.status;
    },
  };
}
