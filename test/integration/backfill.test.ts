// `tally backfill` as a process against a real nats-server: a few thousand CSV rows with quoted
// fields land once each with <sha256 prefix>:<line> ids; a rerun is refused or deduplicated; bad
// rows are reported with file:line; a load killed or interrupted mid-way and resumed with --resume
// stores every row exactly once.
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type JetStreamManager, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalMappingSchema } from '../../api/canonical-mapping.ts';
import { type IntegrationFlowSpec, integrationFlowSpecSchema } from '../../api/integration-flow.ts';
import { type BackfillProgress, progressKey } from '../../cli/backfill/load.ts';
import { renderWorkerConfig } from '../../operator/render/worker-config.ts';
import { csvField } from '../../runtime/flow/batch/csv.ts';
import { flowNames, flowStreamConfig } from '../../runtime/nats/flow-resources.ts';
import { type NatsServerHandle, startNatsServer } from '../harness/nats.ts';
import { repoPath } from '../harness/tools.ts';
import { loadExample, waitFor } from './support/flow-worker.ts';

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `tally backfill ...`; never outlives 90 s. `child` is handed over to interrupt it. */
function tally(args: string[], onChild?: (child: ChildProcess) => void): Promise<Run> {
  const child = spawn(process.execPath, [repoPath('bin/tally.mjs'), 'backfill', ...args], {
    env: { ...process.env, TALLY_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d;
  });
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d;
  });
  const killer = setTimeout(() => child.kill('SIGKILL'), 90_000);
  onChild?.(child);
  return new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

let dir: string;
let nats: NatsServerHandle;
let nc: NatsConnection;
let jsm: JetStreamManager;
let seq = 0;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tally-backfill-'));
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  jsm = await jetstreamManager(nc);
});

