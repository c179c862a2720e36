// Reconcile outcomes that are errors: throw = retry with backoff; TerminalError = do not retry,
// wait for the resource to change (controller-runtime's reconcile.TerminalError).
import { TallyError } from '../api/errors.ts';
import type { FlowReason } from './reconcile/flow.ts';
import type { MappingReason } from './reconcile/mapping.ts';
import type { PolicyReason } from './reconcile/policy.ts';

export const OPERATOR_ERROR_CODES = { terminal: 'TERMINAL', lookup: 'LOOKUP_NOT_FOUND' } as const;

/** A bounded metric label: only the reason constants of the reconcilers. */
export type TerminalReason = FlowReason | MappingReason | PolicyReason;

/**
 * The resource cannot progress until the user changes it (an invalid spec, a missing or failing
 * mapping, a setting JetStream cannot change). Its status already says so (Stalled, `reason`);
 * the controller counts it with the same reason and waits for the next change instead of retrying.
 */
export class TerminalError extends TallyError {
  override name = 'TerminalError';
  readonly code = OPERATOR_ERROR_CODES.terminal;
  readonly reason: TerminalReason;

  constructor(reason: TerminalReason, message: string, options?: ErrorOptions) {
    super(message, options);
    this.reason = reason;
  }
}

export class LookupNotFoundError extends TallyError {
  override name = 'LookupNotFoundError';
  readonly code = OPERATOR_ERROR_CODES.lookup;
}
