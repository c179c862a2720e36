import { z } from 'zod';
import { addressSchema, sku, timestamp } from './common.ts';
import { currencyCode, moneySchema } from './money.ts';

export const discountSchema = z
  .object({
    code: z
      .string()
      .max(128)
      .optional()
      .describe('Promotion or coupon code, when the discount came from one.'),
    description: z.string().max(256).optional().describe('What the discount is.'),
    scope: z.enum(['order', 'line']).describe('Whether the discount applies to the whole order or one line.'),
    amount: moneySchema.describe('The discount amount, positive.'),
  })
  .strict();

export const taxLineSchema = z
  .object({
    name: z.string().max(128).describe('Tax name, e.g. "VAT" or "State Tax".'),
    rate: z
      .string()
      .regex(/^[0-9]+(\.[0-9]+)?$/)
      .optional()
      .describe('Rate as a decimal string, e.g. "0.0825"; absent when the source gives only the amount.'),
    amount: moneySchema.describe('Tax amount.'),
  })
  .strict();

export const orderLineSchema = z
  .object({
    lineId: z.string().min(1).max(128).describe('Line identifier, unique in the order.'),
    sku: sku(),
    channelSku: z.string().max(128).optional().describe('The SKU as the channel knows it.'),
    quantity: z.number().int().min(0).describe('Units ordered.'),
    unitPrice: moneySchema.describe('Price of one unit before discounts.'),
    listPrice: moneySchema
      .optional()
      .describe('List price of one unit, when unitPrice is a contract or customer-specific price.'),
    discounts: z.array(discountSchema).default([]).describe('Line-level discounts.'),
    taxLines: z.array(taxLineSchema).default([]).describe('Taxes on this line.'),
    total: moneySchema.describe('Line total after discounts, before tax.'),
  })
  .strict();

export const ORDER_STATUSES = [
  'pending',
  'confirmed',
  'partially_fulfilled',
  'fulfilled',
  'cancelled',
  'returned',
  'closed',
] as const;

export const orderSchema = z
  .object({
    orderId: z.string().min(1).max(256).describe('Canonical order id (the business key).'),
    channel: z.string().min(1).max(63).describe('Channel the order was captured in.'),
    channelOrderId: z.string().max(256).optional().describe('The order id in the channel.'),
    purchaseOrderNumber: z
      .string()
      .max(256)
      .optional()
      .describe("The customer's purchase order number (B2B, EDI), which ERP invoices quote back."),
    erpOrderId: z.string().max(256).optional().describe('The sales order id in the ERP, once known.'),
    customerId: z.string().max(256).optional().describe('Canonical customer id.'),
    parentAccountId: z
      .string()
      .max(256)
      .optional()
      .describe('Parent account of the customer in the customer hierarchy, so sales roll up by parent.'),
    status: z.enum(ORDER_STATUSES).describe('Canonical order status.'),
    placedAt: timestamp().describe('When the order was captured (its business time).'),
    updatedAt: timestamp().optional().describe('When the source last changed the order.'),
    requestedDeliveryDate: z.iso
      .date()
      .optional()
      .describe('Delivery date the customer asked for (YYYY-MM-DD), as on a B2B or EDI purchase order.'),
    version: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe('Source version; later versions supersede earlier ones.'),
    currency: currencyCode(),
    lines: z.array(orderLineSchema).min(1).describe('Order lines.'),
    discounts: z.array(discountSchema).default([]).describe('Order-level discounts.'),
    taxLines: z.array(taxLineSchema).default([]).describe('Order-level tax summary.'),
    shipping: z
      .object({
        method: z.string().max(128).optional().describe('Shipping method or service level.'),
        amount: moneySchema.describe('Shipping charged.'),
        address: addressSchema.optional(),
      })
      .strict()
      .optional()
      .describe('Shipping charged and where to.'),
    totals: z
      .object({
        subtotal: moneySchema.describe('Sum of line totals before order discounts.'),
        discountTotal: moneySchema.describe('All discounts, positive.'),
        taxTotal: moneySchema.describe('All taxes.'),
        shippingTotal: moneySchema.describe('Shipping charged.'),
        grandTotal: moneySchema.describe('What the customer pays.'),
      })
      .strict()
      .describe('Order totals.'),
  })
  .strict()
  .describe('A sales order as captured by a channel or held by the ERP.');
export type Order = z.infer<typeof orderSchema>;
