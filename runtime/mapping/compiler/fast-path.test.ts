// The fast path inside the engine: which path a mapping takes, and that taking it changes nothing a
// caller can see (results, error classes and messages, limits).
import { describe, expect, it } from 'vitest';
import { compileMapping, type EvaluationPath } from '../engine.ts';
import { MappingCompileError, MappingEvaluationError, MappingLimitError } from '../errors.ts';
import type { MappingDefinition } from '../types.ts';

function mapping(overrides: Partial<MappingDefinition> = {}): MappingDefinition {
  return {
    name: 'default/test',
    generation: 1,
    entity: 'Price',
    expression:
      '{"sku": item, "priceList": $lookup("tiers", tier), "amount": $money(price, cur), "validFrom": from}',
    businessKey: 'sku',
    lookups: { tiers: { values: { A: 'gold' }, default: 'list' } },
    limits: { timeoutMs: 100, maxDepth: 500 },
    ...overrides,
  };
}

const payload = { item: 'SKU-1', tier: 'A', price: '1.5', cur: 'USD', from: '2026-01-01T00:00:00Z' };

async function outcome(def: MappingDefinition, path: EvaluationPath, input: unknown): Promise<unknown> {
  try {
    return { result: await compileMapping(def, { path }).map(input) };
  } catch (err) {
    const e = err as Error & { code?: string };
    return { error: e.name, code: e.code, message: e.message };
  }
}

describe('choosing the path', () => {
  it('takes the fast path when the compiler supports the expression', () => {
    const m = compileMapping(mapping());
    expect(m.path).toBe('fast');
    expect(m.paths.businessKey).toEqual({ path: 'fast', fallbackReason: undefined });
  });

  it('falls back to the interpreter, saying why, when it does not', () => {
    const m = compileMapping(mapping({ expression: '{"sku": $eval("item")}' }));
    expect(m.path).toBe('interpreter');
    expect(m.paths.expression.fallbackReason).toMatch(/\$eval/);
  });

  it('refuses an unsupported expression when the fast path is required', () => {
    const def = mapping({ expression: '{"sku": $replace(item, /-/, "")}' });
    expect(() => compileMapping(def, { path: 'fast' })).toThrow(MappingCompileError);
    expect(() => compileMapping(def, { path: 'fast' })).toThrow(
      /^spec\.expression cannot use the fast path: regular expression/,
    );
  });

  it('uses the interpreter when asked', () => {
    expect(compileMapping(mapping(), { path: 'interpreter' }).path).toBe('interpreter');
  });

  it('keeps the interpreter for an expression that could reach maxDepth', () => {
    const m = compileMapping(mapping({ limits: { timeoutMs: 100, maxDepth: 5 } }));
    expect(m.path).toBe('interpreter');
    expect(m.paths.expression.fallbackReason).toMatch(/depth limit \(5\)/);
  });
});

describe('same answers on both paths', () => {
  it.each([
    ['a result', mapping(), payload],
    ['a type error, with its line and column', mapping({ expression: '(\n  $x := "a";\n  $x + 1\n)' }), {}],
    [
      'a custom function error, with where it was called',
      mapping({ expression: '{"sku": $lookup("skus", item)}', lookups: { skus: { values: {} } } }),
      { item: 'SH-9' },
    ],
    ['inexact money', mapping(), { ...payload, price: 0.1 + 0.2 }],
    ['an invalid canonical entity', mapping({ expression: '{"sku": ""}' }), {}],
    ['a business key error', mapping({ businessKey: 'sku + 1' }), payload],
  ])('%s', async (_name, def, input) => {
    const fast = compileMapping(def, { path: 'fast' });
    expect(fast.path).toBe('fast');
    expect(await outcome(def, 'fast', input)).toEqual(await outcome(def, 'interpreter', input));
  });

  it('hands an evaluation that outgrows its time slice to the interpreter, which enforces timeoutMs', async () => {
    const def = mapping({ expression: '[1..10000000].($ * 2)', limits: { timeoutMs: 100, maxDepth: 500 } });
    const m = compileMapping(def);
    expect(m.path).toBe('fast');
    await expect(m.map({})).rejects.toThrow(MappingLimitError);
  });

  it('stops an evaluation at timeoutMs itself when that is shorter than a slice', async () => {
    const def = mapping({ expression: '[1..10000000].($ * 2)', limits: { timeoutMs: 2, maxDepth: 500 } });
    const err = await compileMapping(def)
      .map({})
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MappingLimitError);
    expect(err).toMatchObject({ limit: 'timeoutMs', value: 2, part: 'expression' });
  });

  it('reports a failing fast evaluation as the interpreter does, message included', async () => {
    const def = mapping({ expression: '{"sku": $lookup("nope", item)}' });
    const err = (await compileMapping(def)
      .map(payload)
      .catch((e: unknown) => e)) as MappingEvaluationError;
    expect(err).toBeInstanceOf(MappingEvaluationError);
    expect(err.message).toMatch(
      /^spec\.expression failed at line 1, column \d+: \$lookup: no lookup table named "nope"/,
    );
  });
});
