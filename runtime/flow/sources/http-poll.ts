// HTTP polling source: every `interval`, GET the listing with the stored cursor (an updated-since
// watermark), follow the pages, publish every record to the flow stream and wait for JetStream's
// acks; only then store the new cursor (the largest `cursor.field` seen) in the flow's KV bucket.
//
// Guarantees:
// - A restart resumes from the stored cursor. A crash after some records of a cycle were stored but
//   before the cursor was, re-publishes them on the next cycle under the same Nats-Msg-Id (a hash of
//   the record, see http-poll-cursor.ts): the stream drops them within its duplicate window (2m by
//   default). Beyond the window they are stored again and reach the sinks with the same idempotency
//   key (business key + version), so an idempotent sink still sees them once.
// - A graceful stop finishes publishing the page in progress, then stops without storing a cursor
//   unless that page was the last one of the cycle.
// - One replica polls at a time: it holds a lease in the KV bucket (renewed while it works, released
//   on stop); the other replicas stand by and take over when it lapses.
// - Rate limits: quota headers pause requests until the reset, 429/503 wait for Retry-After, 5xx
//   and network errors back off exponentially with jitter; a failed cycle is retried later, never in
//   a tight loop.

import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import jsonata from 'jsonata';
import { Agent } from 'undici';
import { durationMs } from '../../../api/common.ts';
import { TallyError } from '../../../api/errors.ts';
import type { FlowWorkerConfig } from '../../../api/worker-config.ts';
import { BusError } from '../../bus/errors.ts';
import type { BusWriter } from '../../bus/types.ts';
import type { Logger } from '../../telemetry/logger.ts';
import type { FlowMetrics } from '../../telemetry/metrics.ts';
import { INGEST_HEADERS } from '../ingest.ts';
import type { Env } from '../secrets.ts';
import { authHeader } from '../sinks/auth.ts';
import { connectState, STATE_ERROR_CODES, type StateConnection, StateStoreError } from '../state/kv-store.ts';
import { Lease } from '../state/lease.ts';
import { formatTraceparent, traceFromSeed } from '../trace.ts';
import { fetchPage, PollRequestError } from './http-poll-client.ts';
import {
  asCursorValue,
  CursorTracker,
  type CursorValue,
  cursorLagSeconds,
  type PollState,
  parsePollState,
  pollRecordId,
} from './http-poll-cursor.ts';
import { header, nextCycleDelayMs, type PollBackoff, RequestPacer } from './http-poll-limits.ts';
import { createPollMetrics, type PollOutcome } from './http-poll-metrics.ts';
import {
  firstRequest,
  nextRequest,
  type PaginationConfig,
  PaginationError,
  type PollRequest,
  sameOrigin,
} from './pagination.ts';

export type HttpPollSourceConfig = Extract<FlowWorkerConfig['source'], { type: 'httpPoll' }>;

/** KV keys of the poller in the flow's state bucket. */
export const POLL_STATE_KEYS = { cursor: 'poll.cursor', lease: 'poll.lease' } as const;

export const POLL_CONFIG_ERROR_CODE = 'FLOW_POLL_CONFIG_INVALID';

/** The polling source's configuration cannot work; the message names the field to fix. */
export class HttpPollConfigError extends TallyError {
  override name = 'HttpPollConfigError';
  readonly code = POLL_CONFIG_ERROR_CODE;
}

type Path = (input: unknown) => Promise<unknown>;

/** Everything checked before the worker touches NATS: secrets present, paths compile, pagination complete. */
export interface PreparedPoll {
  source: HttpPollSourceConfig;
  intervalMs: number;
  auth: [string, string] | undefined;
  pagination: PaginationConfig;
  records: Path | undefined;
  cursor: { param: string; field: Path; initial: string | undefined } | undefined;
  token: Path | undefined;
}

function compilePath(field: string, expression: string): Path {
  let expr: jsonata.Expression;
  try {
    expr = jsonata(expression);
  } catch (cause) {
    throw new HttpPollConfigError(
      `source.httpPoll.${field} ${JSON.stringify(expression)} is not a valid JSONata path: ${(cause as { message?: string }).message}`,
      { cause },
    );
  }
  return async (input) => {
    try {
      return await expr.evaluate(input);
    } catch (cause) {
      throw new PaginationError(
        `source.httpPoll.${field} ${JSON.stringify(expression)} failed on a response: ${(cause as { message?: string }).message}`,
        { cause },
      );
    }
  };
}

