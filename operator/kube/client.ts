// A small Kubernetes REST client: KubeConfig (from @kubernetes/client-node) supplies the cluster,
// TLS material and credentials; undici carries the requests, including streaming watches.
// Kept small on purpose: server-side apply, status subresources and watch resumption are
// where operators go wrong, and here each is one visible request.
import type { KubeConfig } from '@kubernetes/client-node';
import { Agent, request } from 'undici';
import { KubeApiError, KubeTransportError } from './errors.ts';
import { apiVersionOf, type KubeObject, type ResourceType, resourcePath } from './resources.ts';
import { decodeWatchStream } from './watch-decoder.ts';

export const FIELD_MANAGER = 'tally-operator';

export interface WatchEvent<T = KubeObject> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

export interface ListResult<T = KubeObject> {
  items: T[];
  resourceVersion: string;
}

type Query = Record<string, string | number | boolean | undefined>;

/** What controllers use of the client; unit tests pass an in-memory fake (operator/testing/). */
export type KubeApi = Pick<
  KubeClient,
  'get' | 'list' | 'apply' | 'jsonPatch' | 'create' | 'delete' | 'watch'
>;

export class KubeClient {
  readonly server: string;
  readonly #kc: KubeConfig;
  #agent: Agent | undefined;

  constructor(kc: KubeConfig) {
    const cluster = kc.getCurrentCluster();
    if (!cluster)
      throw new KubeTransportError('the kubeconfig has no current cluster: set a current-context');
    this.#kc = kc;
    this.server = cluster.server.replace(/\/$/, '');
  }

