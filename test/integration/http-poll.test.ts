// The HTTP polling source against a real nats-server and a REST API on loopback: every pagination
// style and auth kind, the cursor kept in JetStream KV and resumed after a restart (no duplicates in
// the stream, nothing missed), 429 + Retry-After and quota headers honoured, and the whole worker
// (poll -> stream -> mapping -> NATS sink).
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type JetStreamManager, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { canonicalMappingSchema } from '../../api/canonical-mapping.ts';
import { integrationFlowSpecSchema } from '../../api/integration-flow.ts';
import type { WorkerConfig } from '../../api/worker-config.ts';
import { ensureFlowNats, ensureNamespaceStreams } from '../../operator/nats/provisioner.ts';
import { renderWorkerConfig } from '../../operator/render/worker-config.ts';
import { connectJetStreamBus } from '../../runtime/bus/jetstream.ts';
import type { Bus } from '../../runtime/bus/types.ts';
import {
  type HttpPollHandle,
  type HttpPollOptions,
  POLL_STATE_KEYS,
  prepareHttpPoll,
  startHttpPollSource,
} from '../../runtime/flow/sources/http-poll.ts';
import { type FlowWorkerHandle, runFlowWorker } from '../../runtime/flow/worker.ts';
import { flowNames, flowStreamConfig } from '../../runtime/nats/flow-resources.ts';
import { createFlowMetrics } from '../../runtime/telemetry/metrics.ts';
import { type NatsServerHandle, startNatsServer } from '../harness/nats.ts';
import { loadExample, sample, waitFor } from './support/flow-worker.ts';

const logger = pino({ level: process.env.TALLY_TEST_LOG ?? 'silent' });
const FAST: HttpPollOptions = {
  leaseTtlMs: 3_000,
  backoff: { initialMs: 100, maxMs: 400 },
  maxAttempts: 3,
  requestTimeoutMs: 5_000,
};

interface ApiRecord {
  id: string;
  updatedAt: string;
  amount: string;
}

interface SeenRequest {
  at: number;
  url: URL;
  headers: IncomingMessage['headers'];
  status: number;
}

type Mode = 'link' | 'token' | 'page' | 'plain';

/**
 * A listing API on loopback: GET /<mode>/orders?since=<ISO>&..., records with updatedAt >= since
 * (inclusive, as many ERPs do) in updatedAt order, 10 per page. Paging: link = Link rel="next" with
 * an offset; token = `next` field passed back as pageToken; page = page=N until an empty page.
 */
class ListingApi {
  records: ApiRecord[] = [];
  requests: SeenRequest[] = [];
  pageSize = 10;
  /** Required header name and value; others get 401. */
  auth: [string, string] | undefined;
  /** Answers to give before serving normally: status and headers. */
  script: { status: number; headers?: Record<string, string> }[] = [];
  /** Headers added to every normal answer. */
  extraHeaders: (req: SeenRequest) => Record<string, string> = () => ({});
  /** Fail these offsets (page starts) with this status, for the crash test. */
  failOffsets = new Map<number, number>();
  #server: Server | undefined;
  base = '';

  add(n: number, from: number, at: string): ApiRecord[] {
    const added = Array.from({ length: n }, (_, i) => ({
      id: `INV-${from + i}`,
      updatedAt: at,
      amount: `${(from + i) % 100}.50`,
    }));
    this.records.push(...added);
    return added;
  }

