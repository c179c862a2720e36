// Cross-references and master data inside mapping expressions: $xref, $xrefFind, $customer, $product.
//
// JSONata functions are synchronous on the fast path, and a store read is not. So an evaluation runs
// against what this event has fetched so far: a function asking for something not fetched yet
// records it and suspends the evaluation (EvaluationSuspended); withXrefs() fetches what was asked
// and evaluates again. A mapping needing k references evaluates at most k+1 times, and every
// evaluation sees the same answers (nothing fetched changes within one event).
import { TallyError } from '../../api/errors.ts';
import { EvaluationSuspended, MappingEvaluationError } from '../mapping/errors.ts';
import type { MappingFunction } from '../mapping/functions.ts';
import { TALLY_SYSTEM } from './keys.ts';
import type { XrefRecord } from './record.ts';

/** The binding an evaluation's context travels in (a JSONata variable no expression can name). */
export const XREF_BINDING = ' tallyXref';

/** What the functions read: the store, or a test case's fixtures. */
export interface XrefSource {
  find(entity: string, system: string, id: string): Promise<XrefRecord | undefined>;
}

export const XREF_ERROR_CODE = 'XREF_MISSING';

/** A reference this event needs is not in the store yet: transient, retried with backoff. */
export class XrefMissingError extends TallyError {
  override name = 'XrefMissingError';
  readonly code = XREF_ERROR_CODE;
  readonly permanent = false;
  readonly wanted: XrefWanted;
  constructor(wanted: XrefWanted, options?: ErrorOptions) {
    super(
      `waiting for cross-reference: ${describeWanted(wanted)} (an event it depends on has not been delivered yet; retried with backoff, repair with tally xref put)`,
      options,
    );
    this.wanted = wanted;
  }
}

export interface XrefWanted {
  entity: string;
  system: string;
  id: string;
  /** The system whose id was asked for; absent when the whole record (master data) was. */
  toSystem?: string;
}

function describeWanted(w: XrefWanted): string {
  const known =
    w.system === TALLY_SYSTEM
      ? `${w.entity} ${JSON.stringify(w.id)}`
      : `${w.entity} ${JSON.stringify(w.id)} of ${w.system}`;
  if (w.toSystem === undefined) return `${known} is not in the cross-reference store`;
  return `${known} has no ${w.toSystem} id yet`;
}

const cacheKey = (entity: string, system: string, id: string) => `${entity}\u0000${system}\u0000${id}`;

/** What one event has fetched, and what its last evaluation asked for. */
export class XrefContext {
  readonly #source: XrefSource | undefined;
  readonly #fetched = new Map<string, XrefRecord | null>();
  #pending = new Map<string, XrefWanted>();
  /** The first reference found missing (a function that must wait). */
  missing: XrefWanted | undefined;

  constructor(source: XrefSource | undefined) {
    this.#source = source;
  }

  get pending(): number {
    return this.#pending.size;
  }

  /** The record, if fetched; suspends the evaluation when it is not fetched yet. */
  record(wanted: XrefWanted): XrefRecord | undefined {
    if (!this.#source) {
      throw new MappingEvaluationError(
        `no cross-reference store here to look up ${describeWanted(wanted).replace(/ (is not|has no).*$/, '')}: flows get the namespace's store; a test case lists what it holds in xrefs`,
      );
    }
    const k = cacheKey(wanted.entity, wanted.system, wanted.id);
    const hit = this.#fetched.get(k);
    if (hit === undefined) {
      this.#pending.set(k, wanted);
      throw new EvaluationSuspended(`needs ${describeWanted(wanted)}`);
    }
    return hit ?? undefined;
  }

