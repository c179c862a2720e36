import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type SpApiSimulator, startSpApiSimulator } from './sp-api.ts';

const TOKEN = 'Atza|test';
const SELLER = 'A1SELLER';
let sim: SpApiSimulator;

beforeEach(async () => {
  sim = await startSpApiSimulator({ accessToken: TOKEN });
  sim.addListing(SELLER, 'MUG-WHT');
});
afterEach(() => sim.close());

const inventory = (quantity: unknown) => ({
  productType: 'PRODUCT',
  patches: [
    {
      op: 'replace',
      path: '/attributes/fulfillment_availability',
      value: [{ fulfillment_channel_code: 'DEFAULT', quantity }],
    },
  ],
});

async function patch(
  body: unknown,
  { sku = 'MUG-WHT', query = '?marketplaceIds=ATVPDKIKX0DER', token = TOKEN } = {},
) {
  const res = await fetch(
    `${sim.url}/listings/2021-08-01/items/${SELLER}/${encodeURIComponent(sku)}${query}`,
    {
      method: 'PATCH',
      headers: { 'content-type': 'application/json', ...(token && { 'x-amz-access-token': token }) },
      body: JSON.stringify(body),
    },
  );
  return { status: res.status, headers: res.headers, body: JSON.parse(await res.text()) };
}

describe('sp-api simulator', () => {
  it('accepts an inventory patch and applies the DEFAULT quantity', async () => {
    const r = await patch(inventory(7));
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      sku: 'MUG-WHT',
      status: 'ACCEPTED',
      submissionId: expect.stringMatching(/^[0-9a-f]{32}$/),
      issues: [],
    });
    expect(sim.quantity(SELLER, 'MUG-WHT')).toBe(7);
    expect(sim.requests[0]).toMatchObject({ method: 'PATCH', body: inventory(7) });
    expect(r.headers.get('x-amzn-requestid')).toBeTruthy();
  });

  it('decodes SKUs with reserved characters and accepts comma-separated marketplaces', async () => {
    sim.addListing(SELLER, 'MUG/WHT 12');
    const r = await patch(inventory(0), {
      sku: 'MUG/WHT 12',
      query: '?marketplaceIds=ATVPDKIKX0DER,A2EUQ1WTGCTBG2',
    });
    expect(r.status).toBe(200);
    expect(sim.quantity(SELLER, 'MUG/WHT 12')).toBe(0);
  });

  it('VALIDATION_PREVIEW validates without applying', async () => {
    const r = await patch(inventory(3), { query: '?marketplaceIds=ATVPDKIKX0DER&mode=VALIDATION_PREVIEW' });
    expect(r.body.status).toBe('VALID');
    expect(sim.quantity(SELLER, 'MUG-WHT')).toBeUndefined();
  });

  it('answers 403 Unauthorized without the right x-amz-access-token', async () => {
    for (const token of ['', 'Atza|other']) {
      const r = await patch(inventory(1), { token });
      expect(r.status).toBe(403);
      expect(r.body).toEqual({
        errors: [{ code: 'Unauthorized', message: 'Access to requested resource is denied.', details: '' }],
      });
    }
  });

  it('answers 400 InvalidInput for bad query parameters and bad patch shapes', async () => {
    const cases: [unknown, string?][] = [
      [inventory(1), ''],
      [inventory(1), '?marketplaceIds=NOPE'],
      [inventory(-1)],
      [inventory('5')],
      [inventory(1.5)],
      [
        {
          productType: 'PRODUCT',
          patches: [
            { op: 'replace', path: '/attributes/fulfillment_availability', value: [{ quantity: 1 }] },
          ],
        },
      ],
      [
        {
          productType: 'PRODUCT',
          patches: [{ op: 'set', path: '/attributes/fulfillment_availability', value: [] }],
        },
      ],
      [{ productType: 'PRODUCT', patches: [{ op: 'replace', path: 'fulfillment_availability', value: [] }] }],
      [{ productType: 'PRODUCT', patches: [{ op: 'replace', path: '/attributes/item_name', value: 'Mug' }] }],
      [{ productType: 'PRODUCT', patches: [] }],
      [{ patches: inventory(1).patches }],
      [{ ...inventory(1), sku: 'MUG-WHT' }],
      [
        {
          productType: 'PRODUCT',
          patches: [
            {
              op: 'replace',
              path: '/attributes/fulfillment_availability',
              value: [{ fulfillment_channel_code: 'DEFAULT', qty: 1 }],
            },
          ],
        },
      ],
    ];
    for (const [body, query] of cases) {
      const r = await patch(body, query === undefined ? {} : { query });
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.errors).toEqual([{ code: 'InvalidInput', message: expect.any(String), details: '' }]);
    }
    expect(sim.quantity(SELLER, 'MUG-WHT')).toBeUndefined();
    expect(sim.counts.rejected).toBe(cases.length);
  });

  it('answers 404 NotFound for a sku the seller has not listed', async () => {
    const r = await patch(inventory(1), { sku: 'NOPE' });
    expect(r.status).toBe(404);
    expect(r.body.errors[0]).toMatchObject({ code: 'NotFound', details: '' });
  });

  it('failNext([429], 1) answers QuotaExceeded with Retry-After, then accepts', async () => {
    sim.failNext([429], 1);
    const r = await patch(inventory(4));
    expect(r.status).toBe(429);
    expect(r.headers.get('retry-after')).toBe('1');
    expect(r.body).toEqual({
      errors: [
        {
          code: 'QuotaExceeded',
          message: 'You exceeded your quota for the requested resource.',
          details: '',
        },
      ],
    });
    expect(sim.quantity(SELLER, 'MUG-WHT')).toBeUndefined();
    expect((await patch(inventory(4))).status).toBe(200);
    expect(sim.quantity(SELLER, 'MUG-WHT')).toBe(4);
    expect(sim.counts).toMatchObject({ faultsInjected: 1, accepted: 1 });
  });

  it('GET returns the listing with the applied attributes', async () => {
    await patch(inventory(9));
    const res = await fetch(
      `${sim.url}/listings/2021-08-01/items/${SELLER}/MUG-WHT?marketplaceIds=ATVPDKIKX0DER`,
      {
        headers: { 'x-amz-access-token': TOKEN },
      },
    );
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      sku: 'MUG-WHT',
      attributes: { fulfillment_availability: [{ fulfillment_channel_code: 'DEFAULT', quantity: 9 }] },
    });
  });
});
