import { z } from 'zod';
import { channelRefSchema, sku } from './common.ts';

export const productSchema = z
  .object({
    sku: sku(),
    name: z.string().max(256).describe('Product name.'),
    family: z.string().max(128).optional().describe('Product family for reporting.'),
    uom: z.string().max(16).optional().describe('Unit of measure, e.g. "EA".'),
    channelSkus: z.array(channelRefSchema).default([]).describe('The SKU in each channel.'),
  })
  .strict()
  .describe('A product and its channel SKU cross-references.');
export type Product = z.infer<typeof productSchema>;
