// Master-data sink: each canonical Customer / Product (any entity) kept in the namespace's
// cross-reference store under its business key, with the ids other systems give it, so mappings
// resolve a channel's account or SKU to the canonical record ($customer, $product). The version
// guard of the store keeps an older event from replacing newer data.
import type { FlowWorkerConfig } from '../../../api/worker-config.ts';
import type { XrefStore } from '../../xref/store.ts';
import { FlowErrorCode, SinkError } from '../errors.ts';
import { StateStoreError } from '../state/kv-store.ts';
import { compileCapture } from './capture.ts';
import type { Sink } from './types.ts';

export type MasterDataSinkConfig = Extract<FlowWorkerConfig['sinks'][number], { type: 'masterData' }>;

export function createMasterDataSink(
  config: MasterDataSinkConfig,
  store: XrefStore,
  flow: string,
  observe: (code: string, seconds: number) => void = () => {},
): Sink {
  const links = compileCapture(config.name, { links: config.links });
  return {
    name: config.name,
    type: 'masterData',
    async deliver(event, _body, data) {
      const started = performance.now();
      try {
        await store.link({
          entity: config.entity,
          key: event.subject,
          ids: await links.links(data),
          provenance: { version: event.tallyversion, by: flow, at: new Date().toISOString() },
          data: { value: data, version: event.tallyversion },
        });
        observe('stored', (performance.now() - started) / 1000);
        return undefined;
      } catch (err) {
        observe('error', (performance.now() - started) / 1000);
        if (err instanceof StateStoreError) throw err; // transient: the store is away
        throw new SinkError(
          `sink ${config.name}: cannot keep ${config.entity} ${event.subject} as master data: ${(err as Error).message}`,
          { sink: config.name, permanent: false, code: FlowErrorCode.SinkUnavailable },
          { cause: err },
        );
      }
    },
    async close() {},
  };
}
