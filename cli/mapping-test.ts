// `tally mapping test -f <file|dir>... [--input FILE...]`: runs the embedded test cases of the
// CanonicalMappings in the given files offline, and maps sample payloads, with exit codes fit for CI.
// The loading and testing of one mapping is shared with `tally validate`, so both judge it the same way.
import { readFile, stat } from 'node:fs/promises';
import { extname } from 'node:path';
import { parseArgs } from 'node:util';
import * as yaml from 'js-yaml';
import { type CanonicalMappingSpec, canonicalMappingSpecSchema } from '../api/canonical-mapping.ts';
import { type SourceDocument, validateDocuments } from '../api/validate.ts';
import { tableFromConfigMap } from '../operator/reconcile/lookups.ts';
import {
  compileSpec,
  inboundDefinition,
  outboundDefinition,
  type ResolvedLookups,
  runSpecTests,
} from '../runtime/mapping/definition.ts';
import {
  compileMapping,
  formatTestResults,
  MappingError,
  type TestCaseResult,
} from '../runtime/mapping/index.ts';
import { compileOutboundMapping } from '../runtime/mapping/outbound.ts';
import { fixtureSource, withXrefs } from '../runtime/xref/context.ts';
import { InputError, UsageError } from './errors.ts';
import { inputFiles, loadDocuments, textOrJson } from './load-documents.ts';

export const MAPPING_USAGE = `Usage: tally mapping test -f <file|dir> [-f ...] [--input FILE ...] [--mapping NAME] [-o text|json]

Runs the embedded test cases of every CanonicalMapping in the given files (ConfigMaps among the
files serve configMapRef lookup tables) and prints PASS or FAIL per mapping, with a diff for each
failing case.
  --mapping NAME   only this mapping (metadata.name, or namespace/name)
  --input FILE     also map the payload(s) in FILE (JSON or YAML; one payload or an array of
                   payloads) and print the canonical output and its business key; needs exactly
                   one mapping selected
Exit status: 0 all passed, 1 a case, a mapping or an input failed, 2 usage error.`;

const DEFAULT_NAMESPACE = 'default';

/** A CanonicalMapping read from a file, its spec parsed (defaults applied). */
export interface MappingSource {
  file: string;
  /** 1-based position of the document in its file. */
  document: number;
  name: string;
  namespace: string;
  spec: CanonicalMappingSpec;
}

/** Something that stops a mapping from running, on the field it is about. */
export interface MappingProblem {
  path: string;
  message: string;
}

export interface MappingTestOutcome {
  /** The lookup tables resolved; absent when one could not be. */
  lookups?: ResolvedLookups;
  /** Unresolvable lookup tables or a compile error: when not empty, no case ran. */
  problems: MappingProblem[];
  /** One result per embedded test case, in spec order. */
  results: TestCaseResult[];
}

type ConfigMaps = Map<string, Record<string, string>>;

interface Meta {
  apiVersion?: unknown;
  kind?: unknown;
  metadata?: { name?: unknown; namespace?: unknown };
  data?: unknown;
  spec?: unknown;
}

/** The ConfigMaps among the documents, by namespace/name: the offline stand-in for the API server. */
export function collectConfigMaps(docs: SourceDocument[]): ConfigMaps {
  const out: ConfigMaps = new Map();
  for (const { doc } of docs) {
    const d = doc as Meta | null;
    if (d?.apiVersion !== 'v1' || d.kind !== 'ConfigMap' || typeof d.metadata?.name !== 'string') continue;
    const data = d.data && typeof d.data === 'object' ? (d.data as Record<string, unknown>) : {};
    // The API server only accepts strings; be lenient with a YAML number here rather than crash.
    const values = Object.fromEntries(Object.entries(data).map(([k, v]) => [k, String(v)]));
    out.set(`${namespaceOf(d)}/${d.metadata.name}`, values);
  }
  return out;
}

