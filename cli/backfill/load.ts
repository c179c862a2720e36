// A historical load: every row of a batch file (CSV or JSON lines) published into a flow's stream
// as one JSON record, with Nats-Msg-Id `<first 16 hex of the file's sha256>:<line>`, so a repeated
// run of the same file is dropped by the stream (within its duplicate window). Progress is kept in
// the flow's KV bucket (key `backfill.<sha256>`) after each batch of acknowledged rows, so:
// - `resume` continues after the last acknowledged batch; rows re-sent after a crash (at most one
//   batch) carry the same ids and are dropped within the duplicate window;
// - a file already loaded completely is refused unless forced: beyond the duplicate window the
//   stream would store it again (the sinks' idempotency keys would still catch it).
// Bad rows (CSV with the wrong column count or broken quoting, lines that are not a JSON object) are
// skipped and reported with their line; they never reach the flow.

import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { TallyError } from '../../api/errors.ts';
import { retryDelayMs } from '../../runtime/backoff.ts';
import {
  BATCH_ERROR_CODES,
  BatchFileError,
  type BatchFormat,
  type BatchRow,
  fileSha256,
  readBatchFile,
} from '../../runtime/flow/batch/reader.ts';
import { INGEST_HEADERS } from '../../runtime/flow/ingest.ts';
import { TokenBucket } from '../../runtime/flow/sinks/limits.ts';
import { STATE_ERROR_CODES, type StateStore, StateStoreError } from '../../runtime/flow/state/kv-store.ts';
import { formatTraceparent, traceFromSeed } from '../../runtime/flow/trace.ts';

export const BACKFILL_ERROR_CODES = {
  refused: 'BACKFILL_REFUSED',
  publish: 'BACKFILL_PUBLISH_FAILED',
  concurrent: 'BACKFILL_CONCURRENT_RUN',
} as const;

