import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { API_VERSION } from '../../api/common.ts';
import type { CanonicalEvent } from '../../api/envelope.ts';
import type { ReconWorkerConfig } from '../../api/worker-config.ts';
import { freePort } from '../../test/harness/ports.ts';
import { MemoryBus } from '../bus/memory.ts';
import { memoryStateStore } from '../flow/state/kv-store.ts';
import {
  canonicalStreamConfig,
  policyFilterSubjects,
  policyNames,
  reconStreamConfig,
} from '../nats/canonical.ts';
import { createLogger } from '../telemetry/logger.ts';
import { createReconMetrics } from './metrics.ts';
import { Reconciler } from './reconciler.ts';
import { invoiceEvent, orderEvent, ordersVsInvoicesPolicy, resetSeq } from './testing.ts';
import type { ReconEvent, WindowReport } from './types.ts';
import { createReconCore, REPORT_KEY, runReconWorker } from './worker.ts';

const NS = 'unit';
const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
// Nov 20 is final (48h lateness), Nov 26 is open.
const NOW = Date.parse('2026-11-26T12:00:00Z');

function configFor(servers: string[]): ReconWorkerConfig {
  const spec = ordersVsInvoicesPolicy();
  const n = policyNames(NS, 'orders');
  return {
    apiVersion: API_VERSION,
    kind: 'WorkerConfig',
    role: 'reconciliation',
    policy: { namespace: NS, name: 'orders' },
    spec,
    nats: {
      servers,
      canonicalStream: canonicalStreamConfig(NS).name,
      filterSubjects: policyFilterSubjects(NS, spec),
      stateBucket: n.stateBucket,
      exceptionsSubject: n.exceptionsSubject,
      reportsSubject: n.reportsSubject,
    },
    http: { port: 8080 },
  };
}

/** An engine test event as the canonical stream holds it (the flow's CloudEvent). */
function message(ev: ReconEvent) {
  const entity = ev.side === 'channel' ? 'Order' : 'Invoice';
  const body = {
    id: ev.eventId,
    subject: String(ev.data.orderId),
    data: ev.data,
    tallyentity: entity,
    tallychannel: ev.channel,
    tallyflow: `${NS}/${ev.flow}`,
    traceparent: `00-${TRACE_ID}-b7ad6b7169203331-01`,
  } as Partial<CanonicalEvent>;
  return { seq: ev.seq, json: <T>() => body as T };
}

function core(overrides: { bus?: MemoryBus; destination?: { write(l: string): void } } = {}) {
  const bus = overrides.bus ?? new MemoryBus();
  if (!overrides.bus) bus.addStream(reconStreamConfig(NS).name, reconStreamConfig(NS).subjects);
  const store = memoryStateStore();
  const config = configFor(['nats://127.0.0.1:1']);
  const log = overrides.destination
    ? createLogger({ policy: `${NS}/orders`, destination: overrides.destination })
    : pino({ level: 'silent' });
  const c = createReconCore({
    config,
    engine: new Reconciler('orders', config.spec),
    bus,
    store,
    now: () => NOW,
    log,
    metrics: createReconMetrics(`${NS}/orders`, { processMetrics: false }),
  });
  return { core: c, bus, store, config };
}

function dayOne(): ReconEvent[] {
  resetSeq();
  return [
    orderEvent({ id: 'A', placedAt: '2026-11-20T15:00:00Z', total: '95.00' }),
    invoiceEvent({ orderId: 'A', issuedAt: '2026-11-21T15:00:00Z', total: '100.00' }),
    orderEvent({ id: 'C', placedAt: '2026-11-20T17:00:00Z', total: '12.00' }),
  ];
}

afterEach(() => {
  vi.useRealTimers();
});

