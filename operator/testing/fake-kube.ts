// An in-memory Kubernetes API for unit tests of the operator (the e2e tier has the real one).
// Objects live by resource; writes are recorded so tests assert what the operator asked for.
// Only objects a test put() are sent to watches: the operator's own writes are stored but not
// echoed, so each test decides exactly what its informers see.
import type { KubeApi, ListResult, WatchEvent } from '../kube/client.ts';
import { KubeApiError } from '../kube/errors.ts';
import type { KubeObject, ResourceType } from '../kube/resources.ts';

export interface KubeCall {
  verb: 'apply' | 'jsonPatch' | 'create' | 'delete';
  resource: string;
  namespace: string | undefined;
  name: string;
  subresource?: string;
  body: unknown;
}

interface Watcher {
  plural: string;
  selector: string | undefined;
  push(ev: WatchEvent): void;
}

interface PatchOp {
  op: string;
  path: string;
  value?: unknown;
}

const keyOf = (r: ResourceType, namespace: string | undefined, name: string) =>
  `${r.plural}/${namespace ?? ''}/${name}`;

export class FakeKube implements KubeApi {
  readonly calls: KubeCall[] = [];
  /** Called before every write; an error it returns is thrown instead (an apiserver failing). */
  failWith: ((call: KubeCall) => Error | undefined) | undefined;
  readonly #objects = new Map<string, KubeObject>();
  readonly #watchers = new Set<Watcher>();
  #rv = 100;

