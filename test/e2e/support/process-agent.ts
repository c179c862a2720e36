// A stand-in for the kubelet (none exists on this machine): runs a Deployment's pod template as
// local processes, exactly as rendered — the container's args against the image's entrypoint
// (this repository's `tally` binary), its env with secretKeyRefs and fieldRefs resolved through
// the API, its ConfigMap volumes written to a folder that stands in for the mount path, and its
// readiness probe honoured. The one liberty: the container port is mapped to a free loopback port
// (TALLY_HTTP_PORT/TALLY_HTTP_HOST), as a pod IP would be.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempDir, removeTempDir } from '../../harness/cleanup.ts';
import { runKubectl } from '../../harness/kubectl.ts';
import { freePort } from '../../harness/ports.ts';
import { type ChildHandle, spawnChild, waitForHttp } from '../../harness/process.ts';
import { repoPath } from '../../harness/tools.ts';

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string }; fieldRef?: { fieldPath: string } };
}
interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  ports?: { name?: string; containerPort: number }[];
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  volumeMounts?: { name: string; mountPath: string }[];
}
export interface PodTemplate {
  metadata: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: { containers: Container[]; volumes?: { name: string; configMap?: { name: string } }[] };
}

export interface RunningPod {
  name: string;
  port: number;
  url: string;
  child: ChildHandle;
  /** The pod template annotations it was started from (e.g. the config hash). */
  annotations: Record<string, string>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

async function kubectlJson<T>(kubeconfig: string, args: string[]): Promise<T> {
  const r = await runKubectl([...args, '-o', 'json'], { kubeconfig });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

export async function readDeployment(kubeconfig: string, namespace: string, name: string) {
  return kubectlJson<{ metadata: { generation: number }; spec: { replicas: number; template: PodTemplate } }>(
    kubeconfig,
    ['get', 'deployment', name, '-n', namespace],
  );
}

/** Starts one replica of the Deployment's pod template. */
export async function runPod(
  kubeconfig: string,
  namespace: string,
  deployment: string,
  index = 0,
): Promise<RunningPod> {
  const { spec } = await readDeployment(kubeconfig, namespace, deployment);
  const template = spec.template;
  const container = template.spec.containers[0]!;
  const podName = `${deployment}-local-${index}`;
  const dir = makeTempDir(`pod-${podName}`);

  // Volumes: each ConfigMap mount becomes a folder; paths in args are rewritten to it.
  const mounts = new Map<string, string>();
  for (const m of container.volumeMounts ?? []) {
    const vol = template.spec.volumes?.find((v) => v.name === m.name);
    if (!vol?.configMap) continue;
    const cm = await kubectlJson<{ data?: Record<string, string> }>(kubeconfig, [
      'get',
      'configmap',
      vol.configMap.name,
      '-n',
      namespace,
    ]);
    const local = join(dir, 'mounts', m.name);
    mkdirSync(local, { recursive: true });
    for (const [k, v] of Object.entries(cm.data ?? {})) writeFileSync(join(local, k), v);
    mounts.set(m.mountPath, local);
  }
  const rewrite = (arg: string) => {
    for (const [mountPath, local] of mounts)
      if (arg.startsWith(`${mountPath}/`)) return local + arg.slice(mountPath.length);
    return arg;
  };

  const env: Record<string, string> = {};
  for (const e of container.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.secretKeyRef) {
      const s = await kubectlJson<{ data?: Record<string, string> }>(kubeconfig, [
        'get',
        'secret',
        e.valueFrom.secretKeyRef.name,
        '-n',
        namespace,
      ]);
      const b64 = s.data?.[e.valueFrom.secretKeyRef.key];
      if (b64 === undefined)
        throw new Error(`secret ${e.valueFrom.secretKeyRef.name} lacks key ${e.valueFrom.secretKeyRef.key}`);
      env[e.name] = Buffer.from(b64, 'base64').toString('utf8');
    } else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.name') env[e.name] = podName;
    else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.namespace') env[e.name] = namespace;
  }

  const port = await freePort();
  if (container.command)
    throw new Error('the agent runs the image entrypoint; a command override is not expected');
  const child = spawnChild({
    name: podName,
    // The image's ENTRYPOINT (see Dockerfile): node bin/tally.mjs
    command: process.execPath,
    args: [repoPath('bin/tally.mjs'), ...(container.args ?? []).map(rewrite)],
    logFile: join(dir, 'container.log'),
    cwd: repoPath(''),
    env: {
      PATH: process.env.PATH,
      HOME: dir,
      ...env,
      TALLY_HTTP_PORT: String(port),
      TALLY_HTTP_HOST: '127.0.0.1',
    },
    orphanDir: dir,
  });
  const url = `http://127.0.0.1:${port}`;
  const probe = container.readinessProbe?.httpGet;
  if (probe) await waitForHttp(`${url}${probe.path}`, { children: [child], timeoutMs: 30_000 });
  return {
    name: podName,
    port,
    url,
    child,
    annotations: template.metadata.annotations ?? {},
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      await child.stop({ signal, graceMs: 25_000 });
      removeTempDir(dir);
    },
  };
}
