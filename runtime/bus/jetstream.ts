// The real bus: NATS core for plain messages, JetStream for persistent publish (with Nats-Msg-Id
// dedupe) and a durable pull consumer. Reconnects forever; `connected()` feeds the readiness probe.
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type Consumer,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  jetstream,
  jetstreamManager,
} from '@nats-io/jetstream';
import { connect, type MsgHdrs, type NatsConnection, headers as natsHeaders } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { BusError, BusErrorCode } from './errors.ts';
import { Slots } from './slots.ts';
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
  SubscriptionHandle,
} from './types.ts';

export interface JetStreamBusOptions {
  servers: string[];
  /** Client name shown by the server (e.g. the flow and pod). */
  name: string;
  logger: Logger;
  /** Stops the initial connection attempts. */
  signal?: AbortSignal;
  /** Default publish ack timeout; 5 s. */
  publishTimeoutMs?: number;
  /** Wait between (re)connect attempts; 1 s. */
  reconnectWaitMs?: number;
}

const DEFAULT_TIMEOUT_MS = 5_000;

export function toBusHeaders(h: MsgHdrs | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!h) return out;
  for (const key of h.keys()) {
    const first = h.values(key)[0];
    if (first !== undefined) out[key] = first;
  }
  return out;
}

function toMsgHdrs(h: BusHeaders | undefined): MsgHdrs | undefined {
  if (!h || Object.keys(h).length === 0) return undefined;
  const out = natsHeaders();
  for (const [k, v] of Object.entries(h)) out.set(k, v);
  return out;
}

/** Translate nats.js errors into BusError codes the flow can act on. */
export function toBusError(err: unknown, what: string): BusError {
  if (err instanceof BusError) return err;
  const e = err as Error;
  const name = e?.name ?? '';
  if (name === 'JetStreamNotEnabled') {
    return new BusError(BusErrorCode.NoStream, `${what}: no JetStream stream captures the subject`, {
      cause: err,
    });
  }
  if (name === 'ClosedConnectionError' || name === 'DrainingConnectionError') {
    return new BusError(BusErrorCode.Closed, `${what}: the NATS connection is closed`, { cause: err });
  }
  if (name === 'StreamNotFoundError' || name === 'ConsumerNotFoundError') {
    return new BusError(BusErrorCode.NotFound, `${what}: ${e.message}`, { cause: err });
  }
  return new BusError(BusErrorCode.Unavailable, `${what}: ${e?.message ?? String(err)}`, { cause: err });
}

/** Race a promise against a timeout that is always cleared. */
async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new BusError(BusErrorCode.Unavailable, `${what}: timed out after ${ms} ms`)),
      ms,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

class JetStreamMessage implements BusMessage {
  readonly headers: BusHeaders;
  settled = false;
  readonly #msg: JsMsg;
  readonly #nc: NatsConnection;
  readonly #timeoutMs: number;
  constructor(msg: JsMsg, nc: NatsConnection, timeoutMs: number) {
    this.#msg = msg;
    this.#nc = nc;
    this.#timeoutMs = timeoutMs;
    this.headers = toBusHeaders(msg.headers);
  }
  get subject() {
    return this.#msg.subject;
  }
  get data() {
    return this.#msg.data;
  }
  get deliveryCount() {
    return this.#msg.info.deliveryCount;
  }
  get streamSeq() {
    return this.#msg.seq;
  }
  get storedAt() {
    return this.#msg.time;
  }
  async ack(): Promise<void> {
    this.settled = true;
    try {
      this.#msg.ack();
    } catch (err) {
      throw toBusError(err, 'ack');
    }
  }
  async nak(delayMs?: number): Promise<void> {
    this.settled = true;
    this.#msg.nak(delayMs && delayMs > 0 ? Math.round(delayMs) : undefined);
    await this.#flush('nak');
  }
  async term(reason?: string): Promise<void> {
    this.settled = true;
    this.#msg.term(reason);
    await this.#flush('term');
  }
  inProgress(): void {
    if (!this.settled) this.#msg.working();
  }
  // The server handles a connection's messages in order, so the flush's PONG proves it got the nak/term.
  async #flush(what: string): Promise<void> {
    try {
      await withTimeout(this.#nc.flush(), this.#timeoutMs, what);
    } catch (err) {
      throw toBusError(err, what);
    }
  }
}

