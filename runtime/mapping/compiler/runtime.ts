// The value semantics of the jsonata 2.2.2 interpreter, synchronous, for compiled expressions to call.
// Each helper mirrors one interpreter function line for line (named in its comment), including the
// quirks: sequences are arrays flagged `sequence`, arrays built by `[...]` in a path are flagged `cons`,
// a sequence of one item is unwrapped unless flagged `keepSingleton`, and errors are the interpreter's
// plain `{code, value}` objects. Do not "simplify" a helper without re-running the conformance suite.
import { TallyError } from '../../../api/errors.ts';

/** What the interpreter's arrays may carry. */
export interface Sequence extends Array<unknown> {
  sequence?: boolean;
  keepSingleton?: boolean;
  outerWrapper?: boolean;
  cons?: boolean;
  tupleStream?: boolean;
}

/** A JSONata error as the interpreter throws it (it adds the message later, from the code). */
export interface JsonataErrorObject {
  code: string;
  value?: unknown;
  value2?: unknown;
  index?: number;
  position?: number;
  token?: string;
  message?: string;
}

export function jsonataError(
  code: string,
  fields: Omit<JsonataErrorObject, 'code'> = {},
): JsonataErrorObject {
  return { code, ...fields };
}

/**
 * Thrown when a compiled expression meets, at run time, something only the interpreter can do (a custom
 * function returning a promise, say). The caller evaluates the same input with the interpreter instead.
 */
export class FastPathBailout extends TallyError {
  override name = 'FastPathBailout';
  readonly code = 'FAST_PATH_BAILOUT';
}

/** Thrown when a compiled evaluation has used up its time slice (see `startTimeSlice`). */
export class FastPathTimeSlice extends TallyError {
  override name = 'FastPathTimeSlice';
  readonly code = 'FAST_PATH_TIME_SLICE';
}

// The clock of the evaluation in progress. Compiled evaluations are synchronous and never nest, so one
// module-level clock is enough; `tick()` runs in every loop iteration of compiled code and reads the time
// only every 256 iterations, which keeps it cheap while still stopping runaway work within microseconds.
let deadline = Number.POSITIVE_INFINITY;
let ticks = 0;

export function tick(): void {
  if ((++ticks & 255) !== 0) return;
  if (performance.now() > deadline) throw new FastPathTimeSlice('the compiled evaluation ran out of time');
}

/** Start a time slice of `ms` (Infinity: unlimited); returns the clock to hand back to endTimeSlice. */
export function startTimeSlice(ms: number): number {
  const saved = deadline;
  deadline = ms === Number.POSITIVE_INFINITY ? ms : performance.now() + ms;
  return saved;
}

export function endTimeSlice(saved: number): void {
  deadline = saved;
}

// createSequence() and createSequence(x) of the interpreter's evaluate() (without options.sequence).
export function seq(): Sequence {
  const s: Sequence = [];
  s.sequence = true;
  return s;
}

export function seq1(x: unknown): Sequence {
  const s: Sequence = [x];
  s.sequence = true;
  return s;
}

/** utils.isSequence, for a value known not to be null or undefined. */
export function isSeq(v: unknown): boolean {
  return (v as Sequence).sequence === true && Array.isArray(v);
}

/** The tail of evaluate(): a sequence of none is undefined, of one is that one unless kept as an array. */
export function norm(r: unknown): unknown {
  if (r && (r as Sequence).sequence === true && Array.isArray(r) && !(r as Sequence).tupleStream) {
    if (r.length === 0) return undefined;
    if (r.length === 1) return (r as Sequence).keepSingleton ? r : r[0];
  }
  return r;
}

/** norm() for a node with `keepArray` (a trailing `[]`): flags the sequence itself, as evaluate() does. */
export function normKeep(r: unknown): unknown {
  if (r && (r as Sequence).sequence === true && Array.isArray(r) && !(r as Sequence).tupleStream) {
    (r as Sequence).keepSingleton = true;
    if (r.length === 0) return undefined;
  }
  return r;
}

/** utils.isFunction */
export function isFunction(arg: unknown): boolean {
  return (
    typeof arg === 'function' ||
    (!!arg &&
      ((arg as { _jsonata_function?: unknown })._jsonata_function === true ||
        (arg as { _jsonata_lambda?: unknown })._jsonata_lambda === true))
  );
}

/** utils.isNumeric: throws D1001 for an infinite number. */
export function isNumeric(n: unknown): n is number {
  if (typeof n !== 'number') return false;
  if (Number.isNaN(n)) return false;
  if (!Number.isFinite(n)) throw jsonataError('D1001', { value: n });
  return true;
}

