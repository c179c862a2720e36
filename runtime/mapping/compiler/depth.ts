// An upper bound of the depth the interpreter's limit counts for an expression, so the compiled path
// only runs expressions that the interpreter's depth limit (spec.limits.maxDepth) can never stop.
//
// The interpreter adds one per nested evaluate() call. Without recursion (the compiler accepts lambdas
// only as arguments of built-ins, so nothing can call itself) nesting follows the syntax tree, except
// that the items of an array constructor and the values of an object constructor are evaluated
// concurrently (Promise.all): while one is evaluated, its siblings hold their depth too. So the
// bound adds up concurrent siblings and takes the maximum elsewhere. A call of a named lambda counts
// the lambda's body below the call (lambdas only call lambdas bound before them, so this ends).
import type { AstNode } from './codegen.ts';

const SEQUENTIAL_FIELDS = [
  'steps',
  'stages',
  'predicate',
  'expr',
  'expressions',
  'expression',
  'lhs',
  'rhs',
  'condition',
  'then',
  'else',
  'procedure',
  'arguments',
  'body',
  'pattern',
  'update',
  'delete',
  'terms',
  'group',
] as const;

function isNode(value: unknown): value is AstNode {
  return typeof value === 'object' && value !== null && typeof (value as AstNode).type === 'string';
}

/** Nodes that call a lambda bound elsewhere -> that lambda, whose body runs one level below the call. */
type CallTargets = ReadonlyMap<AstNode, AstNode>;

function maxOf(values: unknown, calls: CallTargets): number {
  if (Array.isArray(values)) return values.reduce((m: number, v) => Math.max(m, maxOf(v, calls)), 0);
  return isNode(values) ? depthBound(values, calls) : 0;
}

function sumOf(values: unknown, calls: CallTargets): number {
  if (Array.isArray(values)) return values.reduce((s: number, v) => s + sumOf(v, calls), 0);
  return isNode(values) ? depthBound(values, calls) : 0;
}

export function depthBound(node: AstNode, calls: CallTargets = new Map()): number {
  let inner = 0;
  const target = calls.get(node);
  if (target?.body !== undefined) inner = depthBound(target.body, calls);
  for (const field of SEQUENTIAL_FIELDS) {
    const value = (node as unknown as Record<string, unknown>)[field];
    if (value === undefined) continue;
    if (field === 'group') {
      // group-by: keys one after the other, values concurrently (as in an object constructor)
      const pairs = (value as { lhs: AstNode[][] }).lhs;
      inner = Math.max(
        inner,
        maxOf(
          pairs.map((p) => p[0]),
          calls,
        ),
        sumOf(
          pairs.map((p) => p[1]),
          calls,
        ),
      );
    } else if (field === 'terms') {
      // order-by: {descending, expression} pairs
      inner = Math.max(
        inner,
        maxOf(
          (value as { expression: AstNode }[]).map((t) => t.expression),
          calls,
        ),
      );
    } else if (node.type === 'unary' && node.value === '[' && field === 'expressions') {
      inner = Math.max(inner, sumOf(value, calls));
    } else if (node.type === 'unary' && node.value === '{' && field === 'lhs') {
      const pairs = value as AstNode[][];
      inner = Math.max(
        inner,
        maxOf(
          pairs.map((p) => p[0]),
          calls,
        ),
        sumOf(
          pairs.map((p) => p[1]),
          calls,
        ),
      );
    } else {
      inner = Math.max(inner, maxOf(value, calls));
    }
  }
  return 1 + inner;
}
