// IntegrationFlow reconcile, in numbered steps. Level-based: every step re-reads the world and
// is safe to repeat; status is rebuilt from what this pass found, never from the old status.
import { type CanonicalMappingSpec, canonicalMappingSpecSchema } from '../../api/canonical-mapping.ts';
import { type IntegrationFlowSpec, integrationFlowSpecSchema } from '../../api/integration-flow.ts';
import { partitionKeyProblem } from '../../runtime/flow/partition.ts';
import { xrefBucketName } from '../../runtime/xref/keys.ts';
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
import { FINALIZER, flowWorkerName } from '../render/labels.ts';
import { type ResolvedOutboundMapping, renderWorkerConfig } from '../render/worker-config.ts';
import { renderFlowObjects } from '../render/worker-objects.ts';
import type { Outcome } from '../status/conditions.ts';
import { describeSpecIssues } from '../status/spec-issues.ts';
import {
  type ReconcileContext,
  type ReconcileResult,
  stall,
  type TallyObject,
  writeStatus,
} from './context.ts';
import { resolveLookups } from './lookups.ts';

export const FLOW_REASONS = {
  reconciled: 'Reconciled',
  invalidSpec: 'InvalidSpec',
  invalidPartitionKey: 'InvalidPartitionKey',
  mappingNotFound: 'MappingNotFound',
  mappingNotReady: 'MappingNotReady',
  mappingEntityMismatch: 'MappingEntityMismatch',
  mappingDirectionMismatch: 'MappingDirectionMismatch',
  waitingForMapping: 'WaitingForMapping',
  lookupNotFound: 'LookupNotFound',
  natsUnavailable: 'NatsUnavailable',
  natsImmutableSetting: 'NatsImmutableSetting',
} as const;
export type FlowReason = (typeof FLOW_REASONS)[keyof typeof FLOW_REASONS];

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
  const stalled = (reason: FlowReason, message: string) =>
    stall(ctx, INTEGRATION_FLOWS, flow, { reason, message });
  // A mapping the flow cannot use: Stalled ones need a user change, others resolve by themselves.
  const notReady = async (r: MappingProblem): Promise<ReconcileResult> => {
    if (r.outcome.stalled) return stalled(r.outcome.reason, r.outcome.message);
    await status(r.outcome);
    return r.requeueAfterMs ? { requeueAfterMs: r.requeueAfterMs } : {};
  };

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
  const parsed = integrationFlowSpecSchema.safeParse(flow.spec, { reportInput: true });
  if (!parsed.success) return stalled(FLOW_REASONS.invalidSpec, describeSpecIssues(parsed.error));
  const spec = parsed.data;
  const keyProblem = spec.delivery.partitionKey ? partitionKeyProblem(spec.delivery.partitionKey) : undefined;
  if (keyProblem) {
    return stalled(FLOW_REASONS.invalidPartitionKey, `spec.delivery.partitionKey ${keyProblem}`);
  }

  // 5. Resolve the mapping and the sinks' outbound mappings; their own reconciles ran their tests.
  const inbound = await resolveMapping(ctx, namespace, {
    name: spec.mappingRef.name,
    field: 'spec.mappingRef.name',
    direction: 'inbound',
    entity: spec.entity,
  });
  if (!inbound.ok) return notReady(inbound);
  const { mapping, lookups } = inbound;
  const outboundMappings = new Map<string, ResolvedOutboundMapping>();
  for (const [i, sink] of spec.sinks.entries()) {
    const ref = sink.http?.bodyMappingRef;
    if (!ref || outboundMappings.has(ref.name)) continue;
    const outbound = await resolveMapping(ctx, namespace, {
      name: ref.name,
      field: `spec.sinks[${i}].http.bodyMappingRef.name`,
      direction: 'outbound',
      entity: spec.entity,
    });
    if (!outbound.ok) return notReady(outbound);
    outboundMappings.set(ref.name, {
      name: ref.name,
      generation: outbound.mapping.metadata.generation ?? 0,
      spec: outbound.spec,
      lookups: outbound.lookups,
    });
  }

  // 7. JetStream: the flow stream, the dead-letter stream and the shared durable consumer.
  let nats: Awaited<ReturnType<typeof ensureFlowNats>>;
  try {
    await ensureNamespaceStreams(ctx.jsm(), namespace);
    // The namespace's cross-reference store outlives any one flow: it is never deleted with a flow.
    // The same settings as the workers' (runtime/xref/connect.ts), so either may create it first.
    await ctx.kvm().create(xrefBucketName(namespace), { history: 5 });
    nats = await ensureFlowNats(ctx.jsm(), ref, spec);
  } catch (err) {
    if (err instanceof NatsImmutableSettingError) {
      return stalled(FLOW_REASONS.natsImmutableSetting, err.message);
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
      spec: inbound.spec,
    },
    lookups,
    outboundMappings,
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

interface MappingProblem {
  ok: false;
  outcome: Outcome & { reason: FlowReason };
  requeueAfterMs?: number;
}

type ResolvedMapping =
  | {
      ok: true;
      mapping: TallyObject;
      spec: CanonicalMappingSpec;
      lookups: Awaited<ReturnType<typeof resolveLookups>>;
    }
  | MappingProblem;

/**
 * A CanonicalMapping a flow refers to (its mappingRef, or a sink's bodyMappingRef): it exists, has
 * the expected direction and entity, passed its tests at its current generation, and its lookup
 * tables are readable. Otherwise the status the flow must show, with the field it is about.
 */
async function resolveMapping(
  ctx: ReconcileContext,
  namespace: string,
  want: { name: string; field: string; direction: 'inbound' | 'outbound'; entity: string },
): Promise<ResolvedMapping> {
  const stalled = (reason: FlowReason, message: string): ResolvedMapping => ({
    ok: false,
    outcome: { ready: false, stalled: true, reason, message },
  });
  const mapping = ctx.mappings.get(namespace, want.name);
  if (!mapping) {
    return stalled(
      FLOW_REASONS.mappingNotFound,
      `CanonicalMapping ${namespace}/${want.name} does not exist: create it or fix ${want.field}`,
    );
  }
  const parsed = canonicalMappingSpecSchema.safeParse(mapping.spec);
  if (parsed.success && parsed.data.direction !== want.direction) {
    return stalled(
      FLOW_REASONS.mappingDirectionMismatch,
      `${want.field} needs an ${want.direction} mapping, but CanonicalMapping ${want.name} is ${parsed.data.direction}`,
    );
  }
  if (parsed.success && parsed.data.entity !== want.entity) {
    return stalled(
      FLOW_REASONS.mappingEntityMismatch,
      want.direction === 'inbound'
        ? `the flow produces ${want.entity} but CanonicalMapping ${want.name} produces ${parsed.data.entity}`
        : `the flow produces ${want.entity} but CanonicalMapping ${want.name} (${want.field}) reads ${parsed.data.entity}`,
    );
  }
  const ready = mapping.status?.conditions?.find((c) => c.type === 'Ready');
  if (!parsed.success || mapping.status?.observedGeneration !== mapping.metadata.generation || !ready) {
    return {
      ok: false,
      outcome: {
        ready: false,
        progressing: true,
        reason: FLOW_REASONS.waitingForMapping,
        message: `waiting for CanonicalMapping ${want.name} to be checked`,
      },
    };
  }
  if (ready.status !== 'True') {
    // Workers keep the last good config: nothing below runs until the mapping is fixed.
    return stalled(
      FLOW_REASONS.mappingNotReady,
      `CanonicalMapping ${want.name} is not ready (${ready.reason}): ${ready.message}`,
    );
  }
  try {
    const lookups = await resolveLookups(ctx.client, namespace, parsed.data.lookups);
    return { ok: true, mapping, spec: parsed.data, lookups };
  } catch (err) {
    if (!(err instanceof LookupNotFoundError)) throw err;
    return {
      ok: false,
      outcome: { ready: false, progressing: true, reason: FLOW_REASONS.lookupNotFound, message: err.message },
      requeueAfterMs: 30_000,
    };
  }
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
