// Worker state in the flow's JetStream KV bucket (WorkerConfig nats.stateBucket): the poller's
// cursor and lease, backfill progress. JSON values with compare-and-set on the revision, so two
// writers never silently overwrite each other. The bucket is created on first use (the operator
// deletes it with the flow).

import { type KV, type KvEntry, Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { CodedError } from '../../../api/errors.ts';

export const STATE_ERROR_CODES = {
  unavailable: 'STATE_UNAVAILABLE',
  conflict: 'STATE_CONFLICT',
  invalid: 'STATE_INVALID',
} as const;
export type StateErrorCode = (typeof STATE_ERROR_CODES)[keyof typeof STATE_ERROR_CODES];

export class StateStoreError extends CodedError<StateErrorCode> {
  override name = 'StateStoreError';
}

export interface StateEntry<T> {
  value: T;
  /** KV revision: pass it to put() to write only if nobody wrote since. */
  revision: number;
  /** When the server stored this revision. */
  stored: Date;
}

export interface StateStore {
  readonly bucket: string;
  /** The value under `key`; undefined when absent or deleted. Values that are not JSON throw STATE_INVALID. */
  get<T>(key: string): Promise<StateEntry<T> | undefined>;
  /**
   * Write `value` under `key`. With `expectedRevision`, only if the key is still at that revision
   * (0 = only if absent); else STATE_CONFLICT. Returns the new revision.
   */
  put(key: string, value: unknown, expectedRevision?: number): Promise<number>;
  /** Delete `key` (a delete marker; a later put with revision 0 succeeds). */
  delete(key: string): Promise<void>;
  /** The keys present, optionally under a subject-style filter such as `Order.k.>`. */
  keys(filter?: string): AsyncIterable<string>;
}

/** Keys allowed by NATS KV. */
export const KV_KEY = /^[-/=.\w]+$/;

/** JetStream: wrong last sequence (10071), and the same with an unknown sequence (10164). */
const WRONG_LAST_SEQUENCE = [10071, 10164];

function isConflict(err: unknown): boolean {
  const e = err as { code?: unknown; api_error?: { err_code?: number }; message?: string };
  return (
    WRONG_LAST_SEQUENCE.includes(e?.code as number) ||
    WRONG_LAST_SEQUENCE.includes(e?.api_error?.err_code as number) ||
    /wrong last sequence/i.test(e?.message ?? '')
  );
}

/** A StateStore over an open KV bucket. */
export function kvStateStore(kv: KV, bucket: string, timeoutMs = 5_000): StateStore {
  const checkKey = (key: string) => {
    if (!KV_KEY.test(key)) throw new StateStoreError(STATE_ERROR_CODES.invalid, `invalid state key ${key}`);
  };
  const unavailable = (what: string, err: unknown) =>
    err instanceof StateStoreError
      ? err
      : new StateStoreError(
          STATE_ERROR_CODES.unavailable,
          `${what} in KV bucket ${bucket}: ${(err as Error)?.message ?? String(err)}`,
          { cause: err },
        );
  return {
    bucket,
    async get<T>(key: string) {
      checkKey(key);
      let entry: KvEntry | null;
      try {
        entry = await kv.get(key);
      } catch (err) {
        throw unavailable(`cannot read ${key}`, err);
      }
      if (entry?.operation !== 'PUT') return undefined;
      try {
        return { value: entry.json<T>(), revision: entry.revision, stored: entry.created };
      } catch (cause) {
        throw new StateStoreError(
          STATE_ERROR_CODES.invalid,
          `${key} in KV bucket ${bucket} is not JSON; delete it (nats kv del ${bucket} ${key}) to start over`,
          { cause },
        );
      }
    },
    async put(key, value, expectedRevision) {
      checkKey(key);
      const data = new TextEncoder().encode(JSON.stringify(value));
      try {
        if (expectedRevision === undefined) return await kv.put(key, data);
        if (expectedRevision === 0) return await kv.create(key, data);
        return await kv.update(key, data, expectedRevision, timeoutMs);
      } catch (err) {
        if (isConflict(err) || (expectedRevision === 0 && /exists/i.test((err as Error)?.message ?? ''))) {
          throw new StateStoreError(
            STATE_ERROR_CODES.conflict,
            `${key} in KV bucket ${bucket} was changed by another writer`,
            { cause: err },
          );
        }
        throw unavailable(`cannot write ${key}`, err);
      }
    },
    async delete(key) {
      checkKey(key);
      try {
        await kv.delete(key);
      } catch (err) {
        throw unavailable(`cannot delete ${key}`, err);
      }
    },
    async *keys(filter) {
      let it: AsyncIterable<string>;
      try {
        it = await kv.keys(filter ?? '>');
      } catch (err) {
        throw unavailable(`cannot list keys${filter ? ` under ${filter}` : ''}`, err);
      }
      yield* it;
    },
  };
}

/** A StateStore in memory, for unit tests of what is built on it (same revision and conflict rules). */
export function memoryStateStore(bucket = 'memory'): StateStore {
  const data = new Map<string, { value: string; revision: number; stored: Date }>();
  let revision = 0;
  const conflict = (key: string) =>
    new StateStoreError(
      STATE_ERROR_CODES.conflict,
      `${key} in KV bucket ${bucket} was changed by another writer`,
    );
  return {
    bucket,
    async get<T>(key: string) {
      const e = data.get(key);
      return e ? { value: JSON.parse(e.value) as T, revision: e.revision, stored: e.stored } : undefined;
    },
    async put(key, value, expectedRevision) {
      if (!KV_KEY.test(key)) throw new StateStoreError(STATE_ERROR_CODES.invalid, `invalid state key ${key}`);
      const current = data.get(key);
      if (expectedRevision === 0 && current) throw conflict(key);
      if (
        expectedRevision !== undefined &&
        expectedRevision !== 0 &&
        current?.revision !== expectedRevision
      ) {
        throw conflict(key);
      }
      revision += 1;
      data.set(key, { value: JSON.stringify(value), revision, stored: new Date() });
      return revision;
    },
    async delete(key) {
      data.delete(key);
    },
    async *keys(filter) {
      const match = subjectMatcher(filter ?? '>');
      for (const k of [...data.keys()]) if (match(k)) yield k;
    },
  };
}

/** NATS subject matching of a key against a filter with `*` and `>` tokens. */
function subjectMatcher(filter: string): (key: string) => boolean {
  const f = filter.split('.');
  return (key) => {
    const k = key.split('.');
    for (let i = 0; i < f.length; i++) {
      if (f[i] === '>') return k.length > i;
      if (i >= k.length || (f[i] !== '*' && f[i] !== k[i])) return false;
    }
    return k.length === f.length;
  };
}

export interface OpenStateOptions {
  /** JetStream replicas of the bucket (the flow stream's replicas). */
  replicas?: number;
  /** Revisions kept per key; default 5 (the last cursors, for inspection). */
  history?: number;
  timeoutMs?: number;
}

/** Open the bucket over a connection, creating it when it does not exist yet. */
export async function openKvState(
  nc: NatsConnection,
  bucket: string,
  options: OpenStateOptions = {},
): Promise<StateStore> {
  const timeoutMs = options.timeoutMs ?? 5_000;
  try {
    const kv = await new Kvm(nc).create(bucket, {
      history: options.history ?? 5,
      replicas: options.replicas ?? 1,
      timeout: timeoutMs,
    });
    return kvStateStore(kv, bucket, timeoutMs);
  } catch (err) {
    throw new StateStoreError(
      STATE_ERROR_CODES.unavailable,
      `cannot open KV bucket ${bucket}: ${(err as Error)?.message ?? String(err)}`,
      { cause: err },
    );
  }
}

export interface StateConnection {
  store: StateStore;
  /** True while connected to NATS (for readiness). */
  connected(): boolean;
  close(): Promise<void>;
}

/**
 * A connection of its own for worker state (reconnecting forever) and the bucket on it. One attempt:
 * callers retry with backoff while NATS is away.
 */
export async function connectState(
  servers: string[],
  name: string,
  bucket: string,
  options: OpenStateOptions = {},
): Promise<StateConnection> {
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers,
      name,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 1_000,
      timeout: options.timeoutMs ?? 5_000,
    });
  } catch (err) {
    throw new StateStoreError(
      STATE_ERROR_CODES.unavailable,
      `cannot connect to NATS at ${servers.join(', ')}: ${(err as Error)?.message ?? String(err)}`,
      { cause: err },
    );
  }
  let up = true;
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') up = false;
      else if (s.type === 'reconnect') up = true;
    }
  })().catch(() => {});
  try {
    const store = await openKvState(nc, bucket, options);
    return {
      store,
      connected: () => up && !nc.isClosed(),
      close: async () => {
        if (nc.isClosed()) return;
        await nc.drain().catch(() => nc.close());
      },
    };
  } catch (err) {
    await nc.close().catch(() => {});
    throw err;
  }
}
