import { describe, expect, it } from 'vitest';
import { CANONICAL_ENTITIES } from '../api/canonical/index.ts';
import type { XrefRecord } from '../runtime/xref/record.ts';
import { UsageError } from './errors.ts';
import {
  countLine,
  formatRecordsCsv,
  formatRecordsTable,
  formatRecordText,
  parseIdAssignment,
  parseIdAssignments,
  parseXrefArgs,
  redactUrl,
  scrubServers,
  XREF_USAGE,
  xrefSubUsage,
} from './xref.ts';

const env = { TALLY_NATS_URL: 'nats://env:4222' };
const parse = (...argv: string[]) => parseXrefArgs(argv, env);
const usage = (argv: string[], message: RegExp, e: Record<string, string> = env) => {
  let err: unknown;
  try {
    parseXrefArgs(argv, e);
  } catch (x) {
    err = x;
  }
  expect(err, `expected a usage error for ${argv.join(' ')}`).toBeDefined();
  const usageLike =
    err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
  expect(usageLike, String(err)).toBe(true);
  expect((err as Error).message).toMatch(message);
};

const common = { servers: ['nats://env:4222'], namespace: 'default', bucket: 'tally_xref_default' };

const record: XrefRecord = {
  entity: 'Order',
  key: 'SO-1001',
  ids: { shopify: '5123456789012', netsuite: '1042' },
  provenance: {
    shopify: { by: 'default/shopify-orders', version: '3', at: '2026-11-26T10:00:00.000Z' },
    netsuite: { by: 'cli', at: '2026-11-26T11:00:00.000Z' },
  },
};

describe('parseIdAssignment', () => {
  it('splits SYSTEM=ID at the first "="', () => {
    expect(parseIdAssignment('a=b')).toEqual({ system: 'a', id: 'b' });
    expect(parseIdAssignment('netsuite=eid:SO/42=x')).toEqual({ system: 'netsuite', id: 'eid:SO/42=x' });
    expect(parseIdAssignment('shopify=#1001')).toEqual({ system: 'shopify', id: '#1001' });
  });

  it('refuses the system "tally" with a clear message', () => {
    expect(() => parseIdAssignment('tally=x')).toThrow(UsageError);
    expect(() => parseIdAssignment('tally=x')).toThrow(/canonical key itself.*--key/);
  });

  it.each(['Shopify=1', 'shop_ify=1', '-shop=1', 'shop-=1', 'shop.x=1', '=1', 'a b=1'])(
    'refuses the system name in %j',
    (t) => {
      expect(() => parseIdAssignment(t)).toThrow(/lowercase identifier/);
    },
  );

  it('refuses a missing "=" and an empty id', () => {
    expect(() => parseIdAssignment('shopify')).toThrow(/expected SYSTEM=ID/);
    expect(() => parseIdAssignment('shopify=')).toThrow(/the id is empty/);
    expect(() => parseIdAssignment('shopify=  ')).toThrow(/the id is empty/);
  });

  it('takes several systems, the same one twice only with the same id', () => {
    expect(parseIdAssignments(['shopify=1', 'netsuite=2', 'shopify=1'])).toEqual({
      shopify: '1',
      netsuite: '2',
    });
    expect(() => parseIdAssignments(['shopify=1', 'shopify=2'])).toThrow(/given twice/);
  });
});

