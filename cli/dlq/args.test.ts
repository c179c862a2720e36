import { describe, expect, it } from 'vitest';
import { UsageError } from '../errors.ts';
import { DEFAULT_LIST_LIMIT, parseDlqArgs, parseFlowRef } from './args.ts';

const now = new Date('2026-11-26T12:00:00Z');
const env = { TALLY_NATS_URL: 'nats://env:4222' };
const parse = (...argv: string[]) => parseDlqArgs(argv, env, now);
const usage = (argv: string[], message: RegExp, e: Record<string, string> = env) => {
  let err: unknown;
  try {
    parseDlqArgs(argv, e, now);
  } catch (x) {
    err = x;
  }
  expect(err, `expected a usage error for ${argv.join(' ')}`).toBeDefined();
  const usageLike =
    err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
  expect(usageLike).toBe(true);
  expect((err as Error).message).toMatch(message);
};

describe('parseFlowRef', () => {
  it('reads NAMESPACE/NAME and defaults the namespace', () => {
    expect(parseFlowRef('shop/shopify-orders')).toEqual({ namespace: 'shop', name: 'shopify-orders' });
    expect(parseFlowRef('shopify-orders')).toEqual({ namespace: 'default', name: 'shopify-orders' });
  });

  it.each(['a/b/c', 'Shop/x', 'shop/', '/x', 'x.y', 'a b', 'x>'])('refuses %j', (t) => {
    expect(() => parseFlowRef(t)).toThrow(UsageError);
  });
});

describe('parseDlqArgs', () => {
  it('parses list with every filter', () => {
    const plan = parse(
      'list',
      '--nats-url',
      'nats://a:4222,nats://b:4222',
      '--flow',
      'shop/shopify-orders',
      '--reason',
      'mapping_validation',
      '--reason',
      'invalid_json',
      '--error-class',
      'PayloadError',
      '--since',
      '2h',
      '--until',
      '2026-11-26T11:30:00Z',
      '--limit',
      '5',
      '-o',
      'json',
    );
    expect(plan).toEqual({
      command: 'list',
      common: {
        servers: ['nats://a:4222', 'nats://b:4222'],
        flow: { namespace: 'shop', name: 'shopify-orders' },
      },
      filter: {
        reasons: ['mapping_validation', 'invalid_json'],
        errorClasses: ['PayloadError'],
        since: new Date('2026-11-26T10:00:00Z'),
        until: new Date('2026-11-26T11:30:00Z'),
      },
      limit: 5,
      output: 'json',
    });
  });

  it('defaults: TALLY_NATS_URL, list limit, table output', () => {
    expect(parse('list', '--flow', 'x')).toEqual({
      command: 'list',
      common: { servers: ['nats://env:4222'], flow: { namespace: 'default', name: 'x' } },
      filter: {},
      limit: DEFAULT_LIST_LIMIT,
      output: 'table',
    });
  });

  it('parses show', () => {
    expect(parse('show', '--flow', 'x', '12', '-o', 'json')).toMatchObject({
      command: 'show',
      seq: 12,
      output: 'json',
    });
    expect(parse('show', '--flow', 'x', '12')).toMatchObject({ output: 'text' });
  });

  it('parses replay with sequences, dry run and purge; no limit by default', () => {
    expect(
      parse('replay', '--flow', 'x', '--dry-run', '--purge', '--reason', 'sink_rejected', '3', '5'),
    ).toEqual({
      command: 'replay',
      common: { servers: ['nats://env:4222'], flow: { namespace: 'default', name: 'x' } },
      filter: { reasons: ['sink_rejected'], seqs: [3, 5] },
      limit: undefined,
      dryRun: true,
      purge: true,
      output: 'table',
    });
    expect(parse('replay', '--flow', 'x')).toMatchObject({ dryRun: false, purge: false, filter: {} });
  });

  it('answers help', () => {
    expect(parse('--help')).toEqual({ command: 'help' });
    expect(parse('list', '--help')).toEqual({ command: 'help' });
  });

  it('refuses what it cannot do, as usage errors', () => {
    usage([], /missing subcommand/);
    usage(['purge'], /unknown subcommand "purge"/);
    usage(['list', '--flow', 'x'], /--nats-url \(or TALLY_NATS_URL\) is required/, {});
    usage(['list'], /--flow \[NAMESPACE\/\]NAME is required/);
    usage(['list', '--flow', 'x', '--since', 'yesterday'], /--since "yesterday" is neither a duration/);
    usage(['list', '--flow', 'x', '--since', '1h', '--until', '2h'], /is not before --until/);
    usage(['list', '--flow', 'x', '--limit', '0'], /--limit 0: expected a positive integer/);
    usage(['list', '--flow', 'x', '--limit', '2.5'], /positive integer/);
    usage(['list', '--flow', 'x', '-o', 'yaml'], /-o yaml is not supported by list/);
    usage(['list', '--flow', 'x', '--purge'], /list takes no --purge/);
    usage(['list', '--flow', 'x', '4'], /list takes no SEQ/);
    usage(['list', '--flow', 'x', '--reason', ' '], /--reason needs a value/);
    usage(['list', '--flow', 'x', '--bogus'], /bogus/);
    usage(['show', '--flow', 'x'], /exactly one SEQ/);
    usage(['show', '--flow', 'x', '1', '2'], /exactly one SEQ/);
    usage(['show', '--flow', 'x', 'abc'], /SEQ abc/);
    usage(['show', '--flow', 'x', '1', '--reason', 'r'], /show takes no --reason/);
    usage(['show', '--flow', 'x', '1', '-o', 'table'], /-o table is not supported by show/);
    usage(['replay', '--flow', 'x', '-1'], /./);
  });
});
