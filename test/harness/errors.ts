/** Stable codes for every failure the test harness reports. */
export const HarnessErrorCode = {
  /** A binary from tools/install.sh is missing or not executable. */
  ToolMissing: 'TOOL_MISSING',
  /** A child process exited while we were waiting for it to become ready. */
  ChildExited: 'CHILD_EXITED',
  /** A child process did not become ready in time. */
  ReadyTimeout: 'READY_TIMEOUT',
  /** A child process could not be spawned at all. */
  SpawnFailed: 'SPAWN_FAILED',
  /** A helper command (openssl, kubectl) failed. */
  CommandFailed: 'COMMAND_FAILED',
  /** installCrds found no manifest to apply. */
  NoCrds: 'NO_CRDS',
} as const;

export type HarnessErrorCode = (typeof HarnessErrorCode)[keyof typeof HarnessErrorCode];

export class HarnessError extends Error {
  override readonly name = 'HarnessError';
  readonly code: HarnessErrorCode;

  constructor(code: HarnessErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
