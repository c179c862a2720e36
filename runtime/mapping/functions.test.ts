import { describe, expect, it } from 'vitest';
import { MappingEvaluationError } from './errors.ts';
import { createLookup, money, moneyAdd, moneyMul, moneySub, moneySum } from './functions.ts';

const usd = (amount: string) => ({ amount, currency: 'USD' });

describe('$money', () => {
  it('writes exactly the minor digits of the currency', () => {
    expect(money('4', 'USD')).toEqual(usd('4.00'));
    expect(money(19.99, 'USD')).toEqual(usd('19.99'));
    expect(money('19.9', 'EUR')).toEqual({ amount: '19.90', currency: 'EUR' });
    expect(money('1500', 'JPY')).toEqual({ amount: '1500', currency: 'JPY' });
    expect(money(1.5, 'KWD')).toEqual({ amount: '1.500', currency: 'KWD' });
    expect(money('-3.5', 'USD')).toEqual(usd('-3.50'));
    expect(money(' +7.10 ', 'USD')).toEqual(usd('7.10'));
  });

  it('keeps trailing zeros beyond the minor digits, which lose nothing', () => {
    expect(money('4.0000', 'USD')).toEqual(usd('4.00'));
  });

  it('writes numbers JavaScript prints with an exponent in full', () => {
    expect(money(1e21, 'USD')).toEqual(usd('1000000000000000000000.00'));
    expect(() => money(1e-7, 'USD')).toThrow(/0\.0000001 USD has more than 2 decimal places/);
    expect(money(-1.5e21, 'USD')).toEqual(usd('-1500000000000000000000.00'));
  });

  it('rejects more precision than the currency has instead of rounding', () => {
    expect(() => money('19.999', 'USD')).toThrow(MappingEvaluationError);
    expect(() => money('19.999', 'USD')).toThrow('$money: 19.999 USD has more than 2 decimal places');
    expect(() => money('1500.5', 'JPY')).toThrow(/more than 0 decimal places/);
    // The float sum 0.1 + 0.2 is 0.30000000000000004: exactly the kind of amount that must not slip in.
    expect(() => money(0.1 + 0.2, 'USD')).toThrow(/0\.30000000000000004 USD has more than 2 decimal places/);
  });

  it('rejects what is not an amount or not a currency', () => {
    expect(() => money('', 'USD')).toThrow(/the amount must be a decimal number or string/);
    expect(() => money('1,234.00', 'USD')).toThrow(/got "1,234.00"/);
    expect(() => money(Number.NaN, 'USD')).toThrow(/finite/);
    expect(() => money({ amount: '1' }, 'USD')).toThrow(/amount/);
    expect(() => money('1.00', 'usd')).toThrow(/ISO 4217/);
    expect(() => money('1.00', undefined)).toThrow(
      /currency must be an ISO 4217 code such as "USD", got nothing/,
    );
  });

  it('gives nothing for a missing amount, as JSONata functions do', () => {
    expect(money(undefined, 'USD')).toBeUndefined();
  });
});

