// Last-resort cleanup: every live child and temp dir the harness created is registered here, and is
// killed / removed when this process exits, is interrupted (SIGINT, SIGTERM, SIGHUP) or dies of an
// uncaught exception. A SIGKILL of this process cannot be observed: the per-child watchdog in
// process.ts covers that case.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const liveChildren = new Map<number, string>();
const tempDirs = new Set<string>();
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
let installed = false;

/** `TALLY_KEEP_TMP=1` keeps every temp dir (logs, data) for debugging. */
export function keepTempDirs(): boolean {
  const value = process.env.TALLY_KEEP_TMP;
  return value !== undefined && value !== '' && value !== '0' && value !== 'false';
}

export function trackChild(pid: number, name: string): void {
  install();
  liveChildren.set(pid, name);
}

export function untrackChild(pid: number): void {
  liveChildren.delete(pid);
}

/** Names and pids of children started by this process and not yet exited. */
export function liveChildPids(): ReadonlyMap<number, string> {
  return liveChildren;
}

/** A fresh directory under the OS temp dir, removed at exit unless kept. */
export function makeTempDir(prefix: string): string {
  install();
  const dir = mkdtempSync(join(tmpdir(), `tally-${prefix}-`));
  tempDirs.add(dir);
  return dir;
}

/** Removes a temp dir made by makeTempDir (unless `keep` or TALLY_KEEP_TMP is set). */
export function removeTempDir(dir: string, keep = false): void {
  tempDirs.delete(dir);
  if (keep || keepTempDirs()) {
    process.stderr.write(`[tally harness] kept ${dir}\n`);
    return;
  }
  rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
}

/**
 * Synchronously signals every live child (the binary itself, not its watchdog: if SIGTERM is not
 * enough, the watchdog notices this process is gone and escalates to SIGKILL) and removes temp dirs.
 */
export function cleanupNow(): void {
  for (const pid of liveChildren.keys()) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  liveChildren.clear();
  if (!keepTempDirs()) {
    for (const dir of tempDirs) {
      try {
        rmSync(dir, { recursive: true, force: true });
      } catch {
        // best effort while exiting
      }
    }
  }
  tempDirs.clear();
}

function onSignal(signal: NodeJS.Signals): void {
  // Someone else handles the signal (the demo's graceful stop, a test runner): let them shut down
  // in order; the 'exit' hook still cleans up whatever they leave.
  if (process.listenerCount(signal) > 1) return;
  cleanupNow();
  // A listener disables Node's default "die on signal"; as the only listener, restore that.
  uninstall();
  process.kill(process.pid, signal);
}

function onFatal(): void {
  // Only when nobody handles the exception (vitest does, and keeps running): the process dies now.
  if (process.listenerCount('uncaughtException') === 0) cleanupNow();
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', cleanupNow);
  for (const signal of SIGNALS) process.on(signal, onSignal);
  process.on('uncaughtExceptionMonitor', onFatal);
}

function uninstall(): void {
  installed = false;
  process.off('exit', cleanupNow);
  for (const signal of SIGNALS) process.off(signal, onSignal);
  process.off('uncaughtExceptionMonitor', onFatal);
}
