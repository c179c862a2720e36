// writeStatus and stall: status is written only when it changed, an Event only when Ready's status
// or reason changed, and stall ends the reconcile with a TerminalError of the same reason.
import { describe, expect, it } from 'vitest';
import { TerminalError } from '../errors.ts';
import { EVENTS, INTEGRATION_FLOWS } from '../kube/resources.ts';
import { fakeWorld, resource } from '../testing/context.ts';
import { FakeKube } from '../testing/fake-kube.ts';
import { stall, type TallyObject, writeStatus } from './context.ts';

function world() {
  const kube = new FakeKube();
  const flow = kube.put(INTEGRATION_FLOWS, resource('IntegrationFlow', 'orders', {}));
  const w = fakeWorld({ kube, flows: [flow] });
  /** The flow as the next reconcile reads it (status included). */
  const reread = () => kube.object<TallyObject>(INTEGRATION_FLOWS, 'shop', 'orders')!;
  const statusWrites = () =>
    kube.writes('apply', INTEGRATION_FLOWS).filter((c) => c.subresource === 'status');
  const events = () =>
    kube.writes('create', EVENTS).map((c) => c.body as { type: string; reason: string; note: string });
  return { ...w, flow, reread, statusWrites, events };
}

const stalled = { ready: false, stalled: true, reason: 'InvalidSpec', message: 'spec.x: bad' } as const;

describe('writeStatus', () => {
  it('writes the conditions at the observed generation and a Warning Event with the same reason', async () => {
    const { ctx, flow, statusWrites, events } = world();
    await writeStatus(ctx, INTEGRATION_FLOWS, flow, stalled, { stream: 's' });
    const [write] = statusWrites();
    expect(write?.body).toMatchObject({ status: { observedGeneration: 1, stream: 's' } });
    expect(events()).toEqual([
      expect.objectContaining({ type: 'Warning', reason: 'InvalidSpec', note: 'spec.x: bad' }),
    ]);
  });

  it('writes nothing, and records no Event, when the status is unchanged', async () => {
    const { ctx, flow, reread, statusWrites, events } = world();
    await writeStatus(ctx, INTEGRATION_FLOWS, flow, stalled, { stream: 's' });
    await writeStatus(ctx, INTEGRATION_FLOWS, reread(), stalled, { stream: 's' });
    expect(statusWrites()).toHaveLength(1);
    expect(events()).toHaveLength(1);
  });

  it('writes a new message but records an Event only when Ready’s status or reason changes', async () => {
    const { ctx, flow, reread, statusWrites, events } = world();
    await writeStatus(ctx, INTEGRATION_FLOWS, flow, stalled);
    await writeStatus(ctx, INTEGRATION_FLOWS, reread(), { ...stalled, message: 'spec.y: bad' });
    await writeStatus(ctx, INTEGRATION_FLOWS, reread(), { ready: true, reason: 'Reconciled', message: 'ok' });
    expect(statusWrites()).toHaveLength(3);
    expect(events().map((e) => `${e.type} ${e.reason}`)).toEqual([
      'Warning InvalidSpec',
      'Normal Reconciled',
    ]);
  });
});

describe('stall', () => {
  it('writes Stalled, then throws a TerminalError with the same reason and message', async () => {
    const { ctx, flow, reread } = world();
    const err = await stall(ctx, INTEGRATION_FLOWS, flow, {
      reason: 'InvalidSpec',
      message: 'spec.x: bad',
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TerminalError);
    expect(err).toMatchObject({ reason: 'InvalidSpec', message: 'spec.x: bad', code: 'TERMINAL' });
    expect(reread().status?.conditions?.find((c) => c.type === 'Stalled')).toMatchObject({
      status: 'True',
      reason: 'InvalidSpec',
      message: 'spec.x: bad',
    });
  });
});