  /** Stores (or replaces) an object as a user would, and tells the watches. */
  put<T extends KubeObject>(r: ResourceType, obj: T): T {
    const key = keyOf(r, obj.metadata.namespace, obj.metadata.name);
    const old = this.#objects.get(key);
    const stored = structuredClone(obj);
    stored.apiVersion ??= r.group ? `${r.group}/${r.version}` : r.version;
    stored.kind ??= r.kind;
    stored.metadata.uid ??= old?.metadata.uid ?? `uid-${obj.metadata.name}`;
    stored.metadata.generation ??= (old?.metadata.generation ?? 0) + 1;
    stored.metadata.resourceVersion = String(++this.#rv);
    this.#objects.set(key, stored);
    this.#emit(r, { type: old ? 'MODIFIED' : 'ADDED', object: stored });
    return structuredClone(stored);
  }

  /** The stored object, or undefined. */
  object<T extends KubeObject = KubeObject>(r: ResourceType, namespace: string, name: string): T | undefined {
    const obj = this.#objects.get(keyOf(r, namespace, name));
    return obj ? (structuredClone(obj) as T) : undefined;
  }

  /** The recorded writes of one verb (and resource). */
  writes(verb: KubeCall['verb'], r?: ResourceType): KubeCall[] {
    return this.calls.filter((c) => c.verb === verb && (!r || c.resource === r.plural));
  }

  async get<T extends KubeObject>(r: ResourceType, namespace: string | undefined, name: string): Promise<T> {
    const obj = this.#objects.get(keyOf(r, namespace, name));
    if (!obj) throw notFound(r, name);
    return structuredClone(obj) as T;
  }

  async list<T extends KubeObject>(
    r: ResourceType,
    opts: { namespace?: string; labelSelector?: string } = {},
  ): Promise<ListResult<T>> {
    const items = [...this.#objects.entries()]
      .filter(([key]) => key.startsWith(`${r.plural}/${opts.namespace ?? ''}`))
      .map(([, obj]) => obj)
      .filter((obj) => matches(opts.labelSelector, obj));
    return { items: structuredClone(items) as T[], resourceVersion: String(this.#rv) };
  }

  async apply<T extends KubeObject>(
    r: ResourceType,
    obj: KubeObject,
    opts: { subresource?: 'status'; force?: boolean } = {},
  ): Promise<T> {
    const { namespace, name } = obj.metadata;
    this.#record({ verb: 'apply', resource: r.plural, namespace, name, body: obj, ...opts });
    const key = keyOf(r, namespace, name);
    const old = this.#objects.get(key);
    if (opts.subresource === 'status') {
      if (!old) throw notFound(r, name);
      return this.#store(key, { ...old, status: structuredClone(obj.status) }) as T;
    }
    return this.#store(key, {
      ...structuredClone(obj),
      metadata: { ...structuredClone(obj.metadata), uid: old?.metadata.uid ?? `uid-${name}` },
    }) as T;
  }

  async jsonPatch<T extends KubeObject>(
    r: ResourceType,
    namespace: string,
    name: string,
    ops: unknown[],
  ): Promise<T> {
    this.#record({ verb: 'jsonPatch', resource: r.plural, namespace, name, body: ops });
    const key = keyOf(r, namespace, name);
    const old = this.#objects.get(key);
    if (!old) throw notFound(r, name);
    return this.#store(key, applyJsonPatch(structuredClone(old), ops as PatchOp[])) as T;
  }

  async create<T extends KubeObject>(r: ResourceType, obj: KubeObject): Promise<T> {
    const { namespace, name } = obj.metadata;
    this.#record({ verb: 'create', resource: r.plural, namespace, name, body: obj });
    const key = keyOf(r, namespace, name);
    if (this.#objects.has(key)) {
      throw new KubeApiError(409, 'AlreadyExists', `${r.plural} "${name}" already exists`);
    }
    return this.#store(key, structuredClone(obj)) as T;
  }

  async delete(r: ResourceType, namespace: string, name: string): Promise<unknown> {
    this.#record({ verb: 'delete', resource: r.plural, namespace, name, body: undefined });
    if (!this.#objects.delete(keyOf(r, namespace, name))) throw notFound(r, name);
    return {};
  }

  async *watch<T extends KubeObject>(
    r: ResourceType,
    opts: { resourceVersion: string; labelSelector?: string; signal?: AbortSignal },
  ): AsyncGenerator<WatchEvent<T>> {
    const queue: WatchEvent[] = [];
    let wake: (() => void) | undefined;
    const watcher: Watcher = {
      plural: r.plural,
      selector: opts.labelSelector,
      push: (ev) => {
        queue.push(ev);
        wake?.();
      },
    };
    const onAbort = () => wake?.();
    this.#watchers.add(watcher);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      while (!opts.signal?.aborted) {
        const ev = queue.shift();
        if (ev) {
          yield structuredClone(ev) as WatchEvent<T>;
          continue;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
    } finally {
      this.#watchers.delete(watcher);
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  #record(call: KubeCall): void {
    this.calls.push(structuredClone(call));
    const err = this.failWith?.(call);
    if (err) throw err;
  }

  #store(key: string, obj: KubeObject): KubeObject {
    obj.metadata.resourceVersion = String(++this.#rv);
    this.#objects.set(key, obj);
    return structuredClone(obj);
  }

  #emit(r: ResourceType, ev: WatchEvent): void {
    for (const w of this.#watchers) {
      if (w.plural === r.plural && matches(w.selector, ev.object)) w.push(ev);
    }
  }
}

function notFound(r: ResourceType, name: string): KubeApiError {
  return new KubeApiError(404, 'NotFound', `${r.plural} "${name}" not found`);
}

/** Equality selectors only (`a=b,c=d`): all the operator uses. */
function matches(selector: string | undefined, obj: KubeObject): boolean {
  if (!selector) return true;
  return selector.split(',').every((term) => {
    const [k, v] = term.split('=');
    return obj.metadata.labels?.[k!] === v;
  });
}

/**
 * RFC 6902 for the ops the operator sends (test, add, remove, replace). A failed `test` is the
 * apiserver's 422, and nothing of the patch is applied.
 */
function applyJsonPatch(doc: KubeObject, ops: PatchOp[]): KubeObject {
  for (const op of ops) {
    const tokens = op.path
      .split('/')
      .slice(1)
      .map((t) => t.replaceAll('~1', '/').replaceAll('~0', '~'));
    const last = tokens.pop()!;
    let parent: unknown = doc;
    for (const t of tokens) parent = (parent as Record<string, unknown> | undefined)?.[t];
    if (typeof parent !== 'object' || parent === null) throw invalid(op, 'path does not exist');
    const list = Array.isArray(parent) ? (parent as unknown[]) : undefined;
    const map = parent as Record<string, unknown>;
    const index = last === '-' ? (list?.length ?? -1) : Number(last);
    const exists = list ? index >= 0 && index < list.length : Object.hasOwn(map, last);
    const current = list ? list[index] : map[last];
    switch (op.op) {
      case 'test':
        if (!exists || JSON.stringify(current) !== JSON.stringify(op.value)) throw invalid(op, 'test failed');
        break;
      case 'add':
        if (list) list.splice(index, 0, structuredClone(op.value));
        else map[last] = structuredClone(op.value);
        break;
      case 'remove':
        if (!exists) throw invalid(op, 'path does not exist');
        if (list) list.splice(index, 1);
        else delete map[last];
        break;
      case 'replace':
        if (!exists) throw invalid(op, 'path does not exist');
        if (list) list[index] = structuredClone(op.value);
        else map[last] = structuredClone(op.value);
        break;
      default:
        throw invalid(op, 'unsupported op');
    }
  }
  return doc;
}

function invalid(op: PatchOp, why: string): KubeApiError {
  return new KubeApiError(422, 'Invalid', `json patch ${op.op} ${op.path}: ${why}`);
}
