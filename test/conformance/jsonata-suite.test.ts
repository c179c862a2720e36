// The mapping engine's fast path (runtime/mapping/compiler) against jsonata's interpreter, on jsonata's
// own conformance suite and on every example mapping. Where the compiler accepts an expression, its
// result must be the interpreter's: the same value (deep, key order included) or an error with the same
// code. The suite is read from the shared folder at test time, never copied into the project.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import jsonata from 'jsonata';
import { afterAll, describe, expect, it } from 'vitest';
import { expandPaths, loadDocuments } from '../../cli/load-documents.ts';
import { collectConfigMaps, collectMappings, resolveDefinition } from '../../cli/mapping-test.ts';
import { compileFast, FastPathBailout } from '../../runtime/mapping/compiler/index.ts';
import { inboundDefinition } from '../../runtime/mapping/definition.ts';
import { compileMapping } from '../../runtime/mapping/engine.ts';
import { mappingFunctions } from '../../runtime/mapping/functions.ts';

const SUITE = fileURLToPath(new URL('../../../shared/conformance/jsonata-test-suite/', import.meta.url));
const EXAMPLES = fileURLToPath(new URL('../../examples/', import.meta.url));
const present = existsSync(join(SUITE, 'groups'));

interface TestCase {
  expr?: string;
  'expr-file'?: string;
  data?: unknown;
  dataset?: string | null;
  bindings?: Record<string, unknown>;
  timelimit?: number;
  depth?: number;
  result?: unknown;
  undefinedResult?: boolean;
  code?: string;
  /** Some cases expect an error this way, with its message. */
  error?: { code: string; message?: string };
}

type Outcome = { ok: true; value: unknown } | { ok: false; code: string; error: unknown };

interface GroupCounts {
  cases: number;
  supported: number;
  fastExpected: number;
  interpreterExpected: number;
}

/** Results as the fast path must reproduce them: key order counts, undefined is not null. */
function canonical(value: unknown): string {
  return (
    JSON.stringify(value, (_key, v: unknown) => {
      if (v === undefined) return '<undefined>';
      if (typeof v === 'function') return '<function>';
      if (typeof v === 'number' && !Number.isFinite(v)) return `<${v}>`;
      return v;
    }) ?? '<undefined>'
  );
}

/** The suite's own comparison: deep equality of the JSON values, key order aside. */
function deepEqualJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((x, i) => deepEqualJson(x, b[i]));
  }
  const ak = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const bk = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  return (
    ak.length === bk.length &&
    ak.every((k) => deepEqualJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
  );
}

/**
 * Whether an outcome is what the case expects. The fast path's errors carry jsonata's code but no
 * message (`messages` false): the engine has the interpreter re-evaluate a failing input and reports
 * the interpreter's error, message and location included.
 */
function meetsExpectation(tc: TestCase, outcome: Outcome, messages: boolean): boolean {
  if (tc.code !== undefined) return !outcome.ok && outcome.code === tc.code;
  if (tc.error !== undefined) {
    if (outcome.ok || outcome.code !== tc.error.code) return false;
    return (
      !messages || tc.error.message === undefined || (outcome.error as Error).message === tc.error.message
    );
  }
  if (!outcome.ok) return false;
  if (tc.undefinedResult) return outcome.value === undefined;
  return deepEqualJson(JSON.parse(JSON.stringify(outcome.value) ?? 'null'), tc.result);
}

function codeOf(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : `${(err as Error)?.name ?? 'thrown'}: ${String(err)}`;
}

function loadCases(group: string): { name: string; tc: TestCase }[] {
  const dir = join(SUITE, 'groups', group);
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .flatMap((file) => {
      const parsed = JSON.parse(readFileSync(join(dir, file), 'utf8')) as TestCase | TestCase[];
      const list = Array.isArray(parsed) ? parsed : [parsed];
      return list.map((tc, i) => ({ name: list.length > 1 ? `${file}[${i}]` : file, tc }));
    });
}

const datasets = new Map<string, unknown>();
function dataset(name: string): unknown {
  if (!datasets.has(name)) {
    datasets.set(name, JSON.parse(readFileSync(join(SUITE, 'datasets', `${name}.json`), 'utf8')));
  }
  return datasets.get(name);
}

const skipReason = `${SUITE} is absent (it is shared, not part of the project)`;
if (!present) console.log(`jsonata conformance suite: SKIPPED, ${skipReason}`);

const suiteTitle = present
  ? 'jsonata conformance suite: fast path vs interpreter'
  : `jsonata conformance suite (skipped: ${skipReason})`;

