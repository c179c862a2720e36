// Pure kstatus-style conditions: Ready, Reconciling, Stalled. Rebuilt from the world on every
// reconcile; lastTransitionTime only moves when a condition's status changes.

import type { Condition } from '../../api/common.ts';
import { canonicalJson } from '../../api/json.ts';

export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface Outcome {
  ready: boolean;
  reason: string;
  message: string;
  /** Waiting for something that will happen by itself (a rollout, NATS coming back). */
  progressing?: boolean;
  /** Cannot progress until the user changes something. */
  stalled?: boolean;
}

export function conditionsFor(
  outcome: Outcome,
  generation: number,
  previous: Condition[] | undefined,
  now: Date,
): Condition[] {
  const make = (type: string, status: ConditionStatus, reason: string, message: string): Condition => {
    const old = previous?.find((c) => c.type === type);
    return {
      type,
      status,
      reason,
      message,
      observedGeneration: generation,
      lastTransitionTime:
        old && old.status === status ? old.lastTransitionTime : now.toISOString().replace(/\.\d+Z$/, 'Z'),
    };
  };
  const out = [make('Ready', outcome.ready ? 'True' : 'False', outcome.reason, outcome.message)];
  // kstatus: abnormal-true conditions are present only while true.
  if (outcome.progressing) out.push(make('Reconciling', 'True', outcome.reason, outcome.message));
  if (outcome.stalled) out.push(make('Stalled', 'True', outcome.reason, outcome.message));
  return out;
}

/** Status equality ignoring key order, so unchanged status is never written. */
export function sameStatus(a: unknown, b: unknown): boolean {
  return canonicalJson(a) === canonicalJson(b);
}
