// URL templates of HTTP sinks: {name} placeholders in the path and query, filled per event and
// URL-encoded. Pure. The scheme and host are never templated (the schema refuses braces there), and
// a value cannot leave its segment: "/", "?" and "#" are encoded, and a value of "." or ".." (which
// URL parsing resolves as a dot segment even when percent-encoded) is refused, so an event can
// never choose where a request goes.

import { TallyError } from '../../../api/errors.ts';
import { URL_PLACEHOLDER } from '../../../api/integration-flow.ts';

/** The value URL-encoded; undefined for one that would be read as a dot segment. */
export function encodeSegmentValue(value: string): string | undefined {
  if (value === '.' || value === '..') return undefined;
  return encodeURIComponent(value);
}

export class UrlTemplateError extends TallyError {
  override name = 'UrlTemplateError';
  readonly code = 'URL_TEMPLATE_VALUE';
  readonly missing: string;
  constructor(message: string, missing: string) {
    super(message);
    this.missing = missing;
  }
}

/** A dotted path into an object, giving a scalar as text (else undefined). */
function pathValue(data: unknown, path: string): string | undefined {
  let v: unknown = data;
  for (const p of path.split('.')) {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
    v = (v as Record<string, unknown>)[p];
  }
  if (typeof v === 'string' && v !== '') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (typeof v === 'boolean') return String(v);
  return undefined;
}

/**
 * Fill a template: each {name} from `values` first (the target id, the outbound mapping's params),
 * else from the field of that (dotted) name of the canonical event. A name with neither is an error
 * saying where the value could have come from.
 */
export function fillUrl(
  template: string,
  values: Readonly<Record<string, string>>,
  data: unknown,
  what: string,
): string {
  return template.replace(URL_PLACEHOLDER, (_m, name: string) => {
    const value = Object.hasOwn(values, name) ? values[name] : pathValue(data, name);
    if (value === undefined || value === '') {
      throw new UrlTemplateError(
        `${what}: the URL template names {${name}}, which this event does not give: neither the outbound mapping's params nor a field ${name} of the canonical event has a value`,
        name,
      );
    }
    const encoded = encodeSegmentValue(value);
    if (encoded === undefined) {
      throw new UrlTemplateError(
        `${what}: {${name}} is ${JSON.stringify(value)}, which would change the URL's path instead of naming an object; the event is refused`,
        name,
      );
    }
    return encoded;
  });
}