  async #auth(): Promise<{ dispatcher: Agent; headers: Record<string, string> }> {
    const opts: {
      ca?: Buffer;
      cert?: Buffer;
      key?: Buffer;
      headers?: Record<string, string>;
      rejectUnauthorized?: boolean;
    } = { headers: {} };
    await this.#kc.applyToHTTPSOptions(opts as never);
    this.#agent ??= new Agent({
      connect: {
        ...(opts.ca ? { ca: opts.ca } : {}),
        ...(opts.cert ? { cert: opts.cert } : {}),
        ...(opts.key ? { key: opts.key } : {}),
        rejectUnauthorized: opts.rejectUnauthorized ?? true,
      },
      keepAliveTimeout: 30_000,
    });
    return { dispatcher: this.#agent, headers: opts.headers ?? {} };
  }

  async request<T = unknown>(
    method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
    path: string,
    opts: { query?: Query; body?: unknown; contentType?: string; signal?: AbortSignal } = {},
  ): Promise<T> {
    const { dispatcher, headers } = await this.#auth();
    const url = `${this.server}${path}${toQuery(opts.query)}`;
    let res: Awaited<ReturnType<typeof request>>;
    try {
      res = await request(url, {
        method,
        dispatcher,
        headers: {
          ...headers,
          accept: 'application/json',
          ...(opts.body !== undefined ? { 'content-type': opts.contentType ?? 'application/json' } : {}),
        },
        ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
    } catch (cause) {
      throw new KubeTransportError(`${method} ${path}: ${(cause as Error).message}`, { cause });
    }
    const text = await res.body.text();
    const parsed = text ? safeJson(text) : undefined;
    if (res.statusCode >= 400) throw statusError(res.statusCode, parsed, `${method} ${path}`);
    return parsed as T;
  }

  get<T extends KubeObject>(r: ResourceType, namespace: string | undefined, name: string): Promise<T> {
    return this.request<T>('GET', resourcePath(r, namespace, name));
  }

  async list<T extends KubeObject>(
    r: ResourceType,
    opts: { namespace?: string; labelSelector?: string } = {},
  ): Promise<ListResult<T>> {
    const body = await this.request<{ items: T[]; metadata: { resourceVersion: string } }>(
      'GET',
      resourcePath(r, opts.namespace),
      { query: { labelSelector: opts.labelSelector } },
    );
    return {
      items: body.items.map((i) => withTypeMeta(r, i)),
      resourceVersion: body.metadata.resourceVersion,
    };
  }

  /** Server-side apply with the operator's fixed field manager; `force` takes over conflicting fields. */
  apply<T extends KubeObject>(
    r: ResourceType,
    obj: KubeObject,
    opts: { subresource?: 'status'; force?: boolean } = {},
  ) {
    return this.request<T>(
      'PATCH',
      resourcePath(r, obj.metadata.namespace, obj.metadata.name, opts.subresource),
      {
        query: { fieldManager: FIELD_MANAGER, force: opts.force ?? true },
        body: obj,
        contentType: 'application/apply-patch+yaml',
      },
    );
  }

  /** JSON Patch (RFC 6902): used with `test` ops so concurrent writers cannot be overwritten. */
  jsonPatch<T extends KubeObject>(r: ResourceType, namespace: string, name: string, ops: unknown[]) {
    return this.request<T>('PATCH', resourcePath(r, namespace, name), {
      body: ops,
      contentType: 'application/json-patch+json',
    });
  }

  mergePatch<T extends KubeObject>(
    r: ResourceType,
    namespace: string,
    name: string,
    patch: unknown,
    subresource?: string,
  ) {
    return this.request<T>('PATCH', resourcePath(r, namespace, name, subresource), {
      body: patch,
      contentType: 'application/merge-patch+json',
    });
  }

  create<T extends KubeObject>(r: ResourceType, obj: KubeObject) {
    return this.request<T>('POST', resourcePath(r, obj.metadata.namespace), { body: obj });
  }

  delete(r: ResourceType, namespace: string, name: string, propagationPolicy = 'Background') {
    return this.request('DELETE', resourcePath(r, namespace, name), {
      body: { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy },
    });
  }

  /**
   * One watch request from `resourceVersion`, yielding events until the server ends it or
   * `signal` aborts. A 410 Gone (as an HTTP status or an ERROR event) is thrown as KubeApiError
   * so the caller re-lists.
   */
  async *watch<T extends KubeObject>(
    r: ResourceType,
    opts: { resourceVersion: string; labelSelector?: string; timeoutSeconds?: number; signal?: AbortSignal },
  ): AsyncGenerator<WatchEvent<T>> {
    const { dispatcher, headers } = await this.#auth();
    const query = toQuery({
      watch: true,
      allowWatchBookmarks: true,
      resourceVersion: opts.resourceVersion,
      labelSelector: opts.labelSelector,
      timeoutSeconds: opts.timeoutSeconds ?? 300,
    });
    let res: Awaited<ReturnType<typeof request>>;
    try {
      res = await request(`${this.server}${resourcePath(r)}${query}`, {
        method: 'GET',
        dispatcher,
        headers: { ...headers, accept: 'application/json' },
        bodyTimeout: 0,
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
    } catch (cause) {
      throw new KubeTransportError(`watch ${r.plural}: ${(cause as Error).message}`, { cause });
    }
    if (res.statusCode >= 400) {
      throw statusError(res.statusCode, safeJson(await res.body.text()), `watch ${r.plural}`);
    }
    try {
      // Framing and UTF-8 decoding live in watch-decoder.ts: chunks may split a character.
      for await (const raw of decodeWatchStream(res.body)) {
        const event = raw as WatchEvent<T>;
        if (event.type === 'ERROR') {
          const status = event.object as unknown as { code?: number };
          throw statusError(status.code ?? 500, event.object, `watch ${r.plural}`);
        }
        if (event.type !== 'BOOKMARK') event.object = withTypeMeta(r, event.object);
        yield event;
      }
    } catch (cause) {
      if (cause instanceof KubeApiError || opts.signal?.aborted) throw cause;
      throw new KubeTransportError(`watch ${r.plural} broke: ${(cause as Error).message}`, { cause });
    }
  }

  async close(): Promise<void> {
    await this.#agent?.close();
    this.#agent = undefined;
  }
}

function withTypeMeta<T extends KubeObject>(r: ResourceType, obj: T): T {
  obj.apiVersion ??= apiVersionOf(r);
  obj.kind ??= r.kind;
  return obj;
}

function toQuery(q: Query | undefined): string {
  if (!q) return '';
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined) params.set(k, String(v));
  const s = params.toString();
  return s ? `?${s}` : '';
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return { message: text };
  }
}

function statusError(status: number, body: unknown, what: string): KubeApiError {
  const b = (body ?? {}) as { reason?: string; message?: string };
  return new KubeApiError(
    status,
    b.reason ?? String(status),
    `${what}: ${status} ${b.reason ?? ''} ${b.message ?? ''}`.trim(),
  );
}
