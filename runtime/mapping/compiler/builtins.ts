// JSONata's built-in functions for compiled expressions. The synchronous ones are jsonata's own
// implementations and argument signatures, fetched once from the library (it exports neither, but a
// `$name` reference evaluates to the definition). The ones jsonata implements as async functions (the
// higher-order ones, and the string functions that also take regexes) are reimplemented here, line for
// line, for the cases compiled code uses; anything else they could meet makes the compiler refuse.
import jsonata from 'jsonata';
import {
  boolean,
  FastPathBailout,
  isArrayOfNumbers,
  isArrayOfStrings,
  jsonataError,
  type Sequence,
  seq,
  settle,
  tick,
} from './runtime.ts';

/** A parsed JSONata signature: validates (and fixes up) an argument list, or throws T04xx. */
export interface Signature {
  definition: string;
  validate(args: unknown[], context: unknown): unknown[];
}

/** A native function as jsonata holds one: what `registerFunction` and the built-ins produce. */
export interface NativeFunction {
  _jsonata_function: true;
  implementation: (...args: unknown[]) => unknown;
  signature?: Signature;
}

/** The `this` jsonata gives a native function. */
export interface Focus {
  environment: { readonly timestamp: Date; lookup(name: string): unknown };
  input: unknown;
  options: Record<string, unknown>;
  createSequence: (...items: unknown[]) => Sequence;
}

/** Built-ins whose jsonata implementation is synchronous and deterministic: called as they are. */
export const SYNC_BUILTINS = [
  'sum',
  'count',
  'max',
  'min',
  'average',
  'string',
  'substring',
  'substringBefore',
  'substringAfter',
  'lowercase',
  'uppercase',
  'length',
  'trim',
  'pad',
  'join',
  'formatNumber',
  'formatBase',
  'formatInteger',
  'parseInteger',
  'number',
  'floor',
  'ceil',
  'round',
  'abs',
  'sqrt',
  'power',
  'boolean',
  'not',
  'zip',
  'keys',
  'lookup',
  'append',
  'exists',
  'spread',
  'merge',
  'reverse',
  'error',
  'assert',
  'type',
  'distinct',
  'base64encode',
  'base64decode',
  'encodeUrlComponent',
  'encodeUrl',
  'decodeUrlComponent',
  'decodeUrl',
  'toMillis',
  'fromMillis',
  'clone',
] as const;

/** Built-ins reimplemented here (jsonata's are async); the compiler knows what each one needs. */
export const HIGHER_ORDER = ['map', 'filter', 'single', 'reduce', 'each', 'sift', 'sort'] as const;
export const STRING_MATCHERS = ['contains', 'split', 'replace'] as const;
/** Read the evaluation's own timestamp. */
export const CLOCK = ['now', 'millis'] as const;

// Everything else ($eval, $match, $random, $shuffle) is not compiled.

const ALL = [...SYNC_BUILTINS, ...HIGHER_ORDER, ...STRING_MATCHERS, ...CLOCK];

// One evaluation of a jsonata expression that names every built-in hands back their definitions.
const fetched = (await jsonata(`{${ALL.map((n) => `"${n}": $${n}`).join(', ')}}`).evaluate({})) as Record<
  string,
  NativeFunction
>;

export const builtins: ReadonlyMap<string, NativeFunction> = new Map(
  ALL.map((name) => {
    const def = fetched[name];
    if (def?._jsonata_function !== true) {
      throw new Error(
        `jsonata has no built-in $${name}; the compiled path needs the jsonata version it was written for`,
      );
    }
    return [name, def] as const;
  }),
);

export function builtin(name: string): NativeFunction {
  const def = builtins.get(name);
  if (!def) throw new Error(`no built-in $${name}`);
  return def;
}

/** The implementation jsonata's `&` uses to turn a value into text (fn.string). */
export const stringOf = builtin('string').implementation as (arg: unknown) => string | undefined;

/** fn.string for a defined value: strings and integers without the JSON.stringify round trip. */
export function str(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return numberText(value);
  return stringOf(value) as string;
}

/** fn.string of a finite number: JSON.stringify writes it as String() does, after toPrecision(15). */
export function numberText(value: number): string {
  return String(Number.isInteger(value) ? value : Number(value.toPrecision(15)));
}

/** applyInner for a native function: validate against its signature, then call it with the focus. */
export function callNative(def: NativeFunction, args: unknown[], context: unknown, focus: Focus): unknown {
  const validated = def.signature === undefined ? args : def.signature.validate(args, context);
  focus.input = context;
  return settle(def.implementation.apply(focus, validated));
}

/** The arguments jsonata's higher-order functions pass to a function of this arity (hofFuncArgs). */
function hofArgs(arity: number, a1: unknown, a2: unknown, a3: unknown): unknown[] {
  const args = [a1];
  if (arity >= 2) args.push(a2);
  if (arity >= 3) args.push(a3);
  return args;
}

/** A function argument: a compiled lambda (takes any number of arguments) and its arity. */
export type Callable = (...args: unknown[]) => unknown;

// The higher-order functions. `arr` etc. are the arguments after signature validation.

export function hofMap(arr: unknown[] | undefined, fn: Callable, arity: number): Sequence | undefined {
  if (arr === undefined) return undefined;
  const result = seq();
  for (let i = 0; i < arr.length; i++) {
    tick();
    const res = fn(...hofArgs(arity, arr[i], i, arr));
    if (res !== undefined) result.push(res);
  }
  return result;
}

