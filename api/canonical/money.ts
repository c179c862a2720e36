// Exact money: a decimal string plus an ISO 4217 currency. Arithmetic happens in integer
// minor units (bigint), never in binary floating point.

import { z } from 'zod';
import { TallyError } from '../errors.ts';

/**
 * ISO 4217 List One as published on 2026-01-01: every active currency code with its minor-unit
 * digits (funds codes such as BOV, CHE, CLF, USN included; precious metals, SDR, settlement units
 * and the test codes XTS/XXX, which have no minor unit, left out). Update it with each ISO amendment.
 */
// biome-ignore format: a table, ten codes a line
const ISO_4217_ACTIVE: Readonly<Record<string, number>> = {
  AED: 2, AFN: 2, ALL: 2, AMD: 2, AOA: 2, ARS: 2, AUD: 2, AWG: 2, AZN: 2, BAM: 2,
  BBD: 2, BDT: 2, BHD: 3, BIF: 0, BMD: 2, BND: 2, BOB: 2, BOV: 2, BRL: 2, BSD: 2,
  BTN: 2, BWP: 2, BYN: 2, BZD: 2, CAD: 2, CDF: 2, CHE: 2, CHF: 2, CHW: 2, CLF: 4,
  CLP: 0, CNY: 2, COP: 2, COU: 2, CRC: 2, CUP: 2, CVE: 2, CZK: 2, DJF: 0, DKK: 2,
  DOP: 2, DZD: 2, EGP: 2, ERN: 2, ETB: 2, EUR: 2, FJD: 2, FKP: 2, GBP: 2, GEL: 2,
  GHS: 2, GIP: 2, GMD: 2, GNF: 0, GTQ: 2, GYD: 2, HKD: 2, HNL: 2, HTG: 2, HUF: 2,
  IDR: 2, ILS: 2, INR: 2, IQD: 3, IRR: 2, ISK: 0, JMD: 2, JOD: 3, JPY: 0, KES: 2,
  KGS: 2, KHR: 2, KMF: 0, KPW: 2, KRW: 0, KWD: 3, KYD: 2, KZT: 2, LAK: 2, LBP: 2,
  LKR: 2, LRD: 2, LSL: 2, LYD: 3, MAD: 2, MDL: 2, MGA: 2, MKD: 2, MMK: 2, MNT: 2,
  MOP: 2, MRU: 2, MUR: 2, MVR: 2, MWK: 2, MXN: 2, MXV: 2, MYR: 2, MZN: 2, NAD: 2,
  NGN: 2, NIO: 2, NOK: 2, NPR: 2, NZD: 2, OMR: 3, PAB: 2, PEN: 2, PGK: 2, PHP: 2,
  PKR: 2, PLN: 2, PYG: 0, QAR: 2, RON: 2, RSD: 2, RUB: 2, RWF: 0, SAR: 2, SBD: 2,
  SCR: 2, SDG: 2, SEK: 2, SGD: 2, SHP: 2, SLE: 2, SOS: 2, SRD: 2, SSP: 2, STN: 2,
  SVC: 2, SYP: 2, SZL: 2, THB: 2, TJS: 2, TMT: 2, TND: 3, TOP: 2, TRY: 2, TTD: 2,
  TWD: 2, TZS: 2, UAH: 2, UGX: 0, USD: 2, USN: 2, UYI: 0, UYU: 2, UYW: 4, UZS: 2,
  VED: 2, VES: 2, VND: 0, VUV: 0, WST: 2, XAD: 2, XAF: 0, XCD: 2, XCG: 2, XOF: 0,
  XPF: 0, YER: 2, ZAR: 2, ZMW: 2, ZWG: 2,
};

/**
 * Withdrawn recently and still found in the orders and invoices of the year before (backfills,
 * reconciliation windows): ANG (replaced by XCG in 2025), BGN (Bulgaria joined the euro on
 * 2026-01-01). Accepted like active codes; drop them once such data no longer comes in.
 */
const ISO_4217_RECENTLY_WITHDRAWN: Readonly<Record<string, number>> = { ANG: 2, BGN: 2 };

