import { z } from 'zod';
import { sku, timestamp } from './common.ts';

export const inventoryLevelSchema = z
  .object({
    sku: sku(),
    warehouse: z.string().min(1).max(128).describe('Warehouse or location code.'),
    onHand: z.number().int().describe('Units physically on hand.'),
    reserved: z.number().int().min(0).describe('Units the ERP has reserved for open orders.'),
    available: z.number().int().describe('Units the ERP considers available to promise.'),
    channelReservations: z
      .array(
        z
          .object({
            channel: z.string().min(1).max(63).describe('Channel holding the reservation.'),
            quantity: z.number().int().min(0).describe('Units reserved by that channel.'),
          })
          .strict(),
      )
      .default([])
      .describe('Reservations held by channels, which the ERP may not reflect yet.'),
    asOf: timestamp().describe('When these levels were true.'),
  })
  .strict()
  .describe('Stock of one SKU in one warehouse.');
export type InventoryLevel = z.infer<typeof inventoryLevelSchema>;
