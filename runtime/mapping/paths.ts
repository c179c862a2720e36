// Paths into JSON values, written the way people read them in error messages and test diffs.

/**
 * A path as people read it: `lines[0].unitPrice.amount`; `(root)` for the value itself; keys that are
 * not identifiers are quoted: `attributes["gift-wrap"]`.
 */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (typeof segment === 'string' && /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(segment)) {
      out += out === '' ? segment : `.${segment}`;
    } else out += `[${JSON.stringify(String(segment))}]`;
  }
  return out === '' ? '(root)' : out;
}
