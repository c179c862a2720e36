import { z } from 'zod';
import { sku, timestamp } from './common.ts';

export const SHIPMENT_MILESTONES = [
  'created',
  'picked',
  'packed',
  'shipped',
  'in_transit',
  'out_for_delivery',
  'delivered',
  'exception',
] as const;

export const shipmentSchema = z
  .object({
    shipmentId: z.string().min(1).max(256).describe('Shipment id (the business key).'),
    orderId: z.string().min(1).max(256).describe('Canonical order id the shipment fulfils.'),
    warehouse: z.string().max(128).optional().describe('Shipping warehouse.'),
    carrier: z.string().max(128).optional().describe('Carrier code.'),
    trackingNumber: z.string().max(256).optional().describe('Carrier tracking number.'),
    lines: z
      .array(
        z
          .object({
            sku: sku(),
            quantity: z.number().int().min(0).describe('Units shipped.'),
          })
          .strict(),
      )
      .describe('What was shipped.'),
    status: z.enum(SHIPMENT_MILESTONES).describe('Latest milestone reached.'),
    milestones: z
      .array(
        z
          .object({
            status: z.enum(SHIPMENT_MILESTONES).describe('Milestone.'),
            at: timestamp().describe('When it was reached.'),
          })
          .strict(),
      )
      .default([])
      .describe('Milestones in the order they happened.'),
  })
  .strict()
  .describe('A shipment of (part of) an order.');
export type Shipment = z.infer<typeof shipmentSchema>;
