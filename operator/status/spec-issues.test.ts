import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { describeSpecIssues } from './spec-issues.ts';

const schema = z
  .object({
    channel: z.string().min(2),
    replicas: z.number().max(10),
    mode: z.enum(['a', 'b']),
    sinks: z
      .array(z.object({ url: z.string().regex(/^https?:\/\//, 'must be an http:// or https:// URL') }))
      .min(1),
  })
  .strict();

const problems = (input: unknown) => {
  const parsed = schema.safeParse(input, { reportInput: true });
  if (parsed.success) throw new Error('expected a problem');
  return describeSpecIssues(parsed.error).split('; ');
};

const valid = { channel: 'shop', replicas: 1, mode: 'a', sinks: [{ url: 'http://x' }] };

describe('describeSpecIssues', () => {
  it('names each field from spec, with [i] for list items, and the check’s own message', () => {
    expect(problems({ ...valid, sinks: [{ url: 'ftp://x' }] })).toEqual([
      'spec.sinks[0].url: must be an http:// or https:// URL',
    ]);
  });

  it('tells a missing field from one of the wrong type', () => {
    const { channel: _c, ...rest } = valid;
    expect(problems({ ...rest, replicas: 'two' })).toEqual([
      'spec.channel: is required (expected string)',
      'spec.replicas: has the wrong type: expected number, got string',
    ]);
  });

  it('says what is allowed: enum values, bounds, unknown fields', () => {
    expect(problems({ ...valid, mode: 'c', replicas: 11, channel: 's', sinks: [], extra: 1 })).toEqual([
      'spec.channel: must be at least 2 character(s) long',
      'spec.replicas: must be at most 10',
      'spec.mode: is "c": expected one of "a", "b"',
      'spec.sinks: needs at least 1 item(s)',
      'spec: unknown field "extra": remove it or check the spelling (kubectl explain shows the fields)',
    ]);
  });
});
