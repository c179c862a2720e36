// CanonicalMapping reconcile: compile the expression, run its embedded test cases, report on
// status. Flows using the mapping are requeued by the controller when it changes.
import { type CanonicalMappingSpec, canonicalMappingSpecSchema } from '../../api/canonical-mapping.ts';
import { compileSpec, type ResolvedLookups, runSpecTests } from '../../runtime/mapping/definition.ts';
import { formatTestResults, MappingError } from '../../runtime/mapping/index.ts';
import type { MappingDefinition } from '../../runtime/mapping/types.ts';
import { LookupNotFoundError } from '../errors.ts';
import { CANONICAL_MAPPINGS } from '../kube/resources.ts';
import type { Outcome } from '../status/conditions.ts';
import { describeSpecIssues } from '../status/spec-issues.ts';
import { type ReconcileContext, type ReconcileResult, stall, writeStatus } from './context.ts';
import { resolveLookups } from './lookups.ts';

export const MAPPING_REASONS = {
  testsPassed: 'TestsPassed',
  testsFailed: 'TestsFailed',
  compileFailed: 'CompileFailed',
  invalidSpec: 'InvalidSpec',
  lookupNotFound: 'LookupNotFound',
} as const;
export type MappingReason = (typeof MAPPING_REASONS)[keyof typeof MAPPING_REASONS];

export async function reconcileMapping(
  ctx: ReconcileContext,
  namespace: string,
  name: string,
): Promise<ReconcileResult> {
  // 1. Read the world.
  const mapping = ctx.mappings.get(namespace, name);
  if (!mapping || mapping.metadata.deletionTimestamp) return {};
  const parsed = canonicalMappingSpecSchema.safeParse(mapping.spec, { reportInput: true });
  if (!parsed.success) {
    return stall(ctx, CANONICAL_MAPPINGS, mapping, {
      reason: MAPPING_REASONS.invalidSpec,
      message: describeSpecIssues(parsed.error),
    });
  }
  const spec = parsed.data;

  // 2. Resolve lookup tables (ConfigMaps are not watched: re-check periodically while missing).
  let lookups: MappingDefinition['lookups'];
  try {
    lookups = await resolveLookups(ctx.client, namespace, spec.lookups);
  } catch (err) {
    if (!(err instanceof LookupNotFoundError)) throw err;
    await writeStatus(ctx, CANONICAL_MAPPINGS, mapping, {
      ready: false,
      progressing: true,
      reason: MAPPING_REASONS.lookupNotFound,
      message: err.message,
    });
    return { requeueAfterMs: 30_000 };
  }

  // 3. Compile and run the embedded tests (inbound or outbound, by spec.direction).
  const { outcome, passed, failed } = await testOutcome(`${namespace}/${name}`, spec, lookups);
  const fields = { testsPassed: passed, testsFailed: failed };
  if (outcome.stalled) return stall(ctx, CANONICAL_MAPPINGS, mapping, outcome, fields);
  await writeStatus(ctx, CANONICAL_MAPPINGS, mapping, outcome, fields);
  return {};
}

async function testOutcome(
  name: string,
  spec: CanonicalMappingSpec,
  lookups: ResolvedLookups,
): Promise<{ outcome: Outcome & { reason: MappingReason }; passed: number; failed: number }> {
  try {
    compileSpec(name, spec, lookups);
  } catch (err) {
    if (!(err instanceof MappingError)) throw err;
    return {
      outcome: { ready: false, stalled: true, reason: MAPPING_REASONS.compileFailed, message: err.message },
      passed: 0,
      failed: spec.tests.length,
    };
  }
  const results = await runSpecTests(name, spec, lookups);
  const failed = results.filter((r) => !r.passed).length;
  const passed = results.length - failed;
  const message = formatTestResults(name, results);
  return failed === 0
    ? { outcome: { ready: true, reason: MAPPING_REASONS.testsPassed, message }, passed, failed }
    : {
        outcome: { ready: false, stalled: true, reason: MAPPING_REASONS.testsFailed, message },
        passed,
        failed,
      };
}
