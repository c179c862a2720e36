import { z } from 'zod';
import { timestamp } from './common.ts';
import { moneySchema } from './money.ts';

export const creditSchema = z
  .object({
    creditId: z.string().min(1).max(256).describe('Credit note id, the business key.'),
    returnId: z.string().max(256).optional().describe('Return this credit settles.'),
    invoiceId: z.string().max(256).optional().describe('Invoice credited.'),
    orderId: z.string().max(256).optional().describe('Canonical order id.'),
    customerId: z.string().max(256).optional().describe('Canonical customer id.'),
    issuedAt: timestamp().describe('When the credit was issued.'),
    amount: moneySchema.describe('Amount credited.'),
    reason: z.string().max(256).optional().describe('Why.'),
  })
  .strict()
  .describe('A credit note.');
export type Credit = z.infer<typeof creditSchema>;
