import { describe, expect, it } from 'vitest';
import { canonicalJson } from './json.ts';

describe('canonicalJson', () => {
  it('sorts keys at every depth and matches JSON.stringify otherwise', () => {
    const value = { b: [3, { z: 1, a: null }], a: 'x', u: undefined, n: 1.5 };
    expect(canonicalJson(value)).toBe('{"a":"x","b":[3,{"a":null,"z":1}],"n":1.5}');
    expect(canonicalJson({ a: 1, b: 2 })).toBe(canonicalJson({ b: 2, a: 1 }));
    expect(canonicalJson([undefined, 'é'])).toBe(JSON.stringify([undefined, 'é']));
    expect(canonicalJson(null)).toBe('null');
  });
});