describe('reconciliation core', () => {
  it('publishes a final window through the bus: exceptions and report with their msg ids, then stores the report', async () => {
    const { core: c, bus, store, config } = core();
    for (const ev of dayOne()) c.ingest(message(ev));
    await c.tick();
    const published = bus.messages(reconStreamConfig(NS).name);
    expect(published.map((m) => m.subject)).toEqual([
      config.nats.exceptionsSubject,
      config.nats.exceptionsSubject,
      config.nats.reportsSubject,
    ]);
    expect(published[0]!.headers).toMatchObject({
      'Tally-Policy': `${NS}/orders`,
      'Tally-Window': '2026-11-20',
      'Nats-Msg-Id': expect.stringMatching(/^exc:.+:v1$/),
    });
    expect(published[2]!.headers['Nats-Msg-Id']).toBe(`report:${NS}/orders:2026-11-20:v1`);
    const stored = await store.get<WindowReport>(REPORT_KEY('2026-11-20'));
    expect(stored?.value).toMatchObject({ final: true, version: 1, totals: { keys: 2 } });
  });

  it('logs an event it cannot reconcile with its business key, trace id and reason', () => {
    const lines: string[] = [];
    const { core: c } = core({ destination: { write: (l) => void lines.push(l) } });
    resetSeq();
    const ev = orderEvent({ id: 'B-17', placedAt: 'not a time', total: '1.00' });
    c.ingest(message(ev));
    const line = JSON.parse(lines.find((l) => l.includes('event not reconciled'))!);
    expect(line).toMatchObject({
      policy: `${NS}/orders`,
      businessKey: 'B-17',
      traceId: TRACE_ID,
      eventId: ev.eventId,
      side: 'channel',
      reason: 'missing_business_time',
    });
    expect(line).not.toHaveProperty('flow');
  });

  it('waits for the publish in progress on stop without polling, and finishes it', async () => {
    const bus = new MemoryBus();
    bus.addStream(reconStreamConfig(NS).name, reconStreamConfig(NS).subjects);
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const publish = bus.publish.bind(bus);
    bus.publish = async (...args) => {
      await gate;
      return publish(...args);
    };
    const { core: c, store } = core({ bus });
    for (const ev of dayOne()) c.ingest(message(ev));
    void c.tick();
    vi.useFakeTimers();
    c.stop();
    let idle = false;
    const waiting = c.idle().then(() => {
      idle = true;
    });
    await Promise.resolve();
    expect(idle).toBe(false);
    // Waiting on the pass itself: no timer is scheduled to look again.
    expect(vi.getTimerCount()).toBe(0);
    release();
    await waiting;
    expect((await store.get<WindowReport>(REPORT_KEY('2026-11-20')))?.value.version).toBe(1);
    // Stopped: no further pass starts.
    await c.tick();
    expect(bus.messages(reconStreamConfig(NS).name)).toHaveLength(3);
  });
});

describe('runReconWorker', () => {
  it('names the policy (not a flow) on every line, serves /readyz while NATS is away, and stops on abort then', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'debug' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
    const port = await freePort();
    const nowhere = await freePort();
    const controller = new AbortController();
    const starting = runReconWorker(configFor([`nats://127.0.0.1:${nowhere}`]), {
      logger,
      signal: controller.signal,
      processMetrics: false,
      env: { TALLY_HTTP_HOST: '127.0.0.1', TALLY_HTTP_PORT: String(port) },
    });
    await vi.waitFor(
      async () => {
        const res = await fetch(`http://127.0.0.1:${port}/readyz`);
        expect(res.status).toBe(503);
        expect(((await res.json()) as { checks: object }).checks).toMatchObject({ nats: false });
      },
      { timeout: 10_000, interval: 50 },
    );
    controller.abort();
    const worker = await starting;
    await worker.stopped;
    expect(worker.ready()).toBe(false);
    expect(lines.map((l) => l.msg)).toEqual(expect.arrayContaining(['http server listening', 'stopped']));
    for (const line of lines) {
      expect(line).toMatchObject({ policy: `${NS}/orders` });
      expect(line).not.toHaveProperty('flow');
    }
  });
});