export class BackfillError extends TallyError {
  override name = 'BackfillError';
  readonly code: (typeof BACKFILL_ERROR_CODES)[keyof typeof BACKFILL_ERROR_CODES];
  constructor(code: BackfillError['code'], message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

/** What is kept per file in the KV bucket. */
export interface BackfillProgress {
  v: 1;
  file: string;
  sha256: string;
  format: BatchFormat;
  size: number;
  /** Every row up to and including this line is published and acknowledged (or was bad). */
  line: number;
  published: number;
  duplicates: number;
  bad: number;
  complete: boolean;
  startedAt: string;
  updatedAt: string;
}

export const progressKey = (sha256: string) => `backfill.${sha256}`;
export const msgIdPrefix = (sha256: string) => sha256.slice(0, 16);
export const batchMsgId = (sha256: string, line: number) => `${msgIdPrefix(sha256)}:${line}`;

export type ResumePoint = { startAfter: number; note?: string } | { done: string } | { refuse: string };

/** Pure: where a run starts, given what an earlier run left. */
export function resumePoint(
  progress: BackfillProgress | undefined,
  o: { resume: boolean; force: boolean },
): ResumePoint {
  if (o.force) {
    return progress ? { startAfter: 0, note: 'loading the whole file again (--force)' } : { startAfter: 0 };
  }
  if (!progress) {
    return o.resume
      ? { startAfter: 0, note: 'no earlier run of this file found; starting at the beginning' }
      : { startAfter: 0 };
  }
  if (progress.complete) {
    const what = `this file was loaded completely on ${progress.updatedAt} (${progress.published} records, ${progress.bad} bad rows skipped)`;
    return o.resume
      ? { done: `${what}; nothing to resume` }
      : {
          refuse: `${what}; pass --force to load it again (rows still in the stream's duplicate window are dropped, older ones are stored again)`,
        };
  }
  if (o.resume) return { startAfter: progress.line, note: `resuming after line ${progress.line}` };
  return {
    refuse: `an earlier backfill of this file stopped after line ${progress.line} (${progress.updatedAt}); pass --resume to continue after it, or --force to start over`,
  };
}

/** A header value: visible ASCII only, bounded. */
function headerSafe(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '_').slice(0, 200);
}

export interface BackfillStats {
  sha256: string;
  size: number;
  /** About how far into the file the rows handed on reach, in bytes. */
  bytesRead: number;
  /** Rows at or before this line were done by an earlier run. */
  startAfter: number;
  /** Every line up to this one is done (read, and published once the batch is flushed). */
  line: number;
  /** Good rows read in this run (published or, in a dry run, would be). */
  rows: number;
  published: number;
  duplicates: number;
  bad: number;
}

export interface BadRowReport {
  file: string;
  line: number;
  message: string;
  raw: string;
}

export interface BackfillOptions {
  file: string;
  format: BatchFormat;
  delimiter?: string;
  /** The flow-stream subject of a record (partition). */
  route: (data: Uint8Array, record: unknown) => Promise<{ subject: string }>;
  publish: (
    subject: string,
    data: Uint8Array,
    options: { msgId: string; headers: Record<string, string> },
  ) => Promise<{ duplicate: boolean }>;
  /** Progress records; required unless dryRun. */
  store?: StateStore;
  resume?: boolean;
  force?: boolean;
  /** Rows published before progress is stored; default 500. */
  batchSize?: number;
  /** Most records per second; default unlimited. */
  maxRate?: number;
  dryRun?: boolean;
  /** Stop: the batch in progress is finished and recorded, then the run ends (interrupted). */
  signal?: AbortSignal;
  /** Attempts per record while NATS is unavailable; default 6 (about 15 s). */
  publishAttempts?: number;
  onStart?: (info: { sha256: string; size: number; startAfter: number; note?: string }) => void;
  onProgress?: (stats: BackfillStats) => void;
  onBadRow?: (row: BadRowReport) => void;
  onHeader?: (raw: string) => void;
  now?: () => Date;
}

export interface BackfillResult extends BackfillStats {
  /** Every row of the file is done (published or reported bad). */
  complete: boolean;
  interrupted: boolean;
  /** Set when nothing was done because an earlier run already finished. */
  alreadyDone?: string;
}

const PUBLISH_CONCURRENCY = 256;

export async function backfill(o: BackfillOptions): Promise<BackfillResult> {
  const now = o.now ?? (() => new Date());
  const batchSize = Math.max(1, o.batchSize ?? 500);
  const attempts = Math.max(1, o.publishAttempts ?? 6);
  if (!o.dryRun && !o.store) throw new TypeError('backfill needs a state store unless it is a dry run');

  let size: number;
  try {
    size = (await stat(o.file)).size;
  } catch (cause) {
    throw new BatchFileError(
      BATCH_ERROR_CODES.unreadable,
      `cannot read ${o.file}: ${(cause as Error).message}`,
      {
        cause,
      },
    );
  }
  const sha256 = await fileSha256(o.file);
  const key = progressKey(sha256);
  const existing = o.dryRun ? undefined : await o.store!.get<BackfillProgress>(key);
  const point = resumePoint(existing?.value, { resume: !!o.resume, force: !!o.force });
  const stats: BackfillStats = {
    sha256,
    size,
    bytesRead: 0,
    startAfter: 0,
    line: 0,
    rows: 0,
    published: 0,
    duplicates: 0,
    bad: 0,
  };
  if ('refuse' in point) throw new BackfillError(BACKFILL_ERROR_CODES.refused, point.refuse);
  if ('done' in point) {
    const p = existing!.value;
    return {
      ...stats,
      line: p.line,
      bytesRead: size,
      complete: true,
      interrupted: false,
      alreadyDone: point.done,
    };
  }
  stats.startAfter = point.startAfter;
  stats.line = point.startAfter;
  o.onStart?.({ sha256, size, startAfter: point.startAfter, ...(point.note ? { note: point.note } : {}) });

  const earlier = point.startAfter > 0 ? existing?.value : undefined;
  let revision = existing?.revision ?? 0;
  const startedAt = earlier?.startedAt ?? now().toISOString();
  const progress = (line: number, complete: boolean): BackfillProgress => ({
    v: 1,
    file: basename(o.file),
    sha256,
    format: o.format,
    size,
    line,
    published: (earlier?.published ?? 0) + stats.published,
    duplicates: (earlier?.duplicates ?? 0) + stats.duplicates,
    bad: (earlier?.bad ?? 0) + stats.bad,
    complete,
    startedAt,
    updatedAt: now().toISOString(),
  });
  const save = async (line: number, complete: boolean) => {
    if (o.dryRun) return;
    try {
      revision = await o.store!.put(key, progress(line, complete), revision);
    } catch (err) {
      if (err instanceof StateStoreError && err.code === STATE_ERROR_CODES.conflict) {
        throw new BackfillError(
          BACKFILL_ERROR_CODES.concurrent,
          `another backfill of ${basename(o.file)} is running (its progress record changed underneath this one); let it finish`,
          { cause: err },
        );
      }
      throw err;
    }
  };
  // Claim the file: a second run of it now conflicts instead of interleaving.
  await save(point.startAfter, false);

  const fileLabel = headerSafe(basename(o.file));
  const encoder = new TextEncoder();
  const publishOne = async (
    row: Extract<BatchRow, { record: unknown }>,
    subject: string,
    data: Uint8Array,
  ) => {
    const msgId = batchMsgId(sha256, row.line);
    const headers = {
      [INGEST_HEADERS.source]: 'batch',
      [INGEST_HEADERS.receivedAt]: now().toISOString(),
      [INGEST_HEADERS.traceparent]: formatTraceparent(traceFromSeed(msgId)),
      'Tally-Batch-File': fileLabel,
      'Tally-Batch-Line': String(row.line),
    };
    for (let attempt = 1; ; attempt++) {
      try {
        // The first attempt is sent before this function first awaits: calls keep the file's order.
        const ack = await o.publish(subject, data, { msgId, headers });
        stats.published++;
        if (ack.duplicate) stats.duplicates++;
        return;
      } catch (err) {
        if (attempt >= attempts) {
          throw new BackfillError(
            BACKFILL_ERROR_CODES.publish,
            `line ${row.line} could not be published after ${attempts} attempts: ${(err as Error).message}`,
            { cause: err },
          );
        }
        await sleep(retryDelayMs(attempt + 1, { initialMs: 250, maxMs: 5_000, jitter: 0 }));
      }
    }
  };

  let batch: Extract<BatchRow, { record: unknown }>[] = [];
  const flush = async (throughLine: number) => {
    if (!o.dryRun && batch.length > 0) {
      // Submitted in file order, so rows of one key stay in order (only a row retried after a
      // NATS hiccup lands behind later ones); at most PUBLISH_CONCURRENCY await their acks; the
      // batch is done when every row is acknowledged.
      let failure: unknown;
      const inFlight: Promise<void>[] = [];
      for (const row of batch) {
        if (failure !== undefined) break;
        if (inFlight.length >= PUBLISH_CONCURRENCY) await inFlight.shift();
        const data = encoder.encode(row.payload);
        const { subject } = await o.route(data, row.record);
        inFlight.push(
          publishOne(row, subject, data).catch((err: unknown) => {
            failure ??= err;
          }),
        );
      }
      await Promise.all(inFlight);
      if (failure !== undefined) throw failure;
    }
    batch = [];
    await save(throughLine, false);
    o.onProgress?.(stats);
  };

  const bucket = o.maxRate
    ? new TokenBucket({ requestsPerSecond: o.maxRate, burst: Math.max(1, Math.min(o.maxRate, batchSize)) })
    : undefined;
  let interrupted = false;
  let lastProgress = 0;
  for await (const row of readBatchFile(o.file, o.format, {
    ...(o.delimiter ? { delimiter: o.delimiter } : {}),
    onHeader: (raw) => {
      stats.bytesRead += Buffer.byteLength(raw) + 1;
      o.onHeader?.(raw);
    },
  })) {
    if (o.signal?.aborted) {
      interrupted = true;
      break;
    }
    // Progress by bytes of the rows handed on (approximate: blank lines and CRs are not counted).
    stats.bytesRead = Math.min(size, stats.bytesRead + Buffer.byteLength(row.raw) + 1);
    if (row.line <= point.startAfter) continue;
    if ('error' in row) {
      stats.bad++;
      o.onBadRow?.({ file: o.file, line: row.line, message: row.error, raw: row.raw });
    } else {
      if (bucket) {
        try {
          await bucket.acquire(o.signal);
        } catch {
          interrupted = true;
          break;
        }
      }
      stats.rows++;
      batch.push(row);
    }
    stats.line = row.line;
    if (batch.length >= batchSize) await flush(row.line);
    else if (o.onProgress && Date.now() - lastProgress > 250) {
      lastProgress = Date.now();
      o.onProgress(stats);
    }
  }
  // Rows read but not yet published are published (a stop finishes the batch in progress).
  await flush(stats.line);
  if (!interrupted) {
    stats.bytesRead = size;
    await save(stats.line, true);
  }
  o.onProgress?.(stats);
  return { ...stats, complete: !interrupted, interrupted };
}
