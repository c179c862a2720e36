// `tally xref get|list|put|delete`: show and repair a namespace's cross-reference store (the KV
// bucket tally_xref_<namespace>, see runtime/xref/). Parsing and printing are pure functions
// (exported for cli/xref.test.ts); xrefCommand does the NATS side.
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { CANONICAL_ENTITIES } from '../api/canonical/index.ts';
import { DNS_LABEL } from '../api/common.ts';
import { connectState, type StateConnection } from '../runtime/flow/state/kv-store.ts';
import { parseRecordKey, recordFilter, TALLY_SYSTEM, xrefBucketName } from '../runtime/xref/keys.ts';
import type { XrefRecord } from '../runtime/xref/record.ts';
import { type XrefStore, xrefStore } from '../runtime/xref/store.ts';
import { positiveInt } from './args.ts';
import { DEFAULT_LIST_LIMIT } from './dlq/args.ts';
import { printable, table } from './dlq/format.ts';
import { createProgress, type ProgressStream } from './dlq/progress.ts';
import { InputError, UsageError } from './errors.ts';

type Sub = 'get' | 'list' | 'put' | 'delete';
const SUBCOMMANDS: readonly Sub[] = ['get', 'list', 'put', 'delete'];

const SYNOPSIS: Record<Sub, { line: string; about: string }> = {
  get: {
    line: 'tally xref get    --entity E (--key KEY | --system SYS --id ID) [-o text|json]',
    about: `One record, found by its canonical key or by the id one system gives it: the key, then
      per system its id and who wrote it (flow or "cli"), with which entity version and when.`,
  },
  list: {
    line: 'tally xref list   [--entity E] [--system SYS] [--limit N] [-o text|json|csv]',
    about: `Records sorted by entity and key, at most --limit (default ${DEFAULT_LIST_LIMIT}); --system keeps
      those that have an id in SYS. The count goes to stderr.`,
  },
  put: {
    line: 'tally xref put    --entity E --key KEY --id SYS=ID [--id SYS=ID ...] [--data FILE] [-o text|json]',
    about: `Records the object's id in each SYS (provenance "cli"), replacing an id SYS had before,
      and with --data its master data (a JSON file); prints the stored record. An id that
      another record of the entity holds is refused: unlink it there first.`,
  },
  delete: {
    line: 'tally xref delete --entity E --key KEY [--system SYS]',
    about: `With --system forgets only that system's id of the object (unlink), else the whole record
      and its index entries.`,
  },
};

const OPTIONS_TEXT = `Options:
  --nats-url URL         NATS server(s), comma-separated (default $TALLY_NATS_URL)
  -n, --namespace NS     whose store: the KV bucket tally_xref_<NS> (default "default")
  --entity E             ${CANONICAL_ENTITIES.join(', ')}
  --key KEY              the canonical business key (the system "${TALLY_SYSTEM}")
  --system SYS           a system name, lowercase a-z, 0-9 and "-" (e.g. shopify, netsuite)
  --id ID, --id SYS=ID   get: the id in --system; put: an id to record (repeatable)
  --limit N              list: at most N records (default ${DEFAULT_LIST_LIMIT})
  --data FILE            put: master data (JSON) to keep with the record
  -o, --output FORMAT    text (default), json; list also csv

Exit status: 0 done, 1 failed (no such record, nothing to delete, an id held by another record,
NATS unreachable), 2 usage error.`;

function usageOf(subs: readonly Sub[]): string {
  const head =
    subs.length === 1
      ? `Usage: ${SYNOPSIS[subs[0]!].line.replace(/^(tally xref \w+) +/, '$1 ')}\n\n  ${SYNOPSIS[subs[0]!].about.replace(/\n {6}/g, '\n  ')}`
      : `Usage: tally xref <get|list|put|delete> [options]

Shows and repairs the cross-reference store of a namespace (JetStream KV bucket
tally_xref_<namespace>): per business object its canonical key, its id in each system and who
wrote each id. Flows write it when a target answers with its id; mappings read it with
$xref(entity, system, id, toSystem).

${subs.map((s) => `  ${SYNOPSIS[s].line}\n      ${SYNOPSIS[s].about}`).join('\n')}`;
  return `${head}\n\n${OPTIONS_TEXT}`;
}

