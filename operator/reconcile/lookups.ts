// Resolves a mapping's lookup tables: inline ones as they are, ConfigMap ones read from the API.
import * as yaml from 'js-yaml';
import type { CanonicalMappingSpec } from '../../api/canonical-mapping.ts';
import { LookupNotFoundError } from '../errors.ts';
import type { KubeApi } from '../kube/client.ts';
import { isNotFound } from '../kube/errors.ts';
import { CONFIG_MAPS, type KubeObject } from '../kube/resources.ts';

export type ResolvedLookups = Record<string, { values: Record<string, string>; default?: string }>;

export async function resolveLookups(
  client: KubeApi,
  namespace: string,
  lookups: CanonicalMappingSpec['lookups'],
): Promise<ResolvedLookups> {
  const out: ResolvedLookups = {};
  for (const table of lookups) {
    let values: Record<string, string>;
    if (table.inline) {
      values = table.inline;
    } else {
      const ref = table.configMapRef!;
      let cm: KubeObject & { data?: Record<string, string> };
      try {
        cm = await client.get(CONFIG_MAPS, namespace, ref.name);
      } catch (err) {
        if (isNotFound(err)) {
          throw new LookupNotFoundError(
            `lookup table "${table.name}" reads ConfigMap ${namespace}/${ref.name}, which does not exist: create it or fix spec.lookups`,
            { cause: err },
          );
        }
        throw err;
      }
      values = tableFromConfigMap(cm.data ?? {}, ref.key, `${namespace}/${ref.name}`, table.name);
    }
    out[table.name] = { values, ...(table.default !== undefined ? { default: table.default } : {}) };
  }
  return out;
}

/** A whole ConfigMap is a table; with a key, that entry holds the table as JSON or YAML. */
export function tableFromConfigMap(
  data: Record<string, string>,
  key: string | undefined,
  where: string,
  table: string,
): Record<string, string> {
  if (!key) return data;
  const text = data[key];
  if (text === undefined) {
    throw new LookupNotFoundError(`lookup table "${table}": ConfigMap ${where} has no key "${key}"`);
  }
  const parsed = yaml.load(text);
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new LookupNotFoundError(
      `lookup table "${table}": ConfigMap ${where} key "${key}" must hold a map of strings`,
    );
  }
  return Object.fromEntries(Object.entries(parsed).map(([k, v]) => [k, String(v)]));
}
