// `tally backfill FILE`: a historical load of a CSV or JSON-lines file into a flow, with a progress
// bar and resume. The engine is ./load.ts; this file resolves the flow,
// connects to NATS and talks to the terminal.
import { createWriteStream, type WriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection, headers as natsHeaders } from '@nats-io/transport-node';
import * as yaml from 'js-yaml';
import { pino } from 'pino';
import { integrationFlowSpecSchema } from '../../api/integration-flow.ts';
import { parseWorkerConfig, WorkerConfigError } from '../../api/worker-config.ts';
import { BatchFileError, type BatchFormat, formatFromName } from '../../runtime/flow/batch/reader.ts';
import { createIngestRouter } from '../../runtime/flow/partition.ts';
import { openKvState, StateStoreError } from '../../runtime/flow/state/kv-store.ts';
import { type FlowRef, flowNames } from '../../runtime/nats/flow-resources.ts';
import { parseFlowRef, positiveInt } from '../args.ts';
import { InputError, UsageError } from '../errors.ts';
import { expandPaths, loadDocuments } from '../load-documents.ts';
import { BackfillError, type BackfillResult, type BackfillStats, backfill } from './load.ts';

export const BACKFILL_USAGE = `Usage: tally backfill FILE (--config WORKERCONFIG | --flow [NS/]NAME -f PATH) [options]

Loads a batch file into a flow: each row becomes one JSON record published to the flow's stream,
where the worker maps it and delivers it like any other event. CSV needs a header row (RFC 4180
quoting: fields may hold commas, line breaks and doubled quotes); its values stay strings. JSON
lines: one object per line, published as written. Each record's Nats-Msg-Id is
<first 16 hex of the file's sha256>:<line>, so loading the same file again is dropped by the stream
(within its duplicate window); progress is kept in the flow's KV bucket after every batch, so an
interrupted load continues with --resume, and a completed one is not loaded twice without --force.
Bad rows (wrong column count, broken quoting, a line that is not a JSON object) are skipped and
reported as FILE:LINE; --rejects writes them to a file to fix and load on their own.

The flow (one of):
  --config FILE         its WorkerConfig (YAML or JSON, as the operator renders it)
  --flow [NS/]NAME      its IntegrationFlow, read from the files given with -f
  -f, --filename PATH   YAML/JSON files or folders holding the IntegrationFlow (repeatable)

Options:
  --nats-url URL        NATS server(s), comma-separated (default $TALLY_NATS_URL, else the config's)
  --format csv|jsonl    default: from the extension (.csv, .jsonl, .ndjson), else the flow's batch format
  --delimiter C         CSV field separator (default ",")
  --resume              continue after the last acknowledged row of an earlier run of this file
  --force               load the whole file again even though it was (partly) loaded before
  --batch-size N        rows published before progress is recorded (default 500)
  --max-rate N          at most N records per second (default: as fast as the stream acknowledges)
  --rejects PATH        write the bad rows to PATH (CSV with its header row)
  --dry-run             read and check the file; publish nothing, record nothing
  -q, --quiet           no progress on stderr
  -o, --output text|json  the summary on stdout (default text)

The flow's stream must exist (the operator or \`tally run\` creates it); its workers need not run.
Ctrl-C finishes the batch in progress, records it, and exits; run again with --resume.
Exit status: 0 every row loaded; 1 bad rows skipped, interrupted, or the load failed; 2 usage error.`;

interface Target {
  flow: FlowRef;
  servers: string[];
  batchFormat: BatchFormat | undefined;
  partitionKey: string | undefined;
  partitions: number;
  replicas: number;
}

/** An optional positive integer option, or its fallback. */
function optionalPositiveInt(
  text: string | undefined,
  flag: string,
  fallback: number | undefined,
): number | undefined {
  return text === undefined ? fallback : positiveInt(text, flag);
}

async function targetFromConfig(file: string): Promise<Target> {
  let raw: unknown;
  try {
    raw = yaml.load(await readFile(file, 'utf8'), { filename: file });
  } catch (cause) {
    throw new InputError(`cannot read --config ${file}: ${(cause as Error).message}`, { cause });
  }
  let config: ReturnType<typeof parseWorkerConfig>;
  try {
    config = parseWorkerConfig(raw);
  } catch (err) {
    if (err instanceof WorkerConfigError)
      throw new InputError(`--config ${file}: ${err.message}`, { cause: err });
    throw err;
  }
  return {
    flow: { namespace: config.flow.namespace, name: config.flow.name },
    servers: config.nats.servers,
    batchFormat: config.source.type === 'batch' ? config.source.format : undefined,
    partitionKey: config.delivery.partitionKey,
    partitions: config.delivery.partitions,
    replicas: config.stream.replicas,
  };
}

