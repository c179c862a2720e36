// Standalone mode: the flows in a folder of YAML run as in-process workers without Kubernetes.
// The same pieces as the operator build the same WorkerConfig (render/worker-config.ts), create
// the same JetStream resources (nats/provisioner.ts: the namespace streams, the cross-reference
// bucket, each flow's streams) and run the same worker (runtime/flow).

import type { JetStreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { DestinationStream } from 'pino';
import { canonicalMappingSpecSchema } from '../api/canonical-mapping.ts';
import { type IntegrationFlowSpec, integrationFlowSpecSchema } from '../api/integration-flow.ts';
import { validateDocuments } from '../api/validate.ts';
import type { WorkerConfig } from '../api/worker-config.ts';
import { connectNats, ensureFlowNats, ensureNamespaceStreams } from '../operator/nats/provisioner.ts';
import type { ResolvedLookups } from '../operator/reconcile/lookups.ts';
import { tableFromConfigMap } from '../operator/reconcile/lookups.ts';
import { type ResolvedOutboundMapping, renderWorkerConfig } from '../operator/render/worker-config.ts';
import { assertNatsSinkStreams, natsSinksWithoutStream } from '../runtime/flow/sinks/nats-sink.ts';
import { type FlowWorkerHandle, runFlowWorker } from '../runtime/flow/worker.ts';
import { runSpecTests } from '../runtime/mapping/definition.ts';
import { formatTestResults } from '../runtime/mapping/index.ts';
import { createLogger } from '../runtime/telemetry/logger.ts';
import { xrefBucketName } from '../runtime/xref/keys.ts';
import { InputError } from './errors.ts';
import { expandPaths, loadDocuments } from './load-documents.ts';
import { formatText } from './validate.ts';

export interface StandaloneOptions {
  paths: string[];
  natsServers: string[];
  /** First worker HTTP port; each further flow takes the next one. 0 = free ports. */
  port?: number;
  host?: string;
  /** Change a flow before it runs (the demo points the ERP sink at its simulator). */
  override?: (name: string, spec: IntegrationFlowSpec) => void;
  namespace?: string;
  /** Where worker logs go (JSON lines); default stdout. */
  logDestination?: DestinationStream;
}

export interface StandaloneFlow {
  name: string;
  spec: IntegrationFlowSpec;
  worker: FlowWorkerHandle;
  stream: string;
  deadLetterStream: string;
  /**
   * NATS sinks whose subject no stream captures: they publish to core subscribers only, nothing is
   * stored (sink metric code "core"). For the caller to say so.
   */
  plainNatsSinks: { name: string; subject: string }[];
}

type Doc = {
  kind?: string;
  metadata?: { name?: string };
  spec?: unknown;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
};

export async function startStandalone(
  opts: StandaloneOptions,
): Promise<{ flows: StandaloneFlow[]; stop(): Promise<void> }> {
  const namespace = opts.namespace ?? 'default';
  const folder = await loadFlowFolder(opts.paths);
  const flows = folder.flows;
  if (flows.length === 0) throw new InputError(`no IntegrationFlow in ${opts.paths.join(', ')}`);

  const { nc, jsm } = await connectNats(opts.natsServers, 'tally-run');
  const started: StandaloneFlow[] = [];
  try {
    // As the operator's flow reconciler: the canonical and recon streams, then the namespace's
    // cross-reference bucket (same settings as the workers', so either may create it first).
    await ensureNamespaceStreams(jsm, namespace);
    await new Kvm(nc).create(xrefBucketName(namespace), { history: 5 });
    for (const [i, flow] of flows.entries()) {
      const name = flow.metadata!.name!;
      // Validated above; parsing again applies the defaults, as the apiserver would.
      const spec = integrationFlowSpecSchema.parse(flow.spec);
      opts.override?.(name, spec);
      const { config, env: secretEnv } = await renderFlow(folder, {
        namespace,
        name,
        spec,
        natsServers: opts.natsServers,
      });
      const nats = await ensureFlowNats(jsm, { namespace, name }, spec);
      // Before the worker starts: a sink that must store its events and cannot is a config error.
      const streamFor = (subject: string) => findStream(jsm, subject);
      await assertNatsSinkStreams(`${namespace}/${name}`, config.sinks, streamFor);
      const plainNatsSinks = (await natsSinksWithoutStream(config.sinks, streamFor)).map((s) => ({
        name: s.name,
        subject: s.subject,
      }));
      const logger = createLogger({
        flow: `${namespace}/${name}`,
        channel: spec.channel,
        ...(opts.logDestination ? { destination: opts.logDestination } : {}),
      });
      const worker = await runFlowWorker(config, {
        logger,
        env: {
          ...process.env,
          ...secretEnv,
          TALLY_HTTP_HOST: opts.host ?? '127.0.0.1',
          TALLY_HTTP_PORT: String(opts.port ? opts.port + i : 0),
        },
      });
      started.push({
        name,
        spec,
        worker,
        stream: nats.stream,
        deadLetterStream: nats.deadLetterStream,
        plainNatsSinks,
      });
    }
  } catch (err) {
    for (const f of started) await f.worker.stop();
    await nc.close();
    throw err;
  }
  return {
    flows: started,
    async stop() {
      for (const f of started) await f.worker.stop();
      await nc.drain().catch(() => undefined);
    },
  };
}

/** The stream capturing a subject, undefined when none does. */
async function findStream(jsm: JetStreamManager, subject: string): Promise<string | undefined> {
  try {
    return await jsm.streams.find(subject);
  } catch (err) {
    if ((err as Error).name === 'StreamNotFoundError') return undefined;
    throw err;
  }
}

/** The resources of a folder of YAML, validated, by kind: what `tally run` and the operator read. */
export interface FlowFolder {
  flows: Doc[];
  mappings: Map<string, Doc>;
  configMaps: Map<string, Record<string, string>>;
  secrets: Map<string, Record<string, string>>;
}

export async function loadFlowFolder(paths: string[]): Promise<FlowFolder> {
  const { documents, parseErrors } = await loadDocuments(await expandPaths(paths));
  if (parseErrors.length) throw new InputError(parseErrors.map((e) => `${e.file}: ${e.message}`).join('\n'));
  const report = validateDocuments(documents);
  if (!report.valid) throw new InputError(`the resources are invalid:\n${formatText(report)}`);
  const docs = documents.map((d) => d.doc as Doc).filter(Boolean);
  const byKind = (kind: string) => docs.filter((d) => d.kind === kind);
  return {
    flows: byKind('IntegrationFlow'),
    mappings: new Map(byKind('CanonicalMapping').map((m) => [m.metadata?.name ?? '', m])),
    configMaps: new Map(byKind('ConfigMap').map((c) => [c.metadata?.name ?? '', c.data ?? {}])),
    secrets: new Map(
      byKind('Secret').map((s) => [
        s.metadata?.name ?? '',
        { ...decodeData(s.data), ...(s.stringData ?? {}) } as Record<string, string>,
      ]),
    ),
  };
}

/**
 * One flow's WorkerConfig, built as the operator builds it: each mapping it uses (the inbound one and
 * the sinks' outbound ones) resolved with its lookup tables, and refused when its embedded tests
 * fail; then the secret variables the render names, from the folder's Secrets (else the environment).
 */
export async function renderFlow(
  folder: FlowFolder,
  flow: { namespace: string; name: string; spec: IntegrationFlowSpec; natsServers: string[] },
  environment: Readonly<Record<string, string | undefined>> = process.env,
): Promise<{ config: WorkerConfig; env: Record<string, string> }> {
  const { namespace, name, spec } = flow;
  const resolve = async (mappingName: string): Promise<ResolvedOutboundMapping> => {
    const doc = folder.mappings.get(mappingName);
    if (!doc)
      throw new InputError(`flow ${name}: CanonicalMapping ${mappingName} is not among the given files`);
    const mappingSpec = canonicalMappingSpecSchema.parse(doc.spec);
    const lookups: ResolvedLookups = {};
    for (const t of mappingSpec.lookups) {
      const cm = t.configMapRef ? folder.configMaps.get(t.configMapRef.name) : undefined;
      if (!t.inline && !cm) {
        throw new InputError(
          `mapping ${mappingName}: lookup table "${t.name}" reads ConfigMap ${t.configMapRef!.name}, which is not among the given files: add it`,
        );
      }
      const values = t.inline ?? tableFromConfigMap(cm!, t.configMapRef!.key, t.configMapRef!.name, t.name);
      lookups[t.name] = { values, ...(t.default !== undefined ? { default: t.default } : {}) };
    }
    const results = await runSpecTests(`${namespace}/${mappingName}`, mappingSpec, lookups);
    if (results.some((r) => !r.passed)) {
      throw new InputError(
        `mapping ${mappingName}: ${formatTestResults(`${namespace}/${mappingName}`, results)}`,
      );
    }
    return { name: mappingName, generation: 1, spec: mappingSpec, lookups };
  };
  const inbound = await resolve(spec.mappingRef.name);
  const outboundMappings = new Map<string, ResolvedOutboundMapping>();
  for (const sink of spec.sinks) {
    const ref = sink.http?.bodyMappingRef?.name;
    if (ref && !outboundMappings.has(ref)) outboundMappings.set(ref, await resolve(ref));
  }
  const { config, env } = renderWorkerConfig({
    namespace,
    name,
    spec,
    mapping: { name: inbound.name, generation: inbound.generation, spec: inbound.spec },
    lookups: inbound.lookups,
    outboundMappings,
    natsServers: flow.natsServers,
  });
  const values: Record<string, string> = {};
  for (const e of env) {
    const ref = e.valueFrom.secretKeyRef;
    const value = folder.secrets.get(ref.name)?.[ref.key] ?? environment[e.name];
    if (value === undefined) {
      throw new InputError(
        `flow ${name} needs Secret ${ref.name} key ${ref.key}: add the Secret to the folder or set ${e.name}`,
      );
    }
    values[e.name] = value;
  }
  return { config, env: values };
}

function decodeData(data: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(
    Object.entries(data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
  );
}

/**
 * Point a flow's sinks (and OAuth token endpoints) at other hosts, e.g. the example's
 * https://erp.example.com at a local simulator: every URL starting with a key gets that prefix
 * replaced. For the demo and tests; a cluster uses the URLs of the resources as written.
 */
export function retargetSinks(spec: IntegrationFlowSpec, hosts: Readonly<Record<string, string>>): void {
  const move = (url: string | undefined) => {
    if (url === undefined) return url;
    for (const [from, to] of Object.entries(hosts))
      if (url.startsWith(from)) return to + url.slice(from.length);
    return url;
  };
  for (const sink of spec.sinks) {
    const h = sink.http;
    if (!h) continue;
    h.url = move(h.url)!;
    if (h.update?.url) h.update.url = move(h.update.url);
    if (h.auth?.tokenUrl) h.auth.tokenUrl = move(h.auth.tokenUrl);
  }
}
