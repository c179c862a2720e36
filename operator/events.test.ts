import { describe, expect, it } from 'vitest';
import { EventRecorder } from './events.ts';
import { KubeApiError } from './kube/errors.ts';
import { EVENTS } from './kube/resources.ts';
import { FakeKube } from './testing/fake-kube.ts';
import { captureLog } from './testing/log.ts';

const flow = {
  apiVersion: 'tally.dev/v1alpha1',
  kind: 'IntegrationFlow',
  metadata: { name: 'orders', namespace: 'shop', uid: 'u1' },
};

describe('EventRecorder', () => {
  it('records an events.k8s.io Event about the object with the reason and a bounded note', async () => {
    const kube = new FakeKube();
    const { log } = captureLog();
    await new EventRecorder(kube, 'operator-0', log).record(flow, 'Warning', 'InvalidSpec', 'x'.repeat(2000));
    const [event] = kube.writes('create', EVENTS).map((c) => c.body as Record<string, unknown>);
    expect(event).toMatchObject({
      type: 'Warning',
      reason: 'InvalidSpec',
      reportingController: 'tally.dev/operator',
      reportingInstance: 'operator-0',
      regarding: { kind: 'IntegrationFlow', name: 'orders', namespace: 'shop', uid: 'u1' },
    });
    expect(event?.note).toHaveLength(1024);
  });

  it('never fails the caller when the Event cannot be written, and logs the error itself', async () => {
    const kube = new FakeKube();
    kube.failWith = () => new KubeApiError(403, 'Forbidden', 'events is forbidden');
    const { log, lines } = captureLog();
    await expect(
      new EventRecorder(kube, 'operator-0', log).record(flow, 'Normal', 'Reconciled', 'ok'),
    ).resolves.toBeUndefined();
    const line = lines.find((l) => l.msg === 'could not record event');
    expect(line).toMatchObject({
      reason: 'Reconciled',
      err: { type: 'KubeApiError', code: 'KUBE_API', status: 403 },
    });
  });
});
