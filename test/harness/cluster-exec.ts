// Short-lived helper commands of the kube tier (ip, iptables, ctr, docker, openssl ...): always bounded
// by a timeout, never a shell, output captured.
import { spawn } from 'node:child_process';
import { HarnessError, HarnessErrorCode } from './errors.ts';

export interface CommandResult {
  /** Exit code; -1 when killed by the timeout or not started. */
  code: number;
  stdout: string;
  stderr: string;
}

export interface CommandOptions {
  /** Default 60 000 ms; then SIGKILL. */
  timeoutMs?: number;
  /** Written to stdin. */
  input?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** Runs a command; never throws on a non-zero exit (inspect `code`). */
export function runCommand(
  command: string,
  args: readonly string[],
  options: CommandOptions = {},
): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: options.timeoutMs ?? 60_000,
      killSignal: 'SIGKILL',
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.once('error', (error) => resolve({ code: -1, stdout: '', stderr: error.message }));
    child.once('close', (code) =>
      resolve({
        code: code ?? -1,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      }),
    );
    child.stdin.on('error', () => {
      // the command may exit before reading stdin
    });
    child.stdin.end(options.input ?? '');
  });
}

/** Runs a command and returns its stdout; throws COMMAND_FAILED with its stderr on a non-zero exit. */
export async function mustRun(
  command: string,
  args: readonly string[],
  options: CommandOptions = {},
): Promise<string> {
  const r = await runCommand(command, args, options);
  if (r.code !== 0) {
    throw new HarnessError(
      HarnessErrorCode.CommandFailed,
      `${command} ${args.join(' ')} exited ${r.code}: ${(r.stderr || r.stdout).trim().slice(-2000)}`,
    );
  }
  return r.stdout;
}

/** True when `command` is found on PATH (or is an executable path). */
export async function haveCommand(command: string): Promise<boolean> {
  const r = await runCommand('sh', ['-c', 'command -v "$1"', 'sh', command], { timeoutMs: 5000 });
  return r.code === 0 && r.stdout.trim() !== '';
}
