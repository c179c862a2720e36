// replay() of the JetStream bus: an ordered consumer (ephemeral, no acks; nats.js recreates it
// from the last sequence it delivered when it breaks) on the bus's connection, read from the start
// of the stream, filtered, one message at a time.
import type { ConsumerMessages, JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import type { BusError } from './errors.ts';
import { toBusHeaders } from './jetstream-message.ts';
import type { ReplayHandle, ReplayHandler, ReplayOptions } from './types.ts';

export interface ReplayBus {
  js: JetStreamClient;
  jsm: () => Promise<JetStreamManager>;
  log: Logger;
  toBusError: (err: unknown, what: string) => BusError;
}

/** Most messages the ordered consumer buffers ahead of the handler. */
const MAX_MESSAGES = 512;
/** How often the server is asked whether anything of the filters is left to read. */
const CATCH_UP_POLL_MS = 100;

export async function startReplay(
  bus: ReplayBus,
  stream: string,
  filterSubjects: string[],
  handler: ReplayHandler,
  options: ReplayOptions = {},
): Promise<JetStreamReplay> {
  const what = `replay ${stream} (${filterSubjects.join(', ')})`;
  let messages: ConsumerMessages;
  let consumer: Awaited<ReturnType<JetStreamClient['consumers']['get']>>;
  let lastAtStart: number;
  try {
    // The stream's last sequence before the consumer exists: caught up once we are past it.
    lastAtStart = (await (await bus.jsm()).streams.info(stream)).state.last_seq;
    consumer = await bus.js.consumers.get(stream, { filter_subjects: filterSubjects });
    messages = await consumer.consume({ max_messages: MAX_MESSAGES });
  } catch (err) {
    throw bus.toBusError(err, what);
  }
  const replay = new JetStreamReplay(bus.log, messages, lastAtStart, handler, (cb) =>
    consumer.info(false).then(cb),
  );
  if (options.signal?.aborted) await replay.stop();
  else options.signal?.addEventListener('abort', () => void replay.stop(), { once: true });
  return replay;
}

type ConsumerState = { num_pending: number; delivered: { consumer_seq: number } };

export class JetStreamReplay implements ReplayHandle {
  readonly caughtUp: Promise<void>;
  /** Called once by the first stop(). */
  onStop: (() => void) | undefined;
  readonly #messages: ConsumerMessages;
  readonly #loop: Promise<void>;
  #markCaughtUp!: () => void;
  #isCaughtUp = false;
  #stopped = false;
  #poll: NodeJS.Timeout | undefined;
  /**
   * Consumer (not stream) sequence of the last message the handler returned for: a filtered
   * consumer's stream position runs ahead of what it delivers.
   */
  #handled = 0;

  constructor(
    log: Logger,
    messages: ConsumerMessages,
    lastAtStart: number,
    handler: ReplayHandler,
    info: (cb: (state: ConsumerState) => void) => Promise<void>,
  ) {
    this.#messages = messages;
    this.caughtUp = new Promise((resolve) => {
      this.#markCaughtUp = resolve;
    });
    if (lastAtStart === 0) this.#caughtUp();
    this.#loop = (async () => {
      for await (const m of messages) {
        if (this.#stopped) break;
        try {
          await handler({
            subject: m.subject,
            data: m.data,
            headers: toBusHeaders(m.headers),
            streamSeq: m.seq,
            storedAt: m.time,
          });
        } catch (err) {
          log.error({ err, subject: m.subject, seq: m.seq }, 'replay handler failed');
        }
        this.#handled = m.info.deliverySequence;
        if (m.seq >= lastAtStart) this.#caughtUp();
      }
    })().catch((err) => {
      if (!this.#stopped) log.error({ err }, 'replay stopped reading');
    });
    // The last messages at start may be of other subjects: then the server says when nothing of
    // ours is left that we have not handled (a stream may hold nothing for these filters at all).
    if (!this.#isCaughtUp) {
      this.#poll = setInterval(() => {
        void info((state) => {
          if (state.num_pending === 0 && state.delivered.consumer_seq <= this.#handled) this.#caughtUp();
        }).catch(() => undefined);
      }, CATCH_UP_POLL_MS);
    }
  }

  #caughtUp(): void {
    clearInterval(this.#poll);
    if (this.#isCaughtUp || this.#stopped) return;
    this.#isCaughtUp = true;
    this.#markCaughtUp();
  }

  running(): boolean {
    return !this.#stopped;
  }

  async stop(): Promise<void> {
    if (!this.#stopped) {
      this.#stopped = true;
      clearInterval(this.#poll);
      this.onStop?.();
      await this.#messages.close().catch(() => undefined);
    }
    await this.#loop;
  }
}