export const XREF_USAGE = usageOf(SUBCOMMANDS);

/** The usage text of one subcommand. */
export function xrefSubUsage(sub: Sub): string {
  return usageOf([sub]);
}

export type XrefOutput = 'text' | 'json' | 'csv';

export interface XrefCommon {
  servers: string[];
  namespace: string;
  bucket: string;
}

export type XrefPlan =
  | { command: 'help'; usage: string }
  | {
      command: 'get';
      common: XrefCommon;
      entity: string;
      by: { key: string } | { system: string; id: string };
      output: 'text' | 'json';
    }
  | {
      command: 'list';
      common: XrefCommon;
      entity: string | undefined;
      system: string | undefined;
      limit: number;
      output: XrefOutput;
    }
  | {
      command: 'put';
      common: XrefCommon;
      entity: string;
      key: string;
      ids: Record<string, string>;
      dataFile: string | undefined;
      output: 'text' | 'json';
    }
  | { command: 'delete'; common: XrefCommon; entity: string; key: string; system: string | undefined };

/** System names: what index keys and subjects can carry. */
export const SYSTEM_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function parseEntity(text: string): string {
  if ((CANONICAL_ENTITIES as readonly string[]).includes(text)) return text;
  const near = CANONICAL_ENTITIES.find((e) => e.toLowerCase() === text.toLowerCase());
  throw new UsageError(
    `--entity ${text} is not a canonical entity${near ? ` (did you mean ${near}?)` : ''}: expected one of ${CANONICAL_ENTITIES.join(', ')}`,
  );
}

/** A system name for --system; "tally" (the canonical key) only where `allowTally`. */
export function parseSystem(text: string, option: string, allowTally: boolean): string {
  if (!SYSTEM_NAME.test(text))
    throw new UsageError(
      `${option} ${text}: a system name is a lowercase identifier (a-z, 0-9 and "-" inside, e.g. shopify)`,
    );
  if (text === TALLY_SYSTEM && !allowTally)
    throw new UsageError(
      `${option} ${TALLY_SYSTEM}: the system "${TALLY_SYSTEM}" is the canonical key itself (--key), not an id the store keeps`,
    );
  return text;
}

/** `--id SYSTEM=ID` of put: split at the first "=" (the id may contain more). */
export function parseIdAssignment(text: string): { system: string; id: string } {
  const eq = text.indexOf('=');
  if (eq < 0) throw new UsageError(`--id ${text}: expected SYSTEM=ID, e.g. --id shopify=5123456789012`);
  const system = text.slice(0, eq).trim();
  const id = text.slice(eq + 1);
  if (system === TALLY_SYSTEM)
    throw new UsageError(
      `--id ${text}: the system "${TALLY_SYSTEM}" is the canonical key itself; give it as --key, not as an id`,
    );
  parseSystem(system, `--id ${text}:`, false);
  if (id.trim() === '') throw new UsageError(`--id ${text}: the id is empty`);
  return { system, id };
}

/** Every --id of put as system -> id; the same system twice with different ids is a mistake. */
export function parseIdAssignments(texts: readonly string[]): Record<string, string> {
  const ids: Record<string, string> = {};
  for (const t of texts) {
    const { system, id } = parseIdAssignment(t);
    if (ids[system] !== undefined && ids[system] !== id)
      throw new UsageError(`--id ${system}= given twice (${ids[system]} and ${id}): one id per system`);
    ids[system] = id;
  }
  return ids;
}

/** `--nats-url` (or TALLY_NATS_URL) as the list of servers. */
export function parseServers(url: string | undefined, usage: string): string[] {
  if (!url) throw new UsageError(`--nats-url (or TALLY_NATS_URL) is required\n\n${usage}`);
  const servers = url
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (servers.length === 0) throw new UsageError(`--nats-url ${redactUrl(url)}: no server given`);
  return servers;
}

/** A server URL without its user, password or token: `nats://***@host:4222`. */
export function redactUrl(url: string): string {
  return url.replace(/^((?:[a-z][a-z0-9+.-]*:\/\/)?)[^@/]*@/i, '$1***@');
}

