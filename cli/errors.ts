// CLI error classes: a UsageError exits 2, everything else 1.
import { TallyError } from '../api/errors.ts';
export const CLI_ERROR_CODES = {
  usage: 'USAGE',
  input: 'INPUT_UNREADABLE',
} as const;

export class UsageError extends TallyError {
  override name = 'UsageError';
  readonly code = CLI_ERROR_CODES.usage;
}

export class InputError extends TallyError {
  override name = 'InputError';
  readonly code = CLI_ERROR_CODES.input;
}
