// CLI error classes: a UsageError exits 2, everything else 1.
export const CLI_ERROR_CODES = {
  usage: 'USAGE',
  input: 'INPUT_UNREADABLE',
} as const;

export class UsageError extends Error {
  override name = 'UsageError';
  readonly code = CLI_ERROR_CODES.usage;
}

export class InputError extends Error {
  override name = 'InputError';
  readonly code = CLI_ERROR_CODES.input;
}