/** `message` with every server URL in it redacted (errors of the NATS client may quote them). */
export function scrubServers(message: string, servers: readonly string[]): string {
  let out = message;
  for (const s of servers) if (redactUrl(s) !== s) out = out.replaceAll(s, redactUrl(s));
  return out;
}

function nonEmpty(text: string | undefined, option: string): string | undefined {
  if (text === undefined) return undefined;
  if (text === '') throw new UsageError(`${option} needs a value`);
  return text;
}

function output<T extends XrefOutput>(text: string | undefined, sub: Sub, allowed: readonly T[]): T {
  const o = text ?? 'text';
  if (!(allowed as readonly string[]).includes(o))
    throw new UsageError(`-o ${o} is not supported by ${sub}: expected ${allowed.join(', ')}`);
  return o as T;
}

export function parseXrefArgs(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): XrefPlan {
  const [sub, ...rest] = argv;
  if (!sub || sub === '--help' || sub === '-h' || sub === 'help') {
    if (!sub) throw new UsageError(`missing subcommand\n\n${XREF_USAGE}`);
    return { command: 'help', usage: XREF_USAGE };
  }
  if (!(SUBCOMMANDS as readonly string[]).includes(sub))
    throw new UsageError(`unknown subcommand "${sub}": expected get, list, put or delete\n\n${XREF_USAGE}`);
  const s = sub as Sub;
  const usage = xrefSubUsage(s);
  const { values } = parseArgs({
    args: [...rest],
    options: {
      'nats-url': { type: 'string' },
      namespace: { type: 'string', short: 'n' },
      entity: { type: 'string' },
      key: { type: 'string' },
      system: { type: 'string' },
      id: { type: 'string', multiple: true },
      limit: { type: 'string' },
      data: { type: 'string' },
      output: { type: 'string', short: 'o' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: false,
    strict: true,
  });
  if (values.help) return { command: 'help', usage };

  const only: Record<Sub, readonly string[]> = {
    get: ['key', 'system', 'id', 'output'],
    list: ['system', 'limit', 'output'],
    put: ['key', 'id', 'data', 'output'],
    delete: ['key', 'system'],
  };
  for (const o of ['key', 'system', 'id', 'limit', 'data', 'output'] as const)
    if (values[o] !== undefined && !only[s].includes(o))
      throw new UsageError(`tally xref ${s} takes no --${o}\n\n${usage}`);

  const servers = parseServers(values['nats-url'] ?? env.TALLY_NATS_URL, usage);
  const namespace = values.namespace ?? 'default';
  if (!DNS_LABEL.test(namespace))
    throw new UsageError(
      `--namespace ${namespace}: not a namespace name (a DNS label: lowercase a-z, 0-9, -)`,
    );
  const common: XrefCommon = { servers, namespace, bucket: xrefBucketName(namespace) };
  const entityText = nonEmpty(values.entity, '--entity');
  const entity = entityText === undefined ? undefined : parseEntity(entityText);
  const key = nonEmpty(values.key, '--key');

  if (s === 'list') {
    const system = values.system === undefined ? undefined : parseSystem(values.system, '--system', true);
    const limit = values.limit === undefined ? DEFAULT_LIST_LIMIT : positiveInt(values.limit, '--limit');
    return {
      command: 'list',
      common,
      entity,
      system,
      limit,
      output: output(values.output, s, ['text', 'json', 'csv']),
    };
  }
  if (entity === undefined) throw new UsageError(`--entity is required\n\n${usage}`);

  if (s === 'get') {
    const ids = values.id ?? [];
    if (ids.length > 1) throw new UsageError('tally xref get takes one --id');
    const id = nonEmpty(ids[0], '--id');
    const system = values.system === undefined ? undefined : parseSystem(values.system, '--system', true);
    const out = output(values.output, s, ['text', 'json'] as const);
    if (key !== undefined) {
      if (system !== undefined || id !== undefined)
        throw new UsageError('tally xref get takes either --key KEY or --system SYS --id ID, not both');
      return { command: 'get', common, entity, by: { key }, output: out };
    }
    if (system === undefined || id === undefined) {
      const hint = id?.includes('=') ? ` (put takes --id SYS=ID; get takes --system SYS --id ID)` : '';
      throw new UsageError(`tally xref get needs --key KEY, or --system SYS with --id ID${hint}\n\n${usage}`);
    }
    return { command: 'get', common, entity, by: { system, id }, output: out };
  }

  if (key === undefined) throw new UsageError(`--key is required\n\n${usage}`);
  if (s === 'put') {
    if (!values.id || values.id.length === 0)
      throw new UsageError(`tally xref put needs at least one --id SYSTEM=ID\n\n${usage}`);
    return {
      command: 'put',
      common,
      entity,
      key,
      ids: parseIdAssignments(values.id),
      dataFile: nonEmpty(values.data, '--data'),
      output: output(values.output, s, ['text', 'json'] as const),
    };
  }
  const system = values.system === undefined ? undefined : parseSystem(values.system, '--system', false);
  return { command: 'delete', common, entity, key, system };
}

// ---- printing (pure) ----

const sortedSystems = (r: XrefRecord) => Object.keys(r.ids).sort();

/** `by default/shopify-orders, version 3, at 2026-…` */
function provenanceText(r: XrefRecord, system: string): string {
  const p = r.provenance[system];
  if (!p) return '';
  const parts = [`by ${printable(p.by)}`];
  if (p.version !== undefined) parts.push(`version ${printable(p.version)}`);
  parts.push(`at ${printable(p.at)}`);
  return `(${parts.join(', ')})`;
}

/** One record for a terminal: entity, key, one line per system id, then master data if any. */
export function formatRecordText(r: XrefRecord): string {
  const lines = [`entity  ${r.entity}`, `key     ${printable(r.key)}`];
  const systems = sortedSystems(r);
  if (systems.length === 0) lines.push('ids     (none)');
  else {
    lines.push('ids');
    const rows = systems.map((s) => [s, printable(r.ids[s]!), provenanceText(r, s)]);
    const w0 = Math.max(...rows.map((x) => [...x[0]!].length));
    const w1 = Math.max(...rows.map((x) => [...x[1]!].length));
    for (const [s, id, p] of rows)
      lines.push(`  ${s!.padEnd(w0)}  ${id!}${' '.repeat(w1 - [...id!].length)}   ${p}`.trimEnd());
  }
  if (r.data !== undefined) {
    lines.push(`data${r.dataVersion !== undefined ? ` (version ${printable(r.dataVersion)})` : ''}`);
    for (const l of JSON.stringify(r.data, null, 2).split('\n')) lines.push(`  ${printable(l)}`);
  }
  return `${lines.join('\n')}\n`;
}

/** `netsuite=1042 shopify=5123456789012`, systems sorted. */
export function idsText(r: XrefRecord): string {
  return sortedSystems(r)
    .map((s) => `${s}=${printable(r.ids[s]!)}`)
    .join(' ');
}

export function formatRecordsTable(records: readonly XrefRecord[]): string {
  return table(
    ['ENTITY', 'KEY', 'SYSTEM=ID ...'],
    records.map((r) => [r.entity, printable(r.key), idsText(r) || '-']),
  );
}

const csvCell = (v: string) => (/[",\r\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v);

/** One row per id (a record without ids: one row with empty system and id), with its provenance. */
export function formatRecordsCsv(records: readonly XrefRecord[]): string {
  const lines = ['entity,key,system,id,by,version,at'];
  for (const r of records) {
    const systems = sortedSystems(r);
    if (systems.length === 0) lines.push([r.entity, r.key, '', '', '', '', ''].map(csvCell).join(','));
    for (const s of systems) {
      const p = r.provenance[s];
      lines.push(
        [r.entity, r.key, s, r.ids[s]!, p?.by ?? '', p?.version ?? '', p?.at ?? ''].map(csvCell).join(','),
      );
    }
  }
  return `${lines.join('\n')}\n`;
}

/** "3 records", and when --limit cut the list "(first 2 shown; --limit to see more)". */
export function countLine(total: number, shown: number): string {
  const n = `${total} record${total === 1 ? '' : 's'}`;
  return shown < total ? `${n} (first ${shown} shown; --limit to see more)` : n;
}

// ---- the command ----

export interface XrefIo {
  stdout: NodeJS.WritableStream;
  stderr: ProgressStream;
  env?: Readonly<Record<string, string | undefined>>;
  now?: () => Date;
}

/** Failures that are answers (not found, nothing to delete, refused): a message and exit 1. */
class XrefFailure extends Error {
  override name = 'XrefFailure';
}

/** Above this many records to read, list reports progress on stderr. */
const PROGRESS_FROM = 500;

export async function xrefCommand(
  argv: string[],
  io: XrefIo = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  const env = io.env ?? process.env;
  let servers: readonly string[] = [];
  try {
    const plan = parseXrefArgs(argv, env);
    if (plan.command === 'help') {
      io.stdout.write(`${plan.usage}\n`);
      return 0;
    }
    servers = plan.common.servers;
    // Read before connecting: a bad file fails without touching NATS.
    const data = plan.command === 'put' && plan.dataFile ? await readData(plan.dataFile) : undefined;
    const conn = await open(plan.common);
    try {
      const store = xrefStore(conn.store);
      if (plan.command === 'get') return await get(store, plan, io);
      if (plan.command === 'list') return await list(conn, store, plan, io);
      if (plan.command === 'put') return await put(store, plan, data, io, (io.now ?? (() => new Date()))());
      return await remove(store, plan, io);
    } finally {
      await conn.close();
    }
  } catch (err) {
    const usage = err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    io.stderr.write(`tally xref: ${scrubServers((err as Error).message, servers)}\n`);
    const expected = usage || err instanceof XrefFailure || err instanceof InputError;
    if (!expected && (err as Error).stack && env.TALLY_DEBUG)
      io.stderr.write(`${scrubServers((err as Error).stack!, servers)}\n`);
    return usage ? 2 : 1;
  }
}

async function readData(file: string): Promise<{ value: unknown }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new InputError(`cannot read --data ${file}: ${(err as Error).message}`);
  }
  try {
    return { value: JSON.parse(text) as unknown };
  } catch (err) {
    throw new InputError(`--data ${file} is not JSON: ${(err as Error).message}`);
  }
}

async function open(common: XrefCommon): Promise<StateConnection> {
  const where = common.servers.map(redactUrl).join(', ');
  try {
    return await connectState(common.servers, 'tally-xref', common.bucket, { history: 5 });
  } catch (err) {
    const cause = (err as Error).cause as Error | undefined;
    if ((err as Error).message.startsWith('cannot connect to NATS'))
      throw new XrefFailure(
        `cannot connect to NATS at ${where}: ${cause?.message ?? String(cause)}. ` +
          'Check --nats-url (or TALLY_NATS_URL) and that nats-server is running.',
      );
    throw new XrefFailure(
      `NATS at ${where}: ${(err as Error).message}. The cross-reference store needs JetStream (nats-server -js).`,
    );
  }
}

const where = (common: XrefCommon) => `in KV bucket ${common.bucket} (namespace ${common.namespace})`;

async function get(store: XrefStore, plan: Extract<XrefPlan, { command: 'get' }>, io: XrefIo) {
  const { entity, by } = plan;
  const record = 'key' in by ? await store.get(entity, by.key) : await store.find(entity, by.system, by.id);
  if (!record) {
    const what = 'key' in by ? `key ${by.key}` : `${by.system} id ${by.id}`;
    throw new XrefFailure(`no ${entity} record with ${printable(what)} ${where(plan.common)}`);
  }
  io.stdout.write(plan.output === 'json' ? `${JSON.stringify(record, null, 2)}\n` : formatRecordText(record));
  return 0;
}

async function list(
  conn: StateConnection,
  store: XrefStore,
  plan: Extract<XrefPlan, { command: 'list' }>,
  io: XrefIo,
) {
  // Keys first (cheap), sorted for a stable "first N"; records are read only as far as needed.
  const refs: { entity: string; key: string }[] = [];
  for await (const k of conn.store.keys(recordFilter(plan.entity))) {
    const ref = parseRecordKey(k);
    if (ref) refs.push(ref);
  }
  refs.sort((a, b) =>
    a.entity !== b.entity ? (a.entity < b.entity ? -1 : 1) : a.key < b.key ? -1 : a.key > b.key ? 1 : 0,
  );
  const wantsSystem = plan.system !== undefined && plan.system !== TALLY_SYSTEM;
  // Without --system every key is a match: read only the first --limit of them.
  const toRead = wantsSystem ? refs : refs.slice(0, plan.limit);
  const progress = createProgress(io.stderr, toRead.length >= PROGRESS_FROM ? toRead.length : 0, 'reading');
  const shown: XrefRecord[] = [];
  let total = wantsSystem ? 0 : refs.length;
  try {
    for (const ref of toRead) {
      const r = await store.get(ref.entity, ref.key);
      progress.tick();
      if (!r) {
        if (!wantsSystem) total--; // deleted since the keys were listed
        continue;
      }
      if (wantsSystem && r.ids[plan.system!] === undefined) continue;
      if (wantsSystem) total++;
      if (shown.length < plan.limit) shown.push(r);
    }
  } finally {
    progress.stop();
  }
  if (plan.output === 'json') io.stdout.write(`${JSON.stringify(shown, null, 2)}\n`);
  else if (plan.output === 'csv') io.stdout.write(formatRecordsCsv(shown));
  else if (shown.length > 0) io.stdout.write(formatRecordsTable(shown));
  io.stderr.write(`${countLine(Math.max(total, shown.length), shown.length)}\n`);
  return 0;
}

async function put(
  store: XrefStore,
  plan: Extract<XrefPlan, { command: 'put' }>,
  data: { value: unknown } | undefined,
  io: XrefIo,
  now: Date,
) {
  const { entity, key, ids } = plan;
  // An id is one object's: taking it from another record would leave two records claiming it.
  for (const [system, id] of Object.entries(ids)) {
    const holder = await store.find(entity, system, id);
    if (holder && holder.key !== key)
      throw new XrefFailure(
        `${system} id ${printable(id)} belongs to ${entity} ${printable(holder.key)} ${where(plan.common)}; ` +
          `to move it, unlink it there first: tally xref delete --entity ${entity} --key ${printable(holder.key)} ` +
          `--system ${system}${plan.common.namespace === 'default' ? '' : ` --namespace ${plan.common.namespace}`}`,
      );
  }
  const before = await store.get(entity, key);
  const record = await store.link({
    entity,
    key,
    ids,
    provenance: { by: 'cli', at: now.toISOString() },
    ...(data ? { data } : {}),
  });
  for (const [system, id] of Object.entries(ids)) {
    const previous = before?.ids[system];
    if (previous !== undefined && previous !== id)
      io.stderr.write(`replaced ${system} id ${printable(previous)} with ${printable(id)}\n`);
  }
  io.stdout.write(plan.output === 'json' ? `${JSON.stringify(record, null, 2)}\n` : formatRecordText(record));
  return 0;
}

async function remove(store: XrefStore, plan: Extract<XrefPlan, { command: 'delete' }>, io: XrefIo) {
  const { entity, key, system } = plan;
  const record = await store.get(entity, key);
  const missing = `no ${entity} record with key ${printable(key)} ${where(plan.common)}`;
  if (!record) throw new XrefFailure(`${missing}: nothing to delete`);
  if (system !== undefined) {
    const id = record.ids[system];
    const has = sortedSystems(record);
    if (id === undefined || !(await store.unlink(entity, key, system)))
      throw new XrefFailure(
        `${entity} ${printable(key)} has no ${system} id${has.length > 0 ? ` (it has ${has.join(', ')})` : ''}: nothing to delete`,
      );
    io.stdout.write(`unlinked ${system} id ${printable(id)} from ${entity} ${printable(key)}\n`);
    return 0;
  }
  if (!(await store.delete(entity, key))) throw new XrefFailure(`${missing}: nothing to delete`);
  io.stdout.write(
    `deleted ${entity} ${printable(key)}${sortedSystems(record).length > 0 ? ` (${idsText(record)})` : ''}\n`,
  );
  return 0;
}
