import fc from 'fast-check';
import { beforeEach, describe, expect, it } from 'vitest';
import { reconciliationPolicySpecSchema } from '../../api/reconciliation-policy.ts';
import { Reconciler } from './reconciler.ts';
import { invoiceEvent, orderEvent, ordersVsInvoicesPolicy, resetSeq } from './testing.ts';
import type { ReconEvent } from './types.ts';

beforeEach(() => resetSeq());

describe('Reconciler', () => {
  it('scenario 1: promotion at capture vs re-pricing at invoicing -> mismatches with the exact variance per channel', () => {
    const r = new Reconciler('orders-vs-invoices', ordersVsInvoicesPolicy());
    // shopify applied a 5.00 promotion at capture; the ERP invoiced list price
    r.ingest(orderEvent({ id: 'A', placedAt: '2026-11-20T15:00:00Z', total: '95.00' }));
    r.ingest(invoiceEvent({ orderId: 'A', issuedAt: '2026-11-21T15:00:00Z', total: '100.00' }));
    r.ingest(orderEvent({ id: 'B', placedAt: '2026-11-20T16:00:00Z', total: '40.00' }));
    r.ingest(invoiceEvent({ orderId: 'B', issuedAt: '2026-11-21T16:00:00Z', total: '40.00' }));
    r.ingest(orderEvent({ id: 'C', channel: 'amazon-us', placedAt: '2026-11-20T17:00:00Z', total: '10.10' }));
    r.ingest(invoiceEvent({ orderId: 'C', issuedAt: '2026-11-21T17:00:00Z', total: '10.00' }));
    const report = r.report('2026-11-20', { final: true, version: 1 });
    expect(report.totals).toMatchObject({ keys: 3, matched: 1, mismatched: 2, matchRate: '33.33' });
    expect(report.variance).toEqual({ USD: '4.90' });
    const byChannel = Object.fromEntries(report.byChannel.map((c) => [c.channel, c]));
    expect(byChannel['shopify-us']).toMatchObject({ mismatched: 1, matched: 1, variance: { USD: '5.00' } });
    expect(byChannel['amazon-us']).toMatchObject({ mismatched: 1, variance: { USD: '-0.10' } });
    const [a] = r.exceptions('2026-11-20', 1).filter((e) => e.key === 'A');
    expect(a).toMatchObject({ outcome: 'mismatched', reasons: ['amount_mismatch'], channel: 'shopify-us' });
    expect(a!.differences[0]).toMatchObject({ field: 'grand-total', difference: '500', currency: 'USD' });
    expect(a!.channelSide?.flow).toBe('shopify-us-orders');
  });

  it('scenario 3: capture on day D and invoicing on D+1 reconcile in window D; a truly missing invoice still shows', () => {
    const r = new Reconciler('p', ordersVsInvoicesPolicy());
    // 22:00 Chicago on Nov 20 = 04:00Z Nov 21: business day Nov 20, invoiced next afternoon
    r.ingest(orderEvent({ id: 'late-evening', placedAt: '2026-11-21T04:00:00Z', total: '20.00' }));
    r.ingest(invoiceEvent({ orderId: 'late-evening', issuedAt: '2026-11-21T20:00:00Z', total: '20.00' }));
    r.ingest(orderEvent({ id: 'never-invoiced', placedAt: '2026-11-20T18:00:00Z', total: '30.00' }));
    expect(r.report('2026-11-20', { final: false, version: 0 }).totals).toMatchObject({
      matched: 1,
      pending: 1,
      missingErp: 0,
    });
    expect(r.report('2026-11-21', { final: false, version: 0 }).totals.keys).toBe(0);
    const final = r.report('2026-11-20', { final: true, version: 1 });
    expect(final.totals).toMatchObject({ matched: 1, missingErp: 1, pending: 0 });
    expect(final.breached).toBe(true);
    expect(final.breaches[0]).toMatchObject({ threshold: 'maxMissingPercent', value: '50.00' });
    expect(r.exceptions('2026-11-20', 1).map((e) => [e.key, e.outcome])).toEqual([
      ['never-invoiced', 'missing_erp'],
    ]);
  });

  it('compares the latest version of a key: an order updated three times', () => {
    const r = new Reconciler('p', ordersVsInvoicesPolicy());
    r.ingest(orderEvent({ id: 'A', placedAt: '2026-11-20T15:00:00Z', total: '50.00', version: 3 }));
    r.ingest(orderEvent({ id: 'A', placedAt: '2026-11-20T15:00:00Z', total: '10.00', version: 1 }));
    expect(
      r.ingest(orderEvent({ id: 'A', placedAt: '2026-11-20T15:00:00Z', total: '20.00', version: 2 })),
    ).toMatchObject({ accepted: false, reason: 'stale_version' });
    r.ingest(invoiceEvent({ orderId: 'A', issuedAt: '2026-11-21T15:00:00Z', total: '50.00' }));
    expect(r.report('2026-11-20', { final: true, version: 1 }).totals.matched).toBe(1);
  });

  it('ignores events without the key or business time and says why', () => {
    const r = new Reconciler('p', ordersVsInvoicesPolicy());
    const ev = orderEvent({ id: 'x', placedAt: 'not a date', total: '1.00' });
    expect(r.ingest(ev)).toEqual({ accepted: false, reason: 'missing_business_time' });
    const noKey = { ...ev, data: { placedAt: '2026-11-20T10:00:00Z' } };
    expect(r.ingest(noKey)).toEqual({ accepted: false, reason: 'missing_key' });
  });

  it('the final report does not depend on the order in which events arrive', () => {
    const events: ReconEvent[] = [];
    for (let i = 0; i < 30; i++) {
      const placedAt = new Date(Date.UTC(2026, 10, 20, 10 + (i % 14), i)).toISOString();
      for (let v = 1; v <= 1 + (i % 3); v++)
        events.push(orderEvent({ id: `o${i}`, placedAt, total: `${10 + v}.00`, version: v }));
      if (i % 5 !== 0)
        events.push(
          invoiceEvent({
            orderId: `o${i}`,
            issuedAt: placedAt,
            total: i % 7 === 0 ? '1.00' : `${11 + (i % 3)}.00`,
          }),
        );
    }
    events.push(invoiceEvent({ orderId: 'erp-only', issuedAt: '2026-11-20T12:00:00Z', total: '9.00' }));
    const reportOf = (evs: ReconEvent[]) => {
      const r = new Reconciler('p', ordersVsInvoicesPolicy());
      for (const e of evs) r.ingest(e);
      return {
        report: r.report('2026-11-20', { final: true, version: 1 }),
        exceptions: r.exceptions('2026-11-20', 1),
      };
    };
    const expected = reportOf(events);
    expect(expected.report.totals).toMatchObject({ missingErp: 6, missingChannel: 1 });
    fc.assert(
      fc.property(
        fc.shuffledSubarray(events, { minLength: events.length, maxLength: events.length }),
        (shuffled) => {
          expect(reportOf(shuffled)).toEqual(expected);
        },
      ),
      { numRuns: 50 },
    );
  });

  it('scenario 2: channel reservations above ERP availability are oversell risks per SKU and warehouse', () => {
    const spec = reconciliationPolicySpecSchema.parse({
      channel: { entity: 'InventoryLevel', keyFields: ['sku', 'warehouse'], businessTimeField: 'asOf' },
      erp: { entity: 'InventoryLevel', keyFields: ['sku', 'warehouse'], businessTimeField: 'asOf' },
      compare: [
        {
          name: 'reserved-vs-available',
          channelField: 'reserved',
          erpField: 'available',
          rule: 'lessOrEqual',
          exceptionReason: 'oversell_risk',
        },
      ],
      window: { timeZone: 'UTC', cutoff: '00:00', lateness: '1h' },
    });
    const r = new Reconciler('inventory', spec);
    const level = (side: 'channel' | 'erp', sku: string, wh: string, n: number, seq: number): ReconEvent => ({
      side,
      seq,
      eventId: `e${seq}`,
      channel: side === 'channel' ? 'amazon-us' : 'erp',
      flow: 'f',
      data: {
        sku,
        warehouse: wh,
        asOf: '2026-11-20T10:00:00Z',
        ...(side === 'channel' ? { reserved: n } : { available: n }),
      },
    });
    r.ingest(level('channel', 'MUG', 'CHI', 12, 1));
    r.ingest(level('erp', 'MUG', 'CHI', 10, 2));
    r.ingest(level('channel', 'MUG', 'DAL', 3, 3));
    r.ingest(level('erp', 'MUG', 'DAL', 10, 4));
    const ex = r.exceptions('2026-11-20', 1);
    expect(ex).toHaveLength(1);
    expect(ex[0]).toMatchObject({ keyFields: ['MUG', 'CHI'], reasons: ['oversell_risk'] });
    expect(ex[0]!.differences[0]).toMatchObject({ channel: 12, erp: 10, difference: '-2' });
  });

  it('scenario 4: returns authorised at once and credited after inspection -> open liability per milestone', () => {
    const spec = reconciliationPolicySpecSchema.parse({
      channel: {
        entity: 'Return',
        keyFields: ['returnId'],
        businessTimeField: 'milestones.authorisedAt',
        amountField: 'authorisedAmount',
      },
      erp: {
        entity: 'Return',
        keyFields: ['returnId'],
        businessTimeField: 'milestones.authorisedAt',
        amountField: 'creditedAmount',
        statusField: 'status',
      },
      compare: [
        {
          name: 'credited',
          channelField: 'authorisedAmount',
          erpField: 'creditedAmount',
          rule: 'absolute',
          toleranceMinor: 0,
        },
      ],
      window: { timeZone: 'UTC', cutoff: '00:00', lateness: '24h' },
    });
    const r = new Reconciler('returns', spec);
    const ret = (
      side: 'channel' | 'erp',
      id: string,
      status: string,
      seq: number,
      credited?: string,
    ): ReconEvent => ({
      side,
      seq,
      eventId: `e${seq}`,
      channel: side === 'channel' ? 'shopify-us' : 'erp',
      flow: 'f',
      data: {
        returnId: id,
        status,
        milestones: { authorisedAt: '2026-11-20T09:00:00Z' },
        authorisedAmount: { amount: '25.00', currency: 'USD' },
        ...(credited ? { creditedAmount: { amount: credited, currency: 'USD' } } : {}),
      },
    });
    r.ingest(ret('channel', 'R1', 'authorised', 1));
    r.ingest(ret('erp', 'R1', 'received', 2));
    r.ingest(ret('channel', 'R2', 'authorised', 3));
    r.ingest(ret('erp', 'R2', 'inspected', 4));
    r.ingest(ret('channel', 'R3', 'authorised', 5));
    r.ingest(ret('erp', 'R3', 'credited', 6, '25.00'));
    const report = r.report('2026-11-20', { final: true, version: 1 });
    expect(report.totals).toMatchObject({ matched: 1, mismatched: 2 });
    expect(report.byStatus).toEqual([
      { status: 'inspected', count: 1, open: { USD: '25.00' } },
      { status: 'received', count: 1, open: { USD: '25.00' } },
    ]);
  });
});
