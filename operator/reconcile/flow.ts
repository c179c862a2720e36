// IntegrationFlow reconcile, in numbered steps. Level-based: every step re-reads the world and
// is safe to repeat; status is rebuilt from what this pass found, never from the old status.
import { canonicalMappingSpecSchema } from '../../api/canonical-mapping.ts';
import { type IntegrationFlowSpec, integrationFlowSpecSchema } from '../../api/integration-flow.ts';
import { partitionKeyProblem } from '../../runtime/flow/partition.ts';
import { LookupNotFoundError } from '../errors.ts';
import { addFinalizer, removeFinalizer } from '../finalizer.ts';
import { isNotFound } from '../kube/errors.ts';
import { CONFIG_MAPS, DEPLOYMENTS, INTEGRATION_FLOWS, SERVICES } from '../kube/resources.ts';
import {
  deleteFlowNats,
  ensureFlowNats,
  ensureNamespaceStreams,
  NatsImmutableSettingError,
} from '../nats/provisioner.ts';
import { renderFlowObjects } from '../render/flow-objects.ts';
import { FINALIZER, flowWorkerName } from '../render/labels.ts';
import { renderWorkerConfig } from '../render/worker-config.ts';
import type { Outcome } from '../status/conditions.ts';
import { type ReconcileContext, type ReconcileResult, type TallyObject, writeStatus } from './context.ts';
import { resolveLookups } from './lookups.ts';

export const FLOW_REASONS = {
  reconciled: 'Reconciled',
  invalidSpec: 'InvalidSpec',
  invalidPartitionKey: 'InvalidPartitionKey',
  mappingNotFound: 'MappingNotFound',
  mappingNotReady: 'MappingNotReady',
  mappingEntityMismatch: 'MappingEntityMismatch',
  waitingForMapping: 'WaitingForMapping',
  lookupNotFound: 'LookupNotFound',
  natsUnavailable: 'NatsUnavailable',
  natsImmutableSetting: 'NatsImmutableSetting',
} as const;

