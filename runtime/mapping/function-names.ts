// Which functions a JSONata expression calls that nothing defines. JSONata itself only notices when the
// call is evaluated (T1006, "Attempted to invoke a non-function"), i.e. with the first payload that
// reaches it; the engine refuses such a mapping when it compiles instead. Pure: this reads the AST that
// `jsonata(source).ast()` gives and knows JSONata's built-in names.

/**
 * JSONata's built-in functions (JSONata 2.x: the functions of jsonata's static frame, plus $now and
 * $millis, which every expression binds for itself). function-names.test.ts checks that jsonata
 * defines each one, and that it defines no other, so the list cannot go stale when jsonata changes.
 */
export const JSONATA_FUNCTIONS: readonly string[] = [
  // aggregation
  'sum',
  'count',
  'max',
  'min',
  'average',
  // string
  'string',
  'substring',
  'substringBefore',
  'substringAfter',
  'lowercase',
  'uppercase',
  'length',
  'trim',
  'pad',
  'match',
  'contains',
  'replace',
  'split',
  'join',
  'base64encode',
  'base64decode',
  'encodeUrlComponent',
  'encodeUrl',
  'decodeUrlComponent',
  'decodeUrl',
  'eval',
  // numeric
  'formatNumber',
  'formatBase',
  'formatInteger',
  'parseInteger',
  'number',
  'floor',
  'ceil',
  'round',
  'abs',
  'sqrt',
  'power',
  'random',
  // boolean
  'boolean',
  'not',
  'exists',
  // array and higher-order
  'map',
  'zip',
  'filter',
  'single',
  'reduce',
  'sift',
  'append',
  'reverse',
  'sort',
  'shuffle',
  'distinct',
  // object
  'keys',
  'lookup',
  'spread',
  'merge',
  'each',
  'error',
  'assert',
  'type',
  'clone',
  // date and time
  'now',
  'millis',
  'toMillis',
  'fromMillis',
];

/** One call of a function nothing defines. */
export interface UnknownFunction {
  /** The name without its `$`. */
  name: string;
  /** JSONata's position of the name: the 1-based offset of its last character. */
  position: number | undefined;
  /** Defined names close to it (a typo, a case slip), closest first; at most three. */
  suggestions: string[];
}

interface Node {
  type?: unknown;
  value?: unknown;
  position?: unknown;
  procedure?: Node;
  lhs?: unknown;
  rhs?: Node;
  arguments?: unknown;
  focus?: unknown;
  index?: unknown;
}

interface Scan {
  calls: { name: string; position: number | undefined }[];
  /** Names the expression binds itself: `$x := ...`, lambda parameters, `@$x` and `#$i` of a path step. */
  bound: Set<string>;
}

function isNode(v: unknown): v is Node {
  return typeof v === 'object' && v !== null;
}

function variableName(v: unknown): string | undefined {
  return isNode(v) && v.type === 'variable' && typeof v.value === 'string' ? v.value : undefined;
}

function scan(ast: unknown): Scan {
  const out: Scan = { calls: [], bound: new Set() };
  const seen = new Set<object>();
  const call = (procedure: unknown) => {
    const name = variableName(procedure);
    // `$()` and `$$()` call the context, not a named function.
    if (name === undefined || name === '' || name === '$') return;
    const position = (procedure as Node).position;
    out.calls.push({ name, position: typeof position === 'number' ? position : undefined });
  };
  const visit = (v: unknown): void => {
    if (!isNode(v) || seen.has(v)) return;
    seen.add(v);
    if (Array.isArray(v)) {
      for (const item of v) visit(item);
      return;
    }
    switch (v.type) {
      case 'function': // $f(...)
      case 'partial': // $f(?, ...)
        call(v.procedure);
        break;
      case 'apply': // x ~> $f: the right side is called with x
        if (variableName(v.rhs) !== undefined) call(v.rhs);
        break;
      case 'bind': {
        const name = variableName(v.lhs);
        if (name !== undefined) out.bound.add(name);
        break;
      }
      case 'lambda':
        if (Array.isArray(v.arguments)) {
          for (const a of v.arguments) {
            const name = variableName(a);
            if (name !== undefined) out.bound.add(name);
          }
        }
        break;
    }
    if (typeof v.focus === 'string') out.bound.add(v.focus);
    if (typeof v.index === 'string') out.bound.add(v.index);
    for (const child of Object.values(v)) visit(child);
  };
  visit(ast);
  return out;
}

/**
 * The calls in `ast` of functions that are neither JSONata built-ins, nor in `defined` (the functions
 * registered on the expression), nor bound by the expression. Scopes are not followed: a name the
 * expression binds anywhere counts as defined everywhere, so what is refused is certainly undefined
 * (short of variables given at evaluation time, which mappings do not use for functions).
 */
export function unknownFunctions(ast: unknown, defined: Iterable<string>): UnknownFunction[] {
  const { calls, bound } = scan(ast);
  const known = new Set([...JSONATA_FUNCTIONS, ...defined, ...bound]);
  return calls
    .filter((c) => !known.has(c.name))
    .map((c) => ({ ...c, suggestions: closeMatches(c.name, known) }));
}

/** Known names within a small edit distance of `name` (case ignored), or that it is a prefix of. */
export function closeMatches(name: string, known: Iterable<string>, max = 3): string[] {
  const wanted = name.toLowerCase();
  const allowed = wanted.length <= 4 ? 1 : wanted.length <= 10 ? 2 : 3;
  const scored: { name: string; distance: number }[] = [];
  for (const k of new Set(known)) {
    if (k === name) continue;
    const candidate = k.toLowerCase();
    let distance = editDistance(wanted, candidate);
    if (distance > allowed && wanted.length >= 3 && candidate.startsWith(wanted)) distance = allowed;
    if (distance <= allowed) scored.push({ name: k, distance });
  }
  // A slip of case ($Uppercase) has one answer.
  const sameLetters = scored.filter((s) => s.distance === 0);
  if (sameLetters.length) return sameLetters.map((s) => s.name).slice(0, max);
  scored.sort((a, b) => a.distance - b.distance || a.name.localeCompare(b.name));
  return scored.slice(0, max).map((s) => s.name);
}

/** Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps. */
function editDistance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    const row = new Array<number>(b.length + 1).fill(0);
    row[0] = i;
    rows.push(row);
  }
  for (let j = 0; j <= b.length; j++) rows[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d = Math.min(d, rows[i - 2]![j - 2]! + 1);
      }
      rows[i]![j] = d;
    }
  }
  return rows[a.length]![b.length]!;
}

/** "did you mean $a?" / "did you mean $a, $b or $c?", or undefined with nothing to suggest. */
export function didYouMean(suggestions: readonly string[]): string | undefined {
  if (suggestions.length === 0) return undefined;
  const names = suggestions.map((s) => `$${s}`);
  const list = names.length === 1 ? names[0] : `${names.slice(0, -1).join(', ')} or ${names.at(-1)}`;
  return `did you mean ${list}?`;
}
