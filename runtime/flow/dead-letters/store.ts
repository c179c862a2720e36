// The I/O behind `tally dlq`: a flow's dead-letter stream read without consuming it (an ephemeral
// ordered consumer, headers only, deleted afterwards; single messages by sequence), replay
// publishes onto the flow's ingest subject, and deletes after a replay is stored. No durable
// consumer is created and nothing is acked: reading never changes the dead-letter stream.
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  type StreamInfo,
} from '@nats-io/jetstream';
import { connect, type NatsConnection, headers as natsHeaders } from '@nats-io/transport-node';
import { pino } from 'pino';
import { toBusHeaders } from '../../bus/jetstream-message.ts';
import { type FlowRef, flowNames, layoutFromMetadata } from '../../nats/flow-resources.ts';
import { createIngestRouter } from '../partition.ts';
import { DeadLetterError, DeadLetterErrorCode } from './errors.ts';
import { type DeadLetterFilter, matchesFilter } from './filter.ts';
import { type DeadLetter, type DeadLetterSummary, summarize } from './record.ts';
import { replayHeaders, replayMsgId } from './replay.ts';

export interface DeadLetterStoreOptions {
  servers: string[];
  flow: FlowRef;
  /** Per-request timeout; 5 s. */
  timeoutMs?: number;
  /** Pauses between attempts of a replay publish; default 250 ms, 1 s. */
  publishRetryMs?: readonly number[];
}

export interface ReplayResult {
  /** The ingest subject and the dedupe id it was published under. */
  subject: string;
  msgId: string;
  /** Sequence in the flow stream. */
  seq: number;
  /** The flow stream already had this id (a retried publish of this run). */
  duplicate: boolean;
}

/** Where `tally dlq replay` publishes. */
export interface ReplayTarget {
  /** The subject, or the subjects and how payloads are spread over them, for messages. */
  description: string;
  /** The ingest subject of one payload. */
  subjectOf(data: Uint8Array): Promise<string>;
}

const DEFAULT_TIMEOUT_MS = 5_000;
/** Messages per pull while scanning. */
const SCAN_BATCH = 256;

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function isStreamNotFound(err: unknown): boolean {
  const e = err as { name?: string; code?: number; api_error?: { err_code?: number } };
  return e?.name === 'StreamNotFoundError' || e?.api_error?.err_code === 10059;
}

export class DeadLetterStore {
  readonly flow: FlowRef;
  readonly names: ReturnType<typeof flowNames>;
  readonly #nc: NatsConnection;
  readonly #jsm: JetStreamManager;
  readonly #js: JetStreamClient;
  readonly #timeoutMs: number;
  readonly #publishRetryMs: readonly number[];

  private constructor(nc: NatsConnection, jsm: JetStreamManager, o: DeadLetterStoreOptions) {
    this.flow = o.flow;
    this.names = flowNames(o.flow);
    this.#nc = nc;
    this.#jsm = jsm;
    this.#timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#js = jetstream(nc, { timeout: this.#timeoutMs });
    this.#publishRetryMs = o.publishRetryMs ?? [250, 1_000];
  }

  /** Connects and checks that the flow's dead-letter stream exists. */
  static async open(o: DeadLetterStoreOptions): Promise<DeadLetterStore> {
    const timeout = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const where = o.servers.join(',');
    let nc: NatsConnection;
    try {
      nc = await connect({ servers: o.servers, name: 'tally-dlq', timeout, maxReconnectAttempts: 3 });
    } catch (err) {
      throw new DeadLetterError(
        DeadLetterErrorCode.Unreachable,
        `cannot reach NATS at ${where}: ${describe(err)}. Check --nats-url (or TALLY_NATS_URL) and that nats-server is running.`,
        { cause: err },
      );
    }
    let jsm: JetStreamManager;
    try {
      jsm = await jetstreamManager(nc, { timeout });
    } catch (err) {
      await nc.close().catch(() => {});
      throw new DeadLetterError(
        DeadLetterErrorCode.Unreachable,
        `NATS at ${where} does not answer JetStream requests: ${describe(err)}. Tally needs JetStream (nats-server -js).`,
        { cause: err },
      );
    }
    const store = new DeadLetterStore(nc, jsm, o);
    try {
      await store.#streamInfo(store.names.deadLetterStream, 'dead-letter');
    } catch (err) {
      await store.close();
      throw err;
    }
    return store;
  }

