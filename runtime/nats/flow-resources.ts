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
    deadLetterStream: `tally_dlq_${id}`,
    deadLetterSubject: `${base}.dlq`,
    stateBucket: `tally_state_${id}`,
  };
}

const NS_PER_MS = 1_000_000;

/** JetStream stream config of the flow's ingest stream (field names as in the NATS API). */
export function flowStreamConfig(flow: FlowRef, spec: Pick<IntegrationFlowSpec, 'stream'>) {
  const n = flowNames(flow);
  return {
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

/** The durable pull consumer every worker replica of the flow shares. */
export function flowConsumerConfig(flow: FlowRef, spec: Pick<IntegrationFlowSpec, 'delivery'>) {
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
    max_ack_pending: 1000,
  };
}
