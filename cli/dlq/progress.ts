// Progress of a long `tally dlq` operation on stderr: a cli-progress bar on a terminal, a few
// plain lines otherwise (logs and CI), so stdout stays for results.
import { createRequire } from 'node:module';

export interface Progress {
  /** One more item done. */
  tick(): void;
  stop(): void;
}

interface SingleBar {
  start(total: number, value: number): void;
  increment(delta?: number): void;
  stop(): void;
}
interface CliProgress {
  SingleBar: new (options: Record<string, unknown>, preset?: unknown) => SingleBar;
  Presets: Record<string, unknown>;
}

// cli-progress is CommonJS and ships no types.
const cliProgress = createRequire(import.meta.url)('cli-progress') as CliProgress;

export type ProgressStream = NodeJS.WritableStream & { isTTY?: boolean };

/** Plain-line steps: about every 10 % (and the last item). */
export function plainStep(total: number): number {
  return Math.max(1, Math.ceil(total / 10));
}

export function createProgress(stream: ProgressStream, total: number, label: string): Progress {
  if (total <= 0) return { tick() {}, stop() {} };
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        stream,
        format: `${label} [{bar}] {value}/{total} {percentage}% | ETA {eta_formatted}`,
        hideCursor: true,
        clearOnComplete: false,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0);
    return { tick: () => bar.increment(), stop: () => bar.stop() };
  }
  const step = plainStep(total);
  let done = 0;
  return {
    tick() {
      done++;
      if (done % step === 0 || done === total)
        stream.write(`${label}: ${done}/${total} (${Math.floor((done * 100) / total)}%)\n`);
    },
    stop() {},
  };
}
