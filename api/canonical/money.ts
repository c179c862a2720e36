// Exact money: a decimal string plus an ISO 4217 currency. Arithmetic happens in integer
// minor units (bigint), never in binary floating point.
import { z } from 'zod';

/** ISO 4217 minor-unit exponents that differ from 2. */
const MINOR_DIGITS: Record<string, number> = {
  BHD: 3,
  CLP: 0,
  IQD: 3,
  ISK: 0,
  JOD: 3,
  JPY: 0,
  KRW: 0,
  KWD: 3,
  LYD: 3,
  OMR: 3,
  PYG: 0,
  TND: 3,
  UGX: 0,
  VND: 0,
  XAF: 0,
  XOF: 0,
  XPF: 0,
};

export const currencyCode = () =>
  z
    .string()
    .regex(/^[A-Z]{3}$/, 'must be an ISO 4217 currency code such as "USD" or "EUR"')
    .describe('ISO 4217 currency code, e.g. "USD".');

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

export function minorDigits(currency: string): number {
  return MINOR_DIGITS[currency] ?? 2;
}

export class MoneyPrecisionError extends Error {
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
