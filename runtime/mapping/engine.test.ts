import { describe, expect, it } from 'vitest';
import { compileMapping, compilePart } from './engine.ts';
import {
  BusinessKeyError,
  CanonicalValidationError,
  MappingCompileError,
  MappingError,
  MappingEvaluationError,
  MappingLimitError,
} from './errors.ts';
import { compileOutboundMapping } from './outbound.ts';
import type { MappingDefinition } from './types.ts';

/** A Price mapping: small enough to read, with money, a timestamp and a business key. */
const PRICE = `{
  "sku": item,
  "priceList": $lookup("tiers", tier),
  "amount": $money(price, cur),
  "validFrom": from
}`;

function mapping(overrides: Partial<MappingDefinition> = {}): MappingDefinition {
  return {
    name: 'default/test',
    generation: 1,
    entity: 'Price',
    expression: PRICE,
    businessKey: 'sku',
    lookups: { tiers: { values: { A: 'gold', B: 'silver' }, default: 'list' } },
    limits: { timeoutMs: 100, maxDepth: 500 },
    ...overrides,
  };
}

const payload = (i = 1) => ({
  item: `SKU-${i}`,
  tier: 'A',
  price: `${i}.5`,
  cur: 'USD',
  from: '2026-01-01T00:00:00Z',
});

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

describe('map', () => {
  it('gives the validated canonical output and the business key', async () => {
    const result = await compileMapping(mapping()).map(payload(7));
    expect(result).toEqual({
      output: {
        sku: 'SKU-7',
        priceList: 'gold',
        amount: { amount: '7.50', currency: 'USD' },
        validFrom: '2026-01-01T00:00:00Z',
      },
      key: 'SKU-7',
    });
  });

  it('drops undefined fields and applies the schema defaults', async () => {
    const m = compileMapping(
      mapping({ entity: 'Product', expression: '{"sku": sku, "name": title, "family": family}' }),
    );
    const { output } = await m.map({ sku: 'MUG', title: 'Mug' });
    expect(output).toEqual({ sku: 'MUG', name: 'Mug', channelSkus: [] });
    expect(Object.hasOwn(output, 'family')).toBe(false);
  });

  it('does not hand back references into the input', async () => {
    const m = compileMapping(
      mapping({ entity: 'Product', expression: '{"sku": sku, "name": "n", "channelSkus": refs}' }),
    );
    const input = { sku: 'MUG', refs: [{ channel: 'shop', id: '1' }] };
    const { output } = await m.map(input);
    (output.channelSkus as { id: string }[])[0]!.id = 'changed';
    expect(input.refs[0]!.id).toBe('1');
  });

  it('turns a numeric business key into a string', async () => {
    const m = compileMapping(
      mapping({ entity: 'Product', expression: '{"sku": sku, "name": "n"}', businessKey: '$length(sku)' }),
    );
    expect((await m.map({ sku: 'ABCD' })).key).toBe('4');
  });

  it('is not changed by later changes to the definition it was compiled from', async () => {
    const def = mapping();
    const m = compileMapping(def);
    def.lookups.tiers!.values.A = 'changed';
    expect((await m.map(payload())).output.priceList).toBe('gold');
  });

  it('has $now() and $millis() fixed for the whole of one evaluation', async () => {
    const m = compileMapping(
      mapping({
        entity: 'Product',
        expression:
          '{"sku": $now(), "name": $string($millis()), "family": $string($toMillis($now()) = $millis())}',
      }),
    );
    const before = Date.now();
    const { output } = await m.map({});
    expect(Date.parse(output.sku as string)).toBeGreaterThanOrEqual(before);
    expect(Number(output.name)).toBeGreaterThanOrEqual(before);
    expect(output.family).toBe('true');
  });

  it('gives 100 concurrent map() calls on one compiled mapping each their own result', async () => {
    const m = compileMapping(mapping({ expression: `($t := $millis(); ${PRICE})` }));
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => m.map(payload(i))));
    results.forEach((r, i) => {
      expect(r.key).toBe(`SKU-${i}`);
      expect(r.output.amount).toEqual({ amount: `${i}.50`, currency: 'USD' });
    });
  });
});

