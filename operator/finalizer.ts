// Finalizer helper after kube-rs's finalizer.rs: add on first sight, run idempotent cleanup on
// delete, then remove with a JSON Patch `test` + `remove` so a concurrent change to the list
// makes the patch fail (and the reconcile retry) instead of dropping someone else's finalizer.
import type { KubeApi } from './kube/client.ts';
import type { KubeObject, ResourceType } from './kube/resources.ts';

export async function addFinalizer(
  client: KubeApi,
  r: ResourceType,
  obj: KubeObject,
  finalizer: string,
): Promise<void> {
  const list = obj.metadata.finalizers;
  if (list?.includes(finalizer)) return;
  const ops = list
    ? [
        { op: 'test', path: '/metadata/finalizers', value: list },
        { op: 'add', path: '/metadata/finalizers/-', value: finalizer },
      ]
    : [
        // `add` of a member that exists replaces it, and JSON Patch cannot test for absence: the
        // resourceVersion guards against a list another controller added since the cache saw it.
        ...(obj.metadata.resourceVersion
          ? [{ op: 'test', path: '/metadata/resourceVersion', value: obj.metadata.resourceVersion }]
          : []),
        { op: 'add', path: '/metadata/finalizers', value: [finalizer] },
      ];
  await client.jsonPatch(r, obj.metadata.namespace!, obj.metadata.name, ops);
}

export async function removeFinalizer(
  client: KubeApi,
  r: ResourceType,
  obj: KubeObject,
  finalizer: string,
): Promise<void> {
  const index = obj.metadata.finalizers?.indexOf(finalizer) ?? -1;
  if (index < 0) return;
  await client.jsonPatch(r, obj.metadata.namespace!, obj.metadata.name, [
    { op: 'test', path: `/metadata/finalizers/${index}`, value: finalizer },
    { op: 'remove', path: `/metadata/finalizers/${index}` },
  ]);
}
