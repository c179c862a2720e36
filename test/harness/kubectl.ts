import { spawn } from 'node:child_process';
import { toolPath } from './tools.ts';

export interface KubectlResult {
  /** Exit code; -1 if killed (timeout). */
  code: number;
  stdout: string;
  stderr: string;
}

export interface KubectlOptions {
  /** Passed as --kubeconfig. */
  kubeconfig?: string;
  /** Written to stdin (e.g. with `-f -`). */
  input?: string;
  /** Default 60 000 ms; the process is killed after that. */
  timeoutMs?: number;
  cwd?: string;
}

/** Runs the pinned kubectl; never throws on a non-zero exit (inspect `code`). */
export function runKubectl(args: readonly string[], options: KubectlOptions = {}): Promise<KubectlResult> {
  const bin = toolPath('kubectl');
  const fullArgs =
    options.kubeconfig !== undefined ? ['--kubeconfig', options.kubeconfig, ...args] : [...args];
  return new Promise((resolve, reject) => {
    const child = spawn(bin, fullArgs, {
      cwd: options.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: options.timeoutMs ?? 60_000,
      killSignal: 'SIGKILL',
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.once('error', reject);
    child.once('close', (code) =>
      resolve({
        code: code ?? -1,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      }),
    );
    child.stdin.on('error', () => {
      // kubectl may exit before reading stdin
    });
    child.stdin.end(options.input ?? '');
  });
}

/** Formats a failed kubectl call for error messages. */
export function describeKubectl(args: readonly string[], result: KubectlResult): string {
  return `kubectl ${args.join(' ')} exited ${result.code}: ${(result.stderr || result.stdout).trim()}`;
}
