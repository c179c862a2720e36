// The worker's handle on the namespace's cross-reference store: a NATS connection of its own, made on
// first use and again after a failure, so a worker starts (and a flow that never reads a reference
// runs) while NATS is away; a read or write meanwhile fails as a transient error and the event waits.
import { connectState, type StateConnection } from '../flow/state/kv-store.ts';
import { type XrefStore, xrefStore } from './store.ts';

export interface XrefConnection extends XrefStore {
  close(): Promise<void>;
}

export function connectXrefStore(servers: string[], bucket: string, name: string): XrefConnection {
  let connecting: Promise<{ conn: StateConnection; store: XrefStore }> | undefined;
  let closed = false;
  const open = () => {
    connecting ??= connectState(servers, name, bucket, { history: 5 }).then(
      (conn) => ({ conn, store: xrefStore(conn.store) }),
      (err) => {
        connecting = undefined;
        throw err;
      },
    );
    return connecting;
  };
  const use = async <T>(f: (s: XrefStore) => Promise<T>): Promise<T> => {
    if (closed) throw new Error('the cross-reference store is closed');
    return f((await open()).store);
  };
  return {
    get: (e, k) => use((s) => s.get(e, k)),
    resolve: (e, sys, id) => use((s) => s.resolve(e, sys, id)),
    lookup: (e, from, id, to) => use((s) => s.lookup(e, from, id, to)),
    find: (e, sys, id) => use((s) => s.find(e, sys, id)),
    link: (input) => use((s) => s.link(input)),
    unlink: (e, k, sys) => use((s) => s.unlink(e, k, sys)),
    delete: (e, k) => use((s) => s.delete(e, k)),
    async *list(entity) {
      const { store } = await open();
      yield* store.list(entity);
    },
    async close() {
      closed = true;
      const c = await connecting?.catch(() => undefined);
      await c?.conn.close();
    },
  };
}
