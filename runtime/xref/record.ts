// A cross-reference record and how links merge into it. Pure: the store (./store.ts) reads, merges
// and writes with compare-and-set.

/** Who wrote an id, for `tally xref get` and repairs. */
export interface LinkProvenance {
  /** Version of the business entity the event carried (tallyversion). */
  version?: string;
  /** namespace/name of the flow that wrote it, or "cli" for `tally xref put`. */
  by: string;
  /** When, RFC 3339. */
  at: string;
}

/** One business object across systems: its canonical key and its id in each system. */
export interface XrefRecord {
  entity: string;
  /** The canonical business key (the system "tally"). */
  key: string;
  /** system -> id, e.g. {shopify: "5123456789012", netsuite: "1042"}. */
  ids: Record<string, string>;
  provenance: Record<string, LinkProvenance>;
  /** Master data (Customer, Product): the latest canonical record, read by $customer and $product. */
  data?: unknown;
  dataVersion?: string;
}

export interface MergeResult {
  record: XrefRecord;
  /** Nothing new: the write can be skipped. */
  unchanged: boolean;
  /** Ids that replaced a different one: their old index entries point elsewhere now. */
  replaced: { system: string; previous: string; id: string }[];
  /** The master data given was older than the stored data, which was kept. */
  stale: boolean;
}

/**
 * Is version `a` older than `b`? Both numbers, or both timestamps, compare; anything else cannot be
 * ordered and is not older (the later write wins).
 */
export function isOlderVersion(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined) return false;
  const na = Number(a);
  const nb = Number(b);
  if (a.trim() !== '' && b.trim() !== '' && Number.isFinite(na) && Number.isFinite(nb)) return na < nb;
  const ta = Date.parse(a);
  const tb = Date.parse(b);
  if (!Number.isNaN(ta) && !Number.isNaN(tb) && /^\d{4}-/.test(a) && /^\d{4}-/.test(b)) return ta < tb;
  return false;
}

/** Add `ids` (and master `data`) to a record; an id that changes is replaced and reported. */
export function mergeLinks(
  existing: XrefRecord | undefined,
  entity: string,
  key: string,
  ids: Readonly<Record<string, string>>,
  provenance: LinkProvenance,
  data?: { value: unknown; version?: string },
): MergeResult {
  const record: XrefRecord = existing
    ? { ...existing, ids: { ...existing.ids }, provenance: { ...existing.provenance } }
    : { entity, key, ids: {}, provenance: {} };
  let unchanged = existing !== undefined;
  let stale = false;
  const replaced: MergeResult['replaced'] = [];
  for (const [system, id] of Object.entries(ids)) {
    const previous = record.ids[system];
    if (previous === id) continue;
    if (previous !== undefined) replaced.push({ system, previous, id });
    record.ids[system] = id;
    record.provenance[system] = provenance;
    unchanged = false;
  }
  if (data !== undefined && isOlderVersion(data.version, record.dataVersion)) {
    stale = true;
  } else if (data !== undefined && JSON.stringify(data.value) !== JSON.stringify(record.data)) {
    record.data = data.value;
    if (data.version !== undefined) record.dataVersion = data.version;
    else delete record.dataVersion;
    unchanged = false;
  }
  return { record, unchanged, replaced, stale };
}
