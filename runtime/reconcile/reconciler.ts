// The reconciliation engine: keyed state of the latest version of each side, business-day
// windows, outcomes, reports and exceptions. Pure and deterministic: the same set of events gives
// the same reports whatever order they arrived in (versions decide, stream order breaks ties).
import { fromMinorUnits } from '../../api/canonical/money.ts';
import type { ReconciliationPolicySpec } from '../../api/reconciliation-policy.ts';
import { compareField, type FieldDifference } from './compare.ts';
import { getPath, type Scalar, showScalar, toScalar, versionOf } from './fields.ts';
import type {
  Breach,
  ChannelBreakdown,
  KeyEntry,
  KeyResult,
  OutcomeCounts,
  ReconEvent,
  ReconException,
  SideRecord,
  Sums,
  WindowReport,
} from './types.ts';
import { type WindowBounds, type WindowSpec, windowBounds, windowOf } from './windows.ts';

export type IngestResult =
  | { accepted: true; key: string; window: string; superseded: boolean }
  | { accepted: false; reason: 'missing_key' | 'missing_business_time' | 'stale_version' };

const KEY_SEPARATOR = '\u001f';

export class Reconciler {
  readonly name: string;
  readonly spec: ReconciliationPolicySpec;
  readonly #window: WindowSpec;
  readonly #keys = new Map<string, KeyEntry>();
  readonly #byWindow = new Map<string, Set<string>>();
  readonly #windowOfKey = new Map<string, string>();
  /** Recently seen windows: most events fall in a few days, and time-zone math is the hot path. */
  readonly #recentWindows: WindowBounds[] = [];

  constructor(name: string, spec: ReconciliationPolicySpec) {
    this.name = name;
    this.spec = spec;
    this.#window = spec.window;
  }

  get size(): number {
    return this.#keys.size;
  }

