import { describe, expect, it } from 'vitest';
import { planWrite } from './target-write.ts';
import { encodeSegmentValue, fillUrl, UrlTemplateError } from './url-template.ts';

describe('fillUrl', () => {
  const data = { orderId: 'shopify-1', shipTo: { country: 'US' }, qty: 3, empty: '' };

  it('fills placeholders from values first, then from fields of the event, URL-encoded', () => {
    expect(
      fillUrl(
        'https://shop/admin/api/2025-10/orders/{shopifyOrderId}/fulfillments.json',
        { shopifyOrderId: '51' },
        data,
        's',
      ),
    ).toBe('https://shop/admin/api/2025-10/orders/51/fulfillments.json');
    expect(fillUrl('http://erp/salesOrder/eid:{orderId}?c={shipTo.country}&q={qty}', {}, data, 's')).toBe(
      'http://erp/salesOrder/eid:shopify-1?c=US&q=3',
    );
    expect(fillUrl('http://erp/o/{orderId}', { orderId: 'a/b?c#d e' }, data, 's')).toBe(
      'http://erp/o/a%2Fb%3Fc%23d%20e',
    );
  });

  it('never lets a value leave its path segment', () => {
    expect(encodeSegmentValue('..')).toBeUndefined();
    expect(encodeSegmentValue('.')).toBeUndefined();
    // Percent-encoded dots are dot segments to URL parsers too: such values are refused.
    expect(new URL('http://erp/api/orders/%2E%2E/lines').pathname).toBe('/api/lines');
    expect(() => fillUrl('http://erp/api/orders/{id}/lines', { id: '..' }, {}, 's')).toThrow(
      /\{id\} is "\.\.", which would change the URL's path/,
    );
    expect(new URL(fillUrl('http://erp/api/orders/{id}/lines', { id: '../x' }, {}, 's')).pathname).toBe(
      '/api/orders/..%2Fx/lines',
    );
  });

  it('names a placeholder the event does not give, and where it could have come from', () => {
    const fail = () => fillUrl('http://erp/o/{channelOrderId}', {}, data, 'sink shopify');
    expect(fail).toThrow(UrlTemplateError);
    expect(fail).toThrow(
      /sink shopify: the URL template names \{channelOrderId\}.*params.*field channelOrderId/,
    );
    // An empty value is as good as none: it would address the collection instead of the object.
    expect(() => fillUrl('http://erp/o/{empty}', {}, data, 's')).toThrow(/\{empty\}/);
    expect(() => fillUrl('http://erp/o/{shipTo}', {}, data, 's')).toThrow(/\{shipTo\}/);
  });
});

describe('planWrite', () => {
  const sink = {
    name: 'netsuite',
    url: 'http://erp/salesOrder/eid:{orderId}',
    method: 'PUT' as const,
    xref: { system: 'netsuite', entity: 'Order' as const, links: {} },
    update: { url: 'http://erp/salesOrder/{id}', method: 'PATCH' as const },
  };
  const data = { orderId: 'o-1' };

  it('creates while the target id is unknown, updates its id once known', () => {
    expect(planWrite(sink, undefined, {}, data)).toEqual({
      kind: 'create',
      method: 'PUT',
      url: 'http://erp/salesOrder/eid:o-1',
    });
    expect(planWrite(sink, '1042', {}, data)).toEqual({
      kind: 'update',
      method: 'PATCH',
      url: 'http://erp/salesOrder/1042',
    });
  });

  it('sends nothing again when the id is known and the sink has no update', () => {
    const { update: _u, ...createOnly } = sink;
    expect(planWrite(createOnly, '1042', {}, data)).toEqual({ kind: 'known' });
  });

  it('always creates without a cross-reference', () => {
    const { xref: _x, update: _u, ...plain } = sink;
    expect(planWrite(plain, '1042', {}, data).kind).toBe('create');
  });
});
