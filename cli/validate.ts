// `tally validate -f <file|dir>...`: offline checks for CI, one line per problem.
import { parseArgs } from 'node:util';
import { type SourceDocument, type ValidationReport, validateDocuments } from '../api/validate.ts';
import { partitionKeyProblem } from '../runtime/flow/partition.ts';
import { inputFiles, loadDocuments, textOrJson } from './load-documents.ts';
import { collectConfigMaps, collectMappings, firstFailureLine, testMapping } from './mapping-test.ts';

export const VALIDATE_USAGE = `Usage: tally validate -f <file|dir> [-f ...] [-o text|json]

Checks IntegrationFlow, CanonicalMapping and ReconciliationPolicy resources offline:
each against its schema, the references between the given resources, and the embedded
test cases of every CanonicalMapping (ConfigMaps among the files serve configMapRef lookups;
tally mapping test shows the full diff of a failing case).
Exit status: 0 all valid, 1 a resource is invalid, 2 usage error.`;

export async function validateCommand(
  argv: string[],
  out: NodeJS.WritableStream = process.stdout,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      filename: { type: 'string', short: 'f', multiple: true },
      output: { type: 'string', short: 'o', default: 'text' },
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
  const files = await inputFiles([...(values.filename ?? []), ...positionals], VALIDATE_USAGE);
  const { documents, parseErrors } = await loadDocuments(files);
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
  report.valid = report.problems.length === 0;
  out.write(values.output === 'json' ? `${JSON.stringify(report, null, 2)}\n` : formatText(report));
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

export function formatText(report: ValidationReport): string {
  const lines = report.problems.map((p) => {
    const doc = p.document > 0 ? `#${p.document}` : '';
    const resource = p.kind === '(file)' ? '' : ` ${p.kind}/${p.name}`;
    const path = p.path ? ` ${p.path}:` : '';
    return `${p.file}${doc}:${resource}${path} ${p.message}`;
  });
  const ok = report.resources.filter((r) => r.valid).length;
  const summary = `${report.resources.length} resource(s) checked, ${ok} valid, ${report.resources.length - ok} invalid, ${report.problems.length} problem(s)${report.skipped.length ? `, ${report.skipped.length} non-Tally document(s) skipped` : ''}`;
  return `${[...lines, summary].join('\n')}\n`;
}
