// The compiler on its own: what it refuses, the interpreter quirks it must keep (the conformance suite in
// test/conformance covers the language at large), its limits and its escape hatches.
import jsonata from 'jsonata';
import { describe, expect, it } from 'vitest';
import { compileFast, type FastExpression, FastPathBailout, FastPathTimeSlice } from './index.ts';

function compiled(source: string, options: Parameters<typeof compileFast>[1] = {}): FastExpression {
  const result = compileFast(source, options);
  if (!result.supported) throw new Error(`not compiled: ${result.reason}`);
  return result.expression;
}

function refusal(source: string, options: Parameters<typeof compileFast>[1] = {}): string {
  const result = compileFast(source, options);
  if (result.supported) throw new Error(`compiled: ${source}`);
  return result.reason;
}

/** The interpreter's and the compiled result, as JSON (undefined as such). */
async function both(source: string, input: unknown): Promise<[string, string]> {
  const show = (v: unknown) => JSON.stringify(v) ?? 'undefined';
  return [show(await jsonata(source).evaluate(input)), show(compiled(source).evaluate(input))];
}

describe('what the compiler refuses', () => {
  it.each([
    ['$replace(s, /a/, "b")', /regular expression/],
    ['|a|{"b": 1}|', /transform/],
    ['items.%.name', /parent/],
    ['items@$i', /focus/],
    ['items#$i', /index/],
    ['$substring(?, 1)', /partial application/],
    ['$eval("1 + 1")', /\$eval/],
    ['$random()', /\$random/],
    ['$count', /used as a value/],
    ['function($x) { $x }', /function value/],
    ['($f := function($x) { $x }; $f)', /lambda \$f used as a value/],
    ['($f := function($x) { $x })', /lambda \$f as the value of a block/],
    ['($f := function($x) { $f($x) }; $f(1))', /recursion/],
    ['($f := function() { $later }; $later := 1; $f())', /in a lambda bound before it/],
    ['($f := function($x) { $x }; $f := 2; 1)', /rebound/],
    ['($g := $string; $g(1))', /used as a value/],
    ['$x := 1', /outside a block/],
    ['$unknown(1)', /\$unknown/],
  ])('%s', (source, reason) => {
    expect(refusal(source)).toMatch(reason);
  });

  it('refuses an expression whose interpreter depth could reach maxDepth', () => {
    // The interpreter counts the path (1) and a step (2): a.b.c.d runs at depth 2 at most.
    expect(refusal('a.b.c.d', { maxDepth: 1 })).toMatch(/depth limit \(1\)/);
    expect(compileFast('a.b.c.d', { maxDepth: 2 }).supported).toBe(true);
  });

  it('counts the values of an object constructor as concurrent (the interpreter evaluates them so)', () => {
    const wide = `{${Array.from({ length: 60 }, (_, i) => `"k${i}": a.b`).join(', ')}}`;
    expect(refusal(wide, { maxDepth: 100 })).toMatch(/depth limit/);
  });

  it('refuses calls of a custom function that declares a signature', () => {
    const functions = [{ name: 'f', implementation: (x: unknown) => x, signature: '<n:n>' }];
    expect(refusal('$f(1)', { functions })).toMatch(/signature/);
  });

  it('compiles named helper lambdas that only call lambdas bound before them', () => {
    const source = '($a := function($x) { $x * 2 }; $b := function($y) { $a($y) + 1 }; $b(n))';
    expect(compiled(source).evaluate({ n: 5 })).toBe(11);
  });
});

