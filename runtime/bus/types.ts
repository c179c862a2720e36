// The bus behind a small reader/writer interface (DESIGN.md, Architecture): a JetStream
// implementation (./jetstream.ts, the real one) and an in-memory one (./memory.ts) for unit tests.
import type { Slots } from './slots.ts';

/** Message headers as plain strings; multi-valued NATS headers keep their first value. */
export type BusHeaders = Readonly<Record<string, string>>;

export interface PublishOptions {
  /** Dedupe id (Nats-Msg-Id): a repeat within the stream's duplicate window is dropped and acked as duplicate. */
  msgId?: string;
  headers?: BusHeaders;
  /** How long to wait for the stream's ack; the implementation's default otherwise. */
  timeoutMs?: number;
}

export interface PublishAck {
  stream: string;
  seq: number;
  /** True when the stream had already stored a message with this msgId. */
  duplicate: boolean;
}

/** A message taken from a durable consumer. Exactly one of ack / nak / term settles it. */
export interface BusMessage {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly headers: BusHeaders;
  /** 1 on the first delivery. */
  readonly deliveryCount: number;
  readonly streamSeq: number;
  /** When the stream stored the message (its first receipt). */
  readonly storedAt: Date;
  /**
   * Done. Sent in order on the connection (before any later pull), not confirmed: an ack that is
   * lost makes the message come again after ack_wait, which dedupe and idempotency keys absorb.
   */
  ack(): Promise<void>;
  /** Redeliver after delayMs (immediately when 0 or absent). */
  nak(delayMs?: number): Promise<void>;
  /** Never redeliver (it has been dead-lettered). */
  term(reason?: string): Promise<void>;
  /** Still working on it: reset the ack-wait timer. */
  inProgress(): void;
}

/** A plain (non-persistent) message from a subscription. */
export interface CoreMessage {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly headers: BusHeaders;
  /** Set when the publisher waits for a reply (a request). */
  readonly reply?: string;
}

export interface ConsumeOptions {
  /** Most messages this consumer holds at once (pulled and not yet settled); also the largest pull. */
  maxInFlight: number;
  /**
   * A bound shared with the worker's other consumers (one per partition): a message is pulled
   * only into a free slot, so all of them together hold at most `slots.max`. Default: own slots.
   */
  slots?: Slots;
}

/** Where a durable consumer stands (JetStream consumer info). */
export interface ConsumerLag {
  /** Stored messages the consumer has not delivered yet: the lag. */
  pending: number;
  /** Delivered and not yet acked (in flight or waiting for redelivery). */
  ackPending: number;
  /** Messages delivered more than once and not yet acked. */
  redelivered: number;
}

export interface ConsumerHandle {
  /** True between start and stop (and while the underlying consumer is healthy). */
  running(): boolean;
  /** Stop pulling, nak what was pulled but not started, wait for handlers in flight (at most graceMs). */
  stop(graceMs: number): Promise<void>;
  /** Handlers still running. */
  inFlight(): number;
}

export interface SubscriptionHandle {
  /** Stop receiving; waits for handlers in flight. */
  stop(): Promise<void>;
}

/** A stored message read by replay(): no acks, nothing to settle. */
export interface ReplayMessage {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly headers: BusHeaders;
  readonly streamSeq: number;
  /** When the stream stored the message. */
  readonly storedAt: Date;
}

export interface ReplayOptions {
  /** Aborting stops the replay (as handle.stop()). */
  signal?: AbortSignal;
}

export interface ReplayHandle {
  /**
   * Resolves once the handler has returned for every message of the filters the stream held when
   * the replay started (at once when it held none). Never resolves when stopped first.
   */
  readonly caughtUp: Promise<void>;
  /** True between start and stop. */
  running(): boolean;
  /** Stop reading; waits for the handler in progress. Idempotent. */
  stop(): Promise<void>;
}

export type MessageHandler = (message: BusMessage) => Promise<void>;
export type ReplayHandler = (message: ReplayMessage) => void | Promise<void>;
export type CoreHandler = (message: CoreMessage) => Promise<void>;

export interface BusWriter {
  /** Persistent publish: resolves once a stream stored the message. Throws BusError (NO_STREAM when no stream captures the subject). */
  publish(subject: string, data: Uint8Array, options?: PublishOptions): Promise<PublishAck>;
  /** The stream that captures the subject, undefined when none does. */
  streamFor(subject: string): Promise<string | undefined>;
  /** Plain publish, flushed to the server; nobody may be listening. */
  send(subject: string, data: Uint8Array, headers?: BusHeaders): Promise<void>;
  /** Reply to a request (CoreMessage.reply). */
  respond(reply: string, data: Uint8Array): void;
}

export interface BusReader {
  /** Consume a durable pull consumer; the handler must settle every message it is given. */
  consume(
    stream: string,
    consumer: string,
    handler: MessageHandler,
    options: ConsumeOptions,
  ): Promise<ConsumerHandle>;
  /** Where a durable consumer stands; throws BusError (NOT_FOUND, UNAVAILABLE). */
  consumerLag(stream: string, consumer: string): Promise<ConsumerLag>;
  /**
   * Read every stored message of the filter subjects from the start of the stream, in stream
   * order, then new ones as they arrive (an ordered consumer: ephemeral, no acks, recreated from
   * where it stood when it breaks). One message at a time: the next waits for the handler; a
   * handler that throws is logged and the replay goes on. Throws BusError (NOT_FOUND, UNAVAILABLE).
   */
  replay(
    stream: string,
    filterSubjects: string[],
    handler: ReplayHandler,
    options?: ReplayOptions,
  ): Promise<ReplayHandle>;
  /** Subscribe to a subject; replicas in the same queue group share the messages. */
  subscribe(subject: string, handler: CoreHandler, options?: { queue?: string }): SubscriptionHandle;
}

export interface Bus extends BusWriter, BusReader {
  /** True while connected to the server. */
  connected(): boolean;
  /** Flush and close: pending publishes and acks are sent first. */
  close(): Promise<void>;
}
