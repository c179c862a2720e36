import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromMinorUnits, MoneyPrecisionError, toMinorUnits } from './money.ts';

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
