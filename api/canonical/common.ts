// Pieces several canonical entities share.
import { z } from 'zod';

export const timestamp = () =>
  z.iso.datetime({ offset: true }).describe('An RFC 3339 timestamp with a time zone offset.');

export const sku = () => z.string().min(1).max(128).describe('Canonical SKU (the ERP item number).');

export const addressSchema = z
  .object({
    country: z
      .string()
      .regex(/^[A-Z]{2}$/, 'must be an ISO 3166-1 alpha-2 country code')
      .describe('ISO 3166-1 alpha-2 country.'),
    region: z.string().max(64).optional().describe('State, province or region code.'),
    city: z.string().max(128).optional().describe('City.'),
    postalCode: z.string().max(32).optional().describe('Postal code.'),
  })
  .strict()
  .describe('A postal address reduced to what reporting needs (no personal data).');

export const channelRefSchema = z
  .object({
    channel: z.string().min(1).max(63).describe('Channel name, as in IntegrationFlow.spec.channel.'),
    id: z.string().min(1).max(256).describe('The identifier in that channel.'),
  })
  .strict()
  .describe('An identifier of this record in one channel.');
