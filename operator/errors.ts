// Reconcile outcomes that are errors: throw = retry with backoff; TerminalError = do not retry,
// wait for the resource to change (controller-runtime's reconcile.TerminalError).
export const OPERATOR_ERROR_CODES = { terminal: 'TERMINAL', lookup: 'LOOKUP_NOT_FOUND' } as const;

export class TerminalError extends Error {
  override name = 'TerminalError';
  readonly code = OPERATOR_ERROR_CODES.terminal;
}

export class LookupNotFoundError extends Error {
  override name = 'LookupNotFoundError';
  readonly code = OPERATOR_ERROR_CODES.lookup;
}
