// `tally runtime --config FILE`: run one worker from the WorkerConfig the operator mounted.
// A config that does not parse stops it at once with every problem and its path.
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import * as yaml from 'js-yaml';
import { parseAnyWorkerConfig, WorkerConfigError } from '../api/worker-config.ts';
import { runFlowWorker } from '../runtime/flow/worker.ts';
import { runReconWorker } from '../runtime/reconcile/worker.ts';
import { InputError, UsageError } from './errors.ts';

const USAGE = `Usage: tally runtime --config FILE

Runs a worker from a WorkerConfig (YAML or JSON), as rendered by the operator.
Environment: the secret variables the config names; TALLY_HTTP_PORT and TALLY_HTTP_HOST override
the listen address; TALLY_LOG_LEVEL sets the log level (default info).`;

async function loadConfigFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new InputError(`cannot read --config ${file}: ${(cause as Error).message}`, { cause });
  }
  try {
    return yaml.load(text, { filename: file });
  } catch (cause) {
    throw new InputError(`--config ${file} is not valid YAML or JSON: ${(cause as Error).message}`, {
      cause,
    });
  }
}

export async function runtimeCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (!values.config) throw new UsageError(`--config FILE is required\n\n${USAGE}`);

  const raw = await loadConfigFile(values.config);
  let config: ReturnType<typeof parseAnyWorkerConfig>;
  try {
    config = parseAnyWorkerConfig(raw);
  } catch (err) {
    if (err instanceof WorkerConfigError) {
      process.stderr.write(`tally runtime: ${values.config}: ${err.message}\n`);
      return 1;
    }
    throw err;
  }

  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    process.stderr.write(`tally runtime: ${signal} received; stopping gracefully\n`);
    controller.abort();
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  try {
    if (config.role === 'reconciliation') {
      // A fixed "now" reprocesses windows exactly as they were at that instant (replays, tests).
      const asOf = process.env.TALLY_RECON_AS_OF;
      const asOfMs = asOf ? Date.parse(asOf) : undefined;
      if (asOf && !Number.isFinite(asOfMs))
        throw new UsageError(`TALLY_RECON_AS_OF=${asOf} is not an RFC 3339 time`);
      // The worker watches the signal from its first step: a stop during start-up is not lost.
      const worker = await runReconWorker(config, {
        signal: controller.signal,
        ...(asOfMs === undefined ? {} : { now: () => asOfMs }),
      });
      await worker.stopped;
      return 0;
    }
    const worker = await runFlowWorker(config, { signal: controller.signal });
    await worker.stopped;
    return 0;
  } catch (err) {
    if (controller.signal.aborted && (err as Error).name === 'AbortError') return 0;
    throw err;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}
