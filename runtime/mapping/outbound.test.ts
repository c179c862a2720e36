import { describe, expect, it } from 'vitest';
import { fixtureSource, withXrefs } from '../xref/context.ts';
import { encodeForm, xmlEscape } from './encode.ts';
import { compileOutboundMapping, type OutboundMappingDefinition } from './outbound.ts';
import { runOutboundTestCases } from './test-cases.ts';

function def(over: Partial<OutboundMappingDefinition>): OutboundMappingDefinition {
  return {
    name: 'default/out',
    generation: 1,
    entity: 'Shipment',
    expression: '{"fulfillment": {"tracking_number": trackingNumber}}',
    output: { format: 'json' },
    headers: {},
    params: {},
    lookups: {},
    limits: { timeoutMs: 1000, maxDepth: 500 },
    ...over,
  };
}

const shipment = {
  shipmentId: 'IF-9',
  orderId: 'shopify-51',
  carrier: 'UPS',
  trackingNumber: '1Z<&>',
  status: 'shipped',
  lines: [{ sku: 'MUG-WHT', quantity: 2 }],
};

describe('compileOutboundMapping', () => {
  it('renders a JSON body, headers and URL params from the canonical entity', async () => {
    const m = compileOutboundMapping(
      def({
        headers: { 'X-Carrier': 'carrier', 'X-None': 'missingField' },
        params: { shopifyOrderId: '$xref("Order", "tally", orderId, "shopify")' },
      }),
    );
    const records = [{ entity: 'Order', key: 'shopify-51', ids: { shopify: '51' }, provenance: {} }];
    const r = await withXrefs(fixtureSource(records), (b) => m.render(shipment, b));
    expect(JSON.parse(r.body.toString())).toEqual({ fulfillment: { tracking_number: '1Z<&>' } });
    expect(r.contentType).toBe('application/json; charset=utf-8');
    expect(r.headers).toEqual({ 'X-Carrier': 'UPS' });
    expect(r.params).toEqual({ shopifyOrderId: '51' });
  });

  it('encodes form bodies (arrays repeat their key) and refuses nested values', async () => {
    expect(encodeForm({ a: 'x y', n: 2, b: true, list: ['1', '2'], skip: null })).toBe(
      'a=x+y&n=2&b=true&list=1&list=2',
    );
    const m = compileOutboundMapping(
      def({ output: { format: 'form' }, expression: '{"tracking": trackingNumber}' }),
    );
    expect((await m.render(shipment)).body.toString()).toBe('tracking=1Z%3C%26%3E');
    const nested = compileOutboundMapping(
      def({ output: { format: 'form' }, expression: '{"lines": lines}' }),
    );
    await expect(nested.render(shipment)).rejects.toThrow(
      /form: field "lines" is an array|form: field "lines" is a object/,
    );
  });

  it('xml and text bodies are strings the expression builds, with $xmlEscape for values', async () => {
    const m = compileOutboundMapping(
      def({
        output: { format: 'xml', contentType: 'text/xml; charset=utf-8' },
        expression: '"<Shipment><Tracking>" & $xmlEscape(trackingNumber) & "</Tracking></Shipment>"',
      }),
    );
    const r = await m.render(shipment);
    expect(r.body.toString()).toBe('<Shipment><Tracking>1Z&lt;&amp;&gt;</Tracking></Shipment>');
    expect(r.contentType).toBe('text/xml; charset=utf-8');
    expect(xmlEscape(`a'"`)).toBe('a&apos;&quot;');
    const notText = compileOutboundMapping(def({ output: { format: 'xml' }, expression: '{"a": 1}' }));
    await expect(notText.render(shipment)).rejects.toThrow(
      /format is xml, so spec.expression must give the document as a string/,
    );
  });

  it('a header that gives an object is an error naming the header', async () => {
    const m = compileOutboundMapping(def({ headers: { 'X-Lines': 'lines' } }));
    await expect(m.render(shipment)).rejects.toThrow(/spec.headers.X-Lines must give a string/);
  });
});

describe('runOutboundTestCases', () => {
  const mapping = def({
    params: { shopifyOrderId: '$xref("Order", "tally", orderId, "shopify")' },
    headers: { 'X-Carrier': 'carrier' },
  });
  const xrefs = [{ entity: 'Order', key: 'shopify-51', ids: { shopify: '51' } }];

  it('checks body, headers and params, with the case xref fixtures', async () => {
    const [ok, wrong] = await runOutboundTestCases(mapping, [
      {
        name: 'ok',
        input: shipment,
        expected: { fulfillment: { tracking_number: '1Z<&>' } },
        match: 'exact',
        xrefs,
        expectedHeaders: { 'x-carrier': 'UPS' },
        expectedParams: { shopifyOrderId: '51' },
      },
      {
        name: 'wrong',
        input: shipment,
        expected: { fulfillment: { tracking_number: '1Z<&>' } },
        match: 'exact',
        xrefs,
        expectedParams: { shopifyOrderId: '52' },
      },
    ]);
    expect(ok).toEqual({ name: 'ok', passed: true });
    expect(wrong?.passed).toBe(false);
    expect(wrong?.diff).toMatch(/params\.shopifyOrderId/);
  });

  it('an expected error passes only when the mapping fails that way', async () => {
    const results = await runOutboundTestCases(mapping, [
      {
        name: 'waits',
        input: shipment,
        expected: null,
        match: 'exact',
        xrefs: [],
        expectedError: 'waiting for cross-reference',
      },
      { name: 'succeeds', input: shipment, expected: null, match: 'exact', xrefs, expectedError: 'waiting' },
    ]);
    expect(results.map((r) => r.passed)).toEqual([true, false]);
    expect(results[1]?.error).toMatch(/expected an error containing "waiting", but the mapping succeeded/);
  });

  it('an input that is not a valid canonical entity fails the case, saying so', async () => {
    const [r] = await runOutboundTestCases(mapping, [
      { name: 'bad', input: { shipmentId: 'x' }, expected: {}, match: 'exact', xrefs },
    ]);
    expect(r?.error).toMatch(/the case's input is not a valid Shipment/);
  });
});