describe('money arithmetic', () => {
  it('adds exactly where floats do not (0.1 + 0.2)', () => {
    expect(moneyAdd(money(0.1, 'USD'), money(0.2, 'USD'))).toEqual(usd('0.30'));
    expect(moneyAdd(usd('0.10'), usd('0.20'), usd('0.70'))).toEqual(usd('1.00'));
    expect(moneyAdd(usd('5'))).toEqual(usd('5.00'));
  });

  it('subtracts, going negative when it must', () => {
    expect(moneySub(usd('39.98'), usd('4.00'))).toEqual(usd('35.98'));
    expect(moneySub(usd('1.00'), usd('1.01'))).toEqual(usd('-0.01'));
  });

  it('multiplies by whole quantities only', () => {
    expect(moneyMul(usd('19.99'), 3)).toEqual(usd('59.97'));
    expect(moneyMul(usd('0.10'), 3)).toEqual(usd('0.30'));
    expect(moneyMul(usd('0.01'), '1000000000000')).toEqual(usd('10000000000.00'));
    expect(moneyMul({ amount: '333', currency: 'JPY' }, 3)).toEqual({ amount: '999', currency: 'JPY' });
    expect(() => moneyMul(usd('1.00'), 1.5)).toThrow(/quantity must be a whole number, got 1.5/);
  });

  it('sums lists, a single item, and empty lists given a currency', () => {
    expect(moneySum([usd('0.10'), usd('0.20'), usd('0.30')])).toEqual(usd('0.60'));
    expect(moneySum(usd('2.5'))).toEqual(usd('2.50'));
    expect(moneySum([], 'EUR')).toEqual({ amount: '0.00', currency: 'EUR' });
    expect(moneySum(undefined, 'JPY')).toEqual({ amount: '0', currency: 'JPY' });
    expect(() => moneySum([])).toThrow(/pass it: \$moneySum\(list, "USD"\)/);
  });

  it('sums many cents without drift', () => {
    const cents = Array.from({ length: 10_000 }, () => usd('0.01'));
    expect(moneySum(cents)).toEqual(usd('100.00'));
  });

  it('rejects mixed currencies', () => {
    const eur = { amount: '1.00', currency: 'EUR' };
    expect(() => moneyAdd(usd('1.00'), eur)).toThrow('$moneyAdd: cannot combine USD and EUR');
    expect(() => moneySub(usd('1.00'), eur)).toThrow(/cannot combine USD and EUR/);
    expect(() => moneySum([usd('1.00'), eur])).toThrow(/cannot combine USD and EUR/);
    expect(() => moneySum([usd('1.00')], 'EUR')).toThrow(/cannot combine EUR and USD/);
  });

  it('rejects money with more precision than its currency has', () => {
    expect(() => moneyAdd(usd('1.001'), usd('1'))).toThrow(/1.001 USD has more than 2 decimal places/);
  });

  it('asks for money built with $money when given something else', () => {
    expect(() => moneyAdd(usd('1.00'), '2.00')).toThrow(
      /argument 2 must be money .* got "2.00"; build it with \$money\(amount, currency\)/,
    );
    expect(() => moneySum([usd('1.00'), 3])).toThrow(/item 1 of the list must be money/);
  });

  it('gives nothing when an operand is missing', () => {
    expect(moneyAdd(usd('1.00'), undefined)).toBeUndefined();
    expect(moneySub(undefined, usd('1.00'))).toBeUndefined();
    expect(moneyMul(usd('1.00'), undefined)).toBeUndefined();
  });
});

describe('$lookup', () => {
  const lookup = createLookup({
    orderStatus: { values: { paid: 'confirmed', '200': 'ok' }, default: 'pending' },
    sku: { values: { 'SH-1': 'TSHIRT-M-BLK' } },
  });

  it('finds keys, by their text for numbers', () => {
    expect(lookup('orderStatus', 'paid')).toBe('confirmed');
    expect(lookup('orderStatus', 200)).toBe('ok');
    expect(lookup('sku', 'SH-1')).toBe('TSHIRT-M-BLK');
  });

  it('falls back to the default of the table', () => {
    expect(lookup('orderStatus', 'weird')).toBe('pending');
  });

  it('fails naming the table and key when there is no default', () => {
    expect(() => lookup('sku', 'SH-2')).toThrow(MappingEvaluationError);
    expect(() => lookup('sku', 'SH-2')).toThrow(
      '$lookup: table "sku" has no key "SH-2" and no default; add the key to the table or give the table a default',
    );
  });

  it('does not treat inherited object properties as keys', () => {
    expect(() => lookup('sku', 'constructor')).toThrow(/no key "constructor"/);
    expect(() => lookup('toString', 'x')).toThrow(
      /no lookup table named "toString"; spec.lookups has "orderStatus", "sku"/,
    );
  });

  it('gives nothing for a missing key, and rejects keys that are not scalars', () => {
    expect(lookup('orderStatus', undefined)).toBeUndefined();
    expect(() => lookup('orderStatus', { a: 1 })).toThrow(/key must be a string/);
    expect(() => lookup({ paid: 1 }, 'paid')).toThrow(/name of a table in spec.lookups/);
  });
});

describe('$money fast path', () => {
  it('normalises exactly like the BigInt path, for any amount the currency allows', async () => {
    const fc = (await import('fast-check')).default;
    const { fromMinorUnits } = await import('../../api/canonical/money.ts');
    const { money: m } = await import('./functions.ts');
    fc.assert(
      fc.property(
        fc.bigInt({ min: -(10n ** 20n), max: 10n ** 20n }),
        fc.constantFrom('USD', 'JPY', 'KWD'),
        fc.nat({ max: 3 }),
        fc.nat({ max: 3 }),
        (minorUnits, currency, leadingZeros, trailingZeros) => {
          const canonical = fromMinorUnits(minorUnits, currency);
          const [w, f] = canonical.amount.replace('-', '').split('.');
          const sign = canonical.amount.startsWith('-') ? '-' : '';
          const text = `${sign}${'0'.repeat(leadingZeros)}${w}${f !== undefined || trailingZeros ? `.${f ?? ''}${'0'.repeat(trailingZeros)}` : ''}`;
          expect(m(text, currency)).toEqual(canonical);
        },
      ),
      { numRuns: 500 },
    );
  });
});
