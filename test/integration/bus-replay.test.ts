// The JetStream bus's replay() against a real nats-server: stored messages of the filters from the
// start, in order, caught up when past the stream's last sequence at start (also when that message
// is of another subject, or the stream is empty), then new ones; stop, abort and a missing stream.
import { setTimeout as sleep } from 'node:timers/promises';
import { type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BusError, BusErrorCode } from '../../runtime/bus/errors.ts';
import { connectJetStreamBus } from '../../runtime/bus/jetstream.ts';
import type { Bus, ReplayHandle, ReplayMessage } from '../../runtime/bus/types.ts';
import { type NatsServerHandle, startNatsServer } from '../harness/nats.ts';
import { waitFor } from './support/flow-worker.ts';

const STREAM = 'REPLAY';
let nats: NatsServerHandle;
let nc: NatsConnection;
let jsm: JetStreamManager;
let bus: Bus;
let replay: ReplayHandle | undefined;

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  jsm = await jetstreamManager(nc);
  bus = await connectJetStreamBus({
    servers: [nats.url],
    name: 'bus-replay test',
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
  await jsm.streams.add({ name: STREAM, subjects: ['rp.>'] });
});

afterEach(async () => {
  await replay?.stop();
  replay = undefined;
  await jsm.streams.delete(STREAM);
});

async function publish(subject: string, body: string): Promise<number> {
  return (await jetstream(nc).publish(subject, body)).seq;
}

describe('JetStream bus replay', () => {
  it('reads what is stored, in stream order, filtered; caught up past a last message of another subject; then new ones', async () => {
    for (let i = 1; i <= 200; i++) await publish(i % 2 ? 'rp.a' : 'rp.b', `m${i}`);
    await publish('rp.c', 'last');
    const seen: ReplayMessage[] = [];
    replay = await bus.replay(STREAM, ['rp.a', 'rp.b'], async (m) => {
      seen.push(m);
    });
    await replay.caughtUp;
    expect(seen.map((m) => m.streamSeq)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    expect(new TextDecoder().decode(seen[0]!.data)).toBe('m1');
    expect(seen[0]!.subject).toBe('rp.a');
    expect(seen[0]!.storedAt).toBeInstanceOf(Date);
    await publish('rp.c', 'other');
    const seq = await publish('rp.b', 'new');
    await waitFor('the new message', async () => (seen.at(-1)?.streamSeq === seq ? true : undefined));
    expect(seen).toHaveLength(201);
    expect(replay.running()).toBe(true);
  });

  it('is caught up on an empty stream and on one holding nothing of the filters', async () => {
    replay = await bus.replay(STREAM, ['rp.a'], () => {});
    await replay.caughtUp;
    await replay.stop();
    await publish('rp.b', 'x');
    const seen: number[] = [];
    replay = await bus.replay(STREAM, ['rp.a'], (m) => void seen.push(m.streamSeq));
    await replay.caughtUp;
    expect(seen).toEqual([]);
  });

  it('stops reading on stop() and on abort', async () => {
    const seen: number[] = [];
    const abort = new AbortController();
    replay = await bus.replay(STREAM, ['rp.>'], (m) => void seen.push(m.streamSeq), { signal: abort.signal });
    await publish('rp.a', '1');
    await waitFor('first message', async () => (seen.length === 1 ? true : undefined));
    abort.abort();
    await waitFor('stopped', async () => (!replay!.running() ? true : undefined));
    await publish('rp.a', '2');
    await sleep(200);
    expect(seen).toEqual([1]);
  });

  it('throws NOT_FOUND for a stream that does not exist', async () => {
    const err = await bus.replay('NOPE', ['nope.>'], () => {}).catch((e) => e);
    expect(err).toBeInstanceOf(BusError);
    expect((err as BusError).code).toBe(BusErrorCode.NotFound);
  });
});