export function isArrayOfNumbers(arg: unknown): boolean {
  if (!Array.isArray(arg)) return false;
  let ok = true;
  // filter() in the interpreter calls isNumeric on every item, so an infinite one throws even after a string.
  for (const item of arg) if (!isNumeric(item)) ok = false;
  return ok;
}

export function isArrayOfStrings(arg: unknown): boolean {
  if (!Array.isArray(arg)) return false;
  for (const item of arg) if (typeof item !== 'string') return false;
  return true;
}

/** fn.lookup: a field of an object, or of every object in an array (flattened one level). */
export function lookup(input: unknown, key: string): unknown {
  if (Array.isArray(input)) return lookupArray(input, key);
  if (input !== null && typeof input === 'object' && Object.hasOwn(input, key) && !isFunction(input)) {
    return (input as Record<string, unknown>)[key];
  }
  return undefined;
}

function lookupArray(input: unknown[], key: string): Sequence {
  const result = seq();
  for (let i = 0; i < input.length; i++) {
    const res = lookup(input[i], key);
    if (res !== undefined) {
      if (Array.isArray(res)) {
        res.forEach((v) => {
          result.push(v);
        });
      } else {
        result.push(res);
      }
    }
  }
  return result;
}

/**
 * A path of field names over an object, e.g. `customer.address.city`, when every step finds an object
 * that is not an array: exactly what evaluatePath gives then, without building sequences. Returns MISS
 * when an array turns up, so the caller runs the general path code instead.
 */
export const MISS: unique symbol = Symbol('miss');

export function namesPath(input: unknown, keys: readonly string[]): unknown {
  let cur = input;
  const last = keys.length - 1;
  for (let i = 0; i <= last; i++) {
    if (cur === null || typeof cur !== 'object') return undefined;
    if (Array.isArray(cur)) return MISS;
    // lookup() gives nothing for a function object: the step is empty and the path undefined.
    if (isFunction(cur)) return undefined;
    const key = keys[i] as string;
    const v = (cur as Record<string, unknown>)[key];
    // Own fields only: `constructor` is no field of a payload.
    if (v === undefined || !Object.hasOwn(cur, key)) return undefined;
    if (Array.isArray(v)) {
      // The last step hands back an array found in the data as it is; a sequence is flattened first.
      if (i === last && (v as Sequence).sequence !== true) return v;
      return MISS;
    }
    cur = v;
  }
  return cur;
}

/** evaluateWildcard */
export function wildcard(input: unknown): Sequence {
  let results = seq();
  let arg = input;
  if (Array.isArray(arg) && (arg as Sequence).outerWrapper && arg.length > 0) arg = arg[0];
  if (arg !== null && typeof arg === 'object' && !isFunction(arg)) {
    for (const key of Object.keys(arg)) {
      const value = (arg as Record<string, unknown>)[key];
      if (Array.isArray(value)) {
        results = append(results, flatten(value)) as Sequence;
      } else {
        results.push(value);
      }
    }
  }
  return results;
}

function flatten(arg: unknown, flattened: unknown[] = []): unknown[] {
  if (Array.isArray(arg)) {
    for (const item of arg) flatten(item, flattened);
  } else {
    flattened.push(arg);
  }
  return flattened;
}

/** evaluateDescendants */
export function descendants(input: unknown): unknown {
  if (input === undefined) return undefined;
  const resultSequence = seq();
  recurseDescendants(input, resultSequence);
  return resultSequence.length === 1 ? resultSequence[0] : resultSequence;
}

function recurseDescendants(input: unknown, results: unknown[]): void {
  if (!Array.isArray(input)) results.push(input);
  if (Array.isArray(input)) {
    for (const member of input) recurseDescendants(member, results);
  } else if (input !== null && typeof input === 'object' && !isFunction(input)) {
    for (const key of Object.keys(input))
      recurseDescendants((input as Record<string, unknown>)[key], results);
  }
}

/** fn.append */
export function append(arg1: unknown, arg2: unknown): unknown {
  if (arg1 === undefined) return arg2;
  if (arg2 === undefined) return arg1;
  const a1 = Array.isArray(arg1) ? arg1 : seq1(arg1);
  const a2 = Array.isArray(arg2) ? arg2 : [arg2];
  return a1.concat(a2);
}

/** The array constructor's `result = fn.append(result, value)`, in place: `result` is never shared yet. */
export function appendInto(result: unknown[], value: unknown): void {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) result.push(value[i]);
  } else {
    result.push(value);
  }
}