const MINOR_DIGITS = new Map<string, number>(
  Object.entries({ ...ISO_4217_ACTIVE, ...ISO_4217_RECENTLY_WITHDRAWN }),
);

/** Every currency code the canonical model accepts, sorted (a bounded set: also a metric label). */
export const CURRENCY_CODES: readonly string[] = Object.freeze([...MINOR_DIGITS.keys()].sort());

/** True for an ISO 4217 code the canonical model accepts (see CURRENCY_CODES). */
export function isCurrencyCode(code: string): boolean {
  return MINOR_DIGITS.has(code);
}

const CURRENCY_FORMAT = /^[A-Z]{3}$/;

/** One schema for every currency field: the JSON Schemas list the codes once, in $defs. */
const currencyCodeSchema = z
  .string()
  .regex(CURRENCY_FORMAT, 'must be an ISO 4217 currency code such as "USD" or "EUR"')
  .refine((code) => !CURRENCY_FORMAT.test(code) || isCurrencyCode(code), {
    error: (issue) =>
      `"${String(issue.input)}" is not an active ISO 4217 currency code: expected one such as "USD", "EUR", "GBP" or "JPY"`,
  })
  .meta({
    id: 'CurrencyCode',
    enum: [...CURRENCY_CODES],
    description: 'ISO 4217 currency code, e.g. "USD": an active code of List One.',
  });

export const currencyCode = () => currencyCodeSchema;

export const DECIMAL_AMOUNT = /^-?[0-9]+(\.[0-9]+)?$/;

export const moneySchema = z
  .object({
    amount: z
      .string()
      .regex(DECIMAL_AMOUNT, 'must be a decimal amount written as a string, e.g. "19.99"')
      .describe('Decimal amount as a string, e.g. "19.99"; never a binary float.'),
    currency: currencyCode(),
  })
  .strict()
  .describe('An exact amount of money in one currency.');
export type Money = z.infer<typeof moneySchema>;

/** The currency's minor-unit digits (ISO 4217); 2 for a code it does not know. */
export function minorDigits(currency: string): number {
  return MINOR_DIGITS.get(currency) ?? 2;
}

export class MoneyPrecisionError extends TallyError {
  override name = 'MoneyPrecisionError';
  readonly code = 'MONEY_PRECISION';
}

/** "19.99" USD -> 1999n. Throws when the amount has more decimals than the currency allows. */
export function toMinorUnits(money: Money): bigint {
  const digits = minorDigits(money.currency);
  if (!DECIMAL_AMOUNT.test(money.amount)) {
    throw new MoneyPrecisionError(`"${money.amount}" is not a decimal amount`);
  }
  const negative = money.amount.startsWith('-');
  const [whole = '0', frac = ''] = money.amount.replace('-', '').split('.');
  const trimmed = frac.replace(/0+$/, '');
  if (trimmed.length > digits) {
    throw new MoneyPrecisionError(
      `${money.amount} ${money.currency} has more than ${digits} decimal places; round it in the mapping`,
    );
  }
  const fraction = trimmed.padEnd(digits, '0');
  // Hot path (reconciliation): amounts that fit in a double exactly avoid string-to-BigInt parsing.
  const minor =
    whole.length + digits <= 15
      ? BigInt(Number(whole) * 10 ** digits + Number(fraction || '0'))
      : BigInt(whole) * 10n ** BigInt(digits) + BigInt(fraction || '0');
  return negative ? -minor : minor;
}

/** 1999n USD -> { amount: "19.99", currency: "USD" }. */
export function fromMinorUnits(minor: bigint, currency: string): Money {
  const digits = minorDigits(currency);
  const negative = minor < 0n;
  const abs = negative ? -minor : minor;
  const scale = 10n ** BigInt(digits);
  const whole = (abs / scale).toString();
  const frac = digits > 0 ? `.${(abs % scale).toString().padStart(digits, '0')}` : '';
  return { amount: `${negative ? '-' : ''}${whole}${frac}`, currency };
}
