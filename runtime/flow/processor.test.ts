import { readFileSync } from 'node:fs';
import * as yaml from 'js-yaml';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type CanonicalEvent, canonicalEventSchema, idempotencyKey } from '../../api/envelope.ts';
import { MemoryBus, type MemoryConsumer } from '../bus/memory.ts';
import type { BusMessage } from '../bus/types.ts';
import { compileMapping } from '../mapping/index.ts';
import { createFlowMetrics } from '../telemetry/metrics.ts';
import { DLQ_HEADERS } from './dead-letters/headers.ts';
import { FlowErrorCode, SinkError } from './errors.ts';
import { AttemptLedger, attemptsOf, createProcessor, type Outcome } from './processor.ts';
import type { Sink } from './sinks/types.ts';
import type { Transform } from './transform.ts';

const example = yaml.load(
  readFileSync(new URL('../../examples/shopify-orders/mapping.yaml', import.meta.url), 'utf8'),
) as { spec: { expression: string; tests: { input: Record<string, unknown> }[] } };
const order = example.spec.tests[0]!.input;

const mapping = compileMapping({
  name: 'shop/shopify-order',
  generation: 2,
  entity: 'Order',
  expression: example.spec.expression,
  businessKey: 'orderId',
  lookups: { orderStatus: { values: { paid: 'confirmed', pending: 'pending' }, default: 'pending' } },
  limits: { timeoutMs: 1_000, maxDepth: 500 },
});

const config = {
  flow: { namespace: 'shop', name: 'shopify-orders', channel: 'shopify-us', entity: 'Order' as const },
  mapping: mapping.definition,
  nats: {
    servers: ['nats://unused'],
    stream: 'FLOW',
    ingestSubject: 'in.0',
    consumer: 'worker',
    deadLetterSubject: 'dlq',
    deadLetterStream: 'DLQ',
    stateBucket: 'state',
  },
  delivery: { maxDeliver: 3, initialBackoffMs: 5, maxBackoffMs: 20, ackWaitMs: 30_000 },
};

type Script = (attempt: number) => Error | undefined;

/** A sink that records the events it got (the bytes it would send) and fails as scripted. */
function fakeSink(name: string, script: Script = () => undefined): Sink & { got: CanonicalEvent[] } {
  const got: CanonicalEvent[] = [];
  let attempt = 0;
  return {
    name,
    type: 'http',
    got,
    async deliver(event, body) {
      const err = script(++attempt);
      if (err) throw err;
      const sent = JSON.parse(Buffer.from(body).toString('utf8')) as CanonicalEvent;
      expect(sent).toMatchObject(event);
      got.push(sent);
      return undefined;
    },
    async close() {},
  };
}

const transient = (sink: string) =>
  new SinkError(`${sink} answered 500`, {
    sink,
    permanent: false,
    status: 500,
    code: FlowErrorCode.SinkUnavailable,
  });
const permanent = (sink: string) =>
  new SinkError(`${sink} answered 422`, {
    sink,
    permanent: true,
    status: 422,
    code: FlowErrorCode.SinkRejected,
  });