  async start(): Promise<void> {
    this.#server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const seen: SeenRequest = { at: Date.now(), url, headers: req.headers, status: 200 };
      this.requests.push(seen);
      const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
        seen.status = status;
        seen.at = Date.now();
        res.writeHead(status, { 'content-type': 'application/json', ...headers });
        res.end(JSON.stringify(body));
      };
      if (this.auth && req.headers[this.auth[0].toLowerCase()] !== this.auth[1]) {
        return send(401, { error: 'unauthorized' });
      }
      const scripted = this.script.shift();
      if (scripted) return send(scripted.status, { error: 'scripted' }, scripted.headers);
      const mode = url.pathname.split('/')[1] as Mode;
      const since = url.searchParams.get('since');
      const matching = this.records
        .filter((r) => !since || Date.parse(r.updatedAt) >= Date.parse(since))
        .sort((a, b) => Date.parse(a.updatedAt) - Date.parse(b.updatedAt) || a.id.localeCompare(b.id));
      let offset = 0;
      if (mode === 'link') offset = Number(url.searchParams.get('offset') ?? 0);
      if (mode === 'token') offset = Number((url.searchParams.get('pageToken') ?? 'tok-0').slice(4));
      if (mode === 'page') offset = (Number(url.searchParams.get('page') ?? 1) - 1) * this.pageSize;
      const failure = this.failOffsets.get(offset);
      if (failure) return send(failure, { error: 'scripted failure' });
      const size = mode === 'plain' ? matching.length : this.pageSize;
      const page = matching.slice(offset, offset + size);
      const more = offset + size < matching.length;
      const headers = this.extraHeaders(seen);
      if (mode === 'link') {
        if (more) {
          const next = new URLSearchParams(url.searchParams);
          next.set('offset', String(offset + size));
          headers.link = `</link/orders?${next}>; rel="next", </link/orders>; rel="first"`;
        }
        return send(200, page, headers);
      }
      if (mode === 'token')
        return send(200, { items: page, next: more ? `tok-${offset + size}` : null }, headers);
      return send(200, { data: page, total: matching.length }, headers);
    });
    await new Promise<void>((resolve) => this.#server!.listen(0, '127.0.0.1', resolve));
    this.base = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.#server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
  }
}

let nats: NatsServerHandle;
let nc: NatsConnection;
let jsm: JetStreamManager;
let bus: Bus;
let api: ListingApi;
let seq = 0;
const pollers: HttpPollHandle[] = [];
const workers: FlowWorkerHandle[] = [];

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  jsm = await jetstreamManager(nc);
  bus = await connectJetStreamBus({ servers: [nats.url], name: 'itest-poll', logger });
});

afterAll(async () => {
  await bus?.close();
  await nc?.close();
  await nats?.stop();
});

let currentApi: ListingApi | undefined;
afterEach(async () => {
  await Promise.all(pollers.splice(0).map((p) => p.stop(5_000)));
  await Promise.all(workers.splice(0).map((w) => w.stop()));
  await currentApi?.stop();
  currentApi = undefined;
});

async function newApi(): Promise<ListingApi> {
  api = new ListingApi();
  await api.start();
  currentApi = api;
  return api;
}

type PollConfig = Extract<WorkerConfig['source'], { type: 'httpPoll' }>;

/** A flow namespace with its stream (as the operator creates it). */
async function newFlow() {
  const ref = { namespace: `poll${++seq}`, name: 'erp-invoices' };
  const spec = integrationFlowSpecSchema.parse({
    channel: 'erp',
    entity: 'Invoice',
    source: { type: 'nats', nats: { subject: 'unused' } },
    mappingRef: { name: 'm' },
    sinks: [{ name: 'n', type: 'nats', nats: { subject: 'x.y' } }],
  });
  await jsm.streams.add(flowStreamConfig(ref, spec));
  const names = flowNames(ref);
  return { ref, names };
}

function startPoller(
  flow: Awaited<ReturnType<typeof newFlow>>,
  source: PollConfig,
  env: Record<string, string> = {},
  options: HttpPollOptions = {},
) {
  const metrics = createFlowMetrics(
    { flow: `${flow.ref.namespace}/${flow.ref.name}`, channel: 'erp' },
    { processMetrics: false },
  );
  const poller = startHttpPollSource({
    prepared: prepareHttpPoll(source, env),
    flow: { ...flow.ref, channel: 'erp' },
    nats: {
      servers: [nats.url],
      ingestSubject: flow.names.ingestSubject(0),
      stateBucket: flow.names.stateBucket,
    },
    bus,
    metrics,
    logger,
    options: { ...FAST, ...options },
  });
  pollers.push(poller);
  return { poller, metrics };
}

