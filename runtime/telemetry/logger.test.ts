import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createLogger, messageLogger, withKeys } from './logger.ts';

/** Raw lines as written, to see keys a JSON parser would fold together. */
function sink() {
  const lines: string[] = [];
  return { lines, destination: { write: (l: string) => void lines.push(l) } };
}
const count = (line: string, key: string) => line.split(`"${key}":`).length - 1;

describe('createLogger', () => {
  it("puts a flow's flow and channel on every line", () => {
    const { lines, destination } = sink();
    createLogger({ flow: 'ns/orders', channel: 'shopify-us', destination }).info('hello');
    expect(JSON.parse(lines[0]!)).toMatchObject({ flow: 'ns/orders', channel: 'shopify-us', msg: 'hello' });
  });

  it("puts a policy's policy on every line, and no flow or channel", () => {
    const { lines, destination } = sink();
    createLogger({ policy: 'ns/orders-vs-invoices', destination }).info('hello');
    const line = JSON.parse(lines[0]!);
    expect(line).toMatchObject({ policy: 'ns/orders-vs-invoices' });
    expect(line).not.toHaveProperty('flow');
    expect(line).not.toHaveProperty('channel');
  });

  it('serializes err with its type, message, code and cause', () => {
    const { lines, destination } = sink();
    const err = Object.assign(new Error('outer', { cause: new Error('inner') }), { code: 'X_CODE' });
    createLogger({ policy: 'ns/p', destination }).error({ err }, 'failed');
    expect(JSON.parse(lines[0]!).err).toMatchObject({
      type: 'Error',
      message: expect.stringContaining('outer'),
      code: 'X_CODE',
    });
    expect(JSON.parse(lines[0]!).err.stack).toContain('inner');
  });
});

describe('withKeys', () => {
  it('writes each key once when the logger already carries it', () => {
    const { lines, destination } = sink();
    const base = createLogger({ flow: 'ns/orders', channel: 'shopify-us', destination });
    withKeys(base, { flow: 'ns/orders', channel: 'shopify-us' }).info('hello');
    expect(count(lines[0]!, 'flow')).toBe(1);
    expect(count(lines[0]!, 'channel')).toBe(1);
  });

  it('adds the keys a logger lacks', () => {
    const { lines, destination } = sink();
    withKeys(pino({}, destination), { policy: 'ns/p' }).info('hello');
    expect(JSON.parse(lines[0]!)).toMatchObject({ policy: 'ns/p' });
    expect(count(lines[0]!, 'policy')).toBe(1);
  });

  it('lets a message logger add its business key on top', () => {
    const { lines, destination } = sink();
    const log = withKeys(pino({}, destination), { policy: 'ns/p' });
    messageLogger(log, { businessKey: 'o-1' }).warn('x');
    expect(JSON.parse(lines[0]!)).toMatchObject({ policy: 'ns/p', businessKey: 'o-1' });
  });
});
