// What an HTTP sink with a cross-reference does with one event, as pure decisions: create or update
// (by whether the store holds the target's id), whether an error answer means "already exists".
import type { HttpSinkConfig } from './http-sink.ts';
import { fillUrl } from './url-template.ts';

export type WritePlan =
  | { kind: 'create' | 'update'; method: string; url: string }
  /** The target's id is known and the sink has no update: delivered already, nothing to send. */
  | { kind: 'known' };

/**
 * Create when the target's id is unknown (or the sink keeps no cross-reference), update to the id
 * when it is known and the sink has an update, else nothing to do.
 */
export function planWrite(
  config: Pick<HttpSinkConfig, 'url' | 'method' | 'update' | 'xref' | 'name'>,
  knownId: string | undefined,
  params: Readonly<Record<string, string>>,
  data: unknown,
): WritePlan {
  const what = `sink ${config.name}`;
  if (knownId === undefined || !config.xref) {
    return { kind: 'create', method: config.method, url: fillUrl(config.url, params, data, what) };
  }
  if (!config.update) return { kind: 'known' };
  return {
    kind: 'update',
    method: config.update.method,
    url: fillUrl(config.update.url, { ...params, id: knownId }, data, what),
  };
}

/** A create answered with one of the alreadyExists statuses (and body pattern, when set). */
export function isAlreadyExists(
  config: Pick<HttpSinkConfig, 'alreadyExists'>,
  status: number,
  bodyText: string,
): boolean {
  const rule = config.alreadyExists;
  if (!rule?.statuses.includes(status)) return false;
  return rule.bodyPattern === undefined || new RegExp(rule.bodyPattern).test(bodyText);
}
