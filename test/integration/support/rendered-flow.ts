// One IntegrationFlow from a folder of YAML rendered into the WorkerConfig a `tally runtime` process
// runs, exactly as the operator (and `tally run`, cli/standalone.ts) builds it: the spec parsed with
// its defaults, its inbound and outbound CanonicalMappings resolved (lookup tables read, their tests
// run), then operator/render/worker-config.ts. The secrets the render asks for (its `env` list of
// secretKeyRefs) are read from the Secrets among the files. No JetStream resources are made here:
// callers run ensureFlowNats / ensureNamespaceStreams as the operator does.
import { canonicalMappingSpecSchema } from '../../../api/canonical-mapping.ts';
import { type IntegrationFlowSpec, integrationFlowSpecSchema } from '../../../api/integration-flow.ts';
import { validateDocuments } from '../../../api/validate.ts';
import type { WorkerConfig } from '../../../api/worker-config.ts';
import { expandPaths, loadDocuments } from '../../../cli/load-documents.ts';
import { type ResolvedLookups, tableFromConfigMap } from '../../../operator/reconcile/lookups.ts';
import { type ResolvedOutboundMapping, renderWorkerConfig } from '../../../operator/render/worker-config.ts';
import { runSpecTests } from '../../../runtime/mapping/definition.ts';
import { formatTestResults } from '../../../runtime/mapping/index.ts';

type Doc = {
  kind?: string;
  metadata?: { name?: string };
  spec?: unknown;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
};

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
  const { documents, parseErrors } = await loadDocuments(await expandPaths(opts.paths));
  if (parseErrors.length) throw new Error(parseErrors.map((e) => `${e.file}: ${e.message}`).join('\n'));
  const report = validateDocuments(documents);
  if (!report.valid) throw new Error(`the resources are invalid: ${JSON.stringify(report)}`);
  const docs = documents.map((d) => d.doc as Doc).filter(Boolean);
  const byKind = (kind: string) => docs.filter((d) => d.kind === kind);
  const secrets = new Map(
    byKind('Secret').map((s) => [
      s.metadata?.name ?? '',
      {
        ...Object.fromEntries(
          Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
        ),
        ...(s.stringData ?? {}),
      } as Record<string, string>,
    ]),
  );
  const configMaps = new Map(byKind('ConfigMap').map((c) => [c.metadata?.name ?? '', c.data ?? {}]));
  const mappings = new Map(byKind('CanonicalMapping').map((m) => [m.metadata?.name ?? '', m]));
  const flow = byKind('IntegrationFlow').find((f) => f.metadata?.name === opts.flow);
  if (!flow) throw new Error(`no IntegrationFlow ${opts.flow} in ${opts.paths.join(', ')}`);

  const spec = integrationFlowSpecSchema.parse(flow.spec);
  opts.override?.(spec);
  const resolve = async (name: string): Promise<ResolvedOutboundMapping> => {
    const doc = mappings.get(name);
    if (!doc) throw new Error(`CanonicalMapping ${name} is not among the given files`);
    const mappingSpec = canonicalMappingSpecSchema.parse(doc.spec);
    const lookups: ResolvedLookups = {};
    for (const t of mappingSpec.lookups) {
      const cm = t.configMapRef ? configMaps.get(t.configMapRef.name) : undefined;
      if (!t.inline && !cm) throw new Error(`mapping ${name}: ConfigMap of lookup ${t.name} is missing`);
      const values = t.inline ?? tableFromConfigMap(cm!, t.configMapRef!.key, t.configMapRef!.name, t.name);
      lookups[t.name] = { values, ...(t.default !== undefined ? { default: t.default } : {}) };
    }
    const results = await runSpecTests(`${opts.namespace}/${name}`, mappingSpec, lookups);
    if (results.some((r) => !r.passed)) {
      throw new Error(`mapping ${name}: ${formatTestResults(`${opts.namespace}/${name}`, results)}`);
    }
    return { name, generation: 1, spec: mappingSpec, lookups };
  };
  const inbound = await resolve(spec.mappingRef.name);
  const outboundMappings = new Map<string, ResolvedOutboundMapping>();
  for (const sink of spec.sinks) {
    const ref = sink.http?.bodyMappingRef?.name;
    if (ref && !outboundMappings.has(ref)) outboundMappings.set(ref, await resolve(ref));
  }
  const { config, env } = renderWorkerConfig({
    namespace: opts.namespace,
    name: opts.flow,
    spec,
    mapping: { name: inbound.name, generation: inbound.generation, spec: inbound.spec },
    lookups: inbound.lookups,
    outboundMappings,
    natsServers: opts.natsServers,
  });
  const values: Record<string, string> = {};
  for (const e of env) {
    const ref = e.valueFrom.secretKeyRef;
    const value = secrets.get(ref.name)?.[ref.key];
    if (value === undefined)
      throw new Error(`${e.name}: Secret ${ref.name} key ${ref.key} is not in the files`);
    values[e.name] = value;
  }
  return { spec, config, env: values };
}
