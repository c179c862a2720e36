import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createIngestRouter, keyText, PartitionKeyError, partitionOf } from './partition.ts';

const logger = pino({ level: 'silent' });
const bytes = (v: unknown) => Buffer.from(JSON.stringify(v));

describe('partitionOf', () => {
  it('is FNV-1a 32 of the UTF-8 key modulo the partitions: stable, documented values', () => {
    // Reference values of 32-bit FNV-1a (0x811c9dc5 offset, 0x01000193 prime).
    expect(partitionOf('', 1 << 30)).toBe(0x811c9dc5 % (1 << 30));
    expect(partitionOf('a', 2 ** 32 - 1)).toBe(0xe40c292c % (2 ** 32 - 1));
    expect(partitionOf('foobar', 2 ** 32 - 1)).toBe(0xbf9cf968 % (2 ** 32 - 1));
    expect(partitionOf('5123456789012', 8)).toBe(partitionOf('5123456789012', 8));
    expect(partitionOf('anything', 1)).toBe(0);
  });

  it('spreads keys over every partition', () => {
    const counts = new Array(8).fill(0);
    for (let i = 0; i < 8000; i++) counts[partitionOf(String(7_000_000_000 + i), 8)]++;
    for (const c of counts) expect(c).toBeGreaterThan(700);
  });
});

describe('keyText', () => {
  it('keeps strings, prints numbers, serialises the rest, and has no key for nothing', () => {
    expect(keyText('o-1')).toBe('o-1');
    expect(keyText(5123456789012)).toBe('5123456789012');
    expect(keyText(['a', 1])).toBe('["a",1]');
    expect(keyText(undefined)).toBeUndefined();
    expect(keyText(null)).toBeUndefined();
    expect(keyText('')).toBeUndefined();
    expect(keyText(Number.NaN)).toBeUndefined();
  });
});

describe('createIngestRouter', () => {
  const subject = (p: number) => `tally.ns.f.in.${p}`;

  it('sends everything to partition 0 when the flow is not ordered', async () => {
    const route = createIngestRouter({ partitionKey: undefined, partitions: 1, subject, logger });
    expect(await route(bytes({ id: 1 }))).toEqual({ subject: 'tally.ns.f.in.0', partition: 0 });
  });

  it('puts every event of one key on the same partition, from raw bytes or the parsed payload', async () => {
    const route = createIngestRouter({ partitionKey: '$string(id)', partitions: 16, subject, logger });
    const p = partitionOf('5123456789012', 16);
    expect(await route(bytes({ id: 5123456789012, v: 1 }))).toEqual({
      subject: `tally.ns.f.in.${p}`,
      partition: p,
      key: '5123456789012',
    });
    expect((await route(Buffer.from('ignored'), { id: 5123456789012, v: 2 })).partition).toBe(p);
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) seen.add((await route(bytes({ id: i }))).partition);
    expect(seen.size).toBe(16);
  });

  it('never refuses a payload: no key, a failing expression or non-JSON go to partition 0', async () => {
    const route = createIngestRouter({ partitionKey: 'order.id', partitions: 4, subject, logger });
    expect(await route(bytes({ other: 1 }))).toEqual({ subject: 'tally.ns.f.in.0', partition: 0 });
    expect(await route(Buffer.from('{not json'))).toEqual({ subject: 'tally.ns.f.in.0', partition: 0 });
    const failing = createIngestRouter({ partitionKey: '$number("x")', partitions: 4, subject, logger });
    expect((await failing(bytes({}))).partition).toBe(0);
  });

  it('refuses an expression that does not compile, naming the field', () => {
    expect(() => createIngestRouter({ partitionKey: '$string(id', partitions: 4, subject, logger })).toThrow(
      PartitionKeyError,
    );
    expect(() => createIngestRouter({ partitionKey: '$string(id', partitions: 4, subject, logger })).toThrow(
      /delivery\.partitionKey/,
    );
  });
});
