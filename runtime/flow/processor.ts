// One message off the flow consumer: parse -> map -> envelope -> every sink -> ack. A failure is
// retried with backoff (nak) or, when permanent or out of attempts, dead-lettered and then termed.
// Nothing is acked before it is safely handed on.
//
// What counts as an attempt (the budget of `delivery.maxDeliver`):
// - Every delivery of a message is an attempt, except one whose every failure is a sink saying
//   "not now" without taking the request: its circuit breaker was open, its Retry-After pause was
//   not over, or it answered 429 (classify.ts isSinkWait). Those deliveries wait for the sink
//   (nak with the delay it asked for) and spend nothing, however many there are: a sink that is
//   down or throttling is not the message's fault. JetStream's own delivery count includes them,
//   so it is not the budget.
// - A failure that reached a sink (5xx, 408, a timeout, a network error, 409) is an attempt; so are
//   failures before any sink: waiting_for_xref, bus_unavailable, mapping errors. waiting_for_xref
//   therefore still dead-letters after maxDeliver attempts, as docs/two-way-sync.md says.
// - On its last attempt, a transient sink failure that left that sink's circuit open is not
//   dead-lettered either: the sink is down now; the message waits for it like the others.
// - The worker counts attempts per message in memory (keyed by stream sequence, forgotten once the
//   message is settled). Deliveries it did not see — made by another replica, or before a restart —
//   are assumed to have been waits when the failure now is a sink's (so an outage never makes a
//   message look tried when it was not), and attempts when the failure happens before any sink
//   (JetStream's count minus the waits seen here: waiting_for_xref ends after maxDeliver
//   deliveries however many replicas share the message). With several replicas a sink failure may
//   thus be tried up to replicas x maxDeliver times before it is dead-lettered; never fewer than
//   maxDeliver.
// - Backoff grows with the attempts, not the deliveries: the first real failure after an outage
//   waits initialBackoff, not maxBackoff.
//
// Every failure's message is passed through redact() before it becomes the dead letter's
// Tally-Error-Message and the log line: no credentials in either.
import { setTimeout as sleep } from 'node:timers/promises';
import type { FlowWorkerConfig } from '../../api/worker-config.ts';
import type { BusMessage, BusWriter } from '../bus/types.ts';
import type { CompiledMapping } from '../mapping/types.ts';
import { type Logger, messageLogger } from '../telemetry/logger.ts';
import type { FlowMetrics } from '../telemetry/metrics.ts';
import type { XrefSource } from '../xref/context.ts';
import { nakDelayMs, retryDelayMs } from './backoff.ts';
import { type Failure, isSinkWait } from './classify.ts';
import { DLQ_HEADERS, deadLetterHeaders, deadLetterMsgId } from './dead-letters/headers.ts';
import { SinkError } from './errors.ts';
import { INGEST_HEADERS, usableId } from './ingest.ts';
import { redact } from './redact.ts';
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
  /** Attempts per message; default a new ledger (one per processor). */
  attempts?: AttemptLedger;
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

/** What the worker saw of one message's deliveries. */
export interface AttemptRecord {
  /** Deliveries that were attempts (they may have spent the budget). */
  attempts: number;
  /** Deliveries that waited for a sink without spending an attempt. */
  waits: number;
}

/**
 * Attempts per message of one flow stream, in memory, keyed by stream sequence (with the time the
 * stream stored it, so a recreated stream's sequence numbers start afresh). Bounded: the least
 * recently seen are forgotten first (a message forgotten while it still waits starts counting
 * again, never fewer than maxDeliver attempts).
 */
export class AttemptLedger {
  readonly #max: number;
  readonly #records = new Map<number, AttemptRecord & { storedAtMs: number }>();

  constructor(max = 65_536) {
    this.#max = Math.max(1, max);
  }

  get size(): number {
    return this.#records.size;
  }

  /** What is known of `message` (zeros when nothing). */
  peek(message: Pick<BusMessage, 'streamSeq' | 'storedAt'>): AttemptRecord {
    const r = this.#records.get(message.streamSeq);
    return r && r.storedAtMs === message.storedAt.getTime()
      ? { attempts: r.attempts, waits: r.waits }
      : { attempts: 0, waits: 0 };
  }

  /** Counts one delivery of `message`, an attempt or a wait; returns the record after it. */
  count(message: Pick<BusMessage, 'streamSeq' | 'storedAt'>, attempt: boolean): AttemptRecord {
    const seen = this.peek(message);
    const next = {
      attempts: seen.attempts + (attempt ? 1 : 0),
      waits: seen.waits + (attempt ? 0 : 1),
      storedAtMs: message.storedAt.getTime(),
    };
    // Re-inserted: the Map's order is the order of last use.
    this.#records.delete(message.streamSeq);
    this.#records.set(message.streamSeq, next);
    if (this.#records.size > this.#max) {
      this.#records.delete(this.#records.keys().next().value!);
    }
    return { attempts: next.attempts, waits: next.waits };
  }

