import { describe, expect, it } from 'vitest';
import { add, eq, format, isDecimalString, money, mul, parseDecimal, round, toDecimal } from './decimal.ts';

describe('simulator decimals', () => {
  it('adds, multiplies and compares exactly', () => {
    const d = (s: string) => parseDecimal(s);
    expect(format(add(d('0.1'), d('0.2')))).toBe('0.3');
    expect(eq(d('10.0'), d('10.00'))).toBe(true);
    expect(format(mul(d('19.99'), toDecimal(3)))).toBe('59.97');
    expect(format(round(d('1.005'), 2))).toBe('1.01');
    expect(format(round(d('-1.005'), 2))).toBe('-1.01');
    expect(format(d('-0.05'))).toBe('-0.05');
    expect(money(['1.10', 2.2, '-0.30'])).toBe('3.00');
  });

  it('accepts only plain decimal strings', () => {
    for (const ok of ['0', '12.5', '-3.25']) expect(isDecimalString(ok)).toBe(true);
    for (const bad of ['1e3', '+1', '1,000.00', '.5', '5.', '', 5]) expect(isDecimalString(bad)).toBe(false);
    expect(isDecimalString('1.234', 2)).toBe(false);
  });
});
