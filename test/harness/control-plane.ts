// A real Kubernetes control plane (etcd + kube-apiserver, no controller-manager, no kubelet), started
// the way controller-runtime's envtest does it: free loopback ports, a throwaway CA, client-cert users.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTempDir, removeTempDir } from './cleanup.ts';
import { HarnessError, HarnessErrorCode } from './errors.ts';
import { describeKubectl, type KubectlOptions, type KubectlResult, runKubectl } from './kubectl.ts';
import { createPki, writeKubeconfig } from './pki.ts';
import { freePort } from './ports.ts';
import {
  type ChildHandle,
  httpGet,
  spawnChild,
  type TlsMaterial,
  waitForHttp,
  waitUntil,
} from './process.ts';
import { toolPath } from './tools.ts';

export interface ControlPlaneOptions {
  /** Keep the temp dir (certs, kubeconfigs, logs, etcd data) after stop(). Also TALLY_KEEP_TMP=1. */
  keep?: boolean;
  /** Budget for the whole start; default 90 000 ms. */
  startTimeoutMs?: number;
  /** Extra flags (`--name=value`) for kube-apiserver / etcd. */
  apiServerArgs?: readonly string[];
  etcdArgs?: readonly string[];
  /** The non-admin user; default `tally-user` (no groups besides system:authenticated). */
  userName?: string;
  /** Progress lines; default writes to stderr. */
  log?: (line: string) => void;
}

export interface ControlPlane {
  /** https://127.0.0.1:<port> */
  readonly url: string;
  readonly dir: string;
  /** Kubeconfig of `tally-admin` (group system:masters). */
  readonly adminKubeconfig: string;
  /** Kubeconfig of the non-admin user (no RBAC grants). */
  readonly userKubeconfig: string;
  readonly userName: string;
  readonly adminName: string;
  /** CA that signed the serving cert and the client certs. */
  readonly caFile: string;
  readonly etcdUrl: string;
  /** Wall time of startControlPlane, in ms. */
  readonly startMs: number;
  /** kubectl as admin unless `kubeconfig` is given; never throws on a non-zero exit. */
  kubectl(args: readonly string[], options?: KubectlOptions): Promise<KubectlResult>;
  /** Issues a client cert for another user and returns the path of its kubeconfig. */
  addUser(name: string, groups?: readonly string[]): Promise<string>;
  /** Stops kube-apiserver, then etcd, then removes the dir (unless keep); idempotent. */
  stop(): Promise<void>;
}

const ADMIN = 'tally-admin';

