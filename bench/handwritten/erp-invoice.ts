// examples/erp-invoices written by hand, for the benchmark baseline (see shopify-order.ts).
import type { Handwritten, MappingFunctions } from './types.ts';

interface ErpInvoice {
  InvoiceNo?: string;
  SalesOrderRef?: string;
  CustomerPO?: string;
  CustomerNo?: string;
  Status?: string;
  PostingDateTime?: string;
  DueDateTime?: string;
  CurrencyCode: string;
  Lines?: ErpLine[];
  Amount?: string | number;
  InvoiceDiscountAmount?: string | number;
  TotalTax?: string | number;
  FreightAmount?: string | number;
  AmountIncludingTax?: string | number;
}

interface ErpLine {
  ItemNo?: string;
  Quantity?: number;
  UnitPrice?: string | number;
  LineDiscountAmount?: string | number;
  TaxAmount?: string | number;
  LineAmount?: string | number;
}

export const erpInvoice: Handwritten = (payload: unknown, f: MappingFunctions) => {
  const inv = payload as ErpInvoice;
  const cur = inv.CurrencyCode;
  const lines = inv.Lines ?? [];
  return {
    invoiceId: inv.InvoiceNo,
    orderId: inv.SalesOrderRef,
    channelOrderId: inv.CustomerPO,
    customerId: inv.CustomerNo,
    status: f.lookup('invoiceStatus', inv.Status),
    issuedAt: inv.PostingDateTime,
    dueAt: inv.DueDateTime,
    currency: cur,
    lines: lines.map((l) => ({
      sku: l.ItemNo,
      quantity: l.Quantity,
      unitPrice: f.money(l.UnitPrice, cur),
      discount: f.money(l.LineDiscountAmount, cur),
      tax: f.money(l.TaxAmount, cur),
      total: f.money(l.LineAmount, cur),
    })),
    totals: {
      subtotal: f.money(inv.Amount, cur),
      discountTotal: f.moneyAdd(
        f.moneySum(
          lines.map((l) => f.money(l.LineDiscountAmount, cur)),
          cur,
        ),
        f.money(inv.InvoiceDiscountAmount, cur),
      ),
      taxTotal: f.money(inv.TotalTax, cur),
      shippingTotal: f.money(inv.FreightAmount, cur),
      grandTotal: f.money(inv.AmountIncludingTax, cur),
    },
  };
};
