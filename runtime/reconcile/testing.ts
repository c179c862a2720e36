// Builders for reconciliation tests and benchmarks: canonical orders, invoices, returns and
// inventory levels as the flows would produce them. No I/O.
import type { ReconciliationPolicySpec } from '../../api/reconciliation-policy.ts';
import { reconciliationPolicySpecSchema } from '../../api/reconciliation-policy.ts';
import type { ReconEvent } from './types.ts';

const money = (amount: string, currency = 'USD') => ({ amount, currency });

export function ordersVsInvoicesPolicy(
  overrides: Partial<Record<string, unknown>> = {},
): ReconciliationPolicySpec {
  return reconciliationPolicySpecSchema.parse({
    channel: {
      entity: 'Order',
      keyFields: ['orderId'],
      businessTimeField: 'placedAt',
      amountField: 'totals.grandTotal',
    },
    erp: {
      entity: 'Invoice',
      keyFields: ['orderId'],
      businessTimeField: 'issuedAt',
      amountField: 'totals.grandTotal',
    },
    compare: [
      {
        name: 'grand-total',
        channelField: 'totals.grandTotal',
        erpField: 'totals.grandTotal',
        rule: 'absolute',
        toleranceMinor: 0,
      },
      {
        name: 'invoiced-within',
        channelField: 'placedAt',
        erpField: 'issuedAt',
        rule: 'dateLag',
        maxLag: '72h',
      },
    ],
    window: { timeZone: 'America/Chicago', cutoff: '23:59', lateness: '48h' },
    thresholds: { maxMissingPercent: '0.5', maxVarianceAmount: '100.00' },
    ...overrides,
  });
}

let seq = 0;
export function resetSeq(): void {
  seq = 0;
}

export function orderEvent(o: {
  id: string;
  channel?: string;
  placedAt: string;
  total: string;
  version?: number;
}): ReconEvent {
  return {
    side: 'channel',
    seq: ++seq,
    eventId: `ev-${seq}`,
    channel: o.channel ?? 'shopify-us',
    flow: `${o.channel ?? 'shopify-us'}-orders`,
    data: {
      orderId: o.id,
      placedAt: o.placedAt,
      ...(o.version !== undefined ? { version: o.version } : {}),
      totals: { grandTotal: money(o.total) },
    },
  };
}

export function invoiceEvent(i: {
  orderId: string;
  issuedAt: string;
  total: string;
  invoiceId?: string;
}): ReconEvent {
  return {
    side: 'erp',
    seq: ++seq,
    eventId: `ev-${seq}`,
    channel: 'erp',
    flow: 'erp-invoices',
    data: {
      invoiceId: i.invoiceId ?? `INV-${i.orderId}`,
      orderId: i.orderId,
      issuedAt: i.issuedAt,
      totals: { grandTotal: money(i.total) },
    },
  };
}