export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const t0 = performance.now();
  const log = options.log ?? ((line: string) => process.stderr.write(`[tally harness] ${line}\n`));
  const etcdBin = toolPath('etcd');
  const apiServerBin = toolPath('kube-apiserver');
  toolPath('kubectl');
  const deadline = Date.now() + (options.startTimeoutMs ?? 90_000);
  const remaining = (): number => Math.max(1000, deadline - Date.now());
  const userName = options.userName ?? 'tally-user';
  const dir = makeTempDir('cp');
  const children: ChildHandle[] = [];
  let stopped: Promise<void> | undefined;

  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      try {
        // apiserver first (it would otherwise spin on a missing etcd), then etcd.
        for (const child of [...children].reverse()) await child.stop({ graceMs: 10_000 });
      } finally {
        removeTempDir(dir, options.keep);
      }
    })();
    return stopped;
  };

  try {
    const [pki, etcdPort, peerPort, apiPort] = await Promise.all([
      createPki(join(dir, 'pki')),
      freePort(),
      freePort(),
      freePort(),
    ]);
    const url = `https://127.0.0.1:${apiPort}`;
    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    const peerUrl = `http://127.0.0.1:${peerPort}`;
    const tPki = performance.now();

    // etcd, as envtest: loopback client + peer URLs, throwaway data dir, no fsync.
    const etcd = spawnChild({
      name: 'etcd',
      command: etcdBin,
      logFile: join(dir, 'etcd.log'),
      orphanDir: options.keep ? undefined : dir,
      args: [
        `--data-dir=${join(dir, 'etcd')}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=default=${peerUrl}`,
        '--unsafe-no-fsync=true',
        ...(options.etcdArgs ?? []),
      ],
    });
    children.push(etcd);

    const [adminCert, userCert] = await Promise.all([
      pki.issueClientCert(ADMIN, ['system:masters']),
      pki.issueClientCert(userName),
    ]);
    const adminKubeconfig = join(dir, 'admin.kubeconfig');
    const userKubeconfig = join(dir, 'user.kubeconfig');
    await Promise.all([
      writeKubeconfig(adminKubeconfig, { server: url, caFile: pki.ca.cert, client: adminCert, user: ADMIN }),
      writeKubeconfig(userKubeconfig, { server: url, caFile: pki.ca.cert, client: userCert, user: userName }),
    ]);

    await waitForHttp(`${etcdUrl}/health`, {
      timeoutMs: remaining(),
      children: [etcd],
      accept: (r) => r.status === 200 && r.body.includes('"true"'),
    });
    const tEtcd = performance.now();

    const apiServer = spawnChild({
      name: 'kube-apiserver',
      command: apiServerBin,
      logFile: join(dir, 'kube-apiserver.log'),
      orphanDir: options.keep ? undefined : dir,
      args: [
        `--etcd-servers=${etcdUrl}`,
        '--advertise-address=127.0.0.1',
        '--bind-address=127.0.0.1',
        `--secure-port=${apiPort}`,
        `--cert-dir=${pki.dir}`,
        `--tls-cert-file=${pki.server.cert}`,
        `--tls-private-key-file=${pki.server.key}`,
        `--client-ca-file=${pki.ca.cert}`,
        '--authorization-mode=RBAC',
        `--service-account-key-file=${pki.serviceAccountPublicKey}`,
        `--service-account-signing-key-file=${pki.serviceAccountKey}`,
        `--service-account-issuer=${url}/`,
        '--service-cluster-ip-range=10.0.0.0/24',
        '--allow-privileged=true',
        '--disable-admission-plugins=ServiceAccount',
        ...(options.apiServerArgs ?? []),
      ],
    });
    children.push(apiServer);

    const [ca, cert, key] = await Promise.all([
      readFile(pki.ca.cert),
      readFile(adminCert.cert),
      readFile(adminCert.key),
    ]);
    const tls: TlsMaterial = { ca, cert, key };
    const both = [etcd, apiServer];
    await waitForHttp(`${url}/readyz`, { tls, timeoutMs: remaining(), children: both, intervalMs: 200 });
    const tReady = performance.now();
    // The "default" namespace is created by a controller inside the apiserver, after /readyz.
    await waitUntil(
      'namespace default',
      async () => (await httpGet(`${url}/api/v1/namespaces/default`, { tls })).status === 200,
      { timeoutMs: remaining(), children: both },
    );

    const kubectl = (args: readonly string[], kubectlOptions: KubectlOptions = {}): Promise<KubectlResult> =>
      runKubectl(args, { ...kubectlOptions, kubeconfig: kubectlOptions.kubeconfig ?? adminKubeconfig });

    // Prove both kubeconfigs work end to end with the real kubectl, and RBAC answers.
    const getNs = ['get', 'namespace', 'default', '-o', 'name'];
    const canI = ['auth', 'can-i', 'list', 'secrets', '--all-namespaces'];
    const [adminGet, userCanI] = await Promise.all([
      kubectl(getNs),
      kubectl(canI, { kubeconfig: userKubeconfig }),
    ]);
    if (adminGet.code !== 0)
      throw new HarnessError(HarnessErrorCode.CommandFailed, describeKubectl(getNs, adminGet));
    if (userCanI.stdout.trim() !== 'no') {
      throw new HarnessError(
        HarnessErrorCode.CommandFailed,
        `expected "no": ${describeKubectl(canI, userCanI)}`,
      );
    }

    const startMs = Math.round(performance.now() - t0);
    const s = (ms: number): string => `${(ms / 1000).toFixed(2)}s`;
    log(
      `control plane up at ${url} in ${s(startMs)} (certs ${s(tPki - t0)}, etcd ${s(tEtcd - tPki)}, ` +
        `apiserver ready ${s(tReady - tEtcd)}, bootstrap ${s(performance.now() - tReady)}); dir ${dir}`,
    );

    return {
      url,
      dir,
      adminKubeconfig,
      userKubeconfig,
      userName,
      adminName: ADMIN,
      caFile: pki.ca.cert,
      etcdUrl,
      startMs,
      kubectl,
      addUser: async (name, groups = []) => {
        const path = join(dir, `${name.replace(/[^A-Za-z0-9_.-]/g, '_')}.kubeconfig`);
        const client = await pki.issueClientCert(name, groups);
        await writeKubeconfig(path, { server: url, caFile: pki.ca.cert, client, user: name });
        return path;
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