describe('createProcessor', () => {
  let bus: MemoryBus;
  let consumer: MemoryConsumer | undefined;
  let outcomes: Outcome[];
  let metrics: ReturnType<typeof createFlowMetrics>;

  beforeEach(() => {
    bus = new MemoryBus({ maxDeliver: config.delivery.maxDeliver + 1 });
    bus.addStream('FLOW', ['in.>']);
    bus.addStream('DLQ', ['dlq']);
    outcomes = [];
    metrics = createFlowMetrics(
      { flow: 'shop/shopify-orders', channel: 'shopify-us' },
      { processMetrics: false },
    );
  });
  afterEach(async () => {
    await consumer?.stop(0);
    consumer = undefined;
  });

  async function run(
    sinks: Sink[],
    payloads: { data: string; msgId: string }[],
    o: { transform?: Transform; logs?: Record<string, unknown>[] } = {},
  ) {
    const logs = o.logs;
    const process = createProcessor({
      config,
      mapping,
      sinks,
      bus,
      metrics,
      ...(o.transform ? { transform: o.transform } : {}),
      logger: logs
        ? pino({ level: 'debug' }, { write: (l: string) => void logs.push(JSON.parse(l)) })
        : pino({ level: 'silent' }),
      now: () => new Date('2026-11-20T16:20:00Z'),
      random: () => 0.5,
      deadLetterRetryMs: [1],
    });
    for (const p of payloads) {
      await bus.publish('in.0', Buffer.from(p.data), {
        msgId: p.msgId,
        headers: {
          traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
          'x-shopify-topic': 'orders/create',
        },
      });
    }
    consumer = (await bus.consume(
      'FLOW',
      'worker',
      async (m) => {
        outcomes.push(await process(m));
      },
      { maxInFlight: 4 },
    )) as MemoryConsumer;
    await consumer.idle();
  }

  const metric = async (name: string) =>
    (await metrics.registry.getSingleMetricAsString(name)).split('\n').filter((l) => !l.startsWith('#'));

  it('delivers one canonical event to every sink and acks', async () => {
    const erp = fakeSink('erp');
    const nats = fakeSink('canonical');
    await run([erp, nats], [{ data: JSON.stringify(order), msgId: 'wh-1' }]);
    expect(outcomes).toEqual(['delivered']);
    expect(bus.settlements).toEqual([{ seq: 1, stream: 'FLOW', outcome: 'ack' }]);
    const [event] = erp.got;
    expect(nats.got).toEqual(erp.got);
    expect(canonicalEventSchema.parse(event)).toEqual(event);
    expect(event).toMatchObject({
      subject: 'shopify-5123456789012',
      tallysourceid: 'wh-1',
      tallymappingversion: '2',
    });
    expect(idempotencyKey(event!)).toBe('Order:shopify-5123456789012:1795191302000');
    expect(event!.traceparent).toMatch(/^00-0af7651916cd43dd8448eb211c80319c-/);
    expect(await metric('tally_orders_total')).toEqual([
      'tally_orders_total{channel="shopify-us",currency="USD"} 1',
    ]);
    expect(await metric('tally_order_value_total')).toEqual([
      'tally_order_value_total{channel="shopify-us",currency="USD"} 43.22',
    ]);
    expect(await metric('tally_flow_messages_delivered_total')).toHaveLength(2);
  });

  it('dead-letters a payload that is not JSON, with the error record, then terms it', async () => {
    await run([fakeSink('erp')], [{ data: '{not json', msgId: 'wh-2' }]);
    expect(outcomes).toEqual(['dead_lettered']);
    expect(bus.settlements).toEqual([{ seq: 1, stream: 'FLOW', outcome: 'term' }]);
    const [dead] = bus.messages('DLQ');
    expect(Buffer.from(dead!.data).toString()).toBe('{not json');
    expect(dead!.headers).toMatchObject({
      'Nats-Msg-Id': 'dlq:wh-2',
      'x-shopify-topic': 'orders/create',
      [DLQ_HEADERS.errorClass]: 'PayloadError',
      [DLQ_HEADERS.errorCode]: 'FLOW_INVALID_JSON',
      [DLQ_HEADERS.errorReason]: 'invalid_json',
      [DLQ_HEADERS.attempts]: '1',
      [DLQ_HEADERS.flow]: 'shop/shopify-orders',
      [DLQ_HEADERS.sourceMsgId]: 'wh-2',
      [DLQ_HEADERS.deadLetteredAt]: '2026-11-20T16:20:00.000Z',
    });
  });

  it('dead-letters a payload the mapping rejects, without touching the sinks', async () => {
    const erp = fakeSink('erp');
    await run([erp], [{ data: JSON.stringify({ id: 1 }), msgId: 'wh-3' }]);
    expect(outcomes).toEqual(['dead_lettered']);
    expect(erp.got).toEqual([]);
    expect(bus.messages('DLQ')[0]!.headers[DLQ_HEADERS.errorReason]).toMatch(/^mapping_/);
  });

  it('retries a transient sink failure with backoff and delivers on a later attempt', async () => {
    const erp = fakeSink('erp', (n) => (n <= 2 ? transient('erp') : undefined));
    const other = fakeSink('canonical');
    await run([erp, other], [{ data: JSON.stringify(order), msgId: 'wh-4' }]);
    expect(outcomes).toEqual(['retried', 'retried', 'delivered']);
    expect(bus.settlements.map((s) => [s.outcome, s.delayMs])).toEqual([
      ['nak', 5],
      ['nak', 10],
      ['ack', undefined],
    ]);
    expect(erp.got).toHaveLength(1);
    // Every attempt re-sends to every sink; sinks dedupe on the (identical) event.
    expect(other.got).toHaveLength(3);
    expect(new Set(other.got.map((e) => e.id)).size).toBe(1);
    expect(await metric('tally_flow_messages_retried_total')).toEqual([
      'tally_flow_messages_retried_total{flow="shop/shopify-orders",channel="shopify-us",reason="sink_unavailable"} 2',
    ]);
  });

  it('dead-letters after the last attempt', async () => {
    await run([fakeSink('erp', () => transient('erp'))], [{ data: JSON.stringify(order), msgId: 'wh-5' }]);
    expect(outcomes).toEqual(['retried', 'retried', 'dead_lettered']);
    expect(bus.messages('DLQ')[0]!.headers).toMatchObject({
      [DLQ_HEADERS.attempts]: '3',
      [DLQ_HEADERS.errorReason]: 'sink_unavailable',
      [DLQ_HEADERS.errorClass]: 'SinkError',
    });
  });

  it('dead-letters at once when any sink rejects permanently', async () => {
    await run(
      [fakeSink('erp', () => transient('erp')), fakeSink('other', () => permanent('other'))],
      [{ data: JSON.stringify(order), msgId: 'wh-6' }],
    );
    expect(outcomes).toEqual(['dead_lettered']);
    expect(bus.messages('DLQ')[0]!.headers[DLQ_HEADERS.errorReason]).toBe('sink_rejected');
  });

  it('never dead-letters while the sink is down (circuit open) or throttling; waits as the sink asks', async () => {
    const open = (sink: string) =>
      new SinkError(`${sink}: circuit open`, {
        sink,
        permanent: false,
        code: FlowErrorCode.SinkCircuitOpen,
        retryAfterMs: 15,
      });
    const throttled = (sink: string) =>
      new SinkError(`${sink} answered 429`, {
        sink,
        permanent: false,
        status: 429,
        code: FlowErrorCode.SinkThrottled,
        retryAfterMs: 12,
      });
    // maxDeliver is 3: attempt 3 would have dead-lettered a message that merely failed.
    const script = [open, throttled, open];
    const erp = fakeSink('erp', (n) => script[n - 1]?.('erp'));
    await run([erp], [{ data: JSON.stringify(order), msgId: 'wh-8' }]);
    expect(outcomes).toEqual(['retried', 'retried', 'retried', 'delivered']);
    expect(bus.messages('DLQ')).toHaveLength(0);
    // The wait the sink asked for wins over the backoff, which does not grow with waits (5 here).
    expect(bus.settlements.map((s) => s.delayMs)).toEqual([15, 12, 15, undefined]);
    expect(await metric('tally_flow_messages_retried_total')).toEqual([
      'tally_flow_messages_retried_total{flow="shop/shopify-orders",channel="shopify-us",reason="sink_circuit_open"} 2',
      'tally_flow_messages_retried_total{flow="shop/shopify-orders",channel="shopify-us",reason="sink_throttled"} 1',
    ]);
  });

  it('does not dead-letter a transient failure of a sink whose circuit it left open', async () => {
    let state: 'closed' | 'open' = 'closed';
    const erp = {
      ...fakeSink('erp', (n) => {
        if (n >= 3) state = 'open'; // this failure tripped the breaker: the sink is down, not the event
        return n <= 3 ? transient('erp') : undefined;
      }),
      circuit: () => state,
    };
    await run([erp], [{ data: JSON.stringify(order), msgId: 'wh-9' }]);
    expect(outcomes).toEqual(['retried', 'retried', 'retried', 'delivered']);
    expect(bus.messages('DLQ')).toHaveLength(0);
  });

  it('observes the end-to-end latency from the ingest header', async () => {
    const process = createProcessor({
      config,
      mapping,
      sinks: [fakeSink('erp')],
      bus,
      metrics,
      logger: pino({ level: 'silent' }),
      now: () => new Date('2026-11-20T16:20:02.500Z'),
    });
    await bus.publish('in.0', Buffer.from(JSON.stringify(order)), {
      msgId: 'wh-10',
      headers: { 'Tally-Received-At': '2026-11-20T16:20:00.000Z' },
    });
    consumer = (await bus.consume('FLOW', 'worker', async (m) => void (await process(m)), {
      maxInFlight: 1,
    })) as MemoryConsumer;
    await consumer.idle();
    const lines = await metric('tally_flow_end_to_end_seconds');
    expect(lines).toContain(
      'tally_flow_end_to_end_seconds_sum{flow="shop/shopify-orders",channel="shopify-us"} 2.5',
    );
    expect(lines).toContain(
      'tally_flow_end_to_end_seconds_bucket{le="5",flow="shop/shopify-orders",channel="shopify-us"} 1',
    );
  });

  it('keeps the message (nak, no term) when the dead-letter publish fails', async () => {
    bus.streams.delete('DLQ');
    await run([fakeSink('erp')], [{ data: 'nope', msgId: 'wh-7' }]);
    // Every delivery (up to the consumer's backstop) fails to dead-letter; nothing is termed or acked.
    expect(outcomes).toEqual(['retried', 'retried', 'retried', 'retried']);
    expect(bus.settlements.every((s) => s.outcome === 'nak')).toBe(true);
  });
  /** A bus that redelivers as often as asked (the consumer has no max_deliver, as in production). */
  const unboundedBus = () => {
    bus = new MemoryBus({ maxDeliver: 1_000 });
    bus.addStream('FLOW', ['in.>']);
    bus.addStream('DLQ', ['dlq']);
  };
  const circuitOpen = (sink: string) =>
    new SinkError(`${sink}: circuit open`, {
      sink,
      permanent: false,
      code: FlowErrorCode.SinkCircuitOpen,
      retryAfterMs: 1,
    });

  it('spends no attempt while the sink is down: after 12 refused deliveries the next failures still have the whole budget', async () => {
    unboundedBus();
    // maxDeliver is 3. An outage (the circuit refuses 12 deliveries), then a flaky recovery: two
    // real requests fail, the third is taken. JetStream's delivery count is 15 by then.
    const erp = fakeSink('erp', (n) =>
      n <= 12 ? circuitOpen('erp') : n <= 14 ? transient('erp') : undefined,
    );
    const logs: Record<string, unknown>[] = [];
    await run([erp], [{ data: JSON.stringify(order), msgId: 'wh-11' }], { logs });
    expect(outcomes.filter((o) => o === 'retried')).toHaveLength(14);
    expect(outcomes.at(-1)).toBe('delivered');
    expect(bus.messages('DLQ')).toHaveLength(0);
    expect(erp.got).toHaveLength(1);
    // The backoff after the first real failure is initialBackoff (5), not the 15th delivery's.
    expect(bus.settlements.slice(12).map((s) => s.delayMs)).toEqual([5, 10, undefined]);
    expect(logs.find((l) => l.msg === 'delivered')).toMatchObject({ attempt: 3, deliveries: 15 });
  });

  it('dead-letters after maxDeliver attempts that reached the sink, however many waits came before', async () => {
    unboundedBus();
    const erp = fakeSink('erp', (n) => (n <= 5 ? circuitOpen('erp') : transient('erp')));
    await run([erp], [{ data: JSON.stringify(order), msgId: 'wh-12' }]);
    expect(outcomes).toEqual([...Array(7).fill('retried'), 'dead_lettered']);
    expect(bus.messages('DLQ')[0]!.headers).toMatchObject({
      [DLQ_HEADERS.attempts]: '3',
      [DLQ_HEADERS.errorReason]: 'sink_unavailable',
    });
  });

  it('counts a delivery that one sink refused while down when another sink failed for real', async () => {
    unboundedBus();
    await run(
      [fakeSink('down', () => circuitOpen('down')), fakeSink('flaky', () => transient('flaky'))],
      [{ data: JSON.stringify(order), msgId: 'wh-13' }],
    );
    expect(outcomes).toEqual(['retried', 'retried', 'dead_lettered']);
  });

  it('still dead-letters an event waiting for a cross-reference after maxDeliver attempts', async () => {
    unboundedBus();
    const waiting: Transform = async () => ({
      ok: false,
      failure: {
        reason: 'waiting_for_xref',
        permanent: false,
        errorClass: 'XrefMissingError',
        code: 'XREF_MISSING',
        message: 'waiting for cross-reference Order shopify-1 -> netsuite',
      },
    });
    await run([fakeSink('erp')], [{ data: JSON.stringify(order), msgId: 'wh-14' }], { transform: waiting });
    expect(outcomes).toEqual(['retried', 'retried', 'dead_lettered']);
    expect(bus.messages('DLQ')[0]!.headers).toMatchObject({
      [DLQ_HEADERS.attempts]: '3',
      [DLQ_HEADERS.errorReason]: 'waiting_for_xref',
    });
  });

  it('masks credentials in the dead letter and the log line of a failure', async () => {
    const token = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0YWxseSJ9.c2lnbmF0dXJl';
    const echo = new SinkError(
      `erp answered 400: {"headers":{"authorization":"Bearer ${token}"},"note":"password=hunter22"}`,
      { sink: 'erp', permanent: true, status: 400, code: FlowErrorCode.SinkRejected },
    );
    const logs: Record<string, unknown>[] = [];
    await run([fakeSink('erp', () => echo)], [{ data: JSON.stringify(order), msgId: 'wh-15' }], { logs });
    const message = bus.messages('DLQ')[0]!.headers[DLQ_HEADERS.errorMessage]!;
    expect(message).toBe(
      'erp answered 400: {"headers":{"authorization":"[redacted]"},"note":"password=[redacted]"}',
    );
    const line = logs.find((l) => l.msg === 'dead-lettered');
    expect(line).toMatchObject({ reason: 'sink_rejected', err: message });
    expect(JSON.stringify(logs)).not.toMatch(/eyJhbGci|hunter22/);
  });
});

