// An in-memory bus for unit tests of flow logic only: streams with subject filters and msgId
// dedupe, one durable consumer per stream with redelivery on nak, plain subscriptions.
// Integration tests use the real JetStream bus; this never runs in a worker.
import { BusError, BusErrorCode } from './errors.ts';
import type {
  Bus,
  BusHeaders,
  BusMessage,
  ConsumeOptions,
  ConsumerHandle,
  ConsumerLag,
  CoreHandler,
  MessageHandler,
  PublishAck,
  PublishOptions,
  ReplayHandle,
  ReplayHandler,
  ReplayOptions,
  SubscriptionHandle,
} from './types.ts';

export interface StoredMessage {
  seq: number;
  subject: string;
  data: Uint8Array;
  headers: BusHeaders;
  storedAt: Date;
}

interface MemoryStream {
  name: string;
  subjects: string[];
  messages: StoredMessage[];
  msgIds: Set<string>;
}

/** NATS subject matching: `*` matches one token, `>` the rest. */
export function subjectMatches(filter: string, subject: string): boolean {
  const f = filter.split('.');
  const s = subject.split('.');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '>') return s.length > i;
    if (i >= s.length) return false;
    if (f[i] !== '*' && f[i] !== s[i]) return false;
  }
  return f.length === s.length;
}

export type Settlement = 'ack' | 'nak' | 'term';

export interface MemoryBusOptions {
  /** The consumer's max_deliver: no delivery beyond it (JetStream then leaves the message unacked). */
  maxDeliver?: number;
}

export class MemoryBus implements Bus {
  readonly maxDeliver: number;
  readonly streams = new Map<string, MemoryStream>();
  /** Every settlement, in order, for assertions. */
  readonly settlements: { seq: number; stream: string; outcome: Settlement; delayMs?: number }[] = [];
  /** Plain messages sent with send(). */
  readonly sent: { subject: string; data: Uint8Array; headers: BusHeaders }[] = [];
  /** Set to make publish/send fail as if NATS were down. */
  down = false;
  readonly #subs: { subject: string; handler: CoreHandler }[] = [];
  readonly #consumers: MemoryConsumer[] = [];
  readonly #replays = new Set<MemoryReplay>();

  constructor(options: MemoryBusOptions = {}) {
    this.maxDeliver = options.maxDeliver ?? Number.POSITIVE_INFINITY;
  }

  addStream(name: string, subjects: string[]): void {
    this.streams.set(name, { name, subjects, messages: [], msgIds: new Set() });
  }

  messages(stream: string): StoredMessage[] {
    return this.streams.get(stream)?.messages ?? [];
  }

  connected(): boolean {
    return !this.down;
  }

