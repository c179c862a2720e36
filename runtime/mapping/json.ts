// Expression results as JSON: what a canonical event can carry once serialised.

/** JSONata functions are JS functions or objects marked as lambdas / native function definitions. */
export function isJsonataFunction(value: unknown): boolean {
  if (typeof value === 'function') return true;
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return v._jsonata_lambda === true || v._jsonata_function === true;
}

/**
 * A plain JSON copy of a JSONata result, with JSON.stringify's semantics: undefined fields and functions
 * are dropped, sequence markers disappear, and nothing in the result aliases the input payload.
 */
export function toJsonValue(value: unknown): unknown {
  if (value === undefined || isJsonataFunction(value)) return undefined;
  // Lambdas hold their (circular) environment; drop them before JSON.stringify walks into it.
  return JSON.parse(JSON.stringify(value, (_key, v: unknown) => (isJsonataFunction(v) ? undefined : v)));
}
