import { describe, expect, it } from 'vitest';
import type { Condition } from '../../api/common.ts';
import { conditionsFor, sameStatus } from './conditions.ts';

const T0 = new Date('2026-03-01T08:00:00.250Z');
const T1 = new Date('2026-03-01T09:30:00.750Z');

const byType = (conditions: Condition[]) => Object.fromEntries(conditions.map((c) => [c.type, c]));

describe('conditionsFor', () => {
  it('gives a ready outcome only Ready=True, at the observed generation, with a whole-second time', () => {
    const conditions = conditionsFor({ ready: true, reason: 'Reconciled', message: 'ok' }, 3, undefined, T0);
    expect(conditions).toEqual([
      {
        type: 'Ready',
        status: 'True',
        reason: 'Reconciled',
        message: 'ok',
        observedGeneration: 3,
        lastTransitionTime: '2026-03-01T08:00:00Z',
      },
    ]);
  });

  it('adds Stalled=True with the same reason and message when the user must act', () => {
    const c = byType(
      conditionsFor(
        { ready: false, stalled: true, reason: 'InvalidSpec', message: 'spec.x: bad' },
        1,
        [],
        T0,
      ),
    );
    expect(Object.keys(c)).toEqual(['Ready', 'Stalled']);
    expect(c.Ready).toMatchObject({ status: 'False', reason: 'InvalidSpec', message: 'spec.x: bad' });
    expect(c.Stalled).toMatchObject({ status: 'True', reason: 'InvalidSpec', message: 'spec.x: bad' });
  });

  it('adds Reconciling=True while waiting for something that happens by itself', () => {
    const c = byType(
      conditionsFor(
        { ready: false, progressing: true, reason: 'NatsUnavailable', message: 'down' },
        1,
        [],
        T0,
      ),
    );
    expect(Object.keys(c)).toEqual(['Ready', 'Reconciling']);
    expect(c.Reconciling).toMatchObject({ status: 'True', reason: 'NatsUnavailable' });
  });

  it('drops Stalled and Reconciling once they no longer hold (kstatus: present only while True)', () => {
    const previous = conditionsFor(
      { ready: false, stalled: true, reason: 'InvalidSpec', message: 'x' },
      1,
      [],
      T0,
    );
    const now = conditionsFor({ ready: true, reason: 'Reconciled', message: 'ok' }, 2, previous, T1);
    expect(now.map((c) => c.type)).toEqual(['Ready']);
  });

  it('keeps lastTransitionTime while a status holds, even when reason and message change', () => {
    const previous = conditionsFor(
      { ready: false, stalled: true, reason: 'InvalidSpec', message: 'a' },
      1,
      [],
      T0,
    );
    const c = byType(
      conditionsFor(
        { ready: false, stalled: true, reason: 'MappingNotFound', message: 'b' },
        2,
        previous,
        T1,
      ),
    );
    expect(c.Ready).toMatchObject({ reason: 'MappingNotFound', observedGeneration: 2 });
    expect(c.Ready?.lastTransitionTime).toBe('2026-03-01T08:00:00Z');
    expect(c.Stalled?.lastTransitionTime).toBe('2026-03-01T08:00:00Z');
  });

  it('moves lastTransitionTime when a status changes', () => {
    const previous = conditionsFor(
      { ready: false, stalled: true, reason: 'InvalidSpec', message: 'a' },
      1,
      [],
      T0,
    );
    const [ready] = conditionsFor({ ready: true, reason: 'Reconciled', message: 'ok' }, 2, previous, T1);
    expect(ready?.lastTransitionTime).toBe('2026-03-01T09:30:00Z');
  });
});

describe('sameStatus', () => {
  it('ignores key order and undefined fields', () => {
    expect(
      sameStatus(
        { a: 1, b: { c: [1, { d: 2, e: 3 }] } },
        { b: { c: [1, { e: 3, d: 2 }] }, a: 1, x: undefined },
      ),
    ).toBe(true);
  });

  it('sees a changed value, a missing field and a reordered list', () => {
    expect(sameStatus({ a: 1 }, { a: 2 })).toBe(false);
    expect(sameStatus({ a: 1, b: 2 }, { a: 1 })).toBe(false);
    expect(sameStatus({ l: [1, 2] }, { l: [2, 1] })).toBe(false);
  });
});
