import { describe, expect, it } from 'vitest';
import { canonicalMappingSpecSchema } from './canonical-mapping.ts';

const base = { entity: 'Shipment', expression: '{"a": 1}' };

describe('CanonicalMapping spec', () => {
  it('inbound needs a businessKey; outbound does not, and alone may have output, headers and params', () => {
    expect(canonicalMappingSpecSchema.safeParse(base).error?.issues[0]).toMatchObject({
      path: ['businessKey'],
      message: 'businessKey is required for an inbound mapping',
    });
    const outbound = canonicalMappingSpecSchema.parse({
      ...base,
      direction: 'outbound',
      output: { format: 'xml' },
      params: { id: 'shipmentId' },
    });
    expect(outbound).toMatchObject({ direction: 'outbound', output: { format: 'xml' } });
    const misplaced = canonicalMappingSpecSchema.safeParse({
      ...base,
      businessKey: 'a',
      params: { id: 'a' },
    });
    expect(misplaced.error?.issues[0]?.message).toMatch(/only for outbound mappings/);
  });

  it('a test case needs expected unless it expects an error', () => {
    const spec = (test: Record<string, unknown>) =>
      canonicalMappingSpecSchema.safeParse({
        ...base,
        direction: 'outbound',
        tests: [{ name: 't', input: {}, ...test }],
      });
    expect(spec({ expectedError: 'waiting' }).success).toBe(true);
    expect(spec({ expected: null }).success).toBe(true);
    expect(spec({}).error?.issues[0]).toMatchObject({
      path: ['tests', 0, 'expected'],
      message: 'a test case needs expected (or expectedError, for a case that must fail)',
    });
  });
});