  /** The message is settled (acked or dead-lettered). */
  forget(message: Pick<BusMessage, 'streamSeq'>): void {
    this.#records.delete(message.streamSeq);
  }
}

/**
 * The attempt number of a failed delivery (see the header comment): attempts this worker counted,
 * and, for a failure before any sink, at least JetStream's delivery count minus the waits it saw.
 */
export function attemptsOf(record: AttemptRecord, deliveryCount: number, failedAtSink: boolean): number {
  return failedAtSink ? record.attempts : Math.max(record.attempts, deliveryCount - record.waits);
}

export function createProcessor(deps: ProcessorDeps): (message: BusMessage) => Promise<Outcome> {
  const { config, metrics } = deps;
  const transform = deps.transform ?? createTransform(config, deps.mapping, deps.xref);
  const now = deps.now ?? (() => new Date());
  const flowId = `${config.flow.namespace}/${config.flow.name}`;
  const policy = { initialMs: config.delivery.initialBackoffMs, maxMs: config.delivery.maxBackoffMs };
  const ledger = deps.attempts ?? new AttemptLedger();
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
    /** Every sink's failure of this delivery (none when it failed before the sinks). */
    let sinkErrors: unknown[] = [];
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
        sinkErrors = errors;
        if (errors.length > 0) throw decisiveError(errors);
        results.forEach((r, i) => {
          if (r.status === 'fulfilled' && r.value) receipts.push([deps.sinks[i]!.name, r.value]);
        });
      } catch (err) {
        return await fail(message, err, sinkErrors, log(), sourceMsgId, event);
      }
      await message.ack();
      // The attempts before this one (nothing to look up on the hot path: a first delivery).
      const before = message.deliveryCount > 1 ? ledger.peek(message) : undefined;
      if (before) ledger.forget(message);
      // A plain NATS publish that no stream stored is not a delivery (it has its own write outcome).
      // Most events carry no receipt: nothing is allocated for them.
      for (const s of deps.sinks) {
        if (!receipts.some(([n, r]) => n === s.name && r.outcome === 'published_unstored')) {
          metrics.delivered(s.name);
        }
      }
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
            attempt: (before?.attempts ?? 0) + 1,
            deliveries: message.deliveryCount,
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
    sinkErrors: readonly unknown[],
    log: Logger,
    sourceMsgId: string,
    event: EventHead | undefined,
  ): Promise<Outcome> {
    const classified = failureOf(err);
    // One reason and one message for the dead letter, the metric and the log, credentials masked.
    const failure: Failure = { ...classified, message: redact(classified.message) };
    metrics.failed(failure.reason);
    // Refused by sinks that are down or throttling, and by nothing else: no attempt spent.
    const waited = sinkErrors.length > 0 && sinkErrors.every(isSinkWait);
    const record = ledger.count(message, !waited);
    const attempt = attemptsOf(record, message.deliveryCount, sinkErrors.length > 0);
    // A transient failure that left its sink's circuit open: the sink is down now, not the message
    // at fault; it waits for the sink rather than being dead-lettered on its last attempt.
    const sinkDown =
      waited ||
      sinkErrors.some(
        (e) =>
          e instanceof SinkError &&
          !e.permanent &&
          deps.sinks.find((s) => s.name === e.sink)?.circuit?.() === 'open',
      );
    const lastAttempt = attempt >= config.delivery.maxDeliver && !sinkDown;
    const context = {
      reason: failure.reason,
      errorClass: failure.errorClass,
      errorCode: failure.code,
      attempt,
      deliveries: message.deliveryCount,
      maxDeliver: config.delivery.maxDeliver,
      ...(event ? { eventId: event.id } : {}),
    };
    if (failure.permanent || lastAttempt) {
      try {
        await deadLetter(message, failure, sourceMsgId, attempt);
        ledger.forget(message);
        metrics.deadLettered(failure.reason);
        log.error({ ...context, err: failure.message }, 'dead-lettered');
        return 'dead_lettered';
      } catch (dlqErr) {
        // Not handed on: keep the message and try again later.
        log.error({ ...context, err: failure.message, dlqErr }, 'dead-letter publish failed; will retry');
        return retry(message, failure, attempt, log, context);
      }
    }
    return retry(message, failure, attempt, log, context);
  }

  async function retry(
    message: BusMessage,
    failure: Failure,
    attempt: number,
    log: Logger,
    context: Record<string, unknown>,
  ): Promise<Outcome> {
    const delay = nakDelayMs(
      retryDelayMs(Math.max(1, attempt), policy, deps.random),
      failure.retryAfterMs,
      policy.maxMs,
    );
    await message.nak(delay);
    metrics.retried(failure.reason);
    log.warn({ ...context, err: failure.message, retryInMs: delay }, 'failed; retrying');
    return 'retried';
  }

  async function deadLetter(
    message: BusMessage,
    failure: Failure,
    sourceMsgId: string,
    attempts: number,
  ): Promise<void> {
    const headers = deadLetterHeaders({
      original: message.headers,
      error: {
        name: failure.errorClass,
        code: failure.code,
        message: failure.message,
        reason: failure.reason,
      },
      attempts,
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
