// Long-running children (nats-server, etcd, kube-apiserver) with their output in a log file,
// ready-checks that fail fast with the log tail, and a graceful-then-forceful stop.
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readSync, statSync, writeSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { keepTempDirs, trackChild, untrackChild } from './cleanup.ts';
import { HarnessError, HarnessErrorCode } from './errors.ts';

// The watchdog: `sh -c WATCHDOG tally-watchdog <parent pid> <orphan dir> <command> <args...>`. The
// shell forks a small background loop, then execs the command, so the child keeps the shell's pid
// (signals, exit status and `pgrep` see the real binary). The loop is then the binary's child; once a
// second it checks, via /proc, that (a) it is still the binary's child (else the binary is gone: exit
// quietly) and (b) the binary's parent is still our process (else our process died, even by SIGKILL,
// and the binary was re-parented): then it sends SIGTERM, SIGKILL 5 s later, and removes <orphan
// dir> if one was given. Neither check can be fooled by pid reuse or by a zombie parent.
const WATCHDOG = `parent=$1; orphan_dir=$2; shift 2
(
  ppid_of() { pp=; while read -r k v; do if [ "$k" = "PPid:" ]; then pp=$v; break; fi; done < "/proc/$1/status"; }
  while sleep 1; do
    ppid_of self; [ "$pp" = "$$" ] || exit 0
    ppid_of "$$"; [ "$pp" = "$parent" ] || break
  done
  kill -TERM "$$"
  for i in 1 2 3 4 5 6 7 8 9 10; do sleep 0.5; ppid_of self; [ "$pp" = "$$" ] || break; done
  ppid_of self; [ "$pp" = "$$" ] && kill -KILL "$$" && sleep 0.5
  [ -n "$orphan_dir" ] && rm -rf "$orphan_dir"
) </dev/null >/dev/null 2>&1 &
exec "$@"`;

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the process could not be spawned at all. */
  error?: Error;
}

export interface SpawnChildOptions {
  /** Short name used in messages, e.g. "etcd". */
  name: string;
  command: string;
  args?: readonly string[];
  /** stdout and stderr are appended here (the folder is created). */
  logFile: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Removed by the watchdog if our process dies without cleaning up (ignored with TALLY_KEEP_TMP). */
  orphanDir?: string;
}

export interface StopOptions {
  /** First signal; default SIGTERM. Use SIGKILL to simulate a crash. */
  signal?: NodeJS.Signals;
  /** Time allowed after the first signal before SIGKILL; default 5000 ms. */
  graceMs?: number;
}

export interface ChildHandle {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  /** Resolves once the child has exited (never rejects). */
  readonly exited: Promise<ExitInfo>;
  /** undefined while running. */
  exitInfo(): ExitInfo | undefined;
  running(): boolean;
  /** The last `lines` lines of the log file. */
  logTail(lines?: number): string;
  /** Signals the child's process group, escalates to SIGKILL after the grace period; idempotent. */
  stop(options?: StopOptions): Promise<ExitInfo>;
}

