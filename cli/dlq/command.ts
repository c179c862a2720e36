// `tally dlq list|show|replay`: read a flow's dead letters and put them back through the flow.
// Parsing is in dlq-args.ts, printing in dlq-format.ts, the NATS side in runtime/flow/dead-letters/.
import { DeadLetterError } from '../../runtime/flow/dead-letters/errors.ts';
import type { DeadLetterSummary } from '../../runtime/flow/dead-letters/record.ts';
import { newReplayRunId, replayMsgId } from '../../runtime/flow/dead-letters/replay.ts';
import { DeadLetterStore } from '../../runtime/flow/dead-letters/store.ts';
import { UsageError } from '../errors.ts';
import { DLQ_USAGE, type DlqPlan, parseDlqArgs } from './args.ts';
import {
  formatListTable,
  formatReplayTable,
  formatShowText,
  type ReplayRow,
  showJson,
  summaryJson,
} from './format.ts';
import { createProgress, type ProgressStream } from './progress.ts';

export interface DlqIo {
  stdout: NodeJS.WritableStream;
  stderr: ProgressStream;
  env?: Readonly<Record<string, string | undefined>>;
  now?: () => Date;
}

/** A replay stops after this many failures in a row (NATS is likely gone); the rest is not attempted. */
export const MAX_CONSECUTIVE_FAILURES = 5;

export async function dlqCommand(
  argv: string[],
  io: DlqIo = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  const env = io.env ?? process.env;
  try {
    const plan = parseDlqArgs(argv, env, (io.now ?? (() => new Date()))());
    if (plan.command === 'help') {
      io.stdout.write(`${DLQ_USAGE}\n`);
      return 0;
    }
    const store = await DeadLetterStore.open({ servers: plan.common.servers, flow: plan.common.flow });
    try {
      if (plan.command === 'list') return await list(store, plan, io);
      if (plan.command === 'show') return await show(store, plan, io);
      return await replay(store, plan, io);
    } finally {
      await store.close();
    }
  } catch (err) {
    const usage = err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    io.stderr.write(`tally dlq: ${(err as Error).message}\n`);
    if (!usage && !(err instanceof DeadLetterError) && (err as Error).stack && env.TALLY_DEBUG)
      io.stderr.write(`${(err as Error).stack}\n`);
    return usage ? 2 : 1;
  }
}

async function collect(
  store: DeadLetterStore,
  plan: Extract<DlqPlan, { command: 'list' | 'replay' }>,
): Promise<{ items: DeadLetterSummary[]; matched: number; missing: number[] }> {
  const items: DeadLetterSummary[] = [];
  const wanted = new Set(plan.filter.seqs ?? []);
  let matched = 0;
  for await (const d of store.scan(plan.filter)) {
    matched++;
    wanted.delete(d.seq);
    if (plan.limit === undefined || items.length < plan.limit) items.push(d);
  }
  return { items, matched, missing: [...wanted] };
}

async function list(store: DeadLetterStore, plan: Extract<DlqPlan, { command: 'list' }>, io: DlqIo) {
  const { items, matched } = await collect(store, plan);
  const stream = store.names.deadLetterStream;
  if (plan.output === 'json') {
    io.stdout.write(
      `${JSON.stringify({ flow: store.flowId, stream, matched, deadLetters: items.map(summaryJson) }, null, 2)}\n`,
    );
  } else if (items.length > 0) {
    io.stdout.write(formatListTable(items));
  }
  const filtered = Object.keys(plan.filter).length > 0;
  if (matched === 0) io.stderr.write(`no dead letters in ${stream}${filtered ? ' match' : ''}\n`);
  else if (items.length < matched)
    io.stderr.write(`showing ${items.length} of ${matched} matching dead letters (--limit ${plan.limit})\n`);
  return 0;
}

async function show(store: DeadLetterStore, plan: Extract<DlqPlan, { command: 'show' }>, io: DlqIo) {
  const stream = store.names.deadLetterStream;
  const d = await store.get(plan.seq);
  if (!d) {
    io.stderr.write(
      `tally dlq: no dead letter at sequence ${plan.seq} in ${stream} (never written, or deleted by replay --purge); ` +
        `see tally dlq list --flow ${store.flowId}\n`,
    );
    return 1;
  }
  io.stdout.write(
    plan.output === 'json' ? `${JSON.stringify(showJson(d, stream), null, 2)}\n` : formatShowText(d, stream),
  );
  return 0;
}

