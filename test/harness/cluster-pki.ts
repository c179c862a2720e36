// The throwaway PKI of the single-node cluster (test/harness/cluster.ts): one EC P-256 CA signing the
// apiserver's and the kubelet's serving certs (with the node IP and the `kubernetes` Service IP as
// SANs) and one client cert per component identity. No RBAC objects are needed for these: the
// apiserver's bootstrap roles bind system:kube-controller-manager, system:kube-scheduler and
// system:kube-proxy, and the Node authorizer covers system:node:<name> in group system:nodes.
import { join } from 'node:path';
import { type CertFiles, createCa, subject, writeKubeconfig } from './pki.ts';

export interface ClusterPkiOptions {
  nodeName: string;
  nodeIp: string;
  /** First IP of the service CIDR: the `kubernetes` Service. */
  serviceIp: string;
}

/** Who the cluster's components are; each gets a client cert and a kubeconfig. */
export const CLUSTER_IDENTITIES = {
  admin: { user: 'tally-admin', groups: ['system:masters'] },
  controllerManager: { user: 'system:kube-controller-manager', groups: [] },
  scheduler: { user: 'system:kube-scheduler', groups: [] },
  proxy: { user: 'system:kube-proxy', groups: [] },
} as const;
export type ClusterIdentity = keyof typeof CLUSTER_IDENTITIES | 'node';

export interface ClusterPki {
  dir: string;
  ca: CertFiles;
  apiserver: CertFiles;
  kubeletServing: CertFiles;
  /** The apiserver's client cert towards the kubelet (logs, exec, port-forward). */
  apiserverKubeletClient: CertFiles;
  serviceAccountKey: string;
  serviceAccountPublicKey: string;
  /** Client cert and kubeconfig path per identity. */
  clients: Record<ClusterIdentity, CertFiles>;
  kubeconfigs: Record<ClusterIdentity, string>;
  issueClientCert(user: string, groups?: readonly string[]): Promise<CertFiles>;
}

function opensslConfig(o: ClusterPkiOptions): string {
  return `[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
[apiserver_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,IP:${o.nodeIp},IP:${o.serviceIp},DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
authorityKeyIdentifier = keyid
[kubelet_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,IP:${o.nodeIp},DNS:${o.nodeName},DNS:localhost
authorityKeyIdentifier = keyid
[client_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
`;
}

/** CA, serving certs, the service-account key pair and the components' kubeconfigs, under `dir`. */
export async function createClusterPki(
  dir: string,
  options: ClusterPkiOptions & { apiServerUrl: string; kubeconfigDir: string },
): Promise<ClusterPki> {
  const { ca, serviceAccountKey, serviceAccountPublicKey, issue } = await createCa(
    dir,
    opensslConfig(options),
    'tally-cluster-ca',
  );
  const issueClientCert = (user: string, groups: readonly string[] = []): Promise<CertFiles> =>
    issue(`client-${user.replace(/[^A-Za-z0-9_.-]/g, '_')}`, subject(user, groups), 'client_ext');

  const nodeUser = `system:node:${options.nodeName}`;
  const [apiserver, kubeletServing, apiserverKubeletClient, node, ...clients] = await Promise.all([
    issue('apiserver', '/CN=kube-apiserver', 'apiserver_ext'),
    issue('kubelet-serving', subject(nodeUser), 'kubelet_ext'),
    issue(
      'apiserver-kubelet-client',
      subject('kube-apiserver-kubelet-client', ['system:masters']),
      'client_ext',
    ),
    issueClientCert(nodeUser, ['system:nodes']),
    ...Object.values(CLUSTER_IDENTITIES).map((id) => issueClientCert(id.user, id.groups)),
  ]);
  const kubeconfigs = {} as Record<ClusterIdentity, string>;
  const clientCerts = {} as Record<ClusterIdentity, CertFiles>;
  const identities = [
    ['node', nodeUser, node!] as const,
    ...Object.entries(CLUSTER_IDENTITIES).map(
      ([name, id], i) => [name as ClusterIdentity, id.user, clients[i]!] as const,
    ),
  ];
  await Promise.all(
    identities.map(async ([name, user, client]) => {
      const path = join(options.kubeconfigDir, `${name}.kubeconfig`);
      kubeconfigs[name] = path;
      clientCerts[name] = client;
      await writeKubeconfig(path, { server: options.apiServerUrl, caFile: ca.cert, client, user });
    }),
  );
  return {
    dir,
    ca,
    apiserver,
    kubeletServing,
    apiserverKubeletClient,
    serviceAccountKey,
    serviceAccountPublicKey,
    clients: clientCerts,
    kubeconfigs,
    issueClientCert,
  };
}