export function hofFilter(arr: unknown[] | undefined, fn: Callable, arity: number): Sequence | undefined {
  if (arr === undefined) return undefined;
  const result = seq();
  for (let i = 0; i < arr.length; i++) {
    tick();
    const entry = arr[i];
    if (boolean(fn(...hofArgs(arity, entry, i, arr)))) result.push(entry);
  }
  return result;
}

export function hofSingle(
  arr: unknown[] | undefined,
  fn: Callable | undefined,
  arity: number,
): unknown | undefined {
  if (arr === undefined) return undefined;
  let hasFoundMatch = false;
  let result: unknown;
  for (let i = 0; i < arr.length; i++) {
    tick();
    const entry = arr[i];
    let positiveResult: boolean | undefined = true;
    if (fn !== undefined) positiveResult = boolean(fn(...hofArgs(arity, entry, i, arr)));
    if (positiveResult) {
      if (!hasFoundMatch) {
        result = entry;
        hasFoundMatch = true;
      } else {
        throw jsonataError('D3138', { index: i });
      }
    }
  }
  if (!hasFoundMatch) throw jsonataError('D3139');
  return result;
}

export function hofReduce(
  sequence: unknown[] | undefined,
  fn: Callable,
  arity: number,
  init: unknown,
): unknown | undefined {
  if (sequence === undefined) return undefined;
  if (arity < 2) throw jsonataError('D3050', { index: 1 });
  let result: unknown;
  let index: number;
  if (init === undefined && sequence.length > 0) {
    result = sequence[0];
    index = 1;
  } else {
    result = init;
    index = 0;
  }
  while (index < sequence.length) {
    tick();
    const args = [result, sequence[index]];
    if (arity >= 3) args.push(index);
    if (arity >= 4) args.push(sequence);
    result = fn(...args);
    index++;
  }
  return result;
}

function keysOf(arg: unknown): string[] {
  return typeof arg === 'object' && arg !== null ? Object.keys(arg) : [];
}

export function hofEach(obj: unknown, fn: Callable, arity: number): Sequence {
  const result = seq();
  for (const key of keysOf(obj)) {
    tick();
    const val = fn(...hofArgs(arity, (obj as Record<string, unknown>)[key], key, obj));
    if (val !== undefined) result.push(val);
  }
  return result;
}

export function hofSift(arg: unknown, fn: Callable, arity: number): Record<string, unknown> | undefined {
  const result: Record<string, unknown> = Object.create(null);
  for (const item of keysOf(arg)) {
    tick();
    const entry = (arg as Record<string, unknown>)[item];
    if (boolean(fn(...hofArgs(arity, entry, item, arg)))) result[item] = entry;
  }
  if (Object.keys(result).length === 0) return undefined;
  return result;
}

/** fn.sort: jsonata's stable merge sort; `swap(a, b)` true puts b first. */
export function hofSort(arr: unknown[] | undefined, comparator: Callable | undefined): unknown[] | undefined {
  if (arr === undefined) return undefined;
  if (arr.length <= 1) return arr;
  let swap: (a: unknown, b: unknown) => unknown;
  if (comparator === undefined) {
    if (!isArrayOfNumbers(arr) && !isArrayOfStrings(arr)) throw jsonataError('D3070', { index: 1 });
    swap = (a, b) => (a as number) > (b as number);
  } else {
    swap = (a, b) => comparator(a, b);
  }
  const merge = (left: unknown[], right: unknown[]): unknown[] => {
    const merged: unknown[] = [];
    let l = 0;
    let r = 0;
    while (l < left.length && r < right.length) {
      tick();
      if (swap(left[l], right[r])) merged.push(right[r++]);
      else merged.push(left[l++]);
    }
    while (l < left.length) merged.push(left[l++]);
    while (r < right.length) merged.push(right[r++]);
    return merged;
  };
  const msort = (array: unknown[]): unknown[] => {
    if (array.length <= 1) return array;
    const middle = Math.floor(array.length / 2);
    return merge(msort(array.slice(0, middle)), msort(array.slice(middle)));
  };
  return msort(arr);
}

// The string functions, for string patterns only (the compiler never passes a regex or a function).

function stringPattern(value: unknown): string {
  if (typeof value !== 'string') throw new FastPathBailout('a pattern that is not a string');
  return value;
}

/** fn.contains */
export function contains(str: unknown, token: unknown): boolean | undefined {
  if (str === undefined || token === undefined) return undefined;
  return (str as string).indexOf(stringPattern(token)) !== -1;
}

/** fn.split */
export function split(str: unknown, separator: unknown, limit: unknown): string[] | undefined {
  if (str === undefined) return undefined;
  if ((limit as number) < 0) throw jsonataError('D3020', { value: limit, index: 3 });
  let result: string[] = [];
  if (limit === undefined || (limit as number) > 0) {
    result = (str as string).split(stringPattern(separator), limit as number | undefined);
  }
  return result;
}

/** fn.replace */
export function replace(
  str: unknown,
  pattern: unknown,
  replacement: unknown,
  limit: unknown,
): string | undefined {
  if (str === undefined) return undefined;
  if (pattern === '') throw jsonataError('D3010', { value: pattern, index: 2 });
  if ((limit as number) < 0) throw jsonataError('D3011', { value: limit, index: 4 });
  const s = str as string;
  const p = stringPattern(pattern);
  const replacementText = stringPattern(replacement);
  let result = '';
  let position = 0;
  if (limit === undefined || (limit as number) > 0) {
    let count = 0;
    let index = s.indexOf(p, position);
    while (index !== -1 && (limit === undefined || count < (limit as number))) {
      result += s.substring(position, index);
      result += replacementText;
      position = index + p.length;
      count++;
      index = s.indexOf(p, position);
    }
    result += s.substring(position);
  } else {
    result = s;
  }
  return result;
}
