// The JetStream bus's pull consumer against a real nats-server: the bound on messages in flight,
// a consumer deleted and created again under it, and a stop that hands back what it pulled.
import { setTimeout as sleep } from 'node:timers/promises';
import { AckPolicy, type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { connectJetStreamBus } from '../../runtime/bus/jetstream.ts';
import type { Bus, BusMessage, ConsumerHandle } from '../../runtime/bus/types.ts';
import { type NatsServerHandle, startNatsServer } from '../harness/nats.ts';
import { waitFor } from './support/flow-worker.ts';

const STREAM = 'PULL';
const CONSUMER = 'worker';
let nats: NatsServerHandle;
let nc: NatsConnection;
let jsm: JetStreamManager;
let bus: Bus;
let consumer: ConsumerHandle | undefined;

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  jsm = await jetstreamManager(nc);
  bus = await connectJetStreamBus({
    servers: [nats.url],
    name: 'bus-pull test',
    logger: pino({ level: 'silent' }),
    reconnectWaitMs: 200,
  });
});

afterAll(async () => {
  await bus?.close();
  await nc?.close();
  await nats?.stop();
});

beforeEach(async () => {
  await jsm.streams.add({ name: STREAM, subjects: ['pull.>'] });
  await addConsumer();
});

afterEach(async () => {
  await consumer?.stop(0);
  consumer = undefined;
  await jsm.streams.delete(STREAM);
});

const addConsumer = () =>
  jsm.consumers.add(STREAM, { durable_name: CONSUMER, ack_policy: AckPolicy.Explicit, ack_wait: 30e9 });

async function publish(from: number, count: number): Promise<void> {
  const js = jetstream(nc);
  await Promise.all(
    Array.from({ length: count }, (_, i) =>
      js.publish('pull.x', String(from + i), { msgID: `m-${from + i}` }),
    ),
  );
}

const text = (m: BusMessage) => Buffer.from(m.data).toString('utf8');
const ackPending = async () => (await jsm.consumers.info(STREAM, CONSUMER)).num_ack_pending;

/** Consumes with a handler that records each message and acks it. */
async function collect(into: Set<string>, maxInFlight: number): Promise<ConsumerHandle> {
  return bus.consume(
    STREAM,
    CONSUMER,
    async (m) => {
      into.add(text(m));
      await m.ack();
    },
    { maxInFlight },
  );
}

describe('JetStream pull consumer', () => {
  it('never holds more than maxInFlight messages and settles every one', async () => {
    await publish(0, 300);
    let holding = 0;
    let most = 0;
    const seen = new Set<string>();
    consumer = await bus.consume(
      STREAM,
      CONSUMER,
      async (m) => {
        holding++;
        most = Math.max(most, holding);
        await sleep(Math.random() * 3);
        seen.add(text(m));
        holding--;
        await m.ack();
      },
      { maxInFlight: 8 },
    );
    await waitFor('300 messages', () => seen.size === 300, { timeoutMs: 20_000 });
    expect(most).toBeLessThanOrEqual(8);
    expect(most).toBeGreaterThan(1);
    await waitFor('no acks pending', async () => (await ackPending()) === 0);
    const info = await jsm.consumers.info(STREAM, CONSUMER);
    expect(info.num_pending).toBe(0);
    expect(info.num_redelivered).toBe(0);
  });

  it('gets each message once when messages trickle in while its requests wait, partly filled', async () => {
    // Requests end half-filled (timeouts) and new ones of other sizes follow: if the consumer ever
    // counted a message against the wrong request, slots would go wrong and messages would be
    // handed back (redelivered) for nothing.
    const counts = new Map<string, number>();
    const attempts: number[] = [];
    consumer = await bus.consume(
      STREAM,
      CONSUMER,
      async (m) => {
        counts.set(text(m), (counts.get(text(m)) ?? 0) + 1);
        attempts.push(m.deliveryCount);
        await sleep(m.streamSeq % 3 === 0 ? 15 : 0);
        await m.ack();
      },
      { maxInFlight: 8 },
    );
    for (let i = 0; i < 40; i++) {
      await publish(i * 3, 3);
      await sleep(20);
    }
    await waitFor('120 messages', () => counts.size === 120, { timeoutMs: 15_000 });
    await waitFor('no acks pending', async () => (await ackPending()) === 0);
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
    expect(attempts.every((a) => a === 1)).toBe(true);
    expect((await jsm.consumers.info(STREAM, CONSUMER)).num_redelivered).toBe(0);
  });

  it('keeps consuming after its consumer is deleted and created again', async () => {
    const seen = new Set<string>();
    consumer = await collect(seen, 4);
    await publish(0, 20);
    await waitFor('20 messages', () => seen.size === 20);
    await jsm.consumers.delete(STREAM, CONSUMER);
    await waitFor('the consumer to notice', () => !consumer!.running());
    await addConsumer();
    await publish(20, 20);
    await waitFor('40 messages', () => seen.size === 40, { timeoutMs: 15_000 });
    expect(consumer.running()).toBe(true);
  });

  it('hands back (nak) what it pulled but did not start when stopped, and waits for what it started', async () => {
    await publish(0, 50);
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const started: string[] = [];
    const acked: string[] = [];
    consumer = await bus.consume(
      STREAM,
      CONSUMER,
      async (m) => {
        started.push(text(m));
        await gate;
        await m.ack();
        acked.push(text(m));
      },
      { maxInFlight: 5 },
    );
    await waitFor('5 started', () => started.length === 5);
    const stopping = consumer.stop(10_000);
    await sleep(50);
    release();
    await stopping;
    expect(acked.sort()).toEqual(started.sort());
    // Nothing is left waiting for ack_wait (30 s): what was pulled and not started went back.
    await waitFor('no acks pending', async () => (await ackPending()) === 0, { timeoutMs: 5_000 });
    expect((await jsm.consumers.info(STREAM, CONSUMER)).ack_floor.stream_seq).toBe(5);
    // And the next worker gets every other message.
    const rest = new Set<string>();
    consumer = await collect(rest, 5);
    await waitFor('the other 45', () => rest.size === 45);
    expect([...rest, ...acked].sort()).toEqual(Array.from({ length: 50 }, (_, i) => String(i)).sort());
  });
});
