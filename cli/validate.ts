// `tally validate -f <file|dir>...`: offline checks for CI, one line per problem.
import { parseArgs } from 'node:util';
import { type ValidationReport, validateDocuments } from '../api/validate.ts';
import { UsageError } from './errors.ts';
import { expandPaths, loadDocuments } from './load-documents.ts';

export const VALIDATE_USAGE = `Usage: tally validate -f <file|dir> [-f ...] [-o text|json]

Checks IntegrationFlow, CanonicalMapping and ReconciliationPolicy resources offline:
each against its schema, and the references between the given resources.
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
  const paths = [...(values.filename ?? []), ...positionals];
  if (paths.length === 0) throw new UsageError(`no input: pass -f <file|dir>\n\n${VALIDATE_USAGE}`);
  if (values.output !== 'text' && values.output !== 'json') {
    throw new UsageError(`-o ${values.output} is not supported: expected text or json`);
  }
  const files = await expandPaths(paths);
  if (files.length === 0) throw new UsageError(`no .yaml, .yml or .json files found in ${paths.join(', ')}`);
  const { documents, parseErrors } = await loadDocuments(files);
  const report = validateDocuments(documents);
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
