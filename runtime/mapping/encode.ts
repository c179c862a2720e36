// Request bodies of outbound mappings: the expression's value encoded as the target expects. Pure.
import type { OUTPUT_FORMATS } from '../../api/canonical-mapping.ts';
import { MappingEvaluationError } from './errors.ts';

export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export const DEFAULT_CONTENT_TYPES: Record<OutputFormat, string> = {
  json: 'application/json; charset=utf-8',
  form: 'application/x-www-form-urlencoded; charset=utf-8',
  xml: 'application/xml; charset=utf-8',
  text: 'text/plain; charset=utf-8',
};

const describe = (v: unknown) =>
  v === undefined ? 'nothing' : v === null ? 'null' : Array.isArray(v) ? 'an array' : `a ${typeof v}`;

type Scalar = string | number | boolean;
const isScalar = (v: unknown): v is Scalar =>
  typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));

/** The body bytes for `value` in `format`; a value the format cannot carry is a mapping error. */
export function encodeBody(format: OutputFormat, value: unknown): Buffer {
  if (value === undefined) {
    throw new MappingEvaluationError(
      'spec.expression gave nothing for this event, so there is no request body; make it give the body',
    );
  }
  switch (format) {
    case 'json':
      return Buffer.from(JSON.stringify(value), 'utf8');
    case 'form':
      return Buffer.from(encodeForm(value), 'utf8');
    case 'xml':
    case 'text':
      if (typeof value !== 'string') {
        throw new MappingEvaluationError(
          `spec.output.format is ${format}, so spec.expression must give the document as a string, but it gave ${describe(value)}; build it with & (and $xmlEscape for values)`,
        );
      }
      return Buffer.from(value, 'utf8');
  }
}

/** application/x-www-form-urlencoded of an object of scalars (arrays of scalars repeat their key). */
export function encodeForm(value: unknown): string {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new MappingEvaluationError(
      `spec.output.format is form, so spec.expression must give an object of field values, but it gave ${describe(value)}`,
    );
  }
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(value)) {
    const values = Array.isArray(v) ? v : [v];
    for (const item of values) {
      if (item === undefined || item === null) continue;
      if (!isScalar(item)) {
        throw new MappingEvaluationError(
          `spec.output.format is form: field ${JSON.stringify(k)} is ${describe(item)}; form fields take strings, numbers and booleans (or arrays of them)`,
        );
      }
      params.append(k, String(item));
    }
  }
  return params.toString();
}

/** A header or URL value from an expression: scalars as text, nothing as absent. */
export function scalarText(field: string, value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (isScalar(value)) return String(value);
  throw new MappingEvaluationError(
    `${field} must give a string, number or boolean, but it gave ${describe(value)}`,
  );
}

/** `$xmlEscape(text)`: text safe inside XML element content and attribute values. */
export function xmlEscape(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  const text = isScalar(value) ? String(value) : undefined;
  if (text === undefined)
    throw new MappingEvaluationError(`$xmlEscape: expected text, got ${describe(value)}`);
  return text.replace(/[&<>"']/g, (c) => XML_ENTITIES[c]!);
}

const XML_ENTITIES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
};
