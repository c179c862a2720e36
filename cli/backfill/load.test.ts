import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  BatchFileError,
  fileSha256,
  formatFromName,
  parseJsonLine,
  readBatchFile,
} from '../../runtime/flow/batch/reader.ts';
import { memoryStateStore } from '../../runtime/flow/state/kv-store.ts';
import {
  BackfillError,
  type BackfillOptions,
  type BackfillProgress,
  backfill,
  batchMsgId,
  progressKey,
  resumePoint,
} from './load.ts';

const dir = mkdtempSync(join(tmpdir(), 'tally-backfill-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let fileSeq = 0;
function file(name: string, text: string): string {
  const p = join(dir, `${++fileSeq}-${name}`);
  writeFileSync(p, text);
  return p;
}

/** A stream stand-in with Nats-Msg-Id dedupe. */
function sink() {
  const stored = new Map<string, { subject: string; data: string; headers: Record<string, string> }>();
  const publish: BackfillOptions['publish'] = async (subject, data, { msgId, headers }) => {
    const duplicate = stored.has(msgId);
    if (!duplicate) stored.set(msgId, { subject, data: Buffer.from(data).toString('utf8'), headers });
    return { duplicate };
  };
  return { stored, publish };
}

const route = async () => ({ subject: 'tally.ns.flow.in.0' });

describe('reader', () => {
  it('knows formats by extension', () => {
    expect(['a.csv', 'B.CSV', 'x.jsonl', 'x.ndjson', 'x.json', 'x'].map(formatFromName)).toEqual([
      'csv',
      'csv',
      'jsonl',
      'jsonl',
      undefined,
      undefined,
    ]);
  });

  it('reads JSON lines, keeping each line as it is and reporting bad ones', async () => {
    const p = file('a.jsonl', '{"id":12345678901234567890}\r\n\n[1]\n{oops\n{"id":2}');
    const rows = [];
    for await (const r of readBatchFile(p, 'jsonl')) rows.push(r);
    expect(rows.map((r) => ('error' in r ? [r.line, 'bad'] : [r.line, r.payload]))).toEqual([
      [1, '{"id":12345678901234567890}'],
      [3, 'bad'],
      [4, 'bad'],
      [5, '{"id":2}'],
    ]);
    expect(parseJsonLine('null')).toEqual({ error: expect.stringMatching(/not an object \(null\)/) });
  });

  it('refuses a CSV without a usable header', async () => {
    const read = async (text: string) => {
      for await (const _ of readBatchFile(file('h.csv', text), 'csv')) {
        // drain
      }
    };
    await expect(read('')).rejects.toThrow(/needs a header row/);
    await expect(read('id,id\n1,2\n')).rejects.toThrow(BatchFileError);
  });
});

describe('resumePoint', () => {
  const p = (line: number, complete: boolean): BackfillProgress => ({
    v: 1,
    file: 'f.csv',
    sha256: 'ab',
    format: 'csv',
    size: 1,
    line,
    published: line,
    duplicates: 0,
    bad: 0,
    complete,
    startedAt: 't0',
    updatedAt: 't1',
  });
  it('starts fresh, resumes, refuses or reports done', () => {
    expect(resumePoint(undefined, { resume: false, force: false })).toEqual({ startAfter: 0 });
    expect(resumePoint(undefined, { resume: true, force: false })).toMatchObject({ startAfter: 0 });
    expect(resumePoint(p(40, false), { resume: true, force: false })).toMatchObject({ startAfter: 40 });
    expect(resumePoint(p(40, false), { resume: false, force: false })).toMatchObject({
      refuse: expect.stringMatching(/--resume .* --force/),
    });
    expect(resumePoint(p(40, true), { resume: false, force: false })).toMatchObject({
      refuse: expect.stringMatching(/loaded completely/),
    });
    expect(resumePoint(p(40, true), { resume: true, force: false })).toMatchObject({
      done: expect.any(String),
    });
    expect(resumePoint(p(40, true), { resume: false, force: true })).toMatchObject({ startAfter: 0 });
  });
});

describe('backfill', () => {
  const csv = ['id,name,note', '1,Ann,"a, b"', '2,Bo,"x\ny"', '3,Cy', '4,Di,"say ""hi"""', ''].join('\n');

  it('publishes each good row once with file-hash:line ids, skips bad rows, records progress', async () => {
    const p = file('orders.csv', csv);
    const store = memoryStateStore();
    const { stored, publish } = sink();
    const bad: number[] = [];
    const r = await backfill({
      file: p,
      format: 'csv',
      route,
      publish,
      store,
      batchSize: 2,
      onBadRow: (b) => bad.push(b.line),
    });
    const sha = await fileSha256(p);
    expect(r).toMatchObject({ complete: true, interrupted: false, rows: 3, published: 3, bad: 1, line: 6 });
    expect(bad).toEqual([5]);
    expect([...stored.keys()]).toEqual([batchMsgId(sha, 2), batchMsgId(sha, 3), batchMsgId(sha, 6)]);
    expect(JSON.parse(stored.get(batchMsgId(sha, 3))!.data)).toEqual({ id: '2', name: 'Bo', note: 'x\ny' });
    expect(stored.get(batchMsgId(sha, 6))!.headers).toMatchObject({
      'Tally-Source': 'batch',
      'Tally-Batch-Line': '6',
    });
    const saved = await store.get<BackfillProgress>(progressKey(sha));
    expect(saved?.value).toMatchObject({ complete: true, line: 6, published: 3, bad: 1 });

    // A second run is refused; --resume has nothing to do; --force sends all again (deduped here).
    await expect(backfill({ file: p, format: 'csv', route, publish, store })).rejects.toThrow(BackfillError);
    const again = await backfill({ file: p, format: 'csv', route, publish, store, resume: true });
    expect(again.alreadyDone).toMatch(/nothing to resume/);
    const forced = await backfill({ file: p, format: 'csv', route, publish, store, force: true });
    expect(forced).toMatchObject({ published: 3, duplicates: 3 });
  });

  it('stops after the batch in progress when aborted and resumes after it', async () => {
    const lines = ['{"n":0}'];
    for (let i = 1; i < 50; i++) lines.push(JSON.stringify({ n: i }));
    const p = file('big.jsonl', `${lines.join('\n')}\n`);
    const store = memoryStateStore();
    const { stored, publish } = sink();
    const stop = new AbortController();
    let seen = 0;
    const first = await backfill({
      file: p,
      format: 'jsonl',
      route,
      publish: async (...a) => {
        if (++seen === 12) stop.abort();
        return publish(...a);
      },
      store,
      batchSize: 10,
      signal: stop.signal,
    });
    expect(first.interrupted).toBe(true);
    expect(first.line % 10).toBe(0);
    expect(stored.size).toBe(first.line);
    const second = await backfill({
      file: p,
      format: 'jsonl',
      route,
      publish,
      store,
      resume: true,
      batchSize: 10,
    });
    expect(second).toMatchObject({
      complete: true,
      startAfter: first.line,
      published: 50 - first.line,
      duplicates: 0,
    });
    expect(stored.size).toBe(50);
  });

  it('counts without publishing in a dry run', async () => {
    const p = file('dry.csv', csv);
    const { stored, publish } = sink();
    const r = await backfill({ file: p, format: 'csv', route, publish, dryRun: true });
    expect(r).toMatchObject({ rows: 3, bad: 1, published: 0 });
    expect(stored.size).toBe(0);
  });
});