function pollSource(
  path: string,
  extra: Partial<PollConfig['poll']> = {},
  auth?: PollConfig['auth'],
): PollConfig {
  return {
    type: 'httpPoll',
    poll: {
      url: `${api.base}${path}`,
      interval: '1s',
      cursor: { param: 'since', field: 'updatedAt', initial: '2026-01-01T00:00:00Z' },
      ...extra,
    },
    ...(auth ? { auth } : {}),
  };
}

async function streamRecords(stream: string): Promise<{ id: string; msgId: string }[]> {
  const n = (await jsm.streams.info(stream)).state.messages;
  const out: { id: string; msgId: string }[] = [];
  for (let s = 1; s <= n; s++) {
    const m = await jsm.streams.getMessage(stream, { seq: s }).catch(() => null);
    if (m) out.push({ id: m.json<ApiRecord>().id, msgId: m.header.get('Nats-Msg-Id') });
  }
  return out;
}

async function storedCursor(bucket: string): Promise<{ cursor: string; atCursor: string[] } | undefined> {
  const kv = await new Kvm(nc).open(bucket);
  const e = await kv.get(POLL_STATE_KEYS.cursor);
  return e && e.operation === 'PUT' ? e.json() : undefined;
}

const sorted = (ids: string[]) => [...ids].sort();
const idsOf = (records: ApiRecord[]) => records.map((r) => r.id);

