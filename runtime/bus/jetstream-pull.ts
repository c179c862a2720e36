// A durable pull consumer with a bound on messages in flight. It asks the server for exactly as
// many messages as it has free slots (its own, or slots shared with the worker's other consumers):
// while every slot is taken it does not ask at all, so slow sinks hold messages back in the
// stream, not in memory. Pull requests go over one wildcard inbox subscription kept for the
// consumer's life (the JetStream pull protocol: a request to CONSUMER.MSG.NEXT; its messages and
// its status replies come to its reply subject) instead of a subscription per fetch: a fetch cost a
// SUB, an UNSUB and their server-side bookkeeping for every few messages. One request is open at a
// time: the server spreads messages over a client's open requests round-robin and a delivered
// message carries its stream subject, not the request's, so with several open the client could not
// tell which one a message filled. Each request's reply subject ends in a token of its own, which
// status replies (timeouts) do carry, so a late timeout of an abandoned request is recognised.
// Restarts itself if the consumer goes away or the connection drops.
import { setTimeout as sleep } from 'node:timers/promises';
import type { JetStreamClient } from '@nats-io/jetstream';
import { createInbox, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { BusError, BusErrorCode } from './errors.ts';
import { JetStreamMessage, parseAckSubject } from './jetstream-message.ts';
import { Slots } from './slots.ts';
import type { ConsumeOptions, ConsumerHandle, MessageHandler } from './types.ts';

/** What the consumer needs of the bus. */
export interface PullBus {
  nc: NatsConnection;
  js: JetStreamClient;
  log: Logger;
  timeoutMs: number;
  reconnectWaitMs: number;
  connected(): boolean;
  toBusError(err: unknown, what: string): BusError;
}

/**
 * How long a pull request waits on the server for messages. Short, so a stop is clean: stopping
 * waits for the open requests to end (at most this long), so every message the server sent for
 * them is received and handed back, none left in limbo.
 */
export const PULL_EXPIRES_MS = 1_000;
/** A request not ended by the server this long after it expired is taken as lost (e.g. a reconnect). */
const LOST_AFTER_MS = 2_000;
const NS_PER_MS = 1_000_000;

/** The pull request still open: messages it may yet bring, and when it is taken as lost. */
interface OpenRequest {
  token: string;
  remaining: number;
  lostAt: number;
}

/** What a status reply on the inbox means for the consumer. */
export type PullStatus =
  | { kind: 'heartbeat' }
  /** A request ended (expired, or refused but harmless): the rest of its messages will not come. */
  | { kind: 'ended'; note?: string }
  /** The consumer cannot be pulled from (deleted, no JetStream, bad request): start over. */
  | { kind: 'failed'; message: string };

/** Classifies a status reply (no data, a status line in the headers) of the pull protocol. */
export function pullStatus(code: number, description: string): PullStatus {
  const d = description.toLowerCase();
  if (code === 100) return { kind: 'heartbeat' };
  if (code === 404 || code === 408) return { kind: 'ended' };
  if (code === 409 && !d.includes('consumer deleted') && !d.includes('push based')) {
    // Exceeded MaxWaiting / MaxRequestBatch / MaxRequestExpires, Leadership Change, Server Shutdown:
    // this request is over; the next one may well succeed.
    return { kind: 'ended', note: description };
  }
  if (code === 503)
    return { kind: 'failed', message: 'no responders: the stream or JetStream is not available' };
  return { kind: 'failed', message: `${code} ${description}`.trim() };
}

export class PullConsumer implements ConsumerHandle {
  readonly #bus: PullBus;
  readonly #stream: string;
  readonly #name: string;
  readonly #handler: MessageHandler;
  readonly #max: number;
  /** Smallest request worth making while messages are still in flight. */
  readonly #minBatch: number;
  readonly #slots: Slots;
  readonly #inFlight = new Set<Promise<void>>();
  /** The open request; its remaining messages hold slots. */
  #open: OpenRequest | undefined;
  #nextToken = 0;
  #failure: unknown;
  #stopping = false;
  #running = false;
  #sub: Subscription | undefined;
  readonly #inbox = createInbox();
  #loop: Promise<void> = Promise.resolve();
  readonly #stopSleep = new AbortController();
  /** Resolves the pending #changed() wait, if any. */
  #notify: (() => void) | undefined;
  #warnedNote = false;

  constructor(bus: PullBus, stream: string, name: string, handler: MessageHandler, o: ConsumeOptions) {
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

  /** The connection came back: a request sent before it dropped died with it. */
  reconnected(): void {
    this.#release();
    this.#wake();
  }

  #dispatch(message: JetStreamMessage): void {
    const task: Promise<void> = this.#handler(message)
      .catch(async (err: unknown) => {
        this.#bus.log.error({ err, seq: message.streamSeq }, 'message handler failed; redelivering');
        if (!message.settled) await message.nak().catch(() => {});
      })
      .finally(() => {
        this.#inFlight.delete(task);
        this.#slots.give();
        this.#wake();
      });
    this.#inFlight.add(task);
  }

  /** Everything that arrives on the inbox: messages for the open request and status replies. */
  #onInbox(msg: Msg): void {
    const info = msg.reply ? parseAckSubject(msg.reply) : undefined;
    if (!info) {
      const h = msg.headers;
      if (!h || h.code === 0) return; // not ours (cannot happen on a private inbox)
      const status = pullStatus(h.code, h.description);
      if (status.kind === 'heartbeat') return;
      // A status reply comes to the request's own reply subject.
      const current = this.#open?.token === msg.subject.slice(this.#inbox.length + 1);
      if (status.kind === 'ended') {
        // What the request still had room for will not come: its slots go back.
        if (current) this.#release();
        if (status.note && !this.#warnedNote) {
          this.#warnedNote = true;
          this.#bus.log.warn({ consumer: this.#name, status: status.note }, 'pull request ended early');
        }
      } else {
        this.#failure ??= new BusError(
          BusErrorCode.NotFound,
          `consumer ${this.#stream}/${this.#name}: ${status.message}`,
        );
        this.#release();
      }
      this.#wake();
      return;
    }
    const message = new JetStreamMessage(msg, info, this.#bus.nc, this.#bus.timeoutMs);
    const request = this.#open;
    if (request) {
      request.remaining--;
      if (request.remaining === 0) {
        this.#open = undefined;
        this.#wake();
      }
    }
    if (!request || this.#stopping) {
      // Pulled while stopping, or not asked for (a request already taken as lost): hand it back
      // at once instead of letting ack_wait run out.
      if (request) this.#slots.give();
      void message.nak().catch(() => {});
      this.#wake();
      return;
    }
    // The slot reserved for it now belongs to the message until it is settled.
    this.#dispatch(message);
  }

  /** The open request is over: the slots of the messages it did not bring go back. */
  #release(): void {
    const request = this.#open;
    this.#open = undefined;
    if (request) this.#slots.give(request.remaining);
  }

  #request(batch: number): void {
    const { nc } = this.#bus;
    const token = (this.#nextToken++).toString(36);
    this.#open = { token, remaining: batch, lostAt: Date.now() + PULL_EXPIRES_MS + LOST_AFTER_MS };
    const body = JSON.stringify({ batch, expires: PULL_EXPIRES_MS * NS_PER_MS });
    nc.publish(`$JS.API.CONSUMER.MSG.NEXT.${this.#stream}.${this.#name}`, body, {
      reply: `${this.#inbox}.${token}`,
    });
  }

  /** Wakes when a message is settled, a request ends, stop() is called or an open request is due. */
  #changed(): Promise<void> {
    const next = this.#open?.lostAt;
    return new Promise<void>((resolve) => {
      const timer = next === undefined ? undefined : setTimeout(resolve, Math.max(1, next - Date.now()));
      this.#notify = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  #wake(): void {
    const notify = this.#notify;
    this.#notify = undefined;
    notify?.();
  }

  async #run(): Promise<void> {
    const { js, nc, log, reconnectWaitMs } = this.#bus;
    let failures = 0;
    while (!this.#stopping && !nc.isClosed()) {
      try {
        // Names the consumer in the error when it does not exist.
        await js.consumers.get(this.#stream, this.#name);
        this.#sub ??= nc.subscribe(`${this.#inbox}.*`, { callback: (_err, msg) => this.#onInbox(msg) });
        if (failures > 0) log.info({ stream: this.#stream, consumer: this.#name }, 'consuming again');
        failures = 0;
        this.#failure = undefined;
        this.#running = true;
        while (!this.#stopping && !nc.isClosed()) {
          if (this.#failure !== undefined) throw this.#failure;
          // A request the server never ended (lost with a connection) gives its slots back.
          if (this.#open && this.#open.lostAt <= Date.now()) this.#release();
          // Room: this consumer's bound less the messages it holds; a small request only when idle.
          const room = this.#max - this.#inFlight.size;
          if (this.#open || room <= 0 || (room < this.#minBatch && this.#inFlight.size > 0)) {
            await this.#changed();
            continue;
          }
          // Slots first (shared with the worker's other consumers): a request may be answered at
          // any moment until it expires.
          const taken = await this.#slots.take(room, this.#stopSleep.signal);
          if (this.#stopping) {
            this.#slots.give(taken);
            break;
          }
          this.#request(taken);
        }
      } catch (err) {
        this.#running = false;
        this.#release();
        if (this.#stopping || nc.isClosed()) break;
        failures++;
        const e = this.#bus.toBusError(err, `consumer ${this.#stream}/${this.#name}`);
        // Quiet while NATS is away (the bus logs that); loud when the consumer itself is missing.
        if (failures === 1 || failures % 30 === 0)
          log.warn({ err: e, failures }, 'cannot pull messages; retrying');
        await sleep(reconnectWaitMs, undefined, { signal: this.#stopSleep.signal }).catch(() => {});
        // A request sent while disconnected is lost: wait for the connection first.
        while (!this.#bus.connected() && !this.#stopping && !nc.isClosed()) {
          await sleep(100, undefined, { signal: this.#stopSleep.signal }).catch(() => {});
        }
      }
    }
    // The open request ends within PULL_EXPIRES_MS; what it still brings is handed back (nak).
    while (this.#open && !nc.isClosed()) {
      if (this.#open.lostAt <= Date.now()) this.#release();
      else await this.#changed();
    }
    this.#release();
    if (this.#sub && !this.#sub.isClosed()) this.#sub.unsubscribe();
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
