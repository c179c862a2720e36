// Compile a mapping once, then map payloads: evaluate the JSONata expression under the mapping's limits,
// validate the result against the canonical entity, and evaluate the business key over it.
//
// Two evaluators give the same answers: jsonata's interpreter, and the fast path (./compiler/), the
// expression compiled to JavaScript, used when the compiler supports every construct in it. The fast
// path hands anything unusual to the interpreter, whose answer then stands: an evaluation that fails
// (so errors, with their messages and locations, are the interpreter's own), one that needs more than
// a short time slice (the interpreter yields to the event loop and enforces timeoutMs), and input
// the compiled code cannot handle.
import jsonata from 'jsonata';
import { canonicalSchemas } from '../../api/canonical/index.ts';
import { compileFast, type FastExpression, FastPathTimeSlice } from './compiler/index.ts';
import { copyJsonValue } from './compiler/json-copy.ts';
import {
  BusinessKeyError,
  CanonicalValidationError,
  EvaluationSuspended,
  MappingCompileError,
  MappingLimitError,
  type MappingPart,
} from './errors.ts';
import { EVALUATE_ENTRY_HOOK, evaluationGuard, YIELD_AFTER_MS } from './evaluation-guard.ts';
import { didYouMean, unknownFunctions } from './function-names.ts';
import { mappingFunctions } from './functions.ts';
import { compileError, evaluationError, locate } from './jsonata-errors.ts';
import type { CompiledMapping, MappingDefinition, MappingResult } from './types.ts';

/** Which evaluator runs a mapping: 'auto' (the default) is the fast path when it supports the expression. */
export type EvaluationPath = 'auto' | 'fast' | 'interpreter';

export interface CompileMappingOptions {
  /** 'fast' refuses (MappingCompileError) an expression the fast path does not support. */
  path?: EvaluationPath;
}

export interface EngineMapping extends CompiledMapping {
  /** The evaluator of spec.expression. */
  readonly path: 'fast' | 'interpreter';
  /** The evaluator of each part, and why the fast path was not used where it was not. */
  readonly paths: Readonly<
    Record<MappingPart, { path: 'fast' | 'interpreter'; fallbackReason: string | undefined }>
  >;
  /** The value of spec.expression for a payload, before validation (benchmarks, diagnostics). */
  evaluate(input: unknown): Promise<unknown>;
}

export interface CompiledPart {
  part: MappingPart;
  source: string;
  interpreter: jsonata.Expression;
  fast: FastExpression | undefined;
  fallbackReason: string | undefined;
}

export function compileMapping(def: MappingDefinition, options: CompileMappingOptions = {}): EngineMapping {
  // Our own copy: later changes to the caller's object must not change a compiled mapping.
  const definition = structuredClone(def);
  checkLimits(definition.limits);
  const mode = options.path ?? 'auto';
  const expression = compilePart('expression', definition.expression, definition, mode);
  const businessKey = compilePart('businessKey', definition.businessKey, definition, mode);
  const schema = canonicalSchemas[definition.entity];
  const evaluate = (compiled: CompiledPart, input: unknown, bindings?: Record<string, unknown>) =>
    evaluatePart(compiled, input, definition.limits, bindings);

  return {
    definition,
    path: expression.fast ? 'fast' : 'interpreter',
    paths: {
      expression: {
        path: expression.fast ? 'fast' : 'interpreter',
        fallbackReason: expression.fallbackReason,
      },
      businessKey: {
        path: businessKey.fast ? 'fast' : 'interpreter',
        fallbackReason: businessKey.fallbackReason,
      },
    },
    evaluate: (input) => evaluate(expression, input),
    async map(input: unknown, bindings?: Record<string, unknown>): Promise<MappingResult> {
      const raw = copyJsonValue(await evaluate(expression, input, bindings));
      const parsed = schema.safeParse(raw);
      if (!parsed.success) {
        throw new CanonicalValidationError(definition.entity, parsed.error.issues, { cause: parsed.error });
      }
      const output = parsed.data as Record<string, unknown>;
      const key = businessKeyText(definition.businessKey, await evaluate(businessKey, output, bindings));
      return { output, key };
    },
  };
}

/**
 * Evaluate one compiled expression: the fast path when it has one, else (or when it gives up) the
 * interpreter, whose answer then stands. `bindings` are JSONata variables of this evaluation only
 * (the cross-reference context of ../xref/ reads its own from there).
 */
export async function evaluatePart(
  compiled: CompiledPart,
  input: unknown,
  limits: MappingDefinition['limits'],
  bindings?: Record<string, unknown>,
): Promise<unknown> {
  // The fast path is synchronous: it may hold the event loop for a slice as short as the interpreter's.
  const slice = Math.min(limits.timeoutMs, YIELD_AFTER_MS);
  if (compiled.fast) {
    try {
      return compiled.fast.evaluate(input, bindings, { timeSliceMs: slice });
    } catch (err) {
      if (err instanceof EvaluationSuspended) throw err;
      if (err instanceof FastPathTimeSlice && slice >= limits.timeoutMs) {
        throw new MappingLimitError(compiled.part, 'timeoutMs', limits.timeoutMs, { cause: err });
      }
      // Otherwise the interpreter evaluates it again, and its result or error is the answer.
    }
  }
  try {
    return await compiled.interpreter.evaluate(input, bindings);
  } catch (err) {
    if (isSuspended(err)) throw err;
    throw evaluationError(compiled.part, compiled.source, limits, err);
  }
}

export function checkLimits(limits: MappingDefinition['limits']): void {
  for (const name of ['timeoutMs', 'maxDepth'] as const) {
    const value = limits[name];
    // JSONata treats 0 as "no limit", which is exactly what a limit must not silently become.
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new MappingCompileError(`spec.limits.${name} must be a positive whole number, got ${value}`, {
        part: 'limits',
      });
    }
  }
}

