// Compare a mapping's output with a test case's expected value, as one readable line per difference.
import { formatPath } from './paths.ts';

export type MatchMode = 'exact' | 'partial';

/**
 * The differences between expected and actual, e.g. `totals.grandTotal.amount: expected "43.22", got
 * "43.21"`, `lines[0].sku: missing`, `extra field notes: "gift"`. Empty when they match.
 *
 * exact: equal JSON values. partial: every field of expected (recursively) is present in actual with an
 * equal value; actual may have more fields, and arrays may be longer, but each expected element must
 * match the element at the same index.
 */
export function differences(expected: unknown, actual: unknown, mode: MatchMode): string[] {
  const out: string[] = [];
  walk(expected, actual, [], mode, out);
  return out;
}

function walk(expected: unknown, actual: unknown, path: PropertyKey[], mode: MatchMode, out: string[]): void {
  if (isObject(expected) && isObject(actual)) {
    for (const [key, value] of Object.entries(expected)) {
      if (!Object.hasOwn(actual, key)) out.push(`${formatPath([...path, key])}: missing`);
      else walk(value, actual[key], [...path, key], mode, out);
    }
    if (mode === 'exact') {
      for (const [key, value] of Object.entries(actual)) {
        if (!Object.hasOwn(expected, key))
          out.push(`extra field ${formatPath([...path, key])}: ${show(value)}`);
      }
    }
    return;
  }
  if (Array.isArray(expected) && Array.isArray(actual)) {
    const lengthDiffers =
      mode === 'exact' ? actual.length !== expected.length : actual.length < expected.length;
    if (lengthDiffers) {
      out.push(`${formatPath(path)}: expected ${count(expected.length)}, got ${count(actual.length)}`);
    }
    expected.forEach((value, i) => {
      if (i < actual.length) walk(value, actual[i], [...path, i], mode, out);
      else out.push(`${formatPath([...path, i])}: missing`);
    });
    if (mode === 'exact') {
      for (let i = expected.length; i < actual.length; i++) {
        out.push(`extra element ${formatPath([...path, i])}: ${show(actual[i])}`);
      }
    }
    return;
  }
  if (expected !== actual) {
    out.push(`${formatPath(path)}: expected ${show(expected)}, got ${show(actual)}`);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function count(n: number): string {
  return `${n} ${n === 1 ? 'element' : 'elements'}`;
}

/** A value in a diff line: JSON, shortened so one line stays one line. */
function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
