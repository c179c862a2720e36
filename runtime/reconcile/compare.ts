// The compare rules of a policy, evaluated on one matched pair. Pure and exact.

import { durationMs } from '../../api/common.ts';
import type { ReconciliationPolicySpec } from '../../api/reconciliation-policy.ts';
import type { Scalar } from './fields.ts';

export type CompareRule = ReconciliationPolicySpec['compare'][number];

export interface FieldDifference {
  field: string;
  rule: CompareRule['rule'];
  reason: string;
  channel: Scalar;
  erp: Scalar;
  /** erp - channel, in minor units (money), units (numbers) or milliseconds (dates). */
  difference?: string;
  currency?: string;
}

/** Parses "0.5" into [5n, 10n] (numerator, denominator) so percentages stay exact. */
function decimalFraction(text: string): [bigint, bigint] {
  const [w = '0', f = ''] = text.split('.');
  const scale = 10n ** BigInt(f.length);
  return [BigInt(w) * scale + BigInt(f || '0'), scale];
}

function numeric(s: Scalar): { value: bigint; currency?: string } | undefined {
  if (s.t === 'money') return { value: BigInt(s.minor), currency: s.currency };
  if (s.t === 'number' && Number.isInteger(s.v)) return { value: BigInt(s.v) };
  return undefined;
}

function timeOf(s: Scalar): number | undefined {
  if (s.t === 'string') {
    const t = Date.parse(s.v);
    return Number.isFinite(t) ? t : undefined;
  }
  if (s.t === 'number') return s.v;
  return undefined;
}

function same(a: Scalar, b: Scalar): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export function compareField(
  rule: CompareRule,
  channel: Scalar,
  erp: Scalar,
  statusEquivalences: ReconciliationPolicySpec['statusEquivalences'],
): FieldDifference | undefined {
  const diff = (reason: string, extra: Partial<FieldDifference> = {}): FieldDifference => ({
    field: rule.name,
    rule: rule.rule,
    reason: rule.exceptionReason ?? reason,
    channel,
    erp,
    ...extra,
  });
  if (channel.t === 'missing' || erp.t === 'missing') {
    return channel.t === erp.t ? undefined : diff('field_missing');
  }
  switch (rule.rule) {
    case 'exact':
      return same(channel, erp) ? undefined : diff('field_mismatch');
    case 'status': {
      if (same(channel, erp)) return undefined;
      const c = channel.t === 'string' ? channel.v : '';
      const e = erp.t === 'string' ? erp.v : '';
      const eq = statusEquivalences?.find((s) => s.channel === c);
      return eq?.erp.includes(e) ? undefined : diff('status_mismatch');
    }
    case 'absolute':
    case 'percent':
    case 'lessOrEqual': {
      const a = numeric(channel);
      const b = numeric(erp);
      if (!a || !b) return diff('not_comparable');
      if (a.currency !== b.currency) return diff('currency_mismatch');
      const d = b.value - a.value;
      const extra = { difference: d.toString(), ...(a.currency ? { currency: a.currency } : {}) };
      const abs = d < 0n ? -d : d;
      if (rule.rule === 'absolute')
        return abs <= BigInt(rule.toleranceMinor ?? 0) ? undefined : diff('amount_mismatch', extra);
      if (rule.rule === 'lessOrEqual') return a.value <= b.value ? undefined : diff('exceeds', extra);
      // percent of the channel value: |d| * 100 * den <= num * |a|
      const [num, den] = decimalFraction(rule.tolerancePercent ?? '0');
      const base = a.value < 0n ? -a.value : a.value;
      return abs * 100n * den <= num * base ? undefined : diff('amount_mismatch', extra);
    }
    case 'dateLag': {
      const a = timeOf(channel);
      const b = timeOf(erp);
      if (a === undefined || b === undefined) return diff('not_comparable');
      const lag = b - a;
      const max = durationMs(rule.maxLag ?? '0s');
      if (lag < 0) return diff('erp_before_channel', { difference: String(lag) });
      return lag <= max ? undefined : diff('late', { difference: String(lag) });
    }
  }
}
