// Metrics of the HTTP polling source, on the worker's registry. Labels stay bounded: flow, channel,
// outcome, reason and HTTP status code; never a URL, cursor value or record id.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { FlowMetricLabels } from '../../telemetry/metrics.ts';

/** Outcomes of one poll cycle (the `outcome` label). */
export const POLL_OUTCOMES = [
  'ok',
  'throttled',
  'http_error',
  'network_error',
  'invalid_response',
  'bus_unavailable',
  'state_unavailable',
  'stopped',
] as const;
export type PollOutcome = (typeof POLL_OUTCOMES)[number];

export type PollMetrics = ReturnType<typeof createPollMetrics>;

export function createPollMetrics(
  registry: Registry,
  labels: FlowMetricLabels,
  cursorLag: () => number | undefined,
) {
  const registers = [registry];
  const { flow, channel } = labels;
  const polls = new Counter({
    name: 'tally_poll_cycles_total',
    help: 'Poll cycles of the HTTP polling source, by outcome (ok: every page fetched and every record stored).',
    labelNames: ['flow', 'channel', 'outcome'] as const,
    registers,
  });
  const pages = new Counter({
    name: 'tally_poll_pages_total',
    help: 'Pages fetched by the HTTP polling source.',
    labelNames: ['flow', 'channel'] as const,
    registers,
  });
  const requests = new Counter({
    name: 'tally_poll_requests_total',
    help: 'HTTP requests of the polling source, by status code ("error" when no answer came).',
    labelNames: ['flow', 'channel', 'code'] as const,
    registers,
  });
  const published = new Counter({
    name: 'tally_poll_records_published_total',
    help: 'Polled records stored in the flow stream (repeats the stream dropped as duplicates included).',
    labelNames: ['flow', 'channel'] as const,
    registers,
  });
  const skipped = new Counter({
    name: 'tally_poll_records_skipped_total',
    help: 'Polled records not published: older than the stored cursor, or already published at the cursor.',
    labelNames: ['flow', 'channel', 'reason'] as const,
    registers,
  });
  const waited = new Counter({
    name: 'tally_poll_wait_seconds_total',
    help: 'Time the polling source waited for the API: Retry-After, quota resets, backoff after failures.',
    labelNames: ['flow', 'channel', 'reason'] as const,
    registers,
  });
  const lastSuccess = new Gauge({
    name: 'tally_poll_last_success_timestamp_seconds',
    help: 'When the last poll cycle completed (Unix time).',
    labelNames: ['flow', 'channel'] as const,
    registers,
  });
  new Gauge({
    name: 'tally_poll_cursor_lag_seconds',
    help: 'Seconds between now and the stored cursor, when the cursor is a timestamp.',
    labelNames: ['flow', 'channel'] as const,
    registers,
    collect() {
      const lag = cursorLag();
      this.reset();
      if (lag !== undefined) this.set({ flow, channel }, lag);
    },
  });
  const leader = new Gauge({
    name: 'tally_poll_leader',
    help: '1 while this replica holds the polling lease (one replica of a flow polls), else 0.',
    labelNames: ['flow', 'channel'] as const,
    registers,
  });
  leader.set({ flow, channel }, 0);

  return {
    poll: (outcome: PollOutcome) => {
      polls.inc({ flow, channel, outcome });
      if (outcome === 'ok') lastSuccess.set({ flow, channel }, Date.now() / 1000);
    },
    page: () => pages.inc({ flow, channel }),
    request: (code: string) => requests.inc({ flow, channel, code }),
    published: (n = 1) => published.inc({ flow, channel }, n),
    skipped: (reason: 'before_cursor' | 'seen', n = 1) => skipped.inc({ flow, channel, reason }, n),
    waited: (reason: 'retry_after' | 'quota' | 'backoff', seconds: number) =>
      waited.inc({ flow, channel, reason }, seconds),
    leader: (held: boolean) => leader.set({ flow, channel }, held ? 1 : 0),
  };
}
