// A real single-node Kubernetes cluster for the kube tier (docs/kubernetes-testing.md): etcd,
// kube-apiserver, containerd 2 (CRI, runc, bridge CNI), kubelet, kube-controller-manager,
// kube-scheduler and kube-proxy (iptables), all from tools/install.sh --kube. The node is
// system:node:<name> under Node,RBAC authorization with NodeRestriction. No CoreDNS: pods use the
// host's resolv.conf and reach Services by ClusterIP or the KUBERNETES_SERVICE_* / <NAME>_SERVICE_*
// environment variables. No registry: images come from `docker save` tarballs imported into
// containerd's k8s.io namespace, so pods use imagePullPolicy: Never.
//
// Needs root on Linux (cgroups, a bridge, iptables, mounts). One cluster per machine (a lock in
// /run/tally-cluster). stop() undoes every host change (see cluster-host.ts); a run killed hard is
// cleaned up by the next start, or by `node test/harness/cluster-cli.ts down`.
import { spawn } from 'node:child_process';
import { accessSync, closeSync, constants, mkdirSync, mkdtempSync, openSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { keepTempDirs } from './cleanup.ts';
import { runCommand } from './cluster-exec.ts';
import {
  acquireClusterLock,
  type ClusterNetwork,
  type ClusterState,
  clusterStateDir,
  hostConflicts,
  killLeftovers,
  releaseClusterLock,
  removeNetwork,
  removePodCgroups,
  restoreFirewall,
  restoreSysctls,
  setUpNetwork,
  snapshotHost,
  unmountUnder,
  writeClusterState,
} from './cluster-host.ts';
import { type ClusterPki, createClusterPki } from './cluster-pki.ts';
import { HarnessError, HarnessErrorCode } from './errors.ts';
import { type KubectlOptions, type KubectlResult, runKubectl } from './kubectl.ts';
import { writeKubeconfig } from './pki.ts';
import { freePort } from './ports.ts';
import {
  type ChildHandle,
  httpGet,
  spawnChild,
  type TlsMaterial,
  waitForHttp,
  waitUntil,
} from './process.ts';
import { toolsBinDir } from './tools.ts';

/** What tools/install.sh --kube installs for the cluster (besides helm for the chart). */
export const CLUSTER_BINARIES = [
  'etcd',
  'kube-apiserver',
  'kubectl',
  'kubelet',
  'kube-controller-manager',
  'kube-scheduler',
  'kube-proxy',
  'containerd',
  'containerd-shim-runc-v2',
  'ctr',
] as const;
export type ClusterBinary = (typeof CLUSTER_BINARIES)[number];

/** Host programs the cluster runs or that its components call. */
export const HOST_PREREQUISITES = {
  runc: '/usr/sbin/runc',
  cniBridge: '/usr/lib/cni/bridge',
  cniHostLocal: '/usr/lib/cni/host-local',
  cniLoopback: '/usr/lib/cni/loopback',
} as const;
export const HOST_COMMANDS = [
  'ip',
  'iptables',
  'iptables-save',
  'iptables-restore',
  'nft',
  'openssl',
  'mount',
];

export const DEFAULT_NETWORK: ClusterNetwork = {
  bridge: 'tally0',
  nodeIp: '10.88.0.1',
  podCidr: '10.88.0.0/16',
  serviceCidr: '10.0.0.0/24',
};

export interface ClusterOptions {
  /** Default `tally-node`. */
  nodeName?: string;
  network?: Partial<ClusterNetwork>;
  /** `docker save` tarballs imported into containerd (namespace k8s.io) before start() resolves; the first one should hold the sandbox image. */
  images?: readonly string[];
  /** The sandbox ("pause") image reference pinned in containerd's config. */
  sandboxImage: string;
  /** Keep the dir (logs, certs, data) after stop(). Also TALLY_KEEP_TMP=1. */
  keep?: boolean;
  /** Budget for the whole start; default 240 000 ms. */
  startTimeoutMs?: number;
  /** Progress lines; default stderr. */
  log?: (line: string) => void;
  /** Tear down on SIGINT/SIGTERM/SIGHUP, then die of the signal; default true. */
  handleSignals?: boolean;
}

export interface Cluster {
  readonly nodeName: string;
  readonly network: ClusterNetwork;
  /** https://<node IP>:<port> */
  readonly apiServerUrl: string;
  readonly dir: string;
  /** Kubeconfig of `tally-admin` (system:masters). */
  readonly adminKubeconfig: string;
  readonly caFile: string;
  readonly containerdSocket: string;
  /** Seconds per start phase, and `total`. */
  readonly timings: Readonly<Record<string, number>>;
  /** kubectl as admin unless `kubeconfig` is given; never throws on a non-zero exit. */
  kubectl(args: readonly string[], options?: KubectlOptions): Promise<KubectlResult>;
  /** `ctr images import` of a `docker save` tarball into the k8s.io namespace. */
  importImage(tar: string): Promise<void>;
  /** Log file of a component (etcd, kube-apiserver, containerd, kubelet, ...). */
  logFile(component: string): string;
  /** Issues a client cert and returns a kubeconfig path for it. */
  addUser(name: string, groups?: readonly string[]): Promise<string>;
  /**
   * Deletes every pod, stops the components, kills leftovers, unmounts, removes the bridge and
   * cgroups, restores firewall and sysctls; resolves to what could not be restored ([] = clean).
   * Idempotent.
   */
  stop(): Promise<string[]>;
}

function binPath(name: ClusterBinary): string {
  const path = join(toolsBinDir(), name);
  try {
    accessSync(path, constants.X_OK);
  } catch (cause) {
    throw new HarnessError(
      HarnessErrorCode.ToolMissing,
      `${name} not found at ${path}: run \`bash tools/install.sh --kube\``,
      { cause },
    );
  }
  return path;
}

/** The first host address of a CIDR (the `kubernetes` Service IP of a service range). */
function firstHost(cidr: string): string {
  const [ip] = cidr.split('/');
  const n = ip!.split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0) + 1;
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

/** GET over https without verifying the serving cert (kcm/scheduler serve a self-signed one). */
function insecureGetStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { rejectUnauthorized: false, timeout: 3000, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

function containerdConfig(dir: string, socket: string, sandboxImage: string): string {
  const c = join(dir, 'containerd');
  return `version = 3
root = "${c}/root"
state = "${c}/state"
# NRI would listen on /var/run/nri; tracing and the non-overlay snapshotters are not needed.
disabled_plugins = ["io.containerd.nri.v1.nri", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.blockfile", "io.containerd.snapshotter.v1.erofs"]
[grpc]
  address = "${socket}"
[ttrpc]
  address = "${socket}.ttrpc"
[debug]
  address = "${c}/debug.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "${c}/opt"
[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "${sandboxImage}"
[plugins."io.containerd.cri.v1.runtime"]
  # Without it every sandbox fails (runc: "can't get final child's PID from pipe: EOF"): setting
  # oom_score_adj below containerd's own needs CAP_SYS_RESOURCE, which this machine does not grant.
  restrict_oom_score_adj = true
  # Network namespaces under our state dir, not /var/run/netns.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "${HOST_PREREQUISITES.runc}"
        Root = "${c}/runc"
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "${dir}/net.d"
    max_conf_num = 1
`;
}

function cniConfig(dir: string, n: ClusterNetwork): string {
  return `${JSON.stringify(
    {
      cniVersion: '1.0.0',
      name: 'tally',
      plugins: [
        {
          type: 'bridge',
          bridge: n.bridge,
          isGateway: true,
          ipMasq: false,
          hairpinMode: true,
          ipam: {
            type: 'host-local',
            ranges: [[{ subnet: n.podCidr, gateway: n.nodeIp }]],
            routes: [{ dst: '0.0.0.0/0' }],
            dataDir: join(dir, 'cni-ipam'),
          },
        },
      ],
    },
    null,
    2,
  )}\n`;
}

function kubeletConfig(o: {
  dir: string;
  socket: string;
  nodeIp: string;
  port: number;
  healthzPort: number;
  pki: ClusterPki;
}): string {
  return `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine has cgroup v1 (hybrid); kubelet 1.35+ refuses it unless told.
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://${o.socket}
address: ${o.nodeIp}
port: ${o.port}
healthzBindAddress: 127.0.0.1
healthzPort: ${o.healthzPort}
readOnlyPort: 0
tlsCertFile: ${o.pki.kubeletServing.cert}
tlsPrivateKeyFile: ${o.pki.kubeletServing.key}
rotateCertificates: false
serverTLSBootstrap: false
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: ${o.pki.ca.cert}}
authorization:
  mode: Webhook
staticPodPath: ${o.dir}/manifests
failSwapOn: false
resolvConf: /etc/resolv.conf
serializeImagePulls: false
# No registry: an image the GC removes never comes back.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%"}
`;
}

export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const t0 = performance.now();
  const log = options.log ?? ((line: string) => process.stderr.write(`[tally cluster] ${line}\n`));
  if (process.platform !== 'linux' || process.getuid?.() !== 0) {
    throw new HarnessError(HarnessErrorCode.CommandFailed, 'startCluster needs root on Linux');
  }
  const bins = Object.fromEntries(CLUSTER_BINARIES.map((b) => [b, binPath(b)])) as Record<
    ClusterBinary,
    string
  >;
  const nodeName = options.nodeName ?? 'tally-node';
  const network: ClusterNetwork = { ...DEFAULT_NETWORK, ...options.network };
  const serviceIp = firstHost(network.serviceCidr);
  const deadline = Date.now() + (options.startTimeoutMs ?? 240_000);
  const remaining = (): number => Math.max(1000, deadline - Date.now());
  const keep = options.keep === true || keepTempDirs();
  // Not makeTempDir: its exit hook would `rm -rf` the dir while container filesystems are still
  // mounted in it. stop() (or the recovery of a killed run) unmounts first, then removes it.
  const dir = mkdtempSync(join(tmpdir(), 'tally-cluster-'));
  const logs = join(dir, 'logs');
  mkdirSync(logs);
  const socket = join(dir, 'containerd', 'containerd.sock');
  const env = {
    ...process.env,
    PATH: `${toolsBinDir()}:${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}`,
  };
  const timings: Record<string, number> = {};
  const mark = (phase: string, since: number): void => {
    timings[phase] = Math.round(performance.now() - since) / 1000;
  };

  const state: ClusterState = await acquireClusterLock({ dir, containerdSocket: socket, network }, log);
  // Should this process die without stop() (SIGKILL; a test runner killing its worker on Ctrl-C),
  // the janitor, in its own session, undoes everything as `cluster-cli.ts down` would.
  const janitorLog = openSync(join(clusterStateDir(), 'janitor.log'), 'a');
  const janitor = spawn(
    process.execPath,
    [
      fileURLToPath(new URL('./cluster-cli.ts', import.meta.url)),
      'janitor',
      String(state.ownerPid),
      state.ownerStart,
    ],
    { detached: true, stdio: ['ignore', janitorLog, janitorLog] },
  );
  closeSync(janitorLog);
  janitor.unref();
  state.janitorPid = janitor.pid;
  await writeClusterState(state);
  const children = new Map<string, ChildHandle>();
  const start = async (name: string, command: string, args: readonly string[]): Promise<ChildHandle> => {
    const child = spawnChild({ name, command, args, env, logFile: join(logs, `${name}.log`) });
    children.set(name, child);
    state.children.push({ name, pid: child.pid });
    await writeClusterState(state);
    return child;
  };

  let pki: ClusterPki | undefined;
  let apiServerUrl = '';
  let stopping: Promise<string[]> | undefined;
  const stopChild = async (name: string, graceMs = 10_000): Promise<void> => {
    await children.get(name)?.stop({ graceMs });
  };
  const stop = (): Promise<string[]> => {
    stopping ??= (async () => {
      const t = performance.now();
      const problems: string[] = [];
      try {
        await Promise.all([stopChild('kube-controller-manager'), stopChild('kube-scheduler')]);
        // The kubelet tears the pods down (CNI DEL, unmounts) while it and the apiserver are up.
        if (children.get('kube-apiserver')?.running() && children.get('kubelet')?.running() && pki) {
          const kc = pki.kubeconfigs.admin;
          await runKubectl(['delete', 'pods', '--all', '-A', '--grace-period=1', '--wait=false'], {
            kubeconfig: kc,
            timeoutMs: 30_000,
          });
          const until = Date.now() + 45_000;
          while (Date.now() < until) {
            const r = await runKubectl(['get', 'pods', '-A', '-o', 'name'], {
              kubeconfig: kc,
              timeoutMs: 10_000,
            });
            if (r.code === 0 && r.stdout.trim() === '') break;
            await sleep(500);
          }
        }
        await Promise.all([stopChild('kube-proxy'), stopChild('kubelet')]);
        await stopChild('containerd', 15_000);
        if (state.snapshot) await killLeftovers(socket, log);
        await stopChild('kube-apiserver');
        await stopChild('etcd');
        for (const name of children.keys()) await stopChild(name);
      } finally {
        await unmountUnder(dir, log);
        if (state.snapshot) {
          await removeNetwork(network, state.snapshot);
          await removePodCgroups(log);
          problems.push(...(await restoreFirewall(network, state.snapshot, log)));
          problems.push(...restoreSysctls(state.snapshot, log));
        }
        await releaseClusterLock();
        if (state.janitorPid !== undefined) {
          try {
            process.kill(state.janitorPid, 'SIGTERM'); // it would exit on its own within 0.5 s
          } catch {
            // already gone
          }
        }
        if (keep) log(`kept ${dir}`);
        else await rm(dir, { recursive: true, force: true, maxRetries: 3 });
        removeSignalHandlers();
      }
      for (const p of problems) log(`WARNING: ${p}`);
      log(
        `cluster stopped in ${((performance.now() - t) / 1000).toFixed(1)}s; host ${problems.length ? 'NOT fully restored' : 'restored'}`,
      );
      return problems;
    })();
    return stopping;
  };

  // Ctrl-C / SIGTERM of the test process: tear down, then die of the signal as we would have.
  const onSignal = (signal: NodeJS.Signals): void => {
    log(`${signal}: stopping the cluster`);
    const timer = setTimeout(() => process.kill(process.pid, 'SIGKILL'), 90_000);
    void stop().finally(() => {
      clearTimeout(timer);
      removeSignalHandlers();
      process.kill(process.pid, signal);
    });
  };
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  if (options.handleSignals !== false) for (const s of signals) process.on(s, onSignal);
  function removeSignalHandlers(): void {
    for (const s of signals) process.off(s, onSignal);
  }

  try {
    let t = performance.now();
    const snapshot = await snapshotHost(network);
    const conflicts = hostConflicts(network, snapshot);
    // Nothing of the host is touched (nor undone by stop()) unless it is free for us.
    if (conflicts.length) {
      throw new HarnessError(
        HarnessErrorCode.CommandFailed,
        `cannot start the cluster: ${conflicts.join('; ')}`,
      );
    }
    state.snapshot = snapshot;
    await writeClusterState(state);
    await setUpNetwork(network);
    mark('network', t);

    t = performance.now();
    const [
      etcdPort,
      peerPort,
      apiPort,
      kubeletPort,
      kubeletHealthz,
      kcmPort,
      schedPort,
      proxyMetrics,
      proxyHealthz,
    ] = await Promise.all([
      freePort(),
      freePort(),
      freePort(network.nodeIp),
      freePort(network.nodeIp),
      freePort(),
      freePort(),
      freePort(),
      freePort(),
      freePort(),
    ]);
    apiServerUrl = `https://${network.nodeIp}:${apiPort}`;
    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    const peerUrl = `http://127.0.0.1:${peerPort}`;
    const etcd = await start('etcd', bins.etcd, [
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=default=${peerUrl}`,
      '--listen-metrics-urls=',
      '--unsafe-no-fsync=true',
    ]);
    pki = await createClusterPki(join(dir, 'pki'), {
      nodeName,
      nodeIp: network.nodeIp,
      serviceIp,
      apiServerUrl,
      kubeconfigDir: dir,
    });
    mark('pki', t);
    const p = pki;
    const [ca, cert, key] = await Promise.all([
      readFile(p.ca.cert),
      readFile(p.clients.admin.cert),
      readFile(p.clients.admin.key),
    ]);
    const tls: TlsMaterial = { ca, cert, key };
    await waitForHttp(`${etcdUrl}/health`, {
      timeoutMs: remaining(),
      children: [etcd],
      accept: (r) => r.status === 200 && r.body.includes('"true"'),
    });
    mark('etcd', t);

    t = performance.now();
    const apiServer = await start('kube-apiserver', bins['kube-apiserver'], [
      `--etcd-servers=${etcdUrl}`,
      `--advertise-address=${network.nodeIp}`,
      `--bind-address=${network.nodeIp}`,
      `--secure-port=${apiPort}`,
      `--cert-dir=${p.dir}`,
      `--tls-cert-file=${p.apiserver.cert}`,
      `--tls-private-key-file=${p.apiserver.key}`,
      `--client-ca-file=${p.ca.cert}`,
      '--authorization-mode=Node,RBAC',
      '--enable-admission-plugins=NodeRestriction',
      `--service-account-key-file=${p.serviceAccountPublicKey}`,
      `--service-account-signing-key-file=${p.serviceAccountKey}`,
      '--service-account-issuer=https://kubernetes.default.svc',
      `--service-cluster-ip-range=${network.serviceCidr}`,
      '--allow-privileged=true',
      `--kubelet-client-certificate=${p.apiserverKubeletClient.cert}`,
      `--kubelet-client-key=${p.apiserverKubeletClient.key}`,
      `--kubelet-certificate-authority=${p.ca.cert}`,
      '--kubelet-preferred-address-types=InternalIP',
      '--profiling=false',
    ]);

    // containerd while the apiserver starts.
    const tc = performance.now();
    mkdirSync(join(dir, 'containerd'), { recursive: true });
    mkdirSync(join(dir, 'net.d'));
    mkdirSync(join(dir, 'manifests'));
    await writeFile(
      join(dir, 'containerd', 'config.toml'),
      containerdConfig(dir, socket, options.sandboxImage),
    );
    await writeFile(join(dir, 'net.d', '10-tally.conflist'), cniConfig(dir, network));
    const containerd = await start('containerd', bins.containerd, [
      '--config',
      join(dir, 'containerd', 'config.toml'),
    ]);
    await waitUntil(
      'containerd',
      async () =>
        (await runCommand(bins.ctr, ['--address', socket, 'version'], { timeoutMs: 5000 })).code === 0,
      { timeoutMs: remaining(), children: [containerd], intervalMs: 200 },
    );
    mark('containerd', tc);
    const importImage = async (tar: string): Promise<void> => {
      const r = await runCommand(bins.ctr, ['--address', socket, '-n', 'k8s.io', 'images', 'import', tar], {
        timeoutMs: 300_000,
      });
      if (r.code !== 0) {
        throw new HarnessError(
          HarnessErrorCode.CommandFailed,
          `ctr images import ${tar} exited ${r.code}: ${(r.stderr || r.stdout).trim()}`,
        );
      }
    };
    // The sandbox image first (pods need it), the others in the background until the end of start.
    const ti = performance.now();
    const [first, ...rest] = options.images ?? [];
    if (first !== undefined) await importImage(first);
    const imports = (async () => {
      for (const tar of rest) await importImage(tar);
      mark('images', ti);
    })();
    imports.catch(() => undefined);

    await waitForHttp(`${apiServerUrl}/readyz`, {
      tls,
      timeoutMs: remaining(),
      children: [etcd, apiServer],
      intervalMs: 200,
    });
    mark('apiserver', t);

    t = performance.now();
    await writeFile(
      join(dir, 'kubelet.yaml'),
      kubeletConfig({
        dir,
        socket,
        nodeIp: network.nodeIp,
        port: kubeletPort,
        healthzPort: kubeletHealthz,
        pki: p,
      }),
    );
    const kubelet = await start('kubelet', bins.kubelet, [
      `--config=${join(dir, 'kubelet.yaml')}`,
      `--kubeconfig=${p.kubeconfigs.node}`,
      `--root-dir=${join(dir, 'kubelet')}`,
      `--cert-dir=${p.dir}`,
      `--hostname-override=${nodeName}`,
      `--node-ip=${network.nodeIp}`,
      '-v=1',
    ]);
    const kcm = await start('kube-controller-manager', bins['kube-controller-manager'], [
      `--kubeconfig=${p.kubeconfigs.controllerManager}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${kcmPort}`,
      '--leader-elect=false',
      `--service-account-private-key-file=${p.serviceAccountKey}`,
      `--root-ca-file=${p.ca.cert}`,
      '--use-service-account-credentials=true',
      `--cluster-signing-cert-file=${p.ca.cert}`,
      `--cluster-signing-key-file=${p.ca.key}`,
      `--service-cluster-ip-range=${network.serviceCidr}`,
      '--allocate-node-cidrs=false',
      '--controllers=*',
    ]);
    const scheduler = await start('kube-scheduler', bins['kube-scheduler'], [
      `--kubeconfig=${p.kubeconfigs.scheduler}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${schedPort}`,
      '--leader-elect=false',
    ]);
    // Before any Service traffic (the REJECT rules of setUpNetwork are the net underneath). The 0s
    // leave the host's conntrack sysctls alone.
    const proxy = await start('kube-proxy', bins['kube-proxy'], [
      `--kubeconfig=${p.kubeconfigs.proxy}`,
      `--hostname-override=${nodeName}`,
      '--proxy-mode=iptables',
      `--cluster-cidr=${network.podCidr}`,
      `--bind-address=${network.nodeIp}`,
      `--metrics-bind-address=127.0.0.1:${proxyMetrics}`,
      `--healthz-bind-address=127.0.0.1:${proxyHealthz}`,
      '--conntrack-max-per-core=0',
      '--conntrack-tcp-timeout-established=0',
      '--conntrack-tcp-timeout-close-wait=0',
      '--iptables-localhost-nodeports=false',
      `--nodeport-addresses=${network.nodeIp}/32`,
    ]);
    const all = [...children.values()];
    const getJson = async (path: string): Promise<{ status: number; body: unknown }> => {
      const r = await httpGet(`${apiServerUrl}${path}`, { tls });
      return { status: r.status, body: r.status === 200 ? JSON.parse(r.body) : r.body };
    };
    await waitUntil(
      `node ${nodeName} Ready`,
      async () => {
        const r = await getJson(`/api/v1/nodes/${nodeName}`);
        const conditions =
          (r.body as { status?: { conditions?: { type: string; status: string }[] } }).status?.conditions ??
          [];
        return conditions.some((c) => c.type === 'Ready' && c.status === 'True');
      },
      { timeoutMs: remaining(), children: [kubelet, containerd, apiServer], intervalMs: 250 },
    );
    mark('nodeReady', t);
    const tk = performance.now();
    await waitUntil(
      'controllers (kube-controller-manager, kube-scheduler healthz; ServiceAccount default; ConfigMap kube-root-ca.crt)',
      async () =>
        (await insecureGetStatus(`https://127.0.0.1:${kcmPort}/healthz`)) === 200 &&
        (await insecureGetStatus(`https://127.0.0.1:${schedPort}/healthz`)) === 200 &&
        (await getJson('/api/v1/namespaces/default/serviceaccounts/default')).status === 200 &&
        (await getJson('/api/v1/namespaces/default/configmaps/kube-root-ca.crt')).status === 200,
      { timeoutMs: remaining(), children: [kcm, scheduler, apiServer], intervalMs: 250 },
    );
    mark('controllers', tk);
    await waitForHttp(`http://127.0.0.1:${proxyHealthz}/healthz`, {
      timeoutMs: remaining(),
      children: [proxy],
      intervalMs: 250,
    });
    mark('kubeProxy', tk);
    let importTimer: NodeJS.Timeout | undefined;
    await Promise.race([
      imports,
      new Promise<never>((_, reject) => {
        importTimer = setTimeout(
          () =>
            reject(new HarnessError(HarnessErrorCode.ReadyTimeout, 'image import did not finish in time')),
          remaining(),
        );
      }),
    ]).finally(() => clearTimeout(importTimer));
    for (const c of all) {
      const info = c.exitInfo();
      if (info)
        throw new HarnessError(
          HarnessErrorCode.ChildExited,
          `${c.name} exited during start:\n${c.logTail()}`,
        );
    }
    timings.total = Math.round(performance.now() - t0) / 1000;
    log(
      `cluster up at ${apiServerUrl} in ${timings.total}s (${Object.entries(timings)
        .filter(([k]) => k !== 'total')
        .map(([k, v]) => `${k} ${v}s`)
        .join(', ')}); dir ${dir}`,
    );

    return {
      nodeName,
      network,
      apiServerUrl,
      dir,
      adminKubeconfig: p.kubeconfigs.admin,
      caFile: p.ca.cert,
      containerdSocket: socket,
      timings,
      kubectl: (args, kubectlOptions = {}) =>
        runKubectl(args, { ...kubectlOptions, kubeconfig: kubectlOptions.kubeconfig ?? p.kubeconfigs.admin }),
      importImage,
      logFile: (component) => join(logs, `${component}.log`),
      addUser: async (name, groups = []) => {
        const path = join(dir, `${name.replace(/[^A-Za-z0-9_.-]/g, '_')}.kubeconfig`);
        const client = await p.issueClientCert(name, groups);
        await writeKubeconfig(path, { server: apiServerUrl, caFile: p.ca.cert, client, user: name });
        return path;
      },
      stop,
    };
  } catch (error) {
    log(`start failed: ${(error as Error).message.split('\n')[0]}; tearing down (logs in ${dir}/logs)`);
    if (!keep) {
      // The logs of a failed start outlive the dir.
      const saved = mkdtempSync(join(tmpdir(), 'tally-cluster-failed-'));
      await runCommand('cp', ['-r', logs, saved]);
      log(`logs of the failed start kept in ${saved}/logs`);
    }
    await stop();
    throw error;
  }
}
