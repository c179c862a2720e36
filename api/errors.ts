// The one base of Tally's errors, for every layer: a `name` (the class), a stable `code` callers and
// tests can match, the `cause` kept (ErrorOptions), and a message that says what to fix. Internal
// control-flow signals that never reach a user (EvaluationSuspended, a lost lease, a transform
// failure already classified) stay plain Errors.

export abstract class TallyError extends Error {
  abstract readonly code: string;
}

/** A TallyError whose code is given when it is thrown (one class, several codes). */
export class CodedError<C extends string = string> extends TallyError {
  readonly code: C;
  constructor(code: C, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}