describe('parseXrefArgs', () => {
  it('parses get by key, with the namespace and bucket', () => {
    expect(parse('get', '--entity', 'Order', '--key', 'SO-1', '-n', 'shop', '-o', 'json')).toEqual({
      command: 'get',
      common: { servers: ['nats://env:4222'], namespace: 'shop', bucket: 'tally_xref_shop' },
      entity: 'Order',
      by: { key: 'SO-1' },
      output: 'json',
    });
  });

  it('parses get by system id, with --nats-url over the environment', () => {
    const plan = parse(
      'get',
      '--entity',
      'Order',
      '--system',
      'shopify',
      '--id',
      '42',
      '--nats-url',
      'a:1, b:2',
    );
    expect(plan).toEqual({
      command: 'get',
      common: { ...common, servers: ['a:1', 'b:2'] },
      entity: 'Order',
      by: { system: 'shopify', id: '42' },
      output: 'text',
    });
  });

  it('parses list with its defaults and filters', () => {
    expect(parse('list')).toEqual({
      command: 'list',
      common,
      entity: undefined,
      system: undefined,
      limit: 100,
      output: 'text',
    });
    expect(
      parse('list', '--entity', 'Product', '--system', 'shopify', '--limit', '5', '-o', 'csv'),
    ).toMatchObject({ entity: 'Product', system: 'shopify', limit: 5, output: 'csv' });
  });

  it('parses put with several ids and a data file', () => {
    expect(
      parse(
        'put',
        '--entity',
        'Customer',
        '--key',
        'C-1',
        '--id',
        'shopify=9',
        '--id',
        'netsuite=7',
        '--data',
        'c.json',
      ),
    ).toEqual({
      command: 'put',
      common,
      entity: 'Customer',
      key: 'C-1',
      ids: { shopify: '9', netsuite: '7' },
      dataFile: 'c.json',
      output: 'text',
    });
  });

  it('parses delete of a record and of one system', () => {
    expect(parse('delete', '--entity', 'Order', '--key', 'K')).toEqual({
      command: 'delete',
      common,
      entity: 'Order',
      key: 'K',
      system: undefined,
    });
    expect(parse('delete', '--entity', 'Order', '--key', 'K', '--system', 'shopify')).toMatchObject({
      system: 'shopify',
    });
  });

  it('gives the usage for --help, overall and per subcommand', () => {
    expect(parse('--help')).toEqual({ command: 'help', usage: XREF_USAGE });
    for (const sub of ['get', 'list', 'put', 'delete'] as const) {
      // --help wins over anything missing or wrong.
      expect(parseXrefArgs([sub, '--help'], {})).toEqual({ command: 'help', usage: xrefSubUsage(sub) });
      expect(xrefSubUsage(sub)).toMatch(new RegExp(`^Usage: tally xref ${sub} `));
      expect(XREF_USAGE).toContain(`tally xref ${sub}`);
    }
  });

  it('lists the canonical entities for a bad one, and suggests the right case', () => {
    usage(['get', '--entity', 'Widget', '--key', 'k'], new RegExp(CANONICAL_ENTITIES.join(', ')));
    usage(['list', '--entity', 'order'], /did you mean Order\?/);
  });

  it.each([
    [[], /missing subcommand/],
    [['show'], /unknown subcommand "show"/],
    [['get', '--entity', 'Order', '--key', 'k'], /--nats-url \(or TALLY_NATS_URL\) is required/, {}],
    [['get', '--key', 'k'], /--entity is required/],
    [['get', '--entity', 'Order'], /needs --key KEY, or --system SYS with --id ID/],
    [['get', '--entity', 'Order', '--id', 'shopify=1'], /put takes --id SYS=ID/],
    [['get', '--entity', 'Order', '--key', 'k', '--system', 's', '--id', '1'], /not both/],
    [['get', '--entity', 'Order', '--key', 'k', '-o', 'csv'], /-o csv is not supported by get/],
    [['get', '--entity', 'Order', '--key', ''], /--key needs a value/],
    [['list', '--limit', '0'], /positive integer/],
    [['list', '--key', 'k'], /list takes no --key/],
    [['list', '--system', 'Shopify'], /lowercase identifier/],
    [['list', 'Order'], /Unexpected argument|positional/i],
    [['list', '--frob'], /Unknown option/],
    [['list', '-n', 'Shop'], /not a namespace name/],
    [['put', '--entity', 'Order', '--key', 'k'], /at least one --id/],
    [['put', '--entity', 'Order', '--id', 'a=b'], /--key is required/],
    [['put', '--entity', 'Order', '--key', 'k', '--id', 'tally=k'], /canonical key itself/],
    [['delete', '--entity', 'Order', '--key', 'k', '--system', 'tally'], /canonical key itself/],
    [['delete', '--entity', 'Order', '--key', 'k', '--id', 'x'], /delete takes no --id/],
    [['delete', '--entity', 'Order', '--key', 'k', '-o', 'json'], /delete takes no --output/],
  ] as [string[], RegExp, Record<string, string>?][])('refuses %j', (argv, message, e) => {
    usage(argv, message, e ?? env);
  });
});

