import { z } from 'zod';
import { sku, timestamp } from './common.ts';
import { currencyCode, moneySchema } from './money.ts';

export const invoiceSchema = z
  .object({
    invoiceId: z.string().min(1).max(256).describe('Invoice number (the business key).'),
    orderId: z.string().max(256).optional().describe('Canonical order id invoiced.'),
    channelOrderId: z.string().max(256).optional().describe('Channel order id, when the ERP keeps it.'),
    customerId: z.string().max(256).optional().describe('Canonical customer id.'),
    status: z.enum(['draft', 'issued', 'paid', 'void', 'credited']).describe('Invoice status.'),
    issuedAt: timestamp().describe('When the invoice was issued (its business time).'),
    dueAt: timestamp().optional().describe('Payment due date.'),
    currency: currencyCode(),
    lines: z
      .array(
        z
          .object({
            sku: sku(),
            quantity: z.number().int().describe('Units invoiced.'),
            unitPrice: moneySchema.describe('Unit price as invoiced.'),
            discount: moneySchema.optional().describe('Discount applied at invoicing.'),
            tax: moneySchema.optional().describe('Tax on the line.'),
            total: moneySchema.describe('Line total after discount, before tax.'),
          })
          .strict(),
      )
      .describe('Invoice lines.'),
    totals: z
      .object({
        subtotal: moneySchema.describe('Sum of line totals.'),
        discountTotal: moneySchema.describe('All discounts.'),
        taxTotal: moneySchema.describe('All taxes.'),
        shippingTotal: moneySchema.describe('Freight invoiced.'),
        grandTotal: moneySchema.describe('Amount due.'),
      })
      .strict()
      .describe('Invoice totals.'),
  })
  .strict()
  .describe('An ERP invoice.');
export type Invoice = z.infer<typeof invoiceSchema>;