async function replay(store: DeadLetterStore, plan: Extract<DlqPlan, { command: 'replay' }>, io: DlqIo) {
  const target = await store.replayTarget();
  const subject = target.description;
  const { items, matched, missing } = await collect(store, plan);
  const stream = store.names.deadLetterStream;
  for (const seq of missing)
    io.stderr.write(`tally dlq: no dead letter at sequence ${seq} in ${stream} matches the filters\n`);
  const runId = newReplayRunId();
  const write = (rows: ReplayRow[], extra: Record<string, unknown>) => {
    if (plan.output === 'json')
      io.stdout.write(
        `${JSON.stringify({ flow: store.flowId, stream, subject, ...extra, items: rows }, null, 2)}\n`,
      );
    else if (rows.length > 0) io.stdout.write(formatReplayTable(rows));
  };
  const more = matched > items.length ? ` (${matched} match; --limit ${plan.limit})` : '';

  if (plan.dryRun) {
    write(
      items.map((d) => ({
        seq: d.seq,
        sourceMsgId: d.sourceMsgId,
        reason: d.reason,
        result: 'would replay',
        msgId: replayMsgId(runId, d.seq, d.sourceMsgId),
      })),
      { dryRun: true, purge: plan.purge },
    );
    io.stderr.write(
      `dry run: would replay ${items.length} dead letter(s)${more} to ${subject}` +
        `${plan.purge ? ' and delete them from the dead-letter stream' : ''}; nothing was published or deleted\n`,
    );
    return missing.length > 0 ? 1 : 0;
  }

  const rows: ReplayRow[] = [];
  const progress = createProgress(io.stderr, items.length, 'replay');
  let failedInRow = 0;
  try {
    for (const s of items) {
      const row: ReplayRow = {
        seq: s.seq,
        sourceMsgId: s.sourceMsgId,
        reason: s.reason,
        result: 'not attempted',
      };
      rows.push(row);
      if (failedInRow >= MAX_CONSECUTIVE_FAILURES) continue;
      try {
        const d = await store.get(s.seq);
        if (!d) {
          row.result = 'gone';
        } else {
          const r = await store.replay(d, await target.subjectOf(d.data), runId);
          row.result = 'replayed';
          row.subject = r.subject;
          row.replaySeq = r.seq;
          row.msgId = r.msgId;
          // Only once the flow stream has the replay: the dead letter is never the only copy lost.
          if (plan.purge) row.purged = await store.remove(s.seq);
        }
        failedInRow = 0;
      } catch (err) {
        // A failed purge leaves the dead letter in place (replaying it again is harmless).
        if (row.result === 'replayed') row.purged = false;
        else row.result = 'failed';
        row.error = (err as Error).message;
        failedInRow++;
      }
      progress.tick();
    }
  } finally {
    progress.stop();
  }
  const count = (r: ReplayRow['result']) => rows.filter((x) => x.result === r).length;
  const failed = rows.filter((r) => r.error !== undefined || r.result === 'not attempted').length;
  const replayed = count('replayed');
  write(rows, { dryRun: false, purge: plan.purge, runId });
  const parts = [`replayed ${replayed} of ${items.length} dead letter(s)${more} to ${subject}`];
  if (plan.purge) parts.push(`purged ${rows.filter((r) => r.purged).length}`);
  if (count('gone') > 0) parts.push(`${count('gone')} already gone`);
  if (count('failed') > 0) parts.push(`${count('failed')} failed`);
  const purgeFailed = rows.filter((r) => r.result === 'replayed' && r.error).length;
  if (purgeFailed > 0) parts.push(`${purgeFailed} replayed but not purged`);
  if (count('not attempted') > 0)
    parts.push(`${count('not attempted')} not attempted after ${MAX_CONSECUTIVE_FAILURES} failures in a row`);
  io.stderr.write(`${parts.join('; ')}\n`);
  for (const r of rows.filter((x) => x.error)) io.stderr.write(`  seq ${r.seq}: ${r.error}\n`);
  return failed > 0 || missing.length > 0 ? 1 : 0;
}
