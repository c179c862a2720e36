// An example flow (examples/<name>) rendered into the WorkerConfig the operator would mount, with
// the JetStream resources it needs made the way the operator makes them.
import { Kvm } from '@nats-io/kv';
import { type IntegrationFlowSpec, integrationFlowSpecSchema } from '../../../api/integration-flow.ts';
import type { WorkerConfig } from '../../../api/worker-config.ts';
import { loadFlowFolder, renderFlow } from '../../../cli/standalone.ts';
import { connectNats, ensureFlowNats, ensureNamespaceStreams } from '../../../operator/nats/provisioner.ts';
import { xrefBucketName } from '../../../runtime/xref/keys.ts';
import { repoPath } from '../../harness/tools.ts';

export interface RenderedExampleFlow {
  name: string;
  spec: IntegrationFlowSpec;
  config: WorkerConfig;
  /** The secret variables the config names, with the values of the example's Secrets. */
  env: Record<string, string>;
  /** Namespace streams, cross-reference bucket and the flow's streams and consumers. */
  provision(natsServers?: string[]): Promise<void>;
}

export async function renderExampleFlow(
  example: string,
  opts: { namespace: string; natsServers: string[]; override?: (spec: IntegrationFlowSpec) => void },
): Promise<RenderedExampleFlow> {
  const folder = await loadFlowFolder([repoPath('examples', example)]);
  const doc = folder.flows[0];
  if (!doc) throw new Error(`no IntegrationFlow in examples/${example}`);
  const name = doc.metadata!.name!;
  const spec = integrationFlowSpecSchema.parse(doc.spec);
  opts.override?.(spec);
  const { config, env } = await renderFlow(
    folder,
    { namespace: opts.namespace, name, spec, natsServers: opts.natsServers },
    {},
  );
  return {
    name,
    spec,
    config,
    env,
    provision: async (natsServers = opts.natsServers) => {
      const { nc, jsm } = await connectNats(natsServers, 'tally-kube-test');
      try {
        await ensureNamespaceStreams(jsm, opts.namespace);
        await new Kvm(nc).create(xrefBucketName(opts.namespace), { history: 5 });
        await ensureFlowNats(jsm, { namespace: opts.namespace, name }, spec);
      } finally {
        await nc.close();
      }
    },
  };
}
