// JetStream publish with one reply subscription per connection: the message goes out with a reply
// subject under a private inbox prefix, and the stream's ack (or error) comes back there. This is
// the JetStream wire protocol, written here because the client's request path allocated an error
// object with a stack trace for every successful publish, plus a timer; a flow publishes once or
// twice per event, so that was a measurable share of a worker's CPU (bench/flow.ts).
import {
  createInbox,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  headers as natsHeaders,
  type Subscription,
} from '@nats-io/transport-node';
import { BusError, BusErrorCode } from './errors.ts';
import type { BusHeaders, PublishAck } from './types.ts';

interface Waiting {
  resolve: (ack: PublishAck) => void;
  reject: (err: BusError) => void;
  deadline: number;
  subject: string;
  timeoutMs: number;
}

/** What the stream answered: its ack, or why it refused. */
export function parsePublishReply(
  subject: string,
  status: { code: number; description: string } | undefined,
  data: Uint8Array,
): PublishAck | BusError {
  if (status?.code === 503) {
    return new BusError(
      BusErrorCode.NoStream,
      `publish to ${subject}: no JetStream stream captures the subject`,
    );
  }
  if (status && status.code >= 400) {
    return new BusError(
      BusErrorCode.Unavailable,
      `publish to ${subject}: ${status.code} ${status.description}`.trim(),
    );
  }
  let reply: {
    stream?: unknown;
    seq?: unknown;
    duplicate?: unknown;
    error?: { code?: number; err_code?: number; description?: string };
  };
  try {
    reply = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8'));
  } catch {
    return new BusError(BusErrorCode.Unavailable, `publish to ${subject}: the server's answer is not JSON`);
  }
  if (reply.error) {
    const e = reply.error;
    return new BusError(
      BusErrorCode.Unavailable,
      `publish to ${subject}: ${e.description ?? 'refused'} (code ${e.code ?? '?'}, err_code ${e.err_code ?? '?'})`,
    );
  }
  if (typeof reply.stream !== 'string' || typeof reply.seq !== 'number') {
    return new BusError(
      BusErrorCode.Unavailable,
      `publish to ${subject}: the server's answer has no stream and seq`,
    );
  }
  return { stream: reply.stream, seq: reply.seq, duplicate: reply.duplicate === true };
}

export class JetStreamPublisher {
  readonly #nc: NatsConnection;
  readonly #defaultTimeoutMs: number;
  readonly #prefix = createInbox();
  #sub: Subscription | undefined;
  #next = 0;
  readonly #waiting = new Map<string, Waiting>();
  /** Checks deadlines while anything waits (one timer for all publishes). */
  #sweep: NodeJS.Timeout | undefined;

  constructor(nc: NatsConnection, defaultTimeoutMs: number) {
    this.#nc = nc;
    this.#defaultTimeoutMs = defaultTimeoutMs;
  }

  publish(
    subject: string,
    data: Uint8Array,
    options: { msgId?: string; headers?: BusHeaders; timeoutMs?: number } = {},
  ): Promise<PublishAck> {
    this.#sub ??= this.#nc.subscribe(`${this.#prefix}.*`, { callback: (_err, msg) => this.#onReply(msg) });
    const token = (this.#next++).toString(36);
    const timeoutMs = options.timeoutMs ?? this.#defaultTimeoutMs;
    let h: MsgHdrs | undefined;
    if (options.headers || options.msgId) {
      h = natsHeaders();
      for (const k in options.headers) h.set(k, options.headers[k]!);
      if (options.msgId) h.set('Nats-Msg-Id', options.msgId);
    }
    return new Promise<PublishAck>((resolve, reject) => {
      try {
        this.#nc.publish(subject, data, { reply: `${this.#prefix}.${token}`, ...(h ? { headers: h } : {}) });
      } catch (err) {
        reject(
          new BusError(BusErrorCode.Closed, `publish to ${subject}: ${(err as Error).message}`, {
            cause: err,
          }),
        );
        return;
      }
      this.#waiting.set(token, { resolve, reject, deadline: Date.now() + timeoutMs, subject, timeoutMs });
      this.#sweep ??= setInterval(() => this.#expire(Date.now()), Math.min(250, Math.max(10, timeoutMs / 4)));
    });
  }

  #onReply(msg: Msg): void {
    const token = msg.subject.slice(this.#prefix.length + 1);
    const w = this.#waiting.get(token);
    if (!w) return; // timed out already
    this.#settled(token);
    const h = msg.headers;
    const result = parsePublishReply(w.subject, h && h.code > 0 ? h : undefined, msg.data);
    if (result instanceof BusError) w.reject(result);
    else w.resolve(result);
  }

  #settled(token: string): void {
    this.#waiting.delete(token);
    if (this.#waiting.size === 0) {
      clearInterval(this.#sweep);
      this.#sweep = undefined;
    }
  }

  #expire(now: number): void {
    for (const [token, w] of this.#waiting) {
      if (w.deadline > now) continue;
      this.#settled(token);
      w.reject(
        new BusError(BusErrorCode.Unavailable, `publish to ${w.subject}: no ack within ${w.timeoutMs} ms`),
      );
    }
  }

  /** Fails what still waits; the connection is closing. */
  close(): void {
    for (const [token, w] of this.#waiting) {
      this.#settled(token);
      w.reject(new BusError(BusErrorCode.Closed, `publish to ${w.subject}: the NATS connection is closing`));
    }
    if (this.#sub && !this.#sub.isClosed()) this.#sub.unsubscribe();
  }
}
