// `tally xref get|list|put|delete` as a user runs it (the real binary in a child process) against a
// real nats-server with JetStream. Each test works in a namespace of its own (its own KV bucket);
// what the CLI wrote is checked through the store the flows use.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANONICAL_ENTITIES } from '../../api/canonical/index.ts';
import { connectState, type StateConnection } from '../../runtime/flow/state/kv-store.ts';
import { xrefBucketName } from '../../runtime/xref/keys.ts';
import type { XrefRecord } from '../../runtime/xref/record.ts';
import { type XrefStore, xrefStore } from '../../runtime/xref/store.ts';
import { type NatsServerHandle, startNatsServer } from '../harness/nats.ts';
import { freePort } from '../harness/ports.ts';
import { tally } from '../support/tally-cli.ts';

let nats: NatsServerHandle;
let dir: string;
const connections: StateConnection[] = [];
let namespaces = 0;

beforeAll(async () => {
  nats = await startNatsServer();
  dir = mkdtempSync(join(tmpdir(), 'tally-xref-'));
});

afterAll(async () => {
  await Promise.all(connections.splice(0).map((c) => c.close()));
  await nats?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A fresh namespace, the CLI bound to it, and the store the flows would use on its bucket. */
async function namespace(): Promise<{
  ns: string;
  xref: (sub: string, ...args: string[]) => ReturnType<typeof tally>;
  store: XrefStore;
}> {
  const ns = `xref-it-${++namespaces}`;
  const conn = await connectState([nats.url], 'xref-cli-test', xrefBucketName(ns), { history: 5 });
  connections.push(conn);
  return {
    ns,
    xref: (sub, ...args) => tally('xref', sub, ...args, '--nats-url', nats.url, '--namespace', ns),
    store: xrefStore(conn.store),
  };
}

const json = <T>(text: string) => JSON.parse(text) as T;

describe('tally xref', () => {
  it('put records ids by "cli"; get finds the record by key and by each system id', async () => {
    const { xref, store } = await namespace();
    const put = await xref(
      'put',
      '--entity',
      'Order',
      '--key',
      'SO-1001',
      '--id',
      'shopify=5123',
      '--id',
      'netsuite=1042',
    );
    expect(put.stderr).toBe('');
    expect(put.code).toBe(0);
    expect(put.stdout).toMatch(
      /^entity {2}Order\nkey {5}SO-1001\nids\n {2}netsuite {2}1042 +\(by cli, at \d{4}-/,
    );

    const stored = await store.get('Order', 'SO-1001');
    expect(stored?.ids).toEqual({ shopify: '5123', netsuite: '1042' });
    expect(stored?.provenance.shopify?.by).toBe('cli');
    expect(await store.lookup('Order', 'shopify', '5123', 'netsuite')).toBe('1042');

    const byKey = await xref('get', '--entity', 'Order', '--key', 'SO-1001', '-o', 'json');
    expect(byKey.code).toBe(0);
    expect(json<XrefRecord>(byKey.stdout)).toEqual(stored);

    const byId = await xref('get', '--entity', 'Order', '--system', 'netsuite', '--id', '1042');
    expect(byId.code).toBe(0);
    expect(byId.stdout).toBe(put.stdout);
    const byTally = await xref(
      'get',
      '--entity',
      'Order',
      '--system',
      'tally',
      '--id',
      'SO-1001',
      '-o',
      'json',
    );
    expect(json<XrefRecord>(byTally.stdout).key).toBe('SO-1001');
  });

  it('get shows who wrote each id: a flow with the entity version, the CLI', async () => {
    const { xref, store } = await namespace();
    await store.link({
      entity: 'Order',
      key: '#1001',
      ids: { shopify: '77' },
      provenance: { by: 'default/shopify-orders', version: '3', at: '2026-11-26T10:00:00.000Z' },
    });
    expect(
      (await xref('put', '--entity', 'Order', '--key', '#1001', '--id', 'netsuite=eid:SO/42')).code,
    ).toBe(0);
    const r = await xref('get', '--entity', 'Order', '--key', '#1001');
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines.slice(0, 3)).toEqual(['entity  Order', 'key     #1001', 'ids']);
    expect(lines[3]).toMatch(/^ {2}netsuite {2}eid:SO\/42 {3}\(by cli, at \d{4}-\d\d-\d\dT/);
    expect(lines[4]).toBe(
      '  shopify   77          (by default/shopify-orders, version 3, at 2026-11-26T10:00:00.000Z)',
    );
  });

  it('put keeps master data from --data, refuses "tally" ids and ids another record holds', async () => {
    const { xref, store } = await namespace();
    const file = join(dir, 'customer.json');
    writeFileSync(file, JSON.stringify({ name: 'Ada', email: 'ada@example.com' }));
    const put = await xref(
      'put',
      '--entity',
      'Customer',
      '--key',
      'C-1',
      '--id',
      'shopify=9',
      '--data',
      file,
      '-o',
      'json',
    );
    expect(put.code).toBe(0);
    expect(json<XrefRecord>(put.stdout).data).toEqual({ name: 'Ada', email: 'ada@example.com' });
    expect((await store.get('Customer', 'C-1'))?.data).toEqual({ name: 'Ada', email: 'ada@example.com' });

    const tallyId = await xref('put', '--entity', 'Customer', '--key', 'C-2', '--id', 'tally=C-2');
    expect(tallyId.code).toBe(2);
    expect(tallyId.stderr).toMatch(/the system "tally" is the canonical key itself/);

    const taken = await xref('put', '--entity', 'Customer', '--key', 'C-2', '--id', 'shopify=9');
    expect(taken.code).toBe(1);
    expect(taken.stderr).toMatch(
      /shopify id 9 belongs to Customer C-1 .*tally xref delete --entity Customer --key C-1 --system shopify/,
    );
    expect(await store.get('Customer', 'C-2')).toBeUndefined();
    expect(await store.resolve('Customer', 'shopify', '9')).toBe('C-1');

    const notJson = join(dir, 'bad.json');
    writeFileSync(notJson, '{nope');
    const bad = await xref(
      'put',
      '--entity',
      'Customer',
      '--key',
      'C-3',
      '--id',
      'shopify=10',
      '--data',
      notJson,
    );
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--data .*bad\.json is not JSON/);
  });

  it('list filters by entity and system, prints a table, csv and json, and says when --limit cut it', async () => {
    const { xref, store } = await namespace();
    const at = '2026-11-26T10:00:00.000Z';
    await store.link({ entity: 'Order', key: 'O-2', ids: { shopify: 's2' }, provenance: { by: 'f', at } });
    await store.link({
      entity: 'Order',
      key: 'O-1',
      ids: { shopify: 's1', netsuite: 'n1' },
      provenance: { by: 'f', at },
    });
    await store.link({ entity: 'Order', key: 'O-3', ids: { netsuite: 'n3' }, provenance: { by: 'f', at } });
    await store.link({
      entity: 'Product',
      key: 'SKU-1',
      ids: { shopify: 'p1' },
      provenance: { by: 'f', at },
    });

    const all = await xref('list');
    expect(all.code).toBe(0);
    expect(all.stdout).toBe(
      [
        'ENTITY   KEY    SYSTEM=ID ...',
        'Order    O-1    netsuite=n1 shopify=s1',
        'Order    O-2    shopify=s2',
        'Order    O-3    netsuite=n3',
        'Product  SKU-1  shopify=p1',
        '',
      ].join('\n'),
    );
    expect(all.stderr).toBe('4 records\n');

    const orders = await xref('list', '--entity', 'Order', '--system', 'shopify', '-o', 'json');
    expect(orders.code).toBe(0);
    expect(json<XrefRecord[]>(orders.stdout).map((r) => r.key)).toEqual(['O-1', 'O-2']);
    expect(orders.stderr).toBe('2 records\n');

    const csv = await xref('list', '--system', 'netsuite', '-o', 'csv');
    expect(csv.code).toBe(0);
    expect(csv.stdout).toBe(
      [
        'entity,key,system,id,by,version,at',
        `Order,O-1,netsuite,n1,f,,${at}`,
        `Order,O-1,shopify,s1,f,,${at}`,
        `Order,O-3,netsuite,n3,f,,${at}`,
        '',
      ].join('\n'),
    );

    const cut = await xref('list', '--entity', 'Order', '--limit', '2');
    expect(cut.code).toBe(0);
    expect(cut.stdout.trim().split('\n')).toHaveLength(3);
    expect(cut.stderr).toBe('3 records (first 2 shown; --limit to see more)\n');

    const none = await xref('list', '--entity', 'Invoice');
    expect(none).toMatchObject({ code: 0, stdout: '', stderr: '0 records\n' });
  });

  it('delete --system unlinks one id, delete removes the record and its index entries', async () => {
    const { xref, store } = await namespace();
    expect(
      (
        await xref(
          'put',
          '--entity',
          'Shipment',
          '--key',
          'SH-1',
          '--id',
          'shopify=f1',
          '--id',
          'netsuite=if9',
        )
      ).code,
    ).toBe(0);

    const unlink = await xref('delete', '--entity', 'Shipment', '--key', 'SH-1', '--system', 'shopify');
    expect(unlink).toMatchObject({ code: 0, stdout: 'unlinked shopify id f1 from Shipment SH-1\n' });
    expect((await store.get('Shipment', 'SH-1'))?.ids).toEqual({ netsuite: 'if9' });
    expect(await store.resolve('Shipment', 'shopify', 'f1')).toBeUndefined();
    const gone = await xref('get', '--entity', 'Shipment', '--system', 'shopify', '--id', 'f1');
    expect(gone.code).toBe(1);

    const again = await xref('delete', '--entity', 'Shipment', '--key', 'SH-1', '--system', 'shopify');
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/Shipment SH-1 has no shopify id \(it has netsuite\): nothing to delete/);

    const del = await xref('delete', '--entity', 'Shipment', '--key', 'SH-1');
    expect(del).toMatchObject({ code: 0, stdout: 'deleted Shipment SH-1 (netsuite=if9)\n' });
    expect(await store.get('Shipment', 'SH-1')).toBeUndefined();
    expect(await store.resolve('Shipment', 'netsuite', 'if9')).toBeUndefined();

    const twice = await xref('delete', '--entity', 'Shipment', '--key', 'SH-1');
    expect(twice.code).toBe(1);
    expect(twice.stderr).toMatch(
      /no Shipment record with key SH-1 in KV bucket tally_xref_xref-it-\d+.*nothing to delete/,
    );
  });

  it('get of a missing record exits 1 naming what was looked up', async () => {
    const { ns, xref } = await namespace();
    const byKey = await xref('get', '--entity', 'Invoice', '--key', 'INV-404');
    expect(byKey).toMatchObject({ code: 1, stdout: '' });
    expect(byKey.stderr).toBe(
      `tally xref: no Invoice record with key INV-404 in KV bucket tally_xref_${ns} (namespace ${ns})\n`,
    );
    const byId = await xref('get', '--entity', 'Invoice', '--system', 'netsuite', '--id', '404');
    expect(byId.code).toBe(1);
    expect(byId.stderr).toMatch(/no Invoice record with netsuite id 404 in KV bucket/);
  });

  it('a bad entity is a usage error listing the canonical entities', async () => {
    const { xref } = await namespace();
    const r = await xref('get', '--entity', 'Widget', '--key', 'k');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      `--entity Widget is not a canonical entity: expected one of ${CANONICAL_ENTITIES.join(', ')}`,
    );
  });

  it('--help prints the usage and exits 0; bad usage exits 2', async () => {
    const top = await tally('xref', '--help');
    expect(top.code).toBe(0);
    expect(top.stdout).toMatch(/^Usage: tally xref <get\|list\|put\|delete>/);
    for (const sub of ['get', 'list', 'put', 'delete']) {
      const r = await tally('xref', sub, '--help');
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^Usage: tally xref ${sub} `));
    }
    const bad = await tally('xref', 'list', '--limit', 'x', '--nats-url', nats.url);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--limit x: expected a positive integer/);
  });

  it('an unreachable NATS exits 1 with "cannot connect to NATS at URL", without the credentials', async () => {
    const port = await freePort();
    const r = await tally('xref', 'list', '--nats-url', `nats://alice:s3cret@127.0.0.1:${port}`);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      new RegExp(`^tally xref: cannot connect to NATS at nats://\\*\\*\\*@127\\.0\\.0\\.1:${port}: `),
    );
    expect(r.stderr).not.toContain('s3cret');
    expect(r.stderr).not.toContain('alice');
  });
});