/** The CanonicalMappings among the documents whose spec parses; the others are left to validation. */
export function collectMappings(docs: SourceDocument[]): MappingSource[] {
  const out: MappingSource[] = [];
  for (const { file, index, doc } of docs) {
    const d = doc as Meta | null;
    if (d?.kind !== 'CanonicalMapping' || typeof d.apiVersion !== 'string') continue;
    if (!d.apiVersion.startsWith('tally.dev/') || typeof d.metadata?.name !== 'string') continue;
    const spec = canonicalMappingSpecSchema.safeParse(d.spec);
    if (!spec.success) continue;
    out.push({ file, document: index, name: d.metadata.name, namespace: namespaceOf(d), spec: spec.data });
  }
  return out;
}

function namespaceOf(d: Meta): string {
  return typeof d.metadata?.namespace === 'string' ? d.metadata.namespace : DEFAULT_NAMESPACE;
}

/** What the operator would hand the engine: the spec with its lookup tables resolved. */
export function resolveDefinition(
  m: MappingSource,
  configMaps: ConfigMaps,
): { lookups?: ResolvedLookups; problems: MappingProblem[] } {
  const problems: MappingProblem[] = [];
  const lookups: ResolvedLookups = {};
  m.spec.lookups.forEach((table, i) => {
    let values = table.inline;
    const ref = table.configMapRef;
    if (!values && ref) {
      const data = configMaps.get(`${m.namespace}/${ref.name}`);
      if (!data) {
        problems.push({
          path: `spec.lookups[${i}].configMapRef.name`,
          message: `lookup table "${table.name}" reads ConfigMap "${ref.name}" (namespace ${m.namespace}), which is not among the given files: pass the file that defines it with -f`,
        });
        return;
      }
      try {
        values = tableFromConfigMap(data, ref.key, `${m.namespace}/${ref.name}`, table.name);
      } catch (err) {
        problems.push({ path: `spec.lookups[${i}].configMapRef.key`, message: (err as Error).message });
        return;
      }
    }
    lookups[table.name] = {
      values: values ?? {},
      ...(table.default !== undefined ? { default: table.default } : {}),
    };
  });
  if (problems.length > 0) return { problems };
  return { problems, lookups };
}

/** Resolve, compile and run the embedded cases of one mapping, as the operator does. */
export async function testMapping(m: MappingSource, configMaps: ConfigMaps): Promise<MappingTestOutcome> {
  const { lookups, problems } = resolveDefinition(m, configMaps);
  if (!lookups) return { problems, results: [] };
  const name = `${m.namespace}/${m.name}`;
  try {
    compileSpec(name, m.spec, lookups);
  } catch (err) {
    if (!(err instanceof MappingError)) throw err;
    const part = 'part' in err && typeof err.part === 'string' ? err.part : 'expression';
    const path = `spec.${part}`;
    // The engine's messages name the field themselves; the path already says it.
    const message = err.message.startsWith(`${path} `) ? err.message.slice(path.length + 1) : err.message;
    return { lookups, problems: [{ path, message }], results: [] };
  }
  const results = await runSpecTests(name, m.spec, lookups);
  return { lookups, problems: [], results };
}

/** The first line that says what is wrong with a failed case, for one-line reports. */
export function firstFailureLine(r: TestCaseResult): string {
  if (r.error !== undefined) {
    const [head = '', next] = r.error.split('\n');
    // Multi-line errors introduce their list with a colon: the first item is the useful part.
    return `error: ${head.endsWith(':') && next ? `${head} ${next.trim()}` : head}`;
  }
  return (r.diff ?? '').split('\n')[0]?.trim() ?? '';
}

interface InputPayload {
  /** file, file[i] for an element of an array, file#n for a YAML document. */
  label: string;
  payload: unknown;
}

type InputResult =
  | { input: string; key: string; output: Record<string, unknown> }
  | { input: string; error: string };

interface MappingReport {
  name: string;
  namespace: string;
  file: string;
  document: number;
  passed: boolean;
  problems: MappingProblem[];
  cases: TestCaseResult[];
  inputs: InputResult[];
}

export async function mappingCommand(
  argv: string[],
  out: NodeJS.WritableStream = process.stdout,
): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    out.write(`${MAPPING_USAGE}\n`);
    return sub === undefined ? 2 : 0;
  }
  if (sub !== 'test') throw new UsageError(`unknown subcommand "mapping ${sub}"\n\n${MAPPING_USAGE}`);
  return mappingTestCommand(rest, out);
}

