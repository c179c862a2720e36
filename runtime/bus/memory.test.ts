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

describe('MemoryBus.replay', () => {
  const enc = (s: string) => new TextEncoder().encode(s);

  it('reads the stored messages of the filters in order, says when caught up, then reads new ones', async () => {
    const bus = new MemoryBus();
    bus.addStream('S', ['in.>']);
    await bus.publish('in.a', enc('1'));
    await bus.publish('in.b', enc('2'));
    await bus.publish('in.a', enc('3'));
    await bus.publish('in.b', enc('4'));
    const seen: number[] = [];
    const replay = await bus.replay('S', ['in.a'], async (m) => {
      await new Promise((r) => setTimeout(r, 1));
      seen.push(m.streamSeq);
    });
    await replay.caughtUp;
    expect(seen).toEqual([1, 3]);
    await bus.publish('in.b', enc('5'));
    await bus.publish('in.a', enc('6'));
    await new Promise((r) => setTimeout(r, 20));
    expect(seen).toEqual([1, 3, 6]);
    await replay.stop();
    expect(replay.running()).toBe(false);
    await bus.publish('in.a', enc('7'));
    await new Promise((r) => setTimeout(r, 10));
    expect(seen).toEqual([1, 3, 6]);
  });

  it('is caught up at once on a stream holding nothing, and throws NOT_FOUND for a missing stream', async () => {
    const bus = new MemoryBus();
    bus.addStream('S', ['in.>']);
    const replay = await bus.replay('S', ['in.>'], () => {});
    await replay.caughtUp;
    await replay.stop();
    await expect(bus.replay('T', ['x'], () => {})).rejects.toBeInstanceOf(BusError);
  });

  it('stops on abort and goes on past a handler that throws', async () => {
    const bus = new MemoryBus();
    bus.addStream('S', ['in.>']);
    await bus.publish('in.a', enc('1'));
    await bus.publish('in.a', enc('2'));
    const seen: number[] = [];
    const abort = new AbortController();
    const replay = await bus.replay(
      'S',
      ['in.>'],
      (m) => {
        seen.push(m.streamSeq);
        if (m.streamSeq === 1) throw new Error('boom');
      },
      { signal: abort.signal },
    );
    await replay.caughtUp;
    expect(seen).toEqual([1, 2]);
    abort.abort();
    await new Promise((r) => setTimeout(r, 0));
    expect(replay.running()).toBe(false);
  });
});
