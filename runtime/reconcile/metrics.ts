// Reconciliation metrics (tally_recon_*): bounded labels only — policy, channel, outcome,
// currency, side, result. Keys (order ids, SKUs) go to exceptions and reports, never here.
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { WindowReport } from './types.ts';

export function createReconMetrics(policy: string, options: { processMetrics?: boolean } = {}) {
  const registry = new Registry();
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const m = {
    registry,
    events: new Counter({
      name: 'tally_recon_events_total',
      help: 'Canonical events read, by side and result (accepted, stale_version, missing_key, missing_business_time, unselected).',
      labelNames: ['policy', 'side', 'result'] as const,
      registers,
    }),
    keys: new Gauge({
      name: 'tally_recon_keys',
      help: 'Keys of the latest final window by channel and outcome.',
      labelNames: ['policy', 'channel', 'outcome'] as const,
      registers,
    }),
    matchRate: new Gauge({
      name: 'tally_recon_match_ratio',
      help: 'Matched keys / all keys of the latest final window, by channel.',
      labelNames: ['policy', 'channel'] as const,
      registers,
    }),
    variance: new Gauge({
      name: 'tally_recon_variance',
      help: 'ERP minus channel amount of the latest final window, in currency units, by channel and currency.',
      labelNames: ['policy', 'channel', 'currency'] as const,
      registers,
    }),
    openExceptions: new Gauge({
      name: 'tally_recon_open_exceptions',
      help: 'Unmatched or mismatched keys across final windows still held in the stream.',
      labelNames: ['policy'] as const,
      registers,
    }),
    breached: new Gauge({
      name: 'tally_recon_breached',
      help: '1 when the latest final window breached a threshold.',
      labelNames: ['policy'] as const,
      registers,
    }),
    windowLag: new Gauge({
      name: 'tally_recon_window_lag_seconds',
      help: 'Seconds between now and the end of the latest final window.',
      labelNames: ['policy'] as const,
      registers,
    }),
    reports: new Counter({
      name: 'tally_recon_reports_total',
      help: 'Reports published, by kind (final, amendment).',
      labelNames: ['policy', 'kind'] as const,
      registers,
    }),
  };
  return {
    ...m,
    /** Gauges follow the latest final window. */
    observeLatest(report: WindowReport, nowMs: number): void {
      m.keys.reset();
      m.matchRate.reset();
      m.variance.reset();
      for (const c of report.byChannel) {
        m.keys.set({ policy, channel: c.channel, outcome: 'matched' }, c.matched);
        m.keys.set({ policy, channel: c.channel, outcome: 'mismatched' }, c.mismatched);
        m.keys.set({ policy, channel: c.channel, outcome: 'missing_erp' }, c.missingErp);
        m.keys.set({ policy, channel: c.channel, outcome: 'missing_channel' }, c.missingChannel);
        m.matchRate.set({ policy, channel: c.channel }, c.keys ? c.matched / c.keys : 1);
        for (const [currency, amount] of Object.entries(c.variance)) {
          m.variance.set({ policy, channel: c.channel, currency }, Number(amount));
        }
      }
      m.breached.set({ policy }, report.breached ? 1 : 0);
      m.windowLag.set({ policy }, Math.max(0, (nowMs - Date.parse(report.end)) / 1000));
    },
  };
}
export type ReconMetrics = ReturnType<typeof createReconMetrics>;
