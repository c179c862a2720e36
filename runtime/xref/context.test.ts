import { describe, expect, it } from 'vitest';
import { compileMapping } from '../mapping/engine.ts';
import type { MappingDefinition } from '../mapping/types.ts';
import { fixtureSource, readsXrefs, withXrefs, XrefMissingError, type XrefSource } from './context.ts';
import type { XrefRecord } from './record.ts';

const records: XrefRecord[] = [
  { entity: 'Order', key: 'shopify-51', ids: { shopify: '51', netsuite: '1042' }, provenance: {} },
  {
    entity: 'Customer',
    key: 'cust-7',
    ids: { shopify: '7000' },
    provenance: {},
    data: { customerId: 'cust-7', parentAccountId: 'acme-group', region: 'EMEA', tier: 'gold' },
  },
];

/** Counts the reads a mapping causes. */
function counting(source: XrefSource) {
  const reads: string[] = [];
  return {
    reads,
    source: {
      find: (e: string, s: string, id: string) => {
        reads.push(`${e}/${s}/${id}`);
        return source.find(e, s, id);
      },
    },
  };
}

function shipmentMapping(
  expression: string,
  path: 'fast' | 'interpreter',
): ReturnType<typeof compileMapping> {
  const def: MappingDefinition = {
    name: 'default/erp-shipment',
    generation: 1,
    entity: 'Shipment',
    expression,
    businessKey: 'shipmentId',
    lookups: {},
    limits: { timeoutMs: 1000, maxDepth: 500 },
  };
  return compileMapping(def, { path });
}

const SHIPMENT = `{
  "shipmentId": "IF-" & id,
  "orderId": $xref("Order", "netsuite", createdFrom, "tally"),
  "carrier": "UPS", "trackingNumber": tracking, "status": "shipped",
  "lines": [{"sku": "MUG-WHT", "quantity": 1}]
}`;

describe.each(['fast', 'interpreter'] as const)('cross-references in a mapping (%s path)', (path) => {
  it('fetches each reference once and maps with it', async () => {
    const mapping = shipmentMapping(SHIPMENT, path);
    const { reads, source } = counting(fixtureSource(records));
    const { output } = await withXrefs(source, (b) =>
      mapping.map({ id: '9', createdFrom: '1042', tracking: '1Z' }, b),
    );
    expect(output).toMatchObject({ shipmentId: 'IF-9', orderId: 'shopify-51' });
    expect(reads).toEqual(['Order/netsuite/1042']);
  });

  it('waits (a transient XrefMissingError) for a reference not there yet', async () => {
    const mapping = shipmentMapping(SHIPMENT, path);
    const run = withXrefs(fixtureSource(records), (b) =>
      mapping.map({ id: '9', createdFrom: '2000', tracking: '1Z' }, b),
    );
    await expect(run).rejects.toBeInstanceOf(XrefMissingError);
    await expect(run).rejects.toMatchObject({
      permanent: false,
      wanted: { entity: 'Order', system: 'netsuite', id: '2000', toSystem: 'tally' },
      message: expect.stringMatching(
        /waiting for cross-reference: Order "2000" of netsuite has no tally id yet/,
      ),
    });
  });

  it('$xrefFind gives nothing instead of waiting; $customer gives master data', async () => {
    const mapping = shipmentMapping(
      `{
        "shipmentId": "S1", "orderId": $xrefFind("Order", "netsuite", "2000", "tally") ? "found" : "absent",
        "warehouse": $customer("shopify", "7000").parentAccountId,
        "status": "shipped", "lines": [{"sku": "MUG-WHT", "quantity": 1}]
      }`,
      path,
    );
    const { output } = await withXrefs(fixtureSource(records), (b) => mapping.map({}, b));
    expect(output).toMatchObject({ orderId: 'absent', warehouse: 'acme-group' });
  });

  it('without a store, a mapping that reads one fails and says why', async () => {
    const mapping = shipmentMapping(SHIPMENT, path);
    await expect(
      withXrefs(undefined, (b) => mapping.map({ id: '9', createdFrom: '1042' }, b)),
    ).rejects.toThrow(/no cross-reference store here/);
  });
});

describe('withXrefs', () => {
  it('several references are fetched round by round, each once', async () => {
    const mapping = shipmentMapping(
      `{
        "shipmentId": $xref("Order", "netsuite", "1042", "shopify"),
        "orderId": $xref("Order", "shopify", $xref("Order", "netsuite", "1042", "shopify"), "tally"),
        "status": "shipped", "lines": [{"sku": "MUG-WHT", "quantity": 1}]
      }`,
      'fast',
    );
    const { reads, source } = counting(fixtureSource(records));
    const { output } = await withXrefs(source, (b) => mapping.map({}, b));
    expect(output).toMatchObject({ shipmentId: '51', orderId: 'shopify-51' });
    expect(reads.sort()).toEqual(['Order/netsuite/1042', 'Order/shopify/51']);
  });
});

describe('readsXrefs', () => {
  it('sees direct calls of the cross-reference functions only', () => {
    expect(readsXrefs('$xref("Order", "netsuite", id, "tally")')).toBe(true);
    expect(readsXrefs('{"c": $customer ("shopify", customer.id)}')).toBe(true);
    expect(readsXrefs('$xrefFind("Order", "a", "b", "c")', 'orderId')).toBe(true);
    expect(readsXrefs('{"orderId": xref}', '$string(id)')).toBe(false);
  });
});