describe('AttemptLedger', () => {
  const at = new Date('2026-11-20T16:20:00Z');
  const m = (streamSeq: number, storedAt = at) => ({ streamSeq, storedAt });

  it('counts attempts and waits per message until it is forgotten', () => {
    const ledger = new AttemptLedger();
    expect(ledger.count(m(1), false)).toEqual({ attempts: 0, waits: 1 });
    expect(ledger.count(m(1), true)).toEqual({ attempts: 1, waits: 1 });
    expect(ledger.count(m(2), true)).toEqual({ attempts: 1, waits: 0 });
    ledger.forget(m(1));
    expect(ledger.peek(m(1))).toEqual({ attempts: 0, waits: 0 });
    expect(ledger.size).toBe(1);
  });

  it('starts afresh for a recreated stream (same sequence, another stored time)', () => {
    const ledger = new AttemptLedger();
    ledger.count(m(1), true);
    expect(ledger.peek(m(1, new Date(at.getTime() + 1)))).toEqual({ attempts: 0, waits: 0 });
  });

  it('forgets the least recently seen message first when full', () => {
    const ledger = new AttemptLedger(2);
    ledger.count(m(1), true);
    ledger.count(m(2), true);
    ledger.count(m(1), true); // 1 is now the most recent
    ledger.count(m(3), true);
    expect(ledger.size).toBe(2);
    expect(ledger.peek(m(2))).toEqual({ attempts: 0, waits: 0 });
    expect(ledger.peek(m(1))).toEqual({ attempts: 2, waits: 0 });
  });

  it('takes deliveries it did not see as waits for sink failures, as attempts before any sink', () => {
    // Seen here: one attempt, two waits, of 10 deliveries (the others on another replica).
    const record = { attempts: 1, waits: 2 };
    expect(attemptsOf(record, 10, true)).toBe(1);
    expect(attemptsOf(record, 10, false)).toBe(8);
    expect(attemptsOf({ attempts: 4, waits: 0 }, 3, false)).toBe(4);
  });
});