describe('HTTP polling source', () => {
  it('follows Link headers with a bearer token, stores the cursor in KV, then fetches only what is new', async () => {
    await newApi();
    api.auth = ['authorization', 'Bearer s3cret'];
    const first = api.add(25, 1, '2026-03-01T10:00:00Z');
    first.push(...api.add(3, 100, '2026-03-01T11:00:00Z'));
    const flow = await newFlow();
    const { poller } = startPoller(
      flow,
      pollSource(
        '/link/orders',
        { pagination: { type: 'linkHeader' } },
        { type: 'bearer', token: { env: 'ERP_TOKEN' } },
      ),
      { ERP_TOKEN: 's3cret' },
    );
    await waitFor('the first cycle', () => poller.cycles() >= 1, { timeoutMs: 20_000 });
    let records = await streamRecords(flow.names.stream);
    expect(sorted(records.map((r) => r.id))).toEqual(sorted(idsOf(first)));
    expect(new Set(records.map((r) => r.msgId)).size).toBe(records.length);
    expect(records.every((r) => r.msgId.startsWith('poll:'))).toBe(true);
    expect(await storedCursor(flow.names.stateBucket)).toMatchObject({
      cursor: '2026-03-01T11:00:00Z',
      atCursor: expect.any(Array),
    });
    expect((await storedCursor(flow.names.stateBucket))?.atCursor).toHaveLength(3);
    // 28 records, 10 a page: 3 pages, each after the first reached through the Link header.
    const firstCycle = api.requests.filter((r) => r.status === 200).slice(0, 3);
    expect(firstCycle.map((r) => r.url.searchParams.get('offset'))).toEqual([null, '10', '20']);
    expect(firstCycle[0]!.url.searchParams.get('since')).toBe('2026-01-01T00:00:00Z');

    const later = api.add(4, 200, '2026-03-01T12:00:00Z');
    const cyclesBefore = poller.cycles();
    await waitFor(
      'new records',
      async () => (await jsm.streams.info(flow.names.stream)).state.messages >= 32,
      {
        timeoutMs: 20_000,
      },
    );
    await waitFor('another full cycle', () => poller.cycles() >= cyclesBefore + 2, { timeoutMs: 20_000 });
    records = await streamRecords(flow.names.stream);
    // The inclusive boundary (records at the cursor come back every poll) never becomes a new event.
    expect(sorted(records.map((r) => r.id))).toEqual(sorted([...idsOf(first), ...idsOf(later)]));
    const latest = api.requests.at(-1)!;
    expect(latest.url.searchParams.get('since')).toBe('2026-03-01T12:00:00Z');
    expect(latest.headers.authorization).toBe('Bearer s3cret');
  });

  it('passes next tokens back as a parameter, with basic auth', async () => {
    await newApi();
    api.auth = ['authorization', `Basic ${Buffer.from('erp-user:pw').toString('base64')}`];
    const all = api.add(23, 1, '2026-03-02T08:00:00Z');
    const flow = await newFlow();
    const { poller } = startPoller(
      flow,
      pollSource('/token/orders', {
        recordsField: 'items',
        pagination: { type: 'nextToken', tokenField: 'next', tokenParam: 'pageToken' },
      }),
      { U: 'erp-user', P: 'pw' },
    );
    // (auth given below; the first poller without auth proves a 401 publishes nothing)
    await waitFor('a failed cycle', () => poller.cycles() >= 1, { timeoutMs: 20_000 });
    expect(api.requests[0]?.status).toBe(401);
    expect((await jsm.streams.info(flow.names.stream)).state.messages).toBe(0);
    await poller.stop(5_000);

    const { poller: p2 } = startPoller(
      flow,
      pollSource(
        '/token/orders',
        {
          recordsField: 'items',
          pagination: { type: 'nextToken', tokenField: 'next', tokenParam: 'pageToken' },
        },
        { type: 'basic', username: { env: 'U' }, password: { env: 'P' } },
      ),
      { U: 'erp-user', P: 'pw' },
    );
    await waitFor('a cycle', () => p2.cycles() >= 1, { timeoutMs: 20_000 });
    const records = await streamRecords(flow.names.stream);
    expect(sorted(records.map((r) => r.id))).toEqual(sorted(idsOf(all)));
    const ok = api.requests.filter((r) => r.status === 200).slice(0, 3);
    expect(ok.map((r) => r.url.searchParams.get('pageToken'))).toEqual([null, 'tok-10', 'tok-20']);
    // The cursor parameter stays on every page.
    expect(ok.every((r) => r.url.searchParams.get('since') === '2026-01-01T00:00:00Z')).toBe(true);
  });

  it('counts pages until an empty one, with an API-key header', async () => {
    await newApi();
    api.auth = ['x-api-key', 'k-123'];
    const all = api.add(20, 1, '2026-03-03T08:00:00Z');
    const flow = await newFlow();
    const { poller, metrics } = startPoller(
      flow,
      pollSource(
        '/page/orders',
        { recordsField: 'data', pagination: { type: 'pageNumber', pageParam: 'page' } },
        { type: 'apiKey', token: { env: 'KEY' }, header: 'X-API-Key' },
      ),
      { KEY: 'k-123' },
    );
    await waitFor('a cycle', () => poller.cycles() >= 1, { timeoutMs: 20_000 });
    const records = await streamRecords(flow.names.stream);
    expect(sorted(records.map((r) => r.id))).toEqual(sorted(idsOf(all)));
    const firstCycle = api.requests.slice(0, 3);
    expect(firstCycle.map((r) => r.url.searchParams.get('page'))).toEqual(['1', '2', '3']);
    const text = await metrics.registry.metrics();
    const labels = { flow: `${flow.ref.namespace}/${flow.ref.name}`, channel: 'erp' };
    expect(sample(text, 'tally_poll_pages_total', labels)).toBeGreaterThanOrEqual(3);
    expect(sample(text, 'tally_poll_records_published_total', labels)).toBe(20);
    expect(sample(text, 'tally_poll_cycles_total', { ...labels, outcome: 'ok' })).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'tally_poll_cursor_lag_seconds', labels)).toBeGreaterThan(0);
    expect(sample(text, 'tally_poll_leader', labels)).toBe(1);
  });

  it('resumes from the stored cursor after a restart and after a cycle that broke off: no duplicate, nothing missed', async () => {
    await newApi();
    const batch1 = api.add(15, 1, '2026-03-04T08:00:00Z');
    const flow = await newFlow();
    const source = pollSource('/link/orders', { pagination: { type: 'linkHeader' } });
    const a = startPoller(flow, source).poller;
    await waitFor('a cycle', () => a.cycles() >= 1, { timeoutMs: 20_000 });
    await a.stop(5_000);
    expect((await storedCursor(flow.names.stateBucket))?.cursor).toBe('2026-03-04T08:00:00Z');

    // While no poller runs: new records, and the second page of the next listing fails.
    const batch2 = api.add(12, 100, '2026-03-04T09:00:00Z');
    api.failOffsets.set(20, 500);
    const requestsBefore = api.requests.length;
    const b = startPoller(flow, source, {}, { maxAttempts: 2 }).poller;
    await waitFor('a broken-off cycle', () => b.cycles() >= 1, { timeoutMs: 20_000 });
    const resumed = api.requests[requestsBefore]!;
    expect(resumed.url.searchParams.get('since')).toBe('2026-03-04T08:00:00Z');
    // Pages 1 and 2 were published, page 3 failed: the cursor must not have moved.
    expect((await storedCursor(flow.names.stateBucket))?.cursor).toBe('2026-03-04T08:00:00Z');
    await b.stop(5_000);

    // A third poller (as after a crash) re-reads from the old cursor; the stream drops the repeats.
    api.failOffsets.clear();
    const { poller: c, metrics } = startPoller(flow, source);
    await waitFor('a full cycle', () => c.cycles() >= 1, { timeoutMs: 20_000 });
    const records = await streamRecords(flow.names.stream);
    expect(records).toHaveLength(batch1.length + batch2.length);
    expect(sorted(records.map((r) => r.id))).toEqual(sorted([...idsOf(batch1), ...idsOf(batch2)]));
    expect((await storedCursor(flow.names.stateBucket))?.cursor).toBe('2026-03-04T09:00:00Z');
    const labels = { flow: `${flow.ref.namespace}/${flow.ref.name}`, channel: 'erp', source: 'httpPoll' };
    // Page 1 holds only records at the old cursor (skipped: already published); page 2's five new
    // records were published by the broken-off cycle and are dropped by the stream as repeats.
    expect(sample(await metrics.registry.metrics(), 'tally_flow_messages_deduplicated_total', labels)).toBe(
      5,
    );
  });

  it('lets one replica poll at a time and hands over when it stops', async () => {
    await newApi();
    api.add(5, 1, '2026-03-05T08:00:00Z');
    const flow = await newFlow();
    const source = pollSource('/link/orders', { pagination: { type: 'linkHeader' } });
    const one = startPoller(flow, source).poller;
    await waitFor('one leads', () => one.leader(), { timeoutMs: 20_000 });
    const two = startPoller(flow, source).poller;
    await waitFor('two connected', () => two.ready(), { timeoutMs: 20_000 });
    // Two more cycles of the leader after two is up: two asked for the lease in between (it tries
    // every ttl/3 = 1 s, the leader's cycles come every 1 s) and was refused every time: it never
    // held the lease and never polled (a stand-by finishes no cycle).
    const cyclesOfOne = one.cycles();
    let twoLed = false;
    await waitFor(
      'two more cycles of the leader',
      () => {
        twoLed ||= two.leader();
        return one.cycles() >= cyclesOfOne + 2;
      },
      { timeoutMs: 20_000, intervalMs: 10 },
    );
    expect(twoLed).toBe(false);
    expect(two.leader()).toBe(false);
    expect(two.cycles()).toBe(0);
    expect(one.leader()).toBe(true);
    await one.stop(5_000);
    await waitFor('two takes over', () => two.leader() && two.cycles() >= 1, { timeoutMs: 20_000 });
    expect((await jsm.streams.info(flow.names.stream)).state.messages).toBe(5);
  });

  it('waits as long as a 429 Retry-After asks before the next request', async () => {
    await newApi();
    api.add(3, 1, '2026-03-06T08:00:00Z');
    api.script.push({ status: 429, headers: { 'retry-after': '2' } });
    const flow = await newFlow();
    const { poller, metrics } = startPoller(flow, pollSource('/plain/orders', { recordsField: 'data' }));
    await waitFor('a cycle', () => poller.cycles() >= 1, { timeoutMs: 20_000 });
    const [throttled, next] = api.requests;
    expect(throttled?.status).toBe(429);
    expect(next?.status).toBe(200);
    expect(next!.at - throttled!.at).toBeGreaterThanOrEqual(2_000);
    expect((await jsm.streams.info(flow.names.stream)).state.messages).toBe(3);
    const labels = { flow: `${flow.ref.namespace}/${flow.ref.name}`, channel: 'erp' };
    const text = await metrics.registry.metrics();
    expect(sample(text, 'tally_poll_requests_total', { ...labels, code: '429' })).toBe(1);
    expect(
      sample(text, 'tally_poll_wait_seconds_total', { ...labels, reason: 'retry_after' }),
    ).toBeGreaterThanOrEqual(1.9);
  });

  it('pauses until the quota resets when X-RateLimit-Remaining hits 0, and spaces requests per x-amzn-RateLimit-Limit', async () => {
    await newApi();
    api.add(25, 1, '2026-03-07T08:00:00Z');
    let served = 0;
    api.extraHeaders = (): Record<string, string> => {
      served++;
      // Page 1 uses up the quota for 2 s; later pages say 1 request per second.
      return served === 1
        ? { 'x-ratelimit-limit': '10', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '2' }
        : { 'x-amzn-ratelimit-limit': '1.0' };
    };
    const flow = await newFlow();
    const { poller } = startPoller(flow, pollSource('/link/orders', { pagination: { type: 'linkHeader' } }));
    await waitFor('a cycle', () => poller.cycles() >= 1, { timeoutMs: 30_000 });
    const [p1, p2, p3] = api.requests;
    expect([p1, p2, p3].map((r) => r?.status)).toEqual([200, 200, 200]);
    // The reset is "2 s from the answer"; allow for the answer's time in flight.
    expect(p2!.at - p1!.at).toBeGreaterThanOrEqual(1_900);
    expect(p3!.at - p2!.at).toBeGreaterThanOrEqual(950);
    expect((await jsm.streams.info(flow.names.stream)).state.messages).toBe(25);
  });
});

