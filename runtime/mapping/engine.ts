// Compile a mapping once, then map payloads: evaluate the JSONata expression under the mapping's limits,
// validate the result against the canonical entity, and evaluate the business key over it.
import jsonata from 'jsonata';
import { canonicalSchemas } from '../../api/canonical/index.ts';
import {
  BusinessKeyError,
  CanonicalValidationError,
  MappingCompileError,
  type MappingPart,
} from './errors.ts';
import { EVALUATE_ENTRY_HOOK, evaluationGuard } from './evaluation-guard.ts';
import { mappingFunctions } from './functions.ts';
import { toJsonValue } from './json.ts';
import { compileError, evaluationError } from './jsonata-errors.ts';
import type { CompiledMapping, MappingDefinition, MappingResult } from './types.ts';

export function compileMapping(def: MappingDefinition): CompiledMapping {
  // Our own copy: later changes to the caller's object must not change a compiled mapping.
  const definition = structuredClone(def);
  checkLimits(definition.limits);
  const expression = compileExpression('expression', definition.expression, definition);
  const businessKey = compileExpression('businessKey', definition.businessKey, definition);
  const schema = canonicalSchemas[definition.entity];

  async function evaluate(part: MappingPart, expr: jsonata.Expression, source: string, input: unknown) {
    try {
      return await expr.evaluate(input);
    } catch (err) {
      throw evaluationError(part, source, definition.limits, err);
    }
  }

  return {
    definition,
    async map(input: unknown): Promise<MappingResult> {
      const raw = toJsonValue(await evaluate('expression', expression, definition.expression, input));
      const parsed = schema.safeParse(raw);
      if (!parsed.success) {
        throw new CanonicalValidationError(definition.entity, parsed.error.issues, { cause: parsed.error });
      }
      const output = parsed.data as Record<string, unknown>;
      const key = businessKeyText(
        definition.businessKey,
        await evaluate('businessKey', businessKey, definition.businessKey, output),
      );
      return { output, key };
    },
  };
}

function checkLimits(limits: MappingDefinition['limits']): void {
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

function compileExpression(part: MappingPart, source: string, def: MappingDefinition): jsonata.Expression {
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