export async function reconcileFlow(
  ctx: ReconcileContext,
  namespace: string,
  name: string,
): Promise<ReconcileResult> {
  // 1. Read the flow from the cache; gone means nothing to do (cleanup ran under the finalizer).
  const flow = ctx.flows.get(namespace, name);
  if (!flow) return {};
  const ref = { namespace, name };
  const status = (outcome: Outcome, fields?: Record<string, unknown>) =>
    writeStatus(ctx, INTEGRATION_FLOWS, flow, outcome, fields);

  // 2. Being deleted: clean up, then let it go.
  if (flow.metadata.deletionTimestamp) {
    if (flow.metadata.finalizers?.includes(FINALIZER)) {
      await cleanupFlow(ctx, flow);
      await removeFinalizer(ctx.client, INTEGRATION_FLOWS, flow, FINALIZER);
    }
    return {};
  }

  // 3. Make sure cleanup will run when it is deleted.
  await addFinalizer(ctx.client, INTEGRATION_FLOWS, flow, FINALIZER);

  // 4. The spec (defaults applied). The apiserver validated it; this guards older objects.
  const parsed = integrationFlowSpecSchema.safeParse(flow.spec);
  if (!parsed.success) {
    await status({
      ready: false,
      stalled: true,
      reason: FLOW_REASONS.invalidSpec,
      message: parsed.error.message,
    });
    return {};
  }
  const spec = parsed.data;
  const keyProblem = spec.delivery.partitionKey ? partitionKeyProblem(spec.delivery.partitionKey) : undefined;
  if (keyProblem) {
    await status({
      ready: false,
      stalled: true,
      reason: FLOW_REASONS.invalidPartitionKey,
      message: `spec.delivery.partitionKey ${keyProblem}`,
    });
    return {};
  }

  // 5. Resolve the mapping; its own reconcile has run its tests.
  const mapping = ctx.mappings.get(namespace, spec.mappingRef.name);
  if (!mapping) {
    await status({
      ready: false,
      stalled: true,
      reason: FLOW_REASONS.mappingNotFound,
      message: `CanonicalMapping ${namespace}/${spec.mappingRef.name} does not exist: create it or fix spec.mappingRef.name`,
    });
    return {};
  }
  const mappingSpec = canonicalMappingSpecSchema.safeParse(mapping.spec);
  const mappingReady = mapping.status?.conditions?.find((c) => c.type === 'Ready');
  if (mappingSpec.success && mappingSpec.data.entity !== spec.entity) {
    await status({
      ready: false,
      stalled: true,
      reason: FLOW_REASONS.mappingEntityMismatch,
      message: `the flow produces ${spec.entity} but CanonicalMapping ${spec.mappingRef.name} produces ${mappingSpec.data.entity}`,
    });
    return {};
  }
  if (
    !mappingSpec.success ||
    mapping.status?.observedGeneration !== mapping.metadata.generation ||
    !mappingReady
  ) {
    await status({
      ready: false,
      progressing: true,
      reason: FLOW_REASONS.waitingForMapping,
      message: `waiting for CanonicalMapping ${spec.mappingRef.name} to be checked`,
    });
    return {};
  }
  if (mappingReady.status !== 'True') {
    // Workers keep the last good config: nothing below runs until the mapping is fixed.
    await status({
      ready: false,
      stalled: true,
      reason: FLOW_REASONS.mappingNotReady,
      message: `CanonicalMapping ${spec.mappingRef.name} is not ready (${mappingReady.reason}): ${mappingReady.message}`,
    });
    return {};
  }

  // 6. Lookup tables, with ConfigMap ones read now.
  let lookups: Awaited<ReturnType<typeof resolveLookups>>;
  try {
    lookups = await resolveLookups(ctx.client, namespace, mappingSpec.data.lookups);
  } catch (err) {
    if (!(err instanceof LookupNotFoundError)) throw err;
    await status({
      ready: false,
      progressing: true,
      reason: FLOW_REASONS.lookupNotFound,
      message: err.message,
    });
    return { requeueAfterMs: 30_000 };
  }

  // 7. JetStream: the flow stream, the dead-letter stream and the shared durable consumer.
  let nats: Awaited<ReturnType<typeof ensureFlowNats>>;
  try {
    await ensureNamespaceStreams(ctx.jsm(), namespace);
    nats = await ensureFlowNats(ctx.jsm(), ref, spec);
  } catch (err) {
    if (err instanceof NatsImmutableSettingError) {
      await status({
        ready: false,
        stalled: true,
        reason: FLOW_REASONS.natsImmutableSetting,
        message: err.message,
      });
      return {};
    }
    await status({
      ready: false,
      progressing: true,
      reason: FLOW_REASONS.natsUnavailable,
      message: `cannot create the flow's JetStream resources: ${(err as Error).message}`,
    });
    throw err; // retry with backoff
  }

  // 8. Desired objects, rendered by pure functions and applied with server-side apply.
  const worker = renderWorkerConfig({
    namespace,
    name,
    spec,
    mapping: {
      name: mapping.metadata.name,
      generation: mapping.metadata.generation ?? 0,
      spec: mappingSpec.data,
    },
    lookups,
    natsServers: ctx.workerNatsServers,
  });
  const objects = renderFlowObjects({ namespace, name, uid: flow.metadata.uid!, spec }, worker, ctx.render);
  await ctx.client.apply(CONFIG_MAPS, objects.configMap);
  await ctx.client.apply(DEPLOYMENTS, objects.deployment);
  if (objects.service) {
    await ctx.client.apply(SERVICES, objects.service);
  } else {
    await deleteIfPresent(ctx, SERVICES, namespace, flowWorkerName(name));
  }

  // 9. Status from what exists now.
  await status(
    {
      ready: true,
      reason: FLOW_REASONS.reconciled,
      message: `workers run as Deployment ${flowWorkerName(name)} (${replicasOf(spec)} replicas, config ${objects.hash}); stream ${nats.stream}${nats.retiredConsumers.length ? `; ${nats.retiredConsumers.length} consumer(s) of removed partitions still hold messages (status.retiredConsumers): drain them as docs/delivery.md describes` : ''}`,
    },
    {
      stream: nats.stream,
      consumer: nats.consumer,
      deadLetterSubject: nats.deadLetterSubject,
      configHash: objects.hash,
      mappingGeneration: mapping.metadata.generation,
      replicas: replicasOf(spec),
      ...(nats.retiredConsumers.length ? { retiredConsumers: nats.retiredConsumers } : {}),
    },
  );
  return {};
}

function replicasOf(spec: IntegrationFlowSpec): number {
  return spec.suspend ? 0 : spec.replicas;
}

/**
 * Idempotent cleanup: owned objects are deleted explicitly (a cluster's garbage collector would
 * also do it through owner references, but the operator does not depend on one), then the NATS
 * resources unless the deletion policy retains them.
 */
async function cleanupFlow(ctx: ReconcileContext, flow: TallyObject): Promise<void> {
  const namespace = flow.metadata.namespace!;
  const name = flow.metadata.name;
  const worker = flowWorkerName(name);
  for (const r of [DEPLOYMENTS, SERVICES, CONFIG_MAPS]) await deleteIfPresent(ctx, r, namespace, worker);
  const policy = (flow.spec as { deletionPolicy?: string }).deletionPolicy ?? 'Delete';
  if (policy === 'Delete') {
    await deleteFlowNats(ctx.jsm(), { namespace, name });
    ctx.log.info({ flow: `${namespace}/${name}` }, 'deleted the flow NATS resources');
  } else {
    ctx.log.info({ flow: `${namespace}/${name}` }, 'kept the flow NATS resources (deletionPolicy Retain)');
  }
}

async function deleteIfPresent(
  ctx: ReconcileContext,
  r: typeof DEPLOYMENTS,
  namespace: string,
  name: string,
): Promise<void> {
  try {
    await ctx.client.delete(r, namespace, name);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}
