// Makes a flow's JetStream resources match its spec: the ingest stream, the dead-letter stream
// and the shared durable consumer. Idempotent; updates in place what JetStream allows to change.

import {
  type ConsumerAPI,
  type ConsumerConfig,
  type ConsumerInfo,
  type ConsumerUpdateConfig,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  jetstreamManager,
  type StreamAPI,
  type StreamConfig,
} from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { TallyError } from '../../api/errors.ts';
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

export class NatsUnavailableError extends TallyError {
  override name = 'NatsUnavailableError';
  readonly code = NATS_ERROR_CODES.unavailable;
}

/** A change JetStream cannot apply in place (e.g. storage type): the user must act. */
export class NatsImmutableSettingError extends TallyError {
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

/**
 * What the provisioner uses of a JetStreamManager: a real one satisfies it, unit tests pass an
 * in-memory fake (operator/testing/).
 */
export interface JetStreamAdmin {
  streams: Pick<StreamAPI, 'info' | 'add' | 'update' | 'delete'>;
  consumers: Pick<ConsumerAPI, 'list' | 'add' | 'update' | 'delete'>;
}

/** The flow's JetStream resources as its spec wants them (pure). */
export function desiredFlowNats(flow: FlowRef, spec: Pick<IntegrationFlowSpec, 'stream' | 'delivery'>) {
  return {
    stream: flowStreamConfig(flow, spec),
    deadLetterStream: deadLetterStreamConfig(flow, spec),
    consumers: flowConsumerConfigs(flow, spec),
  };
}

/**
 * The setting of an existing stream that differs from `desired` and that JetStream cannot change
 * in place, as the error to report (pure); undefined when an update (or nothing) will do.
 */
export function immutableStreamChange(
  current: Pick<StreamConfig, 'name' | 'storage'>,
  desired: Pick<StreamCfg, 'storage'>,
  fix = 'delete the stream so the operator creates it again',
): NatsImmutableSettingError | undefined {
  if (current.storage === desired.storage) return undefined;
  return new NatsImmutableSettingError(
    `stream ${current.name} uses ${current.storage} storage and JetStream cannot change it to ${desired.storage}: ${fix}`,
  );
}

/**
 * Whether an existing stream differs from `desired` in a setting the operator manages (pure).
 * Settings it does not set, and metadata keys the server adds itself (`_nats.*`), are not drift.
 */
export function streamDrifted(current: StreamConfig, desired: StreamCfg): boolean {
  const metadata: Record<string, string> = 'metadata' in desired ? desired.metadata : {};
  return (
    Object.entries(metadata).some(([k, v]) => current.metadata?.[k] !== v) ||
    current.max_age !== desired.max_age ||
    current.duplicate_window !== desired.duplicate_window ||
    current.num_replicas !== desired.num_replicas ||
    current.discard !== desired.discard ||
    JSON.stringify(current.subjects) !== JSON.stringify(desired.subjects)
  );
}

/** Whether an existing flow consumer differs from `desired` in a setting it can change (pure). */
export function consumerDrifted(current: ConsumerConfig, desired: FlowConsumerConfig): boolean {
  return (
    current.ack_wait !== desired.ack_wait ||
    current.max_deliver !== desired.max_deliver ||
    current.max_ack_pending !== desired.max_ack_pending ||
    current.filter_subject !== desired.filter_subject
  );
}

/**
 * The update that brings a consumer to `desired` (pure). Where it starts (deliver_policy, chosen
 * once by consumerStart when it is created) is never sent: JetStream cannot change it.
 */
export function consumerUpdate(desired: FlowConsumerConfig): Partial<ConsumerUpdateConfig> {
  const { durable_name: _d, deliver_policy: _p, ...mutable } = desired;
  return mutable;
}

const isApiError = (err: unknown, code: number) => err instanceof JetStreamApiError && err.code === code;

async function ensureStream(jsm: JetStreamAdmin, cfg: StreamCfg, fix?: string): Promise<void> {
  let current: StreamConfig;
  try {
    current = (await jsm.streams.info(cfg.name)).config;
  } catch (err) {
    if (!isApiError(err, JetStreamApiCodes.StreamNotFound)) throw err;
    await jsm.streams.add(cfg);
    return;
  }
  const immutable = immutableStreamChange(current, cfg, fix);
  if (immutable) throw immutable;
  if (streamDrifted(current, cfg)) await jsm.streams.update(cfg.name, cfg);
}

export async function ensureFlowNats(
  jsm: JetStreamAdmin,
  flow: FlowRef,
  spec: Pick<IntegrationFlowSpec, 'stream' | 'delivery'>,
): Promise<FlowNatsState> {
  const names = flowNames(flow);
  const want = desiredFlowNats(flow, spec);
  await ensureStream(jsm, want.stream, 'set spec.stream.storage back, or delete and recreate the flow');
  await ensureStream(jsm, want.deadLetterStream);
  const desired = want.consumers;
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
      if (consumerDrifted(info.config, consumer)) {
        await jsm.consumers.update(names.stream, consumer.durable_name, consumerUpdate(consumer));
      }
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

/** Deletes the flow's streams (with their consumers) and its state bucket; missing ones are fine. */
export async function deleteFlowNats(jsm: JetStreamAdmin, flow: FlowRef): Promise<void> {
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
export async function ensureNamespaceStreams(jsm: JetStreamAdmin, namespace: string): Promise<void> {
  await ensureStream(jsm, canonicalStreamConfig(namespace));
  await ensureStream(jsm, reconStreamConfig(namespace));
}

/** Deletes a policy's report bucket (its KV stream). */
export async function deletePolicyNats(jsm: JetStreamAdmin, namespace: string, name: string): Promise<void> {
  try {
    await jsm.streams.delete(`KV_${policyNames(namespace, name).stateBucket}`);
  } catch (err) {
    if (!isApiError(err, JetStreamApiCodes.StreamNotFound)) throw err;
  }
}