/** Flag an array built by `[...]` in a path so later steps do not flatten it (as evaluateUnary does). */
export function markCons(result: unknown[]): unknown[] {
  Object.defineProperty(result, 'cons', { enumerable: false, configurable: false, value: true });
  return result;
}

/** fn.boolean: JSONata's effective boolean value (undefined for undefined). */
export function boolean(arg: unknown): boolean | undefined {
  if (arg === undefined) return undefined;
  let result = false;
  if (Array.isArray(arg)) {
    if (arg.length === 1) {
      result = boolean(arg[0]) as boolean;
    } else if (arg.length > 1) {
      result = arg.filter((v) => boolean(v)).length > 0;
    }
  } else if (typeof arg === 'string') {
    if (arg.length > 0) result = true;
  } else if (isNumeric(arg)) {
    if (arg !== 0) result = true;
  } else if (arg !== null && typeof arg === 'object' && !isFunction(arg)) {
    if (Object.keys(arg).length > 0) result = true;
  } else if (typeof arg === 'boolean' && arg === true) {
    result = true;
  }
  return result;
}

/** `if (fn.boolean(x))`, with the common cases first. */
export function truthy(arg: unknown): boolean {
  if (arg === true) return true;
  if (arg === false || arg === undefined) return false;
  return boolean(arg) === true;
}

/** utils.isDeepEqual */
export function deepEqual(lhs: unknown, rhs: unknown): boolean {
  if (lhs === rhs) return true;
  if (typeof lhs === 'object' && typeof rhs === 'object' && lhs !== null && rhs !== null) {
    if (Array.isArray(lhs) && Array.isArray(rhs)) {
      if (lhs.length !== rhs.length) return false;
      for (let i = 0; i < lhs.length; i++) if (!deepEqual(lhs[i], rhs[i])) return false;
      return true;
    }
    const lkeys = Object.getOwnPropertyNames(lhs);
    const rkeys = Object.getOwnPropertyNames(rhs);
    if (lkeys.length !== rkeys.length) return false;
    lkeys.sort();
    rkeys.sort();
    for (let i = 0; i < lkeys.length; i++) if (lkeys[i] !== rkeys[i]) return false;
    for (const key of lkeys) {
      if (!deepEqual((lhs as Record<string, unknown>)[key], (rhs as Record<string, unknown>)[key]))
        return false;
    }
    return true;
  }
  return false;
}

// evaluateNumericExpression, one function per operator so each stays small enough to inline.
function numericOperands(lhs: unknown, rhs: unknown): boolean {
  if (lhs !== undefined && !isNumeric(lhs)) throw jsonataError('T2001', { value: lhs });
  if (rhs !== undefined && !isNumeric(rhs)) throw jsonataError('T2002', { value: rhs });
  return lhs !== undefined && rhs !== undefined;
}

export function add(l: unknown, r: unknown): number | undefined {
  if (typeof l === 'number' && typeof r === 'number' && Number.isFinite(l) && Number.isFinite(r))
    return l + r;
  return numericOperands(l, r) ? (l as number) + (r as number) : undefined;
}
export function sub(l: unknown, r: unknown): number | undefined {
  if (typeof l === 'number' && typeof r === 'number' && Number.isFinite(l) && Number.isFinite(r))
    return l - r;
  return numericOperands(l, r) ? (l as number) - (r as number) : undefined;
}
export function mul(l: unknown, r: unknown): number | undefined {
  if (typeof l === 'number' && typeof r === 'number' && Number.isFinite(l) && Number.isFinite(r))
    return l * r;
  return numericOperands(l, r) ? (l as number) * (r as number) : undefined;
}
export function div(l: unknown, r: unknown): number | undefined {
  if (typeof l === 'number' && typeof r === 'number' && Number.isFinite(l) && Number.isFinite(r))
    return l / r;
  return numericOperands(l, r) ? (l as number) / (r as number) : undefined;
}
export function mod(l: unknown, r: unknown): number | undefined {
  if (typeof l === 'number' && typeof r === 'number' && Number.isFinite(l) && Number.isFinite(r))
    return l % r;
  return numericOperands(l, r) ? (l as number) % (r as number) : undefined;
}

/** Unary minus (evaluateUnary). */
export function neg(v: unknown): number | undefined {
  if (v === undefined) return undefined;
  if (isNumeric(v)) return -v;
  throw jsonataError('D1002', { token: '-', value: v });
}

