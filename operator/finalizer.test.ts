// The finalizer helper against the in-memory API, which applies JSON Patch as the apiserver does
// (a failed `test` rejects the whole patch with 422).
import { describe, expect, it } from 'vitest';
import { addFinalizer, removeFinalizer } from './finalizer.ts';
import { KubeApiError } from './kube/errors.ts';
import { INTEGRATION_FLOWS, type KubeObject } from './kube/resources.ts';
import { FakeKube } from './testing/fake-kube.ts';

const F = 'tally.dev/cleanup';
const OTHER = 'example.com/backup';

function stored(finalizers?: string[]) {
  const kube = new FakeKube();
  const obj = kube.put(INTEGRATION_FLOWS, {
    metadata: { name: 'orders', namespace: 'shop', ...(finalizers ? { finalizers } : {}) },
  });
  const current = () => kube.object(INTEGRATION_FLOWS, 'shop', 'orders')!;
  return { kube, obj, current };
}

describe('addFinalizer', () => {
  it('adds the finalizer to an object without any', async () => {
    const { kube, obj, current } = stored();
    await addFinalizer(kube, INTEGRATION_FLOWS, obj, F);
    expect(current().metadata.finalizers).toEqual([F]);
  });

  it('appends to the list others keep, guarded by a test of that list', async () => {
    const { kube, obj, current } = stored([OTHER]);
    await addFinalizer(kube, INTEGRATION_FLOWS, obj, F);
    expect(current().metadata.finalizers).toEqual([OTHER, F]);
    expect(kube.writes('jsonPatch')[0]?.body).toEqual([
      { op: 'test', path: '/metadata/finalizers', value: [OTHER] },
      { op: 'add', path: '/metadata/finalizers/-', value: F },
    ]);
  });

  it('is idempotent: nothing is sent when the finalizer is there', async () => {
    const { kube, obj, current } = stored();
    await addFinalizer(kube, INTEGRATION_FLOWS, obj, F);
    await addFinalizer(kube, INTEGRATION_FLOWS, current(), F);
    expect(kube.writes('jsonPatch')).toHaveLength(1);
    expect(current().metadata.finalizers).toEqual([F]);
  });

  it('fails instead of replacing a list another controller added since the cache saw none', async () => {
    const { kube, obj, current } = stored();
    kube.put(INTEGRATION_FLOWS, { ...current(), metadata: { ...current().metadata, finalizers: [OTHER] } });
    const err = await addFinalizer(kube, INTEGRATION_FLOWS, obj, F).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeApiError);
    expect((err as KubeApiError).status).toBe(422);
    expect(current().metadata.finalizers).toEqual([OTHER]);
  });

  it('fails when the list changed since the cache saw it', async () => {
    const { kube, obj, current } = stored([OTHER]);
    kube.put(INTEGRATION_FLOWS, { ...current(), metadata: { ...current().metadata, finalizers: [] } });
    await expect(addFinalizer(kube, INTEGRATION_FLOWS, obj, F)).rejects.toBeInstanceOf(KubeApiError);
    expect(current().metadata.finalizers).toEqual([]);
  });
});

describe('removeFinalizer', () => {
  it('removes only its own entry with a test + remove at its index', async () => {
    const { kube, obj, current } = stored([OTHER, F]);
    await removeFinalizer(kube, INTEGRATION_FLOWS, obj, F);
    expect(current().metadata.finalizers).toEqual([OTHER]);
    expect(kube.writes('jsonPatch')[0]?.body).toEqual([
      { op: 'test', path: '/metadata/finalizers/1', value: F },
      { op: 'remove', path: '/metadata/finalizers/1' },
    ]);
  });

  it('is idempotent: nothing is sent when the finalizer is gone', async () => {
    const { kube, obj, current } = stored([F]);
    await removeFinalizer(kube, INTEGRATION_FLOWS, obj, F);
    await removeFinalizer(kube, INTEGRATION_FLOWS, current(), F);
    await removeFinalizer(kube, INTEGRATION_FLOWS, { metadata: { name: 'orders', namespace: 'shop' } }, F);
    expect(kube.writes('jsonPatch')).toHaveLength(1);
    expect(current().metadata.finalizers).toEqual([]);
  });

  it('never drops another finalizer when the list shifted under a stale copy', async () => {
    const { kube, obj, current } = stored([OTHER, F]);
    // Someone removes their own entry first: ours moves from index 1 to 0.
    const moved: KubeObject = { ...current(), metadata: { ...current().metadata, finalizers: [F] } };
    kube.put(INTEGRATION_FLOWS, moved);
    await expect(removeFinalizer(kube, INTEGRATION_FLOWS, obj, F)).rejects.toBeInstanceOf(KubeApiError);
    expect(current().metadata.finalizers).toEqual([F]);
    // The retry reads the object again and removes the right entry.
    await removeFinalizer(kube, INTEGRATION_FLOWS, current(), F);
    expect(current().metadata.finalizers).toEqual([]);
  });
});
