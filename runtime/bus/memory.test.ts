import { describe, expect, it } from 'vitest';
import { BusError } from './errors.ts';
import { MemoryBus, type MemoryConsumer, subjectMatches } from './memory.ts';

describe('subjectMatches', () => {
  it.each([
    ['a.b', 'a.b', true],
    ['a.*', 'a.b', true],
    ['a.*', 'a.b.c', false],
    ['a.>', 'a.b.c', true],
    ['a.>', 'a', false],
    ['a.b', 'a.c', false],
    ['*.b', 'a.b', true],
  ])('%s ~ %s = %s', (filter, subject, expected) => {
    expect(subjectMatches(filter, subject)).toBe(expected);
  });
});

describe('MemoryBus', () => {
  const data = new TextEncoder().encode('{}');

  it('stores once per msgId and says when a publish was a duplicate', async () => {
    const bus = new MemoryBus();
    bus.addStream('S', ['in.>']);
    expect(await bus.publish('in.0', data, { msgId: 'a' })).toEqual({
      stream: 'S',
      seq: 1,
      duplicate: false,
    });
    expect(await bus.publish('in.0', data, { msgId: 'a' })).toEqual({ stream: 'S', seq: 1, duplicate: true });
    expect(bus.messages('S')).toHaveLength(1);
    expect(bus.messages('S')[0]!.headers['Nats-Msg-Id']).toBe('a');
  });

  it('refuses subjects no stream captures, and everything while down', async () => {
    const bus = new MemoryBus();
    await expect(bus.publish('nowhere', data)).rejects.toMatchObject({ code: 'BUS_NO_STREAM' });
    bus.addStream('S', ['in.>']);
    bus.down = true;
    await expect(bus.publish('in.0', data)).rejects.toBeInstanceOf(BusError);
    await expect(bus.send('x', data)).rejects.toMatchObject({ code: 'BUS_UNAVAILABLE' });
  });

  it('redelivers a nak with a higher delivery count, up to maxDeliver', async () => {
    const bus = new MemoryBus({ maxDeliver: 3 });
    bus.addStream('S', ['in.>']);
    await bus.publish('in.0', data, { msgId: 'x' });
    const seen: number[] = [];
    const consumer = (await bus.consume(
      'S',
      'c',
      async (m) => {
        seen.push(m.deliveryCount);
        await m.nak(1);
      },
      { maxInFlight: 1 },
    )) as MemoryConsumer;
    await consumer.idle();
    expect(seen).toEqual([1, 2, 3]);
    await consumer.stop(0);
  });
});
