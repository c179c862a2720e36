// The informer against a scripted fake apiserver on loopback (tier 1: the real apiserver cannot be
// made to expire a watch or drop a connection on cue). Proves it re-lists on 410 Gone, survives
// dropped connections and 500s, and keeps its cache in step.
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { captureLog } from '../testing/log.ts';
import { KubeClient } from './client.ts';
import { Informer } from './informer.ts';
import { CONFIG_MAPS, type KubeObject } from './resources.ts';

type Step = (res: ServerResponse, url: URL) => void;

const cm = (name: string, rv: string): KubeObject => ({
  metadata: { name, namespace: 'ns', resourceVersion: rv },
});
const json = (res: ServerResponse, status: number, body: unknown) =>
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));

async function fakeApiserver(lists: Step[], watches: Step[]) {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const watch = url.searchParams.get('watch') === 'true';
    seen.push(`${watch ? 'watch' : 'list'}${watch ? `@${url.searchParams.get('resourceVersion')}` : ''}`);
    const step = (watch ? watches : lists).shift();
    if (step) step(res, url);
    else if (watch) setTimeout(() => res.end(), 5_000).unref();
    else json(res, 200, { items: [], metadata: { resourceVersion: '999' } });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [
      {
        name: 'fake',
        server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        skipTLSVerify: true,
      },
    ],
    users: [{ name: 'u', token: 't' }],
    contexts: [{ name: 'c', cluster: 'fake', user: 'u' }],
    currentContext: 'c',
  });
  return {
    client: new KubeClient(kc),
    seen,
    close: () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(r));
    },
  };
}

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function waitFor(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('Informer', () => {
  it('re-lists after 410 Gone, after a dropped watch and after API errors, without stopping', async () => {
    const api = await fakeApiserver(
      [
        (res) => json(res, 200, { items: [cm('a', '1')], metadata: { resourceVersion: '10' } }),
        // after 410: the world changed while the watch was gone (a deleted, b added)
        (res) => json(res, 200, { items: [cm('b', '20')], metadata: { resourceVersion: '20' } }),
        (res) => json(res, 500, { reason: 'InternalError', message: 'etcd unavailable' }),
        (res) =>
          json(res, 200, { items: [cm('b', '20'), cm('c', '30')], metadata: { resourceVersion: '30' } }),
      ],
      [
        (res) => {
          res.writeHead(200);
          res.write(`${JSON.stringify({ type: 'MODIFIED', object: cm('a', '11') })}\n`);
          res.end(
            `${JSON.stringify({ type: 'ERROR', object: { code: 410, reason: 'Expired', message: 'too old' } })}\n`,
          );
        },
        // a connection that breaks mid-stream
        (res) => {
          res.writeHead(200);
          res.write('{"type":"ADDED","obj');
          res.destroy();
        },
      ],
    );
    cleanups.push(api.close);
    const informer = new Informer<KubeObject>(api.client, CONFIG_MAPS, {
      logger: pino({ level: 'silent' }),
      maxBackoffMs: 50,
    });
    const events: string[] = [];
    informer.on((e, o) => events.push(`${e}:${o.metadata.name}@${o.metadata.resourceVersion}`));
    const stop = new AbortController();
    const running = informer.run(stop.signal);
    cleanups.push(async () => {
      stop.abort();
      await running;
    });

    await waitFor('c in cache', () => informer.get('ns', 'c') !== undefined);
    expect(events).toEqual(['add:a@1', 'update:a@11', 'add:b@20', 'delete:a@11', 'add:c@30']);
    expect(
      informer
        .list()
        .map((o) => o.metadata.name)
        .sort(),
    ).toEqual(['b', 'c']);
    expect(api.seen.slice(0, 6)).toEqual(['list', 'watch@10', 'list', 'watch@20', 'list', 'list']);
    expect(informer.relists).toBe(3);
  });

  it('re-watches from the last resourceVersion when the server ends a watch normally', async () => {
    const api = await fakeApiserver(
      [(res) => json(res, 200, { items: [], metadata: { resourceVersion: '5' } })],
      [
        (res) => {
          res.writeHead(200);
          res.write(`${JSON.stringify({ type: 'ADDED', object: cm('x', '6') })}\n`);
          res.end(
            `${JSON.stringify({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '8' } } })}\n`,
          );
        },
      ],
    );
    cleanups.push(api.close);
    const informer = new Informer<KubeObject>(api.client, CONFIG_MAPS, { logger: pino({ level: 'silent' }) });
    const stop = new AbortController();
    const running = informer.run(stop.signal);
    cleanups.push(async () => {
      stop.abort();
      await running;
    });
    await waitFor('second watch', () => api.seen.length >= 3);
    expect(api.seen.slice(0, 3)).toEqual(['list', 'watch@5', 'watch@8']);
    expect(informer.relists).toBe(1);
  });

  it('keeps multi-byte characters intact when the watch stream splits them across chunks', async () => {
    const value = 'Müller zahlt 5 €';
    const obj = { ...cm('u', '2'), data: { lookup: value } };
    const body = Buffer.from(`${JSON.stringify({ type: 'ADDED', object: obj })}\n`);
    const cutAt = body.indexOf(Buffer.from('ü')) + 1; // between the two bytes of "ü"
    const api = await fakeApiserver(
      [(res) => json(res, 200, { items: [], metadata: { resourceVersion: '1' } })],
      [
        (res) => {
          res.writeHead(200);
          res.flushHeaders();
          res.write(body.subarray(0, cutAt));
          // A pause so the halves reach the client as separate chunks.
          setTimeout(() => res.write(body.subarray(cutAt)), 50).unref();
        },
      ],
    );
    cleanups.push(api.close);
    const informer = new Informer<KubeObject & { data?: Record<string, string> }>(api.client, CONFIG_MAPS, {
      logger: pino({ level: 'silent' }),
    });
    const stop = new AbortController();
    const running = informer.run(stop.signal);
    cleanups.push(async () => {
      stop.abort();
      await running;
    });
    await waitFor('the watched object', () => informer.get('ns', 'u') !== undefined);
    expect(informer.get('ns', 'u')?.data?.lookup).toBe(value);
  });

  it('logs list and watch failures with the error itself (type, code, status, stack), not only its message', async () => {
    const api = await fakeApiserver(
      [
        (res) => json(res, 500, { reason: 'InternalError', message: 'etcd unavailable' }),
        (res) => json(res, 200, { items: [], metadata: { resourceVersion: '1' } }),
      ],
      [
        (res) => {
          res.writeHead(200);
          res.end(
            `${JSON.stringify({ type: 'ERROR', object: { code: 410, reason: 'Expired', message: 'too old' } })}\n`,
          );
        },
      ],
    );
    cleanups.push(api.close);
    const { log, lines } = captureLog();
    const informer = new Informer<KubeObject>(api.client, CONFIG_MAPS, { logger: log, maxBackoffMs: 20 });
    const stop = new AbortController();
    const running = informer.run(stop.signal);
    cleanups.push(async () => {
      stop.abort();
      await running;
    });
    await waitFor('the re-list after 410', () => informer.relists >= 2);
    const failed = lines.find((l) => l.msg === 'list/watch failed, retrying');
    expect(failed?.err).toMatchObject({ type: 'KubeApiError', code: 'KUBE_API', status: 500 });
    expect((failed?.err as { stack?: string } | undefined)?.stack).toContain('KubeApiError');
    const gone = lines.find((l) => l.msg === 'watch expired (410 Gone), re-listing');
    expect(gone?.err).toMatchObject({ type: 'KubeApiError', status: 410, reason: 'Expired' });
  });

  it('re-delivers cached objects on resync', async () => {
    const api = await fakeApiserver(
      [(res) => json(res, 200, { items: [cm('a', '1')], metadata: { resourceVersion: '1' } })],
      [],
    );
    cleanups.push(api.close);
    const informer = new Informer<KubeObject>(api.client, CONFIG_MAPS, {
      logger: pino({ level: 'silent' }),
      resyncMs: 50,
    });
    let updates = 0;
    informer.on((e) => {
      if (e === 'update') updates++;
    });
    const stop = new AbortController();
    const running = informer.run(stop.signal);
    cleanups.push(async () => {
      stop.abort();
      await running;
    });
    await waitFor('two resyncs', () => updates >= 2);
  });
});
