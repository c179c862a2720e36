// Secrets arrive as environment variables named in the WorkerConfig (filled from secretKeyRefs by
// the Deployment). A missing one stops the worker at startup with the variable's name.
import { FlowErrorCode, WorkerStartupError } from './errors.ts';

export type Env = Readonly<Record<string, string | undefined>>;

export function requireEnv(env: Env, name: string, usedFor: string): string {
  const value = env[name];
  if (value === undefined || value === '') {
    throw new WorkerStartupError(
      FlowErrorCode.MissingSecret,
      `environment variable ${name} (${usedFor}) is not set; the worker's Deployment fills it from a Secret — check the secretKeyRef and that the Secret exists`,
    );
  }
  return value;
}
