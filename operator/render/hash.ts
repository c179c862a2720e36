import { createHash } from 'node:crypto';
import { canonicalJson } from '../../api/json.ts';

/** JSON with sorted keys, so equal values always hash the same. */
export { canonicalJson };

export function configHash(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex').slice(0, 16);
}
