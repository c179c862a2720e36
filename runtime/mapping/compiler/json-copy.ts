// toJsonValue (../json.ts) without the JSON text in between: the engine copies every mapping result
// out of JSONata's values this way, and the JSON.stringify + JSON.parse round trip cost about as much as
// a compiled evaluation. The copy walks plain data (what mappings produce) with JSON.stringify's rules;
// anything else (toJSON methods, boxed primitives, class instances, bigint, very deep nesting, a
// `__proto__` key) sends the whole value to toJsonValue itself, so the result is always the same.
import { toJsonValue } from '../json.ts';

const UNUSUAL = Symbol('unusual');
const MAX_DEPTH = 1000;

function isJsonataFunctionObject(value: object): boolean {
  return (
    (value as { _jsonata_lambda?: unknown })._jsonata_lambda === true ||
    (value as { _jsonata_function?: unknown })._jsonata_function === true
  );
}

/** A value JSON.stringify leaves out of an object (and writes as null in an array). */
function omitted(value: unknown): boolean {
  return (
    value === undefined ||
    typeof value === 'function' ||
    typeof value === 'symbol' ||
    (typeof value === 'object' && value !== null && isJsonataFunctionObject(value))
  );
}

function copyValue(value: unknown, depth: number): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      // JSON has no NaN or Infinity (they become null) and writes -0 as 0.
      return Number.isFinite(value) ? (value === 0 ? 0 : value) : null;
    case 'object':
      return value === null ? null : copyObject(value, depth);
    default:
      throw UNUSUAL;
  }
}

function copyObject(value: object, depth: number): unknown {
  if (depth > MAX_DEPTH || typeof (value as { toJSON?: unknown }).toJSON === 'function') throw UNUSUAL;
  if (Array.isArray(value)) {
    const out: unknown[] = [];
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      out.push(omitted(item) ? null : copyValue(item, depth + 1));
    }
    return out;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) throw UNUSUAL;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    if (key === '__proto__') throw UNUSUAL;
    const item = (value as Record<string, unknown>)[key];
    if (!omitted(item)) out[key] = copyValue(item, depth + 1);
  }
  return out;
}

/** Exactly toJsonValue(value), faster for plain data. */
export function copyJsonValue(value: unknown): unknown {
  if (value === undefined || omitted(value)) return toJsonValue(value);
  try {
    return copyValue(value, 0);
  } catch (err) {
    if (err === UNUSUAL) return toJsonValue(value);
    throw err;
  }
}
