// The ways a mapping can fail. Every one is permanent: the same mapping given the same payload fails the
// same way, so a worker dead-letters the message instead of retrying it. `reason` is a bounded label,
// shared by logs, the dead-letter record and the `reason` label of the failure metrics.

import type { z } from 'zod';
import { TallyError } from '../../api/errors.ts';
import { formatPath } from './paths.ts';

export const MAPPING_ERROR_CODES = {
  compile: 'MAPPING_COMPILE',
  evaluation: 'MAPPING_EVALUATION',
  limit: 'MAPPING_LIMIT',
  validation: 'CANONICAL_INVALID',
  businessKey: 'BUSINESS_KEY',
} as const;
export type MappingErrorCode = (typeof MAPPING_ERROR_CODES)[keyof typeof MAPPING_ERROR_CODES];

export type MappingErrorReason = 'compile' | 'evaluation' | 'limit' | 'validation' | 'business_key';

/** Which JSONata expression of the mapping an error belongs to, named as the CanonicalMapping field. */
export type MappingPart = 'expression' | 'businessKey' | `headers.${string}` | `params.${string}`;

/** Where in an expression something went wrong (JSONata reports a character offset). */
export interface SourceLocation {
  /** JSONata's position: the 1-based offset of the last character of the offending token. */
  position: number;
  line: number;
  column: number;
  /** The token JSONata points at, when it names one. */
  token?: string;
}

export abstract class MappingError extends TallyError {
  abstract override readonly code: MappingErrorCode;
  abstract readonly reason: MappingErrorReason;
  /** Retrying cannot help: the mapping or the payload has to change. */
  readonly permanent = true;
}

export class MappingCompileError extends MappingError {
  override name = 'MappingCompileError';
  readonly code = MAPPING_ERROR_CODES.compile;
  readonly reason = 'compile';
  readonly part: MappingPart | 'limits';
  readonly location: SourceLocation | undefined;
  /** JSONata's error code, e.g. S0202. */
  readonly jsonataCode: string | undefined;

  constructor(
    message: string,
    options: {
      part: MappingPart | 'limits';
      location?: SourceLocation;
      jsonataCode?: string;
      cause?: unknown;
    },
  ) {
    super(message, { cause: options.cause });
    this.part = options.part;
    this.location = options.location;
    this.jsonataCode = options.jsonataCode;
  }
}

export class MappingEvaluationError extends MappingError {
  override name = 'MappingEvaluationError';
  readonly code = MAPPING_ERROR_CODES.evaluation;
  readonly reason = 'evaluation';
  /** Absent while the error is still inside a custom function; the engine adds it. */
  readonly part: MappingPart | undefined;
  readonly location: SourceLocation | undefined;
  readonly jsonataCode: string | undefined;

  constructor(
    message: string,
    options: { part?: MappingPart; location?: SourceLocation; jsonataCode?: string; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.part = options.part;
    this.location = options.location;
    this.jsonataCode = options.jsonataCode;
  }
}

export type MappingLimit = 'timeoutMs' | 'maxDepth';

export class MappingLimitError extends MappingError {
  override name = 'MappingLimitError';
  readonly code = MAPPING_ERROR_CODES.limit;
  readonly reason = 'limit';
  readonly part: MappingPart;
  readonly limit: MappingLimit;
  /** The configured value of the limit that was exceeded. */
  readonly value: number;

  constructor(part: MappingPart, limit: MappingLimit, value: number, options: { cause?: unknown } = {}) {
    const what =
      limit === 'timeoutMs'
        ? `ran longer than spec.limits.timeoutMs (${value} ms) and was stopped; look for a loop that does not end or work that grows with the payload, or raise spec.limits.timeoutMs`
        : `nested deeper than spec.limits.maxDepth (${value}) and was stopped; look for recursion that does not end, or raise spec.limits.maxDepth`;
    super(`spec.${part} ${what}`, { cause: options.cause });
    this.part = part;
    this.limit = limit;
    this.value = value;
  }
}

export class CanonicalValidationError extends MappingError {
  override name = 'CanonicalValidationError';
  readonly code = MAPPING_ERROR_CODES.validation;
  readonly reason = 'validation';
  readonly entity: string;
  /** The zod issues, for callers that want more than the message. */
  readonly issues: readonly z.core.$ZodIssue[];

  constructor(entity: string, issues: readonly z.core.$ZodIssue[], options: { cause?: unknown } = {}) {
    const lines = issues.map((i) => `  ${formatPath(i.path)}: ${i.message}`);
    super(
      `the output of spec.expression is not a valid ${entity} (${issues.length} ${issues.length === 1 ? 'problem' : 'problems'}); fix the expression for:\n${lines.join('\n')}`,
      { cause: options.cause },
    );
    this.entity = entity;
    this.issues = issues;
  }
}

export class BusinessKeyError extends MappingError {
  override name = 'BusinessKeyError';
  readonly code = MAPPING_ERROR_CODES.businessKey;
  readonly reason = 'business_key';
}

/**
 * Not a failure: a function of the expression needs data that must be fetched first (a
 * cross-reference, master data). The caller fetches it and evaluates again (../xref/context.ts).
 */
export class EvaluationSuspended extends Error {
  override name = 'EvaluationSuspended';
}
