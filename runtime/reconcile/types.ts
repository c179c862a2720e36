// Shapes the reconciliation engine works with and produces.
import type { FieldDifference } from './compare.ts';
import type { Scalar } from './fields.ts';

export type Side = 'channel' | 'erp';

/** A canonical event assigned to one side of a policy. */
export interface ReconEvent {
  side: Side;
  /** Position in the canonical stream: the tie-breaker when versions are equal or absent. */
  seq: number;
  eventId: string;
  channel: string;
  flow: string;
  data: Record<string, unknown>;
}

/** What the engine keeps of one side of one key: only what it compares and reports. */
export interface SideRecord {
  seq: number;
  eventId: string;
  flow: string;
  channel: string;
  version?: number;
  businessMs: number;
  amount?: Scalar;
  status?: string;
  /** One value per compare rule, in rule order. */
  compared: Scalar[];
}

export interface KeyEntry {
  key: string;
  channel?: SideRecord;
  erp?: SideRecord;
}

export type Outcome = 'matched' | 'mismatched' | 'missing_erp' | 'missing_channel' | 'pending';
export const OUTCOMES: Outcome[] = ['matched', 'mismatched', 'missing_erp', 'missing_channel', 'pending'];

export interface KeyResult {
  key: string;
  outcome: Outcome;
  channel: string;
  differences: FieldDifference[];
}

export type Sums = Record<string, string>; // currency -> decimal amount

export interface OutcomeCounts {
  keys: number;
  matched: number;
  mismatched: number;
  missingErp: number;
  missingChannel: number;
  pending: number;
  /** matched / keys, percent with two decimals ("100.00" for an empty window). */
  matchRate: string;
}

export interface ChannelBreakdown extends OutcomeCounts {
  channel: string;
  channelSide: { count: number; sums: Sums };
  erpSide: { count: number; sums: Sums };
  /** Σ ERP − Σ channel, per currency. */
  variance: Sums;
}

export interface Breach {
  threshold: 'maxMissingPercent' | 'maxMismatchPercent' | 'maxVarianceAmount';
  limit: string;
  value: string;
  currency?: string;
}

export interface WindowReport {
  policy: string;
  window: string;
  timeZone: string;
  cutoff: string;
  start: string;
  end: string;
  finalAt: string;
  final: boolean;
  /** 1 for the first final report; each amendment adds one. 0 while preliminary. */
  version: number;
  amendments: number;
  totals: OutcomeCounts;
  byChannel: ChannelBreakdown[];
  /** Open (not matched) keys by status, with the amount still open (channel − ERP) per currency. */
  byStatus: { status: string; count: number; open: Sums }[];
  variance: Sums;
  exceptions: Record<string, number>;
  breaches: Breach[];
  breached: boolean;
}

export interface ReconException {
  id: string;
  policy: string;
  window: string;
  reportVersion: number;
  key: string;
  keyFields: string[];
  outcome: Outcome;
  reasons: string[];
  channel: string;
  differences: {
    field: string;
    rule: string;
    reason: string;
    channel: unknown;
    erp: unknown;
    difference?: string;
    currency?: string;
  }[];
  channelSide?: { flow: string; eventId: string; channel: string };
  erpSide?: { flow: string; eventId: string; channel: string };
}
