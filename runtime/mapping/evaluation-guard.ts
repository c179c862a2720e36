// The time limit of an evaluation, and its manners: JSONata awaits the `__evaluate_entry` hook before
// every node it evaluates, and this hook stops an evaluation that has run too long and lets the event
// loop run while a long one is in progress.
import { MappingLimitError, type MappingPart } from './errors.ts';

/**
 * An evaluation that has run this long without the event loop getting a turn parks itself until the
 * next turn, so a slow mapping delays other messages, health probes and NATS heartbeats by at most
 * about this much rather than by its whole timeout.
 */
export const YIELD_AFTER_MS = 10;

/** The environment symbol JSONata looks up, and awaits, on entry to every node. */
export const EVALUATE_ENTRY_HOOK = Symbol.for('jsonata.__evaluate_entry');

interface EvaluationClock {
  started: number;
  /** When the evaluation last got the event loop back. */
  sliceStarted: number;
  /** Time spent parked for other work: not the expression's doing, so not charged to its timeout. */
  parked: number;
}

/**
 * One clock per evaluation, keyed by its root environment (JSONata makes one per evaluate() call and
 * every nested frame points at it as `base`), so concurrent evaluations of one expression never share
 * state, and a clock goes away with its evaluation.
 */
const clocks = new WeakMap<object, EvaluationClock>();

export type EvaluateEntryHook = (
  node: unknown,
  input: unknown,
  environment: { base: object },
) => Promise<void> | undefined;

export function evaluationGuard(part: MappingPart, timeoutMs: number): EvaluateEntryHook {
  return (_node, _input, environment) => {
    const now = Date.now();
    const clock = clocks.get(environment.base);
    if (clock === undefined) {
      clocks.set(environment.base, { started: now, sliceStarted: now, parked: 0 });
      return undefined;
    }
    if (now - clock.started - clock.parked > timeoutMs)
      throw new MappingLimitError(part, 'timeoutMs', timeoutMs);
    // Every await inside JSONata is a microtask, which never lets timers or I/O run; a macrotask does.
    if (now - clock.sliceStarted < YIELD_AFTER_MS) return undefined;
    return new Promise((resolve) => {
      setImmediate(() => {
        const resumed = Date.now();
        clock.parked += resumed - now;
        clock.sliceStarted = resumed;
        resolve();
      });
    });
  };
}