  /** Fetch everything the last evaluation asked for. */
  async load(): Promise<void> {
    const asked = [...this.#pending.entries()];
    this.#pending = new Map();
    const source = this.#source!;
    await Promise.all(
      asked.map(async ([k, w]) => {
        this.#fetched.set(k, (await source.find(w.entity, w.system, w.id)) ?? null);
      }),
    );
  }
}

const XREF_CALL = /\$(xref|xrefFind|customer|product)\s*\(/;

/** Whether an expression may call a cross-reference function (else evaluations need no context). */
export function readsXrefs(...sources: readonly string[]): boolean {
  return sources.some((s) => XREF_CALL.test(s));
}

/** Rounds of fetch-and-evaluate one event may take: more references than this is a mapping bug. */
export const MAX_XREF_ROUNDS = 16;

/**
 * Run an evaluation with the cross-reference functions available. Throws XrefMissingError when a
 * reference the mapping must wait for is absent (whatever the evaluation made of it).
 */
export async function withXrefs<T>(
  source: XrefSource | undefined,
  run: (bindings: Record<string, unknown>) => Promise<T>,
): Promise<T> {
  const context = new XrefContext(source);
  const bindings = { [XREF_BINDING]: context };
  for (let round = 1; ; round++) {
    try {
      return await run(bindings);
    } catch (err) {
      if (context.missing) throw new XrefMissingError(context.missing, { cause: err });
      if (context.pending === 0) throw err;
      if (round >= MAX_XREF_ROUNDS) {
        throw new MappingEvaluationError(
          `the mapping looked up more than ${MAX_XREF_ROUNDS} rounds of cross-references for one event; look up fewer, or look them up from one another less deeply`,
          { cause: err },
        );
      }
      await context.load();
    }
  }
}

/** A source over a test case's fixtures. */
export function fixtureSource(records: readonly XrefRecord[]): XrefSource {
  return {
    async find(entity, system, id) {
      return records.find(
        (r) => r.entity === entity && (system === TALLY_SYSTEM ? r.key === id : r.ids[system] === id),
      );
    },
  };
}

interface Focus {
  environment: { lookup(name: string): unknown };
}

function contextOf(focus: Focus, fn: string): XrefContext {
  const ctx = focus.environment.lookup(XREF_BINDING);
  if (ctx instanceof XrefContext) return ctx;
  throw new MappingEvaluationError(
    `$${fn} reads the cross-reference store, which this evaluation was not given: call it directly as $${fn}(...) in the expression (that is how Tally sees that a mapping needs the store)`,
  );
}

function text(fn: string, name: string, value: unknown): string {
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value !== 'string' || value === '') {
    throw new MappingEvaluationError(
      `$${fn}: ${name} must be a non-empty string, got ${value === undefined ? 'nothing (a field the input lacks?)' : JSON.stringify(value)}`,
    );
  }
  return value;
}

function idIn(record: XrefRecord | undefined, toSystem: string): string | undefined {
  if (!record) return undefined;
  return toSystem === TALLY_SYSTEM ? record.key : record.ids[toSystem];
}

/**
 * `$xref(entity, system, id, toSystem)`: the id `toSystem` gives the object `system` knows as `id`
 * ("tally" is the canonical key). Waits (the event is retried) while it is not known.
 * `$xrefFind(...)`: the same, or nothing when it is not known (for mappings that branch on it).
 * `$customer(system, id)` / `$product(system, id)`: the canonical Customer / Product master record.
 */
export function xrefFunctions(): MappingFunction[] {
  function find(focus: Focus, fn: string, args: unknown[], wait: boolean): string | undefined {
    const [entity, system, id, toSystem] = args;
    // Like JSONata's own functions: nothing in, nothing out (a field the input lacks).
    if (id === undefined) return undefined;
    const wanted = {
      entity: text(fn, 'the entity', entity),
      system: text(fn, 'the system', system),
      id: text(fn, 'the id', id),
      toSystem: text(fn, 'the system to translate to', toSystem),
    };
    const ctx = contextOf(focus, fn);
    const found = idIn(ctx.record(wanted), wanted.toSystem);
    if (found === undefined && wait) {
      ctx.missing ??= wanted;
      throw new XrefMissingError(wanted);
    }
    return found;
  }
  function master(entity: string, fn: string) {
    return function (this: Focus, system: unknown, id: unknown): unknown {
      if (id === undefined) return undefined;
      const wanted = { entity, system: text(fn, 'the system', system), id: text(fn, 'the id', id) };
      const ctx = contextOf(this, fn);
      const record = ctx.record(wanted);
      if (record?.data === undefined) {
        ctx.missing ??= wanted;
        throw new XrefMissingError(wanted);
      }
      return record.data;
    };
  }
  return [
    {
      name: 'xref',
      implementation: function (this: Focus, ...args: unknown[]) {
        return find(this, 'xref', args, true);
      },
    },
    {
      name: 'xrefFind',
      implementation: function (this: Focus, ...args: unknown[]) {
        return find(this, 'xrefFind', args, false);
      },
    },
    { name: 'customer', implementation: master('Customer', 'customer') },
    { name: 'product', implementation: master('Product', 'product') },
  ];
}
