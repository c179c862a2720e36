// The benchmark runner (`npm run bench`): node bench/run.ts [FILTER...] [--json] [--budget-ms N]
//
// FILTER selects the cases whose "<benchmark>/<case>" contains it, e.g. `mapping` or `mapping/shopify`;
// none runs everything. --json prints only a JSON document of the results. --budget-ms is the
// measuring time per variant and case (default 1000). Never part of `npm test`: rates depend on the
// machine, only the ratios measured in one run mean something.
import { parseArgs } from 'node:util';

interface Benchmark {
  name: string;
  run(options: { filters: string[]; budgetMs: number; print: boolean }): Promise<unknown>;
}

const BENCHMARKS: Benchmark[] = [
  {
    name: 'mapping',
    run: async (options) => (await import('./mapping.ts')).runMappingBench(options),
  },
  {
    name: 'reconcile',
    run: async (options) => (await import('./reconcile.ts')).runReconcileBench(options),
  },
  {
    // Case flow/nats-sink; runs processes and a nats-server for about a minute (not --budget-ms).
    name: 'flow',
    run: async (options) => (await import('./flow.ts')).runFlowBenchCase(options),
  },
];

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    json: { type: 'boolean', default: false },
    'budget-ms': { type: 'string', default: '1000' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (values.help) {
  console.log(
    `Usage: node bench/run.ts [FILTER...] [--json] [--budget-ms N]\nBenchmarks: ${BENCHMARKS.map((b) => b.name).join(', ')}`,
  );
  process.exit(0);
}

const budgetMs = Number(values['budget-ms']);
if (!Number.isFinite(budgetMs) || budgetMs <= 0) {
  console.error(`--budget-ms must be a positive number of milliseconds, got ${values['budget-ms']}`);
  process.exit(2);
}

// Every benchmark gets the filters and runs the cases whose "<benchmark>/<case>" contains one of them.
const results: Record<string, unknown> = {};
for (const b of BENCHMARKS) {
  results[b.name] = await b.run({ filters: positionals, budgetMs, print: !values.json });
}
if (values.json) {
  console.log(JSON.stringify({ node: process.version, budgetMs, results }, null, 2));
}
