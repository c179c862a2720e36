// A JetStream message as it arrives on a pull consumer's inbox: a core NATS message whose reply
// subject is the ack subject. Acks are plain publishes to that subject (the JetStream wire
// protocol), so one message costs no objects beyond this one and its headers.
import type { Msg, NatsConnection } from '@nats-io/transport-node';
import { BusError, BusErrorCode } from './errors.ts';
import type { BusHeaders, BusMessage } from './types.ts';

/** What the ack subject says about a delivery. */
export interface AckSubjectInfo {
  stream: string;
  consumer: string;
  /** 1 on the first delivery. */
  deliveryCount: number;
  streamSeq: number;
  consumerSeq: number;
  /** When the stream stored the message, ms since the epoch. */
  storedAtMs: number;
  /** Messages the consumer still has to deliver after this one. */
  pending: number;
}

/**
 * Parses `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<nanos>.<pending>` and the newer
 * form with a domain and account hash in front (and an optional random token at the end).
 * Undefined when the subject is not an ack subject.
 */
export function parseAckSubject(subject: string): AckSubjectInfo | undefined {
  const t = subject.split('.');
  if (t[0] !== '$JS' || t[1] !== 'ACK') return undefined;
  let i: number;
  if (t.length === 9) i = 2;
  else if (t.length >= 11) i = 4;
  else return undefined;
  const n = (k: number) => Number(t[i + k]);
  const info = {
    stream: t[i]!,
    consumer: t[i + 1]!,
    deliveryCount: n(2),
    streamSeq: n(3),
    consumerSeq: n(4),
    // Nanoseconds beyond 2^53: a float keeps them to well under a millisecond.
    storedAtMs: Math.floor(n(5) / 1e6),
    pending: n(6),
  };
  const numbers = [info.deliveryCount, info.streamSeq, info.consumerSeq, info.storedAtMs, info.pending];
  return numbers.every(Number.isSafeInteger) && info.stream && info.consumer ? info : undefined;
}

const encoder = new TextEncoder();
const ACK = encoder.encode('+ACK');
const NAK = encoder.encode('-NAK');
const WORKING = encoder.encode('+WPI');
const NS_PER_MS = 1_000_000;

export function toBusHeaders(h: Msg['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  if (!h) return out;
  for (const key of h.keys()) {
    const first = h.values(key)[0];
    if (first !== undefined) out[key] = first;
  }
  return out;
}

/** Race a promise against a timeout that is always cleared. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
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

export class JetStreamMessage implements BusMessage {
  readonly headers: BusHeaders;
  readonly subject: string;
  readonly data: Uint8Array;
  readonly deliveryCount: number;
  readonly streamSeq: number;
  readonly #storedAtMs: number;
  settled = false;
  readonly #ackSubject: string;
  readonly #nc: NatsConnection;
  readonly #timeoutMs: number;

  constructor(msg: Msg, info: AckSubjectInfo, nc: NatsConnection, timeoutMs: number) {
    this.subject = msg.subject;
    this.data = msg.data;
    this.headers = toBusHeaders(msg.headers);
    this.deliveryCount = info.deliveryCount;
    this.streamSeq = info.streamSeq;
    this.#storedAtMs = info.storedAtMs;
    this.#ackSubject = msg.reply!;
    this.#nc = nc;
    this.#timeoutMs = timeoutMs;
  }

  get storedAt(): Date {
    return new Date(this.#storedAtMs);
  }

  async ack(): Promise<void> {
    this.settled = true;
    this.#send(ACK, 'ack');
  }

  async nak(delayMs?: number): Promise<void> {
    this.settled = true;
    const delay = delayMs && delayMs > 0 ? Math.round(delayMs) : 0;
    this.#send(
      delay > 0 ? encoder.encode(`-NAK ${JSON.stringify({ delay: delay * NS_PER_MS })}`) : NAK,
      'nak',
    );
    await this.#flush('nak');
  }

  async term(reason?: string): Promise<void> {
    this.settled = true;
    this.#send(encoder.encode(reason ? `+TERM ${reason}` : '+TERM'), 'term');
    await this.#flush('term');
  }

  inProgress(): void {
    if (this.settled) return;
    try {
      this.#nc.publish(this.#ackSubject, WORKING);
    } catch {
      // Closed: the message comes again after ack_wait, as it would anyway.
    }
  }

  #send(body: Uint8Array, what: string): void {
    try {
      this.#nc.publish(this.#ackSubject, body);
    } catch (err) {
      throw new BusError(BusErrorCode.Closed, `${what}: ${(err as Error).message}`, { cause: err });
    }
  }

  // The server handles a connection's messages in order, so the flush's PONG proves it got the nak/term.
  async #flush(what: string): Promise<void> {
    try {
      await withTimeout(this.#nc.flush(), this.#timeoutMs, what);
    } catch (err) {
      throw err instanceof BusError
        ? err
        : new BusError(BusErrorCode.Unavailable, `${what}: ${(err as Error).message}`, { cause: err });
    }
  }
}
