import { describe, expect, it } from 'vitest';
import { type CompareRule, compareField } from './compare.ts';
import { toScalar } from './fields.ts';

const usd = (amount: string) => toScalar({ amount, currency: 'USD' });
const rule = (r: Partial<CompareRule> & Pick<CompareRule, 'rule'>): CompareRule => ({
  name: 'f',
  channelField: 'a',
  erpField: 'b',
  ...r,
});

describe('compareField', () => {
  it('absolute tolerance in minor units, exactly', () => {
    const r = rule({ rule: 'absolute', toleranceMinor: 100 });
    expect(compareField(r, usd('43.22'), usd('44.22'), undefined)).toBeUndefined();
    expect(compareField(r, usd('43.22'), usd('44.23'), undefined)).toMatchObject({
      reason: 'amount_mismatch',
      difference: '101',
      currency: 'USD',
    });
    expect(compareField(r, usd('0.1'), toScalar({ amount: '0.1', currency: 'EUR' }), undefined)?.reason).toBe(
      'currency_mismatch',
    );
  });

  it('percent tolerance without floating point', () => {
    const r = rule({ rule: 'percent', tolerancePercent: '0.5' });
    expect(compareField(r, usd('200.00'), usd('201.00'), undefined)).toBeUndefined(); // 0.5 %
    expect(compareField(r, usd('200.00'), usd('201.01'), undefined)?.reason).toBe('amount_mismatch');
  });

  it('date lag: ERP within maxLag after the channel', () => {
    const r = rule({ rule: 'dateLag', maxLag: '48h' });
    const c = toScalar('2026-11-20T10:00:00Z');
    expect(compareField(r, c, toScalar('2026-11-22T10:00:00Z'), undefined)).toBeUndefined();
    expect(compareField(r, c, toScalar('2026-11-22T10:00:01Z'), undefined)?.reason).toBe('late');
    expect(compareField(r, c, toScalar('2026-11-20T09:00:00Z'), undefined)?.reason).toBe(
      'erp_before_channel',
    );
  });

  it('status through equivalences; lessOrEqual with a custom reason', () => {
    const eq = [{ channel: 'confirmed', erp: ['issued', 'paid'] }];
    expect(
      compareField(rule({ rule: 'status' }), toScalar('confirmed'), toScalar('paid'), eq),
    ).toBeUndefined();
    expect(compareField(rule({ rule: 'status' }), toScalar('confirmed'), toScalar('void'), eq)?.reason).toBe(
      'status_mismatch',
    );
    const r = rule({ rule: 'lessOrEqual', exceptionReason: 'oversell_risk' });
    expect(compareField(r, toScalar(5), toScalar(5), undefined)).toBeUndefined();
    expect(compareField(r, toScalar(7), toScalar(5), undefined)).toMatchObject({
      reason: 'oversell_risk',
      difference: '-2',
    });
  });
});
