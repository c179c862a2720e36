import { describe, expect, it } from 'vitest';
import { deliverySchema } from '../../api/integration-flow.ts';
import {
  consumerStart,
  filtersOverlap,
  flowConsumerConfigs,
  isFlowConsumerName,
  partitionCount,
  retiredConsumerDeletable,
  startSeqOf,
  subjectMatches,
} from './flow-resources.ts';

const flow = { namespace: 'shop', name: 'orders' };
const delivery = (d: Record<string, unknown> = {}) => deliverySchema.parse(d);

describe('flowConsumerConfigs', () => {
  it('gives an unordered flow one consumer of every partition subject, many messages out at once', () => {
    const [only, ...rest] = flowConsumerConfigs(flow, { delivery: delivery() });
    expect(rest).toEqual([]);
    expect(only).toMatchObject({
      durable_name: 'worker',
      filter_subject: 'tally.shop.orders.in.>',
      max_ack_pending: 1000,
      ack_policy: 'explicit',
    });
  });

  it('gives an ordered flow one consumer per partition, one message out at a time', () => {
    const configs = flowConsumerConfigs(flow, {
      delivery: delivery({ partitions: 3, partitionKey: '$string(id)', ackWait: '10s' }),
    });
    expect(configs.map((c) => [c.durable_name, c.filter_subject, c.max_ack_pending])).toEqual([
      ['worker-0', 'tally.shop.orders.in.0', 1],
      ['worker-1', 'tally.shop.orders.in.1', 1],
      ['worker-2', 'tally.shop.orders.in.2', 1],
    ]);
    expect(configs.every((c) => c.ack_wait === 10e9 && c.max_deliver === -1)).toBe(true);
    expect(configs.every((c) => isFlowConsumerName(c.durable_name))).toBe(true);
    expect(isFlowConsumerName('dlq-browser')).toBe(false);
  });

  it('counts partitions only for ordered flows', () => {
    expect(partitionCount(delivery({ partitions: 1, partitionKey: 'id' }))).toBe(1);
    expect(partitionCount(delivery({ partitions: 8, partitionKey: 'id' }))).toBe(8);
    expect(partitionCount({ partitions: 8, partitionKey: undefined })).toBe(1);
  });

  it('refuses partitions without a partition key', () => {
    const r = deliverySchema.safeParse({ partitions: 4 });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]).toMatchObject({ path: ['partitionKey'] });
  });
});

describe('filtersOverlap', () => {
  it('knows which filters can share a subject', () => {
    expect(filtersOverlap('a.in.>', 'a.in.3')).toBe(true);
    expect(filtersOverlap('a.in.3', 'a.in.>')).toBe(true);
    expect(filtersOverlap('a.in.3', 'a.in.3')).toBe(true);
    expect(filtersOverlap('a.in.3', 'a.in.4')).toBe(false);
    expect(filtersOverlap('a.in.>', 'a.in')).toBe(false);
    expect(filtersOverlap('a.*.3', 'a.in.3')).toBe(true);
  });
});

describe('consumerStart', () => {
  const existing = (name: string, filterSubject: string, ackFloorStreamSeq: number) => ({
    name,
    filterSubject,
    ackFloorStreamSeq,
  });

  it('starts from the beginning for a new flow', () => {
    expect(consumerStart('f.in.0', [])).toEqual({ deliver_policy: 'all' });
  });

  it('picks up after the unordered consumer when a flow becomes ordered: nothing unacked is skipped', () => {
    expect(consumerStart('f.in.0', [existing('worker', 'f.in.>', 41)])).toEqual({
      deliver_policy: 'by_start_sequence',
      opt_start_seq: 42,
    });
  });

  it('takes the lowest floor of the overlapping consumers when an ordered flow becomes unordered', () => {
    expect(
      consumerStart('f.in.>', [existing('worker-0', 'f.in.0', 90), existing('worker-1', 'f.in.1', 17)]),
    ).toEqual({ deliver_policy: 'by_start_sequence', opt_start_seq: 18 });
  });

  it('takes only new messages on a partition subject no existing consumer covers', () => {
    expect(consumerStart('f.in.5', [existing('worker-0', 'f.in.0', 3)])).toEqual({ deliver_policy: 'new' });
  });
});

describe('retiredConsumerDeletable', () => {
  const retired = (filterSubject: string, floor: number, pending: number) => ({
    name: 'old',
    filterSubject,
    ackFloorStreamSeq: floor,
    pending,
    ackPending: 0,
  });

  it('lets a drained consumer go', () => {
    expect(retiredConsumerDeletable(retired('f.in.3', 9, 0), ['f.in.3'], [])).toBe(true);
  });

  it('lets the unordered consumer go once the partition consumers start at or before its floor', () => {
    const layout = [
      { filterSubject: 'f.in.0', startSeq: 42 },
      { filterSubject: 'f.in.1', startSeq: 42 },
    ];
    expect(retiredConsumerDeletable(retired('f.in.>', 41, 7), ['f.in.0'], layout)).toBe(true);
    // A new consumer that starts later would skip what the old one still holds.
    expect(retiredConsumerDeletable(retired('f.in.>', 30, 7), ['f.in.0'], layout)).toBe(false);
  });

  it('keeps a partition consumer whose subject the new layout no longer serves until it is drained', () => {
    const layout = [
      { filterSubject: 'f.in.0', startSeq: 1 },
      { filterSubject: 'f.in.1', startSeq: 1 },
    ];
    expect(retiredConsumerDeletable(retired('f.in.3', 5, 2), ['f.in.0', 'f.in.3'], layout)).toBe(false);
  });

  it('reads where a consumer starts and matches subjects as NATS does', () => {
    expect(startSeqOf({ deliver_policy: 'all' })).toBe(1);
    expect(startSeqOf({ deliver_policy: 'by_start_sequence', opt_start_seq: 18 })).toBe(18);
    expect(startSeqOf({ deliver_policy: 'new' })).toBe(Number.POSITIVE_INFINITY);
    expect(subjectMatches('f.in.>', 'f.in.3')).toBe(true);
    expect(subjectMatches('f.in.>', 'f.in')).toBe(false);
    expect(subjectMatches('f.*.3', 'f.in.3')).toBe(true);
    expect(subjectMatches('f.in.3', 'f.in.4')).toBe(false);
  });
});
