import { describe, expect, it } from 'vitest';
import { Reconciler } from '../runtime/reconcile/reconciler.ts';
import { invoiceEvent, orderEvent, ordersVsInvoicesPolicy, resetSeq } from '../runtime/reconcile/testing.ts';
import { toCsv, toTable } from './recon.ts';

function report() {
  resetSeq();
  const r = new Reconciler('shop/orders', ordersVsInvoicesPolicy());
  r.ingest(orderEvent({ id: 'A', placedAt: '2026-11-20T15:00:00Z', total: '95.00' }));
  r.ingest(invoiceEvent({ orderId: 'A', issuedAt: '2026-11-21T15:00:00Z', total: '100.00' }));
  r.ingest(orderEvent({ id: 'B', channel: 'amazon-us', placedAt: '2026-11-20T16:00:00Z', total: '40.00' }));
  return r.report('2026-11-20', { final: true, version: 2, amendments: 1 });
}

describe('recon report output', () => {
  it('prints a table with totals, variance, breaches and one row per channel', () => {
    const text = toTable(report());
    expect(text).toContain(
      'Policy shop/orders  window 2026-11-20 (America/Chicago, cutoff 23:59)  FINAL v2 (1 amendment(s))',
    );
    expect(text).toContain(
      'Keys 2: matched 0, mismatched 1, missing in ERP 1, missing in channel 0, pending 0; match rate 0.00%',
    );
    expect(text).toContain('Variance (ERP - channel): -35.00 USD');
    expect(text).toMatch(/BREACHED: maxMissingPercent 50.00 > 0.5/);
    expect(text).toMatch(/^amazon-us\s+1\s+0\s+0\s+1\s+0\s+0\s+0.00\s+40.00 USD\s+-\s+-40.00 USD$/m);
  });

  it('prints CSV with one row per channel and currency', () => {
    const lines = toCsv(report()).trim().split('\n');
    expect(lines[0]).toBe(
      'policy,window,final,version,channel,keys,matched,mismatched,missing_erp,missing_channel,pending,match_rate,currency,channel_sum,erp_sum,variance',
    );
    expect(lines).toContain(
      'shop/orders,2026-11-20,true,2,shopify-us,1,0,1,0,0,0,0.00,USD,95.00,100.00,5.00',
    );
    expect(lines).toHaveLength(3);
  });
});
