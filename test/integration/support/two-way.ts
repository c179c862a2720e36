// Example flows of the two-way sync run standalone for integration tests: their sinks pointed at the
// simulators, retries quick, worker logs collected as JSON objects, and the namespace's
// cross-reference store at hand.
import { Writable } from 'node:stream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { IntegrationFlowSpec } from '../../../api/integration-flow.ts';
import { retargetSinks, type StandaloneFlow, startStandalone } from '../../../cli/standalone.ts';
import { openKvState } from '../../../runtime/flow/state/kv-store.ts';
import { xrefBucketName } from '../../../runtime/xref/keys.ts';
import { type XrefStore, xrefStore } from '../../../runtime/xref/store.ts';

export interface ExampleFlows {
  flows: StandaloneFlow[];
  flow(name: string): StandaloneFlow;
  /** Every worker log line, parsed. */
  logs: Record<string, unknown>[];
  store: XrefStore;
  stop(): Promise<void>;
}

export async function startExampleFlows(opts: {
  nc: NatsConnection;
  natsUrl: string;
  namespace: string;
  paths: string[];
  /** Host prefixes of the example URLs -> simulator URLs. */
  hosts: Record<string, string>;
  tweak?: (name: string, spec: IntegrationFlowSpec) => void;
}): Promise<ExampleFlows> {
  const logs: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line) logs.push(JSON.parse(line));
      done();
    },
  });
  const standalone = await startStandalone({
    paths: opts.paths,
    natsServers: [opts.natsUrl],
    namespace: opts.namespace,
    logDestination: destination,
    override: (name, spec) => {
      retargetSinks(spec, opts.hosts);
      spec.replicas = 1;
      spec.delivery.initialBackoff = '200ms';
      spec.delivery.maxBackoff = '1s';
      opts.tweak?.(name, spec);
    },
  });
  const store = xrefStore(await openKvState(opts.nc, xrefBucketName(opts.namespace), { history: 5 }));
  return {
    flows: standalone.flows,
    flow: (name) => {
      const f = standalone.flows.find((x) => x.name === name);
      if (!f) throw new Error(`no flow ${name} running`);
      return f;
    },
    logs,
    store,
    stop: () => standalone.stop(),
  };
}