export async function mappingTestCommand(
  argv: string[],
  out: NodeJS.WritableStream = process.stdout,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      filename: { type: 'string', short: 'f', multiple: true },
      input: { type: 'string', short: 'i', multiple: true },
      mapping: { type: 'string', short: 'm' },
      output: { type: 'string', short: 'o', default: 'text' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    out.write(`${MAPPING_USAGE}\n`);
    return 0;
  }
  textOrJson(values.output);
  const paths = [...(values.filename ?? []), ...positionals];
  const files = await inputFiles(paths, MAPPING_USAGE);
  const payloadFiles = values.input ?? [];
  for (const f of payloadFiles) {
    await stat(f).catch((cause: unknown) => {
      throw new UsageError(`cannot read --input ${f}: no such file`, { cause });
    });
  }

  const { documents, parseErrors } = await loadDocuments(files);
  if (parseErrors.length > 0) {
    throw new InputError(parseErrors.map((e) => `${e.file}: ${e.message}`).join('\n'));
  }
  const selected = selectMappings(documents, values.mapping, paths);
  if (payloadFiles.length > 0 && selected.length !== 1) {
    throw new UsageError(
      `--input needs exactly one mapping, but the files hold ${selected.length} (${selected.map((s) => s.name).join(', ')}): choose one with --mapping NAME`,
    );
  }
  const inputs = (await Promise.all(payloadFiles.map(readPayloads))).flat();

  const configMaps = collectConfigMaps(documents);
  const invalid = invalidMappings(documents);
  const reports: MappingReport[] = [];
  for (const s of selected) {
    const report: MappingReport = {
      name: s.name,
      namespace: s.namespace,
      file: s.file,
      document: s.document,
      passed: false,
      problems: invalid.get(`${s.file}#${s.document}`) ?? [],
      cases: [],
      inputs: [],
    };
    reports.push(report);
    if (!s.source && report.problems.length === 0) {
      report.problems.push({ path: '', message: 'is not a valid CanonicalMapping: run tally validate' });
    }
    if (report.problems.length > 0 || !s.source) continue;
    const outcome = await testMapping(s.source, configMaps);
    report.problems = outcome.problems;
    report.cases = outcome.results;
    if (outcome.lookups && outcome.problems.length === 0) {
      report.inputs = await mapInputs(s.source, outcome.lookups, inputs);
    }
    report.passed =
      report.problems.length === 0 && report.cases.every((c) => c.passed) && report.inputs.every(isMapped);
  }

  const passed = reports.every((r) => r.passed);
  out.write(
    values.output === 'json'
      ? `${JSON.stringify({ passed, mappings: reports }, null, 2)}\n`
      : formatReports(reports),
  );
  return passed ? 0 : 1;
}

interface Selected {
  name: string;
  namespace: string;
  file: string;
  document: number;
  /** Absent when the mapping's spec does not parse (its problems are reported instead). */
  source?: MappingSource;
}

function selectMappings(
  documents: SourceDocument[],
  wanted: string | undefined,
  paths: string[],
): Selected[] {
  const parsed = new Map(collectMappings(documents).map((m) => [`${m.file}#${m.document}`, m]));
  const all: Selected[] = [];
  for (const { file, index, doc } of documents) {
    const d = doc as Meta | null;
    if (d?.kind !== 'CanonicalMapping' || !String(d.apiVersion).startsWith('tally.dev/')) continue;
    const name = typeof d.metadata?.name === 'string' ? d.metadata.name : '(no name)';
    const source = parsed.get(`${file}#${index}`);
    all.push({ name, namespace: namespaceOf(d), file, document: index, ...(source ? { source } : {}) });
  }
  if (all.length === 0) throw new InputError(`no CanonicalMapping found in ${paths.join(', ')}`);
  if (wanted === undefined) return all;
  const chosen = all.filter((m) => m.name === wanted || `${m.namespace}/${m.name}` === wanted);
  if (chosen.length === 0) {
    throw new InputError(
      `no CanonicalMapping named "${wanted}" in ${paths.join(', ')}: expected one of ${all.map((m) => `"${m.name}"`).join(', ')}`,
    );
  }
  return chosen;
}

