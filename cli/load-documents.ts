// Reads YAML/JSON files and folders into documents, keeping file and position for messages.
import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import * as yaml from 'js-yaml';
import type { SourceDocument } from '../api/validate.ts';
import { UsageError } from './errors.ts';

const EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

/** Expand files and folders (recursively) into a sorted list of YAML/JSON files. */
export async function expandPaths(paths: string[]): Promise<string[]> {
  const files: string[] = [];
  for (const p of paths) {
    const info = await stat(p).catch((cause: unknown) => {
      throw new UsageError(`cannot read ${p}: no such file or directory`, { cause });
    });
    if (info.isDirectory()) {
      const entries = await readdir(p, { recursive: true });
      for (const e of entries.sort()) {
        if (EXTENSIONS.has(extname(e))) files.push(join(p, e));
      }
    } else {
      files.push(p);
    }
  }
  return files;
}

export interface LoadResult {
  documents: SourceDocument[];
  /** Files that are not valid YAML: file and the parser's message with line and column. */
  parseErrors: { file: string; message: string }[];
}

export async function loadDocuments(files: string[]): Promise<LoadResult> {
  const out: LoadResult = { documents: [], parseErrors: [] };
  for (const file of files) {
    const text = await readFile(file, 'utf8');
    try {
      const docs = yaml.loadAll(text, null, { filename: file });
      docs.forEach((doc, i) => {
        out.documents.push({ file, index: i + 1, doc });
      });
    } catch (err) {
      const e = err as { reason?: string; mark?: { line: number; column: number } };
      const where = e.mark ? ` (line ${e.mark.line + 1}, column ${e.mark.column + 1})` : '';
      out.parseErrors.push({ file, message: `is not valid YAML${where}: ${e.reason ?? String(err)}` });
    }
  }
  return out;
}

/**
 * The -f/positional inputs of a command, expanded; usage errors when there are none. With
 * `allowNoFiles`, folders without YAML/JSON files give an empty list (the command reports that itself).
 */
export async function inputFiles(
  paths: string[],
  usage: string,
  options: { allowNoFiles?: boolean } = {},
): Promise<string[]> {
  if (paths.length === 0) throw new UsageError(`no input: pass -f <file|dir>\n\n${usage}`);
  const files = await expandPaths(paths);
  if (files.length === 0 && !options.allowNoFiles) {
    throw new UsageError(`no .yaml, .yml or .json files found in ${paths.join(', ')}`);
  }
  return files;
}

/**
 * When the inputs hold no document at all (no files, empty files, only comments): what was found there,
 * for a message about `paths`; undefined otherwise. Files that fail to parse are not "nothing".
 */
export function nothingFound(paths: string[], files: string[], loaded: LoadResult): string | undefined {
  if (loaded.parseErrors.length > 0) return undefined;
  if (loaded.documents.some((d) => d.doc !== null && d.doc !== undefined)) return undefined;
  if (files.length === 0) return 'no resources found: no .yaml, .yml or .json files there';
  if (files.length === paths.length && files.every((f, i) => f === paths[i])) {
    return `no resources found: ${files.length === 1 ? 'the file is empty or holds' : 'the files are empty or hold'} only comments`;
  }
  const shown = files.length > 5 ? [...files.slice(0, 5), `... (${files.length - 5} more)`] : files;
  return `no resources found: ${files.length} file(s) read, each empty or only comments (${shown.join(', ')})`;
}

/** -o for commands that print text or JSON. */
export function textOrJson(output: string | undefined): 'text' | 'json' {
  if (output !== 'text' && output !== 'json') {
    throw new UsageError(`-o ${output} is not supported: expected text or json`);
  }
  return output;
}
