// The reconciliation worker on a real nats-server: canonical events in the namespace's canonical
// stream -> final reports in KV and on a subject, exceptions with both sides' lineage, amendments
// for late events, and a worker killed mid-window (SIGKILL) that resumes to the same report.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type JetStreamManager, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReconWorkerConfig } from '../../api/worker-config.ts';
import { renderPolicyWorkerConfig } from '../../operator/render/worker-config.ts';
import {
  canonicalStreamConfig,
  canonicalSubject,
  policyNames,
  reconStreamConfig,
} from '../../runtime/nats/canonical.ts';
import {
  invoiceEvent,
  orderEvent,
  ordersVsInvoicesPolicy,
  resetSeq,
} from '../../runtime/reconcile/testing.ts';
import type { ReconEvent, WindowReport } from '../../runtime/reconcile/types.ts';
import { REPORT_KEY, runReconWorker } from '../../runtime/reconcile/worker.ts';
import { makeTempDir, removeTempDir } from '../harness/cleanup.ts';
import { type NatsServerHandle, startNatsServer } from '../harness/nats.ts';
import { freePort } from '../harness/ports.ts';
import { spawnChild, waitForHttp, waitUntil } from '../harness/process.ts';
import { repoPath } from '../harness/tools.ts';

let nats: NatsServerHandle;
let nc: NatsConnection;
let jsm: JetStreamManager;
const silent = pino({ level: 'silent' });
const LOOPBACK = { TALLY_HTTP_PORT: '0', TALLY_HTTP_HOST: '127.0.0.1' };

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  jsm = await jetstreamManager(nc);
});
afterAll(async () => {
  await nc?.close();
  await nats?.stop();
});

/** The policy's WorkerConfig as the operator renders it. */
function configFor(ns: string, name: string): ReconWorkerConfig {
  return renderPolicyWorkerConfig({
    namespace: ns,
    name,
    spec: ordersVsInvoicesPolicy(),
    natsServers: [nats.url],
  });
}

async function setup(ns: string) {
  await jsm.streams.add(canonicalStreamConfig(ns));
  await jsm.streams.add(reconStreamConfig(ns));
}

/** Publishes an engine test event as the flow would: a CloudEvent on the canonical subject. */
async function publish(ns: string, ev: ReconEvent) {
  const entity = ev.side === 'channel' ? 'Order' : 'Invoice';
  const body = {
    specversion: '1.0',
    id: ev.eventId,
    source: `/tally/${ns}/flows/${ev.flow}`,
    type: `dev.tally.${entity.toLowerCase()}.v1`,
    subject: String(ev.data.orderId),
    time: new Date().toISOString(),
    datacontenttype: 'application/json',
    data: ev.data,
    tallyentity: entity,
    tallychannel: ev.channel,
    tallyflow: `${ns}/${ev.flow}`,
    tallymapping: `${ns}/m`,
    tallymappingversion: '1',
    tallysourceid: ev.eventId,
    tallyversion: '1',
    traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
  };
  const js = (await import('@nats-io/jetstream')).jetstream(nc);
  await js.publish(canonicalSubject(ns, entity, ev.channel), JSON.stringify(body), { msgID: ev.eventId });
}

const NOW = Date.parse('2026-11-26T12:00:00Z');

/** An in-process worker with a fixed clock, quiet logs and a free loopback port. */
function startWorker(ns: string, name: string, now: () => number) {
  return runReconWorker(configFor(ns, name), {
    logger: silent,
    now,
    tickMs: 100,
    processMetrics: false,
    env: LOOPBACK,
  });
} // Nov 20 is final (48h lateness), Nov 26 is open

async function storedReport(ns: string, name: string, window: string): Promise<WindowReport | undefined> {
  const kv = await new Kvm(nc).open(policyNames(ns, name).stateBucket);
  const e = await kv.get(REPORT_KEY(window));
  return e?.value.length ? e.json<WindowReport>() : undefined;
}

function dayOne(): ReconEvent[] {
  resetSeq();
  return [
    orderEvent({ id: 'A', placedAt: '2026-11-20T15:00:00Z', total: '95.00' }),
    invoiceEvent({ orderId: 'A', issuedAt: '2026-11-21T15:00:00Z', total: '100.00' }),
    orderEvent({ id: 'B', placedAt: '2026-11-20T16:00:00Z', total: '40.00' }),
    invoiceEvent({ orderId: 'B', issuedAt: '2026-11-21T16:00:00Z', total: '40.00' }),
    orderEvent({ id: 'C', placedAt: '2026-11-20T17:00:00Z', total: '12.00' }),
    orderEvent({ id: 'today', placedAt: '2026-11-26T10:00:00Z', total: '5.00' }),
  ];
}

