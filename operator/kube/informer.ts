// List-then-watch cache of one resource type (a reflector + store). It survives what long-lived
// watches meet: the server closing the watch (re-watch from the last resourceVersion), 410 Gone
// (re-list), dropped connections and API errors (re-list after a capped backoff). A periodic
// resync re-delivers every cached object so level-based reconcilers catch up on drift.
import type { Logger } from 'pino';
import { retryDelayMs } from '../../runtime/backoff.ts';
import type { KubeApi } from './client.ts';
import { isGone } from './errors.ts';
import type { KubeObject, ResourceType } from './resources.ts';

export type InformerEvent = 'add' | 'update' | 'delete';
export type InformerHandler<T> = (event: InformerEvent, obj: T, old?: T) => void;

export interface InformerOptions {
  labelSelector?: string;
  resyncMs?: number;
  logger: Logger;
  /** Longest pause between re-list attempts after errors. */
  maxBackoffMs?: number;
}

/** The read side of an informer: what reconcilers look objects up in. */
export type Cache<T extends KubeObject> = Pick<Informer<T>, 'get' | 'list'>;

export const objectKey = (o: KubeObject) => `${o.metadata.namespace ?? ''}/${o.metadata.name}`;

export class Informer<T extends KubeObject> {
  readonly #store = new Map<string, T>();
  readonly #handlers: InformerHandler<T>[] = [];
  readonly #client: KubeApi;
  readonly #resource: ResourceType;
  readonly #opts: InformerOptions;
  #synced!: () => void;
  readonly synced: Promise<void> = new Promise((resolve) => {
    this.#synced = resolve;
  });
  /** Re-lists since start: visible in tests that cut watches. */
  relists = 0;

  constructor(client: KubeApi, resource: ResourceType, opts: InformerOptions) {
    this.#client = client;
    this.#resource = resource;
    this.#opts = opts;
  }

  on(handler: InformerHandler<T>): void {
    this.#handlers.push(handler);
  }

  get(namespace: string, name: string): T | undefined {
    return this.#store.get(`${namespace}/${name}`);
  }

  list(): T[] {
    return [...this.#store.values()];
  }

  /** Runs until `signal` aborts. Never throws. */
  async run(signal: AbortSignal): Promise<void> {
    const log = this.#opts.logger.child({ resource: this.#resource.plural });
    const resync = this.#opts.resyncMs
      ? setInterval(() => {
          for (const obj of this.#store.values()) this.#emit('update', obj, obj);
        }, this.#opts.resyncMs)
      : undefined;
    let failures = 0;
    try {
      while (!signal.aborted) {
        try {
          let rv = await this.#relist();
          failures = 0;
          // Watch until the server ends it, then continue from the last seen resourceVersion.
          while (!signal.aborted) {
            for await (const ev of this.#client.watch<T>(this.#resource, {
              resourceVersion: rv,
              labelSelector: this.#opts.labelSelector,
              signal,
            })) {
              rv = ev.object.metadata.resourceVersion ?? rv;
              if (ev.type === 'BOOKMARK') continue;
              this.#apply(ev.type, ev.object);
            }
          }
        } catch (err) {
          if (signal.aborted) break;
          if (isGone(err)) {
            log.info({ err }, 'watch expired (410 Gone), re-listing');
            continue;
          }
          failures++;
          const delay = retryDelayMs(failures + 1, {
            initialMs: 250,
            maxMs: this.#opts.maxBackoffMs ?? 30_000,
            jitter: 0,
          });
          log.warn({ err, retryInMs: delay }, 'list/watch failed, retrying');
          await sleep(delay, signal);
        }
      }
    } finally {
      if (resync) clearInterval(resync);
    }
  }

  async #relist(): Promise<string> {
    const { items, resourceVersion } = await this.#client.list<T>(this.#resource, {
      ...(this.#opts.labelSelector ? { labelSelector: this.#opts.labelSelector } : {}),
    });
    this.relists++;
    const seen = new Set<string>();
    for (const item of items) {
      seen.add(objectKey(item));
      this.#apply('MODIFIED', item);
    }
    for (const [key, old] of this.#store) {
      if (!seen.has(key)) {
        this.#store.delete(key);
        this.#emit('delete', old);
      }
    }
    this.#synced();
    return resourceVersion;
  }

  #apply(type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'ERROR', obj: T): void {
    const key = objectKey(obj);
    const old = this.#store.get(key);
    if (type === 'DELETED') {
      this.#store.delete(key);
      this.#emit('delete', obj);
      return;
    }
    if (old?.metadata.resourceVersion === obj.metadata.resourceVersion) return;
    this.#store.set(key, obj);
    this.#emit(old ? 'update' : 'add', obj, old);
  }

  #emit(event: InformerEvent, obj: T, old?: T): void {
    for (const h of this.#handlers) h(event, obj, old);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });
}
