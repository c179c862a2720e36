// Simulated Shopify channel traffic: realistic order webhooks, signed the way Shopify signs them
// (base64 HMAC-SHA256 of the raw body). Used by the demo and by the end-to-end tests.
import { createHmac } from 'node:crypto';

const PRODUCTS = [
  { sku: 'TSHIRT-M-BLK', price: '19.99' },
  { sku: 'HOODIE-L-GRY', price: '49.00' },
  { sku: 'MUG-WHT', price: '9.50' },
  { sku: 'CAP-NVY', price: '14.25' },
];

export interface ShopifyOrderOptions {
  /** Sequence number: makes ids, quantities and discounts vary deterministically. */
  n: number;
  /** Business time of the order. */
  createdAt?: Date;
}

const cents = (s: string) => Math.round(Number(s) * 100);
const money = (c: number) => (c / 100).toFixed(2);

/** A Shopify orders/create payload with consistent totals (integer cents, no float drift). */
export function shopifyOrder({
  n,
  createdAt = new Date(Date.UTC(2026, 10, 20, 16, 0, 0) + n * 60_000),
}: ShopifyOrderOptions) {
  const lines = [PRODUCTS[n % PRODUCTS.length]!, PRODUCTS[(n + 1) % PRODUCTS.length]!].map((p, i) => {
    const quantity = 1 + ((n + i) % 3);
    const discount = n % 4 === 0 && i === 0 ? 500 : 0;
    return {
      id: n * 10 + i,
      sku: p.sku,
      quantity,
      price: p.price,
      total_discount: money(discount),
      tax_lines: [],
    };
  });
  const subtotal = lines.reduce((s, l) => s + cents(l.price) * l.quantity - cents(l.total_discount), 0);
  const discounts = lines.reduce((s, l) => s + cents(l.total_discount), 0);
  const shipping = 499;
  const iso = createdAt.toISOString();
  return {
    id: 5_100_000_000_000 + n,
    name: `#${1000 + n}`,
    created_at: iso,
    updated_at: iso,
    currency: 'USD',
    financial_status: 'paid',
    fulfillment_status: null,
    cancelled_at: null,
    customer: { id: 7000 + (n % 17) },
    line_items: lines,
    discount_codes: discounts ? [{ code: 'WELCOME5', amount: money(discounts), type: 'fixed_amount' }] : [],
    subtotal_price: money(subtotal),
    total_discounts: money(discounts),
    total_tax: '0.00',
    total_price: money(subtotal + shipping),
    total_shipping_price_set: { shop_money: { amount: money(shipping), currency_code: 'USD' } },
    shipping_lines: [{ title: 'Standard', price: money(shipping) }],
    shipping_address: { country_code: 'US', province_code: 'IL', city: 'Chicago', zip: '60601' },
  };
}

export function signShopify(body: string, secret: string): string {
  return createHmac('sha256', secret).update(body, 'utf8').digest('base64');
}

/** Headers Shopify sends with a webhook; the webhook id is its delivery id (used for dedupe). */
export function shopifyHeaders(body: string, secret: string, webhookId: string): Record<string, string> {
  return {
    'content-type': 'application/json',
    'x-shopify-topic': 'orders/create',
    'x-shopify-shop-domain': 'tally-demo.myshopify.com',
    'x-shopify-webhook-id': webhookId,
    'x-shopify-hmac-sha256': signShopify(body, secret),
  };
}
