import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CURRENCY_CODES,
  currencyCode,
  fromMinorUnits,
  isCurrencyCode,
  MoneyPrecisionError,
  minorDigits,
  moneySchema,
  toMinorUnits,
} from './money.ts';

describe('exact money', () => {
  it('converts decimal strings to minor units by the currency exponent', () => {
    expect(toMinorUnits({ amount: '19.99', currency: 'USD' })).toBe(1999n);
    expect(toMinorUnits({ amount: '-0.5', currency: 'EUR' })).toBe(-50n);
    expect(toMinorUnits({ amount: '1500', currency: 'JPY' })).toBe(1500n);
    expect(toMinorUnits({ amount: '1.234', currency: 'KWD' })).toBe(1234n);
    expect(toMinorUnits({ amount: '2.500', currency: 'USD' })).toBe(250n);
  });

  it('rejects amounts finer than the currency allows instead of rounding silently', () => {
    expect(() => toMinorUnits({ amount: '0.001', currency: 'USD' })).toThrow(MoneyPrecisionError);
    expect(() => toMinorUnits({ amount: '1.5', currency: 'JPY' })).toThrow(/more than 0 decimal places/);
  });

  it('adds exactly where binary floating point would not (0.1 + 0.2)', () => {
    const sum =
      toMinorUnits({ amount: '0.10', currency: 'USD' }) + toMinorUnits({ amount: '0.20', currency: 'USD' });
    expect(fromMinorUnits(sum, 'USD')).toEqual({ amount: '0.30', currency: 'USD' });
  });

  it('round-trips any minor amount', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: -(10n ** 15n), max: 10n ** 15n }),
        fc.constantFrom('USD', 'JPY', 'KWD'),
        (m, c) => {
          expect(toMinorUnits(fromMinorUnits(m, c))).toBe(m);
        },
      ),
    );
  });
});

describe('currency codes (ISO 4217 List One, 2026-01-01)', () => {
  it('are the 165 active codes, plus ANG and BGN withdrawn recently', () => {
    expect(CURRENCY_CODES).toHaveLength(167);
    expect([...CURRENCY_CODES].sort()).toEqual(CURRENCY_CODES);
    expect(new Set(CURRENCY_CODES).size).toBe(CURRENCY_CODES.length);
    for (const c of CURRENCY_CODES) expect(c).toMatch(/^[A-Z]{3}$/);
    // What the example mappings and simulators use.
    for (const c of [
      'USD',
      'EUR',
      'GBP',
      'CAD',
      'JPY',
      'AUD',
      'CHF',
      'SEK',
      'XCG',
      'ZWG',
      'SLE',
      'VED',
      'XAD',
    ])
      expect(isCurrencyCode(c), c).toBe(true);
  });

  it('leave out withdrawn codes, codes without a minor unit (metals, SDR, test) and made-up ones', () => {
    for (const c of ['HRK', 'SLL', 'ZWL', 'CUC', 'VEF', 'MRO', 'STD', 'LTL', 'EEK', 'DEM', 'FRF']) {
      expect(isCurrencyCode(c), c).toBe(false);
    }
    for (const c of [
      'XAU',
      'XAG',
      'XPT',
      'XPD',
      'XDR',
      'XSU',
      'XUA',
      'XBA',
      'XTS',
      'XXX',
      'ABC',
      'BTC',
      'usd',
    ]) {
      expect(isCurrencyCode(c), c).toBe(false);
    }
    // Not an Object.prototype lookup.
    expect(isCurrencyCode('constructor')).toBe(false);
  });

  it('give each code its minor-unit digits', () => {
    const digits = (n: number) => CURRENCY_CODES.filter((c) => minorDigits(c) === n);
    expect(digits(0)).toEqual([
      'BIF',
      'CLP',
      'DJF',
      'GNF',
      'ISK',
      'JPY',
      'KMF',
      'KRW',
      'PYG',
      'RWF',
      'UGX',
      'UYI',
      'VND',
      'VUV',
      'XAF',
      'XOF',
      'XPF',
    ]);
    expect(digits(3)).toEqual(['BHD', 'IQD', 'JOD', 'KWD', 'LYD', 'OMR', 'TND']);
    expect(digits(4)).toEqual(['CLF', 'UYW']);
    expect(digits(0).length + digits(2).length + digits(3).length + digits(4).length).toBe(
      CURRENCY_CODES.length,
    );
    expect(toMinorUnits({ amount: '1.2345', currency: 'CLF' })).toBe(12345n);
    expect(() => toMinorUnits({ amount: '0.5', currency: 'VUV' })).toThrow(MoneyPrecisionError);
  });

  it('make an unknown code a schema violation that says why', () => {
    expect(moneySchema.safeParse({ amount: '1.00', currency: 'EUR' }).success).toBe(true);
    const unknown = moneySchema.safeParse({ amount: '1.00', currency: 'ABC' });
    expect(unknown.success).toBe(false);
    expect(unknown.error!.issues).toEqual([
      expect.objectContaining({
        path: ['currency'],
        message:
          '"ABC" is not an active ISO 4217 currency code: expected one such as "USD", "EUR", "GBP" or "JPY"',
      }),
    ]);
    // A malformed code gets the format message only.
    const malformed = currencyCode().safeParse('usd');
    expect(malformed.error!.issues.map((i) => i.message)).toEqual([
      'must be an ISO 4217 currency code such as "USD" or "EUR"',
    ]);
  });
});