describe('createProcessor heartbeat', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  /** A message that counts its heartbeats and settlements. */
  function countingMessage(seq: number) {
    const counts = { inProgress: 0, ack: 0 };
    const message: BusMessage = {
      subject: 'in.0',
      data: Buffer.from(JSON.stringify(order)),
      headers: { 'Nats-Msg-Id': `hb-${seq}` },
      deliveryCount: 1,
      streamSeq: seq,
      storedAt: new Date('2026-11-20T16:20:00Z'),
      ack: async () => void counts.ack++,
      nak: async () => {},
      term: async () => {},
      inProgress: () => void counts.inProgress++,
    };
    return { message, counts };
  }

  it('tells the server every message in progress is alive every ackWait/3, and stops once settled', async () => {
    vi.useFakeTimers();
    let release!: () => void;
    const slow = new Promise<void>((r) => {
      release = r;
    });
    const sink: Sink = {
      name: 'slow',
      type: 'http',
      deliver: () => slow.then(() => undefined),
      async close() {},
    };
    const process = createProcessor({
      config: { ...config, delivery: { ...config.delivery, ackWaitMs: 3_000 } },
      mapping,
      sinks: [sink],
      bus: new MemoryBus(),
      metrics: createFlowMetrics(
        { flow: 'shop/shopify-orders', channel: 'shopify-us' },
        { processMetrics: false },
      ),
      logger: pino({ level: 'silent' }),
    });
    const a = countingMessage(1);
    const b = countingMessage(2);
    const done = Promise.all([process(a.message), process(b.message)]);
    await vi.advanceTimersByTimeAsync(2_500);
    expect(a.counts.inProgress).toBe(2);
    expect(b.counts.inProgress).toBe(2);
    release();
    expect(await done).toEqual(['delivered', 'delivered']);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(a.counts).toEqual({ inProgress: 2, ack: 1 });
    expect(b.counts).toEqual({ inProgress: 2, ack: 1 });
    expect(vi.getTimerCount()).toBe(0);
  });
});