describe('compile errors', () => {
  it('reports a syntax error with its line, column and token', () => {
    const expression = '{\n  "sku": item,\n  "amount": $money(price cur)\n}';
    let err: unknown;
    try {
      compileMapping(mapping({ expression }));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MappingCompileError);
    const e = err as MappingCompileError;
    expect(e.code).toBe('MAPPING_COMPILE');
    expect(e.reason).toBe('compile');
    expect(e.permanent).toBe(true);
    expect(e.part).toBe('expression');
    expect(e.location).toMatchObject({ line: 3, token: 'cur' });
    expect(e.message).toMatch(/^spec\.expression has a syntax error at line 3, column \d+ \(near "cur"\): /);
    expect(e.jsonataCode).toMatch(/^S0/);
  });

  it('says when the expression ends too early', () => {
    expect(() => compileMapping(mapping({ expression: '{"sku": item' }))).toThrow(/\(at the end\)/);
  });

  it('names the business key expression when that is the one that does not compile', () => {
    expect(() => compileMapping(mapping({ businessKey: 'sku &' }))).toThrow(
      /^spec\.businessKey has a syntax error/,
    );
  });

  it('refuses a call of a function nothing defines, naming it and the close matches', () => {
    const expression = '{\n  "sku": item,\n  "amount": $moneyAddd($money(price, cur), $money(1, cur))\n}';
    let err: unknown;
    try {
      compileMapping(mapping({ expression }));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MappingCompileError);
    const e = err as MappingCompileError;
    expect(e.part).toBe('expression');
    expect(e.location).toMatchObject({ line: 3, column: 22, token: '$moneyAddd' });
    expect(e.message).toBe(
      'spec.expression calls $moneyAddd at line 3, column 22, which is not a defined function: did you mean $moneyAdd?',
    );
  });

  it('refuses an unknown function on every evaluation path and in the business key', () => {
    for (const path of ['auto', 'fast', 'interpreter'] as const) {
      expect(() => compileMapping(mapping({ expression: '$foo()' }), { path }), path).toThrow(
        /^spec\.expression calls \$foo at line 1, column 4, which is not a defined function: it is neither a JSONata function nor one of Tally's \(\$lookup, \$money, /,
      );
    }
    expect(() => compileMapping(mapping({ businessKey: '$substringAftr(sku, "-")' }))).toThrow(
      expect.objectContaining({
        name: 'MappingCompileError',
        part: 'businessKey',
        message: expect.stringContaining('did you mean $substringAfter?'),
      }),
    );
  });

  it('refuses an unknown function in an outbound mapping body, header or URL value', () => {
    const outbound = (over: { expression?: string; headers?: Record<string, string> }) =>
      compileOutboundMapping({
        name: 'default/out',
        generation: 1,
        entity: 'Shipment',
        expression: '{"tracking_number": trackingNumber}',
        output: { format: 'json' },
        headers: {},
        params: {},
        lookups: {},
        limits: { timeoutMs: 1000, maxDepth: 500 },
        ...over,
      });
    expect(() => outbound({ expression: '{"n": $xmlEscap(trackingNumber)}' })).toThrow(
      /^spec\.expression calls \$xmlEscap .*did you mean \$xmlEscape\?$/,
    );
    expect(() => outbound({ headers: { 'X-Carrier': '$lowcase(carrier)' } })).toThrow(
      expect.objectContaining({ part: 'headers.X-Carrier', message: expect.stringContaining('$lowercase') }),
    );
  });

  it('accepts functions the expression binds itself, JSONata built-ins and $now/$millis', async () => {
    const expression = `(
      $twice := function($n) { $n * 2 };
      $apply := function($f, $v) { $f($v) };
      {"sku": $apply($uppercase, item) & $string($twice(1)), "amount": $money(price, cur), "validFrom": $now() ? from}
    )`;
    const m = compileMapping(mapping({ expression }));
    expect((await m.map(payload(1))).key).toBe('SKU-12');
    expect(() =>
      compilePart('expression', '$millis() ~> $string()', { lookups: {}, limits: mapping().limits }, 'auto'),
    ).not.toThrow();
  });

  it('refuses limits that would mean no limit', () => {
    expect(() => compileMapping(mapping({ limits: { timeoutMs: 0, maxDepth: 500 } }))).toThrow(
      'spec.limits.timeoutMs must be a positive whole number, got 0',
    );
  });
});

