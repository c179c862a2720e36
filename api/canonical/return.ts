import { z } from 'zod';
import { sku, timestamp } from './common.ts';
import { moneySchema } from './money.ts';

export const RETURN_MILESTONES = [
  'authorised',
  'received',
  'inspected',
  'dispositioned',
  'credited',
] as const;

export const returnSchema = z
  .object({
    returnId: z.string().min(1).max(256).describe('Return (RMA) id, the business key.'),
    orderId: z.string().min(1).max(256).describe('Canonical order id returned against.'),
    channel: z.string().max(63).optional().describe('Channel that authorised the return.'),
    status: z.enum([...RETURN_MILESTONES, 'rejected']).describe('Latest lifecycle step.'),
    milestones: z
      .object({
        authorisedAt: timestamp().optional().describe('When the return was authorised.'),
        receivedAt: timestamp().optional().describe('When the goods arrived at the warehouse.'),
        inspectedAt: timestamp().optional().describe('When the goods were inspected.'),
        dispositionedAt: timestamp().optional().describe('When the disposition was decided.'),
        creditedAt: timestamp().optional().describe('When the customer was credited.'),
      })
      .strict()
      .describe('Timestamps of each lifecycle step reached.'),
    lines: z
      .array(
        z
          .object({
            sku: sku(),
            quantity: z.number().int().min(0).describe('Units returned.'),
            reason: z.string().max(256).optional().describe('Return reason.'),
            disposition: z
              .enum(['restock', 'refurbish', 'scrap', 'return_to_vendor'])
              .optional()
              .describe('What happens to the goods.'),
          })
          .strict(),
      )
      .describe('Returned lines.'),
    authorisedAmount: moneySchema.optional().describe('Refund promised at authorisation.'),
    creditedAmount: moneySchema.optional().describe('Amount actually credited.'),
  })
  .strict()
  .describe('A return and its lifecycle.');
export type Return = z.infer<typeof returnSchema>;
