// Mapping throughput: evaluations per second of every example mapping (examples/**, input: its first
// embedded test case) on jsonata's interpreter, on the compiled fast path, and, where one exists in
// bench/handwritten/, the same mapping written by hand. All in one run, interleaved in rounds so that
// load from other processes hits every variant alike; the ratios are the result, not the absolute rates.
//
// "evaluate" is the expression alone, as the engine runs it (compileMapping(...).evaluate); "map" is the
// whole engine call: evaluation, the JSON copy, validation against the canonical schema, business key.

import { expandPaths, loadDocuments } from '../cli/load-documents.ts';
import { collectConfigMaps, collectMappings, resolveDefinition } from '../cli/mapping-test.ts';
import { inboundDefinition } from '../runtime/mapping/definition.ts';
import { compileMapping, type EngineMapping } from '../runtime/mapping/engine.ts';
import { createLookup, money, moneyAdd, moneyMul, moneySub, moneySum } from '../runtime/mapping/functions.ts';
import { toJsonValue } from '../runtime/mapping/json.ts';
import { handwritten } from './handwritten/index.ts';

export interface MappingBenchOptions {
  /** Run only the cases whose `mapping/<name>` contains one of these (none: all). */
  filters: string[];
  /** Measuring time per variant and case, split over the rounds. */
  budgetMs: number;
  /** Progress and tables on stdout; off for --json. */
  print: boolean;
}

export interface MappingBenchResult {
  mapping: string;
  file: string;
  path: 'fast' | 'interpreter';
  fallbackReason?: string;
  /** Evaluations per second of the expression. */
  interpreter: number;
  fast?: number;
  handwritten?: number;
  /** Whole map() calls per second. */
  mapInterpreter: number;
  mapFast?: number;
  ratios: { fastOverInterpreter?: number; handwrittenOverFast?: number; mapFastOverInterpreter?: number };
}

const ROUNDS = 7;
const WARMUP_MS = 150;

type Variant = () => unknown;

/** Runs of `fn` per second over about `ms`, in batches big enough to make the clock reads negligible. */
async function rate(fn: Variant, ms: number): Promise<number> {
  let batch = 1;
  let runs = 0;
  const started = performance.now();
  let elapsed = 0;
  while (elapsed < ms) {
    for (let i = 0; i < batch; i++) {
      const r = fn();
      if (r instanceof Promise) await r;
    }
    runs += batch;
    elapsed = performance.now() - started;
    if (elapsed < ms / 20) batch *= 2;
  }
  return (runs / elapsed) * 1000;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

/** Each variant: a warm-up, then ROUNDS interleaved rounds; the median round rate. */
async function measure(variants: Record<string, Variant>, budgetMs: number): Promise<Record<string, number>> {
  for (const fn of Object.values(variants)) await rate(fn, WARMUP_MS);
  const rounds: Record<string, number[]> = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, fn] of Object.entries(variants)) rounds[name]!.push(await rate(fn, budgetMs / ROUNDS));
  }
  return Object.fromEntries(Object.entries(rounds).map(([k, v]) => [k, median(v)]));
}

function json(value: unknown): string {
  return JSON.stringify(toJsonValue(value));
}