/** evaluateEqualityExpression for `=`; `!=` is its negation except that undefined gives false. */
export function eq(l: unknown, r: unknown): boolean {
  if (l === undefined || r === undefined) return false;
  return deepEqual(l, r);
}
export function ne(l: unknown, r: unknown): boolean {
  if (l === undefined || r === undefined) return false;
  return !deepEqual(l, r);
}

/** evaluateComparisonExpression: the operands' check, then undefined if either is missing. */
function comparable(l: unknown, r: unknown): boolean {
  const ltype = typeof l;
  const rtype = typeof r;
  const lc = ltype === 'undefined' || ltype === 'string' || ltype === 'number';
  const rc = rtype === 'undefined' || rtype === 'string' || rtype === 'number';
  if (!lc || !rc) {
    throw jsonataError('T2010', { value: !(ltype === 'string' || ltype === 'number') ? l : r });
  }
  if (ltype === 'undefined' || rtype === 'undefined') return false;
  if (ltype !== rtype) throw jsonataError('T2009', { value: l, value2: r });
  return true;
}

export function lt(l: unknown, r: unknown): boolean | undefined {
  return comparable(l, r) ? (l as number) < (r as number) : undefined;
}
export function le(l: unknown, r: unknown): boolean | undefined {
  return comparable(l, r) ? (l as number) <= (r as number) : undefined;
}
export function gt(l: unknown, r: unknown): boolean | undefined {
  return comparable(l, r) ? (l as number) > (r as number) : undefined;
}
export function ge(l: unknown, r: unknown): boolean | undefined {
  return comparable(l, r) ? (l as number) >= (r as number) : undefined;
}

/** evaluateIncludesExpression (`in`) */
export function includes(lhs: unknown, rhs: unknown): boolean {
  if (lhs === undefined || rhs === undefined) return false;
  const list = Array.isArray(rhs) ? rhs : [rhs];
  for (let i = 0; i < list.length; i++) if (list[i] === lhs) return true;
  return false;
}

/** evaluateRangeExpression (`..`), checking the clock while it fills a large range. */
export function range(lhs: unknown, rhs: unknown): Sequence | undefined {
  if (lhs !== undefined && !Number.isInteger(lhs)) throw jsonataError('T2003', { value: lhs });
  if (rhs !== undefined && !Number.isInteger(rhs)) throw jsonataError('T2004', { value: rhs });
  if (lhs === undefined || rhs === undefined) return undefined;
  const lo = lhs as number;
  const hi = rhs as number;
  if (lo > hi) return undefined;
  const size = hi - lo + 1;
  if (size > 1e7) throw jsonataError('D2014', { value: size });
  const result: Sequence = new Array(size);
  for (let item = lo, index = 0; item <= hi; item++, index++) {
    result[index] = item;
    tick();
  }
  result.sequence = true;
  return result;
}

/**
 * One term of evaluateSortExpression's comparator: 1 puts b first, -1 keeps a first, 0 asks the next
 * term. Missing values sort last whatever the direction; only strings and numbers of one type compare.
 */
export function sortOrder(aa: unknown, bb: unknown, descending: boolean): number {
  if (aa === undefined) return bb === undefined ? 0 : 1;
  if (bb === undefined) return -1;
  const atype = typeof aa;
  const btype = typeof bb;
  if (!(atype === 'string' || atype === 'number') || !(btype === 'string' || btype === 'number')) {
    throw jsonataError('T2008', { value: !(atype === 'string' || atype === 'number') ? aa : bb });
  }
  if (atype !== btype) throw jsonataError('T2007', { value: aa, value2: bb });
  if (aa === bb) return 0;
  const comp = (aa as number) < (bb as number) ? -1 : 1;
  return descending ? -comp : comp;
}

/** evaluateFilter: a predicate `[...]` applied to a value (the caller evaluates the predicate). */
export function filterIndex(input: unknown, value: number): Sequence {
  const list = Array.isArray(input) ? input : seq1(input);
  let index = Math.floor(value);
  if (index < 0) index = list.length + index;
  const item = list[index];
  if (item !== undefined) {
    if (Array.isArray(item)) return item as Sequence;
    return seq1(item);
  }
  return seq();
}

/**
 * How many times evaluateFilter pushes an item: an array of numbers can name the same index twice
 * (`[0, 0]`), and then the item is in the result twice.
 */
export function predicateCount(res: unknown, index: number, length: number): number {
  let r = res;
  if (isNumeric(r)) r = [r];
  if (isArrayOfNumbers(r)) {
    let n = 0;
    for (const ires of r as number[]) {
      let ii = Math.floor(ires);
      if (ii < 0) ii = length + ii;
      if (ii === index) n++;
    }
    return n;
  }
  return truthy(r) ? 1 : 0;
}

