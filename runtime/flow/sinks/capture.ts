// Response capture of HTTP sinks: the id a target assigned, read from its answer with a JSONata
// expression over {status, headers, body, event}, and the other ids of the same object read from
// the canonical event (xref.links). Compiled once per sink; no I/O.
import { compilePart, evaluatePart } from '../../mapping/engine.ts';
import { MappingCompileError } from '../../mapping/errors.ts';

/** Captures are small expressions over small answers. */
const LIMITS = { timeoutMs: 100, maxDepth: 200 };

export interface TargetAnswer {
  status: number;
  /** Lower-case names. */
  headers: Record<string, string>;
  /** Parsed JSON when the answer is JSON, else the text (possibly empty). */
  body: unknown;
  /** The canonical event's data. */
  event: unknown;
}

export interface Capture {
  /** The id the target assigned, or undefined when the answer does not have it. */
  id(answer: TargetAnswer): Promise<string | undefined>;
  /** Other systems' ids of the object, from the canonical event. */
  links(event: unknown): Promise<Record<string, string>>;
}

function compile(what: string, source: string) {
  try {
    return compilePart('expression', source, { lookups: {}, limits: LIMITS }, 'auto');
  } catch (err) {
    throw new MappingCompileError(`${what} does not compile: ${(err as Error).message}`, {
      part: 'expression',
      cause: err,
    });
  }
}

function idText(value: unknown): string | undefined {
  if (typeof value === 'string' && value.trim() !== '') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}

export function compileCapture(
  sink: string,
  config: { capture?: string | undefined; links: Record<string, string> },
): Capture {
  const capture = config.capture ? compile(`sink ${sink}: xref.capture`, config.capture) : undefined;
  const links = Object.entries(config.links).map(
    ([system, source]) => [system, compile(`sink ${sink}: xref.links.${system}`, source)] as const,
  );
  return {
    async id(answer) {
      if (!capture) return undefined;
      try {
        return idText(await evaluatePart(capture, answer, LIMITS));
      } catch {
        // An answer the expression cannot read has no id: the caller says so precisely.
        return undefined;
      }
    },
    async links(event) {
      const out: Record<string, string> = {};
      for (const [system, part] of links) {
        const id = idText(await evaluatePart(part, event, LIMITS).catch(() => undefined));
        if (id !== undefined) out[system] = id;
      }
      return out;
    },
  };
}

/** Parse a target's answer body: JSON when it says so (or looks like it), else the text. */
export function answerBody(text: string, contentType: string | undefined): unknown {
  if (text === '') return '';
  if (/json/i.test(contentType ?? '') || /^\s*[[{]/.test(text)) {
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  return text;
}