async function targetFromResources(ref: FlowRef, paths: string[]): Promise<Omit<Target, 'servers'>> {
  const { documents, parseErrors } = await loadDocuments(await expandPaths(paths));
  if (parseErrors.length) throw new InputError(parseErrors.map((e) => `${e.file}: ${e.message}`).join('\n'));
  const flows = documents.filter((d) => {
    const doc = d.doc as { kind?: string; metadata?: { name?: string; namespace?: string } } | null;
    return (
      doc?.kind === 'IntegrationFlow' &&
      doc.metadata?.name === ref.name &&
      (doc.metadata.namespace === undefined || doc.metadata.namespace === ref.namespace)
    );
  });
  if (flows.length === 0) {
    throw new InputError(
      `no IntegrationFlow named ${ref.name} (namespace ${ref.namespace}) in ${paths.join(', ')}`,
    );
  }
  const found = flows[0]!;
  const parsed = integrationFlowSpecSchema.safeParse((found.doc as { spec?: unknown }).spec);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `  spec.${i.path.join('.')}: ${i.message}`).join('\n');
    throw new InputError(`${found.file}: IntegrationFlow ${ref.name} is invalid:\n${problems}`);
  }
  const spec = parsed.data;
  return {
    flow: ref,
    batchFormat: spec.source.type === 'batch' ? spec.source.batch?.format : undefined,
    partitionKey: spec.delivery.partitionKey,
    partitions: spec.delivery.partitions,
    replicas: spec.stream.replicas,
  };
}

// cli-progress is CommonJS and ships no types.
interface SingleBar {
  start(total: number, value: number, payload?: Record<string, unknown>): void;
  update(value: number, payload?: Record<string, unknown>): void;
  stop(): void;
}
const cliProgress = createRequire(import.meta.url)('cli-progress') as {
  SingleBar: new (options: Record<string, unknown>, preset?: unknown) => SingleBar;
  Presets: Record<string, unknown>;
};

type Stream = NodeJS.WritableStream & { isTTY?: boolean };

/** Progress on stderr: a bar on a terminal, a plain line every few seconds otherwise. */
function progressReporter(stderr: Stream, label: string, quiet: boolean) {
  const started = Date.now();
  const rate = (s: BackfillStats) => Math.round(s.rows / Math.max(0.001, (Date.now() - started) / 1000));
  const pct = (s: BackfillStats) =>
    s.size > 0 ? Math.min(100, Math.floor((s.bytesRead * 100) / s.size)) : 100;
  if (quiet) return { update(_s: BackfillStats) {}, note(_t: string) {}, stop() {} };
  if (stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        stream: stderr,
        format: `${label} [{bar}] {percentage}% | {rows} records | {bad} bad | {rate}/s | ETA {eta_formatted}`,
        hideCursor: true,
        clearOnComplete: false,
        etaBuffer: 100,
        fps: 5,
      },
      cliProgress.Presets.shades_classic,
    );
    let running = false;
    return {
      update(s: BackfillStats) {
        const payload = { rows: s.rows, bad: s.bad, rate: rate(s) };
        if (!running) {
          running = true;
          bar.start(Math.max(1, s.size), s.bytesRead, payload);
        } else bar.update(s.bytesRead, payload);
      },
      note(text: string) {
        stderr.write(`\r\x1b[K${text}\n`);
      },
      stop() {
        if (running) bar.stop();
      },
    };
  }
  let last = 0;
  return {
    update(s: BackfillStats) {
      if (Date.now() - last < 5_000) return;
      last = Date.now();
      stderr.write(`${label}: ${pct(s)}% (${s.rows} records, ${s.bad} bad, ${rate(s)}/s)\n`);
    },
    note(text: string) {
      stderr.write(`${text}\n`);
    },
    stop() {},
  };
}

const SHOWN_BAD_ROWS = 20;

export interface BackfillIo {
  stdout: Stream;
  stderr: Stream;
  /** Aborting stops the load gracefully (the CLI wires SIGINT/SIGTERM to it). */
  signal?: AbortSignal;
}

