// A temporary nats-server with JetStream for `tally run` when no NATS URL is given: the pinned binary
// (.tools/bin of this checkout, as tools/install.sh links it, else PATH), a store in a fresh temp
// dir, loopback ports the server picks itself (read from its ports file, so no race for a port), and
// gone with its temp dir when stop() is called, or when this process dies in any way (a guard).
// Node built-ins only: no runtime or test code.

import { type ChildProcess, spawn } from 'node:child_process';
import {
  accessSync,
  closeSync,
  constants,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { CodedError } from '../api/errors.ts';

export const EMBEDDED_NATS_ERROR_CODES = {
  missing: 'NATS_SERVER_MISSING',
  startFailed: 'NATS_SERVER_START_FAILED',
} as const;
type EmbeddedNatsErrorCode = (typeof EMBEDDED_NATS_ERROR_CODES)[keyof typeof EMBEDDED_NATS_ERROR_CODES];

export class EmbeddedNatsError extends CodedError<EmbeddedNatsErrorCode> {
  override name = 'EmbeddedNatsError';
}

/** Where tools/install.sh links the pinned binaries. */
export const CHECKOUT_TOOLS_BIN = join(dirname(import.meta.dirname), '.tools', 'bin');

const isExecutable = (path: string): boolean => {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

/**
 * The nats-server to run: the pinned one (in $TALLY_TOOLS_BIN when set, as the test harness reads
 * it, else the checkout's .tools/bin), else the first on PATH.
 */
export function findNatsServer(env: NodeJS.ProcessEnv = process.env): string {
  const toolsBin = env.TALLY_TOOLS_BIN || CHECKOUT_TOOLS_BIN;
  const pinned = join(toolsBin, 'nats-server');
  if (isExecutable(pinned)) return pinned;
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir && isExecutable(join(dir, 'nats-server'))) return join(dir, 'nats-server');
  }
  throw new EmbeddedNatsError(
    EMBEDDED_NATS_ERROR_CODES.missing,
    `no nats-server at ${pinned} nor on PATH: run \`npm run tools\` (builds the pinned one into .tools/bin), or pass --nats-url (or set TALLY_NATS_URL) to use a NATS server with JetStream of your own`,
  );
}

export interface EmbeddedNats {
  /** nats://127.0.0.1:<port> */
  readonly url: string;
  readonly bin: string;
  /** The temp dir: store, log and ports file; removed by stop(). */
  readonly dir: string;
  readonly storeDir: string;
  readonly logFile: string;
  readonly pid: number;
  /** Resolves when the process has exited. */
  readonly exited: Promise<void>;
  /** SIGTERM (SIGKILL after graceMs), wait for the exit, remove the temp dir; idempotent. */
  stop(graceMs?: number): Promise<void>;
  /** At once and synchronously: SIGKILL and remove the temp dir (a second Ctrl-C). */
  kill(): void;
}

// Holds our end of its stdin; EOF means this process is gone (even by SIGKILL): then it stops the
// server, as stop() would, and removes the temp dir. stop() kills the guard once it has done that.
const GUARD = `read -r _
kill -TERM "$1" 2>/dev/null
i=0; while kill -0 "$1" 2>/dev/null && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
kill -KILL "$1" 2>/dev/null
rm -rf "$2"`;

export async function startEmbeddedNats(options: { startTimeoutMs?: number } = {}): Promise<EmbeddedNats> {
  const bin = findNatsServer();
  const dir = mkdtempSync(join(tmpdir(), 'tally-run-nats-'));
  const storeDir = join(dir, 'store');
  const logFile = join(dir, 'nats-server.log');
  const args = [
    // -1: the server picks free ports and writes them to its ports file.
    ...['-a', '127.0.0.1', '-p', '-1', '-m', '-1', '--ports_file_dir', dir],
    ...['-js', '-sd', storeDir, '-n', `tally-run-${process.pid}`],
  ];
  const log = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    // Own process group: a Ctrl-C reaches only us, and we stop the workers before the server.
    child = spawn(bin, args, { detached: true, stdio: ['ignore', log, log] });
  } finally {
    closeSync(log);
  }
  let exitInfo: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exitInfo = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      resolve();
    });
    child.once('error', (err) => {
      exitInfo = `could not start: ${err.message}`;
      resolve();
    });
  });
  child.unref(); // a forgotten server must not keep us alive; the guard still stops it
  const pid = child.pid;
  const guard =
    pid === undefined
      ? undefined
      : spawn('/bin/sh', ['-c', GUARD, 'tally-nats-guard', String(pid), dir], {
          detached: true,
          stdio: ['pipe', 'ignore', 'ignore'],
        });
  guard?.unref();
  (guard?.stdin as Socket | null | undefined)?.unref();

  const running = () => exitInfo === undefined;
  const signal = (sig: NodeJS.Signals) => {
    if (running()) child.kill(sig);
  };
  const endGuard = () => {
    if (guard?.exitCode === null && guard.signalCode === null) guard.kill('SIGKILL');
  };
  let stopping: Promise<void> | undefined;
  const stop = (graceMs = 5_000): Promise<void> => {
    stopping ??= (async () => {
      signal('SIGTERM');
      const timer = setTimeout(() => signal('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
      endGuard();
    })();
    return stopping;
  };
  const kill = (): void => {
    signal('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    // The guard stays: once we exit it removes the dir again, should the dying server still write.
  };

  let url: string;
  try {
    url = await waitUntilReady(dir, { bin, args }, options.startTimeoutMs ?? 20_000, () => exitInfo);
  } catch (err) {
    await stop(0);
    throw err;
  }
  return { url, bin, dir, storeDir, logFile, pid: pid ?? 0, exited, stop, kill };
}

/** Waits for the ports file, then for JetStream to report healthy; fails fast if the server exits. */
async function waitUntilReady(
  dir: string,
  command: { bin: string; args: string[] },
  timeoutMs: number,
  exitInfo: () => string | undefined,
): Promise<string> {
  const logFile = join(dir, 'nats-server.log');
  const { bin, args } = command;
  const fail = (why: string, cause?: unknown) =>
    new EmbeddedNatsError(
      EMBEDDED_NATS_ERROR_CODES.startFailed,
      `nats-server ${why} (${bin} ${args.join(' ')}); its log ended with:\n${tail(logFile)}`,
      { cause },
    );
  const deadline = Date.now() + timeoutMs;
  let ports: { nats?: string[]; monitoring?: string[] } | undefined;
  let last: unknown;
  while (Date.now() < deadline) {
    const exit = exitInfo();
    if (exit) throw fail(exit);
    try {
      // Named <executable>_<pid>.ports; the only one in this fresh dir.
      const file = readdirSync(dir).find((f) => f.endsWith('.ports'));
      if (file) ports ??= JSON.parse(readFileSync(join(dir, file), 'utf8'));
      if (!ports) throw new Error('no ports file yet');
      const health = await fetch(`${ports.monitoring![0]}/healthz?js-enabled-only=true`, {
        signal: AbortSignal.timeout(2_000), // one stuck request must not outlast the deadline
      });
      await health.arrayBuffer();
      if (health.ok) return ports.nats![0]!;
      last = new Error(`healthz answered ${health.status}`);
    } catch (err) {
      last = err; // not written or not listening yet
    }
    await delay(50);
  }
  throw fail(`did not report JetStream ready within ${timeoutMs} ms`, last);
}

function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
