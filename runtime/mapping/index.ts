// The mapping engine: compile a CanonicalMapping once, map payloads to validated canonical entities,
// run its embedded test cases. Pure logic without I/O, shared by the worker, the operator and the CLI.
export { differences, type MatchMode } from './compare.ts';
export { compileMapping } from './engine.ts';
export {
  BusinessKeyError,
  CanonicalValidationError,
  MAPPING_ERROR_CODES,
  MappingCompileError,
  MappingError,
  type MappingErrorCode,
  type MappingErrorReason,
  MappingEvaluationError,
  type MappingLimit,
  MappingLimitError,
  type MappingPart,
  type SourceLocation,
} from './errors.ts';
export { YIELD_AFTER_MS } from './evaluation-guard.ts';
export {
  createLookup,
  type LookupTables,
  type MappingFunction,
  mappingFunctions,
  money,
  moneyAdd,
  moneyMul,
  moneySub,
  moneySum,
} from './functions.ts';
export { formatPath } from './paths.ts';
export { formatTestResults, MAX_DIFF_LINES, runTestCases } from './test-cases.ts';
export type {
  CompiledMapping,
  MappingDefinition,
  MappingResult,
  TestCase,
  TestCaseResult,
} from './types.ts';
