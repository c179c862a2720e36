import { z } from 'zod';
import { sku, timestamp } from './common.ts';
import { moneySchema } from './money.ts';

export const priceSchema = z
  .object({
    sku: sku(),
    channel: z
      .string()
      .max(63)
      .optional()
      .describe('Channel the price applies to; absent for the list price.'),
    priceList: z.string().max(128).optional().describe('Price list or customer tier.'),
    amount: moneySchema.describe('Unit price.'),
    validFrom: timestamp().describe('Start of validity.'),
    validTo: timestamp().optional().describe('End of validity.'),
  })
  .strict()
  .describe('A price of one SKU.');
export type Price = z.infer<typeof priceSchema>;