describe('redactUrl', () => {
  it('hides users, passwords and tokens, and leaves other URLs alone', () => {
    expect(redactUrl('nats://alice:s3cret@nats.example:4222')).toBe('nats://***@nats.example:4222');
    expect(redactUrl('tls://tok3n@nats:4222')).toBe('tls://***@nats:4222');
    expect(redactUrl('alice:s3cret@127.0.0.1:4222')).toBe('***@127.0.0.1:4222');
    expect(redactUrl('nats://127.0.0.1:4222')).toBe('nats://127.0.0.1:4222');
    expect(scrubServers('x nats://a:b@h:1 y', ['nats://a:b@h:1'])).toBe('x nats://***@h:1 y');
  });
});

describe('printing', () => {
  it('shows one record: entity, key, one line per system with its provenance', () => {
    expect(formatRecordText(record)).toBe(
      [
        'entity  Order',
        'key     SO-1001',
        'ids',
        '  netsuite  1042            (by cli, at 2026-11-26T11:00:00.000Z)',
        '  shopify   5123456789012   (by default/shopify-orders, version 3, at 2026-11-26T10:00:00.000Z)',
        '',
      ].join('\n'),
    );
  });

  it('shows master data and a record without ids, escaping control characters', () => {
    const text = formatRecordText({
      entity: 'Customer',
      key: 'C\u001b[2J',
      ids: {},
      provenance: {},
      data: { name: 'Ada' },
      dataVersion: '7',
    });
    expect(text).toBe(
      [
        'entity  Customer',
        'key     C\\u001b[2J',
        'ids     (none)',
        'data (version 7)',
        '  {',
        '    "name": "Ada"',
        '  }',
        '',
      ].join('\n'),
    );
  });

  it('lists records as a table of SYSTEM=ID', () => {
    const other: XrefRecord = { entity: 'Product', key: 'SKU-1', ids: {}, provenance: {} };
    expect(formatRecordsTable([record, other])).toBe(
      [
        'ENTITY   KEY      SYSTEM=ID ...',
        'Order    SO-1001  netsuite=1042 shopify=5123456789012',
        'Product  SKU-1    -',
        '',
      ].join('\n'),
    );
  });

  it('lists records as CSV, one row per id, quoting what needs it', () => {
    const odd: XrefRecord = {
      entity: 'Order',
      key: 'a,"b"',
      ids: { shopify: '#1' },
      provenance: { shopify: { by: 'cli', at: 't' } },
    };
    const empty: XrefRecord = { entity: 'Order', key: 'e', ids: {}, provenance: {} };
    expect(formatRecordsCsv([record, odd, empty])).toBe(
      [
        'entity,key,system,id,by,version,at',
        'Order,SO-1001,netsuite,1042,cli,,2026-11-26T11:00:00.000Z',
        'Order,SO-1001,shopify,5123456789012,default/shopify-orders,3,2026-11-26T10:00:00.000Z',
        'Order,"a,""b""",shopify,#1,cli,,t',
        'Order,e,,,,,',
        '',
      ].join('\n'),
    );
  });

  it('counts, and says when --limit cut the list', () => {
    expect(countLine(0, 0)).toBe('0 records');
    expect(countLine(1, 1)).toBe('1 record');
    expect(countLine(5, 2)).toBe('5 records (first 2 shown; --limit to see more)');
  });
});