  get flowId(): string {
    return `${this.flow.namespace}/${this.flow.name}`;
  }

  async #streamInfo(stream: string, what: string): Promise<StreamInfo> {
    try {
      return await this.#jsm.streams.info(stream);
    } catch (err) {
      if (isStreamNotFound(err)) {
        throw new DeadLetterError(
          DeadLetterErrorCode.StreamMissing,
          `the ${what} stream ${stream} of flow ${this.flowId} does not exist. Check --flow NAMESPACE/NAME ` +
            `(kubectl get integrationflows -A); the operator (or \`tally run\`) creates the stream when the flow is applied.`,
          { cause: err },
        );
      }
      throw this.#failed(`read stream ${stream}`, err);
    }
  }

  #failed(what: string, err: unknown): DeadLetterError {
    if (err instanceof DeadLetterError) return err;
    return new DeadLetterError(DeadLetterErrorCode.Failed, `${what}: ${describe(err)}`, { cause: err });
  }

  /**
   * The subject replays go to, after checking that the flow's ingest stream exists and captures it.
   * Partition 0: a dead letter does not record the partition it came from. In an ordered flow the
   * replays are then delivered one at a time on that partition; a replay is out of order with the
   * later events of its key in any case (those went on while it sat in the dead-letter stream).
   */
  /**
   * Where replays go: each payload to the partition the flow's sources would route it to now (the
   * layout the operator keeps in the flow stream's metadata), so a replayed event queues behind the
   * other events of its key. A stream from before that metadata gets everything on partition 0.
   */
  async replayTarget(): Promise<ReplayTarget> {
    const info = await this.#streamInfo(this.names.stream, 'flow ingest');
    const subject = this.names.ingestSubject();
    let owner: string | undefined;
    try {
      owner = await this.#jsm.streams.find(subject);
    } catch (err) {
      if (!isStreamNotFound(err)) throw this.#failed(`find the stream of ${subject}`, err);
    }
    if (owner !== this.names.stream) {
      throw new DeadLetterError(
        DeadLetterErrorCode.StreamMissing,
        `the ingest subject ${subject} is captured by ${owner ? `stream ${owner}` : 'no stream'}, not ${this.names.stream}; ` +
          'the flow streams are misconfigured: re-apply the IntegrationFlow so the operator recreates them.',
      );
    }
    const layout = layoutFromMetadata(info.config.metadata) ?? { partitionKey: undefined, partitions: 1 };
    const route = createIngestRouter({
      ...layout,
      subject: (p) => this.names.ingestSubject(p),
      // A payload without a key goes to partition 0, as at ingest; the replay row shows the subject.
      logger: pino({ level: 'silent' }),
    });
    return {
      description: layout.partitionKey
        ? `${this.names.ingestSubjects} (${layout.partitions} partitions by ${layout.partitionKey})`
        : subject,
      subjectOf: async (data) => (await route(data)).subject,
    };
  }

  /**
   * Summaries of the dead letters matching `filter`, oldest first. Reads headers only through an
   * ephemeral ordered consumer (deleted at the end); stops at the last message present at the start.
   */
  async *scan(filter: DeadLetterFilter = {}): AsyncGenerator<DeadLetterSummary> {
    const stream = this.names.deadLetterStream;
    if (filter.seqs && filter.seqs.length > 0) {
      for (const seq of [...new Set(filter.seqs)].sort((a, b) => a - b)) {
        const d = await this.get(seq);
        if (d && matchesFilter(d, filter)) yield d;
      }
      return;
    }
    const info = await this.#streamInfo(stream, 'dead-letter');
    if (info.state.messages === 0) return;
    const lastSeq = info.state.last_seq;
    let consumer: Awaited<ReturnType<JetStreamClient['consumers']['get']>>;
    try {
      consumer = await this.#js.consumers.get(stream, {
        headers_only: true,
        ...(filter.since ? { opt_start_time: filter.since.toISOString() } : {}),
      });
    } catch (err) {
      throw this.#failed(`read ${stream}`, err);
    }
    try {
      let remaining = (await consumer.info(true)).num_pending;
      // Each pass takes at least one message or ends the scan.
      while (remaining > 0) {
        const summaries: DeadLetterSummary[] = [];
        let past = false;
        try {
          const batch = await consumer.fetch({
            max_messages: Math.min(remaining, SCAN_BATCH),
            expires: this.#timeoutMs,
          });
          let got = 0;
          for await (const m of batch) {
            got++;
            remaining = m.info.pending;
            if (m.seq > lastSeq) past = true;
            if (past) continue;
            summaries.push(
              summarize({ seq: m.seq, storedAt: m.time, headers: toBusHeaders(m.headers), stream }),
            );
            if (m.seq === lastSeq) past = true;
          }
          if (got === 0) past = true;
        } catch (err) {
          throw this.#failed(`read ${stream}`, err);
        }
        for (const s of summaries) if (matchesFilter(s, filter)) yield s;
        if (past) break;
      }
    } finally {
      await consumer.delete().catch(() => {});
    }
  }

  /** One dead letter with its payload, or undefined when there is none at that sequence. */
  async get(seq: number): Promise<DeadLetter | undefined> {
    const stream = this.names.deadLetterStream;
    let m: Awaited<ReturnType<JetStreamManager['streams']['getMessage']>>;
    try {
      m = await this.#jsm.streams.getMessage(stream, { seq });
    } catch (err) {
      const e = err as { name?: string; api_error?: { err_code?: number; code?: number } };
      if (
        e?.api_error?.err_code === 10037 ||
        e?.api_error?.code === 404 ||
        /no message found/i.test(describe(err))
      )
        return undefined;
      throw this.#failed(`get dead letter ${seq} from ${stream}`, err);
    }
    if (!m) return undefined;
    const headers = toBusHeaders(m.header);
    return {
      ...summarize({ seq: m.seq, storedAt: m.time, headers, stream }),
      subject: m.subject,
      headers,
      data: m.data,
    };
  }

  /**
   * Publishes the dead letter's original payload and headers onto `subject` under a new dedupe id,
   * carrying its original source message id. Resolves once the flow stream has stored it.
   */
  async replay(dl: DeadLetter, subject: string, runId: string): Promise<ReplayResult> {
    const msgId = replayMsgId(runId, dl.seq, dl.sourceMsgId);
    const h = natsHeaders();
    const replay = replayHeaders({
      headers: dl.headers,
      sourceMsgId: dl.sourceMsgId,
      stream: this.names.deadLetterStream,
      seq: dl.seq,
    });
    for (const [k, v] of Object.entries(replay)) h.set(k, v);
    for (let attempt = 0; ; attempt++) {
      try {
        // Same msgId on every attempt: a publish whose ack was lost is stored once.
        const ack = await this.#js.publish(subject, dl.data, {
          msgID: msgId,
          headers: h,
          expect: { streamName: this.names.stream },
          timeout: this.#timeoutMs,
        });
        return { subject, msgId, seq: ack.seq, duplicate: ack.duplicate };
      } catch (err) {
        const pause = this.#publishRetryMs[attempt];
        if (pause === undefined || this.#nc.isClosed())
          throw this.#failed(`replay dead letter ${dl.seq} to ${subject}`, err);
        await sleep(pause);
      }
    }
  }

  /** Deletes a dead letter (its data erased); true when it is gone, also when it already was. */
  async remove(seq: number): Promise<boolean> {
    const stream = this.names.deadLetterStream;
    try {
      return await this.#jsm.streams.deleteMessage(stream, seq, true);
    } catch (err) {
      if (/no message found|not found/i.test(describe(err)) && !isStreamNotFound(err)) return true;
      throw this.#failed(`delete dead letter ${seq} from ${stream}`, err);
    }
  }

  async close(): Promise<void> {
    if (this.#nc.isClosed()) return;
    await this.#nc.drain().catch(() => this.#nc.close().catch(() => {}));
  }
}
