// Option values every `tally` command reads the same way: flow references and positive integers.
import { DNS_LABEL } from '../api/common.ts';
import type { FlowRef } from '../runtime/nats/flow-resources.ts';
import { UsageError } from './errors.ts';

/** `[NAMESPACE/]NAME` as DNS labels (what the CRD allows, and safe in subjects and stream names). */
export function parseFlowRef(text: string, defaultNamespace = 'default'): FlowRef {
  const parts = text.split('/');
  if (parts.length > 2) throw new UsageError(`--flow ${text}: expected [NAMESPACE/]NAME`);
  const [namespace, name] = parts.length === 2 ? [parts[0]!, parts[1]!] : [defaultNamespace, parts[0]!];
  for (const [what, v] of [
    ['namespace', namespace],
    ['name', name],
  ] as const) {
    if (!DNS_LABEL.test(v))
      throw new UsageError(`--flow ${text}: the ${what} "${v}" is not a DNS label (lowercase a-z, 0-9, -)`);
  }
  return { namespace, name };
}

/** A whole number >= 1 given on the command line as `what`. */
export function positiveInt(text: string, what: string): number {
  if (!/^[0-9]+$/.test(text) || Number(text) < 1 || !Number.isSafeInteger(Number(text)))
    throw new UsageError(`${what} ${text}: expected a positive integer`);
  return Number(text);
}