  async publish(subject: string, data: Uint8Array, options: PublishOptions = {}): Promise<PublishAck> {
    if (this.down) throw new BusError(BusErrorCode.Unavailable, `publish to ${subject}: bus is down`);
    const stream = [...this.streams.values()].find((s) => s.subjects.some((f) => subjectMatches(f, subject)));
    if (!stream) throw new BusError(BusErrorCode.NoStream, `publish to ${subject}: no stream captures it`);
    if (options.msgId && stream.msgIds.has(options.msgId)) {
      const prev = stream.messages.find((m) => m.headers['Nats-Msg-Id'] === options.msgId);
      return { stream: stream.name, seq: prev?.seq ?? 0, duplicate: true };
    }
    const headers = { ...options.headers, ...(options.msgId ? { 'Nats-Msg-Id': options.msgId } : {}) };
    const stored: StoredMessage = {
      seq: stream.messages.length + 1,
      subject,
      data: Uint8Array.from(data),
      headers,
      storedAt: new Date(),
    };
    stream.messages.push(stored);
    if (options.msgId) stream.msgIds.add(options.msgId);
    for (const c of this.#consumers) if (c.stream === stream.name) c.enqueue(stored);
    for (const r of this.#replays) if (r.stream === stream.name) r.enqueue(stored);
    return { stream: stream.name, seq: stored.seq, duplicate: false };
  }

  async streamFor(subject: string): Promise<string | undefined> {
    if (this.down) throw new BusError(BusErrorCode.Unavailable, `find the stream of ${subject}: bus is down`);
    return [...this.streams.values()].find((s) => s.subjects.some((f) => subjectMatches(f, subject)))?.name;
  }

  async send(subject: string, data: Uint8Array, headers: BusHeaders = {}): Promise<void> {
    if (this.down) throw new BusError(BusErrorCode.Unavailable, `send to ${subject}: bus is down`);
    this.sent.push({ subject, data, headers });
    for (const s of this.#subs) {
      if (subjectMatches(s.subject, subject)) await s.handler({ subject, data, headers });
    }
  }

  respond(_reply: string, _data: Uint8Array): void {}

  subscribe(subject: string, handler: CoreHandler): SubscriptionHandle {
    const entry = { subject, handler };
    this.#subs.push(entry);
    return {
      stop: async () => {
        this.#subs.splice(this.#subs.indexOf(entry), 1);
      },
    };
  }

  async consume(
    stream: string,
    _consumer: string,
    handler: MessageHandler,
    options: ConsumeOptions,
  ): Promise<ConsumerHandle> {
    const s = this.streams.get(stream);
    if (!s) throw new BusError(BusErrorCode.NotFound, `stream ${stream} not found`);
    const c = new MemoryConsumer(this, stream, handler, options.maxInFlight);
    this.#consumers.push(c);
    for (const m of s.messages) c.enqueue(m);
    return c;
  }

  async replay(
    stream: string,
    filterSubjects: string[],
    handler: ReplayHandler,
    options: ReplayOptions = {},
  ): Promise<ReplayHandle> {
    if (this.down) throw new BusError(BusErrorCode.Unavailable, `replay ${stream}: bus is down`);
    const s = this.streams.get(stream);
    if (!s) throw new BusError(BusErrorCode.NotFound, `stream ${stream} not found`);
    const r = new MemoryReplay(stream, filterSubjects, handler, [...s.messages], () =>
      this.#replays.delete(r),
    );
    this.#replays.add(r);
    if (options.signal?.aborted) await r.stop();
    else options.signal?.addEventListener('abort', () => void r.stop(), { once: true });
    return r;
  }

  async consumerLag(stream: string, _consumer: string): Promise<ConsumerLag> {
    if (this.down) throw new BusError(BusErrorCode.Unavailable, `consumer of ${stream}: bus is down`);
    const c = this.#consumers.find((x) => x.stream === stream);
    if (!c) throw new BusError(BusErrorCode.NotFound, `no consumer of stream ${stream}`);
    return c.lag();
  }

  async close(): Promise<void> {
    await Promise.all([...this.#consumers.map((c) => c.stop(0)), ...[...this.#replays].map((r) => r.stop())]);
  }
}

/** An ordered read of a memory stream: stored messages of the filters, then new ones, one at a time. */
class MemoryReplay implements ReplayHandle {
  readonly stream: string;
  readonly caughtUp: Promise<void>;
  readonly #filters: string[];
  readonly #handler: ReplayHandler;
  readonly #queue: StoredMessage[] = [];
  readonly #onStop: () => void;
  #lastAtStart: number;
  #markCaughtUp!: () => void;
  #pumping: Promise<void> | undefined;
  #stopped = false;

  constructor(
    stream: string,
    filters: string[],
    handler: ReplayHandler,
    stored: StoredMessage[],
    onStop: () => void,
  ) {
    this.stream = stream;
    this.#filters = filters;
    this.#handler = handler;
    this.#onStop = onStop;
    this.caughtUp = new Promise((resolve) => {
      this.#markCaughtUp = resolve;
    });
    this.#lastAtStart = 0;
    for (const m of stored) this.enqueue(m);
    this.#lastAtStart = this.#queue.at(-1)?.seq ?? 0;
    if (this.#lastAtStart === 0) this.#markCaughtUp();
  }

  enqueue(m: StoredMessage): void {
    if (this.#stopped || !this.#filters.some((f) => subjectMatches(f, m.subject))) return;
    this.#queue.push(m);
    this.#pumping ??= this.#pump().finally(() => {
      this.#pumping = undefined;
    });
  }

  async #pump(): Promise<void> {
    await Promise.resolve();
    while (!this.#stopped && this.#queue.length > 0) {
      const m = this.#queue.shift()!;
      try {
        await this.#handler({
          subject: m.subject,
          data: m.data,
          headers: m.headers,
          streamSeq: m.seq,
          storedAt: m.storedAt,
        });
      } catch {
        // As the JetStream bus: logged there, skipped here; the replay goes on.
      }
      if (!this.#stopped && m.seq >= this.#lastAtStart) this.#markCaughtUp();
    }
  }

  running(): boolean {
    return !this.#stopped;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#queue.length = 0;
    this.#onStop();
    await this.#pumping;
  }
}

export class MemoryConsumer implements ConsumerHandle {
  readonly stream: string;
  readonly #bus: MemoryBus;
  readonly #handler: MessageHandler;
  readonly #max: number;
  readonly #ready: StoredMessage[] = [];
  readonly #deliveries = new Map<number, number>();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #inFlight = new Set<Promise<void>>();
  #stopped = false;

  constructor(bus: MemoryBus, stream: string, handler: MessageHandler, max: number) {
    this.#bus = bus;
    this.stream = stream;
    this.#handler = handler;
    this.#max = Math.max(1, max);
  }

  enqueue(m: StoredMessage): void {
    this.#ready.push(m);
    queueMicrotask(() => this.#pump());
  }

  #pump(): void {
    while (!this.#stopped && this.#inFlight.size < this.#max && this.#ready.length > 0) {
      const stored = this.#ready.shift()!;
      const count = (this.#deliveries.get(stored.seq) ?? 0) + 1;
      if (count > this.#bus.maxDeliver) continue;
      this.#deliveries.set(stored.seq, count);
      const task: Promise<void> = this.#handler(this.#message(stored, count))
        .catch(() => {})
        .finally(() => {
          this.#inFlight.delete(task);
          this.#pump();
        });
      this.#inFlight.add(task);
    }
  }

  #message(stored: StoredMessage, deliveryCount: number): BusMessage {
    let settled = false;
    const settle = (outcome: Settlement, delayMs?: number) => {
      if (settled) throw new Error(`message ${stored.seq} settled twice`);
      settled = true;
      this.#bus.settlements.push({
        seq: stored.seq,
        stream: this.stream,
        outcome,
        ...(delayMs !== undefined ? { delayMs } : {}),
      });
    };
    return {
      subject: stored.subject,
      data: stored.data,
      headers: stored.headers,
      deliveryCount,
      streamSeq: stored.seq,
      storedAt: stored.storedAt,
      ack: async () => settle('ack'),
      term: async () => settle('term'),
      nak: async (delayMs = 0) => {
        settle('nak', delayMs);
        const timer = setTimeout(() => {
          this.#timers.delete(timer);
          this.#ready.push(stored);
          this.#pump();
        }, delayMs);
        this.#timers.add(timer);
      },
      inProgress: () => {},
    };
  }

  running(): boolean {
    return !this.#stopped;
  }

  lag(): ConsumerLag {
    const redelivered = [...this.#deliveries.values()].filter((n) => n > 1).length;
    return { pending: this.#ready.length, ackPending: this.#inFlight.size + this.#timers.size, redelivered };
  }

  inFlight(): number {
    return this.#inFlight.size;
  }

  /** Resolves once every message delivered so far is settled and none is waiting. */
  async idle(timeoutMs = 5_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.#inFlight.size > 0 || this.#ready.length > 0 || this.#timers.size > 0) {
      if (Date.now() > deadline) throw new Error('memory consumer did not become idle');
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  async stop(graceMs: number): Promise<void> {
    this.#stopped = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.#inFlight]),
      new Promise<void>((r) => {
        timer = setTimeout(r, graceMs);
      }),
    ]);
    clearTimeout(timer);
  }
}