  windows(): string[] {
    return [...this.#byWindow.keys()].sort();
  }

  ingest(ev: ReconEvent): IngestResult {
    const sel = this.spec[ev.side];
    const keyParts: string[] = [];
    for (const f of sel.keyFields) {
      const v = getPath(ev.data, f);
      if (v === undefined || v === null || v === '') return { accepted: false, reason: 'missing_key' };
      keyParts.push(String(v));
    }
    const t = getPath(ev.data, sel.businessTimeField);
    const businessMs = typeof t === 'string' ? Date.parse(t) : typeof t === 'number' ? t : Number.NaN;
    if (!Number.isFinite(businessMs)) return { accepted: false, reason: 'missing_business_time' };

    const key = keyParts.join(KEY_SEPARATOR);
    const record: SideRecord = {
      seq: ev.seq,
      eventId: ev.eventId,
      flow: ev.flow,
      channel: ev.channel,
      businessMs,
      compared: [],
    };
    // Several rules (and the amount) often read the same field: convert each path once.
    const scalars = new Map<string, Scalar>();
    const scalarAt = (path: string) => {
      let v = scalars.get(path);
      if (!v) {
        v = toScalar(getPath(ev.data, path));
        scalars.set(path, v);
      }
      return v;
    };
    for (const r of this.spec.compare)
      record.compared.push(scalarAt(ev.side === 'channel' ? r.channelField : r.erpField));
    const version = versionOf(ev.data, sel.versionField);
    if (version !== undefined) record.version = version;
    if (sel.amountField) record.amount = scalarAt(sel.amountField);
    if (sel.statusField) {
      const s = getPath(ev.data, sel.statusField);
      if (s !== undefined) record.status = String(s);
    }

    const entry = this.#keys.get(key) ?? { key };
    const current = entry[ev.side];
    if (current && !newer(record, current)) return { accepted: false, reason: 'stale_version' };
    entry[ev.side] = record;
    this.#keys.set(key, entry);
    const window = this.#assign(entry);
    return { accepted: true, key, window, superseded: current !== undefined };
  }

  #windowAt(ms: number): string {
    for (const b of this.#recentWindows) if (ms > b.startMs && ms <= b.endMs) return b.window;
    const w = windowOf(ms, this.#window);
    const bounds = windowBounds(w, this.#window);
    // Only cache when the bounds agree with windowOf at this instant (second-level edge cases).
    if (ms > bounds.startMs && ms <= bounds.endMs) {
      this.#recentWindows.unshift(bounds);
      if (this.#recentWindows.length > 8) this.#recentWindows.pop();
    }
    return w;
  }

  /** The window of a key follows its channel record's business time, else the ERP record's. */
  #assign(entry: KeyEntry): string {
    const w = this.#windowAt((entry.channel ?? entry.erp)!.businessMs);
    const old = this.#windowOfKey.get(entry.key);
    if (old !== w) {
      if (old) this.#byWindow.get(old)?.delete(entry.key);
      getOrCreate(this.#byWindow, w, () => new Set<string>()).add(entry.key);
      this.#windowOfKey.set(entry.key, w);
    }
    return w;
  }

  /** Outcome of each key in a window; a final window has no pending keys. */
  results(window: string, final: boolean): KeyResult[] {
    const out: KeyResult[] = [];
    for (const key of this.#byWindow.get(window) ?? []) {
      const e = this.#keys.get(key)!;
      const channel = (e.channel ?? e.erp)!.channel;
      if (e.channel && e.erp) {
        const differences = this.spec.compare
          .map((r, i) =>
            compareField(r, e.channel!.compared[i]!, e.erp!.compared[i]!, this.spec.statusEquivalences),
          )
          .filter((d): d is FieldDifference => d !== undefined);
        out.push({ key, channel, outcome: differences.length ? 'mismatched' : 'matched', differences });
      } else if (!final) {
        out.push({ key, channel, outcome: 'pending', differences: [] });
      } else {
        out.push({ key, channel, outcome: e.channel ? 'missing_erp' : 'missing_channel', differences: [] });
      }
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  report(window: string, opts: { final: boolean; version: number; amendments?: number }): WindowReport {
    const bounds = windowBounds(window, this.#window);
    const results = this.results(window, opts.final);
    const channels = new Map<
      string,
      { results: KeyResult[]; c: Map<string, bigint>; e: Map<string, bigint>; cn: number; en: number }
    >();
    const total = { c: new Map<string, bigint>(), e: new Map<string, bigint>() };
    const byStatus = new Map<string, { count: number; open: Map<string, bigint> }>();
    const exceptions: Record<string, number> = {};
    for (const r of results) {
      const e = this.#keys.get(r.key)!;
      const ch = getOrCreate(channels, r.channel, () => ({
        results: [] as KeyResult[],
        c: new Map<string, bigint>(),
        e: new Map<string, bigint>(),
        cn: 0,
        en: 0,
      }));
      ch.results.push(r);
      if (e.channel) {
        ch.cn++;
        addMoney(ch.c, e.channel.amount);
        addMoney(total.c, e.channel.amount);
      }
      if (e.erp) {
        ch.en++;
        addMoney(ch.e, e.erp.amount);
        addMoney(total.e, e.erp.amount);
      }
      if (r.outcome !== 'matched') {
        const status = e.erp?.status ?? e.channel?.status ?? 'unknown';
        const s = getOrCreate(byStatus, status, () => ({ count: 0, open: new Map<string, bigint>() }));
        s.count++;
        addMoney(s.open, e.channel?.amount);
        addMoney(s.open, e.erp?.amount, -1n);
        if (r.outcome !== 'pending') {
          for (const reason of reasonsOf(r)) exceptions[reason] = (exceptions[reason] ?? 0) + 1;
        }
      }
    }
    const byChannel: ChannelBreakdown[] = [...channels.entries()]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([channel, ch]) => ({
        channel,
        ...counts(ch.results),
        channelSide: { count: ch.cn, sums: sums(ch.c) },
        erpSide: { count: ch.en, sums: sums(ch.e) },
        variance: variance(ch.c, ch.e),
      }));
    const totals = counts(results);
    const totalVariance = variance(total.c, total.e);
    const breaches = this.#breaches(totals, totalVariance);
    return {
      policy: this.name,
      window,
      timeZone: this.#window.timeZone,
      cutoff: this.#window.cutoff,
      start: new Date(bounds.startMs).toISOString(),
      end: new Date(bounds.endMs).toISOString(),
      finalAt: new Date(bounds.finalAtMs).toISOString(),
      final: opts.final,
      version: opts.final ? opts.version : 0,
      amendments: opts.amendments ?? 0,
      totals,
      byChannel,
      byStatus: [...byStatus.entries()]
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([status, s]) => ({ status, count: s.count, open: sums(s.open) })),
      variance: totalVariance,
      exceptions,
      breaches,
      breached: breaches.length > 0,
    };
  }

  exceptions(window: string, reportVersion: number): ReconException[] {
    return this.results(window, true)
      .filter((r) => r.outcome !== 'matched')
      .map((r) => {
        const e = this.#keys.get(r.key)!;
        const side = (s: SideRecord | undefined) =>
          s && { flow: s.flow, eventId: s.eventId, channel: s.channel };
        const channelSide = side(e.channel);
        const erpSide = side(e.erp);
        return {
          id: `${this.name}:${window}:${r.key}`,
          policy: this.name,
          window,
          reportVersion,
          key: r.key,
          keyFields: r.key.split(KEY_SEPARATOR),
          outcome: r.outcome,
          reasons: reasonsOf(r),
          channel: r.channel,
          differences: r.differences.map((d) => ({
            field: d.field,
            rule: d.rule,
            reason: d.reason,
            channel: showScalar(d.channel),
            erp: showScalar(d.erp),
            ...(d.difference !== undefined ? { difference: d.difference } : {}),
            ...(d.currency ? { currency: d.currency } : {}),
          })),
          ...(channelSide ? { channelSide } : {}),
          ...(erpSide ? { erpSide } : {}),
        };
      });
  }

  #breaches(totals: OutcomeCounts, v: Sums): Breach[] {
    const t = this.spec.thresholds;
    const out: Breach[] = [];
    const over = (count: number, limit: string | undefined, threshold: Breach['threshold']) => {
      if (limit === undefined || totals.keys === 0) return;
      // Exact: count/keys*100 > limit  <=>  count*100*den > num*keys.
      const [w = '0', f = ''] = limit.split('.');
      const den = 10n ** BigInt(f.length);
      const num = BigInt(w + f);
      if (BigInt(count) * 100n * den > num * BigInt(totals.keys)) {
        out.push({ threshold, limit, value: percent(count, totals.keys) });
      }
    };
    over(totals.missingErp + totals.missingChannel, t.maxMissingPercent, 'maxMissingPercent');
    over(totals.mismatched, t.maxMismatchPercent, 'maxMismatchPercent');
    if (t.maxVarianceAmount !== undefined) {
      for (const [currency, amount] of Object.entries(v)) {
        const abs = amount.replace('-', '');
        if (compareDecimal(abs, t.maxVarianceAmount) > 0) {
          out.push({ threshold: 'maxVarianceAmount', limit: t.maxVarianceAmount, value: amount, currency });
        }
      }
    }
    return out;
  }
}

function getOrCreate<K, V>(map: Map<K, V>, key: K, make: () => V): V {
  let v = map.get(key);
  if (v === undefined) {
    v = make();
    map.set(key, v);
  }
  return v;
}

function newer(a: SideRecord, b: SideRecord): boolean {
  if (a.version !== undefined && b.version !== undefined && a.version !== b.version)
    return a.version > b.version;
  if (a.version !== undefined && b.version === undefined) return true;
  if (a.version === undefined && b.version !== undefined) return false;
  return a.seq >= b.seq;
}

function reasonsOf(r: KeyResult): string[] {
  if (r.outcome === 'missing_erp' || r.outcome === 'missing_channel') return [r.outcome];
  return [...new Set(r.differences.map((d) => d.reason))].sort();
}

function addMoney(into: Map<string, bigint>, s: Scalar | undefined, sign = 1n): void {
  if (s?.t !== 'money') return;
  into.set(s.currency, (into.get(s.currency) ?? 0n) + sign * BigInt(s.minor));
}

function sums(m: Map<string, bigint>): Sums {
  return Object.fromEntries(
    [...m.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([c, v]) => [c, fromMinorUnits(v, c).amount]),
  );
}

function variance(channel: Map<string, bigint>, erp: Map<string, bigint>): Sums {
  const out = new Map<string, bigint>();
  for (const [c, v] of erp) out.set(c, v);
  for (const [c, v] of channel) out.set(c, (out.get(c) ?? 0n) - v);
  return sums(out);
}

function counts(results: KeyResult[]): OutcomeCounts {
  const c = { keys: results.length, matched: 0, mismatched: 0, missingErp: 0, missingChannel: 0, pending: 0 };
  for (const r of results) {
    if (r.outcome === 'matched') c.matched++;
    else if (r.outcome === 'mismatched') c.mismatched++;
    else if (r.outcome === 'missing_erp') c.missingErp++;
    else if (r.outcome === 'missing_channel') c.missingChannel++;
    else c.pending++;
  }
  return { ...c, matchRate: c.keys === 0 ? '100.00' : percent(c.matched, c.keys) };
}

/** count/total in percent with two decimals, truncated (exact integer arithmetic). */
export function percent(count: number, total: number): string {
  const hundredths = (BigInt(count) * 10000n) / BigInt(total);
  return `${hundredths / 100n}.${(hundredths % 100n).toString().padStart(2, '0')}`;
}

/** Compares non-negative decimal strings exactly. */
export function compareDecimal(a: string, b: string): number {
  const [aw = '0', af = ''] = a.split('.');
  const [bw = '0', bf = ''] = b.split('.');
  const len = Math.max(af.length, bf.length);
  const x = BigInt(aw + af.padEnd(len, '0'));
  const y = BigInt(bw + bf.padEnd(len, '0'));
  return x < y ? -1 : x > y ? 1 : 0;
}
