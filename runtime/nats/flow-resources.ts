// Names and JetStream settings of a flow's NATS resources. Pure: the operator (and `tally run`)
// create them, the worker uses them; both read the names from here so they never disagree.

import { durationMs } from '../../api/common.ts';
import type { IntegrationFlowSpec } from '../../api/integration-flow.ts';

export interface FlowRef {
  namespace: string;
  name: string;
}

/** Flow names are DNS labels (no dots, see the CRD), so these tokens are safe in subjects and stream names. */
export function flowNames(flow: FlowRef) {
  const id = `${flow.namespace}_${flow.name}`;
  const base = `tally.${flow.namespace}.${flow.name}`;
  return {
    stream: `tally_flow_${id}`,
    /** Wildcard the flow stream captures; sources publish to ingestSubject(partition). */
    ingestSubjects: `${base}.in.>`,
    ingestSubject: (partition = 0) => `${base}.in.${partition}`,
    consumer: 'worker',
    /** The durable consumer of one partition (ordered flows: `delivery.partitionKey` set). */
    partitionConsumer: (partition: number) => `worker-${partition}`,
    deadLetterStream: `tally_dlq_${id}`,
    deadLetterSubject: `${base}.dlq`,
    stateBucket: `tally_state_${id}`,
  };
}

const NS_PER_MS = 1_000_000;

/**
 * The flow's partition layout, kept in the ingest stream's metadata so tools that publish into the
 * stream without the flow's spec (`tally dlq replay`) route each payload as the sources do.
 */
export const LAYOUT_METADATA = {
  partitions: 'tally.dev/partitions',
  partitionKey: 'tally.dev/partition-key',
} as const;

export interface FlowLayout {
  partitionKey: string | undefined;
  partitions: number;
}

export function layoutMetadata(delivery: Pick<DeliverySettings, 'partitions' | 'partitionKey'>) {
  return {
    [LAYOUT_METADATA.partitions]: String(partitionCount(delivery)),
    [LAYOUT_METADATA.partitionKey]: delivery.partitionKey ?? '',
  };
}

/** The layout in a flow stream's metadata; undefined when the stream predates it. */
export function layoutFromMetadata(metadata: Record<string, string> | undefined): FlowLayout | undefined {
  const partitions = Number(metadata?.[LAYOUT_METADATA.partitions]);
  if (!Number.isSafeInteger(partitions) || partitions < 1) return undefined;
  const key = metadata?.[LAYOUT_METADATA.partitionKey];
  return { partitionKey: key ? key : undefined, partitions };
}

/** JetStream stream config of the flow's ingest stream (field names as in the NATS API). */
export function flowStreamConfig(flow: FlowRef, spec: Pick<IntegrationFlowSpec, 'stream' | 'delivery'>) {
  const n = flowNames(flow);
  return {
    metadata: layoutMetadata(spec.delivery),
    name: n.stream,
    subjects: [n.ingestSubjects],
    retention: 'limits' as const,
    storage: spec.stream.storage,
    num_replicas: spec.stream.replicas,
    max_age: durationMs(spec.stream.maxAge) * NS_PER_MS,
    duplicate_window: durationMs(spec.stream.duplicateWindow) * NS_PER_MS,
    discard: 'old' as const,
  };
}

/** The dead-letter stream: kept long, never discarded silently. */
export function deadLetterStreamConfig(flow: FlowRef, spec: Pick<IntegrationFlowSpec, 'stream'>) {
  const n = flowNames(flow);
  return {
    name: n.deadLetterStream,
    subjects: [n.deadLetterSubject],
    retention: 'limits' as const,
    storage: 'file' as const,
    num_replicas: spec.stream.replicas,
    max_age: 0,
    duplicate_window: durationMs(spec.stream.duplicateWindow) * NS_PER_MS,
    discard: 'new' as const,
  };
}

/** Messages one unordered consumer lets the replicas hold at once. */
export const UNORDERED_MAX_ACK_PENDING = 1000;

type DeliverySettings = Pick<IntegrationFlowSpec['delivery'], 'ackWait' | 'partitions' | 'partitionKey'>;

/** Ordered flows (a partition key is set) have one consumer per partition, each strictly in order. */
export function isOrdered(delivery: Pick<DeliverySettings, 'partitionKey'>): boolean {
  return delivery.partitionKey !== undefined;
}

/** Partitions that sources publish to: `delivery.partitions` when ordered, else the single partition 0. */
export function partitionCount(delivery: Pick<DeliverySettings, 'partitions' | 'partitionKey'>): number {
  return isOrdered(delivery) ? Math.max(1, delivery.partitions) : 1;
}

/**
 * The durable pull consumer every worker replica of an unordered flow shares: all partition
 * subjects, many messages in flight. (Ordered flows: flowConsumerConfigs.)
 */
export function flowConsumerConfig(flow: FlowRef, spec: { delivery: Pick<DeliverySettings, 'ackWait'> }) {
  const n = flowNames(flow);
  return {
    durable_name: n.consumer,
    ack_policy: 'explicit' as const,
    deliver_policy: 'all' as const,
    filter_subject: n.ingestSubjects,
    ack_wait: durationMs(spec.delivery.ackWait) * NS_PER_MS,
    // The worker decides when to dead-letter (it counts deliveries). No JetStream cap: if the
    // dead-letter stream is unavailable on the last attempt, the message must stay deliverable.
    max_deliver: -1,
    max_ack_pending: UNORDERED_MAX_ACK_PENDING,
  };
}

