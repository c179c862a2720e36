// Hand-written equivalents of example mappings, by CanonicalMapping name.
import { erpInvoice } from './erp-invoice.ts';
import { shopifyOrder } from './shopify-order.ts';
import type { Handwritten } from './types.ts';

export type { Handwritten, MappingFunctions } from './types.ts';

export const handwritten: ReadonlyMap<string, Handwritten> = new Map([
  ['shopify-order', shopifyOrder],
  ['erp-invoice', erpInvoice],
]);