/** Shortest interval between poll cycles whatever the config says. */
export const MIN_INTERVAL_MS = 1_000;

export function prepareHttpPoll(source: HttpPollSourceConfig, env: Env): PreparedPoll {
  const poll = source.poll;
  const pagination: PaginationConfig = { type: poll.pagination?.type ?? 'none', ...poll.pagination };
  if (pagination.type === 'nextToken' && !pagination.tokenField) {
    throw new HttpPollConfigError(
      'source.httpPoll.pagination.tokenField is required with pagination type nextToken: name the response field holding the next token',
    );
  }
  return {
    source,
    intervalMs: Math.max(MIN_INTERVAL_MS, durationMs(poll.interval)),
    auth: source.auth ? authHeader(source.auth, env, 'source httpPoll') : undefined,
    pagination,
    records: poll.recordsField ? compilePath('recordsField', poll.recordsField) : undefined,
    cursor: poll.cursor
      ? {
          param: poll.cursor.param,
          field: compilePath('cursor.field', poll.cursor.field),
          initial: poll.cursor.initial,
        }
      : undefined,
    token:
      pagination.type === 'nextToken'
        ? compilePath('pagination.tokenField', pagination.tokenField!)
        : undefined,
  };
}

export interface HttpPollOptions {
  /** Lease lifetime without renewal; default 30 s (a crashed poller is replaced within it). */
  leaseTtlMs?: number;
  /** Timeout of one request; default 30 s. */
  requestTimeoutMs?: number;
  /** Attempts per page before the cycle fails; default 5. */
  maxAttempts?: number;
  backoff?: PollBackoff;
  /** Most pages in one cycle (a guard against a listing that never ends); default 10 000. */
  maxPages?: number;
  /** Largest page body; default 64 MiB. */
  maxBodyBytes?: number;
  /** Records published at once (acks awaited together); default 64. */
  publishConcurrency?: number;
  /** Lease holder id; default host/pid/random. */
  holder?: string;
  now?: () => number;
  random?: () => number;
}

export interface HttpPollDeps {
  prepared: PreparedPoll;
  flow: { namespace: string; name: string; channel: string };
  nats: { servers: string[]; ingestSubject: string; stateBucket: string };
  /** JetStream replicas for the state bucket (the flow stream's). */
  replicas?: number;
  bus: BusWriter;
  /** The flow-stream subject (partition) of a record; default nats.ingestSubject for all. */
  route?: (data: Uint8Array, parsed?: unknown) => Promise<{ subject: string }>;
  metrics: FlowMetrics;
  logger: Logger;
  options?: HttpPollOptions;
}

export interface HttpPollHandle {
  /** Connected to NATS for state (the bus has its own check) and not stopping. */
  ready(): boolean;
  /** True while this replica holds the polling lease. */
  leader(): boolean;
  /** Poll cycles finished (any outcome). */
  cycles(): number;
  /** Stop: finish the page being published (at most graceMs), release the lease. Idempotent. */
  stop(graceMs?: number): Promise<void>;
}

interface CycleResult {
  outcome: PollOutcome;
  pages: number;
  published: number;
  duplicates: number;
  skipped: number;
  /** Records older than the stored cursor: the API did not filter by cursor.param. */
  beforeCursor: number;
  cursor?: CursorValue | undefined;
}

class LeaseLost extends Error {
  override name = 'LeaseLost';
}

