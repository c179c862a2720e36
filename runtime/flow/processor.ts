// One message off the flow consumer: parse -> map -> envelope -> every sink -> ack. A failure is
// retried with backoff (nak) or, when permanent or out of attempts, dead-lettered and then termed.
// Nothing is acked before it is safely handed on.
import { setTimeout as sleep } from 'node:timers/promises';
import type { FlowWorkerConfig } from '../../api/worker-config.ts';
import type { BusMessage, BusWriter } from '../bus/types.ts';
import type { CompiledMapping } from '../mapping/types.ts';
import { type Logger, messageLogger } from '../telemetry/logger.ts';
import type { FlowMetrics } from '../telemetry/metrics.ts';
import type { XrefSource } from '../xref/context.ts';
import { nakDelayMs, retryDelayMs } from './backoff.ts';
import { type Failure, SINK_WAIT_REASONS } from './classify.ts';
import { DLQ_HEADERS, deadLetterHeaders, deadLetterMsgId } from './dead-letter.ts';
import { SinkError } from './errors.ts';
import { INGEST_HEADERS, usableId } from './ingest.ts';
import type { Sink, SinkReceipt } from './sinks/types.ts';
import { parseTraceparent, traceFromSeed } from './trace.ts';
import { createTransform, type EventHead, failureOf, type Transform, TransformFailure } from './transform.ts';

export interface ProcessorDeps {
  config: Pick<FlowWorkerConfig, 'flow' | 'mapping' | 'nats'> & {
    delivery: { maxDeliver: number; initialBackoffMs: number; maxBackoffMs: number; ackWaitMs: number };
  };
  mapping: CompiledMapping;
  /** The cross-reference store the mapping may read ($xref, $customer, $product). */
  xref?: XrefSource;
  /** The per-event work; default ./transform.ts with `mapping`, in this thread. */
  transform?: Transform;
  sinks: readonly Sink[];
  /** Where dead letters are published. */
  bus: BusWriter;
  metrics: FlowMetrics;
  logger: Logger;
  now?: () => Date;
  random?: () => number;
  /** Pauses between in-place retries of a failed dead-letter publish; default 250 ms, 1 s. */
  deadLetterRetryMs?: readonly number[];
}

export type Outcome = 'delivered' | 'retried' | 'dead_lettered';

/**
 * The id the message was first ingested under: a replay (`tally dlq replay`) carries it in
 * Tally-Source-Msg-Id next to its own new Nats-Msg-Id, so the event id and the idempotency key stay
 * those of the original attempt. Else its Nats-Msg-Id; else its stream position.
 */
export function sourceMsgIdOf(message: BusMessage, stream: string): string {
  return (
    usableId(message.headers[DLQ_HEADERS.sourceMsgId]) ||
    message.headers['Nats-Msg-Id'] ||
    `${stream}:${message.streamSeq}`
  );
}

/** Of several sink failures, a permanent one decides (retrying cannot fix it); else the first. */
export function decisiveError(errors: readonly unknown[]): unknown {
  return errors.find((e) => e instanceof SinkError && e.permanent) ?? errors[0];
}

/** When the source handed the message over (Tally-Received-At), else when the stream stored it. */
export function ingestedAtMs(message: BusMessage): number {
  const at = Date.parse(message.headers[INGEST_HEADERS.receivedAt] ?? '');
  return Number.isNaN(at) ? message.storedAt.getTime() : at;
}

