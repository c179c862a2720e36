import { z } from 'zod';
import { channelRefSchema } from './common.ts';

export const customerSchema = z
  .object({
    customerId: z.string().min(1).max(256).describe('Canonical customer id, the business key.'),
    name: z.string().max(256).describe('Account name.'),
    parentAccountId: z.string().max(256).optional().describe('Parent account in the customer hierarchy.'),
    region: z.string().max(64).optional().describe('Sales region.'),
    tier: z.string().max(64).optional().describe('Customer tier or segment.'),
    channelAccounts: z.array(channelRefSchema).default([]).describe('Account ids in each channel.'),
  })
  .strict()
  .describe('A customer account.');
export type Customer = z.infer<typeof customerSchema>;