export function startHttpPollSource(deps: HttpPollDeps): HttpPollHandle {
  const { prepared, metrics, nats } = deps;
  const o = deps.options ?? {};
  const now = o.now ?? Date.now;
  const random = o.random ?? Math.random;
  const log = deps.logger.child({ source: 'httpPoll' });
  const leaseTtlMs = o.leaseTtlMs ?? 30_000;
  const renewEveryMs = Math.max(100, Math.floor(leaseTtlMs / 3));
  const maxPages = o.maxPages ?? 10_000;
  const concurrency = Math.max(1, o.publishConcurrency ?? 64);
  const holder = o.holder ?? `${hostname()}/${process.pid}/${randomBytes(4).toString('hex')}`;
  const configuredUrl = prepared.source.poll.url;
  const encoder = new TextEncoder();

  let storedCursor: CursorValue | undefined;
  const poll = createPollMetrics(
    metrics.registry,
    { flow: `${deps.flow.namespace}/${deps.flow.name}`, channel: deps.flow.channel },
    () => cursorLagSeconds(storedCursor, now()),
  );
  const pacer = new RequestPacer();
  const agent = new Agent({
    connections: 2,
    headersTimeout: o.requestTimeoutMs ?? 30_000,
    bodyTimeout: o.requestTimeoutMs ?? 30_000,
  });
  const stopping = new AbortController();
  let state: StateConnection | undefined;
  let lease: Lease | undefined;
  let lastRenew = 0;
  let cycles = 0;

  const headersFor = (url: string): Record<string, string> => {
    const h: Record<string, string> = { 'user-agent': 'tally-poller' };
    if (prepared.auth && sameOrigin(url, configuredUrl)) h[prepared.auth[0]] = prepared.auth[1];
    return h;
  };

  /** Renew the lease when a renewal is due; LeaseLost when someone else has it now. */
  const renew = async (force = false): Promise<void> => {
    if (!lease) throw new LeaseLost('no lease');
    if (!force && now() - lastRenew < renewEveryMs && lease.held()) return;
    let held: boolean;
    try {
      held = await lease.acquire();
    } catch (err) {
      held = false;
      log.warn({ err }, 'cannot renew the polling lease');
    }
    poll.leader(held);
    if (!held) throw new LeaseLost(`the polling lease is held by ${lease.holderSeen ?? 'another replica'}`);
    lastRenew = now();
  };

  /** Sleep that keeps the lease renewed; rejects when stopping (or when the lease was lost, if `holding`). */
  const wait = async (ms: number, signal: AbortSignal, holding = true): Promise<void> => {
    const until = now() + ms;
    for (let left = ms; left > 0; left = until - now()) {
      await sleep(Math.min(left, renewEveryMs), undefined, { signal });
      if (holding) await renew();
    }
  };

  const route = deps.route ?? (async () => ({ subject: nats.ingestSubject }));

  /**
   * Publish a page's records, at most `concurrency` awaiting their acks at once, submitted in page
   * order (records of one key keep their order in the stream unless a publish fails and the cycle
   * is repeated). Resolves once every record is acknowledged; rejects with the first failure.
   */
  async function publishAll(items: { id: string; data: Uint8Array; record: unknown }[]): Promise<number> {
    let duplicates = 0;
    let failure: unknown;
    const inFlight: Promise<void>[] = [];
    for (const item of items) {
      if (failure !== undefined) break;
      if (inFlight.length >= concurrency) await inFlight.shift();
      try {
        const { subject } = await route(item.data, item.record);
        inFlight.push(
          deps.bus
            .publish(subject, item.data, {
              msgId: item.id,
              headers: {
                [INGEST_HEADERS.source]: 'httpPoll',
                [INGEST_HEADERS.receivedAt]: new Date(now()).toISOString(),
                [INGEST_HEADERS.traceparent]: formatTraceparent(traceFromSeed(item.id)),
              },
            })
            .then(
              (ack) => {
                metrics.received('httpPoll', ack.duplicate);
                poll.published();
                if (ack.duplicate) duplicates++;
              },
              (err: unknown) => {
                failure ??= err;
              },
            ),
        );
      } catch (err) {
        failure ??= err;
      }
    }
    await Promise.all(inFlight);
    if (failure !== undefined) throw failure;
    return duplicates;
  }

  async function recordsOf(body: unknown): Promise<unknown[]> {
    const v = prepared.records ? await prepared.records(body) : body;
    if (v === undefined || v === null) return [];
    if (Array.isArray(v)) return v;
    if (typeof v === 'object') return [v];
    throw new PaginationError(
      `${prepared.records ? `source.httpPoll.recordsField gave a ${typeof v}` : `the response body is a ${typeof v}`}, not a list of records; set recordsField to the path of the records array`,
    );
  }

  async function cycle(signal: AbortSignal): Promise<CycleResult> {
    const result: CycleResult = {
      outcome: 'ok',
      pages: 0,
      published: 0,
      duplicates: 0,
      skipped: 0,
      beforeCursor: 0,
    };
    const store = state!.store;
    const entry = await store.get<unknown>(POLL_STATE_KEYS.cursor);
    const stored = parsePollState(entry?.value);
    if (entry && !stored)
      log.warn({ key: POLL_STATE_KEYS.cursor }, 'stored cursor unreadable; starting from cursor.initial');
    const initial = prepared.cursor?.initial;
    const start: PollState | undefined =
      stored ?? (initial !== undefined ? { v: 1, cursor: initial, atCursor: [], updatedAt: '' } : undefined);
    storedCursor = start?.cursor;
    result.cursor = start?.cursor;
    const tracker = new CursorTracker(start);
    const first = firstRequest(
      configuredUrl,
      prepared.pagination,
      prepared.cursor && start ? { param: prepared.cursor.param, value: String(start.cursor) } : undefined,
    );
    const visited = new Set<string>();
    let previousPage: string | undefined;
    let missingCursor = 0;
    for (let req: PollRequest | undefined = first; req; ) {
      if (signal.aborted) return { ...result, outcome: 'stopped' };
      if (req.index > maxPages) {
        throw new PaginationError(
          `more than ${maxPages} pages in one poll cycle; the cursor is not advanced`,
        );
      }
      if (visited.has(req.url)) {
        throw new PaginationError(
          'the API named a page it had already returned in this cycle (a pagination loop)',
        );
      }
      visited.add(req.url);
      await renew();
      const page = await fetchPage(req.url, signal, {
        agent,
        timeoutMs: o.requestTimeoutMs ?? 30_000,
        maxBodyBytes: o.maxBodyBytes ?? 64 * 1024 * 1024,
        maxAttempts: o.maxAttempts ?? 5,
        ...(o.backoff ? { backoff: o.backoff } : {}),
        pacer,
        metrics: poll,
        logger: log,
        headersFor,
        wait: (ms, s) => wait(ms, s),
        now,
        random,
      });
      poll.page();
      result.pages++;
      const records = await recordsOf(page.body);
      const token = prepared.token ? await prepared.token(page.body) : undefined;
      const next = nextRequest(prepared.pagination, first, req, {
        link: header(page.headers, 'link'),
        token,
        recordCount: records.length,
      });
      const items: { id: string; data: Uint8Array; record: unknown }[] = [];
      const ids: string[] = [];
      for (const record of records) {
        const id = pollRecordId(record);
        ids.push(id);
        let value: CursorValue | undefined;
        if (prepared.cursor) {
          value = asCursorValue(await prepared.cursor.field(record));
          if (value === undefined) missingCursor++;
        }
        const admission = tracker.admit(value, id);
        if (admission === 'publish') items.push({ id, data: encoder.encode(JSON.stringify(record)), record });
        else {
          poll.skipped(admission);
          result.skipped++;
          if (admission === 'before_cursor') result.beforeCursor++;
        }
      }
      // An API that ignores the page parameter returns the same page forever.
      const signature = ids.join(',');
      if (req.pageNumber !== undefined && records.length > 0 && signature === previousPage) {
        throw new PaginationError(
          `page ${req.pageNumber} has the same records as page ${req.pageNumber - 1}: does the API take pagination.pageParam "${prepared.pagination.pageParam ?? 'page'}"?`,
        );
      }
      previousPage = signature;
      // Not interrupted by a stop: the page in progress is finished.
      result.duplicates += await publishAll(items);
      result.published += items.length;
      req = next;
    }
    if (missingCursor > 0) {
      log.warn(
        { records: missingCursor, field: prepared.source.poll.cursor?.field },
        'records without a usable cursor value were published but do not move the cursor',
      );
    }
    if (tracker.changed()) {
      await renew(true);
      const next = tracker.result(new Date(now()))!;
      try {
        await store.put(POLL_STATE_KEYS.cursor, next, entry?.revision ?? 0);
      } catch (err) {
        if (err instanceof StateStoreError && err.code === STATE_ERROR_CODES.conflict) {
          throw new LeaseLost('another replica stored a cursor during this cycle');
        }
        throw err;
      }
      storedCursor = next.cursor;
      result.cursor = next.cursor;
    }
    return result;
  }

  function outcomeOf(err: unknown): PollOutcome {
    if (stopping.signal.aborted && (err as Error)?.name === 'AbortError') return 'stopped';
    if (err instanceof PollRequestError) return err.outcome;
    if (err instanceof BusError) return 'bus_unavailable';
    if (err instanceof StateStoreError || err instanceof LeaseLost) return 'state_unavailable';
    return 'invalid_response';
  }

  const loop = (async () => {
    let failures = 0;
    let standingBy = false;
    let warnedBeforeCursor = false;
    while (!stopping.signal.aborted) {
      let delayMs = renewEveryMs;
      try {
        if (!state) {
          state = await connectState(
            nats.servers,
            `tally-poll ${deps.flow.namespace}/${deps.flow.name}`,
            nats.stateBucket,
            {
              replicas: deps.replicas ?? 1,
            },
          );
          lease = new Lease({
            store: state.store,
            key: POLL_STATE_KEYS.lease,
            holder,
            ttlMs: leaseTtlMs,
            now,
          });
          log.info({ bucket: nats.stateBucket }, 'poller state bucket open');
        }
        try {
          await renew(true);
        } catch (err) {
          if (!(err instanceof LeaseLost)) throw err;
          if (!standingBy) log.info({ holder: lease?.holderSeen }, 'another replica is polling; standing by');
          standingBy = true;
          storedCursor = undefined; // the leader reports the lag
          await wait(renewEveryMs, stopping.signal, false);
          continue;
        }
        if (standingBy) log.info('took over polling');
        standingBy = false;
        const started = now();
        const r = await cycle(stopping.signal);
        cycles++;
        poll.poll(r.outcome);
        if (r.outcome === 'stopped') break;
        failures = 0;
        if (r.beforeCursor > 0 && !warnedBeforeCursor) {
          warnedBeforeCursor = true;
          log.warn(
            { records: r.beforeCursor, param: prepared.cursor?.param },
            'the API returned records older than the cursor (skipped); does it filter by cursor.param?',
          );
        }
        const level = r.published > 0 ? 'info' : 'debug';
        log[level](
          {
            pages: r.pages,
            published: r.published,
            duplicates: r.duplicates,
            skipped: r.skipped,
            cursor: r.cursor,
            ms: now() - started,
          },
          'poll cycle done',
        );
        delayMs = Math.max(MIN_INTERVAL_MS, prepared.intervalMs - (now() - started));
      } catch (err) {
        const outcome = outcomeOf(err);
        if (outcome === 'stopped') {
          cycles++;
          poll.poll('stopped');
          break;
        }
        if (lease && state) {
          cycles++;
          poll.poll(outcome);
        }
        failures++;
        delayMs = nextCycleDelayMs(prepared.intervalMs, failures, random);
        const lvl = failures === 1 || failures % 10 === 0 ? 'warn' : 'debug';
        log[lvl](
          { err, outcome, failures, retryInMs: delayMs },
          'poll cycle failed; the cursor is unchanged',
        );
        if (err instanceof LeaseLost || err instanceof StateStoreError) {
          // Not sure we still hold it: wait without renewing, then try to take it again.
          await sleep(Math.min(delayMs, renewEveryMs), undefined, { signal: stopping.signal }).catch(
            () => {},
          );
          continue;
        }
      }
      try {
        await wait(delayMs, stopping.signal, lease?.held() ?? false);
      } catch (err) {
        if (stopping.signal.aborted) break;
        if (!(err instanceof LeaseLost)) log.warn({ err }, 'poller wait failed');
      }
    }
  })();

  let stopped: Promise<void> | undefined;
  return {
    ready: () => !stopping.signal.aborted && (state?.connected() ?? false),
    leader: () => lease?.held() ?? false,
    cycles: () => cycles,
    stop(graceMs = 20_000) {
      stopped ??= (async () => {
        stopping.abort();
        let timer: NodeJS.Timeout | undefined;
        const finished = await Promise.race([
          loop.then(() => true),
          new Promise<boolean>((resolve) => {
            timer = setTimeout(() => resolve(false), graceMs);
          }),
        ]);
        clearTimeout(timer);
        if (!finished)
          log.warn({ graceMs }, 'the page in progress was not published within the grace period');
        await lease?.release();
        poll.leader(false);
        await state?.close();
        await agent.close().catch(() => {});
        log.info('poller stopped');
      })();
      return stopped;
    },
  };
}