describe('evaluation errors', () => {
  it('reports a type error with its line and JSONata code', async () => {
    const err = await rejection(
      compileMapping(mapping({ expression: '(\n  $x := "a";\n  $x + 1\n)' })).map({}),
    );
    expect(err).toBeInstanceOf(MappingEvaluationError);
    expect(err).toMatchObject({
      code: 'MAPPING_EVALUATION',
      reason: 'evaluation',
      permanent: true,
      jsonataCode: 'T2001',
    });
    expect(err.message).toMatch(
      /^spec\.expression failed at line 3, column \d+ \(near "\+"\): The left side/,
    );
  });

  it('reports a $lookup of an unknown key without default, naming table and key', async () => {
    const m = compileMapping(
      mapping({ expression: '{"sku": $lookup("skus", item)}', lookups: { skus: { values: {} } } }),
    );
    const err = await rejection(m.map({ item: 'SH-9' }));
    expect(err).toBeInstanceOf(MappingEvaluationError);
    expect(err.message).toBe(
      'spec.expression failed at line 1, column 16: $lookup: table "skus" has no key "SH-9" and no default; add the key to the table or give the table a default',
    );
    expect((err as MappingEvaluationError).location).toMatchObject({ line: 1, column: 16 });
  });

  it('reports inexact money as an evaluation error', async () => {
    const err = await rejection(compileMapping(mapping()).map({ ...payload(), price: 0.1 + 0.2 }));
    expect(err).toBeInstanceOf(MappingEvaluationError);
    expect(err.message).toMatch(/\$money: 0\.30000000000000004 USD has more than 2 decimal places/);
  });

  it('sees through $eval to the error inside', async () => {
    const m = compileMapping(mapping({ expression: '$eval("$lookup(\'nope\', 1)")' }));
    const err = await rejection(m.map({}));
    expect(err).toBeInstanceOf(MappingEvaluationError);
    expect(err.message).toMatch(/no lookup table named "nope"/);
  });
});

describe('limits', () => {
  // A limit that did not work would leave the evaluation running until the test's own timeout: the
  // error, with the limit it names, is the evidence (no wall-clock bound on a shared machine).
  const stoppedBy = async (expression: string, limits = { timeoutMs: 100, maxDepth: 500 }) => {
    const err = await rejection(compileMapping(mapping({ expression, limits })).map({}));
    return { err: err as MappingLimitError };
  };

  it('stops endless (tail) recursion by the timeout', async () => {
    const { err } = await stoppedBy('($f := function($x){ $f($x) }; $f(1))');
    expect(err).toBeInstanceOf(MappingLimitError);
    expect(err).toMatchObject({ code: 'MAPPING_LIMIT', reason: 'limit', limit: 'timeoutMs', value: 100 });
    expect(err.message).toMatch(/timeoutMs \(100 ms\).*raise spec\.limits\.timeoutMs/);
  });

  it('stops deep recursion by the depth limit', async () => {
    const { err } = await stoppedBy('($f := function($x){ 1 + $f($x) }; $f(1))');
    expect(err).toBeInstanceOf(MappingLimitError);
    expect(err).toMatchObject({ limit: 'maxDepth', value: 500, part: 'expression' });
    expect(err.message).toMatch(/spec\.limits\.maxDepth \(500\).*raise spec\.limits\.maxDepth/);
  });

  it('stops work over a huge range', async () => {
    const { err } = await stoppedBy('[1..10000000].($ * 2)');
    expect(err).toBeInstanceOf(MappingLimitError);
    expect(err.limit).toBe('timeoutMs');
  });

  it('stops a slow loop, and $eval does not escape the limits', async () => {
    for (const expression of [
      '$reduce([1..5000000], function($a, $b){ $a + $b })',
      '$eval("($f := function($x){ $f($x) }; $f(1))")',
    ]) {
      const { err } = await stoppedBy(expression, { timeoutMs: 50, maxDepth: 500 });
      expect(err).toBeInstanceOf(MappingLimitError);
    }
  });

  it('keeps the event loop turning while a slow evaluation runs', async () => {
    let ticks = 0;
    const timer = setInterval(() => {
      ticks++;
    }, 5);
    try {
      const { err } = await stoppedBy('($f := function($x){ $f($x) }; $f(1))', {
        timeoutMs: 600,
        maxDepth: 500,
      });
      expect(err).toBeInstanceOf(MappingLimitError);
    } finally {
      clearInterval(timer);
    }
    // Without yielding, the timer could not fire at all until the evaluation ended.
    expect(ticks).toBeGreaterThan(10);
  });

  it('does not charge one evaluation for the time others take', async () => {
    // Work that takes a while alone; run several at once, each must be charged about its own time only.
    const work = '$sum([1..20000].($ * 2))';
    const solo = compileMapping(mapping({ expression: work, limits: { timeoutMs: 10_000, maxDepth: 500 } }));
    const started = performance.now();
    await rejection(solo.map({}));
    const alone = performance.now() - started;
    // Twelve at once: charged for the others, each would see about 12x its own time; the limit
    // allows 5x (plus slack for a loaded machine), so only fair accounting passes.
    const timeoutMs = Math.ceil(5 * alone + 100);
    const m = compileMapping(mapping({ expression: work, limits: { timeoutMs, maxDepth: 500 } }));
    const errors = await Promise.all(Array.from({ length: 12 }, () => rejection(m.map({}))));
    // They all got to the end (an output that is not a Price), none was stopped by the clock.
    for (const err of errors) expect(err).toBeInstanceOf(CanonicalValidationError);
  });
});

