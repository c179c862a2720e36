// The controller over the in-memory Kubernetes API and JetStream: how reconcile outcomes are
// counted (tally_operator_reconcile_total), retried or not, and logged.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Controller } from './controller.ts';
import { EventRecorder } from './events.ts';
import { KubeTransportError } from './kube/errors.ts';
import { CANONICAL_MAPPINGS, INTEGRATION_FLOWS, RECONCILIATION_POLICIES } from './kube/resources.ts';
import { operatorMetrics } from './metrics.ts';
import type { TallyObject } from './reconcile/context.ts';
import { flowSpec, mappingSpec, NOW, readyMapping, resource } from './testing/context.ts';
import { FakeJetStream } from './testing/fake-jetstream.ts';
import { FakeKube } from './testing/fake-kube.ts';
import { captureLog } from './testing/log.ts';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const FLOW_KEY = 'IntegrationFlow/shop/orders';
const badUrl = flowSpec({
  sinks: [{ name: 'erp', type: 'http', http: { url: 'ftp://erp.example/orders' } }],
});

/** A running controller over a fake API seeded with `objects`. */
function start(kube: FakeKube) {
  const { log, lines } = captureLog();
  const metrics = operatorMetrics();
  const jsm = new FakeJetStream();
  const controller = new Controller({
    client: kube,
    log,
    metrics,
    context: {
      jsm: () => jsm,
      kvm: () => jsm.kvm(),
      events: new EventRecorder(kube, 'operator-test', log),
      now: () => NOW,
      render: { image: 'ghcr.io/tally-dev/tally:test' },
      workerNatsServers: ['nats://127.0.0.1:4222'],
    },
  });
  const retries = vi.spyOn(controller.queue, 'addRateLimited');
  const delayed = vi.spyOn(controller.queue, 'addAfter');
  const stop = new AbortController();
  const running = controller.run(stop.signal);
  cleanups.push(async () => {
    stop.abort();
    await running;
  });
  /** Reconcile counts as "kind result reason". */
  const counts = async () =>
    Object.fromEntries(
      (await metrics.reconciles.get()).values.map((v) => [
        [v.labels.kind, v.labels.result, v.labels.reason].filter(Boolean).join(' '),
        v.value,
      ]),
    );
  return { controller, lines, counts, retries, delayed };
}

function seed(kube: FakeKube, flows: TallyObject[], mappings: TallyObject[] = []) {
  for (const m of mappings) kube.put(CANONICAL_MAPPINGS, m);
  for (const f of flows) kube.put(INTEGRATION_FLOWS, f);
}

describe('Controller', () => {
  it('counts an invalid spec as result="terminal" with its reason, and does not retry it', async () => {
    const kube = new FakeKube();
    seed(kube, [resource('IntegrationFlow', 'orders', badUrl)]);
    const { controller, counts, retries, delayed } = start(kube);
    await vi.waitFor(async () =>
      expect(await counts()).toHaveProperty(['IntegrationFlow terminal InvalidSpec']),
    );
    expect(await counts()).toEqual({ 'IntegrationFlow terminal InvalidSpec': 1 });
    expect(retries).not.toHaveBeenCalled();
    expect(delayed).not.toHaveBeenCalled();
    expect(controller.queue.failures(FLOW_KEY)).toBe(0);
  });

  it('counts terminal mappings and policies by kind and reason too', async () => {
    const kube = new FakeKube();
    kube.put(CANONICAL_MAPPINGS, resource('CanonicalMapping', 'broken', mappingSpec({ expression: 42 })));
    kube.put(RECONCILIATION_POLICIES, resource('ReconciliationPolicy', 'recon', { window: 'daily' }));
    const { counts } = start(kube);
    await vi.waitFor(async () => expect(Object.keys(await counts())).toHaveLength(2));
    expect(await counts()).toEqual({
      'CanonicalMapping terminal InvalidSpec': 1,
      'ReconciliationPolicy terminal InvalidSpec': 1,
    });
  });

  it('reconciles a terminal resource again when it changes', async () => {
    const kube = new FakeKube();
    seed(kube, [resource('IntegrationFlow', 'orders', badUrl)], [readyMapping()]);
    const { counts } = start(kube);
    await vi.waitFor(async () =>
      expect(await counts()).toHaveProperty(['IntegrationFlow terminal InvalidSpec']),
    );
    kube.put(INTEGRATION_FLOWS, resource('IntegrationFlow', 'orders', flowSpec(), { generation: 2 }));
    await vi.waitFor(async () => expect(await counts()).toHaveProperty(['IntegrationFlow success']));
    expect(await counts()).toMatchObject({
      'IntegrationFlow terminal InvalidSpec': 1,
      'IntegrationFlow success': 1,
    });
  });

  it('retries a failure that is not terminal with backoff, counted as result="error" without a reason', async () => {
    const kube = new FakeKube();
    seed(kube, [resource('IntegrationFlow', 'orders', badUrl)]);
    // The Stalled status cannot be written: not the user's to fix, so not terminal.
    kube.failWith = (call) =>
      call.subresource === 'status'
        ? new KubeTransportError('PATCH integrationflows/orders/status: connection reset', {
            cause: new Error('ECONNRESET'),
          })
        : undefined;
    const { controller, counts, retries } = start(kube);
    await vi.waitFor(() => expect(retries).toHaveBeenCalledWith(FLOW_KEY));
    expect(await counts()).toHaveProperty(['IntegrationFlow error']);
    expect(await counts()).not.toHaveProperty(['IntegrationFlow terminal InvalidSpec']);
    expect(controller.queue.failures(FLOW_KEY)).toBeGreaterThanOrEqual(1);
  });

  it('logs a failed reconcile with the error itself: type, code, stack and cause', async () => {
    const kube = new FakeKube();
    seed(kube, [resource('IntegrationFlow', 'orders', badUrl)]);
    kube.failWith = (call) =>
      call.subresource === 'status'
        ? new KubeTransportError('PATCH integrationflows/orders/status: connection reset', {
            cause: new Error('ECONNRESET'),
          })
        : undefined;
    const { lines, retries } = start(kube);
    await vi.waitFor(() => expect(retries).toHaveBeenCalled());
    const line = lines.find((l) => l.msg === 'reconcile failed, will retry');
    expect(line).toMatchObject({
      key: FLOW_KEY,
      err: { type: 'KubeTransportError', code: 'KUBE_TRANSPORT' },
    });
    const err = line!.err as { stack: string; message: string };
    expect(err.stack).toContain('caused by: Error: ECONNRESET');
  });

  it('logs a terminal reconcile with its reason and the error', async () => {
    const kube = new FakeKube();
    seed(kube, [resource('IntegrationFlow', 'orders', badUrl)]);
    const { lines, counts } = start(kube);
    await vi.waitFor(async () =>
      expect(await counts()).toHaveProperty(['IntegrationFlow terminal InvalidSpec']),
    );
    const line = lines.find((l) => l.key === FLOW_KEY && l.level >= 40);
    expect(line).toMatchObject({
      reason: 'InvalidSpec',
      err: { type: 'TerminalError', code: 'TERMINAL', reason: 'InvalidSpec' },
    });
    expect((line!.err as { message: string }).message).toMatch(/^spec\.sinks\[0\]\.http\.url: /);
  });
});
