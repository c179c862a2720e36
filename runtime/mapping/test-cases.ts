// The embedded test cases of a CanonicalMapping: run by `tally validate`, `tally mapping test` and the
// operator, so all three judge a mapping the same way and print the same diff. Inbound cases map a
// source payload to the canonical entity; outbound cases render a canonical entity (checked against
// its schema first) into the target's request. Both see the case's cross-reference fixtures.

import type { CanonicalEntity } from '../../api/canonical/index.ts';
import { canonicalSchemas } from '../../api/canonical/index.ts';
import { fixtureSource, withXrefs } from '../xref/context.ts';
import type { XrefRecord } from '../xref/record.ts';
import { differences } from './compare.ts';
import { compileMapping } from './engine.ts';
import {
  type CompiledOutboundMapping,
  compileOutboundMapping,
  type OutboundMappingDefinition,
} from './outbound.ts';
import { formatPath } from './paths.ts';
import type { MappingDefinition, TestCase, TestCaseResult } from './types.ts';

/** Enough lines to see what is wrong; a mapping that is wrong everywhere should not flood a status. */
export const MAX_DIFF_LINES = 40;

/** What one case produced: the output compared with `expected`, and the outbound extras. */
interface Produced {
  output: unknown;
  headers?: Record<string, string>;
  params?: Record<string, string>;
}

type Runner = (test: TestCase, bindings: Record<string, unknown>) => Promise<Produced>;

export async function runTestCases(def: MappingDefinition, tests: TestCase[]): Promise<TestCaseResult[]> {
  let runner: Runner;
  try {
    const mapping = compileMapping(def);
    runner = async (test, bindings) => ({ output: (await mapping.map(test.input, bindings)).output });
  } catch (err) {
    return compileFailed(tests, err);
  }
  return runAll(tests, runner);
}

export async function runOutboundTestCases(
  def: OutboundMappingDefinition,
  tests: TestCase[],
): Promise<TestCaseResult[]> {
  let mapping: CompiledOutboundMapping;
  try {
    mapping = compileOutboundMapping(def);
  } catch (err) {
    return compileFailed(tests, err);
  }
  const schema = canonicalSchemas[def.entity as CanonicalEntity];
  return runAll(tests, async (test, bindings) => {
    // The input is what a flow hands the sink: a valid canonical entity, defaults applied.
    const parsed = schema.safeParse(test.input);
    if (!parsed.success) {
      const problems = parsed.error.issues.map((i) => `${formatPath(i.path) || '(root)'}: ${i.message}`);
      throw new Error(`the case's input is not a valid ${def.entity}: ${problems.join('; ')}`);
    }
    const request = await mapping.render(parsed.data, bindings);
    return { output: request.value, headers: request.headers, params: request.params };
  });
}

function compileFailed(tests: TestCase[], err: unknown): TestCaseResult[] {
  const error = messageOf(err);
  return tests.map((t) => ({ name: t.name, passed: false, error }));
}

async function runAll(tests: TestCase[], run: Runner): Promise<TestCaseResult[]> {
  const results: TestCaseResult[] = [];
  // One at a time: cases are few, and the order of the report should be the order of the spec.
  for (const test of tests) results.push(await runTestCase(test, run));
  return results;
}

async function runTestCase(test: TestCase, run: Runner): Promise<TestCaseResult> {
  const source = fixtureSource((test.xrefs ?? []).map((x): XrefRecord => ({ ...x, provenance: {} })));
  let produced: Produced;
  try {
    produced = await withXrefs(source, (bindings) => run(test, bindings));
  } catch (err) {
    const message = messageOf(err);
    if (test.expectedError !== undefined && message.includes(test.expectedError)) {
      return { name: test.name, passed: true };
    }
    return { name: test.name, passed: false, error: message };
  }
  if (test.expectedError !== undefined) {
    return {
      name: test.name,
      passed: false,
      error: `expected an error containing ${JSON.stringify(test.expectedError)}, but the mapping succeeded`,
    };
  }
  const lines = differences(test.expected, produced.output, test.match);
  if (test.expectedHeaders) {
    const got = lowerKeys(produced.headers ?? {});
    lines.push(...prefixed('headers', differences(lowerKeys(test.expectedHeaders), got, 'partial')));
  }
  if (test.expectedParams) {
    lines.push(...prefixed('params', differences(test.expectedParams, produced.params ?? {}, 'partial')));
  }
  if (lines.length === 0) return { name: test.name, passed: true };
  const shown = lines.slice(0, MAX_DIFF_LINES).map((l) => `  ${l}`);
  if (lines.length > MAX_DIFF_LINES)
    shown.push(`  ... and ${lines.length - MAX_DIFF_LINES} more differences`);
  return { name: test.name, passed: false, diff: shown.join('\n') };
}

/** HTTP header names are case-insensitive. */
function lowerKeys(h: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), v]));
}

function prefixed(what: string, lines: string[]): string[] {
  return lines.map((l) => `${what}.${l}`);
}

/**
 * One message for a CLI, a status condition or an Event:
 *
 *     default/shopify-order: 2/3 cases passed; failed: cancelled-order-status
 *     cancelled-order-status:
 *       status: expected "cancelled", got "pending"
 */
export function formatTestResults(mappingName: string, results: TestCaseResult[]): string {
  if (results.length === 0) return `${mappingName}: no test cases`;
  const failed = results.filter((r) => !r.passed);
  const summary = `${mappingName}: ${results.length - failed.length}/${results.length} cases passed`;
  if (failed.length === 0) return summary;
  const lines = [`${summary}; failed: ${failed.map((r) => r.name).join(', ')}`];
  for (const r of failed) {
    lines.push(`${r.name}:`);
    if (r.error !== undefined) lines.push(indent(`error: ${r.error}`));
    if (r.diff !== undefined) lines.push(r.diff);
  }
  return lines.join('\n');
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