/** The fields of a mapping definition compiling one expression needs (inbound and outbound alike). */
type PartContext = Pick<MappingDefinition, 'lookups' | 'limits'>;

export function compilePart(
  part: MappingPart,
  source: string,
  def: PartContext,
  mode: EvaluationPath,
): CompiledPart {
  const interpreter = compileExpression(part, source, def);
  checkFunctionNames(part, source, interpreter, def);
  if (mode === 'interpreter') {
    return { part, source, interpreter, fast: undefined, fallbackReason: 'the interpreter was asked for' };
  }
  let fast: FastExpression | undefined;
  let fallbackReason: string | undefined;
  try {
    // $now and $millis are the compiler's own, reading the evaluation's timestamp like ours below.
    const compiled = compileFast(source, {
      functions: mappingFunctions(def.lookups),
      maxDepth: def.limits.maxDepth,
    });
    if (compiled.supported) fast = compiled.expression;
    else fallbackReason = compiled.reason;
  } catch (err) {
    // A compiler fault must cost speed, never a mapping.
    fallbackReason = `the compiler failed: ${err instanceof Error ? err.message : String(err)}`;
  }
  if (mode === 'fast' && fast === undefined) {
    throw new MappingCompileError(`spec.${part} cannot use the fast path: ${fallbackReason}`, { part });
  }
  return { part, source, interpreter, fast, fallbackReason };
}

/**
 * Refuse a call of a function nothing defines (a typo such as $moneyAddd): JSONata would only fail
 * when it evaluates the call, with the first payload that gets there.
 */
function checkFunctionNames(
  part: MappingPart,
  source: string,
  expr: jsonata.Expression,
  def: PartContext,
): void {
  const custom = mappingFunctions(def.lookups).map((f) => f.name);
  const unknown = unknownFunctions(expr.ast(), custom);
  const first = unknown[0];
  if (!first) return;
  const location = locate(source, first.position, `$${first.name}`);
  const at = location ? ` at line ${location.line}, column ${location.column}` : '';
  const hint =
    didYouMean(first.suggestions) ??
    `it is neither a JSONata function nor one of Tally's (${custom.map((n) => `$${n}`).join(', ')}), and the expression does not bind it (e.g. $f := function($x) { ... })`;
  const others = [...new Set(unknown.slice(1).map((u) => `$${u.name}`))].filter(
    (n) => n !== `$${first.name}`,
  );
  const more = others.length ? ` (it also calls ${others.join(', ')}, which are not defined either)` : '';
  throw new MappingCompileError(
    `spec.${part} calls $${first.name}${at}, which is not a defined function: ${hint}${more}`,
    { part, ...(location ? { location } : {}) },
  );
}

function compileExpression(part: MappingPart, source: string, def: PartContext): jsonata.Expression {
  let expr: jsonata.Expression;
  try {
    // JSONata checks the depth (nesting of node evaluations, counted per evaluate() call) itself; the
    // time limit is the entry hook's, which does not charge time spent letting other work run.
    expr = jsonata(source, { stack: def.limits.maxDepth });
  } catch (err) {
    throw compileError(part, source, err);
  }
  for (const f of mappingFunctions(def.lookups)) {
    expr.registerFunction(f.name, f.implementation as (...args: unknown[]) => unknown, f.signature);
  }
  // JSONata's own $now/$millis read a timestamp shared by every evaluation of the expression; read the
  // one of the evaluation in progress instead, so concurrent map() calls cannot see each other's.
  expr.registerFunction('millis', evaluationMillis, '<:n>');
  expr.registerFunction(
    'now',
    function (this: jsonata.Focus, picture?: string, timezone?: string) {
      const fromMillis = this.environment.lookup('fromMillis') as {
        implementation: (ms: number, picture?: string, timezone?: string) => string;
      };
      return fromMillis.implementation(evaluationMillis.call(this), picture, timezone);
    },
    '<s?s?:s>',
  );
  expr.assign(EVALUATE_ENTRY_HOOK as unknown as string, evaluationGuard(part, def.limits.timeoutMs));
  return expr;
}

function evaluationMillis(this: jsonata.Focus): number {
  const timestamp = (this.environment as { timestamp?: Date | null }).timestamp;
  return timestamp ? timestamp.getTime() : Date.now();
}

/** The business key as a string: one non-empty string or a number. */
function businessKeyText(source: string, value: unknown): string {
  const expr = source.length > 80 ? `${source.slice(0, 77)}...` : source;
  const fix = 'it must select one non-empty string or number of the canonical output, e.g. orderId';
  if (value === undefined) {
    throw new BusinessKeyError(`spec.businessKey (${expr}) gave nothing for this output; ${fix}`);
  }
  if (typeof value === 'string') {
    if (value.trim() === '')
      throw new BusinessKeyError(`spec.businessKey (${expr}) gave an empty string; ${fix}`);
    return value;
  }
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  const got = Array.isArray(value)
    ? `${value.length} values`
    : value === null
      ? 'null'
      : typeof value === 'object'
        ? 'an object'
        : `a ${typeof value}`;
  throw new BusinessKeyError(`spec.businessKey (${expr}) gave ${got}; ${fix}`);
}

/** JSONata may wrap what a function threw; a suspension passes through either way. */
function isSuspended(err: unknown): boolean {
  for (let e = err, i = 0; e && i < 4; i++) {
    if (e instanceof EvaluationSuspended) return true;
    e = (e as { error?: unknown; cause?: unknown }).error ?? (e as { cause?: unknown }).cause;
  }
  return false;
}
