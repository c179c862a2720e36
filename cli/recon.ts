// `tally recon report --policy NAME`: print a reconciliation report (final or preliminary) from
// the policy's report bucket in JetStream KV, as a table, JSON or CSV.
import { parseArgs } from 'node:util';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { policyNames } from '../runtime/nats/canonical.ts';
import type { WindowReport } from '../runtime/reconcile/types.ts';
import { PRELIMINARY_KEY, REPORT_KEY } from '../runtime/reconcile/worker.ts';
import { InputError, UsageError } from './errors.ts';

export const RECON_USAGE = `Usage: tally recon report --policy [NAMESPACE/]NAME [--window YYYY-MM-DD] [-o table|json|csv] [--nats-url URL]

Prints the report of one business-day window: the final one when the window is final, else the
preliminary one. Without --window: the latest final window.`;

const DATE = /^\d{4}-\d{2}-\d{2}$/;

export async function reconCommand(
  argv: string[],
  out: NodeJS.WritableStream = process.stdout,
): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === '--help' || sub === '-h' || rest.includes('--help') || rest.includes('-h')) {
    out.write(`${RECON_USAGE}\n`);
    return 0;
  }
  if (sub !== 'report')
    throw new UsageError(`unknown or missing subcommand "${sub ?? ''}"\n\n${RECON_USAGE}`);
  const { values } = parseArgs({
    args: rest,
    options: {
      policy: { type: 'string', short: 'p' },
      namespace: { type: 'string', short: 'n' },
      window: { type: 'string', short: 'w' },
      output: { type: 'string', short: 'o', default: 'table' },
      'nats-url': { type: 'string', default: process.env.TALLY_NATS_URL ?? 'nats://127.0.0.1:4222' },
    },
    strict: true,
  });
  if (!values.policy) throw new UsageError(`--policy is required\n\n${RECON_USAGE}`);
  const [ns, name] = values.policy.includes('/')
    ? values.policy.split('/', 2)
    : [values.namespace ?? 'default', values.policy];
  if (values.window && !DATE.test(values.window))
    throw new UsageError(`--window ${values.window} is not a date YYYY-MM-DD`);
  if (!['table', 'json', 'csv'].includes(values.output))
    throw new UsageError(`-o ${values.output}: expected table, json or csv`);

  const nc = await connect({ servers: values['nats-url'].split(','), timeout: 5000 }).catch((cause) => {
    throw new InputError(`cannot reach NATS at ${values['nats-url']}: check --nats-url`, { cause });
  });
  try {
    const bucket = policyNames(ns!, name!).stateBucket;
    const kv = await new Kvm(nc).open(bucket).catch((cause) => {
      throw new InputError(
        `policy ${ns}/${name} has no report bucket ${bucket}: is the policy applied and its worker running?`,
        { cause },
      );
    });
    let report: WindowReport | undefined;
    if (values.window) {
      for (const key of [REPORT_KEY(values.window), PRELIMINARY_KEY(values.window)]) {
        const e = await kv.get(key);
        if (e?.value.length) {
          report = e.json<WindowReport>();
          break;
        }
      }
    } else {
      for await (const key of await kv.keys('report.*')) {
        const e = await kv.get(key);
        if (e?.value.length) {
          const r = e.json<WindowReport>();
          if (!report || r.window > report.window) report = r;
        }
      }
    }
    if (!report) {
      throw new InputError(
        values.window
          ? `no report for window ${values.window} of ${ns}/${name}`
          : `no final window yet for ${ns}/${name}`,
      );
    }
    out.write(
      values.output === 'json'
        ? `${JSON.stringify(report, null, 2)}\n`
        : values.output === 'csv'
          ? toCsv(report)
          : toTable(report),
    );
    return 0;
  } finally {
    await nc.close();
  }
}

const money = (s: Record<string, string>) =>
  Object.entries(s)
    .map(([c, v]) => `${v} ${c}`)
    .join(', ') || '-';

export function toTable(r: WindowReport): string {
  const head = [
    `Policy ${r.policy}  window ${r.window} (${r.timeZone}, cutoff ${r.cutoff})  ${r.final ? `FINAL v${r.version}${r.amendments ? ` (${r.amendments} amendment(s))` : ''}` : 'PRELIMINARY'}`,
    `Keys ${r.totals.keys}: matched ${r.totals.matched}, mismatched ${r.totals.mismatched}, missing in ERP ${r.totals.missingErp}, missing in channel ${r.totals.missingChannel}, pending ${r.totals.pending}; match rate ${r.totals.matchRate}%`,
    `Variance (ERP - channel): ${money(r.variance)}`,
    r.breached
      ? `BREACHED: ${r.breaches.map((b) => `${b.threshold} ${b.value}${b.currency ? ` ${b.currency}` : ''} > ${b.limit}`).join('; ')}`
      : 'Within thresholds',
    '',
  ];
  const cols = [
    'CHANNEL',
    'KEYS',
    'MATCHED',
    'MISMATCHED',
    'MISSING-ERP',
    'MISSING-CHANNEL',
    'PENDING',
    'MATCH%',
    'CHANNEL-SUM',
    'ERP-SUM',
    'VARIANCE',
  ];
  const rows = r.byChannel.map((c) => [
    c.channel,
    String(c.keys),
    String(c.matched),
    String(c.mismatched),
    String(c.missingErp),
    String(c.missingChannel),
    String(c.pending),
    c.matchRate,
    money(c.channelSide.sums),
    money(c.erpSide.sums),
    money(c.variance),
  ]);
  const widths = cols.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  const statusLines = r.byStatus.length
    ? [
        '',
        'Open by status:',
        ...r.byStatus.map((s) => `  ${s.status}: ${s.count} key(s), open ${money(s.open)}`),
      ]
    : [];
  return `${[...head, line(cols), ...rows.map(line), ...statusLines].join('\n')}\n`;
}

const csvCell = (v: string) => (/[",\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v);

export function toCsv(r: WindowReport): string {
  const header = [
    'policy',
    'window',
    'final',
    'version',
    'channel',
    'keys',
    'matched',
    'mismatched',
    'missing_erp',
    'missing_channel',
    'pending',
    'match_rate',
    'currency',
    'channel_sum',
    'erp_sum',
    'variance',
  ];
  const lines = [header.join(',')];
  for (const c of r.byChannel) {
    const currencies = new Set([...Object.keys(c.channelSide.sums), ...Object.keys(c.erpSide.sums)]);
    for (const cur of currencies.size ? currencies : new Set([''])) {
      lines.push(
        [
          r.policy,
          r.window,
          String(r.final),
          String(r.version),
          c.channel,
          c.keys,
          c.matched,
          c.mismatched,
          c.missingErp,
          c.missingChannel,
          c.pending,
          c.matchRate,
          cur,
          c.channelSide.sums[cur] ?? '',
          c.erpSide.sums[cur] ?? '',
          c.variance[cur] ?? '',
        ]
          .map((v) => csvCell(String(v)))
          .join(','),
      );
    }
  }
  return `${lines.join('\n')}\n`;
}
