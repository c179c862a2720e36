// `tally validate -f <file|dir>...`: offline checks for CI, one line per problem.
import { parseArgs } from 'node:util';
import {
  type Problem,
  type SourceDocument,
  type ValidationReport,
  validateDocuments,
} from '../api/validate.ts';
import { partitionKeyProblem } from '../runtime/flow/partition.ts';
import { inputFiles, loadDocuments, nothingFound, textOrJson } from './load-documents.ts';
import { collectConfigMaps, collectMappings, firstFailureLine, testMapping } from './mapping-test.ts';

export const VALIDATE_USAGE = `Usage: tally validate -f <file|dir> [-f ...] [-o text|json] [--strict]

Checks IntegrationFlow, CanonicalMapping and ReconciliationPolicy resources offline:
each against its schema, the references between the given resources, and the embedded
test cases of every CanonicalMapping (ConfigMaps among the files serve configMapRef lookups;
tally mapping test shows the full diff of a failing case). Input without any resource
(empty files, only comments, folders without YAML/JSON files) is an error.

Warnings (e.g. a CanonicalMapping without test cases) are printed but do not fail;
  --strict   fail on warnings too (for CI)
Exit status: 0 all valid, 1 a resource is invalid (or, with --strict, a warning),
2 usage error.`;

export async function validateCommand(
  argv: string[],
  out: NodeJS.WritableStream = process.stdout,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      filename: { type: 'string', short: 'f', multiple: true },
      output: { type: 'string', short: 'o', default: 'text' },
      strict: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    out.write(`${VALIDATE_USAGE}\n`);
    return 0;
  }
  textOrJson(values.output);
  const paths = [...(values.filename ?? []), ...positionals];
  const files = await inputFiles(paths, VALIDATE_USAGE, { allowNoFiles: true });
  const loaded = await loadDocuments(files);
  const { documents, parseErrors } = loaded;
  const report = validateDocuments(documents);
  await checkMappingTests(documents, report);
  checkPartitionKeys(documents, report);
  for (const e of parseErrors) {
    report.problems.unshift({
      file: e.file,
      document: 0,
      kind: '(file)',
      name: '',
      path: '',
      message: e.message,
    });
  }
  const nothing = nothingFound(paths, files, loaded);
  if (nothing) {
    report.problems.push({
      file: paths.join(', '),
      document: 0,
      kind: '(file)',
      name: '',
      path: '',
      message: nothing,
    });
  }
  if (values.strict) {
    const warned = new Set(report.warnings.map((w) => `${w.file}#${w.document}`));
    for (const r of report.resources) if (warned.has(`${r.file}#${r.document}`)) r.valid = false;
  }
  report.valid = report.problems.length === 0 && (!values.strict || report.warnings.length === 0);
  out.write(
    values.output === 'json'
      ? `${JSON.stringify(report, null, 2)}\n`
      : formatText(report, { strict: values.strict }),
  );
  return report.valid ? 0 : 1;
}

/**
 * Run the embedded test cases of each CanonicalMapping whose schema checks passed, and report a compile
 * error, an unresolvable lookup table or a failing case as one problem line each.
 */
async function checkMappingTests(documents: SourceDocument[], report: ValidationReport): Promise<void> {
  const invalid = new Set(report.problems.map((p) => `${p.file}#${p.document}`));
  const configMaps = collectConfigMaps(documents);
  for (const m of collectMappings(documents)) {
    if (invalid.has(`${m.file}#${m.document}`)) continue;
    const outcome = await testMapping(m, configMaps);
    const problem = (path: string, message: string) =>
      report.problems.push({
        file: m.file,
        document: m.document,
        kind: 'CanonicalMapping',
        name: m.name,
        ...(m.namespace !== 'default' ? { namespace: m.namespace } : {}),
        path,
        message,
      });
    for (const p of outcome.problems) problem(p.path, p.message.split('\n')[0] ?? '');
    outcome.results.forEach((r, i) => {
      if (r.passed) return;
      problem(
        `spec.tests[${i}]`,
        `case "${r.name}" failed: ${firstFailureLine(r)} (run tally mapping test for the full diff)`,
      );
    });
  }
  const failed = new Set(report.problems.map((p) => `${p.file}#${p.document}`));
  for (const r of report.resources) r.valid = !failed.has(`${r.file}#${r.document}`);
}

/** A flow's partitionKey must compile, or its workers would refuse to start. */
function checkPartitionKeys(documents: SourceDocument[], report: ValidationReport): void {
  for (const d of documents) {
    const doc = d.doc as {
      kind?: string;
      metadata?: { name?: string; namespace?: string };
      spec?: { delivery?: { partitionKey?: unknown } };
    };
    const key = doc?.kind === 'IntegrationFlow' ? doc.spec?.delivery?.partitionKey : undefined;
    if (typeof key !== 'string') continue;
    const problem = partitionKeyProblem(key);
    if (!problem) continue;
    report.problems.push({
      file: d.file,
      document: d.index,
      kind: 'IntegrationFlow',
      name: doc.metadata?.name ?? '',
      ...(doc.metadata?.namespace ? { namespace: doc.metadata.namespace } : {}),
      path: 'spec.delivery.partitionKey',
      message: problem,
    });
    const r = report.resources.find((x) => x.file === d.file && x.document === d.index);
    if (r) r.valid = false;
  }
}

export function formatText(report: ValidationReport, options: { strict?: boolean } = {}): string {
  const line = (p: Problem, label: string) => {
    const doc = p.document > 0 ? `#${p.document}` : '';
    const resource = p.kind === '(file)' ? '' : ` ${p.kind}/${p.name}`;
    const path = p.path ? ` ${p.path}:` : '';
    return `${p.file}${doc}:${resource}${path} ${label}${p.message}`;
  };
  const lines = [
    ...report.problems.map((p) => line(p, '')),
    ...report.warnings.map((w) => line(w, 'warning: ')),
  ];
  const ok = report.resources.filter((r) => r.valid).length;
  const warnings = report.warnings.length
    ? `, ${report.warnings.length} warning(s)${options.strict ? ' (failing: --strict)' : ''}`
    : '';
  const summary = `${report.resources.length} resource(s) checked, ${ok} valid, ${report.resources.length - ok} invalid, ${report.problems.length} problem(s)${warnings}${report.skipped.length ? `, ${report.skipped.length} non-Tally document(s) skipped` : ''}`;
  return `${[...lines, summary].join('\n')}\n`;
}
