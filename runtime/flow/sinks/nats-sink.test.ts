import { describe, expect, it } from 'vitest';
import type { CanonicalEvent } from '../../../api/envelope.ts';
import { MemoryBus } from '../../bus/memory.ts';
import { CANONICAL_SINK_NAME } from '../../nats/canonical.ts';
import { SinkError } from '../errors.ts';
import {
  assertNatsSinkStreams,
  createNatsSink,
  NatsSinkNoStreamError,
  natsSinksWithoutStream,
  STREAM_LOOKUP_TTL_MS,
} from './nats-sink.ts';

const event = {
  id: 'e-1',
  type: 'dev.tally.order.v1',
  tallyentity: 'Order',
  subject: 'o-1',
  tallyversion: '1',
  traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
} as CanonicalEvent;
const body = new TextEncoder().encode('{}');

describe('createNatsSink', () => {
  it('publishes to the stream with Nats-Msg-Id = event id when one captures the subject', async () => {
    const bus = new MemoryBus();
    bus.addStream('C', ['canonical.>']);
    const sink = createNatsSink({ name: 'c', type: 'nats', subject: 'canonical.orders' }, bus);
    await sink.deliver(event, body);
    await sink.deliver(event, body);
    expect(bus.messages('C')).toHaveLength(1);
    expect(bus.messages('C')[0]!.headers).toMatchObject({
      'Nats-Msg-Id': 'e-1',
      'Tally-Idempotency-Key': 'Order:o-1:1',
      traceparent: event.traceparent,
    });
    expect(bus.sent).toEqual([]);
  });

  it('publishes plainly, measured as "core", when no stream captures it, and looks again after a while', async () => {
    const bus = new MemoryBus();
    let now = 0;
    const codes: string[] = [];
    const sink = createNatsSink(
      { name: 'c', type: 'nats', subject: 'canonical.orders' },
      bus,
      (code) => codes.push(code),
      () => now,
    );
    // Stored nowhere: the processor counts it apart from deliveries.
    expect(await sink.deliver(event, body)).toEqual({ outcome: 'published_unstored' });
    expect(bus.sent.map((m) => m.subject)).toEqual(['canonical.orders']);
    expect(codes).toEqual(['core']);
    bus.addStream('C', ['canonical.>']);
    await sink.deliver(event, body);
    expect(bus.messages('C')).toHaveLength(0); // still the remembered answer
    now += STREAM_LOOKUP_TTL_MS + 1;
    expect(await sink.deliver(event, body)).toBeUndefined();
    expect(bus.messages('C')).toHaveLength(1);
  });

  it('fails transiently while the bus is down', async () => {
    const bus = new MemoryBus();
    bus.down = true;
    const sink = createNatsSink({ name: 'c', type: 'nats', subject: 'x' }, bus);
    const err = await sink.deliver(event, body).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SinkError);
    expect(err).toMatchObject({ permanent: false, sink: 'c' });
  });

  it('refuses the built-in canonical sink when no stream captures its subject: never a plain publish', async () => {
    const bus = new MemoryBus();
    const codes: string[] = [];
    const sink = createNatsSink(
      { name: CANONICAL_SINK_NAME, type: 'nats', subject: 'tally.default.canonical.Order.web' },
      bus,
      (code) => codes.push(code),
    );
    const err = await sink.deliver(event, body).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SinkError);
    expect(err).toMatchObject({ permanent: false, sink: CANONICAL_SINK_NAME });
    expect((err as Error).message).toContain(
      'no JetStream stream captures tally.default.canonical.Order.web',
    );
    expect(bus.sent).toEqual([]);
    expect(codes).toEqual(['no_stream']);
    // Once the stream exists the next attempt stores the event: a refusal is not remembered.
    bus.addStream('C', ['tally.default.canonical.>']);
    await sink.deliver(event, body);
    expect(bus.messages('C')).toHaveLength(1);
    expect(codes).toEqual(['no_stream', 'stream']);
  });
});

describe('start-up checks of NATS sinks', () => {
  const canonical = {
    name: CANONICAL_SINK_NAME,
    type: 'nats',
    subject: 'tally.default.canonical.Order.web',
  } as const;
  const fanOut = { name: 'fan-out', type: 'nats', subject: 'orders.plain' } as const;

  it('lists the NATS sinks whose subject no stream captures', async () => {
    const bus = new MemoryBus();
    bus.addStream('C', ['tally.default.canonical.>']);
    const found = await natsSinksWithoutStream([canonical, fanOut], (s) => bus.streamFor(s));
    expect(found.map((s) => s.name)).toEqual(['fan-out']);
  });

  it('refuses a canonical sink with no stream, naming the flow, the sink, its subject and the fix', async () => {
    const bus = new MemoryBus();
    const err = await assertNatsSinkStreams('default/orders', [fanOut, canonical], (s) =>
      bus.streamFor(s),
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NatsSinkNoStreamError);
    expect(err).toMatchObject({
      name: 'NatsSinkNoStreamError',
      code: 'FLOW_SINK_NO_STREAM',
      sink: CANONICAL_SINK_NAME,
      subject: canonical.subject,
    });
    expect((err as Error).message).toMatch(
      /^flow default\/orders: sink tally-canonical publishes to tally\.default\.canonical\.Order\.web, which no JetStream stream captures.*: create the namespace's canonical stream/,
    );
  });

  it('accepts sinks that may publish plainly, and a canonical sink whose stream exists', async () => {
    const bus = new MemoryBus();
    bus.addStream('C', ['tally.default.canonical.>']);
    await expect(
      assertNatsSinkStreams('default/orders', [fanOut, canonical], (s) => bus.streamFor(s)),
    ).resolves.toBeUndefined();
  });
});
