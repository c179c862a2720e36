// examples/shopify-orders written by hand, as a JavaScript developer would, for the benchmark baseline.
// It calls the same money and lookup functions as the mapping (exact money is part of the mapping's
// work, not JSONata's), and must give the mapping's output for the example payload: bench/mapping.ts
// checks that before it measures anything.
import type { Handwritten, MappingFunctions } from './types.ts';

interface ShopifyOrder {
  id: number;
  name?: string;
  created_at?: string;
  updated_at: string;
  currency: string;
  financial_status?: string;
  fulfillment_status?: string | null;
  cancelled_at?: string | null;
  customer?: { id?: number } | null;
  line_items?: ShopifyLine[];
  discount_codes?: { code?: string }[];
  discount_applications?: { code?: string; title?: string }[];
  subtotal_price?: string;
  total_discounts?: string;
  total_tax?: string;
  total_price?: string;
  total_shipping_price_set?: { shop_money?: { amount?: string } };
  shipping_lines?: { title?: string; price?: string }[];
  shipping_address?: { country_code?: string; province_code?: string; city?: string; zip?: string } | null;
}

interface ShopifyLine {
  id: number;
  sku?: string;
  quantity: number;
  price: string;
  total_discount?: string;
  discount_allocations?: { amount: string; discount_application_index: number }[];
  tax_lines?: { title?: string; rate?: number; price?: string }[];
}

export const shopifyOrder: Handwritten = (payload: unknown, f: MappingFunctions) => {
  const o = payload as ShopifyOrder;
  const cur = o.currency;
  const code = o.discount_codes?.[0]?.code;
  const applications = o.discount_applications ?? [];
  const lines = (o.line_items ?? []).map((li) => {
    const allocations = (li.discount_allocations ?? []).filter((a) => Number(a.amount) > 0);
    const discounts =
      allocations.length > 0
        ? allocations.map((a) => {
            const application = applications[a.discount_application_index];
            return {
              code: application?.code,
              description: application?.title,
              scope: 'line',
              amount: f.money(a.amount, cur),
            };
          })
        : Number(li.total_discount) > 0
          ? [{ code, scope: 'line', amount: f.money(li.total_discount, cur) }]
          : [];
    return {
      lineId: String(li.id),
      sku: li.sku,
      quantity: li.quantity,
      unitPrice: f.money(li.price, cur),
      discounts,
      taxLines: (li.tax_lines ?? []).map((t) => ({
        name: t.title,
        rate: String(t.rate),
        amount: f.money(t.price, cur),
      })),
      total: f.moneySub(
        f.moneyMul(f.money(li.price, cur), li.quantity),
        f.moneySum(
          discounts.map((d) => d.amount),
          cur,
        ),
      ),
    };
  });
  const shippingLine = o.shipping_lines?.[0];
  const address = o.shipping_address;
  return {
    orderId: `shopify-${o.id}`,
    channel: 'shopify-us',
    channelOrderId: o.name,
    customerId: o.customer?.id ? `shopify-${o.customer.id}` : undefined,
    status: f.lookup(
      'orderStatus',
      o.cancelled_at ? 'cancelled' : o.fulfillment_status ? o.fulfillment_status : o.financial_status,
    ),
    placedAt: o.created_at,
    updatedAt: o.updated_at,
    version: Date.parse(o.updated_at),
    currency: cur,
    lines,
    discounts: [],
    taxLines: [],
    shipping: shippingLine
      ? {
          method: shippingLine.title,
          amount: f.money(shippingLine.price, cur),
          address: address
            ? {
                country: address.country_code,
                region: address.province_code,
                city: address.city,
                postalCode: address.zip,
              }
            : undefined,
        }
      : undefined,
    totals: {
      subtotal: f.money(o.subtotal_price, cur),
      discountTotal: f.money(o.total_discounts, cur),
      taxTotal: f.money(o.total_tax, cur),
      shippingTotal: f.money(o.total_shipping_price_set?.shop_money?.amount || '0', cur),
      grandTotal: f.money(o.total_price, cur),
    },
  };
};
