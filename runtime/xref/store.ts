// The cross-reference store: which id each system gives one business object, in the namespace's
// JetStream KV bucket (layout in ./keys.ts). Writes merge with compare-and-set, so two workers
// capturing ids of one object at once both land; index entries are written before the record, so a
// crash in between leaves an index entry a redelivery completes, never a record nobody can find.
import { STATE_ERROR_CODES, type StateStore, StateStoreError } from '../flow/state/kv-store.ts';
import { indexKey, parseRecordKey, recordFilter, recordKey, TALLY_SYSTEM } from './keys.ts';
import { type LinkProvenance, mergeLinks, type XrefRecord } from './record.ts';

export interface LinkInput {
  entity: string;
  /** The canonical business key. */
  key: string;
  /** system -> id to record (the "tally" system is the key itself and is not stored). */
  ids: Readonly<Record<string, string>>;
  provenance: LinkProvenance;
  /** Master data to keep with the record (Customer, Product flows). */
  data?: { value: unknown; version?: string };
}

export interface XrefStore {
  /** The record of the object with canonical key `key`. */
  get(entity: string, key: string): Promise<XrefRecord | undefined>;
  /** The canonical key of the object `system` knows as `id` ("tally": `id` itself). */
  resolve(entity: string, system: string, id: string): Promise<string | undefined>;
  /** The object's id in `toSystem`, found by its id in `fromSystem`. */
  lookup(entity: string, fromSystem: string, id: string, toSystem: string): Promise<string | undefined>;
  /** The record found by an id in any system ("tally" = canonical key). */
  find(entity: string, system: string, id: string): Promise<XrefRecord | undefined>;
  /** Record ids (and master data) of one object; returns the record as stored. */
  link(input: LinkInput): Promise<XrefRecord>;
  /** Forget one system's id of an object (a repair). True when there was one. */
  unlink(entity: string, key: string, system: string): Promise<boolean>;
  /** Forget the object and its index entries. True when it existed. */
  delete(entity: string, key: string): Promise<boolean>;
  /** Every record, of one entity or of all. */
  list(entity?: string): AsyncIterable<XrefRecord>;
}

const CAS_ATTEMPTS = 8;

export function xrefStore(state: StateStore): XrefStore {
  const get = async (entity: string, key: string) =>
    (await state.get<XrefRecord>(recordKey(entity, key)))?.value;
  const resolve = async (entity: string, system: string, id: string) => {
    if (system === TALLY_SYSTEM) return id;
    return (await state.get<{ key: string }>(indexKey(entity, system, id)))?.value.key;
  };
  const find = async (entity: string, system: string, id: string) => {
    const key = await resolve(entity, system, id);
    if (key === undefined) return undefined;
    const record = await get(entity, key);
    // An index entry whose record no longer carries that id is stale (the id was replaced or unlinked).
    if (!record || (system !== TALLY_SYSTEM && record.ids[system] !== id)) return undefined;
    return record;
  };

  /** Read-merge-write with compare-and-set, retried when another writer came in between. */
  async function update(
    entity: string,
    key: string,
    change: (current: XrefRecord | undefined) => XrefRecord | undefined,
  ): Promise<XrefRecord | undefined> {
    const k = recordKey(entity, key);
    for (let attempt = 1; ; attempt++) {
      const current = await state.get<XrefRecord>(k);
      const next = change(current?.value);
      if (next === undefined) return current?.value;
      try {
        await state.put(k, next, current?.revision ?? 0);
        return next;
      } catch (err) {
        const conflict = err instanceof StateStoreError && err.code === STATE_ERROR_CODES.conflict;
        if (!conflict || attempt >= CAS_ATTEMPTS) throw err;
      }
    }
  }

  return {
    get,
    resolve,
    find,
    async lookup(entity, fromSystem, id, toSystem) {
      const record = await find(entity, fromSystem, id);
      if (!record) return undefined;
      return toSystem === TALLY_SYSTEM ? record.key : record.ids[toSystem];
    },
    async link(input) {
      const ids = Object.fromEntries(Object.entries(input.ids).filter(([s]) => s !== TALLY_SYSTEM));
      for (const [system, id] of Object.entries(ids)) {
        await state.put(indexKey(input.entity, system, id), { key: input.key });
      }
      const stored = await update(input.entity, input.key, (current) => {
        const merged = mergeLinks(current, input.entity, input.key, ids, input.provenance, input.data);
        return merged.unchanged ? undefined : merged.record;
      });
      return (
        stored ?? mergeLinks(undefined, input.entity, input.key, ids, input.provenance, input.data).record
      );
    },
    async unlink(entity, key, system) {
      let had: string | undefined;
      await update(entity, key, (current) => {
        had = current?.ids[system];
        if (!current || had === undefined) return undefined;
        const { [system]: _id, ...ids } = current.ids;
        const { [system]: _p, ...provenance } = current.provenance;
        return { ...current, ids, provenance };
      });
      if (had === undefined) return false;
      await state.delete(indexKey(entity, system, had));
      return true;
    },
    async delete(entity, key) {
      const record = await get(entity, key);
      if (!record) return false;
      for (const [system, id] of Object.entries(record.ids)) await state.delete(indexKey(entity, system, id));
      await state.delete(recordKey(entity, key));
      return true;
    },
    async *list(entity) {
      for await (const k of state.keys(recordFilter(entity))) {
        const parsed = parseRecordKey(k);
        if (!parsed) continue;
        const record = await get(parsed.entity, parsed.key);
        if (record) yield record;
      }
    },
  };
}
