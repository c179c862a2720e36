// A throwaway CA, the apiserver serving cert, client certs and the service-account key, the way
// envtest's tinyca does it: EC P-256 keys from node:crypto, certificates signed with `openssl`.
import { execFile } from 'node:child_process';
import { generateKeyPair, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { HarnessError, HarnessErrorCode } from './errors.ts';

const execFileAsync = promisify(execFile);
const generateKeyPairAsync = promisify(generateKeyPair);
const DAYS = '30';

const OPENSSL_CONFIG = `[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
authorityKeyIdentifier = keyid
[client_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
`;

export interface CertFiles {
  /** PEM paths. */
  cert: string;
  key: string;
}

export interface Pki {
  dir: string;
  ca: CertFiles;
  /** Serving cert for 127.0.0.1 / localhost. */
  server: CertFiles;
  /** Service-account signing key (private) and verification key (public). */
  serviceAccountKey: string;
  serviceAccountPublicKey: string;
  /** Issues a client cert: CN = user, one O per group. */
  issueClientCert(user: string, groups?: readonly string[]): Promise<CertFiles>;
}

export function openssl(args: readonly string[], cwd: string): Promise<void> {
  return execFileAsync('openssl', args, { cwd }).then(
    () => undefined,
    (cause: unknown) => {
      const stderr = (cause as { stderr?: string }).stderr ?? '';
      throw new HarnessError(
        HarnessErrorCode.CommandFailed,
        `openssl ${args.join(' ')} failed: ${stderr.trim()}`,
        {
          cause,
        },
      );
    },
  );
}

async function writeKeyPair(privatePath: string, publicPath?: string): Promise<void> {
  const { privateKey, publicKey } = await generateKeyPairAsync('ec', {
    namedCurve: 'prime256v1',
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  await writeFile(privatePath, privateKey, { mode: 0o600 });
  if (publicPath !== undefined) await writeFile(publicPath, publicKey);
}

const serial = (): string => `0x${randomBytes(16).toString('hex').replace(/^./, '1')}`;

/** Distinguished name for -subj; escapes the characters -subj treats specially. */
export function subject(cn: string, organizations: readonly string[] = []): string {
  const esc = (v: string): string => v.replace(/[\\/+=,]/g, (c) => `\\${c}`);
  return `${organizations.map((o) => `/O=${esc(o)}`).join('')}/CN=${esc(cn)}`;
}

/** A CA in `dir` (with the service-account key pair) and a function issuing certs it signs. */
export interface CertificateAuthority {
  ca: CertFiles;
  serviceAccountKey: string;
  serviceAccountPublicKey: string;
  /** A key and a cert for `subj` with the extensions section `extensions` of the config. */
  issue(base: string, subj: string, extensions: string): Promise<CertFiles>;
}

/** Writes the openssl config, a CA named `caName` and the service-account key pair into `dir`. */
export async function createCa(
  dir: string,
  opensslConfig: string,
  caName: string,
): Promise<CertificateAuthority> {
  await mkdir(dir, { recursive: true });
  const config = join(dir, 'openssl.cnf');
  await writeFile(config, opensslConfig);
  const ca: CertFiles = { cert: join(dir, 'ca.crt'), key: join(dir, 'ca.key') };
  const serviceAccountKey = join(dir, 'sa.key');
  const serviceAccountPublicKey = join(dir, 'sa.pub');
  await Promise.all([writeKeyPair(ca.key), writeKeyPair(serviceAccountKey, serviceAccountPublicKey)]);
  await openssl(
    [
      ...['req', '-new', '-x509', '-config', config, '-key', ca.key, '-subj', `/CN=${caName}`],
      ...['-extensions', 'ca_ext', '-days', DAYS, '-set_serial', serial(), '-out', ca.cert],
    ],
    dir,
  );
  const issue = async (base: string, subj: string, extensions: string): Promise<CertFiles> => {
    const files: CertFiles = { cert: join(dir, `${base}.crt`), key: join(dir, `${base}.key`) };
    const csr = join(dir, `${base}.csr`);
    await writeKeyPair(files.key);
    await openssl(['req', '-new', '-config', config, '-key', files.key, '-subj', subj, '-out', csr], dir);
    await openssl(
      [
        ...['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', serial()],
        ...['-days', DAYS, '-extfile', config, '-extensions', extensions, '-out', files.cert],
      ],
      dir,
    );
    return files;
  };
  return { ca, serviceAccountKey, serviceAccountPublicKey, issue };
}

/** Writes a CA, a serving cert, the service-account key pair into `dir` (created if missing). */
export async function createPki(dir: string): Promise<Pki> {
  const { ca, serviceAccountKey, serviceAccountPublicKey, issue } = await createCa(
    dir,
    OPENSSL_CONFIG,
    'tally-test-ca',
  );

  const server = await issue('apiserver', '/CN=kube-apiserver', 'server_ext');
  return {
    dir,
    ca,
    server,
    serviceAccountKey,
    serviceAccountPublicKey,
    issueClientCert: (user, groups = []) =>
      issue(`user-${user.replace(/[^A-Za-z0-9_.-]/g, '_')}`, subject(user, groups), 'client_ext'),
  };
}

/** Writes a kubeconfig (YAML) authenticating with a client certificate; data inlined. */
export async function writeKubeconfig(
  path: string,
  options: { server: string; caFile: string; client: CertFiles; user: string },
): Promise<void> {
  const [ca, cert, key] = await Promise.all(
    [options.caFile, options.client.cert, options.client.key].map(async (f) =>
      (await readFile(f)).toString('base64'),
    ),
  );
  const yaml = `apiVersion: v1
kind: Config
clusters:
- name: tally-test
  cluster:
    server: ${options.server}
    certificate-authority-data: ${ca}
users:
- name: ${JSON.stringify(options.user)}
  user:
    client-certificate-data: ${cert}
    client-key-data: ${key}
contexts:
- name: tally-test
  context:
    cluster: tally-test
    user: ${JSON.stringify(options.user)}
    namespace: default
current-context: tally-test
preferences: {}
`;
  await writeFile(path, yaml, { mode: 0o600 });
}