describe('reconciliation worker', () => {
  it('publishes the final report, exceptions with lineage, and keeps a preliminary one for open windows', async () => {
    const ns = 'recon-a';
    await setup(ns);
    for (const ev of dayOne()) await publish(ns, ev);
    const worker = await startWorker(ns, 'orders', () => NOW);
    await waitUntil(
      'final report',
      async () => (await storedReport(ns, 'orders', '2026-11-20')) !== undefined,
      { timeoutMs: 15_000 },
    );
    const report = (await storedReport(ns, 'orders', '2026-11-20'))!;
    expect(report).toMatchObject({ final: true, version: 1, variance: { USD: '-7.00' }, breached: true });
    expect(report.totals).toMatchObject({
      keys: 3,
      matched: 1,
      mismatched: 1,
      missingErp: 1,
      matchRate: '33.33',
    });
    expect(worker.report('2026-11-26')).toMatchObject({ final: false, totals: { pending: 1 } });

    const exceptions = await jsm.streams.getMessage(reconStreamConfig(ns).name, {
      last_by_subj: policyNames(ns, 'orders').exceptionsSubject,
    });
    expect(exceptions).not.toBeNull();
    const info = await jsm.streams.info(reconStreamConfig(ns).name, { subjects_filter: '>' });
    expect(info.state.subjects?.[policyNames(ns, 'orders').exceptionsSubject]).toBe(2);
    const metrics = await worker.registry.metrics();
    expect(metrics).toContain(
      'tally_recon_keys{policy="recon-a/orders",channel="shopify-us",outcome="missing_erp"} 1',
    );
    expect(metrics).toContain('tally_recon_open_exceptions{policy="recon-a/orders"} 2');
    await worker.stop();
  });

  it('reports an event arriving after the window is final as an amendment, never dropping it', async () => {
    const ns = 'recon-b';
    await setup(ns);
    for (const ev of dayOne()) await publish(ns, ev);
    const worker = await startWorker(ns, 'orders', () => NOW);
    await waitUntil('v1', async () => (await storedReport(ns, 'orders', '2026-11-20'))?.version === 1, {
      timeoutMs: 15_000,
    });
    await publish(ns, invoiceEvent({ orderId: 'C', issuedAt: '2026-11-23T09:00:00Z', total: '12.00' }));
    await waitUntil(
      'amendment',
      async () => (await storedReport(ns, 'orders', '2026-11-20'))?.version === 2,
      { timeoutMs: 15_000 },
    );
    const amended = (await storedReport(ns, 'orders', '2026-11-20'))!;
    // The late invoice (within the 72h dateLag) resolves C: missing_erp becomes matched.
    expect(amended).toMatchObject({ amendments: 1, totals: { missingErp: 0, mismatched: 1, matched: 2 } });
    await worker.stop();
  });

  it('a worker killed with SIGKILL mid-window resumes to exactly the report of an uninterrupted run', async () => {
    const events = dayOne();
    // Uninterrupted, in process.
    await setup('recon-c');
    for (const ev of events) await publish('recon-c', ev);
    const w1 = await startWorker('recon-c', 'orders', () => NOW);
    await waitUntil(
      'report',
      async () => (await storedReport('recon-c', 'orders', '2026-11-20')) !== undefined,
      { timeoutMs: 15_000 },
    );
    await w1.stop();

    // Interrupted: a real worker process, killed while the window is still open.
    await setup('recon-d');
    const dir = makeTempDir('recon-kill');
    const configFile = join(dir, 'worker.json');
    writeFileSync(configFile, JSON.stringify(configFor('recon-d', 'orders')));
    const start = async (asOf: string) => {
      const port = await freePort();
      const child = spawnChild({
        name: 'recon-worker',
        command: process.execPath,
        args: [repoPath('bin/tally.mjs'), 'runtime', '--config', configFile],
        logFile: join(dir, 'worker.log'),
        env: {
          PATH: process.env.PATH,
          TALLY_HTTP_PORT: String(port),
          TALLY_HTTP_HOST: '127.0.0.1',
          TALLY_RECON_AS_OF: asOf,
        },
      });
      await waitForHttp(`http://127.0.0.1:${port}/readyz`, { children: [child], timeoutMs: 30_000 });
      return { child, port };
    };
    for (const ev of events.slice(0, 3)) await publish('recon-d', ev);
    const first = await start('2026-11-21T12:00:00Z');
    const metrics = async () => (await fetch(`http://127.0.0.1:${first.port}/metrics`)).text();
    await waitUntil('events read', async () => (await metrics()).includes('result="accepted"} 2'));
    await first.child.stop({ signal: 'SIGKILL' });
    for (const ev of events.slice(3)) await publish('recon-d', ev);
    const second = await start('2026-11-26T12:00:00Z');
    await waitUntil(
      'report',
      async () => (await storedReport('recon-d', 'orders', '2026-11-20')) !== undefined,
      { timeoutMs: 15_000 },
    );
    await second.child.stop();
    removeTempDir(dir);
    const a = (await storedReport('recon-c', 'orders', '2026-11-20'))!;
    const b = (await storedReport('recon-d', 'orders', '2026-11-20'))!;
    expect(b).toEqual(a);
  });
});
