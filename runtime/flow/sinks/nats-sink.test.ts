import { describe, expect, it } from 'vitest';
import type { CanonicalEvent } from '../../../api/envelope.ts';
import { MemoryBus } from '../../bus/memory.ts';
import { SinkError } from '../errors.ts';
import { createNatsSink, STREAM_LOOKUP_TTL_MS } from './nats-sink.ts';

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

  it('publishes plainly when no stream captures it, and looks again after a while', async () => {
    const bus = new MemoryBus();
    let now = 0;
    const sink = createNatsSink(
      { name: 'c', type: 'nats', subject: 'canonical.orders' },
      bus,
      undefined,
      () => now,
    );
    await sink.deliver(event, body);
    expect(bus.sent.map((m) => m.subject)).toEqual(['canonical.orders']);
    bus.addStream('C', ['canonical.>']);
    await sink.deliver(event, body);
    expect(bus.messages('C')).toHaveLength(0); // still the remembered answer
    now += STREAM_LOOKUP_TTL_MS + 1;
    await sink.deliver(event, body);
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
});