describe('interpreter behaviour the compiled code keeps', () => {
  it.each([
    ['a single match is a value, several are an array', 'items.price', { items: [{ price: 1 }] }],
    ['an array in the data stays an array at the end of a path', 'order.items', { order: { items: [1] } }],
    ['a trailing [] keeps a singleton array', 'items.price[]', { items: [{ price: 1 }] }],
    [
      '[...] around a path keeps arrays unflattened',
      'items.[price]',
      { items: [{ price: 1 }, { price: 2 }] },
    ],
    ['a numeric predicate counts from the end', 'items[-1].price', { items: [{ price: 1 }, { price: 2 }] }],
    ['an array of indexes selects each index, repeats included', 'items[[0, 0]]', { items: ['a', 'b'] }],
    ['a missing field is nothing, not null', '{"a": nothing, "b": null}', {}],
    ['the input array is one value for the expression', '$count($)', [1, 2, 3]],
    [
      'an object constructor over an array groups it',
      'items.{"p": price}',
      { items: [{ price: 1 }, { price: 2 }] },
    ],
    ['an object constructor given an array of values', '[1, 2].{"n": $}', {}],
    ['?: and ?? evaluate their left side twice, like the interpreter', '[a ?: "x", b ?? "y"]', { a: 0 }],
    ['a lambda tail call gets no context', '$map([1, 2], function($v) { $string() })', { x: 1 }],
    ['a lambda tail call result is not unwrapped', '$map([{"a": 1}], function($v) { $keys($v) })', {}],
    ['wrong argument types can take the context', '$substring(5, 1)', 'hello'],
    ['~> passes the left side first', '"abc" ~> $substring(1)', {}],
    ['string concatenation writes numbers as $string does', '"" & (0.1 + 0.2) & 1e21', {}],
    ['a range is a sequence', '[1..3].($ * 2)', {}],
    [
      '$sort is a stable merge sort',
      '$sort(items, function($a, $b) { $a.k > $b.k })',
      {
        items: [
          { k: 2, n: 'a' },
          { k: 1, n: 'b' },
          { k: 2, n: 'c' },
        ],
      },
    ],
    [
      'order-by sorts stably, missing values last',
      'items^(>k, n).n',
      {
        items: [{ k: 1, n: 'b' }, { n: 'z' }, { k: 2, n: 'c' }, { k: 1, n: 'a' }],
      },
    ],
    ['named lambdas read the block as it was bound', '($c := 2; $f := function($x) { $x * $c }; $f(3))', {}],
  ])('%s', async (_name, source, input) => {
    const [interpreter, fast] = await both(source, input);
    expect(fast).toBe(interpreter);
  });

  it.each([['"a" + 1'], ['{"a": 1, "a": 2}'], ['{"k": 1}{$: 2}']])(
    'throws the interpreter’s error code for %s',
    async (source) => {
      let interpreter: unknown;
      try {
        await jsonata(source).evaluate({});
      } catch (err) {
        interpreter = (err as { code: string }).code;
      }
      expect(interpreter).toMatch(/^[TD]\d{4}$/);
      expect(() => compiled(source).evaluate({})).toThrow(expect.objectContaining({ code: interpreter }));
    },
  );

  it('reads the evaluation’s own timestamp for $now and $millis', () => {
    const result = compiled('[$millis(), $toMillis($now()), $millis()]').evaluate({}) as number[];
    expect(new Set(result).size).toBe(1);
  });

  it('calls custom functions with the arguments as given', () => {
    const calls: unknown[][] = [];
    const functions = [
      {
        name: 'f',
        implementation: (...args: unknown[]) => {
          calls.push(args);
          return args.length;
        },
      },
    ];
    expect(compiled('$f(a, b)', { functions }).evaluate({ a: 1 })).toBe(2);
    expect(calls).toEqual([[1, undefined]]);
  });

  it('reads bound variables from each evaluation’s bindings', () => {
    const e = compiled('$rate * n', { variables: ['rate'] });
    expect(e.evaluate({ n: 2 }, { rate: 3 })).toBe(6);
    expect(e.evaluate({ n: 2 }, { rate: 5 })).toBe(10);
  });
});

describe('limits and escape hatches', () => {
  it('stops a long evaluation at the end of its time slice', () => {
    const e = compiled('$sum([1..10000000].($ * 2))');
    // Thrown mid-way: the whole evaluation would end with a number, not this signal.
    expect(() => e.evaluate({}, undefined, { timeSliceMs: 5 })).toThrow(FastPathTimeSlice);
  });

  it('leaves no time slice behind for the next evaluation', () => {
    const e = compiled('$count([1..100000])');
    expect(() => e.evaluate({}, undefined, { timeSliceMs: 0 })).toThrow(FastPathTimeSlice);
    expect(e.evaluate({})).toBe(100000);
  });

  it('bails out to the interpreter when a custom function returns a promise', () => {
    const functions = [{ name: 'later', implementation: async () => 1 }];
    expect(() => compiled('$later()', { functions }).evaluate({})).toThrow(FastPathBailout);
  });

  it('bails out when a string function meets a pattern only the interpreter handles', () => {
    const functions = [{ name: 'pattern', implementation: () => () => undefined }];
    expect(() => compiled('$contains("abc", $pattern())', { functions }).evaluate({})).toThrow(
      FastPathBailout,
    );
  });
});