/** evaluateStep's ending: flatten the results of one step (`last`: the path's last step). */
export function flattenStep(result: unknown[], last: boolean): Sequence {
  if (last && result.length === 1 && Array.isArray(result[0]) && !isSeq(result[0])) {
    return result[0] as Sequence;
  }
  const out = seq();
  for (let i = 0; i < result.length; i++) {
    const res = result[i];
    if (!Array.isArray(res) || (res as Sequence).cons) {
      out.push(res);
    } else {
      res.forEach((v) => {
        out.push(v);
      });
    }
  }
  return out;
}

/** evaluatePath's ending for a path with a `[]` step. */
export function keepSingletonArray(resultSequence: unknown): unknown {
  let rs = resultSequence;
  if (Array.isArray(rs) && (rs as Sequence).cons && !(rs as Sequence).sequence) rs = seq1(rs);
  // As in the interpreter, an undefined result makes this a TypeError.
  (rs as Sequence).keepSingleton = true;
  return rs;
}

/**
 * evaluateGroupExpression's grouping for an object constructor whose keys are distinct string literals:
 * every key groups all the input items, so every value is evaluated in the context of this one value.
 */
export function groupContext(input: unknown[]): unknown {
  // The interpreter pushes into the input itself when it is empty; so must we (it can be seen later).
  if (input.length === 0) input.push(undefined);
  let data: unknown = input[0];
  for (let i = 1; i < input.length; i++) data = append(data, input[i]);
  return data;
}

/**
 * evaluateGroupExpression (without tuple streams): `keys[i]` and `values[i]` evaluate the i-th pair's
 * key and value expressions in a context.
 */
export function groupBy(
  input: unknown,
  keys: readonly ((context: unknown) => unknown)[],
  values: readonly ((context: unknown) => unknown)[],
): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  const groups: Record<string, { data: unknown; exprIndex: number }> = Object.create(null);
  const items = Array.isArray(input) ? input : seq1(input);
  // As in the interpreter, an empty input gets one undefined item, so literal keys still give fields.
  if (items.length === 0) items.push(undefined);
  for (let itemIndex = 0; itemIndex < items.length; itemIndex++) {
    tick();
    const item = items[itemIndex];
    for (let pairIndex = 0; pairIndex < keys.length; pairIndex++) {
      const key = (keys[pairIndex] as (context: unknown) => unknown)(item);
      if (typeof key !== 'string' && key !== undefined) throw jsonataError('T1003', { value: key });
      if (key === undefined) continue;
      if (key === '_jsonata_lambda' || key === '_jsonata_function')
        throw jsonataError('D1013', { value: key });
      const entry = groups[key];
      if (entry !== undefined) {
        if (entry.exprIndex !== pairIndex) throw jsonataError('D1009', { value: key });
        entry.data = append(entry.data, item);
      } else {
        groups[key] = { data: item, exprIndex: pairIndex };
      }
    }
  }
  for (const key of Object.keys(groups)) {
    tick();
    const entry = groups[key] as { data: unknown; exprIndex: number };
    const value = (values[entry.exprIndex] as (context: unknown) => unknown)(entry.data);
    if (value === undefined) continue;
    // The interpreter's result has no prototype; on ours `__proto__` must still be a plain field.
    if (key === '__proto__') {
      Object.defineProperty(result, key, { value, enumerable: true, writable: true, configurable: true });
    } else {
      result[key] = value;
    }
  }
  return result;
}

/** The `$` variable: the context, unwrapped from the sequence the whole input was put in. */
export function contextValue(input: unknown): unknown {
  return input && (input as Sequence).outerWrapper ? (input as unknown[])[0] : input;
}

export function isIterable(arg: unknown): arg is Iterator<unknown> {
  return (
    typeof arg === 'object' &&
    arg !== null &&
    Symbol.iterator in arg &&
    'next' in arg &&
    typeof (arg as { next?: unknown }).next === 'function'
  );
}

export function isPromise(arg: unknown): boolean {
  return (
    typeof arg === 'object' &&
    arg !== null &&
    'then' in arg &&
    typeof (arg as { then?: unknown }).then === 'function'
  );
}

/** What applyInner does with a native function's result: step a generator once; a promise is ours to refuse. */
export function settle(result: unknown): unknown {
  if (result === null || typeof result !== 'object') return result;
  let r = result;
  if (isIterable(r)) r = r.next().value;
  if (isPromise(r)) throw new FastPathBailout('a function returned a promise');
  return r;
}