export function createProcessor(deps: ProcessorDeps): (message: BusMessage) => Promise<Outcome> {
  const { config, metrics } = deps;
  const transform = deps.transform ?? createTransform(config, deps.mapping, deps.xref);
  const now = deps.now ?? (() => new Date());
  const flowId = `${config.flow.namespace}/${config.flow.name}`;
  const policy = { initialMs: config.delivery.initialBackoffMs, maxMs: config.delivery.maxBackoffMs };
  // Refresh the ack-wait timer of every message in progress well before it runs out, for slow
  // sinks: one timer for all of them (a timer per message cost more than its ack).
  const heartbeatMs = Math.max(1_000, Math.floor(config.delivery.ackWaitMs / 3));
  const inProgress = new Set<BusMessage>();
  let heartbeat: NodeJS.Timeout | undefined;
  const track = (message: BusMessage) => {
    inProgress.add(message);
    heartbeat ??= setInterval(() => {
      for (const m of inProgress) m.inProgress();
    }, heartbeatMs);
  };
  const untrack = (message: BusMessage) => {
    inProgress.delete(message);
    if (inProgress.size === 0) {
      clearInterval(heartbeat);
      heartbeat = undefined;
    }
  };

  return async (message) => {
    const done = metrics.startProcessing();
    const sourceMsgId = sourceMsgIdOf(message, config.nats.stream);
    const trace = parseTraceparent(message.headers.traceparent) ?? traceFromSeed(sourceMsgId);
    // The message's logger is made on first use (a pino child costs more than mapping a small order).
    const fields: { sourceMsgId: string; traceId: string; businessKey?: string } = {
      sourceMsgId,
      traceId: trace.traceId,
    };
    let child: Logger | undefined;
    const log = () => (child ??= messageLogger(deps.logger, fields));
    track(message);
    let event: EventHead | undefined;
    let grandTotal: { amount: string; currency: string } | undefined;
    const receipts: [string, SinkReceipt][] = [];
    try {
      try {
        const result = await transform({
          data: message.data,
          sourceMsgId,
          trace,
          storedAtMs: message.storedAt.getTime(),
        });
        if (!result.ok) throw new TransformFailure(result.failure);
        event = result.head;
        grandTotal = result.grandTotal;
        fields.businessKey = event.subject;
        const { head, body, data } = result;
        const results = await Promise.allSettled(deps.sinks.map((s) => s.deliver(head, body, data)));
        const errors = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
        if (errors.length > 0) throw decisiveError(errors);
        results.forEach((r, i) => {
          if (r.status === 'fulfilled' && r.value) receipts.push([deps.sinks[i]!.name, r.value]);
        });
      } catch (err) {
        return await fail(message, err, log(), sourceMsgId, event);
      }
      await message.ack();
      for (const s of deps.sinks) metrics.delivered(s.name);
      for (const [sink, r] of receipts) metrics.sinkWrite(sink, r.outcome);
      metrics.endToEnd(Math.max(0, now().getTime() - ingestedAtMs(message)) / 1000);
      if (grandTotal) {
        try {
          metrics.order(grandTotal);
        } catch (err) {
          log().warn({ err }, 'order value not counted');
        }
      }
      if (deps.logger.isLevelEnabled('info')) {
        log().info(
          {
            eventId: event.id,
            attempt: message.deliveryCount,
            sinks: deps.sinks.map((s) => s.name),
            // The ids targets gave the object, e.g. {"netsuite-orders": {outcome: "created", id: "1042"}}.
            ...(receipts.length > 0
              ? {
                  targets: Object.fromEntries(
                    receipts.map(([sink, r]) => [
                      sink,
                      { outcome: r.outcome, system: r.system, id: r.targetId },
                    ]),
                  ),
                }
              : {}),
          },
          'delivered',
        );
      }
      return 'delivered';
    } finally {
      untrack(message);
      done();
    }
  };

  async function fail(
    message: BusMessage,
    err: unknown,
    log: Logger,
    sourceMsgId: string,
    event: EventHead | undefined,
  ): Promise<Outcome> {
    const failure = failureOf(err);
    metrics.failed(failure.reason);
    const attempt = message.deliveryCount;
    // A sink that is down or throttling is not this message's fault: it waits for the sink
    // (nak with delay) however many attempts it took, rather than being dead-lettered.
    const sinkDown =
      SINK_WAIT_REASONS.includes(failure.reason) ||
      (err instanceof SinkError &&
        !err.permanent &&
        deps.sinks.find((s) => s.name === err.sink)?.circuit?.() === 'open');
    const lastAttempt = attempt >= config.delivery.maxDeliver && !sinkDown;
    const context = {
      reason: failure.reason,
      errorClass: failure.errorClass,
      errorCode: failure.code,
      attempt,
      maxDeliver: config.delivery.maxDeliver,
      ...(event ? { eventId: event.id } : {}),
    };
    if (failure.permanent || lastAttempt) {
      try {
        await deadLetter(message, failure, sourceMsgId);
        metrics.deadLettered(failure.reason);
        log.error({ ...context, err: failure.message }, 'dead-lettered');
        return 'dead_lettered';
      } catch (dlqErr) {
        // Not handed on: keep the message and try again later.
        log.error({ ...context, err: failure.message, dlqErr }, 'dead-letter publish failed; will retry');
        return retry(message, failure, log, context);
      }
    }
    return retry(message, failure, log, context);
  }

  async function retry(
    message: BusMessage,
    failure: Failure,
    log: Logger,
    context: Record<string, unknown>,
  ): Promise<Outcome> {
    const delay = nakDelayMs(
      retryDelayMs(message.deliveryCount, policy, deps.random),
      failure.retryAfterMs,
      policy.maxMs,
    );
    await message.nak(delay);
    metrics.retried(failure.reason);
    log.warn({ ...context, err: failure.message, retryInMs: delay }, 'failed; retrying');
    return 'retried';
  }

  async function deadLetter(message: BusMessage, failure: Failure, sourceMsgId: string): Promise<void> {
    const headers = deadLetterHeaders({
      original: message.headers,
      error: {
        name: failure.errorClass,
        code: failure.code,
        message: failure.message,
        reason: failure.reason,
      },
      attempts: message.deliveryCount,
      firstReceived: message.storedAt,
      now: now(),
      flow: flowId,
      sourceMsgId,
    });
    const pauses = deps.deadLetterRetryMs ?? [250, 1_000];
    // Retried in place first: each nak spends one of the consumer's limited deliveries.
    for (let attempt = 0; ; attempt++) {
      try {
        await deps.bus.publish(config.nats.deadLetterSubject, message.data, {
          // Per ingested message, not per source id: a replay that fails again must not be dropped
          // as a duplicate of the dead letter it was replayed from (possibly purged already).
          msgId: deadLetterMsgId(message.headers['Nats-Msg-Id'] || sourceMsgId),
          headers,
        });
        break;
      } catch (err) {
        const pause = pauses[attempt];
        if (pause === undefined) throw err;
        await sleep(pause);
      }
    }
    await message.term(`dead-lettered: ${failure.reason}`);
  }
}
