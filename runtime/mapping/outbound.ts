// Outbound mappings: a canonical entity becomes the request a target system expects: the body
// (spec.expression, encoded per spec.output), headers and URL template values, each a JSONata
// expression over the entity. Compiled once like inbound mappings (fast path with interpreter
// fallback, the same limits); no I/O: cross-references come in through the evaluation's bindings.
import type { z } from 'zod';
import type { workerOutboundMappingSchema } from '../../api/worker-config.ts';
import { copyJsonValue } from './compiler/json-copy.ts';
import { DEFAULT_CONTENT_TYPES, encodeBody, scalarText } from './encode.ts';
import { type CompiledPart, checkLimits, compilePart, type EvaluationPath, evaluatePart } from './engine.ts';

export type OutboundMappingDefinition = z.output<typeof workerOutboundMappingSchema>;

export interface OutboundRequest {
  /** The expression's value before encoding (what test cases compare). */
  value: unknown;
  body: Buffer;
  contentType: string;
  /** Headers the mapping gives (absent values left out). */
  headers: Record<string, string>;
  /** Values for the sink's URL template placeholders (absent values left out). */
  params: Record<string, string>;
}

export interface CompiledOutboundMapping {
  readonly definition: OutboundMappingDefinition;
  /** Render the request for one canonical entity; rejects with a MappingError. */
  render(input: unknown, bindings?: Record<string, unknown>): Promise<OutboundRequest>;
}

export function compileOutboundMapping(
  def: OutboundMappingDefinition,
  options: { path?: EvaluationPath } = {},
): CompiledOutboundMapping {
  const definition = structuredClone(def);
  checkLimits(definition.limits);
  const mode = options.path ?? 'auto';
  const body = compilePart('expression', definition.expression, definition, mode);
  const part = (prefix: 'headers' | 'params', name: string, source: string): [string, CompiledPart] => [
    name,
    compilePart(`${prefix}.${name}`, source, definition, mode),
  ];
  const headers = Object.entries(definition.headers).map(([n, s]) => part('headers', n, s));
  const params = Object.entries(definition.params).map(([n, s]) => part('params', n, s));
  const contentType = definition.output.contentType ?? DEFAULT_CONTENT_TYPES[definition.output.format];

  const values = async (
    parts: [string, CompiledPart][],
    input: unknown,
    bindings?: Record<string, unknown>,
  ) => {
    const out: Record<string, string> = {};
    for (const [name, compiled] of parts) {
      const v = scalarText(
        `spec.${compiled.part}`,
        await evaluatePart(compiled, input, definition.limits, bindings),
      );
      if (v !== undefined) out[name] = v;
    }
    return out;
  };

  return {
    definition,
    async render(input, bindings) {
      const value = copyJsonValue(await evaluatePart(body, input, definition.limits, bindings));
      return {
        value,
        body: encodeBody(definition.output.format, value),
        contentType,
        headers: await values(headers, input, bindings),
        params: await values(params, input, bindings),
      };
    },
  };
}
