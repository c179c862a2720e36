import { describe, expect, it } from 'vitest';
import { memoryStateStore } from '../flow/state/kv-store.ts';
import { decodeId, encodeId, indexKey, parseRecordKey, recordKey } from './keys.ts';
import { isOlderVersion, mergeLinks } from './record.ts';
import { xrefStore } from './store.ts';

const by = { by: 'default/shopify-orders', at: '2026-12-04T10:00:00.000Z', version: '1' };

describe('keys', () => {
  it('encodes any id into a valid KV key and back', () => {
    for (const id of ['#1001', 'eid:SO/42', 'Müller €', 'a.b.>*', ' ']) {
      const k = indexKey('Order', 'shopify', id);
      expect(k).toMatch(/^[-/=.\w]+$/);
      expect(k.split('.')).toHaveLength(4);
      expect(decodeId(encodeId(id))).toBe(id);
    }
    expect(parseRecordKey(recordKey('Order', 'shopify-1'))).toEqual({ entity: 'Order', key: 'shopify-1' });
    expect(parseRecordKey(indexKey('Order', 'netsuite', '1'))).toBeUndefined();
  });
});

describe('mergeLinks', () => {
  it('adds ids, reports replaced ones, and says when nothing changed', () => {
    const first = mergeLinks(undefined, 'Order', 'k', { netsuite: '1' }, by);
    expect(first).toMatchObject({ unchanged: false, replaced: [], record: { ids: { netsuite: '1' } } });
    expect(mergeLinks(first.record, 'Order', 'k', { netsuite: '1' }, by).unchanged).toBe(true);
    const moved = mergeLinks(first.record, 'Order', 'k', { netsuite: '2', shopify: 's' }, by);
    expect(moved.replaced).toEqual([{ system: 'netsuite', previous: '1', id: '2' }]);
    expect(moved.record.ids).toEqual({ netsuite: '2', shopify: 's' });
    expect(first.record.ids).toEqual({ netsuite: '1' }); // not mutated
  });
});

describe('xrefStore', () => {
  it('links ids of one object and translates between systems', async () => {
    const store = xrefStore(memoryStateStore());
    await store.link({ entity: 'Order', key: 'shopify-51', ids: { shopify: '51' }, provenance: by });
    await store.link({
      entity: 'Order',
      key: 'shopify-51',
      ids: { netsuite: '1042', tally: 'x' },
      provenance: by,
    });
    expect(await store.get('Order', 'shopify-51')).toMatchObject({
      key: 'shopify-51',
      ids: { shopify: '51', netsuite: '1042' },
      provenance: { netsuite: by },
    });
    expect(await store.lookup('Order', 'netsuite', '1042', 'shopify')).toBe('51');
    expect(await store.lookup('Order', 'netsuite', '1042', 'tally')).toBe('shopify-51');
    expect(await store.lookup('Order', 'tally', 'shopify-51', 'netsuite')).toBe('1042');
    expect(await store.lookup('Order', 'netsuite', '9999', 'shopify')).toBeUndefined();
    expect(await store.lookup('Shipment', 'netsuite', '1042', 'shopify')).toBeUndefined();
  });

  it('concurrent links of one object all land (compare-and-set)', async () => {
    const store = xrefStore(memoryStateStore());
    await Promise.all(
      ['a', 'b', 'c', 'd', 'e'].map((s, i) =>
        store.link({ entity: 'Order', key: 'k', ids: { [s]: String(i) }, provenance: by }),
      ),
    );
    expect((await store.get('Order', 'k'))?.ids).toEqual({ a: '0', b: '1', c: '2', d: '3', e: '4' });
  });

  it('an id replaced or unlinked is no longer found by its old value', async () => {
    const store = xrefStore(memoryStateStore());
    await store.link({ entity: 'Order', key: 'k', ids: { netsuite: '1' }, provenance: by });
    await store.link({ entity: 'Order', key: 'k', ids: { netsuite: '2' }, provenance: by });
    expect(await store.find('Order', 'netsuite', '1')).toBeUndefined();
    expect((await store.find('Order', 'netsuite', '2'))?.key).toBe('k');
    expect(await store.unlink('Order', 'k', 'netsuite')).toBe(true);
    expect(await store.unlink('Order', 'k', 'netsuite')).toBe(false);
    expect(await store.find('Order', 'netsuite', '2')).toBeUndefined();
  });

  it('deletes a record with its index entries, and lists what is left', async () => {
    const state = memoryStateStore();
    const store = xrefStore(state);
    await store.link({ entity: 'Order', key: 'a', ids: { netsuite: '1' }, provenance: by });
    await store.link({ entity: 'Order', key: 'b', ids: { netsuite: '2' }, provenance: by });
    await store.link({
      entity: 'Customer',
      key: 'c-1',
      ids: { crm: 'acc-9' },
      provenance: by,
      data: { value: { customerId: 'c-1', parentAccountId: 'p-1' } },
    });
    expect(await store.delete('Order', 'a')).toBe(true);
    expect(await store.delete('Order', 'a')).toBe(false);
    expect(await store.find('Order', 'netsuite', '1')).toBeUndefined();
    const all = [];
    for await (const r of store.list()) all.push(r.key);
    expect(all.sort()).toEqual(['b', 'c-1']);
    const customers = [];
    for await (const r of store.list('Customer')) customers.push(r);
    expect(customers).toMatchObject([{ key: 'c-1', data: { parentAccountId: 'p-1' } }]);
    const keys = [];
    for await (const k of state.keys()) keys.push(k);
    expect(keys).not.toContain(indexKey('Order', 'netsuite', '1'));
  });
});

describe('master data versions', () => {
  it('orders numbers and timestamps; anything else is not older (the later write wins)', () => {
    expect(isOlderVersion('3', '10')).toBe(true);
    expect(isOlderVersion('10', '3')).toBe(false);
    expect(isOlderVersion('2026-11-20T10:00:00Z', '2026-11-21T09:00:00Z')).toBe(true);
    expect(isOlderVersion('abc', 'def')).toBe(false);
    expect(isOlderVersion('3', undefined)).toBe(false);
  });

  it('an older version never replaces newer master data', async () => {
    const store = xrefStore(memoryStateStore());
    const link = (name: string, version: string) =>
      store.link({
        entity: 'Customer',
        key: 'c-1',
        ids: {},
        provenance: { ...by, version },
        data: { value: { customerId: 'c-1', name }, version },
      });
    await link('newer', '20');
    await link('older', '10');
    expect((await store.get('Customer', 'c-1'))?.data).toEqual({ customerId: 'c-1', name: 'newer' });
    await link('newest', '30');
    expect((await store.get('Customer', 'c-1'))?.data).toEqual({ customerId: 'c-1', name: 'newest' });
  });
});
