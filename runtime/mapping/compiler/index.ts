// The fast path of the mapping engine: a JSONata expression compiled to a JavaScript function that gives
// exactly what jsonata's interpreter gives (checked on jsonata's conformance suite by
// test/conformance/jsonata-suite.test.ts), or a refusal with the reason, in which case the caller keeps
// using the interpreter.
//
// Limits. A compiled evaluation is synchronous, so it honours the mapping's limits its own way:
// - depth: nothing compiled can recurse (lambdas only call lambdas bound before them), so the depth an
//   expression reaches is bounded by its syntax; the compiler refuses an expression whose bound of the
//   interpreter's depth (./depth.ts) exceeds maxDepth, so a compiled expression can never be one the
//   interpreter would have stopped for depth;
// - time: every loop of compiled code (path steps, predicates, ranges, grouping, sorting, higher-order
//   functions) ticks a clock, and an evaluation past its time slice throws FastPathTimeSlice. The engine
//   gives a slice of min(timeoutMs, 10 ms), so the event loop is never held longer than the interpreter
//   holds it between yields: an evaluation that needs more goes to the interpreter, which yields and
//   enforces timeoutMs, and one that outlasts a timeoutMs shorter than the slice has timed out. As in
//   the interpreter, one built-in call over a large array ($distinct, $sort...) runs to its end.
import jsonata from 'jsonata';
import * as builtinsModule from './builtins.ts';
import { builtin, type Focus, type NativeFunction, stringOf } from './builtins.ts';
import { type AstNode, generate, Unsupported } from './codegen.ts';
import { depthBound } from './depth.ts';
import * as runtime from './runtime.ts';

export { FastPathBailout, FastPathTimeSlice } from './runtime.ts';

/** A function the expression may call besides the built-ins, as given to jsonata's registerFunction. */
export interface CustomFunction {
  name: string;
  implementation: (...args: never[]) => unknown;
  /** jsonata's signature syntax; a function with one is not compiled (calls of it are refused). */
  signature?: string | undefined;
}

export interface FastCompileOptions {
  /** Functions callable as `$name` (they win over a built-in of the same name, as in jsonata). */
  functions?: readonly CustomFunction[];
  /** Names of the variables passed to each evaluate() (jsonata's `bindings`). */
  variables?: readonly string[];
  /** The interpreter's depth limit the expression will run under; refused if it could be reached. */
  maxDepth?: number;
}

export interface FastExpression {
  /**
   * Evaluate like jsonata's `expression.evaluate(input, bindings)`, synchronously. Throws jsonata's error
   * objects ({code, ...}) as the interpreter would, FastPathTimeSlice when `timeSliceMs` ran out and
   * FastPathBailout when the input needs the interpreter.
   */
  evaluate(input: unknown, bindings?: Record<string, unknown>, options?: { timeSliceMs?: number }): unknown;
  /** The generated JavaScript, for debugging. */
  readonly code: string;
}

export type FastCompileResult =
  | { supported: true; expression: FastExpression }
  | { supported: false; reason: string };

// The runtime object the generated code destructures.
const nowDef: NativeFunction = {
  _jsonata_function: true,
  implementation(this: Focus, ...args: unknown[]) {
    const [picture, timezone] = args;
    return builtin('fromMillis').implementation.call(
      this,
      this.environment.timestamp.getTime(),
      picture,
      timezone,
    );
  },
  signature: builtin('now').signature,
} as NativeFunction;

const millisDef: NativeFunction = {
  _jsonata_function: true,
  implementation(this: Focus) {
    return this.environment.timestamp.getTime();
  },
  signature: builtin('millis').signature,
} as NativeFunction;

const rt = { ...runtime, ...builtinsModule, stringOf, nowDef, millisDef };

function createSequence(...items: unknown[]): runtime.Sequence {
  return items.length === 1 ? runtime.seq1(items[0]) : runtime.seq();
}

/** Compile a JSONata expression (source text or jsonata's AST) for the fast path. */
export function compileFast(
  expression: string | AstNode,
  options: FastCompileOptions = {},
): FastCompileResult {
  // A syntax error is the interpreter's to report: the caller compiles with jsonata first.
  const ast = typeof expression === 'string' ? (jsonata(expression).ast() as AstNode) : expression;
  const functions = options.functions ?? [];
  const maxDepth = options.maxDepth ?? Number.POSITIVE_INFINITY;
  let generated: ReturnType<typeof generate>;
  try {
    generated = generate(ast, {
      functions: new Set(functions.map((f) => f.name)),
      signed: new Set(functions.filter((f) => f.signature !== undefined).map((f) => f.name)),
      variables: new Set(options.variables ?? []),
    });
  } catch (err) {
    if (err instanceof Unsupported) return { supported: false, reason: err.message };
    throw err;
  }
  const { body: code, constants, callTargets } = generated;
  const depth = depthBound(ast, callTargets);
  if (depth > maxDepth) {
    return {
      supported: false,
      reason: `nesting (up to ${depth} levels) could reach the depth limit (${maxDepth})`,
    };
  }
  const natives: Record<string, NativeFunction> = Object.create(null);
  for (const f of functions) {
    natives[f.name] = {
      _jsonata_function: true,
      implementation: f.implementation as (...args: unknown[]) => unknown,
    };
  }
  const lookup = (name: string): unknown => natives[name] ?? runtime.lookup(builtinsByName, name);
  // The code is built from the AST only: names and literals go in as JSON string literals or through K.
  const factory = new Function('rt', 'K', 'F', code) as (
    rt: unknown,
    k: unknown[],
    f: Record<string, NativeFunction>,
  ) => (input: unknown, ext: Record<string, unknown>, focus: Focus) => unknown;
  const run = factory(rt, constants, natives);
  const noBindings: Record<string, unknown> = Object.freeze(Object.create(null));
  return {
    supported: true,
    expression: {
      code,
      evaluate(input, bindings, evalOptions) {
        // As in jsonata, a function's `this.environment.lookup` sees the evaluation's bindings first.
        const find =
          bindings === undefined
            ? lookup
            : (name: string) => (Object.hasOwn(bindings, name) ? bindings[name] : lookup(name));
        const focus: Focus = {
          environment: new EvaluationEnvironment(Date.now(), find),
          input: undefined,
          options: {},
          createSequence,
        };
        const saved = runtime.startTimeSlice(evalOptions?.timeSliceMs ?? Number.POSITIVE_INFINITY);
        try {
          return run(input, bindings ?? noBindings, focus);
        } finally {
          runtime.endTimeSlice(saved);
        }
      },
    },
  };
}

const builtinsByName: Record<string, unknown> = Object.fromEntries(builtinsModule.builtins);

/**
 * What `this.environment` is for functions called by compiled code: the evaluation's timestamp (one
 * per evaluation, as jsonata's $now and $millis read it; a Date only when something asks) and look-up
 * of function definitions.
 */
class EvaluationEnvironment {
  readonly millis: number;
  readonly lookup: (name: string) => unknown;
  #timestamp: Date | undefined;

  constructor(millis: number, lookup: (name: string) => unknown) {
    this.millis = millis;
    this.lookup = lookup;
  }

  get timestamp(): Date {
    this.#timestamp ??= new Date(this.millis);
    return this.#timestamp;
  }
}