describe('validation', () => {
  it('lists every problem with its path and keeps the zod issues', async () => {
    const m = compileMapping(
      mapping({
        expression:
          '{"sku": "", "amount": {"amount": 5, "currency": "USD"}, "validFrom": "yesterday", "x": 1}',
      }),
    );
    const err = await rejection(m.map({}));
    expect(err).toBeInstanceOf(CanonicalValidationError);
    const e = err as CanonicalValidationError;
    expect(e).toMatchObject({
      code: 'CANONICAL_INVALID',
      reason: 'validation',
      entity: 'Price',
      permanent: true,
    });
    expect(e.issues.length).toBe(4);
    expect(e.message).toMatch(/^the output of spec\.expression is not a valid Price \(4 problems\)/);
    for (const path of ['  sku: ', '  amount.amount: ', '  validFrom: ', '  (root): ']) {
      expect(e.message).toContain(path);
    }
    expect(e.message).toMatch(/\(root\): .*"x"/);
  });

  it('says so when the expression gives nothing at all', async () => {
    const err = await rejection(compileMapping(mapping({ expression: 'nothing.here' })).map({}));
    expect(err).toBeInstanceOf(CanonicalValidationError);
    expect(err.message).toMatch(/\(root\): /);
  });
});

describe('business key', () => {
  const keyed = (businessKey: string) =>
    compileMapping(
      mapping({ entity: 'Product', expression: '{"sku": sku, "name": "n", "family": family}', businessKey }),
    );

  it.each([
    ['family', { sku: 'A' }, /gave nothing/],
    ['family', { sku: 'A', family: '  ' }, /gave an empty string/],
    ['channelSkus', { sku: 'A' }, /gave 0 values/],
    ['$', { sku: 'A' }, /gave an object/],
    ['sku = "A"', { sku: 'A' }, /gave a boolean/],
  ])('rejects %s giving no usable key', async (businessKey, input, message) => {
    const err = await rejection(keyed(businessKey).map(input));
    expect(err).toBeInstanceOf(BusinessKeyError);
    expect(err).toMatchObject({ code: 'BUSINESS_KEY', reason: 'business_key', permanent: true });
    expect(err.message).toMatch(message);
    expect(err.message).toMatch(/it must select one non-empty string or number/);
  });

  it('reports a failing key expression as a business key error', async () => {
    const err = await rejection(keyed('sku + 1').map({ sku: 'A' }));
    expect(err).toBeInstanceOf(BusinessKeyError);
    expect(err.message).toMatch(/^spec\.businessKey failed at line 1/);
  });

  it('every failure is a permanent MappingError', async () => {
    const err = await rejection(keyed('family').map({ sku: 'A' }));
    expect(err).toBeInstanceOf(MappingError);
    expect((err as MappingError).permanent).toBe(true);
  });
});
