// JSONata throws plain objects ({code, position, token, message}); these turn them, and anything else an
// evaluation can throw, into the MappingError classes, with a line and column people can find.
import {
  BusinessKeyError,
  MappingCompileError,
  MappingError,
  MappingEvaluationError,
  MappingLimitError,
  type MappingPart,
  type SourceLocation,
} from './errors.ts';
import type { MappingDefinition } from './types.ts';

interface JsonataError {
  code: string;
  message?: string;
  position?: number;
  token?: string;
  /** $eval wraps the error of the expression it evaluated here. */
  error?: unknown;
}

function isJsonataError(err: unknown): err is JsonataError {
  return (
    typeof err === 'object' &&
    err !== null &&
    typeof (err as JsonataError).code === 'string' &&
    /^[SDTU][0-9]{4}$/.test((err as JsonataError).code)
  );
}

/** Line and column (1-based) of a JSONata position: the 1-based offset of the token's last character. */
export function locate(
  source: string,
  position: number | undefined,
  token?: string,
): SourceLocation | undefined {
  if (position === undefined || !Number.isInteger(position) || position < 0) return undefined;
  const offset = Math.min(Math.max(position - 1, 0), source.length);
  const before = source.slice(0, offset);
  const line = before.split('\n').length;
  const column = offset - (before.lastIndexOf('\n') + 1) + 1;
  return token === undefined ? { position, line, column } : { position, line, column, token };
}

function where(location: SourceLocation | undefined): string {
  if (!location) return '';
  const near =
    location.token === undefined
      ? ''
      : location.token === '(end)'
        ? ' (at the end)'
        : ` (near ${JSON.stringify(location.token)})`;
  return ` at line ${location.line}, column ${location.column}${near}`;
}

export function compileError(part: MappingPart, source: string, err: unknown): MappingCompileError {
  if (!isJsonataError(err)) {
    return new MappingCompileError(`spec.${part} could not be compiled: ${String(err)}`, {
      part,
      cause: err,
    });
  }
  const location = locate(source, err.position, err.token);
  return new MappingCompileError(
    `spec.${part} has a syntax error${where(location)}: ${err.message ?? err.code} (JSONata ${err.code})`,
    { part, ...(location ? { location } : {}), jsonataCode: err.code, cause: err },
  );
}

/** $eval reports the failure of the expression it ran as D3121 with that failure in `error`. */
function unwrapEval(err: unknown): unknown {
  let current = err;
  while (isJsonataError(current) && current.code === 'D3121' && current.error !== undefined) {
    current = current.error;
  }
  return current;
}

/** Whatever an evaluation threw, as the MappingError that says what to fix. */
export function evaluationError(
  part: MappingPart,
  source: string,
  limits: MappingDefinition['limits'],
  thrown: unknown,
): MappingError {
  const err = unwrapEval(thrown);
  if (err instanceof MappingEvaluationError && err.part === undefined) {
    // Thrown by one of our functions; JSONata has since added where it was called from.
    const e = err as MappingEvaluationError & { position?: number };
    const location = locate(source, e.position);
    const converted = new MappingEvaluationError(`spec.${part} failed${where(location)}: ${err.message}`, {
      part,
      ...(location ? { location } : {}),
      cause: err,
    });
    return part === 'businessKey' ? new BusinessKeyError(converted.message, { cause: err }) : converted;
  }
  if (err instanceof MappingError) return err;
  if (isJsonataError(err)) {
    if (err.code === 'D1011') return new MappingLimitError(part, 'maxDepth', limits.maxDepth, { cause: err });
    if (err.code === 'D1012')
      return new MappingLimitError(part, 'timeoutMs', limits.timeoutMs, { cause: err });
    const location = locate(source, err.position, err.token);
    const message = `spec.${part} failed${where(location)}: ${err.message ?? err.code} (JSONata ${err.code})`;
    if (part === 'businessKey') return new BusinessKeyError(message, { cause: err });
    return new MappingEvaluationError(message, {
      part,
      ...(location ? { location } : {}),
      jsonataCode: err.code,
      cause: err,
    });
  }
  if (err instanceof RangeError && /call stack/i.test(err.message)) {
    // The JavaScript stack ran out before the depth limit did.
    return new MappingLimitError(part, 'maxDepth', limits.maxDepth, { cause: err });
  }
  const message = `spec.${part} failed: ${err instanceof Error ? err.message : String(err)}`;
  if (part === 'businessKey') return new BusinessKeyError(message, { cause: err });
  return new MappingEvaluationError(message, { part, cause: err });
}