export async function runMappingBench(options: MappingBenchOptions): Promise<MappingBenchResult[]> {
  const examples = new URL('../examples/', import.meta.url).pathname;
  const { documents } = await loadDocuments(await expandPaths([examples]));
  const configMaps = collectConfigMaps(documents);
  const selected = collectMappings(documents).filter(
    (m) =>
      m.spec.direction === 'inbound' &&
      (options.filters.length === 0 || options.filters.some((f) => `mapping/${m.name}`.includes(f))),
  );
  const results: MappingBenchResult[] = [];
  for (const m of selected) {
    const { lookups, problems } = resolveDefinition(m, configMaps);
    const definition = lookups && inboundDefinition(`${m.namespace}/${m.name}`, 0, m.spec, lookups);
    const input = m.spec.tests[0]?.input;
    if (!definition || input === undefined) {
      throw new Error(
        `${m.name}: cannot benchmark (${problems.map((p) => p.message).join('; ') || 'no test case'})`,
      );
    }
    const interpreter = compileMapping(definition, { path: 'interpreter' });
    const auto: EngineMapping = compileMapping(definition);
    const expected = json(await interpreter.evaluate(input));
    const variants: Record<string, Variant> = {
      interpreter: () => interpreter.evaluate(input),
      mapInterpreter: () => interpreter.map(input),
    };
    if (auto.path === 'fast') {
      if (json(await auto.evaluate(input)) !== expected) {
        throw new Error(`${m.name}: the fast path's output differs from the interpreter's`);
      }
      variants.fast = () => auto.evaluate(input);
      variants.mapFast = () => auto.map(input);
    }
    const hand = handwritten.get(m.name);
    if (hand) {
      const functions = {
        lookup: createLookup(definition.lookups),
        money,
        moneyAdd,
        moneySub,
        moneyMul,
        moneySum,
      };
      const actual = json(hand(input, functions));
      if (actual !== expected) {
        throw new Error(
          `${m.name}: bench/handwritten gives a different output than the mapping; update it to the mapping:\n  mapping:     ${expected}\n  handwritten: ${actual}`,
        );
      }
      variants.handwritten = () => hand(input, functions);
    }
    if (options.print) process.stdout.write(`mapping/${m.name} ...`);
    const rates = await measure(variants, options.budgetMs);
    if (options.print) process.stdout.write(' done\n');
    const result: MappingBenchResult = {
      mapping: m.name,
      file: m.file.replace(examples, 'examples/'),
      path: auto.path,
      ...(auto.paths.expression.fallbackReason
        ? { fallbackReason: auto.paths.expression.fallbackReason }
        : {}),
      interpreter: rates.interpreter!,
      mapInterpreter: rates.mapInterpreter!,
      ratios: {},
    };
    if (rates.fast !== undefined) {
      result.fast = rates.fast;
      result.ratios.fastOverInterpreter = rates.fast / result.interpreter;
    }
    if (rates.handwritten !== undefined) {
      result.handwritten = rates.handwritten;
      if (rates.fast !== undefined) result.ratios.handwrittenOverFast = rates.handwritten / rates.fast;
    }
    if (rates.mapFast !== undefined) {
      result.mapFast = rates.mapFast;
      result.ratios.mapFastOverInterpreter = rates.mapFast / result.mapInterpreter;
    }
    results.push(result);
  }
  if (options.print) console.log(`\n${formatTable(results)}`);
  return results;
}

function formatTable(results: MappingBenchResult[]): string {
  const n = (v: number | undefined) => (v === undefined ? '-' : Math.round(v).toLocaleString('en-US'));
  const x = (v: number | undefined) => (v === undefined ? '-' : `${v.toFixed(1)}x`);
  const header = [
    'mapping',
    'interpreter/s',
    'fast/s',
    'handwritten/s',
    'fast/interp',
    'hand/fast',
    'map() interp/s',
    'map() fast/s',
    'map() fast/interp',
  ];
  const rows = results.map((r) => [
    r.mapping,
    n(r.interpreter),
    n(r.fast),
    n(r.handwritten),
    x(r.ratios.fastOverInterpreter),
    x(r.ratios.handwrittenOverFast),
    n(r.mapInterpreter),
    n(r.mapFast),
    x(r.ratios.mapFastOverInterpreter),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) =>
    r.map((v, i) => (i === 0 ? v.padEnd(widths[i]!) : v.padStart(widths[i]!))).join('  ');
  const lines = [line(header), ...rows.map(line)];
  const fallbacks = results.filter((r) => r.path === 'interpreter');
  for (const r of fallbacks) lines.push(`${r.mapping}: interpreter only (${r.fallbackReason})`);
  lines.push(
    `rates: median of ${ROUNDS} rounds in which all variants of a mapping take turns (warm-up first).`,
    'map(): evaluation + JSON copy + canonical schema validation + business key.',
  );
  return lines.join('\n');
}
