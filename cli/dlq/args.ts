// Argument parsing of `tally dlq list|show|replay`: pure (argv, environment and clock in, a plan
// out); every mistake is a UsageError (exit 2).
import { parseArgs } from 'node:util';
import { type DeadLetterFilter, parseTimeBound } from '../../runtime/flow/dead-letters/filter.ts';
import type { FlowRef } from '../../runtime/nats/flow-resources.ts';
import { parseFlowRef, positiveInt } from '../args.ts';
import { UsageError } from '../errors.ts';

export const DLQ_USAGE = `Usage: tally dlq <list|show|replay> --flow [NAMESPACE/]NAME [options]

Reads and replays the dead letters of a flow (its stream tally_dlq_<namespace>_<name>). Reading
never consumes or changes them.

  tally dlq list   --flow F [filters] [--limit N] [-o table|json]
      One line per dead letter, oldest first: stream sequence, when it was dead-lettered,
      attempts, reason, error class, source message id and the error message.
  tally dlq show   --flow F SEQ [-o text|json]
      The headers and the (pretty-printed) payload of one dead letter.
  tally dlq replay --flow F [filters] [SEQ...] [--limit N] [--dry-run] [--purge] [-o table|json]
      Puts each selected dead letter's original payload and headers back on the flow's ingest
      subject, under a new Nats-Msg-Id and with its original source message id, so it goes
      through the mapping and the sinks again with the same event id and idempotency key: a sink
      that already applied it sees a duplicate key. --dry-run shows what would be replayed;
      --purge deletes each dead letter once its replay is stored in the flow stream.

Options:
  --nats-url URL        NATS server(s), comma-separated (default $TALLY_NATS_URL)
  --flow [NS/]NAME      the IntegrationFlow; NS defaults to "default"
Filters (combined with AND; a repeated option matches any of its values):
  --reason R            Tally-Error-Reason, e.g. mapping_validation, invalid_json, sink_rejected
  --error-class C       Tally-Error-Class, e.g. CanonicalValidationError, SinkError
  --since T, --until T  dead-lettered at or after / before T: a duration back from now
                        (30m, 2h, 7d) or an RFC 3339 time (2026-11-20T10:00:00Z)
  --limit N             at most N dead letters (list: default 100)

Exit status: 0 done, 1 failed (NATS unreachable, flow streams missing, a replay not stored),
2 usage error.`;

export interface Common {
  servers: string[];
  flow: FlowRef;
}

export type DlqPlan =
  | { command: 'help' }
  | { command: 'list'; common: Common; filter: DeadLetterFilter; limit: number; output: 'table' | 'json' }
  | { command: 'show'; common: Common; seq: number; output: 'text' | 'json' }
  | {
      command: 'replay';
      common: Common;
      filter: DeadLetterFilter;
      limit: number | undefined;
      dryRun: boolean;
      purge: boolean;
      output: 'table' | 'json';
    };

export const DEFAULT_LIST_LIMIT = 100;
function timeBound(text: string | undefined, option: string, now: Date): Date | undefined {
  if (text === undefined) return undefined;
  try {
    return parseTimeBound(text, now);
  } catch (err) {
    throw new UsageError(`${option} ${(err as Error).message}`);
  }
}

function nonEmpty(values: string[] | undefined, option: string): string[] | undefined {
  if (!values) return undefined;
  for (const v of values) if (v.trim() === '') throw new UsageError(`${option} needs a value`);
  return values.map((v) => v.trim());
}

export function parseDlqArgs(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  now: Date,
): DlqPlan {
  const [sub, ...rest] = argv;
  if (!sub || sub === '--help' || sub === '-h' || sub === 'help') {
    if (!sub) throw new UsageError(`missing subcommand\n\n${DLQ_USAGE}`);
    return { command: 'help' };
  }
  if (sub !== 'list' && sub !== 'show' && sub !== 'replay')
    throw new UsageError(`unknown subcommand "${sub}": expected list, show or replay\n\n${DLQ_USAGE}`);
  const { values, positionals } = parseArgs({
    args: [...rest],
    options: {
      'nats-url': { type: 'string' },
      flow: { type: 'string' },
      reason: { type: 'string', multiple: true },
      'error-class': { type: 'string', multiple: true },
      since: { type: 'string' },
      until: { type: 'string' },
      limit: { type: 'string' },
      'dry-run': { type: 'boolean' },
      purge: { type: 'boolean' },
      output: { type: 'string', short: 'o' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) return { command: 'help' };

  const url = values['nats-url'] ?? env.TALLY_NATS_URL;
  if (!url) throw new UsageError(`--nats-url (or TALLY_NATS_URL) is required\n\n${DLQ_USAGE}`);
  const servers = url
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (servers.length === 0) throw new UsageError(`--nats-url ${url}: no server given`);
  if (!values.flow) throw new UsageError(`--flow [NAMESPACE/]NAME is required\n\n${DLQ_USAGE}`);
  const common: Common = { servers, flow: parseFlowRef(values.flow) };

  const selectors = ['reason', 'error-class', 'since', 'until', 'limit'] as const;
  if (sub === 'show') {
    for (const o of [...selectors, 'dry-run', 'purge'] as const)
      if (values[o] !== undefined) throw new UsageError(`tally dlq show takes no --${o}`);
    if (positionals.length !== 1)
      throw new UsageError(`tally dlq show needs exactly one SEQ\n\n${DLQ_USAGE}`);
    const output = values.output ?? 'text';
    if (output !== 'text' && output !== 'json')
      throw new UsageError(`-o ${output} is not supported by show: expected text or json`);
    return { command: 'show', common, seq: positiveInt(positionals[0]!, 'SEQ'), output };
  }

  const since = timeBound(values.since, '--since', now);
  const until = timeBound(values.until, '--until', now);
  if (since && until && since.getTime() >= until.getTime())
    throw new UsageError(`--since ${values.since} is not before --until ${values.until}`);
  const reasons = nonEmpty(values.reason, '--reason');
  const errorClasses = nonEmpty(values['error-class'], '--error-class');
  const filter: DeadLetterFilter = {
    ...(reasons ? { reasons } : {}),
    ...(errorClasses ? { errorClasses } : {}),
    ...(since ? { since } : {}),
    ...(until ? { until } : {}),
  };
  const limit = values.limit === undefined ? undefined : positiveInt(values.limit, '--limit');
  const output = values.output ?? 'table';
  if (output !== 'table' && output !== 'json')
    throw new UsageError(`-o ${output} is not supported by ${sub}: expected table or json`);

  if (sub === 'list') {
    for (const o of ['dry-run', 'purge'] as const)
      if (values[o] !== undefined)
        throw new UsageError(`tally dlq list takes no --${o} (did you mean replay?)`);
    if (positionals.length > 0)
      throw new UsageError(`tally dlq list takes no SEQ: use tally dlq show --flow F ${positionals[0]}`);
    return { command: 'list', common, filter, limit: limit ?? DEFAULT_LIST_LIMIT, output };
  }
  const seqs = positionals.map((p) => positiveInt(p, 'SEQ'));
  return {
    command: 'replay',
    common,
    filter: seqs.length > 0 ? { ...filter, seqs } : filter,
    limit,
    dryRun: values['dry-run'] === true,
    purge: values.purge === true,
    output,
  };
}

export { parseFlowRef };
