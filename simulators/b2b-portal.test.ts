import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type B2bPortalSimulator, type PortalInvoice, startB2bPortalSimulator } from './b2b-portal.ts';

let sim: B2bPortalSimulator;
beforeEach(async () => {
  sim = await startB2bPortalSimulator({ username: 'u', password: 'p', buyers: ['BUYER-1'] });
});
afterEach(() => sim.close());

const invoice = (over: Partial<PortalInvoice> = {}): PortalInvoice => ({
  invoiceNumber: 'INV-1002',
  purchaseOrderNumber: 'PO-77',
  buyerId: 'BUYER-1',
  issueDate: '2026-11-21',
  dueDate: '2026-12-21',
  currency: 'USD',
  lines: [
    {
      lineNumber: 1,
      sku: 'TSHIRT-M-BLK',
      description: 'T-shirt',
      quantity: 2,
      unitPrice: '19.99',
      amount: '39.98',
    },
    { lineNumber: 2, sku: 'MUG-WHT', quantity: 1, unitPrice: '9.50', amount: '9.50' },
  ],
  taxTotal: '4.95',
  total: '54.43',
  ...over,
});

async function post(body: unknown, auth: string | null = 'u:p') {
  const res = await fetch(`${sim.url}/api/v1/invoices`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(auth !== null && { authorization: `Basic ${Buffer.from(auth).toString('base64')}` }),
    },
    body: JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, body: JSON.parse(await res.text()) };
}

describe('b2b portal simulator', () => {
  it('receives a correct invoice', async () => {
    const r = await post(invoice());
    expect(r).toMatchObject({ status: 201, body: { invoiceId: 'INV-P-1', status: 'received' } });
    expect(sim.invoices()).toEqual([
      expect.objectContaining({ invoiceId: 'INV-P-1', invoiceNumber: 'INV-1002', total: '54.43' }),
    ]);
  });

  it('sums in exact decimals: 0.10 + 0.20 is 0.30', async () => {
    const r = await post(
      invoice({
        lines: [
          { lineNumber: 1, sku: 'A', quantity: 1, unitPrice: '0.10', amount: '0.10' },
          { lineNumber: 2, sku: 'B', quantity: 1, unitPrice: '0.20', amount: '0.20' },
        ],
        taxTotal: '0.00',
        total: '0.30',
      }),
    );
    expect(r.status).toBe(201);
  });

  it('refuses missing or wrong Basic credentials', async () => {
    for (const auth of [null, 'u:wrong']) {
      const r = await post(invoice(), auth);
      expect(r).toMatchObject({ status: 401, body: { error: 'unauthorized' } });
    }
    expect(sim.invoices()).toHaveLength(0);
  });

  it('answers 422 validation_failed with field details', async () => {
    const fieldsOf = async (body: unknown) => {
      const r = await post(body);
      expect(r.status).toBe(422);
      expect(r.body.error).toBe('validation_failed');
      return (r.body.details as { field: string; message: string }[]).map((d) => d.field);
    };
    expect(await fieldsOf(invoice({ total: '54.42' }))).toEqual(['total']);
    expect(await fieldsOf(invoice({ total: '49.48' }))).toEqual(['total']); // tax dropped
    expect(await fieldsOf({ ...invoice(), total: 54.43 })).toEqual(['total']);
    expect(await fieldsOf(invoice({ taxTotal: '4.950' }))).toEqual(['taxTotal']);
    expect(await fieldsOf({ ...invoice(), poNumber: 'PO-77' })).toEqual(['poNumber']);
    expect(await fieldsOf(invoice({ dueDate: '2026-11-01' }))).toEqual(['dueDate']);
    expect(await fieldsOf(invoice({ buyerId: 'BUYER-9' }))).toEqual(['buyerId']);
    expect(await fieldsOf(invoice({ lines: [] }))).toEqual(['lines']);
    expect(
      await fieldsOf(
        invoice({
          lines: [{ lineNumber: 1, sku: 'A', quantity: 2, unitPrice: '19.99', amount: '39.99' }],
          taxTotal: '0.00',
          total: '39.99',
        }),
      ),
    ).toEqual(['lines[0].amount']);
    expect(sim.invoices()).toHaveLength(0);
  });

  it('answers 409 duplicate with the existing invoice id for a repeated invoiceNumber', async () => {
    await post(invoice());
    const r = await post(invoice());
    expect(r).toMatchObject({ status: 409, body: { error: 'duplicate', invoiceId: 'INV-P-1' } });
    expect(sim.invoices()).toHaveLength(1);
    expect(sim.counts.duplicates).toBe(1);
  });

  it('failNext answers 429/503 first with Retry-After', async () => {
    sim.failNext([503, 429], 5);
    const a = await post(invoice());
    expect(a.status).toBe(503);
    expect(a.headers.get('retry-after')).toBe('5');
    const b = await post(invoice());
    expect(b).toMatchObject({ status: 429, body: { error: 'rate_limited' } });
    expect((await post(invoice())).status).toBe(201);
    expect(sim.requests).toHaveLength(3);
  });
});
