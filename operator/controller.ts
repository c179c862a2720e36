// The controller: informers -> keyed work queue -> reconcile(key) -> status. Keys look like
// "IntegrationFlow/namespace/name". Owned objects (Deployments, ConfigMaps, Services labelled
// as managed by Tally) requeue their flow, so drift or deletion is repaired.
import type { Logger } from 'pino';
import { TerminalError } from './errors.ts';
import type { KubeApi } from './kube/client.ts';
import { KubeApiError } from './kube/errors.ts';
import { Informer } from './kube/informer.ts';
import {
  CANONICAL_MAPPINGS,
  CONFIG_MAPS,
  DEPLOYMENTS,
  INTEGRATION_FLOWS,
  type KubeObject,
  RECONCILIATION_POLICIES,
  SERVICES,
} from './kube/resources.ts';
import type { OperatorMetrics } from './metrics.ts';
import { WorkQueue } from './queue.ts';
import type { ReconcileContext, ReconcileResult, TallyObject } from './reconcile/context.ts';
import { reconcileFlow } from './reconcile/flow.ts';
import { reconcileMapping } from './reconcile/mapping.ts';
import { reconcilePolicy } from './reconcile/policy.ts';
import { FLOW_LABEL, MANAGED_SELECTOR, POLICY_LABEL } from './render/labels.ts';

export interface ControllerOptions {
  client: KubeApi;
  log: Logger;
  metrics: OperatorMetrics;
  resyncMs?: number;
  workers?: number;
  context: Omit<ReconcileContext, 'flows' | 'mappings' | 'client' | 'log'>;
}

type Kind = 'IntegrationFlow' | 'CanonicalMapping' | 'ReconciliationPolicy';

/** The CanonicalMappings a flow uses: its mappingRef and its sinks' outbound mappings. */
export function mappingNamesOf(flow: KubeObject): Set<string> {
  const spec = flow.spec as
    | { mappingRef?: { name?: string }; sinks?: { http?: { bodyMappingRef?: { name?: string } } }[] }
    | undefined;
  const names = new Set<string>();
  if (spec?.mappingRef?.name) names.add(spec.mappingRef.name);
  for (const s of spec?.sinks ?? []) if (s.http?.bodyMappingRef?.name) names.add(s.http.bodyMappingRef.name);
  return names;
}

export class Controller {
  readonly queue = new WorkQueue({ baseDelayMs: 500, maxDelayMs: 5 * 60_000 });
  readonly flows: Informer<TallyObject>;
  readonly mappings: Informer<TallyObject>;
  readonly policies: Informer<TallyObject>;
  readonly #owned: Informer<KubeObject>[];
  readonly #ctx: ReconcileContext;
  readonly #opts: ControllerOptions;

  constructor(opts: ControllerOptions) {
    this.#opts = opts;
    const { client, log } = opts;
    const informerOpts = { logger: log, resyncMs: opts.resyncMs ?? 10 * 60_000 };
    this.flows = new Informer<TallyObject>(client, INTEGRATION_FLOWS, informerOpts);
    this.mappings = new Informer<TallyObject>(client, CANONICAL_MAPPINGS, informerOpts);
    this.policies = new Informer<TallyObject>(client, RECONCILIATION_POLICIES, informerOpts);
    this.#owned = [DEPLOYMENTS, CONFIG_MAPS, SERVICES].map(
      (r) => new Informer<KubeObject>(client, r, { logger: log, labelSelector: MANAGED_SELECTOR }),
    );
    this.#ctx = { ...opts.context, client, log, flows: this.flows, mappings: this.mappings };

    const enqueue = (kind: Kind) => (_e: string, obj: KubeObject) =>
      this.queue.add(`${kind}/${obj.metadata.namespace}/${obj.metadata.name}`);
    this.flows.on(enqueue('IntegrationFlow'));
    this.policies.on(enqueue('ReconciliationPolicy'));
    this.mappings.on((e, mapping) => {
      enqueue('CanonicalMapping')(e, mapping);
      // Flows follow their mapping: a change (or its status) may make them (un)ready.
      for (const flow of this.flows.list()) {
        if (
          flow.metadata.namespace === mapping.metadata.namespace &&
          mappingNamesOf(flow).has(mapping.metadata.name)
        ) {
          enqueue('IntegrationFlow')(e, flow);
        }
      }
    });
    for (const inf of this.#owned) {
      inf.on((_e, obj) => {
        const flow = obj.metadata.labels?.[FLOW_LABEL];
        if (flow) this.queue.add(`IntegrationFlow/${obj.metadata.namespace}/${flow}`);
        const policy = obj.metadata.labels?.[POLICY_LABEL];
        if (policy) this.queue.add(`ReconciliationPolicy/${obj.metadata.namespace}/${policy}`);
      });
    }
  }

  /** Runs until the signal aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const informers = [this.flows, this.mappings, this.policies, ...this.#owned];
    const running = informers.map((i) => i.run(signal));
    await Promise.all(informers.map((i) => i.synced));
    this.#opts.log.info('caches synced, starting workers');
    signal.addEventListener('abort', () => this.queue.shutDown(), { once: true });
    const workers = Array.from({ length: this.#opts.workers ?? 2 }, () => this.#work());
    await Promise.all([...workers, ...running]);
  }

  get synced(): Promise<unknown> {
    return Promise.all([
      this.flows.synced,
      this.mappings.synced,
      this.policies.synced,
      ...this.#owned.map((i) => i.synced),
    ]);
  }

  async #work(): Promise<void> {
    const { metrics, log } = this.#opts;
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      metrics.queueDepth.set(this.queue.length);
      const [kind, namespace, name] = key.split('/') as [Kind, string, string];
      const end = metrics.reconcileSeconds.startTimer({ kind });
      try {
        const result = await this.#reconcile(kind, namespace, name);
        this.queue.forget(key);
        if (result.requeueAfterMs) this.queue.addAfter(key, result.requeueAfterMs);
        metrics.reconciles.inc({ kind, result: result.requeueAfterMs ? 'requeue' : 'success' });
      } catch (err) {
        if (err instanceof TerminalError) {
          // Handled: status says what the user must change, and a change re-queues the key.
          this.queue.forget(key);
          metrics.reconciles.inc({ kind, result: 'terminal', reason: err.reason });
          log.warn({ key, reason: err.reason, err }, 'reconcile stalled; waiting for a change');
        } else {
          metrics.reconciles.inc({ kind, result: 'error' });
          const delay = this.queue.addRateLimited(key);
          const level = err instanceof KubeApiError && err.status === 409 ? 'info' : 'warn';
          log[level]({ key, err, retryInMs: delay }, 'reconcile failed, will retry');
        }
      } finally {
        end();
        this.queue.done(key);
      }
    }
  }

  #reconcile(kind: Kind, namespace: string, name: string): Promise<ReconcileResult> {
    switch (kind) {
      case 'IntegrationFlow':
        return reconcileFlow(this.#ctx, namespace, name);
      case 'CanonicalMapping':
        return reconcileMapping(this.#ctx, namespace, name);
      case 'ReconciliationPolicy':
        return reconcilePolicy(this.#ctx, this.policies.get(namespace, name));
    }
  }
}