afterAll(async () => {
  await nc?.close();
  await nats?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const mapping = () => canonicalMappingSchema.parse(loadExample('../erp-invoices/mapping.yaml'));

/** A batch flow in a fresh namespace with its stream; returns its names and a WorkerConfig file. */
async function newFlow(format: 'csv' | 'jsonl') {
  const namespace = `bf${++seq}`;
  const name = 'invoice-history';
  const spec: IntegrationFlowSpec = integrationFlowSpecSchema.parse({
    channel: 'erp',
    entity: 'Invoice',
    source: { type: 'batch', batch: { format } },
    mappingRef: { name: 'erp-invoice' },
    sinks: [{ name: 'canonical', type: 'nats', nats: { subject: `tally.canonical.${namespace}.invoice` } }],
  });
  const ref = { namespace, name };
  await jsm.streams.add(flowStreamConfig(ref, spec));
  const m = mapping();
  const { config } = renderWorkerConfig({
    namespace,
    name,
    spec,
    mapping: { name: m.metadata.name, generation: 1, spec: m.spec },
    lookups: {},
    natsServers: ['nats://nats.tally-system.svc:4222'],
  });
  const configFile = join(dir, `${namespace}-worker.json`);
  writeFileSync(configFile, JSON.stringify(config));
  const flowFile = join(dir, `${namespace}-flow.yaml`);
  writeFileSync(
    flowFile,
    JSON.stringify({
      apiVersion: 'tally.dev/v1alpha1',
      kind: 'IntegrationFlow',
      metadata: { name, namespace },
      spec,
    }),
  );
  return { ref, names: flowNames(ref), configFile, flowFile };
}

interface Stored {
  msgId: string;
  record: Record<string, unknown>;
  headers: Record<string, string>;
}

async function stored(stream: string): Promise<Stored[]> {
  const n = (await jsm.streams.info(stream)).state.messages;
  const out: Stored[] = [];
  for (let s = 1; s <= n; s++) {
    const m = await jsm.streams.getMessage(stream, { seq: s });
    if (!m) continue;
    out.push({
      msgId: m.header.get('Nats-Msg-Id'),
      record: m.json(),
      headers: { source: m.header.get('Tally-Source'), line: m.header.get('Tally-Batch-Line') },
    });
  }
  return out;
}

const count = async (stream: string) => (await jsm.streams.info(stream)).state.messages;
const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

async function progressOf(bucket: string, file: string): Promise<BackfillProgress | undefined> {
  const kv = await new Kvm(nc).open(bucket);
  const e = await kv.get(progressKey(sha256(file)));
  return e?.operation === 'PUT' ? e.json<BackfillProgress>() : undefined;
}

/** A CSV of n invoices with commas, line breaks and quotes in fields; the line each row starts on. */
function writeCsv(file: string, n: number) {
  const header = ['InvoiceNo', 'CustomerName', 'Note', 'Amount'];
  const rows: { line: number; record: Record<string, string> }[] = [];
  const lines = [header.join(',')];
  let line = 2;
  for (let i = 0; i < n; i++) {
    const record = {
      InvoiceNo: `INV-${100000 + i}`,
      CustomerName: i % 3 === 0 ? `Müller, Schmidt & Co ${i}` : `Customer ${i}`,
      Note: i % 5 === 0 ? `deliver to "Dock ${i % 7}"\nring twice` : i % 7 === 0 ? '' : `plain ${i}`,
      Amount: `${(i * 37) % 1000}.${String(i % 100).padStart(2, '0')}`,
    };
    const text = header.map((h) => csvField(record[h as keyof typeof record])).join(',');
    rows.push({ line, record });
    line += text.split('\n').length;
    lines.push(text);
  }
  writeFileSync(file, `${lines.join('\r\n')}\r\n`);
  return rows;
}

describe('tally backfill', () => {
  it('loads a few thousand CSV rows once each, keyed <sha256 prefix>:<line>, and will not load them twice', async () => {
    const flow = await newFlow('csv');
    const file = join(dir, 'invoices-2025.csv');
    const rows = writeCsv(file, 3_000);
    const prefix = sha256(file).slice(0, 16);

    const run = await tally([
      file,
      '--config',
      flow.configFile,
      '--nats-url',
      nats.url,
      '--batch-size',
      '250',
    ]);
    expect(run.stderr).not.toMatch(/bad row/);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/3000 records published \(0 already in the stream\), 0 bad rows skipped/);

    const messages = await stored(flow.names.stream);
    expect(messages).toHaveLength(3_000);
    expect(messages.map((m) => m.msgId)).toEqual(rows.map((r) => `${prefix}:${r.line}`));
    const byId = new Map(messages.map((m) => [m.msgId, m]));
    for (const r of [rows[0]!, rows[5]!, rows[7]!, rows[2_999]!]) {
      expect(byId.get(`${prefix}:${r.line}`)?.record).toEqual(r.record);
    }
    expect(messages[0]!.headers).toEqual({ source: 'batch', line: '2' });
    expect(await progressOf(flow.names.stateBucket, file)).toMatchObject({
      complete: true,
      published: 3_000,
      bad: 0,
      line: rows.at(-1)!.line,
    });

    // Again: refused; --resume: nothing to do; --force: everything again, dropped by the stream.
    const again = await tally([file, '--config', flow.configFile, '--nats-url', nats.url]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/loaded completely .* pass --force/);
    const resumed = await tally([file, '--config', flow.configFile, '--nats-url', nats.url, '--resume']);
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toMatch(/nothing to resume/);
    const forced = await tally([
      file,
      '--config',
      flow.configFile,
      '--nats-url',
      nats.url,
      '--force',
      '-o',
      'json',
    ]);
    expect(forced.code).toBe(0);
    expect(JSON.parse(forced.stdout)).toMatchObject({
      published: 3_000,
      alreadyInStream: 3_000,
      complete: true,
    });
    expect(await count(flow.names.stream)).toBe(3_000);
  });

  it('reports bad JSON lines as file:line, skips them, writes them to --rejects, exits 1', async () => {
    const flow = await newFlow('jsonl');
    const file = join(dir, 'returns.jsonl');
    const lines = Array.from({ length: 100 }, (_, i) => JSON.stringify({ InvoiceNo: `R-${i}`, Amount: i }));
    lines[9] = '{"InvoiceNo": "R-9", broken';
    lines[49] = '["not", "an", "object"]';
    lines[74] = '';
    writeFileSync(file, `${lines.join('\n')}\n`);
    const rejects = join(dir, 'returns.rejects.jsonl');
    const run = await tally([
      file,
      '--flow',
      `${flow.ref.namespace}/${flow.ref.name}`,
      '-f',
      flow.flowFile,
      '--nats-url',
      nats.url,
      '--rejects',
      rejects,
    ]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`${file}:10: bad row skipped: is not valid JSON`);
    expect(run.stderr).toContain(`${file}:50: bad row skipped: is JSON but not an object (an array)`);
    expect(run.stdout).toMatch(/97 records published .* 2 bad rows skipped/);
    expect(readFileSync(rejects, 'utf8')).toBe(`${lines[9]}\n${lines[49]}\n`);
    const messages = await stored(flow.names.stream);
    expect(messages).toHaveLength(97);
    expect(messages[0]!.record).toEqual({ InvoiceNo: 'R-0', Amount: 0 });
  });

  it('resumes a load killed mid-way (SIGKILL) with --resume: every row stored exactly once', async () => {
    const flow = await newFlow('csv');
    const file = join(dir, 'invoices-big.csv');
    const rows = writeCsv(file, 10_000);
    const prefix = sha256(file).slice(0, 16);
    const args = [file, '--config', flow.configFile, '--nats-url', nats.url, '--batch-size', '200'];

    const killed = await tally([...args, '--max-rate', '2500'], (child) => {
      void waitFor('part of the file loaded', async () => (await count(flow.names.stream)) >= 1_500, {
        timeoutMs: 30_000,
      })
        .then(() => child.kill('SIGKILL'))
        .catch(() => child.kill('SIGKILL'));
    });
    expect(killed.signal).toBe('SIGKILL');
    const partial = await progressOf(flow.names.stateBucket, file);
    const storedAtKill = await count(flow.names.stream);
    expect(partial?.complete).toBe(false);
    expect(storedAtKill).toBeLessThan(10_000);
    // Progress is recorded only for acknowledged batches: never ahead of the stream.
    expect(partial!.published).toBeLessThanOrEqual(storedAtKill);

    const resumed = await tally([...args, '--resume', '-o', 'json']);
    expect(resumed.code).toBe(0);
    const summary = JSON.parse(resumed.stdout);
    expect(summary).toMatchObject({ complete: true, resumedAfterLine: partial!.line });
    // Rows sent after the last recorded batch were sent again and dropped by the stream.
    expect(summary.alreadyInStream).toBe(storedAtKill - partial!.published);

    const messages = await stored(flow.names.stream);
    expect(messages).toHaveLength(10_000);
    expect(new Set(messages.map((m) => m.msgId))).toEqual(new Set(rows.map((r) => `${prefix}:${r.line}`)));
    expect(await progressOf(flow.names.stateBucket, file)).toMatchObject({
      complete: true,
      published: 10_000,
    });
  });

  it('stops gracefully on SIGINT after the batch in progress, and --resume loads the rest', async () => {
    const flow = await newFlow('csv');
    const file = join(dir, 'invoices-int.csv');
    writeCsv(file, 6_000);
    const args = [file, '--config', flow.configFile, '--nats-url', nats.url, '--batch-size', '300'];
    const interrupted = await tally([...args, '--max-rate', '2000'], (child) => {
      void waitFor('part of the file loaded', async () => (await count(flow.names.stream)) >= 900, {
        timeoutMs: 30_000,
      })
        .then(() => child.kill('SIGINT'))
        .catch(() => child.kill('SIGKILL'));
    });
    expect(interrupted.code).toBe(1);
    expect(interrupted.stderr).toMatch(/run again with --resume/);
    const partial = await progressOf(flow.names.stateBucket, file);
    // A graceful stop records exactly what the stream holds.
    expect(partial).toMatchObject({ complete: false, published: await count(flow.names.stream) });

    const resumed = await tally([...args, '--resume']);
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toMatch(/\(0 already in the stream\)/);
    expect(await count(flow.names.stream)).toBe(6_000);
  });

  it('exits 2 on usage errors', async () => {
    const none = await tally([]);
    expect(none.code).toBe(2);
    const both = await tally(['x.csv', '--config', 'a.json', '--flow', 'b', '-f', 'c']);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--config WORKERCONFIG or with --flow/);
  });
});
