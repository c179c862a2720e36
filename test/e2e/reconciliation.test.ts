// Reconciliation end to end, one scenario from the domain write-up per example policy: kubectl
// apply -> operator -> rendered reconciliation worker (run by the process agent) -> generated
// canonical events with known answers -> final report (tally recon report), exceptions, status.
// One operator and nats-server for the file; every scenario in a namespace of its own (its own
// canonical stream, policy and worker), so any one of them runs alone with -t.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { policyNames, reconStreamConfig } from '../../runtime/nats/canonical.ts';
import type { WindowReport } from '../../runtime/reconcile/types.ts';
import { runKubectl } from '../harness/kubectl.ts';
import { type NatsServerHandle, startNatsServer } from '../harness/nats.ts';
import { waitUntil } from '../harness/process.ts';
import { repoPath } from '../harness/tools.ts';
import { publishCanonical } from './support/canonical-events.ts';
import { type OperatorProcess, startOperatorProcess } from './support/operator-process.ts';
import { type RunningPod, runPod } from './support/process-agent.ts';

const kubeconfig = inject('adminKubeconfig');
const run = randomBytes(3).toString('hex');
const exec = promisify(execFile);

// A business day five days ago: final for every policy (lateness at most 72h).
const day = new Date(Date.now() - 5 * 86_400_000).toISOString().slice(0, 10);
const at = (time: string, plusDays = 0) => {
  const d = new Date(`${day}T${time}Z`);
  d.setUTCDate(d.getUTCDate() + plusDays);
  return d.toISOString();
};
const usd = (cents: number) => ({ amount: (cents / 100).toFixed(2), currency: 'USD' });

let nats: NatsServerHandle;
let nc: NatsConnection;
let operator: OperatorProcess;
/** The current test's workers, stopped after it. */
const pods: RunningPod[] = [];
let namespaces = 0;

async function kubectl(...args: string[]) {
  const r = await runKubectl(args, { kubeconfig });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/**
 * A namespace of the test's own with the example policy applied, Ready, and its rendered worker
 * running; returns the namespace.
 */
async function applyAndRun(file: string, name: string): Promise<string> {
  const ns = `recon-${run}-${++namespaces}`;
  await kubectl('create', 'namespace', ns);
  await kubectl('apply', '-n', ns, '-f', repoPath('examples/reconciliation', file));
  const waited = await runKubectl(
    ['wait', '-n', ns, '--for=condition=Ready', `rpol/${name}`, '--timeout=60s'],
    { kubeconfig },
  );
  expect(waited.code, `${waited.stderr}\n${operator.child.logTail(20)}`).toBe(0);
  pods.push(await runPod(kubeconfig, ns, `tally-recon-${name}`));
  return ns;
}

async function finalReport(ns: string, name: string): Promise<WindowReport> {
  let report: WindowReport | undefined;
  await waitUntil(
    `final report of ${name}`,
    async () => {
      try {
        const { stdout } = await exec(process.execPath, [
          repoPath('bin/tally.mjs'),
          'recon',
          'report',
          '--policy',
          `${ns}/${name}`,
          '--window',
          day,
          '-o',
          'json',
          '--nats-url',
          nats.url,
        ]);
        report = JSON.parse(stdout) as WindowReport;
        return report.final;
      } catch {
        return false;
      }
    },
    { timeoutMs: 30_000, intervalMs: 500 },
  );
  return report!;
}

async function exceptionsOf(ns: string, name: string): Promise<number> {
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(reconStreamConfig(ns).name, { subjects_filter: '>' });
  return info.state.subjects?.[policyNames(ns, name).exceptionsSubject] ?? 0;
}

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  operator = await startOperatorProcess(kubeconfig, nats.url);
});

afterEach(async () => {
  for (const p of pods.splice(0)) await p.stop();
});

afterAll(async () => {
  await operator?.stop();
  await nc?.close();
  await nats?.stop();
});

