import { readFileSync } from 'node:fs';
import * as yaml from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { canonicalEventSchema } from '../../api/envelope.ts';
import { compileMapping } from '../mapping/index.ts';
import { traceFromSeed } from './trace.ts';
import { createTransform, failureOf, TransformFailure } from './transform.ts';

const example = yaml.load(
  readFileSync(new URL('../../examples/shopify-orders/mapping.yaml', import.meta.url), 'utf8'),
) as { spec: { expression: string; tests: { input: Record<string, unknown> }[] } };

const mapping = compileMapping({
  name: 'shop/shopify-order',
  generation: 3,
  entity: 'Order',
  expression: example.spec.expression,
  businessKey: 'orderId',
  lookups: { orderStatus: { values: { paid: 'confirmed' }, default: 'pending' } },
  limits: { timeoutMs: 1_000, maxDepth: 500 },
});
const transform = createTransform(
  {
    flow: { namespace: 'shop', name: 'shopify-orders', channel: 'shopify-us', entity: 'Order' },
    mapping: mapping.definition,
  },
  mapping,
);
const input = (data: string) => ({
  data: Buffer.from(data),
  sourceMsgId: 'wh-1',
  trace: traceFromSeed('wh-1'),
  storedAtMs: Date.parse('2026-11-20T16:15:03Z'),
});

describe('createTransform', () => {
  it('gives the serialised event and its head (everything but the data), and the order total', async () => {
    const r = await transform(input(JSON.stringify(example.spec.tests[0]!.input)));
    if (!r.ok) throw new Error(r.failure.message);
    const sent = canonicalEventSchema.parse(JSON.parse(Buffer.from(r.body).toString('utf8')));
    const { data, ...head } = sent;
    expect(r.head).toEqual(head);
    expect(r.head.time).toBe('2026-11-20T16:15:03.000Z');
    expect(r.grandTotal).toEqual((data as { totals: { grandTotal: unknown } }).totals.grandTotal);
  });

  it('classifies what fails, so the failure can travel as plain data', async () => {
    const bad = await transform(input('{not json'));
    expect(bad).toMatchObject({ ok: false, failure: { reason: 'invalid_json', permanent: true } });
    const invalid = await transform(input('{"id": 1}'));
    expect(invalid.ok).toBe(false);
    if (invalid.ok) return;
    expect(invalid.failure.reason).toMatch(/^mapping_/);
    const err = new TransformFailure(invalid.failure);
    expect(err.name).toBe(invalid.failure.errorClass);
    expect(failureOf(err)).toBe(invalid.failure);
    expect(failureOf(new Error('boom'))).toMatchObject({ reason: 'internal', permanent: false });
  });
});