/** Schema problems of the mappings, by file#document, as `tally validate` reports them. */
function invalidMappings(documents: SourceDocument[]): Map<string, MappingProblem[]> {
  const out = new Map<string, MappingProblem[]>();
  for (const p of validateDocuments(documents).problems) {
    if (p.kind !== 'CanonicalMapping') continue;
    const key = `${p.file}#${p.document}`;
    out.set(key, [...(out.get(key) ?? []), { path: p.path, message: p.message }]);
  }
  return out;
}

async function readPayloads(file: string): Promise<InputPayload[]> {
  const text = await readFile(file, 'utf8');
  let docs: unknown[];
  try {
    docs =
      extname(file) === '.json'
        ? [JSON.parse(text)]
        : yaml.loadAll(text, null, { filename: file }).filter((d) => d !== null && d !== undefined);
  } catch (err) {
    throw new InputError(`--input ${file} is not valid JSON or YAML: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (docs.length === 1 && Array.isArray(docs[0])) {
    return docs[0].map((payload, i) => ({ label: `${file}[${i}]`, payload }));
  }
  if (docs.length === 1) return [{ label: file, payload: docs[0] }];
  return docs.map((payload, i) => ({ label: `${file}#${i + 1}`, payload }));
}

/**
 * Map sample payloads: inbound to the canonical output and its key; outbound (a canonical entity in)
 * to the request it renders. No cross-reference store offline: a mapping that reads one says so.
 */
async function mapInputs(
  m: MappingSource,
  lookups: ResolvedLookups,
  inputs: InputPayload[],
): Promise<InputResult[]> {
  const name = `${m.namespace}/${m.name}`;
  const run =
    m.spec.direction === 'outbound'
      ? (() => {
          const mapping = compileOutboundMapping(outboundDefinition(name, 0, m.spec, lookups));
          return async (payload: unknown) => {
            const r = await withXrefs(fixtureSource([]), (b) => mapping.render(payload, b));
            return {
              key: '(outbound request)',
              output: { body: r.value, contentType: r.contentType, headers: r.headers, params: r.params },
            };
          };
        })()
      : (() => {
          const mapping = compileMapping(inboundDefinition(name, 0, m.spec, lookups));
          return (payload: unknown) => withXrefs(fixtureSource([]), (b) => mapping.map(payload, b));
        })();
  const results: InputResult[] = [];
  for (const { label, payload } of inputs) {
    try {
      const { output, key } = await run(payload);
      results.push({ input: label, key, output });
    } catch (err) {
      results.push({ input: label, error: err instanceof Error ? err.message : String(err) });
    }
  }
  return results;
}

function isMapped(r: InputResult): r is Extract<InputResult, { key: string }> {
  return 'key' in r;
}

function formatReports(reports: MappingReport[]): string {
  const lines: string[] = [];
  for (const r of reports) {
    const passedCases = r.cases.filter((c) => c.passed).length;
    const count = r.problems.length > 0 ? '' : ` (${passedCases}/${r.cases.length})`;
    const casesOk = r.problems.length === 0 && passedCases === r.cases.length;
    lines.push(`${casesOk ? 'PASS' : 'FAIL'} ${r.name}${count}${casesOk ? '' : `  ${r.file}#${r.document}`}`);
    for (const p of r.problems) lines.push(indent(p.path ? `${p.path}: ${p.message}` : p.message));
    if (!casesOk && r.cases.length > 0) {
      // formatTestResults' first line repeats the count; the case blocks after it are the diff.
      lines.push(...formatTestResults(r.name, r.cases).split('\n').slice(1).map(indent));
    }
    for (const i of r.inputs) {
      if (isMapped(i)) {
        lines.push(`input ${i.input}: key ${i.key}`, JSON.stringify(i.output, null, 2));
      } else {
        lines.push(`input ${i.input}: FAIL`, indent(i.error));
      }
    }
  }
  const failed = reports.filter((r) => !r.passed).length;
  const cases = reports.flatMap((r) => r.cases);
  const inputs = reports.flatMap((r) => r.inputs);
  lines.push(
    `${reports.length} mapping(s): ${reports.length - failed} passed, ${failed} failed; ${cases.filter((c) => c.passed).length}/${cases.length} case(s) passed${inputs.length ? `; ${inputs.filter(isMapped).length}/${inputs.length} input(s) mapped` : ''}`,
  );
  return `${lines.join('\n')}\n`;
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}
