import { describe, expect, it } from 'vitest';
import { differences } from './compare.ts';
import { formatTestResults, MAX_DIFF_LINES, runTestCases } from './test-cases.ts';
import type { MappingDefinition, TestCase } from './types.ts';

const def: MappingDefinition = {
  name: 'default/price',
  generation: 1,
  entity: 'Price',
  expression:
    '{"sku": item, "priceList": tier, "amount": $money(price, "USD"), "validFrom": "2026-01-01T00:00:00Z"}',
  businessKey: 'sku',
  lookups: {},
  limits: { timeoutMs: 100, maxDepth: 500 },
};

const output = {
  sku: 'MUG',
  priceList: 'gold',
  amount: { amount: '9.50', currency: 'USD' },
  validFrom: '2026-01-01T00:00:00Z',
};
const input = { item: 'MUG', tier: 'gold', price: '9.5' };
const test = (
  name: string,
  expected: unknown,
  match: TestCase['match'] = 'exact',
  i: unknown = input,
): TestCase => ({
  name,
  input: i,
  expected,
  match,
});

describe('runTestCases', () => {
  it('passes exact and partial matches', async () => {
    const results = await runTestCases(def, [
      test('exact', output),
      test('partial', { sku: 'MUG', amount: { currency: 'USD' } }, 'partial'),
    ]);
    expect(results).toEqual([
      { name: 'exact', passed: true },
      { name: 'partial', passed: true },
    ]);
  });

  it('shows one line per differing path', async () => {
    const [result] = await runTestCases(def, [
      test('wrong', { ...output, sku: 'CUP', amount: { amount: '9.51', currency: 'USD' }, channel: 'web' }),
    ]);
    expect(result).toEqual({
      name: 'wrong',
      passed: false,
      diff: [
        '  sku: expected "CUP", got "MUG"',
        '  amount.amount: expected "9.51", got "9.50"',
        '  channel: missing',
      ].join('\n'),
    });
  });

  it('reports extra fields for exact matches only', async () => {
    const { priceList: _, ...withoutTier } = output;
    const results = await runTestCases(def, [
      test('exact', withoutTier),
      test('partial', withoutTier, 'partial'),
    ]);
    expect(results[0]).toEqual({ name: 'exact', passed: false, diff: '  extra field priceList: "gold"' });
    expect(results[1]).toEqual({ name: 'partial', passed: true });
  });

  it('reports a mapping failure as the error of the case', async () => {
    const [result] = await runTestCases(def, [
      test('bad-price', output, 'exact', { ...input, price: '9.555' }),
    ]);
    expect(result?.passed).toBe(false);
    expect(result?.diff).toBeUndefined();
    expect(result?.error).toMatch(/\$money: 9\.555 USD has more than 2 decimal places/);
  });

  it('fails every case with the compile error when the expression does not compile', async () => {
    const results = await runTestCases({ ...def, expression: '{"sku": ' }, [
      test('a', output),
      test('b', output),
    ]);
    expect(results.map((r) => r.name)).toEqual(['a', 'b']);
    for (const r of results) {
      expect(r.passed).toBe(false);
      expect(r.error).toMatch(/^spec\.expression has a syntax error/);
    }
  });

  it('caps a long diff', async () => {
    const expected = { ...output, ...Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`f${i}`, i])) };
    const [result] = await runTestCases(def, [test('many', expected)]);
    const lines = result?.diff?.split('\n') ?? [];
    expect(lines).toHaveLength(MAX_DIFF_LINES + 1);
    expect(lines.at(-1)).toBe(`  ... and ${60 - MAX_DIFF_LINES} more differences`);
  });
});

describe('differences', () => {
  it('compares arrays element by element; lengths must match for exact', () => {
    const actual = { lines: [{ sku: 'A', qty: 1 }, { sku: 'B' }] };
    expect(differences({ lines: [{ sku: 'A', qty: 2 }] }, actual, 'exact')).toEqual([
      'lines: expected 1 element, got 2 elements',
      'lines[0].qty: expected 2, got 1',
      'extra element lines[1]: {"sku":"B"}',
    ]);
    expect(differences({ lines: [{ sku: 'A' }] }, actual, 'partial')).toEqual([]);
    expect(differences({ lines: [{ sku: 'A' }, {}, { sku: 'C' }] }, actual, 'partial')).toEqual([
      'lines: expected 3 elements, got 2 elements',
      'lines[2]: missing',
    ]);
    expect(differences({ lines: [{}, { sku: 'X' }] }, actual, 'partial')).toEqual([
      'lines[1].sku: expected "X", got "B"',
    ]);
  });

  it('tells types apart', () => {
    expect(differences({ a: '1' }, { a: 1 }, 'partial')).toEqual(['a: expected "1", got 1']);
    expect(differences({ a: [] }, { a: {} }, 'partial')).toEqual(['a: expected [], got {}']);
    expect(differences({ a: null }, {}, 'partial')).toEqual(['a: missing']);
    expect(differences('x', undefined, 'exact')).toEqual(['(root): expected "x", got nothing']);
  });

  it('quotes keys that are not identifiers', () => {
    expect(differences({ 'gift-wrap': true }, { 'gift-wrap': false }, 'exact')).toEqual([
      '["gift-wrap"]: expected true, got false',
    ]);
  });
});

describe('formatTestResults', () => {
  it('summarises a passing run on one line', () => {
    expect(formatTestResults('default/x', [{ name: 'a', passed: true }])).toBe('default/x: 1/1 cases passed');
    expect(formatTestResults('default/x', [])).toBe('default/x: no test cases');
  });

  it('names the failed cases and shows why each failed', () => {
    const text = formatTestResults('default/shopify-order', [
      { name: 'paid', passed: true },
      {
        name: 'cancelled-order-status',
        passed: false,
        diff: '  status: expected "cancelled", got "pending"',
      },
      { name: 'broken', passed: false, error: 'spec.expression failed at line 1, column 3: boom\nmore' },
    ]);
    expect(text).toBe(
      [
        'default/shopify-order: 1/3 cases passed; failed: cancelled-order-status, broken',
        'cancelled-order-status:',
        '  status: expected "cancelled", got "pending"',
        'broken:',
        '  error: spec.expression failed at line 1, column 3: boom',
        '  more',
      ].join('\n'),
    );
  });
});
