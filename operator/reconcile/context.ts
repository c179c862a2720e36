// What every reconciler gets: clients, caches, clock, and the shared status writer.
import type { Kvm } from '@nats-io/kv';
import type { Logger } from 'pino';
import type { Condition } from '../../api/common.ts';
import { TerminalError, type TerminalReason } from '../errors.ts';
import type { EventRecorder } from '../events.ts';
import type { KubeApi } from '../kube/client.ts';
import type { Cache } from '../kube/informer.ts';
import type { KubeObject, ResourceType } from '../kube/resources.ts';
import type { JetStreamAdmin } from '../nats/provisioner.ts';
import type { RenderOptions } from '../render/worker-objects.ts';
import { conditionsFor, type Outcome, sameStatus } from '../status/conditions.ts';

export interface TallyObject extends KubeObject {
  spec: Record<string, unknown>;
  status?: { conditions?: Condition[]; observedGeneration?: number; [k: string]: unknown };
}

export interface ReconcileContext {
  client: KubeApi;
  jsm: () => JetStreamAdmin;
  /** KV access (policy report buckets, the cross-reference store). */
  kvm: () => Pick<Kvm, 'create'>;
  flows: Cache<TallyObject>;
  mappings: Cache<TallyObject>;
  events: Pick<EventRecorder, 'record'>;
  log: Logger;
  now: () => Date;
  render: RenderOptions;
  /** NATS servers the workers connect to (may differ from the operator's own view). */
  workerNatsServers: string[];
}

export interface ReconcileResult {
  requeueAfterMs?: number;
}

/**
 * Rebuilds status from this reconcile's outcome plus extra fields and writes it only when it
 * changed. Emits an Event when Ready's status or reason changes, with the same reason string.
 */
export async function writeStatus(
  ctx: ReconcileContext,
  r: ResourceType,
  obj: TallyObject,
  outcome: Outcome,
  fields: Record<string, unknown> = {},
  extraConditions: {
    type: string;
    status: 'True' | 'False' | 'Unknown';
    reason: string;
    message: string;
  }[] = [],
): Promise<void> {
  const generation = obj.metadata.generation ?? 0;
  const previous = obj.status?.conditions;
  const status = {
    ...fields,
    observedGeneration: generation,
    conditions: [
      ...conditionsFor(outcome, generation, previous, ctx.now()),
      ...extraConditions.map((c) => {
        const old = previous?.find((p) => p.type === c.type);
        const at =
          old && old.status === c.status
            ? old.lastTransitionTime
            : ctx
                .now()
                .toISOString()
                .replace(/\.\d+Z$/, 'Z');
        return { ...c, observedGeneration: generation, lastTransitionTime: at };
      }),
    ],
  };
  const { conditions: _c, observedGeneration: _g, ...oldFields } = obj.status ?? {};
  const sameConditions = sameStatus(
    (previous ?? []).map(({ lastTransitionTime: _t, ...c }) => c),
    status.conditions.map(({ lastTransitionTime: _t, ...c }) => c),
  );
  if (sameConditions && obj.status?.observedGeneration === generation && sameStatus(oldFields, fields))
    return;
  await ctx.client.apply(
    r,
    {
      apiVersion: obj.apiVersion,
      kind: obj.kind,
      metadata: { name: obj.metadata.name, namespace: obj.metadata.namespace! },
      status,
    },
    { subresource: 'status' },
  );
  const oldReady = previous?.find((c) => c.type === 'Ready');
  const ready = status.conditions[0]!;
  if (!oldReady || oldReady.status !== ready.status || oldReady.reason !== ready.reason) {
    await ctx.events.record(obj, outcome.ready ? 'Normal' : 'Warning', outcome.reason, outcome.message);
  }
}

/**
 * Ends a reconcile the user has to act on: writes Stalled (and Ready False) with `reason`, whose
 * Event carries the same reason, then throws the TerminalError the controller counts with it.
 */
export async function stall(
  ctx: ReconcileContext,
  r: ResourceType,
  obj: TallyObject,
  problem: { reason: TerminalReason; message: string },
  fields?: Record<string, unknown>,
): Promise<never> {
  const { reason, message } = problem;
  await writeStatus(ctx, r, obj, { ready: false, stalled: true, reason, message }, fields);
  throw new TerminalError(reason, message);
}
