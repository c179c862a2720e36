// The real bus: NATS core for plain messages, JetStream for persistent publish (with Nats-Msg-Id
// dedupe) and a durable pull consumer. Reconnects forever; `connected()` feeds the readiness probe.
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { type MsgHdrs, type NatsConnection, headers as natsHeaders } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { connectWithRetry } from './connect.ts';
import { BusError, BusErrorCode } from './errors.ts';
import { toBusHeaders, withTimeout } from './jetstream-message.ts';
import { JetStreamPublisher } from './jetstream-publish.ts';
import { type PullBus, PullConsumer } from './jetstream-pull.ts';
import { type JetStreamReplay, startReplay } from './jetstream-replay.ts';
import type {
  Bus,
  BusHeaders,
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

class JetStreamBus implements Bus {
  readonly #nc: NatsConnection;
  readonly #js: JetStreamClient;
  readonly #publisher: JetStreamPublisher;
  readonly #log: Logger;
  readonly #timeoutMs: number;
  readonly #reconnectWaitMs: number;
  #connected = true;
  readonly #consumers = new Set<PullConsumer>();
  readonly #replays = new Set<JetStreamReplay>();

  constructor(nc: NatsConnection, log: Logger, timeoutMs: number, reconnectWaitMs: number) {
    this.#nc = nc;
    this.#js = jetstream(nc, { timeout: timeoutMs });
    this.#publisher = new JetStreamPublisher(nc, timeoutMs);
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
          for (const c of this.#consumers) c.reconnected();
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

  publish(subject: string, data: Uint8Array, options: PublishOptions = {}): Promise<PublishAck> {
    return this.#publisher.publish(subject, data, options);
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
    const handle = new PullConsumer(this.#pullBus(), stream, consumerName, handler, options);
    this.#consumers.add(handle);
    handle.start();
    return handle;
  }

  async replay(
    stream: string,
    filterSubjects: string[],
    handler: ReplayHandler,
    options: ReplayOptions = {},
  ): Promise<ReplayHandle> {
    const jsm = async () => {
      this.#jsm ??= jetstreamManager(this.#nc, { timeout: this.#timeoutMs });
      return this.#jsm.catch((err) => {
        this.#jsm = undefined;
        throw err;
      });
    };
    const replay = await startReplay(
      { js: this.#js, jsm, log: this.#log, toBusError },
      stream,
      filterSubjects,
      handler,
      options,
    );
    if (replay.running()) {
      this.#replays.add(replay);
      replay.onStop = () => this.#replays.delete(replay);
    }
    return replay;
  }

  #pullBus(): PullBus {
    return {
      nc: this.#nc,
      js: this.#js,
      log: this.#log,
      timeoutMs: this.#timeoutMs,
      reconnectWaitMs: this.#reconnectWaitMs,
      connected: () => this.connected(),
      toBusError,
    };
  }

  async close(): Promise<void> {
    await Promise.all([
      ...[...this.#consumers].map((c) => c.stop(0)),
      ...[...this.#replays].map((r) => r.stop()),
    ]);
    if (this.#nc.isClosed()) {
      this.#publisher.close();
      return;
    }
    try {
      await withTimeout(this.#nc.drain(), this.#timeoutMs, 'drain');
    } catch (err) {
      this.#log.warn({ err }, 'NATS drain did not finish; closing');
      await this.#nc.close().catch(() => {});
    }
    this.#publisher.close();
  }
}

/**
 * Connect to NATS, retrying until it answers or the signal aborts; once connected the client
 * reconnects forever by itself.
 */
export async function connectJetStreamBus(options: JetStreamBusOptions): Promise<Bus> {
  const wait = options.reconnectWaitMs ?? 1_000;
  const nc = await connectWithRetry({
    servers: options.servers,
    name: options.name,
    logger: options.logger,
    signal: options.signal,
    waitMs: wait,
    timeoutMs: DEFAULT_TIMEOUT_MS,
    // No eager Error (with a stack) per request: every publish is a request, and BusError
    // names the operation anyway. A measurable share of a worker's CPU otherwise.
    noAsyncTraces: true,
  });
  options.logger.info({ server: nc.getServer() }, 'connected to NATS');
  return new JetStreamBus(nc, options.logger, options.publishTimeoutMs ?? DEFAULT_TIMEOUT_MS, wait);
}
