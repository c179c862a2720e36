// An in-memory JetStream for unit tests of the operator's provisioning (integration tests run a
// real nats-server): streams and consumers by name, the server's "not found" errors, and a log
// of every write so a test can tell "updated in place" from "left alone".
import {
  type ConsumerConfig,
  type ConsumerInfo,
  type ConsumerUpdateConfig,
  JetStreamApiCodes,
  JetStreamApiError,
  type Lister,
  type StreamConfig,
  type StreamInfo,
  type StreamUpdateConfig,
} from '@nats-io/jetstream';
import type { Kvm } from '@nats-io/kv';
import type { JetStreamAdmin } from '../nats/provisioner.ts';

export interface FakeStream {
  config: StreamConfig;
  /** Subjects that hold messages, with their counts (what `subjects_filter` reports). */
  subjects: Record<string, number>;
  consumers: Map<string, ConsumerInfo>;
}

const apiError = (err_code: number, description: string) =>
  new JetStreamApiError({ code: 404, err_code, description });

export class FakeJetStream implements JetStreamAdmin {
  readonly streamsByName = new Map<string, FakeStream>();
  /** Writes, as "streams.add NAME", "consumers.update STREAM/NAME", ... */
  readonly writes: string[] = [];
  /** KV buckets created through kvm(). */
  readonly buckets: { name: string; opts: unknown }[] = [];

  /** Seeds a stream as an earlier reconcile (or someone else) left it. */
  seedStream(config: Partial<StreamConfig> & { name: string }, subjects: Record<string, number> = {}): void {
    this.streamsByName.set(config.name, {
      config: config as StreamConfig,
      subjects,
      consumers: new Map(),
    });
  }

  /** Seeds a consumer with where it stands. */
  seedConsumer(
    stream: string,
    config: Partial<ConsumerConfig> & { durable_name: string },
    state: { ackFloor?: number; pending?: number; ackPending?: number } = {},
  ): void {
    this.#stream(stream).consumers.set(config.durable_name, consumerInfo(stream, config, state));
  }

  consumer(stream: string, name: string): ConsumerInfo | undefined {
    return this.streamsByName.get(stream)?.consumers.get(name);
  }

  readonly streams: JetStreamAdmin['streams'] = {
    info: async (name, opts) => {
      const s = this.#stream(name);
      return {
        config: structuredClone(s.config),
        state: {
          messages: Object.values(s.subjects).reduce((a, b) => a + b, 0),
          ...(opts?.subjects_filter ? { subjects: { ...s.subjects } } : {}),
        },
      } as unknown as StreamInfo;
    },
    add: async (cfg) => {
      if (this.streamsByName.has(cfg.name)) throw apiError(10058, 'stream name already in use');
      this.writes.push(`streams.add ${cfg.name}`);
      this.seedStream(structuredClone(cfg));
      return this.streams.info(cfg.name);
    },
    update: async (name, cfg: Partial<StreamUpdateConfig>) => {
      const s = this.#stream(name);
      this.writes.push(`streams.update ${name}`);
      s.config = { ...s.config, ...structuredClone(cfg) } as StreamConfig;
      return this.streams.info(name);
    },
    delete: async (name) => {
      this.#stream(name);
      this.writes.push(`streams.delete ${name}`);
      return this.streamsByName.delete(name);
    },
  };

  readonly consumers: JetStreamAdmin['consumers'] = {
    list: (stream) =>
      lister(() => [...this.#stream(stream).consumers.values()].map((c) => structuredClone(c))),
    add: async (stream, cfg) => {
      const name = cfg.durable_name ?? cfg.name!;
      this.writes.push(`consumers.add ${stream}/${name}`);
      const info = consumerInfo(stream, { ...structuredClone(cfg), durable_name: name }, {});
      this.#stream(stream).consumers.set(name, info);
      return structuredClone(info);
    },
    update: async (stream, name, cfg: Partial<ConsumerUpdateConfig>) => {
      const info = this.#stream(stream).consumers.get(name);
      if (!info) throw apiError(JetStreamApiCodes.ConsumerNotFound, 'consumer not found');
      this.writes.push(`consumers.update ${stream}/${name}`);
      info.config = { ...info.config, ...structuredClone(cfg) };
      return structuredClone(info);
    },
    delete: async (stream, name) => {
      if (!this.#stream(stream).consumers.delete(name)) {
        throw apiError(JetStreamApiCodes.ConsumerNotFound, 'consumer not found');
      }
      this.writes.push(`consumers.delete ${stream}/${name}`);
      return true;
    },
  };

  /** A Kvm whose buckets are empty (what reconcilers read of KV). */
  kvm(): Pick<Kvm, 'create'> {
    return {
      create: async (name, opts) => {
        this.buckets.push({ name, opts });
        const kv = {
          keys: async () => lister<string>(() => []),
          get: async () => null,
        };
        return kv as unknown as Awaited<ReturnType<Kvm['create']>>;
      },
    };
  }

  #stream(name: string): FakeStream {
    const s = this.streamsByName.get(name);
    if (!s) throw apiError(JetStreamApiCodes.StreamNotFound, 'stream not found');
    return s;
  }
}

function consumerInfo(
  stream: string,
  config: Partial<ConsumerConfig> & { durable_name: string },
  state: { ackFloor?: number; pending?: number; ackPending?: number },
): ConsumerInfo {
  return {
    stream_name: stream,
    name: config.durable_name,
    config: config as ConsumerConfig,
    ack_floor: { stream_seq: state.ackFloor ?? 0, consumer_seq: state.ackFloor ?? 0 },
    delivered: { stream_seq: state.ackFloor ?? 0, consumer_seq: state.ackFloor ?? 0 },
    num_pending: state.pending ?? 0,
    num_ack_pending: state.ackPending ?? 0,
  } as unknown as ConsumerInfo;
}

function lister<T>(items: () => T[]): Lister<T> {
  return {
    next: async () => items(),
    async *[Symbol.asyncIterator]() {
      yield* items();
    },
  };
}
