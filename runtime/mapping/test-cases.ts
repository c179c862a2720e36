// The embedded test cases of a CanonicalMapping: run by `tally validate`, `tally mapping test` and the
// operator, so all three judge a mapping the same way and print the same diff.

import { differences } from './compare.ts';
import { compileMapping } from './engine.ts';
import type { CompiledMapping, MappingDefinition, TestCase, TestCaseResult } from './types.ts';

/** Enough lines to see what is wrong; a mapping that is wrong everywhere should not flood a status. */
export const MAX_DIFF_LINES = 40;

export async function runTestCases(def: MappingDefinition, tests: TestCase[]): Promise<TestCaseResult[]> {
  let mapping: CompiledMapping;
  try {
    mapping = compileMapping(def);
  } catch (err) {
    const error = messageOf(err);
    return tests.map((t) => ({ name: t.name, passed: false, error }));
  }
  const results: TestCaseResult[] = [];
  // One at a time: cases are few, and the order of the report should be the order of the spec.
  for (const test of tests) results.push(await runTestCase(mapping, test));
  return results;
}

async function runTestCase(mapping: CompiledMapping, test: TestCase): Promise<TestCaseResult> {
  let output: unknown;
  try {
    ({ output } = await mapping.map(test.input));
  } catch (err) {
    return { name: test.name, passed: false, error: messageOf(err) };
  }
  const lines = differences(test.expected, output, test.match);
  if (lines.length === 0) return { name: test.name, passed: true };
  const shown = lines.slice(0, MAX_DIFF_LINES).map((l) => `  ${l}`);
  if (lines.length > MAX_DIFF_LINES)
    shown.push(`  ... and ${lines.length - MAX_DIFF_LINES} more differences`);
  return { name: test.name, passed: false, diff: shown.join('\n') };
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