class JetStreamBus implements Bus {
  readonly #nc: NatsConnection;
  readonly #js: JetStreamClient;
  readonly #log: Logger;
  readonly #timeoutMs: number;
  readonly #reconnectWaitMs: number;
  #connected = true;
  readonly #consumers = new Set<ConsumerHandle>();

  constructor(nc: NatsConnection, log: Logger, timeoutMs: number, reconnectWaitMs: number) {
    this.#nc = nc;
    this.#js = jetstream(nc, { timeout: timeoutMs });
    this.#log = log;
    this.#timeoutMs = timeoutMs;
    this.#reconnectWaitMs = reconnectWaitMs;
    void this.#watchStatus();
  }

  async #watchStatus(): Promise<void> {
    for await (const s of this.#nc.status()) {
      switch (s.type) {
        case 'disconnect':
          this.#connected = false;
          this.#log.warn({ server: s.server }, 'disconnected from NATS; reconnecting');
          break;
        case 'reconnect':
          this.#connected = true;
          this.#log.info({ server: s.server }, 'reconnected to NATS');
          break;
        case 'close':
          this.#connected = false;
          break;
        case 'error':
          this.#log.warn({ err: s.error }, 'NATS connection error');
          break;
        default:
          break;
      }
    }
  }

  connected(): boolean {
    return this.#connected && !this.#nc.isClosed();
  }

  async publish(subject: string, data: Uint8Array, options: PublishOptions = {}): Promise<PublishAck> {
    try {
      const ack = await this.#js.publish(subject, data, {
        ...(options.msgId ? { msgID: options.msgId } : {}),
        ...(options.headers ? { headers: toMsgHdrs(options.headers) } : {}),
        timeout: options.timeoutMs ?? this.#timeoutMs,
      });
      return { stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate };
    } catch (err) {
      throw toBusError(err, `publish to ${subject}`);
    }
  }

  #jsm: Promise<JetStreamManager> | undefined;

  async streamFor(subject: string): Promise<string | undefined> {
    try {
      this.#jsm ??= jetstreamManager(this.#nc, { timeout: this.#timeoutMs });
      return await (await this.#jsm).streams.find(subject);
    } catch (err) {
      if ((err as Error).name === 'StreamNotFoundError') return undefined;
      this.#jsm = undefined;
      throw toBusError(err, `find the stream of ${subject}`);
    }
  }

  async consumerLag(stream: string, consumer: string): Promise<ConsumerLag> {
    try {
      this.#jsm ??= jetstreamManager(this.#nc, { timeout: this.#timeoutMs });
      const info = await (await this.#jsm).consumers.info(stream, consumer);
      return {
        pending: info.num_pending,
        ackPending: info.num_ack_pending,
        redelivered: info.num_redelivered,
      };
    } catch (err) {
      if ((err as Error).name !== 'ConsumerNotFoundError' && (err as Error).name !== 'StreamNotFoundError') {
        this.#jsm = undefined;
      }
      throw toBusError(err, `consumer ${stream}/${consumer}`);
    }
  }

  async send(subject: string, data: Uint8Array, headers?: BusHeaders): Promise<void> {
    try {
      const h = toMsgHdrs(headers);
      this.#nc.publish(subject, data, h ? { headers: h } : undefined);
      await withTimeout(this.#nc.flush(), this.#timeoutMs, `send to ${subject}`);
    } catch (err) {
      throw toBusError(err, `send to ${subject}`);
    }
  }

  respond(reply: string, data: Uint8Array): void {
    try {
      this.#nc.publish(reply, data);
    } catch (err) {
      this.#log.warn({ err }, 'could not reply to a NATS request');
    }
  }

  subscribe(subject: string, handler: CoreHandler, options: { queue?: string } = {}): SubscriptionHandle {
    const sub = this.#nc.subscribe(subject, options.queue ? { queue: options.queue } : {});
    // One at a time: keeps the source's order and applies backpressure to a fast publisher.
    const loop = (async () => {
      for await (const m of sub) {
        try {
          await handler({
            subject: m.subject,
            data: m.data,
            headers: toBusHeaders(m.headers),
            ...(m.reply ? { reply: m.reply } : {}),
          });
        } catch (err) {
          this.#log.error({ err, subject: m.subject }, 'subscription handler failed');
        }
      }
    })();
    return {
      stop: async () => {
        if (!sub.isClosed()) await sub.drain().catch(() => {});
        await loop;
      },
    };
  }

  async consume(
    stream: string,
    consumerName: string,
    handler: MessageHandler,
    options: ConsumeOptions,
  ): Promise<ConsumerHandle> {
    const handle = new PullConsumer(this, stream, consumerName, handler, options);
    this.#consumers.add(handle);
    handle.start();
    return handle;
  }

  // Used by PullConsumer.
  get internals() {
    return {
      nc: this.#nc,
      js: this.#js,
      log: this.#log,
      timeoutMs: this.#timeoutMs,
      reconnectWaitMs: this.#reconnectWaitMs,
    };
  }

  async close(): Promise<void> {
    await Promise.all([...this.#consumers].map((c) => c.stop(0)));
    if (this.#nc.isClosed()) return;
    try {
      await withTimeout(this.#nc.drain(), this.#timeoutMs, 'drain');
    } catch (err) {
      this.#log.warn({ err }, 'NATS drain did not finish; closing');
      await this.#nc.close().catch(() => {});
    }
  }
}

/**
 * Short pull requests keep a stop clean: stopping waits for the current pull to end (at most this
 * long), so every message the server sent for it is received and handed back, none left in limbo.
 */
const FETCH_EXPIRES_MS = 1_000;

/**
 * A durable pull consumer with a bound on messages in flight, pulling with fetch() for exactly the
 * free slots (its own, or slots shared with the worker's other consumers): while every slot is
 * taken it does not pull at all, so slow sinks hold messages back in the stream, not in memory.
 * Restarts itself if the consumer goes away or the connection drops.
 */
class PullConsumer implements ConsumerHandle {
  readonly #bus: JetStreamBus;
  readonly #stream: string;
  readonly #name: string;
  readonly #handler: MessageHandler;
  readonly #max: number;
  /** Smallest pull worth making while another pull is still open. */
  readonly #minBatch: number;
  readonly #slots: Slots;
  readonly #inFlight = new Set<Promise<void>>();
  /** Pulls still open; each holds slots for the messages it may yet bring. */
  readonly #pulls = new Set<Promise<void>>();
  /** Slots held by open pulls for messages not yet received. */
  #reserved = 0;
  #pullError: unknown;
  #stopping = false;
  #running = false;
  #loop: Promise<void> = Promise.resolve();
  readonly #stopSleep = new AbortController();
  /** Resolves the pending #changed() wait, if any. */
  #notify: (() => void) | undefined;

  constructor(bus: JetStreamBus, stream: string, name: string, handler: MessageHandler, o: ConsumeOptions) {
    this.#bus = bus;
    this.#stream = stream;
    this.#name = name;
    this.#handler = handler;
    this.#max = Math.max(1, o.maxInFlight);
    this.#minBatch = Math.max(1, Math.floor(this.#max / 4));
    this.#slots = o.slots ?? new Slots(this.#max);
  }

  running(): boolean {
    return this.#running && !this.#stopping;
  }

  inFlight(): number {
    return this.#inFlight.size;
  }

  start(): void {
    this.#loop = this.#run();
  }

  #dispatch(message: JetStreamMessage): void {
    const { log } = this.#bus.internals;
    const task: Promise<void> = this.#handler(message)
      .catch(async (err: unknown) => {
        log.error({ err, seq: message.streamSeq }, 'message handler failed; redelivering');
        if (!message.settled) await message.nak().catch(() => {});
      })
      .finally(() => {
        this.#inFlight.delete(task);
        this.#wake();
        this.#slots.give();
      });
    this.#inFlight.add(task);
  }

  /** Wakes when a message is settled, a pull ends or stop() is called. */
  #changed(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.#notify = resolve;
    });
  }

  #wake(): void {
    const notify = this.#notify;
    this.#notify = undefined;
    notify?.();
  }

  /**
   * One pull for `taken` messages (their slots already held), run beside the others: the next
   * pull goes out while this one's messages are being handled, so the server is never waited on
   * while there is room. Slots of messages that do not come are given back when it ends.
   */
  #pull(consumer: Consumer, taken: number): void {
    const { nc, timeoutMs } = this.#bus.internals;
    this.#reserved += taken;
    const pull: Promise<void> = (async () => {
      let received = 0;
      let dispatched = 0;
      try {
        const batch = await consumer.fetch({ max_messages: taken, expires: FETCH_EXPIRES_MS });
        this.#running = true;
        // Backstop should the pull never end (it ends by itself within FETCH_EXPIRES_MS).
        const watchdog = setTimeout(() => void batch.close().catch(() => {}), FETCH_EXPIRES_MS * 5);
        try {
          for await (const m of batch) {
            received++;
            this.#reserved--;
            const message = new JetStreamMessage(m, nc, timeoutMs);
            // Pulled but not started: hand it back at once instead of letting ack_wait run out.
            if (this.#stopping) await message.nak().catch(() => {});
            else {
              dispatched++;
              this.#dispatch(message);
            }
          }
        } finally {
          clearTimeout(watchdog);
        }
      } catch (err) {
        this.#pullError ??= err;
      } finally {
        this.#reserved -= taken - received;
        this.#slots.give(Math.max(0, taken - dispatched));
      }
    })().finally(() => {
      this.#pulls.delete(pull);
      this.#wake();
    });
    this.#pulls.add(pull);
  }

  async #run(): Promise<void> {
    const { js, nc, log, reconnectWaitMs } = this.#bus.internals;
    let failures = 0;
    while (!this.#stopping && !nc.isClosed()) {
      try {
        const consumer = await js.consumers.get(this.#stream, this.#name);
        if (failures > 0) log.info({ stream: this.#stream, consumer: this.#name }, 'consuming again');
        failures = 0;
        this.#pullError = undefined;
        while (!this.#stopping && !nc.isClosed()) {
          if (this.#pullError !== undefined) throw this.#pullError;
          // Room: this consumer's bound less the messages it holds and those its pulls may bring.
          const room = this.#max - this.#inFlight.size - this.#reserved;
          if (room <= 0 || (room < this.#minBatch && this.#pulls.size > 0)) {
            await this.#changed();
            continue;
          }
          // Slots first (shared with the worker's other consumers): a pull may be answered at any
          // moment until it expires.
          const taken = await this.#slots.take(room, this.#stopSleep.signal);
          if (this.#stopping) {
            this.#slots.give(taken);
            break;
          }
          this.#pull(consumer, taken);
        }
      } catch (err) {
        this.#running = false;
        if (this.#stopping || nc.isClosed()) break;
        failures++;
        const e = toBusError(err, `consumer ${this.#stream}/${this.#name}`);
        // Quiet while NATS is away (the bus logs that); loud when the consumer itself is missing.
        if (failures === 1 || failures % 30 === 0)
          log.warn({ err: e, failures }, 'cannot pull messages; retrying');
        await Promise.allSettled([...this.#pulls]);
        await sleep(reconnectWaitMs, undefined, { signal: this.#stopSleep.signal }).catch(() => {});
        // A request sent while disconnected only times out: wait for the connection first.
        while (!this.#bus.connected() && !this.#stopping && !nc.isClosed()) {
          await sleep(100, undefined, { signal: this.#stopSleep.signal }).catch(() => {});
        }
      }
    }
    // Open pulls end within FETCH_EXPIRES_MS; what they still bring is handed back.
    await Promise.allSettled([...this.#pulls]);
    this.#running = false;
  }

  async stop(graceMs: number): Promise<void> {
    if (!this.#stopping) {
      this.#stopping = true;
      this.#stopSleep.abort();
      this.#wake();
    }
    const drained = (async () => {
      await this.#loop;
      await Promise.allSettled([...this.#inFlight]);
    })();
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, graceMs);
    });
    try {
      await Promise.race([drained, grace]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * Connect to NATS, retrying until it answers or the signal aborts; once connected the client
 * reconnects forever by itself.
 */
export async function connectJetStreamBus(options: JetStreamBusOptions): Promise<Bus> {
  const wait = options.reconnectWaitMs ?? 1_000;
  const log = options.logger;
  for (let attempt = 1; ; attempt++) {
    options.signal?.throwIfAborted();
    try {
      const nc = await connect({
        servers: options.servers,
        name: options.name,
        maxReconnectAttempts: -1,
        reconnectTimeWait: wait,
        timeout: DEFAULT_TIMEOUT_MS,
        // No eager Error (with a stack) per request: every publish is a request, and BusError
        // names the operation anyway. A measurable share of a worker's CPU otherwise.
        noAsyncTraces: true,
      });
      log.info({ server: nc.getServer() }, 'connected to NATS');
      return new JetStreamBus(nc, log, options.publishTimeoutMs ?? DEFAULT_TIMEOUT_MS, wait);
    } catch (err) {
      if (attempt === 1 || attempt % 10 === 0) {
        log.warn({ err, servers: options.servers, attempt }, 'cannot connect to NATS; retrying');
      }
      await sleep(
        Math.min(wait * attempt, 10_000),
        undefined,
        options.signal ? { signal: options.signal } : {},
      );
    }
  }
}
