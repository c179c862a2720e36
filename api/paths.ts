// Paths into JSON values and resources, written the way people read them in error messages, test
// diffs and conditions: `spec.sinks[0].http.url`, `lines[0].unitPrice.amount`; keys that are not
// identifiers are quoted: `attributes["gift-wrap"]`. Pure.

/** The path as text; `root` is what the empty path reads as ("(root)" for a value, "" for a resource). */
export function formatPath(path: readonly PropertyKey[], root = '(root)'): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (typeof segment === 'string' && /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(segment)) {
      out += out === '' ? segment : `.${segment}`;
    } else out += `[${JSON.stringify(String(segment))}]`;
  }
  return out === '' ? root : out;
}
