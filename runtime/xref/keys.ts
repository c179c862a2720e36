// Where the cross-reference store keeps what, as pure functions. One KV bucket per namespace:
//   <Entity>.k.<key>            the record of one business object: its id in every system
//   <Entity>.s.<system>.<id>    index: the canonical key of the object a system knows by that id
// Ids and keys are base64url-encoded into the KV key: any text (a "#1001", an "eid:SO/42") is safe,
// and no id can inject a subject token.

/** The pseudo-system whose ids are the canonical business keys. */
export const TALLY_SYSTEM = 'tally';

export function xrefBucketName(namespace: string): string {
  return `tally_xref_${namespace}`;
}

export function encodeId(id: string): string {
  return Buffer.from(id, 'utf8').toString('base64url');
}

export function decodeId(encoded: string): string {
  return Buffer.from(encoded, 'base64url').toString('utf8');
}

export function recordKey(entity: string, key: string): string {
  return `${entity}.k.${encodeId(key)}`;
}

export function indexKey(entity: string, system: string, id: string): string {
  return `${entity}.s.${system}.${encodeId(id)}`;
}

/** The KV key filter of every record, of one entity or of all. */
export function recordFilter(entity?: string): string {
  return `${entity ?? '*'}.k.*`;
}

/** The canonical key a record's KV key holds, or undefined for an index key. */
export function parseRecordKey(kvKey: string): { entity: string; key: string } | undefined {
  const parts = kvKey.split('.');
  if (parts.length !== 3 || parts[1] !== 'k') return undefined;
  return { entity: parts[0]!, key: decodeId(parts[2]!) };
}
