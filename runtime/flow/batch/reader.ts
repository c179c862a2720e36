// Batch files as a stream of rows: CSV (header row, RFC 4180) or JSON lines, each good row turned
// into one JSON record with its line number; bad rows carry the reason instead. Streams the file,
// so memory stays flat whatever its size.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { TallyError } from '../../../api/errors.ts';
import { CsvParser, csvRowToRecord, headerProblem } from './csv.ts';

export type BatchFormat = 'csv' | 'jsonl';

export const BATCH_ERROR_CODES = {
  header: 'BATCH_BAD_HEADER',
  unreadable: 'BATCH_FILE_UNREADABLE',
  format: 'BATCH_UNKNOWN_FORMAT',
} as const;

/** The file as a whole cannot be read as a batch (no header, unreadable, unknown format). */
export class BatchFileError extends TallyError {
  override name = 'BatchFileError';
  readonly code: (typeof BATCH_ERROR_CODES)[keyof typeof BATCH_ERROR_CODES];
  constructor(code: BatchFileError['code'], message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

export type BatchRow =
  | { line: number; raw: string; record: unknown; payload: string }
  | { line: number; raw: string; error: string };

/** The format named by a file name's extension, if it names one. */
export function formatFromName(file: string): BatchFormat | undefined {
  const lower = file.toLowerCase();
  if (lower.endsWith('.csv')) return 'csv';
  if (lower.endsWith('.jsonl') || lower.endsWith('.ndjson') || lower.endsWith('.jsonlines')) return 'jsonl';
  return undefined;
}

/** One JSON line: a record (a JSON object) or the reason it is not one. */
export function parseJsonLine(text: string): { record: Record<string, unknown> } | { error: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { error: `is not valid JSON: ${(err as Error).message}` };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return {
      error: `is JSON but not an object (${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}); each line must be one record`,
    };
  }
  return { record: value as Record<string, unknown> };
}

/** sha256 of a file's bytes, streamed. */
export async function fileSha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  try {
    for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  } catch (cause) {
    throw new BatchFileError(
      BATCH_ERROR_CODES.unreadable,
      `cannot read ${file}: ${(cause as Error).message}`,
      {
        cause,
      },
    );
  }
  return hash.digest('hex');
}

export interface ReadOptions {
  /** CSV field separator; default ",". */
  delimiter?: string;
  /** CSV: called once with the header row's raw text (for a reject file). */
  onHeader?: (raw: string) => void;
}

async function* chunksOf(file: string): AsyncGenerator<string> {
  const stream = createReadStream(file, { encoding: 'utf8', highWaterMark: 64 * 1024 });
  try {
    for await (const chunk of stream) {
      yield chunk as string;
    }
  } catch (cause) {
    throw new BatchFileError(
      BATCH_ERROR_CODES.unreadable,
      `cannot read ${file}: ${(cause as Error).message}`,
      {
        cause,
      },
    );
  } finally {
    stream.destroy();
  }
}

async function* csvRows(file: string, o: ReadOptions): AsyncGenerator<BatchRow> {
  const parser = new CsvParser(o.delimiter ? { delimiter: o.delimiter } : {});
  let header: string[] | undefined;
  const handle = function* (records: ReturnType<CsvParser['push']>): Generator<BatchRow> {
    for (const r of records) {
      if (!header) {
        const problem = r.error ?? headerProblem(r.fields);
        if (problem) {
          throw new BatchFileError(
            BATCH_ERROR_CODES.header,
            `${file}:${r.line}: the header row is unusable: ${problem}`,
          );
        }
        header = r.fields;
        o.onHeader?.(r.raw);
        continue;
      }
      if (r.error) {
        yield { line: r.line, raw: r.raw, error: r.error };
        continue;
      }
      const row = csvRowToRecord(header, r.fields);
      if ('error' in row) yield { line: r.line, raw: r.raw, error: row.error };
      else yield { line: r.line, raw: r.raw, record: row.record, payload: JSON.stringify(row.record) };
    }
  };
  for await (const chunk of chunksOf(file)) yield* handle(parser.push(chunk));
  yield* handle(parser.end());
  if (!header) {
    throw new BatchFileError(
      BATCH_ERROR_CODES.header,
      `${file} is empty: a CSV file needs a header row naming the columns`,
    );
  }
}

async function* jsonlRows(file: string): AsyncGenerator<BatchRow> {
  let rest = '';
  let line = 0;
  let first = true;
  const handle = function* (text: string): Generator<BatchRow> {
    line++;
    const t = text.endsWith('\r') ? text.slice(0, -1) : text;
    if (t.trim() === '') return;
    const parsed = parseJsonLine(t);
    if ('error' in parsed) yield { line, raw: t, error: parsed.error };
    // The line as it is: no re-serialising (numbers keep every digit the file had).
    else yield { line, raw: t, record: parsed.record, payload: t.trim() };
  };
  for await (let chunk of chunksOf(file)) {
    if (first) {
      first = false;
      if (chunk.charCodeAt(0) === 0xfeff) chunk = chunk.slice(1);
    }
    rest += chunk;
    let nl = rest.indexOf('\n');
    let start = 0;
    while (nl >= 0) {
      yield* handle(rest.slice(start, nl));
      start = nl + 1;
      nl = rest.indexOf('\n', start);
    }
    rest = rest.slice(start);
  }
  if (rest !== '') yield* handle(rest);
}

/** The rows of a batch file, in order. Throws BatchFileError when the file as a whole is unusable. */
export function readBatchFile(
  file: string,
  format: BatchFormat,
  options: ReadOptions = {},
): AsyncGenerator<BatchRow> {
  return format === 'csv' ? csvRows(file, options) : jsonlRows(file);
}
