// Makes a flow's JetStream resources match its spec: the ingest stream, the dead-letter stream
// and the shared durable consumer. Idempotent; updates in place what JetStream allows to change.
import {
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  jetstreamManager,
} from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { IntegrationFlowSpec } from '../../api/integration-flow.ts';
import {
  deadLetterStreamConfig,
  type FlowRef,
  flowConsumerConfig,
  flowNames,
  flowStreamConfig,
} from '../../runtime/nats/flow-resources.ts';

export const NATS_ERROR_CODES = {
  unavailable: 'NATS_UNAVAILABLE',
  immutable: 'NATS_IMMUTABLE_SETTING',
} as const;

export class NatsUnavailableError extends Error {
  override name = 'NatsUnavailableError';
  readonly code = NATS_ERROR_CODES.unavailable;
}

/** A change JetStream cannot apply in place (e.g. storage type): the user must act. */
export class NatsImmutableSettingError extends Error {
  override name = 'NatsImmutableSettingError';
  readonly code = NATS_ERROR_CODES.immutable;
}

export interface FlowNatsState {
  stream: string;
  consumer: string;
  deadLetterStream: string;
  deadLetterSubject: string;
}

type StreamCfg = ReturnType<typeof flowStreamConfig> | ReturnType<typeof deadLetterStreamConfig>;

const isApiError = (err: unknown, code: number) => err instanceof JetStreamApiError && err.code === code;

async function ensureStream(jsm: JetStreamManager, cfg: StreamCfg): Promise<void> {
  try {
    const info = await jsm.streams.info(cfg.name);
    if (info.config.storage !== cfg.storage) {
      throw new NatsImmutableSettingError(
        `stream ${cfg.name} uses ${info.config.storage} storage and JetStream cannot change it to ${cfg.storage}: set spec.stream.storage back, or delete and recreate the flow`,
      );
    }
    const drift =
      info.config.max_age !== cfg.max_age ||
      info.config.duplicate_window !== cfg.duplicate_window ||
      info.config.num_replicas !== cfg.num_replicas ||
      info.config.discard !== cfg.discard ||
      JSON.stringify(info.config.subjects) !== JSON.stringify(cfg.subjects);
    if (drift) await jsm.streams.update(cfg.name, cfg);
  } catch (err) {
    if (!isApiError(err, JetStreamApiCodes.StreamNotFound)) throw err;
    await jsm.streams.add(cfg);
  }
}

export async function ensureFlowNats(
  jsm: JetStreamManager,
  flow: FlowRef,
  spec: Pick<IntegrationFlowSpec, 'stream' | 'delivery'>,
): Promise<FlowNatsState> {
  const names = flowNames(flow);
  await ensureStream(jsm, flowStreamConfig(flow, spec));
  await ensureStream(jsm, deadLetterStreamConfig(flow, spec));
  const consumer = flowConsumerConfig(flow, spec);
  try {
    const info = await jsm.consumers.info(names.stream, consumer.durable_name);
    const c = info.config;
    if (
      c.ack_wait !== consumer.ack_wait ||
      c.max_deliver !== consumer.max_deliver ||
      c.max_ack_pending !== consumer.max_ack_pending ||
      c.filter_subject !== consumer.filter_subject
    ) {
      const { durable_name: _d, deliver_policy: _p, ...mutable } = consumer;
      await jsm.consumers.update(names.stream, consumer.durable_name, mutable);
    }
  } catch (err) {
    if (!isApiError(err, JetStreamApiCodes.ConsumerNotFound)) throw err;
    await jsm.consumers.add(names.stream, consumer);
  }
  return {
    stream: names.stream,
    consumer: names.consumer,
    deadLetterStream: names.deadLetterStream,
    deadLetterSubject: names.deadLetterSubject,
  };
}

/** Deletes the flow's streams (with their consumers) and its state bucket; missing ones are fine. */
export async function deleteFlowNats(jsm: JetStreamManager, flow: FlowRef): Promise<void> {
  const names = flowNames(flow);
  for (const stream of [names.stream, names.deadLetterStream, `KV_${names.stateBucket}`]) {
    try {
      await jsm.streams.delete(stream);
    } catch (err) {
      if (!isApiError(err, JetStreamApiCodes.StreamNotFound)) throw err;
    }
  }
}

/** One long-lived connection for the operator, reconnecting forever. */
export async function connectNats(
  servers: string[],
  name: string,
): Promise<{ nc: NatsConnection; jsm: JetStreamManager }> {
  try {
    const nc = await connect({ servers, name, maxReconnectAttempts: -1, reconnectTimeWait: 1000 });
    return { nc, jsm: await jetstreamManager(nc) };
  } catch (cause) {
    throw new NatsUnavailableError(
      `cannot reach NATS at ${servers.join(', ')}: ${(cause as Error).message}`,
      { cause },
    );
  }
}
