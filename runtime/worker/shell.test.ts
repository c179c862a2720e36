import { createServer } from 'node:net';
import { pino } from 'pino';
import { Counter, Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryBus } from '../bus/memory.ts';
import type { Bus } from '../bus/types.ts';
import { startWorkerShell, type WorkerShell, type WorkerShellOptions } from './shell.ts';

/** A promise settled from outside. */
function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

function capture() {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
  return { logger, lines, messages: () => lines.map((l) => l.msg) };
}

const shells: WorkerShell[] = [];
afterEach(async () => {
  await Promise.all(shells.splice(0).map((s) => s.stop()));
});

async function shell(overrides: Partial<WorkerShellOptions> = {}) {
  const registry = new Registry();
  new Counter({ name: 'tally_test_total', help: 'test', registers: [registry] }).inc();
  const s = await startWorkerShell({
    name: 'tally-test',
    servers: ['nats://127.0.0.1:1'],
    logger: pino({ level: 'silent' }),
    registry,
    address: { host: '127.0.0.1', port: 0 },
    connect: () => new Promise<Bus>(() => {}),
    graceMs: 1_000,
    closeMs: 1_000,
    ...overrides,
  });
  shells.push(s);
  return s;
}

const get = (s: WorkerShell, path: string) => fetch(`http://127.0.0.1:${s.port}${path}`);

describe('worker shell', () => {
  it('serves /healthz and /metrics while NATS is away, with /readyz 503 saying nats is not ready', async () => {
    const s = await shell({ checks: () => ({ caughtUp: true }) });
    void s.connect().catch(() => {});
    expect((await get(s, '/healthz')).status).toBe(200);
    expect(await (await get(s, '/metrics')).text()).toContain('tally_test_total 1');
    const readyz = await get(s, '/readyz');
    expect(readyz.status).toBe(503);
    expect(await readyz.json()).toEqual({
      status: 'not ready',
      checks: { nats: false, caughtUp: true, accepting: true },
    });
  });

  it('is ready once the bus connects and every check of the worker holds', async () => {
    const connecting = deferred<Bus>();
    let caughtUp = false;
    const s = await shell({ connect: () => connecting.promise, checks: () => ({ caughtUp }) });
    const bus = s.connect();
    connecting.resolve(new MemoryBus());
    await bus;
    expect(s.readiness().checks).toEqual({ nats: true, caughtUp: false, accepting: true });
    caughtUp = true;
    expect((await get(s, '/readyz')).status).toBe(200);
  });

  it('stops when the signal aborts during start-up: connect() rejects, drain and close run, stopped resolves', async () => {
    const controller = new AbortController();
    const calls: string[] = [];
    const s = await shell({
      signal: controller.signal,
      drain: async () => void calls.push('drain'),
      close: async () => void calls.push('close'),
    });
    const connecting = s.connect();
    controller.abort();
    await expect(connecting).rejects.toMatchObject({ name: 'AbortError' });
    await s.stopped;
    expect(calls).toEqual(['drain', 'close']);
    expect(s.ready()).toBe(false);
    await expect(get(s, '/healthz')).rejects.toThrow();
  });

  it('stops at once when the signal was aborted before it started, closing its server', async () => {
    const controller = new AbortController();
    controller.abort();
    const s = await shell({ signal: controller.signal });
    await s.stopped;
    expect(s.stopping()).toBe(true);
    await expect(s.connect()).rejects.toMatchObject({ name: 'AbortError' });
    await expect(get(s, '/healthz')).rejects.toThrow();
  });

  it('stops once however often it is asked: one drain, one close, one bus close', async () => {
    const bus = new MemoryBus();
    let busCloses = 0;
    bus.close = async () => void busCloses++;
    const controller = new AbortController();
    const calls: string[] = [];
    const s = await shell({
      signal: controller.signal,
      connect: async () => bus,
      drain: async () => void calls.push('drain'),
      close: async () => void calls.push('close'),
    });
    await s.connect();
    const first = s.stop();
    controller.abort();
    expect(s.stop()).toBe(first);
    await Promise.all([first, s.stop(), s.stopped]);
    expect(calls).toEqual(['drain', 'close']);
    expect(busCloses).toBe(1);
  });

  it('gives work in progress the grace period and closing the close allowance, then stops anyway', async () => {
    const { logger, messages } = capture();
    let grace: number | undefined;
    const s = await shell({
      logger,
      graceMs: 30,
      closeMs: 30,
      drain: (graceMs) => {
        grace = graceMs;
        return new Promise(() => {}); // work that never finishes
      },
      close: () => new Promise(() => {}),
    });
    await s.stop();
    expect(grace).toBe(30);
    expect(messages()).toEqual(
      expect.arrayContaining([
        'work still in progress after the grace period; stopping anyway',
        'connections not closed in time; leaving them to the process exit',
        'stopped',
      ]),
    );
  });

  it('closes a bus that connects only after the stop instead of leaking it', async () => {
    const connecting = deferred<Bus>();
    const s = await shell({ connect: () => connecting.promise });
    const pending = s.connect().catch((e: unknown) => e);
    await s.stop();
    expect(await pending).toMatchObject({ name: 'AbortError' });
    const late = new MemoryBus();
    const closed = deferred<void>();
    late.close = async () => closed.resolve();
    connecting.resolve(late);
    await closed.promise;
    expect(s.bus()).toBeUndefined();
  });

  it('runs the close hook and rethrows when the port is taken', async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as { port: number }).port;
    const calls: string[] = [];
    try {
      const err = await startWorkerShell({
        name: 'tally-test',
        servers: ['nats://127.0.0.1:1'],
        logger: pino({ level: 'silent' }),
        registry: new Registry(),
        address: { host: '127.0.0.1', port },
        connect: () => new Promise<Bus>(() => {}),
        close: async () => void calls.push('close'),
      }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'EADDRINUSE' });
      expect(calls).toEqual(['close']);
    } finally {
      await new Promise((r) => taken.close(r));
    }
  });
});