export async function backfillCommand(argv: string[], io?: BackfillIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string', short: 'c' },
      flow: { type: 'string' },
      filename: { type: 'string', short: 'f', multiple: true },
      'nats-url': { type: 'string', default: process.env.TALLY_NATS_URL },
      format: { type: 'string' },
      delimiter: { type: 'string' },
      resume: { type: 'boolean', default: false },
      force: { type: 'boolean', default: false },
      'batch-size': { type: 'string' },
      'max-rate': { type: 'string' },
      rejects: { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
      quiet: { type: 'boolean', short: 'q', default: false },
      output: { type: 'string', short: 'o', default: 'text' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
    strict: true,
  });
  const stdout = io?.stdout ?? process.stdout;
  const stderr = io?.stderr ?? process.stderr;
  if (values.help) {
    stdout.write(`${BACKFILL_USAGE}\n`);
    return 0;
  }
  if (positionals.length !== 1) {
    throw new UsageError(
      `${positionals.length === 0 ? 'no file given' : `one file at a time, not ${positionals.length}`}\n\n${BACKFILL_USAGE}`,
    );
  }
  const file = positionals[0]!;
  if (!values.config === !values.flow) {
    throw new UsageError(
      `name the flow with --config WORKERCONFIG or with --flow [NS/]NAME -f PATH\n\n${BACKFILL_USAGE}`,
    );
  }
  if (values.flow && !values.filename?.length) {
    throw new UsageError('--flow needs -f PATH: the files or folder holding the IntegrationFlow');
  }
  if (values.config && values.filename?.length)
    throw new UsageError('-f goes with --flow, not with --config');
  if (values.resume && values.force) throw new UsageError('--resume and --force exclude each other');
  if (values.format !== undefined && values.format !== 'csv' && values.format !== 'jsonl') {
    throw new UsageError(`--format ${values.format}: expected csv or jsonl`);
  }
  if (values.output !== 'text' && values.output !== 'json') {
    throw new UsageError(`--output ${values.output}: expected text or json`);
  }
  if (values.delimiter !== undefined && (values.delimiter.length !== 1 || /["\r\n]/.test(values.delimiter))) {
    throw new UsageError(
      `--delimiter ${JSON.stringify(values.delimiter)}: expected one character other than a quote`,
    );
  }
  const batchSize = optionalPositiveInt(values['batch-size'], '--batch-size', 500)!;
  const maxRate = optionalPositiveInt(values['max-rate'], '--max-rate', undefined);

  const target = values.config
    ? await targetFromConfig(values.config)
    : { ...(await targetFromResources(parseFlowRef(values.flow!), values.filename!)), servers: [] };
  const servers = values['nats-url'] ? values['nats-url'].split(',') : target.servers;
  if (servers.length === 0) throw new UsageError('--nats-url (or TALLY_NATS_URL) is required with --flow');
  const format = (values.format as BatchFormat | undefined) ?? formatFromName(file) ?? target.batchFormat;
  if (!format) {
    throw new UsageError(
      `cannot tell the format of ${file} from its name: pass --format csv or --format jsonl`,
    );
  }
  const names = flowNames(target.flow);
  const flowId = `${target.flow.namespace}/${target.flow.name}`;
  const logger = pino(
    { level: process.env.TALLY_LOG_LEVEL ?? 'warn', base: { flow: flowId } },
    pino.destination({ dest: 2, sync: true }),
  );
  const route = createIngestRouter({
    partitionKey: target.partitionKey,
    partitions: target.partitions,
    subject: (p) => names.ingestSubject(p),
    logger,
  });

  // A signal of our own unless the caller brings one: the first Ctrl-C stops gracefully, a second kills.
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    stderr.write(`\n${signal}: finishing the batch in progress; run again with --resume to continue\n`);
    controller.abort();
  };
  if (!io?.signal) {
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }
  const signal = io?.signal ?? controller.signal;

  let nc: NatsConnection | undefined;
  let rejects: WriteStream | undefined;
  const badShown: string[] = [];
  const progress = progressReporter(stderr, `backfill ${basename(file)}`, values.quiet);
  try {
    let publish: Parameters<typeof backfill>[0]['publish'] = async () => ({ duplicate: false });
    let store: Awaited<ReturnType<typeof openKvState>> | undefined;
    if (!values['dry-run']) {
      try {
        nc = await connect({
          servers,
          name: `tally-backfill ${flowId}`,
          timeout: 5_000,
          maxReconnectAttempts: 60,
          reconnectTimeWait: 1_000,
        });
      } catch (cause) {
        throw new InputError(`cannot reach NATS at ${servers.join(', ')}: ${(cause as Error).message}`, {
          cause,
        });
      }
      const jsm = await jetstreamManager(nc, { timeout: 10_000 });
      const stream = await jsm.streams.find(names.ingestSubject(0)).catch(() => undefined);
      if (stream !== names.stream) {
        throw new InputError(
          `no stream ${names.stream} takes ${names.ingestSubject(0)}: is flow ${flowId} deployed? (the operator or \`tally run\` creates its streams)`,
        );
      }
      store = await openKvState(nc, names.stateBucket, { replicas: target.replicas });
      const js = jetstream(nc, { timeout: 10_000 });
      publish = async (subject, data, { msgId, headers }) => {
        const h = natsHeaders();
        for (const [k, v] of Object.entries(headers)) h.set(k, v);
        const ack = await js.publish(subject, data, { msgID: msgId, headers: h });
        return { duplicate: ack.duplicate };
      };
    }
    let header: string | undefined;
    const result: BackfillResult = await backfill({
      file,
      format,
      ...(values.delimiter ? { delimiter: values.delimiter } : {}),
      route: (data, record) => route(data, record),
      publish,
      ...(store ? { store } : {}),
      resume: values.resume,
      force: values.force,
      batchSize,
      ...(maxRate ? { maxRate } : {}),
      dryRun: values['dry-run'],
      signal,
      onStart: (s) => {
        if (s.note) progress.note(`${basename(file)}: ${s.note}`);
      },
      onProgress: (s) => progress.update(s),
      onHeader: (raw) => {
        header = raw;
      },
      onBadRow: (b) => {
        const text = `${b.file}:${b.line}: bad row skipped: ${b.message}`;
        if (badShown.length < SHOWN_BAD_ROWS) progress.note(text);
        badShown.push(text);
        if (values.rejects) {
          if (!rejects) {
            rejects = createWriteStream(values.rejects);
            if (format === 'csv' && header !== undefined) rejects.write(`${header}\n`);
          }
          rejects.write(`${b.raw}\n`);
        }
      },
    });
    progress.stop();
    if (badShown.length > SHOWN_BAD_ROWS) {
      stderr.write(`... and ${badShown.length - SHOWN_BAD_ROWS} more bad rows\n`);
    }
    if (rejects) {
      const r = rejects;
      await new Promise<void>((resolve) => r.end(resolve));
      stderr.write(`bad rows written to ${values.rejects}\n`);
    }
    const summary = {
      file,
      flow: flowId,
      format,
      sha256: result.sha256,
      msgIdPrefix: result.sha256.slice(0, 16),
      dryRun: values['dry-run'],
      resumedAfterLine: result.startAfter,
      throughLine: result.line,
      records: result.rows,
      published: result.published,
      alreadyInStream: result.duplicates,
      badRows: result.bad,
      complete: result.complete,
      interrupted: result.interrupted,
      ...(result.alreadyDone ? { note: result.alreadyDone } : {}),
    };
    if (values.output === 'json') stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    else if (result.alreadyDone) stdout.write(`${file}: ${result.alreadyDone}\n`);
    else {
      const verb = values['dry-run'] ? 'checked' : result.interrupted ? 'interrupted loading' : 'loaded';
      stdout.write(
        `${verb} ${file} into ${flowId}: ${values['dry-run'] ? `${result.rows} good records` : `${result.published} records published (${result.duplicates} already in the stream)`}, ` +
          `${result.bad} bad rows skipped, through line ${result.line}${result.startAfter ? ` (resumed after line ${result.startAfter})` : ''}\n`,
      );
    }
    if (result.interrupted) {
      stderr.write(`stopped after line ${result.line}; run again with --resume to load the rest\n`);
      return 1;
    }
    return result.bad > 0 ? 1 : 0;
  } catch (err) {
    progress.stop();
    if (err instanceof BackfillError || err instanceof BatchFileError || err instanceof StateStoreError) {
      stderr.write(`tally backfill: ${err.message}\n`);
      return 1;
    }
    throw err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    rejects?.destroy();
    if (nc && !nc.isClosed()) await nc.drain().catch(() => nc?.close());
  }
}
