// Prometheus metrics of one flow worker, on a registry of its own (tests run several workers in
// one process). Labels are bounded: flow, channel, source, sink, reason, code, currency — never a
// business key (those go to logs).
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { minorDigits, toMinorUnits } from '../../api/canonical/money.ts';

export interface FlowMetricLabels {
  /** namespace/name of the flow. */
  flow: string;
  channel: string;
}

export type FlowMetrics = ReturnType<typeof createFlowMetrics>;

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** End to end includes retries with backoff, so it reaches further than one request. */
const END_TO_END_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800];
const CIRCUIT_STATES = ['closed', 'open', 'half_open'] as const;

export type SinkWriteOutcome = 'created' | 'updated' | 'already_exists' | 'known' | 'published_unstored';

export function createFlowMetrics(labels: FlowMetricLabels, options: { processMetrics?: boolean } = {}) {
  const registry = new Registry();
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const received = new Counter({
    name: 'tally_flow_messages_received_total',
    help: 'Source messages accepted (webhook answered 202, NATS message republished), repeats included.',
    labelNames: ['flow', 'channel', 'source'] as const,
    registers,
  });
  const deduplicated = new Counter({
    name: 'tally_flow_messages_deduplicated_total',
    help: 'Received source messages the flow stream already had (same Nats-Msg-Id): stored once.',
    labelNames: ['flow', 'channel', 'source'] as const,
    registers,
  });
  const delivered = new Counter({
    name: 'tally_flow_messages_delivered_total',
    help: 'Canonical events delivered to a sink.',
    labelNames: ['flow', 'channel', 'sink'] as const,
    registers,
  });
  const failed = new Counter({
    name: 'tally_flow_messages_failed_total',
    help: 'Processing attempts that failed, by reason (each is retried or dead-lettered).',
    labelNames: ['flow', 'channel', 'reason'] as const,
    registers,
  });
  const deadLettered = new Counter({
    name: 'tally_flow_messages_dead_lettered_total',
    help: 'Messages moved to the dead-letter stream, by reason.',
    labelNames: ['flow', 'channel', 'reason'] as const,
    registers,
  });
  const retried = new Counter({
    name: 'tally_flow_messages_retried_total',
    help: 'Messages handed back for redelivery with backoff, by reason.',
    labelNames: ['flow', 'channel', 'reason'] as const,
    registers,
  });
  const processing = new Histogram({
    name: 'tally_flow_processing_seconds',
    help: 'Time from taking a message off the consumer to settling it.',
    labelNames: ['flow', 'channel'] as const,
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const sinkRequest = new Histogram({
    name: 'tally_flow_sink_request_seconds',
    help: 'Duration of one sink request, by HTTP status code (or "error" when none came back).',
    labelNames: ['flow', 'sink', 'code'] as const,
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const inFlight = new Gauge({
    name: 'tally_flow_in_flight',
    help: 'Messages being processed right now.',
    labelNames: ['flow', 'channel'] as const,
    registers,
  });
  const endToEnd = new Histogram({
    name: 'tally_flow_end_to_end_seconds',
    help: 'Time from the source handing an event over (Tally-Received-At) to its delivery to every sink, retries included.',
    labelNames: ['flow', 'channel'] as const,
    buckets: END_TO_END_BUCKETS,
    registers,
  });
  const consumerPending = new Gauge({
    name: 'tally_flow_consumer_pending_messages',
    help: 'Consumer lag: messages stored in the flow stream and not yet delivered to a worker (summed over partitions; polled).',
    labelNames: ['flow', 'channel'] as const,
    registers,
  });
  const consumerAckPending = new Gauge({
    name: 'tally_flow_consumer_ack_pending_messages',
    help: 'Messages handed to workers and not yet acked, including those waiting for redelivery (summed over partitions; polled).',
    labelNames: ['flow', 'channel'] as const,
    registers,
  });
  const circuitState = new Gauge({
    name: 'tally_flow_sink_circuit_state',
    help: "State of the sink's circuit breaker: 1 for the current state, 0 for the others.",
    labelNames: ['flow', 'sink', 'state'] as const,
    registers,
  });
  const circuitChanges = new Counter({
    name: 'tally_flow_sink_circuit_transitions_total',
    help: 'Changes of state of the sink circuit breaker, by the state entered.',
    labelNames: ['flow', 'sink', 'state'] as const,
    registers,
  });
  const sinkWrites = new Counter({
    name: 'tally_flow_sink_writes_total',
    help: 'Events a target system took, by what the sink did: created, updated, already_exists (a create the target had already; its id known or captured), known (its id was known and the sink has no update: not sent again), published_unstored (a NATS sink whose subject no stream captures: handed to core subscribers, stored nowhere, not counted as delivered).',
    labelNames: ['flow', 'sink', 'outcome'] as const,
    registers,
  });
  const orders = new Counter({
    name: 'tally_orders_total',
    help: 'Canonical orders delivered to every sink, by channel and currency.',
    labelNames: ['channel', 'currency'] as const,
    registers,
  });
  // Summed exactly in integer minor units; converted to currency units only when scraped, so the
  // total never drifts the way a running float sum does (10.10 + 0.20 stays 10.3).
  const orderMinorTotals = new Map<string, bigint>();
  new Counter({
    name: 'tally_order_value_total',
    help: 'Grand total of delivered orders in currency units (summed from exact minor units).',
    labelNames: ['channel', 'currency'] as const,
    registers,
    collect() {
      this.reset();
      for (const [currency, minor] of orderMinorTotals) {
        this.inc({ channel: labels.channel, currency }, Number(minor) / 10 ** minorDigits(currency));
      }
    },
  });
  const webhookRequests = new Counter({
    name: 'tally_webhook_requests_total',
    help: 'Webhook requests answered, by HTTP status code.',
    labelNames: ['flow', 'channel', 'code'] as const,
    registers,
  });

  const { flow, channel } = labels;
  inFlight.set({ flow, channel }, 0);

  return {
    registry,
    /** One source message accepted; `duplicate` when the stream already had it. */
    received: (source: string, duplicate = false) => {
      received.inc({ flow, channel, source });
      if (duplicate) deduplicated.inc({ flow, channel, source });
    },
    delivered: (sink: string) => delivered.inc({ flow, channel, sink }),
    failed: (reason: string) => failed.inc({ flow, channel, reason }),
    deadLettered: (reason: string) => deadLettered.inc({ flow, channel, reason }),
    retried: (reason: string) => retried.inc({ flow, channel, reason }),
    /** Starts the processing timer; call the result when the message is settled. */
    startProcessing: () => {
      inFlight.inc({ flow, channel });
      const end = processing.startTimer({ flow, channel });
      return () => {
        end();
        inFlight.dec({ flow, channel });
      };
    },
    sinkRequest: (sink: string, code: string, seconds: number) =>
      sinkRequest.observe({ flow, sink, code }, seconds),
    /** Source hand-over to delivery to every sink. */
    endToEnd: (seconds: number) => endToEnd.observe({ flow, channel }, seconds),
    /** Latest consumer info, summed over the flow's consumers. */
    consumerLag: (lag: { pending: number; ackPending: number }) => {
      consumerPending.set({ flow, channel }, lag.pending);
      consumerAckPending.set({ flow, channel }, lag.ackPending);
    },
    /** A sink with a circuit breaker: its current state (call once at start, then on every change). */
    circuit: (sink: string, state: (typeof CIRCUIT_STATES)[number], changed = true) => {
      for (const s of CIRCUIT_STATES) circuitState.set({ flow, sink, state: s }, s === state ? 1 : 0);
      if (changed) circuitChanges.inc({ flow, sink, state });
    },
    /** What a sink with a cross-reference did with one event. */
    sinkWrite: (sink: string, outcome: SinkWriteOutcome) => sinkWrites.inc({ flow, sink, outcome }),
    webhook: (code: number) => webhookRequests.inc({ flow, channel, code: String(code) }),
    /** Count one delivered order and its grand total. */
    order: (grandTotal: { amount: string; currency: string }) => {
      const minor = toMinorUnits(grandTotal);
      orders.inc({ channel, currency: grandTotal.currency });
      // A counter only goes up; a negative total is a refund, not order value.
      if (minor > 0n) {
        orderMinorTotals.set(grandTotal.currency, (orderMinorTotals.get(grandTotal.currency) ?? 0n) + minor);
      }
    },
  };
}
