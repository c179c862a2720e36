// A ReconcileContext over the in-memory fakes, and small valid resources to start tests from.
import { type Logger, pino } from 'pino';
import { API_VERSION } from '../../api/common.ts';
import { EventRecorder } from '../events.ts';
import type { Cache } from '../kube/informer.ts';
import { EVENTS, type ResourceType } from '../kube/resources.ts';
import type { ReconcileContext, TallyObject } from '../reconcile/context.ts';
import { FakeJetStream } from './fake-jetstream.ts';
import { FakeKube } from './fake-kube.ts';

export const NOW = new Date('2026-03-02T10:00:00.000Z');

/** A cache holding exactly the given objects. */
export function cacheOf(objects: TallyObject[]): Cache<TallyObject> {
  return {
    get: (namespace, name) =>
      objects.find((o) => o.metadata.namespace === namespace && o.metadata.name === name),
    list: () => [...objects],
  };
}

export interface FakeWorld {
  ctx: ReconcileContext;
  kube: FakeKube;
  jsm: FakeJetStream;
}

/**
 * A context whose caches hold `flows` and `mappings` as given (also stored in the fake API, so
 * status writes and finalizer patches find them).
 */
export function fakeWorld(
  opts: { flows?: TallyObject[]; mappings?: TallyObject[]; log?: Logger; kube?: FakeKube } = {},
): FakeWorld {
  const kube = opts.kube ?? new FakeKube();
  const jsm = new FakeJetStream();
  const log = opts.log ?? pino({ level: 'silent' });
  return {
    kube,
    jsm,
    ctx: {
      client: kube,
      jsm: () => jsm,
      kvm: () => jsm.kvm(),
      flows: cacheOf(opts.flows ?? []),
      mappings: cacheOf(opts.mappings ?? []),
      events: new EventRecorder(kube, 'operator-test', log),
      log,
      now: () => NOW,
      render: { image: 'ghcr.io/tally-dev/tally:test' },
      workerNatsServers: ['nats://127.0.0.1:4222'],
    },
  };
}

/** A resource as the API would hold it (uid, generation, resourceVersion set). */
export function resource(
  kind: 'IntegrationFlow' | 'CanonicalMapping' | 'ReconciliationPolicy',
  name: string,
  spec: Record<string, unknown>,
  extra: Partial<TallyObject['metadata']> & { status?: TallyObject['status'] } = {},
): TallyObject {
  const { status, ...metadata } = extra;
  return {
    apiVersion: API_VERSION,
    kind,
    metadata: {
      name,
      namespace: 'shop',
      uid: `uid-${name}`,
      generation: 1,
      resourceVersion: '1',
      ...metadata,
    },
    spec,
    ...(status ? { status } : {}),
  };
}

/** A valid IntegrationFlow spec: webhook in, one HTTP sink. */
export function flowSpec(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    channel: 'shopify-us',
    entity: 'Order',
    mappingRef: { name: 'shopify-order' },
    source: { type: 'webhook', webhook: { path: '/webhooks/orders', signature: { scheme: 'none' } } },
    sinks: [{ name: 'erp', type: 'http', http: { url: 'http://erp.example:8080/orders' } }],
    ...overrides,
  };
}

const usd = (amount: string) => ({ amount, currency: 'USD' });

/** A valid canonical Order. */
export const ORDER = {
  orderId: 'shopify-1',
  channel: 'shopify-us',
  status: 'confirmed',
  placedAt: '2026-03-01T09:00:00Z',
  currency: 'USD',
  lines: [
    {
      lineId: '1',
      sku: 'SKU-1',
      quantity: 1,
      unitPrice: usd('9.50'),
      discounts: [],
      taxLines: [],
      total: usd('9.50'),
    },
  ],
  discounts: [],
  taxLines: [],
  totals: {
    subtotal: usd('9.50'),
    discountTotal: usd('0.00'),
    taxTotal: usd('0.00'),
    shippingTotal: usd('0.00'),
    grandTotal: usd('9.50'),
  },
};

/** A valid inbound CanonicalMapping spec (the payload is already an Order), with one passing test. */
export function mappingSpec(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    channel: 'shopify-us',
    entity: 'Order',
    businessKey: 'orderId',
    expression: '$',
    tests: [{ name: 'as-is', input: ORDER, expected: ORDER }],
    ...overrides,
  };
}

/** A mapping whose current generation was checked and is Ready. */
export function readyMapping(name = 'shopify-order', spec = mappingSpec()): TallyObject {
  return resource('CanonicalMapping', name, spec, {
    status: {
      observedGeneration: 1,
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          reason: 'TestsPassed',
          message: '1 test passed',
          observedGeneration: 1,
          lastTransitionTime: '2026-03-01T00:00:00Z',
        },
      ],
    },
  });
}

/** The last status the operator wrote for an object (server-side apply of the status subresource). */
export function lastStatus(kube: FakeKube, r: ResourceType, name: string) {
  const writes = kube.writes('apply', r).filter((c) => c.subresource === 'status' && c.name === name);
  const body = writes.at(-1)?.body as TallyObject | undefined;
  return body?.status;
}

/** A condition of the last written status. */
export function lastCondition(kube: FakeKube, r: ResourceType, name: string, type: string) {
  return lastStatus(kube, r, name)?.conditions?.find((c) => c.type === type);
}

/** Reasons of the Events recorded about `name`, oldest first. */
export function eventReasons(kube: FakeKube, name: string): string[] {
  return kube
    .writes('create', EVENTS)
    .map((c) => c.body as { reason: string; regarding: { name: string } })
    .filter((e) => e.regarding.name === name)
    .map((e) => e.reason);
}
