// copyJsonValue must be toJsonValue, for every value a mapping can produce and then some.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toJsonValue } from '../json.ts';
import { copyJsonValue } from './json-copy.ts';

/** Same value, same key order, same array lengths (toEqual alone ignores key order). */
function expectSame(actual: unknown, expected: unknown): void {
  expect(actual).toStrictEqual(expected);
  expect(JSON.stringify(actual)).toBe(JSON.stringify(expected));
}

const sequence = (items: unknown[]) => Object.assign([...items], { sequence: true, keepSingleton: true });
const jsonataFunction = { _jsonata_function: true, implementation: () => 1 };

const leaf = fc.oneof(
  fc.string(),
  fc.double(),
  fc.integer(),
  fc.constantFrom(-0, Number.NaN, Number.POSITIVE_INFINITY, null, true, false, undefined),
  fc.constantFrom(() => 1, jsonataFunction, Symbol('s')),
  fc.constantFrom(new Date(0), new Number(1), { toJSON: () => 'custom' }),
);

const value = fc.letrec((tie) => ({
  leaf,
  array: fc.array(tie('node'), { maxLength: 4 }),
  seq: fc.array(tie('node'), { maxLength: 3 }).map(sequence),
  object: fc.dictionary(
    fc.oneof(fc.string(), fc.constantFrom('__proto__', '1', '01', 'toJSON')),
    tie('node'),
    {
      maxKeys: 4,
    },
  ),
  nullProto: fc
    .dictionary(fc.string(), tie('node'), { maxKeys: 3 })
    .map((o) => Object.assign(Object.create(null) as object, o)),
  node: fc.oneof(
    { depthSize: 'small' },
    tie('leaf'),
    tie('array'),
    tie('seq'),
    tie('object'),
    tie('nullProto'),
  ),
})).node;

describe('copyJsonValue', () => {
  it('gives what toJsonValue gives', () => {
    fc.assert(
      fc.property(value, (v) => {
        let expected: unknown;
        let expectedError: unknown;
        try {
          expected = toJsonValue(v);
        } catch (err) {
          expectedError = err;
        }
        if (expectedError !== undefined) {
          expect(() => copyJsonValue(v)).toThrow((expectedError as Error).constructor as new () => Error);
        } else {
          expectSame(copyJsonValue(v), expected);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('shares nothing with its input', () => {
    const input = { a: [{ b: 1 }] };
    const copy = copyJsonValue(input) as typeof input;
    copy.a[0]!.b = 2;
    expect(input.a[0]!.b).toBe(1);
  });

  it('copies a cycle the way JSON.stringify does: not at all', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => copyJsonValue(cyclic)).toThrow(TypeError);
  });
});
