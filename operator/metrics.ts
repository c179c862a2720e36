// Operator metrics (tally_operator_*): reconcile outcomes and latency by kind, queue depth.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export function operatorMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'tally_operator_' });
  return {
    registry,
    reconciles: new Counter({
      name: 'tally_operator_reconcile_total',
      help: 'Reconciles by kind and result (success, requeue, error, terminal); terminal ones by the reason on the Stalled condition.',
      // reason: only on terminal results, one of the reconcilers' reason constants (bounded).
      labelNames: ['kind', 'result', 'reason'] as const,
      registers: [registry],
    }),
    reconcileSeconds: new Histogram({
      name: 'tally_operator_reconcile_seconds',
      help: 'Time spent in one reconcile.',
      labelNames: ['kind'] as const,
      buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    queueDepth: new Gauge({
      name: 'tally_operator_workqueue_depth',
      help: 'Keys waiting in the work queue.',
      registers: [registry],
    }),
  };
}
export type OperatorMetrics = ReturnType<typeof operatorMetrics>;
