// Makes a flow's JetStream resources match its spec: the ingest stream, the dead-letter stream
// and the shared durable consumer. Idempotent; updates in place what JetStream allows to change.
import {
  type ConsumerInfo,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  jetstreamManager,
} from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { IntegrationFlowSpec } from '../../api/integration-flow.ts';
import { canonicalStreamConfig, policyNames, reconStreamConfig } from '../../runtime/nats/canonical.ts';
import {
  consumerStart,
  deadLetterStreamConfig,
  type FlowConsumerConfig,
  type FlowRef,
  flowConsumerConfigs,
  flowNames,
  flowStreamConfig,
  isFlowConsumerName,
  retiredConsumerDeletable,
  startSeqOf,
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
  /** Durable consumers the workers pull from (one per partition for ordered flows). */
  consumers: string[];
  /**
   * Consumers of an earlier layout (partitions or partitionKey changed) that still hold messages:
   * kept until they are drained, never deleted with messages in them (docs/delivery.md).
   */
  retiredConsumers: { name: string; pending: number; ackPending: number }[];
}

type StreamCfg =
  | ReturnType<typeof flowStreamConfig>
  | ReturnType<typeof deadLetterStreamConfig>
  | ReturnType<typeof canonicalStreamConfig>;

const isApiError = (err: unknown, code: number) => err instanceof JetStreamApiError && err.code === code;

async function ensureStream(jsm: JetStreamManager, cfg: StreamCfg): Promise<void> {
  try {
    const info = await jsm.streams.info(cfg.name);
    if (info.config.storage !== cfg.storage) {
      throw new NatsImmutableSettingError(
        `stream ${cfg.name} uses ${info.config.storage} storage and JetStream cannot change it to ${cfg.storage}: set spec.stream.storage back, or delete and recreate the flow`,
      );
    }
    const metadata: Record<string, string> = 'metadata' in cfg ? cfg.metadata : {};
    const drift =
      Object.entries(metadata).some(([k, v]) => info.config.metadata?.[k] !== v) ||
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
  const desired = flowConsumerConfigs(flow, spec);
  const existing = new Map<string, ConsumerInfo>();
  for await (const info of jsm.consumers.list(names.stream)) {
    if (isFlowConsumerName(info.name)) existing.set(info.name, info);
  }
  const known = [...existing.values()].map((info) => ({
    name: info.name,
    filterSubject: info.config.filter_subject ?? '>',
    ackFloorStreamSeq: info.ack_floor.stream_seq,
  }));
  // The consumers of the current layout (partitions, partitionKey); a new one starts where the
  // consumers it replaces stand, so a layout change loses nothing.
  const layout: { filterSubject: string; startSeq: number }[] = [];
  for (const consumer of desired) {
    const info = existing.get(consumer.durable_name);
    if (info) {
      await updateConsumer(jsm, names.stream, consumer, info);
      layout.push({ filterSubject: consumer.filter_subject, startSeq: startSeqOf(info.config) });
    } else {
      const start = consumerStart(consumer.filter_subject, known);
      await jsm.consumers.add(names.stream, { ...consumer, ...start });
      layout.push({ filterSubject: consumer.filter_subject, startSeq: startSeqOf(start) });
    }
  }
  // Consumers of an earlier layout go once nothing they hold can be lost.
  const wanted = new Set(desired.map((c) => c.durable_name));
  const retired = [...existing.values()].filter((info) => !wanted.has(info.name));
  const subjects =
    retired.length === 0
      ? []
      : Object.keys((await jsm.streams.info(names.stream, { subjects_filter: '>' })).state.subjects ?? {});
  const retiredConsumers: FlowNatsState['retiredConsumers'] = [];
  for (const info of retired) {
    const candidate = {
      name: info.name,
      filterSubject: info.config.filter_subject ?? '>',
      ackFloorStreamSeq: info.ack_floor.stream_seq,
      pending: info.num_pending,
      ackPending: info.num_ack_pending,
    };
    if (retiredConsumerDeletable(candidate, subjects, layout)) {
      await jsm.consumers.delete(names.stream, info.name).catch((err: unknown) => {
        if (!isApiError(err, JetStreamApiCodes.ConsumerNotFound)) throw err;
      });
    } else {
      retiredConsumers.push({ name: info.name, pending: info.num_pending, ackPending: info.num_ack_pending });
    }
  }
  return {
    stream: names.stream,
    consumer: names.consumer,
    deadLetterStream: names.deadLetterStream,
    deadLetterSubject: names.deadLetterSubject,
    consumers: desired.map((c) => c.durable_name),
    retiredConsumers,
  };
}

async function updateConsumer(
  jsm: JetStreamManager,
  stream: string,
  consumer: FlowConsumerConfig,
  info: ConsumerInfo,
): Promise<void> {
  const c = info.config;
  if (
    c.ack_wait !== consumer.ack_wait ||
    c.max_deliver !== consumer.max_deliver ||
    c.max_ack_pending !== consumer.max_ack_pending ||
    c.filter_subject !== consumer.filter_subject
  ) {
    const { durable_name: _d, deliver_policy: _p, ...mutable } = consumer;
    await jsm.consumers.update(stream, consumer.durable_name, mutable);
  }
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

/** The namespace-wide streams: canonical events (read by policies) and reports/exceptions. */
export async function ensureNamespaceStreams(jsm: JetStreamManager, namespace: string): Promise<void> {
  await ensureStream(jsm, canonicalStreamConfig(namespace));
  await ensureStream(jsm, reconStreamConfig(namespace));
}

/** Deletes a policy's report bucket (its KV stream). */
export async function deletePolicyNats(
  jsm: JetStreamManager,
  namespace: string,
  name: string,
): Promise<void> {
  try {
    await jsm.streams.delete(`KV_${policyNames(namespace, name).stateBucket}`);
  } catch (err) {
    if (!isApiError(err, JetStreamApiCodes.StreamNotFound)) throw err;
  }
}