/** Last `lines` lines of a file (reads at most its final 64 KiB). */
export function readLogTail(file: string, lines = 40): string {
  let fd: number | undefined;
  try {
    const size = statSync(file).size;
    const length = Math.min(size, 64 * 1024);
    const buffer = Buffer.alloc(length);
    fd = openSync(file, 'r');
    readSync(fd, buffer, 0, length, size - length);
    return buffer.toString('utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function describeExit(info: ExitInfo): string {
  if (info.error !== undefined) return `failed to start: ${info.error.message}`;
  return info.signal !== null ? `was killed by ${info.signal}` : `exited with code ${info.code}`;
}

/** Starts a long-running child under a watchdog, registered for cleanup at exit. */
export function spawnChild(options: SpawnChildOptions): ChildHandle {
  const { name, command, logFile } = options;
  const args = options.args ?? [];
  mkdirSync(dirname(logFile), { recursive: true });
  const fd = openSync(logFile, 'a');
  let child: ReturnType<typeof spawn>;
  try {
    writeSync(fd, `=== ${new Date().toISOString()} start ${name}: ${command} ${args.join(' ')}\n`);
    child = spawn(
      '/bin/sh',
      [
        ...['-c', WATCHDOG, 'tally-watchdog', String(process.pid)],
        keepTempDirs() ? '' : (options.orphanDir ?? ''),
        ...[command, ...args],
      ],
      {
        cwd: options.cwd,
        env: options.env ?? process.env,
        // Own process group: stop() signals the group; a Ctrl-C reaches us, and we stop the children.
        detached: true,
        stdio: ['ignore', fd, fd],
      },
    );
  } finally {
    closeSync(fd);
  }

  let info: ExitInfo | undefined;
  const pid = child.pid;
  const exited = new Promise<ExitInfo>((resolve) => {
    child.once('exit', (code, signal) => {
      info = { code, signal };
      if (pid !== undefined) untrackChild(pid);
      resolve(info);
    });
    // Only emitted here when the spawn itself fails (we never use child.kill()).
    child.once('error', (error) => {
      if (info !== undefined) return;
      info = { code: null, signal: null, error };
      resolve(info);
    });
  });
  if (pid === undefined) {
    throw new HarnessError(HarnessErrorCode.SpawnFailed, `could not spawn ${name} (${command})`);
  }
  trackChild(pid, name);
  // A forgotten child must not keep the test process alive; the exit handler kills it.
  child.unref();

  const signalGroup = (signal: NodeJS.Signals): void => {
    try {
      process.kill(-pid, signal);
    } catch {
      try {
        process.kill(pid, signal);
      } catch {
        // already gone
      }
    }
  };

  let stopping: Promise<ExitInfo> | undefined;
  const stop = (stopOptions: StopOptions = {}): Promise<ExitInfo> => {
    if (info !== undefined) return Promise.resolve(info);
    stopping ??= (async () => {
      signalGroup(stopOptions.signal ?? 'SIGTERM');
      const timer = setTimeout(() => signalGroup('SIGKILL'), stopOptions.graceMs ?? 5000);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    })();
    return stopping;
  };

  return {
    name,
    pid,
    logFile,
    exited,
    exitInfo: () => info,
    running: () => info === undefined,
    logTail: (lines?: number) => readLogTail(logFile, lines),
    stop,
  };
}

export interface WaitOptions {
  /** Default 30 000 ms. */
  timeoutMs?: number;
  /** Default 100 ms. */
  intervalMs?: number;
  /** Fail fast, with its log tail, if one of these exits while waiting. */
  children?: readonly ChildHandle[];
}

function exitedError(child: ChildHandle, info: ExitInfo, what: string): HarnessError {
  return new HarnessError(
    HarnessErrorCode.ChildExited,
    `${child.name} ${describeExit(info)} while waiting for ${what}; log ${child.logFile}:\n${child.logTail()}`,
    { cause: info.error },
  );
}

/** Polls `check` until it returns true; fails fast if a child exits, or times out with the log tails. */
export async function waitUntil(
  what: string,
  check: () => boolean | Promise<boolean>,
  options: WaitOptions = {},
): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const intervalMs = options.intervalMs ?? 100;
  const children = options.children ?? [];
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    for (const child of children) {
      const info = child.exitInfo();
      if (info !== undefined) throw exitedError(child, info, what);
    }
    try {
      if (await check()) return;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const tails = children.map((c) => `--- ${c.name} (${c.logFile}):\n${c.logTail()}`).join('\n');
      const last = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new HarnessError(
        HarnessErrorCode.ReadyTimeout,
        `timed out after ${timeoutMs} ms waiting for ${what}${last}${tails === '' ? '' : `\n${tails}`}`,
        { cause: lastError },
      );
    }
    // Wake early if a child exits, so failures surface at once.
    await Promise.race([sleep(intervalMs), ...children.map((c) => c.exited)]);
  }
}

/** True once something accepts TCP connections on host:port. */
export function canConnect(port: number, host = '127.0.0.1', timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host, timeout: timeoutMs });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.once('timeout', () => done(false));
  });
}

export async function waitForTcp(port: number, options: WaitOptions & { host?: string } = {}): Promise<void> {
  const host = options.host ?? '127.0.0.1';
  await waitUntil(`tcp ${host}:${port}`, () => canConnect(port, host), options);
}

/** PEM material for https: trust `ca`, authenticate with `cert`/`key`. */
export interface TlsMaterial {
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
}

export interface HttpResponse {
  status: number;
  body: string;
}

/** A plain GET over http or https (with optional client certificate); never follows redirects. */
export function httpGet(
  url: string,
  options: { tls?: TlsMaterial; timeoutMs?: number } = {},
): Promise<HttpResponse> {
  const target = new URL(url);
  const request = target.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(
      target,
      { method: 'GET', timeout: options.timeoutMs ?? 5000, agent: false, ...options.tls },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** Polls a URL until `accept(response)` (default: status 200). */
export async function waitForHttp(
  url: string,
  options: WaitOptions & { tls?: TlsMaterial; accept?: (response: HttpResponse) => boolean } = {},
): Promise<void> {
  const accept = options.accept ?? ((r: HttpResponse) => r.status === 200);
  let last: HttpResponse | undefined;
  await waitUntil(
    `GET ${url}`,
    async () => {
      last = await httpGet(url, { tls: options.tls, timeoutMs: 5000 });
      if (accept(last)) return true;
      throw new Error(`status ${last.status}: ${last.body.slice(0, 500)}`);
    },
    options,
  );
}
