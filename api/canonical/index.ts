// The canonical model, version v1: one schema per entity and the business-key field of each.
import type { z } from 'zod';
import { creditSchema } from './credit.ts';
import { customerSchema } from './customer.ts';
import { inventoryLevelSchema } from './inventory.ts';
import { invoiceSchema } from './invoice.ts';
import { orderSchema } from './order.ts';
import { priceSchema } from './price.ts';
import { productSchema } from './product.ts';
import { returnSchema } from './return.ts';
import { shipmentSchema } from './shipment.ts';

export const CANONICAL_MODEL_VERSION = 'v1';

export const CANONICAL_ENTITIES = [
  'Order',
  'InventoryLevel',
  'Shipment',
  'Invoice',
  'Return',
  'Credit',
  'Customer',
  'Product',
  'Price',
] as const;
export type CanonicalEntity = (typeof CANONICAL_ENTITIES)[number];

export const canonicalSchemas: Record<CanonicalEntity, z.ZodType> = {
  Order: orderSchema,
  InventoryLevel: inventoryLevelSchema,
  Shipment: shipmentSchema,
  Invoice: invoiceSchema,
  Return: returnSchema,
  Credit: creditSchema,
  Customer: customerSchema,
  Product: productSchema,
  Price: priceSchema,
};

/** The CloudEvents `type` of each entity, e.g. dev.tally.order.v1. */
export function eventType(entity: CanonicalEntity): string {
  return `dev.tally.${entity.toLowerCase()}.${CANONICAL_MODEL_VERSION}`;
}

export { type Credit, creditSchema } from './credit.ts';
export { type Customer, customerSchema } from './customer.ts';
export { type InventoryLevel, inventoryLevelSchema } from './inventory.ts';
export { type Invoice, invoiceSchema } from './invoice.ts';
export * from './money.ts';
export { type Order, orderSchema } from './order.ts';
export { type Price, priceSchema } from './price.ts';
export { type Product, productSchema } from './product.ts';
export { type Return, returnSchema } from './return.ts';
export { type Shipment, shipmentSchema } from './shipment.ts';