export type FlowConsumerConfig = ReturnType<typeof flowConsumerConfig>;

/**
 * Every durable consumer of the flow, shared by all replicas. Unordered: the one of
 * flowConsumerConfig. Ordered: one per partition, filtered to its subject, with max_ack_pending 1
 * so that across all replicas at most one message of a partition is out at a time (a nak'd
 * message stays pending while it waits for redelivery, so nothing behind it overtakes it).
 */
export function flowConsumerConfigs(
  flow: FlowRef,
  spec: { delivery: DeliverySettings },
): FlowConsumerConfig[] {
  if (!isOrdered(spec.delivery)) return [flowConsumerConfig(flow, spec)];
  const n = flowNames(flow);
  const base = flowConsumerConfig(flow, spec);
  return Array.from({ length: partitionCount(spec.delivery) }, (_, p) => ({
    ...base,
    durable_name: n.partitionConsumer(p),
    filter_subject: n.ingestSubject(p),
    max_ack_pending: 1,
  }));
}

/** True for the names flowConsumerConfigs gives (of any layout), so a layout change finds the old ones. */
export function isFlowConsumerName(name: string): boolean {
  return /^worker(-[0-9]+)?$/.test(name);
}

/** Whether two consumer filters can both match one subject (the forms used here: `a.b.c`, `a.b.>`). */
export function filtersOverlap(a: string, b: string): boolean {
  const x = a.split('.');
  const y = b.split('.');
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    if (x[i] === '>' || y[i] === '>') return x[i] !== undefined && y[i] !== undefined;
    if (x[i] === undefined || y[i] === undefined) return false;
    if (x[i] !== '*' && y[i] !== '*' && x[i] !== y[i]) return false;
  }
  return true;
}

/** What a consumer that already exists tells a new one about where to start. */
export interface ExistingConsumer {
  name: string;
  filterSubject: string;
  /** Stream sequence of the ack floor: everything up to it is acked. */
  ackFloorStreamSeq: number;
}

export type ConsumerStart =
  | { deliver_policy: 'all' }
  | { deliver_policy: 'new' }
  | { deliver_policy: 'by_start_sequence'; opt_start_seq: number };

/**
 * Where a consumer created on a layout change starts, so that nothing is lost and little is
 * repeated (pure). No flow consumer yet (a new flow): from the start. Otherwise from the first
 * message not yet acked by any existing consumer whose subjects overlap (repeats past that floor
 * are absorbed by Nats-Msg-Id and idempotency keys); when none overlaps, the subject is new to
 * this layout and only messages from now on are its own.
 */
export function consumerStart(filterSubject: string, existing: readonly ExistingConsumer[]): ConsumerStart {
  if (existing.length === 0) return { deliver_policy: 'all' };
  const overlapping = existing.filter((c) => filtersOverlap(c.filterSubject, filterSubject));
  if (overlapping.length === 0) return { deliver_policy: 'new' };
  const floor = Math.min(...overlapping.map((c) => c.ackFloorStreamSeq));
  return { deliver_policy: 'by_start_sequence', opt_start_seq: floor + 1 };
}

/** NATS subject matching: `*` matches one token, `>` one or more at the end. */
export function subjectMatches(filter: string, subject: string): boolean {
  const f = filter.split('.');
  const s = subject.split('.');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '>') return s.length > i;
    if (i >= s.length || (f[i] !== '*' && f[i] !== s[i])) return false;
  }
  return f.length === s.length;
}

/** The first stream sequence a consumer delivers, from its start settings (`new`: unknown, so never). */
export function startSeqOf(start: { deliver_policy: string; opt_start_seq?: number }): number {
  if (start.deliver_policy === 'all') return 1;
  if (start.deliver_policy === 'by_start_sequence') return start.opt_start_seq ?? 1;
  return Number.POSITIVE_INFINITY;
}

/**
 * Whether a consumer of an earlier layout can go (pure). Yes when it holds nothing; also when
 * every subject it could still deliver from is covered by a consumer of the new layout that
 * starts at or before its ack floor, so everything it holds is delivered again by the new layout
 * (switching between ordered and unordered). Otherwise (fewer partitions, messages still on a
 * partition no longer served) it stays until drained: docs/delivery.md.
 */
export function retiredConsumerDeletable(
  retired: ExistingConsumer & { pending: number; ackPending: number },
  /** Subjects of the flow stream that hold messages. */
  subjects: readonly string[],
  layout: readonly { filterSubject: string; startSeq: number }[],
): boolean {
  if (retired.pending === 0 && retired.ackPending === 0) return true;
  return subjects
    .filter((s) => subjectMatches(retired.filterSubject, s))
    .every((s) =>
      layout.some((c) => subjectMatches(c.filterSubject, s) && c.startSeq <= retired.ackFloorStreamSeq + 1),
    );
}