describe('flow worker with an httpPoll source', () => {
  it('polls the ERP, maps every invoice and publishes it to the NATS sink', async () => {
    await newApi();
    const flowDoc = loadExample('../erp-invoices/flow.yaml') as { metadata: { name: string }; spec: unknown };
    const mappingDoc = canonicalMappingSchema.parse(loadExample('../erp-invoices/mapping.yaml'));
    const spec = integrationFlowSpecSchema.parse(flowDoc.spec);
    const namespace = `pollw${++seq}`;
    spec.source.httpPoll = {
      ...spec.source.httpPoll!,
      url: `${api.base}/token/invoices`,
      interval: '1s',
      recordsField: 'items',
      cursor: { param: 'since', field: 'LastModifiedDateTime', initial: '2026-01-01T00:00:00Z' },
      pagination: { type: 'nextToken', tokenField: 'next', tokenParam: 'pageToken' },
    };
    const sinkSubject = `tally.canonical.${namespace}.invoice`;
    spec.sinks = [{ name: 'canonical', type: 'nats', nats: { subject: sinkSubject } }];
    const { config, env } = renderWorkerConfig({
      namespace,
      name: flowDoc.metadata.name,
      spec,
      mapping: { name: mappingDoc.metadata.name, generation: 1, spec: mappingDoc.spec },
      lookups: Object.fromEntries(
        mappingDoc.spec.lookups.map((l) => [
          l.name,
          { values: l.inline ?? {}, ...(l.default !== undefined ? { default: l.default } : {}) },
        ]),
      ),
      natsServers: [nats.url],
    });
    // What the operator's flow reconcile creates: the namespace's streams (the render's canonical
    // sink publishes there) and the flow's streams and consumer.
    await ensureNamespaceStreams(jsm, namespace);
    await ensureFlowNats(jsm, { namespace, name: flowDoc.metadata.name }, spec);
    const sinkStream = `ITEST_POLL_SINK_${seq}`;
    await jsm.streams.add({ name: sinkStream, subjects: [sinkSubject] });

    // The ERP's invoices in its own shape (the mapping's test input), 12 of them over 2 pages.
    const input = mappingDoc.spec.tests[0]!.input as Record<string, unknown>;
    api.auth = ['authorization', 'Bearer erp-token'];
    api.pageSize = 8;
    for (let i = 0; i < 12; i++) {
      api.records.push({
        ...input,
        InvoiceNo: `INV-${5000 + i}`,
        LastModifiedDateTime: `2026-03-08T08:00:${String(i).padStart(2, '0')}Z`,
        // The listing API sorts by updatedAt.
        updatedAt: `2026-03-08T08:00:${String(i).padStart(2, '0')}Z`,
        id: `INV-${5000 + i}`,
      } as unknown as ApiRecord);
    }
    expect(env.map((e) => e.name)).toEqual(['TALLY_SOURCE_TOKEN']);
    const start = async () => {
      const w = await runFlowWorker(config, {
        logger,
        env: { TALLY_SOURCE_TOKEN: 'erp-token', TALLY_HTTP_HOST: '127.0.0.1', TALLY_HTTP_PORT: '0' },
        graceMs: 5_000,
        processMetrics: false,
      });
      workers.push(w);
      return w;
    };
    const worker = await start();
    await waitFor('ready (NATS and the poller state connection)', () => worker.ready(), {
      timeoutMs: 20_000,
    });
    const readyz = (await (await fetch(`http://127.0.0.1:${worker.port}/readyz`)).json()) as {
      checks: object;
    };
    expect(readyz.checks).toMatchObject({ nats: true, pollerState: true });
    await waitFor(
      '12 canonical invoices',
      async () => (await jsm.streams.info(sinkStream)).state.messages >= 12,
      { timeoutMs: 30_000 },
    );
    const invoices = [];
    for (let s = 1; s <= 12; s++) {
      invoices.push(
        (await jsm.streams.getMessage(sinkStream, { seq: s }))!.json<{
          subject: string;
          data: { invoiceId: string };
        }>(),
      );
    }
    expect(sorted(invoices.map((e) => e.data.invoiceId))).toEqual(
      sorted(Array.from({ length: 12 }, (_, i) => `INV-${5000 + i}`)),
    );
    // Nothing more after a later poll cycle has finished (it found nothing new) and the worker has
    // settled everything the flow stream holds: no duplicate reached the sink.
    const okCycles = async () =>
      sample(await worker.registry.metrics(), 'tally_poll_cycles_total', { outcome: 'ok' });
    const cyclesBefore = await okCycles();
    await waitFor('a later poll cycle', async () => (await okCycles()) >= cyclesBefore + 1, {
      timeoutMs: 20_000,
    });
    await waitFor('the flow consumer settled', async () => {
      const info = await jsm.consumers.info(config.nats.stream, config.nats.consumer);
      return info.num_pending === 0 && info.num_ack_pending === 0;
    });
    expect((await jsm.streams.info(config.nats.stream)).state.messages).toBe(12);
    expect((await jsm.streams.info(sinkStream)).state.messages).toBe(12);

    // Restarted (a new worker process would be the same): it resumes from the cursor in KV.
    await worker.stop();
    const requestsBefore = api.requests.length;
    for (let i = 12; i < 17; i++) {
      api.records.push({
        ...input,
        InvoiceNo: `INV-${5000 + i}`,
        LastModifiedDateTime: `2026-03-08T09:00:${String(i).padStart(2, '0')}Z`,
        updatedAt: `2026-03-08T09:00:${String(i).padStart(2, '0')}Z`,
        id: `INV-${5000 + i}`,
      } as unknown as ApiRecord);
    }
    const again = await start();
    await waitFor(
      '17 canonical invoices',
      async () => (await jsm.streams.info(sinkStream)).state.messages >= 17,
      {
        timeoutMs: 30_000,
      },
    );
    expect(api.requests[requestsBefore]?.url.searchParams.get('since')).toBe('2026-03-08T08:00:11Z');
    await waitFor('another cycle', () => api.requests.length >= requestsBefore + 2, { timeoutMs: 20_000 });
    await again.stop();
    expect((await jsm.streams.info(sinkStream)).state.messages).toBe(17);
    expect((await jsm.streams.info(config.nats.stream)).state.messages).toBe(17);
  });
});
