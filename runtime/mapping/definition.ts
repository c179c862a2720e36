// A CanonicalMapping spec, its lookup tables resolved, as what the engine runs: the inbound or the
// outbound definition, and its embedded test cases run by direction. Shared by the operator, the CLI
// and the tests, so all of them judge a mapping the same way. Pure.
import type { CanonicalMappingSpec } from '../../api/canonical-mapping.ts';
import { compileMapping } from './engine.ts';
import { MappingCompileError } from './errors.ts';
import { compileOutboundMapping, type OutboundMappingDefinition } from './outbound.ts';
import { runOutboundTestCases, runTestCases } from './test-cases.ts';
import type { MappingDefinition, TestCase, TestCaseResult } from './types.ts';

export type ResolvedLookups = MappingDefinition['lookups'];

export function inboundDefinition(
  name: string,
  generation: number,
  spec: CanonicalMappingSpec,
  lookups: ResolvedLookups,
): MappingDefinition {
  if (spec.businessKey === undefined) {
    // The schema requires it of inbound mappings; an outbound one was referenced where an inbound belongs.
    throw new MappingCompileError(
      `${name} is an outbound mapping (no spec.businessKey): a flow's mappingRef needs an inbound one`,
      { part: 'businessKey' },
    );
  }
  return {
    name,
    generation,
    entity: spec.entity,
    expression: spec.expression,
    businessKey: spec.businessKey,
    lookups,
    limits: spec.limits,
  };
}

export function outboundDefinition(
  name: string,
  generation: number,
  spec: CanonicalMappingSpec,
  lookups: ResolvedLookups,
): OutboundMappingDefinition {
  return {
    name,
    generation,
    entity: spec.entity,
    expression: spec.expression,
    output: {
      format: spec.output?.format ?? 'json',
      ...(spec.output?.contentType ? { contentType: spec.output.contentType } : {}),
    },
    headers: spec.headers ?? {},
    params: spec.params ?? {},
    lookups,
    limits: spec.limits,
  };
}

/** The spec's test cases as the engine takes them. */
export function testCasesOf(spec: CanonicalMappingSpec): TestCase[] {
  return spec.tests.map((t) => ({
    name: t.name,
    input: t.input,
    expected: t.expected,
    match: t.match,
    xrefs: t.xrefs,
    ...(t.expectedHeaders ? { expectedHeaders: t.expectedHeaders } : {}),
    ...(t.expectedParams ? { expectedParams: t.expectedParams } : {}),
    ...(t.expectedError !== undefined ? { expectedError: t.expectedError } : {}),
  }));
}

/** Compile the mapping (throws its MappingCompileError) without running anything. */
export function compileSpec(name: string, spec: CanonicalMappingSpec, lookups: ResolvedLookups): void {
  if (spec.direction === 'outbound') compileOutboundMapping(outboundDefinition(name, 0, spec, lookups));
  else compileMapping(inboundDefinition(name, 0, spec, lookups));
}

/** Run the spec's embedded test cases, by its direction. */
export function runSpecTests(
  name: string,
  spec: CanonicalMappingSpec,
  lookups: ResolvedLookups,
): Promise<TestCaseResult[]> {
  const tests = testCasesOf(spec);
  return spec.direction === 'outbound'
    ? runOutboundTestCases(outboundDefinition(name, 0, spec, lookups), tests)
    : runTestCases(inboundDefinition(name, 0, spec, lookups), tests);
}
