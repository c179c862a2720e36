// The contract of the mapping engine: what the worker, the operator and the CLI call.
// Implementation: ./engine.ts (compile + evaluate with limits), ./test-cases.ts (embedded tests).
import type { z } from 'zod';
import type { workerMappingSchema } from '../../api/worker-config.ts';

/** A mapping ready to run: the CanonicalMapping spec with lookup tables resolved. */
export type MappingDefinition = z.output<typeof workerMappingSchema>;

export interface MappingResult {
  /** The canonical entity, validated against its schema (defaults applied). */
  output: Record<string, unknown>;
  /** The business key (the value of the businessKey expression, as a string). */
  key: string;
}

export interface CompiledMapping {
  readonly definition: MappingDefinition;
  /**
   * Map one source payload. Rejects with one of the MappingError classes of ./errors.ts. `bindings`
   * are variables of this evaluation only (the cross-reference context).
   */
  map(input: unknown, bindings?: Record<string, unknown>): Promise<MappingResult>;
}

export interface TestCase {
  name: string;
  input: unknown;
  expected: unknown;
  match: 'exact' | 'partial';
  /** What the cross-reference store holds while the case runs. */
  xrefs?: readonly { entity: string; key: string; ids: Record<string, string>; data?: unknown }[];
  /** outbound: headers and URL values the mapping must give (others may be present). */
  expectedHeaders?: Record<string, string>;
  expectedParams?: Record<string, string>;
  /** The case must fail with a message containing this. */
  expectedError?: string;
}

export interface TestCaseResult {
  name: string;
  passed: boolean;
  /** A readable diff (expected vs actual) when the output differs. */
  diff?: string;
  /** The error message when the mapping failed instead of producing output. */
  error?: string;
}
