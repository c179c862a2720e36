// The namespace's canonical stream: every flow publishes its canonical events there (besides its
// own sinks), so reconciliation policies can select them by entity and channel. Pure.
import type { ReconciliationPolicySpec } from '../../api/reconciliation-policy.ts';

export const CANONICAL_SINK_NAME = 'tally-canonical';

export function canonicalStreamName(namespace: string): string {
  return `tally_canonical_${namespace}`;
}

export function canonicalSubject(namespace: string, entity: string, channel: string): string {
  return `tally.${namespace}.canonical.${entity}.${channel}`;
}

const NS_PER_MS = 1_000_000;

export function canonicalStreamConfig(namespace: string) {
  return {
    name: canonicalStreamName(namespace),
    subjects: [`tally.${namespace}.canonical.>`],
    retention: 'limits' as const,
    storage: 'file' as const,
    num_replicas: 1,
    // Reconciliation rebuilds its state from here: keep more than the longest window + lateness.
    max_age: 35 * 24 * 3600_000 * NS_PER_MS,
    duplicate_window: 2 * 60_000 * NS_PER_MS,
    discard: 'old' as const,
  };
}

export function policyNames(namespace: string, name: string) {
  return {
    worker: `tally-recon-${name}`,
    stateBucket: `tally_recon_${namespace}_${name}`,
    exceptionsSubject: `tally.${namespace}.recon.${name}.exceptions`,
    reportsSubject: `tally.${namespace}.recon.${name}.reports`,
  };
}

/** Subject filters for the two sides of a policy on the canonical stream. */
export function policyFilterSubjects(namespace: string, spec: ReconciliationPolicySpec): string[] {
  const subjects = new Set<string>();
  for (const side of [spec.channel, spec.erp]) {
    const channels = side.channels?.length ? side.channels : ['*'];
    for (const ch of channels) subjects.add(canonicalSubject(namespace, side.entity, ch));
  }
  // JetStream rejects overlapping filters: a wildcard for an entity covers its specific channels.
  const list = [...subjects];
  return list.filter((s) => !list.some((o) => o !== s && o.endsWith('.*') && s.startsWith(o.slice(0, -1))));
}

/** Reports and exceptions of every policy in a namespace, kept for consumers (ticketing, BI). */
export function reconStreamConfig(namespace: string) {
  return {
    name: `tally_recon_${namespace}`,
    subjects: [`tally.${namespace}.recon.>`],
    retention: 'limits' as const,
    storage: 'file' as const,
    num_replicas: 1,
    max_age: 90 * 24 * 3600_000 * NS_PER_MS,
    duplicate_window: 10 * 60_000 * NS_PER_MS,
    discard: 'old' as const,
  };
}
