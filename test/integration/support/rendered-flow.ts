// One IntegrationFlow from a folder of YAML rendered into the WorkerConfig a `tally runtime` process
// runs, exactly as the operator (and `tally run`) builds it: cli/standalone.ts renderFlow, with the
// secrets only from the Secrets among the files. No JetStream resources are made here: callers run
// ensureFlowNats / ensureNamespaceStreams as the operator does.
import { type IntegrationFlowSpec, integrationFlowSpecSchema } from '../../../api/integration-flow.ts';
import type { WorkerConfig } from '../../../api/worker-config.ts';
import { loadFlowFolder, renderFlow } from '../../../cli/standalone.ts';

export interface RenderFlowOptions {
  /** Files and folders of YAML, as for `tally run`. */
  paths: string[];
  /** The IntegrationFlow to render (metadata.name). */
  flow: string;
  namespace: string;
  natsServers: string[];
  /** Change the parsed spec before it is rendered (retargetSinks, delivery settings). */
  override?: (spec: IntegrationFlowSpec) => void;
}

export interface RenderedFlow {
  spec: IntegrationFlowSpec;
  config: WorkerConfig;
  /** The render's secret variables with their values from the Secrets among the files. */
  env: Record<string, string>;
}

export async function renderFlowFromFiles(opts: RenderFlowOptions): Promise<RenderedFlow> {
  const folder = await loadFlowFolder(opts.paths);
  const flow = folder.flows.find((f) => f.metadata?.name === opts.flow);
  if (!flow) throw new Error(`no IntegrationFlow ${opts.flow} in ${opts.paths.join(', ')}`);
  const spec = integrationFlowSpecSchema.parse(flow.spec);
  opts.override?.(spec);
  const { config, env } = await renderFlow(
    folder,
    { namespace: opts.namespace, name: opts.flow, spec, natsServers: opts.natsServers },
    {},
  );
  return { spec, config, env };
}
