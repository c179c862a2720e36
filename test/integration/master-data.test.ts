// Item master data end to end: NetSuite item events (examples/netsuite-items) become Product master
// records in the namespace's cross-reference store, found by the NetSuite id and every channel SKU,
// and a mapping resolves an Amazon seller SKU to the canonical product with $product.
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import * as yaml from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalMappingSpecSchema } from '../../api/canonical-mapping.ts';
import { outboundDefinition } from '../../runtime/mapping/definition.ts';
import { compileOutboundMapping } from '../../runtime/mapping/outbound.ts';
import { withXrefs } from '../../runtime/xref/context.ts';
import { type NatsServerHandle, startNatsServer } from '../harness/nats.ts';
import { waitUntil } from '../harness/process.ts';
import { repoPath } from '../harness/tools.ts';
import { startExampleFlows } from './support/two-way.ts';

const SECRET = 'demo-netsuite-item-secret'; // examples/netsuite-items/secret.yaml

let nats: NatsServerHandle;
let nc: NatsConnection;
beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
});
afterAll(async () => {
  await nc?.close();
  await nats?.stop();
});

function signed(body: string): Record<string, string> {
  const ts = String(Math.floor(Date.now() / 1000));
  return {
    'content-type': 'application/json',
    'x-signature-timestamp': ts,
    'x-signature': createHmac('sha256', SECRET).update(`${ts}.${body}`).digest('hex'),
  };
}

describe('item master data', () => {
  it('keeps each item as a Product found by any of its ids, and $product resolves a seller SKU with it', async () => {
    const run = await startExampleFlows({
      nc,
      natsUrl: nats.url,
      namespace: 'md-items',
      paths: [repoPath('examples/netsuite-items')],
      hosts: {},
    });
    try {
      const url = `http://127.0.0.1:${run.flow('netsuite-items').worker.port}/webhooks/netsuite/items`;
      const item = {
        eventType: 'item.update',
        item: {
          id: '503',
          itemId: 'MUG-WHT',
          displayName: 'White mug 11 oz',
          class: { refName: 'Home : Kitchen' },
          custitem_shopify_sku: 'MUG-WHT',
          custitem_amazon_sku: 'MUG-WHT-11OZ',
        },
      };
      const body = JSON.stringify(item);
      const res = await fetch(url, { method: 'POST', headers: signed(body), body });
      expect(res.status).toBe(202);
      await waitUntil(
        'the product is kept',
        async () => (await run.store.get('Product', 'MUG-WHT')) !== undefined,
      );
      const record = await run.store.get('Product', 'MUG-WHT');
      expect(record).toMatchObject({
        ids: { netsuite: '503', shopify: 'MUG-WHT', amazon: 'MUG-WHT-11OZ' },
        data: { sku: 'MUG-WHT', family: 'home', uom: 'EA' },
        provenance: { amazon: { by: 'md-items/netsuite-items' } },
      });
      expect((await run.store.find('Product', 'amazon', 'MUG-WHT-11OZ'))?.key).toBe('MUG-WHT');

      // The example's $product mapping, evaluated against the real store.
      const doc = yaml
        .loadAll(readFileSync(repoPath('examples/netsuite-items/netsuite-item.yaml'), 'utf8'))
        .find(
          (d) => (d as { metadata?: { name?: string } }).metadata?.name === 'amazon-order-line-product',
        ) as {
        spec: unknown;
      };
      const mapping = compileOutboundMapping(
        outboundDefinition(
          'md-items/amazon-order-line-product',
          1,
          canonicalMappingSpecSchema.parse(doc.spec),
          {},
        ),
      );
      const rendered = await withXrefs(run.store, (b) =>
        mapping.render({ orderId: 'amazon-1', lines: [{ channelSku: 'MUG-WHT-11OZ', quantity: 3 }] }, b),
      );
      expect(rendered.value).toEqual({
        orderId: 'amazon-1',
        lines: [{ sku: 'MUG-WHT', family: 'home', quantity: 3 }],
      });

      // A later change of the item replaces its master data.
      const renamed = JSON.stringify({ ...item, item: { ...item.item, displayName: 'White mug 12 oz' } });
      await fetch(url, { method: 'POST', headers: signed(renamed), body: renamed });
      await waitUntil('the change is kept', async () => {
        const r = await run.store.get('Product', 'MUG-WHT');
        return (r?.data as { name?: string } | undefined)?.name === 'White mug 12 oz';
      });
    } finally {
      await run.stop();
    }
  });
});