describe('reconciliation scenarios', () => {
  it('1: promotion at capture vs re-pricing at invoicing -> exact variance per channel', async () => {
    const ns = await applyAndRun('orders-vs-invoices.yaml', 'orders-vs-invoices');
    for (let i = 0; i < 60; i++) {
      const channel = i % 3 === 0 ? 'amazon-us' : 'shopify-us';
      const list = 2000 + i * 25;
      const captured = i % 10 === 0 ? list - 500 : list; // 5.00 promotion at capture
      const orderId = `o-${i}`;
      await publishCanonical(nc, ns, 'Order', channel, orderId, {
        orderId,
        placedAt: at('18:00:00', 0),
        totals: { grandTotal: usd(captured), taxTotal: usd(100) },
      });
      await publishCanonical(nc, ns, 'Invoice', 'erp', orderId, {
        invoiceId: `INV-${i}`,
        orderId,
        issuedAt: at('15:00:00', 1),
        totals: { grandTotal: usd(list), taxTotal: usd(100) },
      });
    }
    const report = await finalReport(ns, 'orders-vs-invoices');
    expect(report.totals).toMatchObject({
      keys: 60,
      matched: 54,
      mismatched: 6,
      missingErp: 0,
      matchRate: '90.00',
    });
    const byChannel = Object.fromEntries(report.byChannel.map((c) => [c.channel, c.variance]));
    expect(byChannel).toEqual({ 'amazon-us': { USD: '10.00' }, 'shopify-us': { USD: '20.00' } });
    expect(report.breached).toBe(false);
    expect(await exceptionsOf(ns, 'orders-vs-invoices')).toBe(6);
    await waitUntil(
      'status',
      async () =>
        (await kubectl(
          'get',
          'rpol',
          'orders-vs-invoices',
          '-n',
          ns,
          '-o',
          'jsonpath={.status.lastFinalWindow} {.status.matchRate} {.status.breached}',
        )) === `${day} 90.00 false`,
      { timeoutMs: 60_000, intervalMs: 1000 },
    );
    const table = await kubectl('get', 'rpol', 'orders-vs-invoices', '-n', ns);
    expect(table).toMatch(new RegExp(`orders-vs-invoices\\s+True\\s+${day}\\s+90.00\\s+false`));
  });

  it('3: capture and next-day invoicing reconcile in the same business day; truly missing invoices show', async () => {
    const ns = await applyAndRun('revenue-timing.yaml', 'portal-revenue-timing');
    for (let i = 0; i < 40; i++) {
      const orderId = `p-${i}`;
      // 14:00Z..04:30Z next day = 08:00..22:30 Chicago on the business day
      const placedAt = i % 4 === 0 ? at('04:30:00', 1) : at(`${String(14 + (i % 9)).padStart(2, '0')}:00:00`);
      await publishCanonical(nc, ns, 'Order', 'b2b-portal', orderId, {
        orderId,
        placedAt,
        totals: { grandTotal: usd(10_000 + i) },
      });
      if (i === 7 || i === 21) continue; // never invoiced
      await publishCanonical(nc, ns, 'Invoice', 'erp', orderId, {
        invoiceId: `INV-P-${i}`,
        orderId,
        issuedAt: at('20:00:00', 1 + (i % 2)), // shipped and invoiced 1-2 days later
        totals: { grandTotal: usd(10_000 + i) },
      });
    }
    const report = await finalReport(ns, 'portal-revenue-timing');
    expect(report.totals).toMatchObject({ keys: 40, matched: 38, missingErp: 2, mismatched: 0 });
    expect(report.breached).toBe(true);
    expect(report.breaches[0]).toMatchObject({ threshold: 'maxMissingPercent', value: '5.00' });
    expect(report.variance).toEqual({ USD: `-${((10_007 + 10_021) / 100).toFixed(2)}` });
    await waitUntil(
      'Breached condition',
      async () =>
        (await kubectl(
          'get',
          'rpol',
          'portal-revenue-timing',
          '-n',
          ns,
          '-o',
          'jsonpath={.status.conditions[?(@.type=="Breached")].status}',
        )) === 'True',
      { timeoutMs: 60_000, intervalMs: 1000 },
    );
  });

  it('2: channel reservations above ERP availability are oversell risks per SKU and warehouse', async () => {
    const ns = await applyAndRun('inventory-oversell.yaml', 'inventory-oversell');
    const risky = new Set(['SKU-3/DAL', 'SKU-5/CHI', 'SKU-8/CHI']);
    for (let s = 0; s < 10; s++) {
      for (const wh of ['CHI', 'DAL']) {
        const sku = `SKU-${s}`;
        const available = 10 + s;
        const reserved = risky.has(`${sku}/${wh}`) ? available + 2 : available - 1;
        await publishCanonical(nc, ns, 'InventoryLevel', 'amazon-us', `${sku}/${wh}`, {
          sku,
          warehouse: wh,
          onHand: 50,
          reserved,
          available: 50 - reserved,
          asOf: at('12:00:00'),
        });
        await publishCanonical(nc, ns, 'InventoryLevel', 'erp', `${sku}/${wh}`, {
          sku,
          warehouse: wh,
          onHand: 50,
          reserved: 50 - available,
          available,
          asOf: at('12:05:00'),
        });
      }
    }
    const report = await finalReport(ns, 'inventory-oversell');
    expect(report.totals).toMatchObject({ keys: 20, matched: 17, mismatched: 3 });
    expect(report.exceptions).toEqual({ oversell_risk: 3 });
    expect(await exceptionsOf(ns, 'inventory-oversell')).toBe(3);
    // SKUs stay out of metric labels.
    const metrics = await (await fetch(`${pods[0]!.url}/metrics`)).text();
    expect(metrics).toContain('tally_recon_keys{policy="');
    expect(metrics).not.toContain('SKU-');
  });

  it('4: refunds authorised at once, credited after inspection -> open liability per milestone', async () => {
    const ns = await applyAndRun('returns-liability.yaml', 'returns-liability');
    const statuses = [
      'credited',
      'credited',
      'credited',
      'credited',
      'received',
      'received',
      'received',
      'inspected',
      'inspected',
      'inspected',
      'dispositioned',
      'dispositioned',
    ];
    for (const [i, status] of statuses.entries()) {
      const returnId = `RMA-${i}`;
      const milestones = { authorisedAt: at('10:00:00') };
      await publishCanonical(nc, ns, 'Return', 'shopify-us', returnId, {
        returnId,
        orderId: `o-${i}`,
        status: 'authorised',
        milestones,
        lines: [],
        authorisedAmount: usd(2000),
      });
      await publishCanonical(nc, ns, 'Return', 'erp', returnId, {
        returnId,
        orderId: `o-${i}`,
        status,
        milestones,
        lines: [],
        ...(status === 'credited' ? { creditedAmount: usd(2000) } : {}),
      });
    }
    const report = await finalReport(ns, 'returns-liability');
    expect(report.totals).toMatchObject({ keys: 12, matched: 4, mismatched: 8 });
    expect(report.byStatus).toEqual([
      { status: 'dispositioned', count: 2, open: { USD: '40.00' } },
      { status: 'inspected', count: 3, open: { USD: '60.00' } },
      { status: 'received', count: 3, open: { USD: '60.00' } },
    ]);
    expect(report.exceptions).toEqual({ open_liability: 8 });
    const { stdout } = await exec(process.execPath, [
      repoPath('bin/tally.mjs'),
      'recon',
      'report',
      '--policy',
      `${ns}/returns-liability`,
      '--window',
      day,
      '-o',
      'csv',
      '--nats-url',
      nats.url,
    ]);
    expect(stdout.split('\n')[0]).toBe(
      'policy,window,final,version,channel,keys,matched,mismatched,missing_erp,missing_channel,pending,match_rate,currency,channel_sum,erp_sum,variance',
    );
    expect(stdout).toContain(
      `returns-liability,${day},true,1,shopify-us,12,4,8,0,0,0,33.33,USD,240.00,80.00,-160.00`,
    );
  });
});
