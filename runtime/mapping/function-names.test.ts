import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import jsonata from 'jsonata';
import { describe, expect, it } from 'vitest';
import { closeMatches, didYouMean, JSONATA_FUNCTIONS, unknownFunctions } from './function-names.ts';

const TALLY = ['lookup', 'money', 'moneyAdd', 'moneySub', 'moneyMul', 'moneySum'];

const unknown = (source: string, defined = TALLY) =>
  unknownFunctions(jsonata(source).ast(), defined).map((u) => u.name);

describe('JSONATA_FUNCTIONS', () => {
  it('names only functions jsonata defines', async () => {
    const jsonataVersion = (createRequire(import.meta.url)('jsonata/package.json') as { version: string })
      .version;
    expect(jsonataVersion).toMatch(/^2\./);
    for (const name of JSONATA_FUNCTIONS) {
      expect(await jsonata(`$type($${name})`).evaluate({}), `$${name}`).toBe('function');
    }
  });

  it('names every function jsonata defines (a new jsonata version must update the list)', () => {
    const source = readFileSync(createRequire(import.meta.url).resolve('jsonata'), 'utf8');
    const bound = [...source.matchAll(/\bstaticFrame\.bind\('([A-Za-z0-9_]+)'/g)].map((m) => m[1]!);
    // $now and $millis are bound by each expression (they read its evaluation's timestamp).
    expect(bound.length).toBeGreaterThan(50);
    expect([...JSONATA_FUNCTIONS].sort()).toEqual([...bound, 'now', 'millis'].sort());
  });
});

describe('unknownFunctions', () => {
  it('finds a call of a function nothing defines, with the position of its name', () => {
    const found = unknownFunctions(jsonata('$moneyAddd(a, b)').ast(), TALLY);
    expect(found).toEqual([{ name: 'moneyAddd', position: 10, suggestions: ['moneyAdd'] }]);
    expect(unknown('$foo()')).toEqual(['foo']);
  });

  it('accepts JSONata built-ins, the functions given, $now and $millis', () => {
    expect(
      unknown(
        '{"a": $sum(x), "b": $uppercase($string(y)), "c": $moneySum(z.$money(p, "USD")), "t": $now(), "m": $millis()}',
      ),
    ).toEqual([]);
    expect(unknown('$moneySum(x)', [])).toEqual(['moneySum']);
  });

  it('accepts names the expression binds: with :=, as lambda parameters, as @$ and #$ path variables', () => {
    expect(unknown('($x := function($v) { $v * 2 }; $x(3))')).toEqual([]);
    expect(unknown('($f := $uppercase; $f("a"))')).toEqual([]);
    expect(unknown('$map([1], function($f) { $f() })')).toEqual([]);
    expect(unknown('(function($g) { $g(1) })($string)')).toEqual([]);
    expect(unknown('items@$it.$it()')).toEqual([]);
    expect(unknown('items#$i.$i()')).toEqual([]);
    // Scopes are not followed: bound anywhere is defined everywhere.
    expect(unknown('[($h := $string; 1), $h(2)]')).toEqual([]);
  });

  it('looks everywhere in the expression: arguments, objects, filters, conditions, blocks, lambdas, transforms', () => {
    expect(
      unknown(`(
        $k := 1;
        {
          "a": $string($one()),
          "b": items[$two(price)],
          "c": flag ? $three() : $sum([$four()]),
          "d": function($x) { $five($x) },
          "e": $ ~> |lines|{"q": $six()}|,
          "f": items{$seven(): 1}
        }
      )`),
    ).toEqual(['one', 'two', 'three', 'four', 'five', 'six', 'seven']);
  });

  it('counts a partial application and the right side of ~> as calls', () => {
    expect(unknown('$substr(?, 1)')).toEqual(['substr']);
    expect(unknown('name ~> $trimm')).toEqual(['trimm']);
    expect(unknown('name ~> $trimm()')).toEqual(['trimm']);
    expect(unknown('name ~> $trim ~> $uppercase')).toEqual([]);
  });

  it('ignores calls of the context ($() and $$()) and what $eval runs', () => {
    expect(unknown('$eval("$nope()")')).toEqual([]);
  });
});

describe('closeMatches', () => {
  const known = [...JSONATA_FUNCTIONS, ...TALLY];

  it('suggests names a typo or a case slip away, closest first', () => {
    expect(closeMatches('moneyAddd', known)).toEqual(['moneyAdd']);
    expect(closeMatches('Uppercase', known)).toEqual(['uppercase']);
    expect(closeMatches('sting', known)).toEqual(['string']);
    expect(closeMatches('formatNumbr', known)).toEqual(['formatNumber']);
    expect(closeMatches('moneySun', known)).toEqual(['moneySub', 'moneySum', 'moneyMul']);
  });

  it('suggests the names a short prefix starts', () => {
    expect(closeMatches('substr', known)).toEqual(['substring', 'substringAfter', 'substringBefore']);
  });

  it('suggests nothing for a name unlike any', () => {
    expect(closeMatches('foo', known)).toEqual([]);
    expect(closeMatches('frobnicate', known)).toEqual([]);
  });

  it('words the suggestion', () => {
    expect(didYouMean(['moneyAdd'])).toBe('did you mean $moneyAdd?');
    expect(didYouMean(['a', 'b', 'c'])).toBe('did you mean $a, $b or $c?');
    expect(didYouMean([])).toBeUndefined();
  });
});