describe.skipIf(!present)(suiteTitle, () => {
  const groups = present ? readdirSync(join(SUITE, 'groups')).sort() : [];
  const counts = new Map<string, GroupCounts>();

  afterAll(() => {
    const rows = [...counts].map(([group, c]) => [
      group,
      c.cases,
      c.supported,
      c.fastExpected,
      c.interpreterExpected,
    ]);
    const total = [...counts.values()].reduce(
      (t, c) => ({
        cases: t.cases + c.cases,
        supported: t.supported + c.supported,
        fastExpected: t.fastExpected + c.fastExpected,
        interpreterExpected: t.interpreterExpected + c.interpreterExpected,
      }),
      { cases: 0, supported: 0, fastExpected: 0, interpreterExpected: 0 },
    );
    rows.push(['TOTAL', total.cases, total.supported, total.fastExpected, total.interpreterExpected]);
    const header = ['group', 'cases', 'fast path supported', 'fast == expected', 'interpreter == expected'];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
    const line = (r: (string | number)[]) =>
      r.map((v, i) => (i === 0 ? String(v).padEnd(widths[i]!) : String(v).padStart(widths[i]!))).join('  ');
    console.log(
      ['jsonata conformance suite, fast path vs interpreter:', line(header), ...rows.map(line)].join('\n'),
    );
  });

  it.each(groups)('%s: the fast path gives the interpreter’s result wherever it compiles', async (group) => {
    const c: GroupCounts = { cases: 0, supported: 0, fastExpected: 0, interpreterExpected: 0 };
    counts.set(group, c);
    const differences: string[] = [];
    for (const { name, tc } of loadCases(group)) {
      c.cases++;
      const expr = tc.expr ?? readFileSync(join(SUITE, 'groups', group, tc['expr-file'] ?? ''), 'utf8');
      const input = tc.data !== undefined ? tc.data : tc.dataset ? dataset(tc.dataset) : undefined;
      const bindings = tc.bindings ?? {};

      let interpreter: Outcome;
      try {
        const options = {
          ...(tc.timelimit === undefined ? {} : { timeout: tc.timelimit }),
          ...(tc.depth === undefined ? {} : { stack: tc.depth }),
        };
        interpreter = { ok: true, value: await jsonata(expr, options).evaluate(input, bindings) };
      } catch (err) {
        interpreter = { ok: false, code: codeOf(err), error: err };
      }
      if (meetsExpectation(tc, interpreter, true)) c.interpreterExpected++;
      else if (process.env.CONFORMANCE_VERBOSE) console.log(`interpreter != expected: ${group}/${name}`);

      let compiled: ReturnType<typeof compileFast>;
      try {
        compiled = compileFast(expr, { variables: Object.keys(bindings), maxDepth: tc.depth });
      } catch {
        continue; // a syntax error: nothing to compile
      }
      if (!compiled.supported) continue;
      c.supported++;
      let fast: Outcome;
      try {
        // No case needs more than a fraction of this; the slice only guards against a hang.
        fast = { ok: true, value: compiled.expression.evaluate(input, bindings, { timeSliceMs: 20_000 }) };
      } catch (err) {
        fast = { ok: false, code: codeOf(err), error: err };
      }
      if (!fast.ok && fast.error instanceof FastPathBailout) {
        // The engine would evaluate this input with the interpreter: not a wrong answer, not a fast one.
        c.supported--;
        continue;
      }
      if (meetsExpectation(tc, fast, false)) c.fastExpected++;
      const same = interpreter.ok
        ? fast.ok && canonical(fast.value) === canonical(interpreter.value)
        : !fast.ok && fast.code === interpreter.code;
      if (!same) {
        const show = (o: Outcome) => (o.ok ? canonical(o.value).slice(0, 200) : `error ${o.code}`);
        differences.push(
          `${name}: ${expr}\n  interpreter: ${show(interpreter)}\n  fast path:   ${show(fast)}`,
        );
      }
    }
    expect(differences, differences.join('\n')).toEqual([]);
  });

  it('compiles most of the suite (a compiler that refuses everything would prove nothing)', () => {
    const cases = [...counts.values()].reduce((n, c) => n + c.cases, 0);
    const supported = [...counts.values()].reduce((n, c) => n + c.supported, 0);
    expect(supported / cases).toBeGreaterThan(0.75);
  });
});

const { documents } = await loadDocuments(await expandPaths([EXAMPLES]));
const configMaps = collectConfigMaps(documents);
const mappings = collectMappings(documents).filter((m) => m.spec.direction === 'inbound');

describe('example mappings: fast path vs interpreter', () => {
  it('has example mappings', () => {
    expect(mappings.length).toBeGreaterThanOrEqual(2);
  });

  it.each(mappings.map((m) => [`${m.file.replace(EXAMPLES, '')} ${m.name}`, m] as const))(
    '%s: runs on the fast path and maps every embedded input exactly as the interpreter does',
    async (_label, m) => {
      const { lookups, problems } = resolveDefinition(m, configMaps);
      expect(problems).toEqual([]);
      const def = inboundDefinition(`${m.namespace}/${m.name}`, 0, m.spec, lookups!);
      const fast = compileMapping(def, { path: 'fast' });
      const interpreter = compileMapping(def, { path: 'interpreter' });
      expect(fast.paths.businessKey.path).toBe('fast');
      // The compiled expression on its own, without the engine's fallbacks to the interpreter.
      const compiled = compileFast(def.expression, {
        functions: mappingFunctions(def.lookups),
        maxDepth: def.limits.maxDepth,
      });
      if (!compiled.supported) throw new Error(compiled.reason);
      for (const test of m.spec.tests) {
        const run = async (mapping: typeof fast) => {
          try {
            return { value: await mapping.map(test.input) };
          } catch (err) {
            return { error: `${(err as Error).name}: ${(err as Error).message}` };
          }
        };
        const [f, i] = [await run(fast), await run(interpreter)];
        expect(canonical(f), test.name).toBe(canonical(i));
        // The raw expression value too, before validation could hide a difference.
        let expected: unknown;
        try {
          expected = await interpreter.evaluate(test.input);
        } catch {
          continue; // an input the mapping rejects: the engine hands errors to the interpreter
        }
        expect(canonical(compiled.expression.evaluate(test.input)), test.name).toBe(canonical(expected));
      }
    },
  );
});
