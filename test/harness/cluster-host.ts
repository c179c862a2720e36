// What the single-node cluster changes on the host, and how it is put back: a machine-wide lock with
// a state file (so that a run killed with SIGKILL is cleaned up by the next start or by
// `node test/harness/cluster-cli.ts down`), the pod bridge, the firewall rules, the sysctls the
// kubelet, kube-proxy and the bridge CNI plugin set, the kubepods cgroups, mounts and leftover
// container processes.
//
// Firewall: the rules this cluster (kubelet, kube-proxy, our safety net) adds are undone one by one
// against a snapshot taken before it started (iptables-save/ip6tables-save), and tables that did not
// exist before and are empty again are deleted; rules of anybody else are left alone.
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  writeFileSync,
} from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { mustRun, runCommand } from './cluster-exec.ts';
import { HarnessError, HarnessErrorCode } from './errors.ts';

/** Host sysctls the cluster may change (kubelet: vm.overcommit_memory, kernel.panic, kernel.panic_on_oops, keys; the bridge plugin: ip_forward; kube-proxy: conntrack, route_localnet, bridge-nf). */
export const CLUSTER_SYSCTLS = [
  'net/ipv4/ip_forward',
  'net/ipv6/conf/all/forwarding',
  'net/ipv4/conf/all/route_localnet',
  'net/bridge/bridge-nf-call-iptables',
  'net/bridge/bridge-nf-call-ip6tables',
  'vm/overcommit_memory',
  'vm/panic_on_oom',
  'kernel/panic',
  'kernel/panic_on_oops',
  'kernel/keys/root_maxkeys',
  'kernel/keys/root_maxbytes',
  'net/netfilter/nf_conntrack_max',
  'net/netfilter/nf_conntrack_tcp_timeout_established',
  'net/netfilter/nf_conntrack_tcp_timeout_close_wait',
] as const;

export interface ClusterNetwork {
  /** The pod bridge, created before anything else; its address is the node IP. */
  bridge: string;
  nodeIp: string;
  podCidr: string;
  serviceCidr: string;
}

export interface HostSnapshot {
  sysctls: Record<string, string>;
  /** iptables-save / ip6tables-save output before the cluster started ('' when the tool is missing). */
  iptables: { v4: string; v6: string };
  /** `nft list tables` lines before ('' without nft). */
  nftTables: string[];
  bridgeExisted: boolean;
  /** libcni's result cache (/var/lib/cni), which containerd's CNI library always uses. */
  cniCacheExisted: boolean;
}

/** The state file: who runs the cluster, where, and what the host looked like before. */
export interface ClusterState {
  ownerPid: number;
  /** /proc/<pid>/stat start time of the owner, against pid reuse. */
  ownerStart: string;
  startedAt: string;
  dir: string;
  containerdSocket: string;
  network: ClusterNetwork;
  snapshot?: HostSnapshot;
  /** Long-running children started by the harness, for the recovery of a killed run. */
  children: { name: string; pid: number }[];
  /** The detached process that cleans up should the owner die (cluster-cli.ts janitor). */
  janitorPid?: number;
}

const CNI_CACHE = '/var/lib/cni';

export function clusterStateDir(): string {
  return process.env.TALLY_CLUSTER_STATE_DIR || '/run/tally-cluster';
}

const statePath = (): string => join(clusterStateDir(), 'state.json');

function procStart(pid: number): string | undefined {
  try {
    // Field 22 (starttime), after the parenthesised command name.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function procCmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

export function readClusterState(): ClusterState | undefined {
  try {
    return JSON.parse(readFileSync(statePath(), 'utf8')) as ClusterState;
  } catch {
    return undefined;
  }
}

export async function writeClusterState(state: ClusterState): Promise<void> {
  const tmp = `${statePath()}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`);
  await rename(tmp, statePath());
}

/** True while the process that wrote the state is alive (same pid and start time). */
export function stateOwnerAlive(state: ClusterState): boolean {
  return procStart(state.ownerPid) === state.ownerStart;
}

/**
 * Takes the machine-wide cluster lock (one cluster per machine: the bridge, node IP, kubepods
 * cgroups and firewall chains are global). A lock left by a dead process is recovered first
 * (its host changes undone); a live one is an error naming its owner.
 */
export async function acquireClusterLock(
  initial: Omit<ClusterState, 'ownerPid' | 'ownerStart' | 'startedAt' | 'children'>,
  log: (line: string) => void,
): Promise<ClusterState> {
  mkdirSync(clusterStateDir(), { recursive: true, mode: 0o700 });
  const lockFile = join(clusterStateDir(), 'lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    let fd: number | undefined;
    try {
      fd = openSync(lockFile, 'wx');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    if (fd !== undefined) {
      closeSync(fd);
      const state: ClusterState = {
        ...initial,
        ownerPid: process.pid,
        ownerStart: procStart(process.pid) ?? '',
        startedAt: new Date().toISOString(),
        children: [],
      };
      writeFileSync(lockFile, `${process.pid}\n`);
      await writeClusterState(state);
      return state;
    }
    const old = readClusterState();
    if (old !== undefined && stateOwnerAlive(old)) {
      throw new HarnessError(
        HarnessErrorCode.CommandFailed,
        `a Tally test cluster is already running on this machine (pid ${old.ownerPid}, since ${old.startedAt}, dir ${old.dir}); ` +
          `one cluster per machine. If that process is gone: node test/harness/cluster-cli.ts down`,
      );
    }
    if (old !== undefined) {
      log(`recovering the cluster left by pid ${old.ownerPid} (started ${old.startedAt}, dir ${old.dir})`);
      await recoverHost(old, log);
    }
    await rm(statePath(), { force: true });
    await rm(lockFile, { force: true });
  }
  throw new HarnessError(HarnessErrorCode.CommandFailed, `could not take the cluster lock ${lockFile}`);
}

export async function releaseClusterLock(): Promise<void> {
  await rm(statePath(), { force: true });
  await rm(join(clusterStateDir(), 'lock'), { force: true });
}

// --- snapshot -------------------------------------------------------------------------------

async function save(tool: 'iptables-save' | 'ip6tables-save'): Promise<string> {
  const r = await runCommand(tool, [], { timeoutMs: 20_000 });
  return r.code === 0 ? r.stdout : '';
}

async function nftTables(): Promise<string[]> {
  const r = await runCommand('nft', ['list', 'tables'], { timeoutMs: 10_000 });
  return r.code === 0 ? r.stdout.split('\n').filter((l) => l.startsWith('table ')) : [];
}

function readSysctl(key: string): string | undefined {
  try {
    return readFileSync(`/proc/sys/${key}`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

export async function snapshotHost(network: ClusterNetwork): Promise<HostSnapshot> {
  const sysctls: Record<string, string> = {};
  for (const key of CLUSTER_SYSCTLS) {
    const value = readSysctl(key);
    if (value !== undefined) sysctls[key] = value;
  }
  const [v4, v6, tables] = await Promise.all([save('iptables-save'), save('ip6tables-save'), nftTables()]);
  const bridgeExisted = (await runCommand('ip', ['link', 'show', network.bridge])).code === 0;
  return {
    sysctls,
    iptables: { v4, v6 },
    nftTables: tables,
    bridgeExisted,
    cniCacheExisted: existsSync(CNI_CACHE),
  };
}

/** Host conditions that would make the cluster collide with something else on the machine. */
export function hostConflicts(network: ClusterNetwork, snapshot: HostSnapshot): string[] {
  const problems: string[] = [];
  if (snapshot.bridgeExisted) problems.push(`a link named ${network.bridge} already exists`);
  for (const h of cgroupHierarchies()) {
    if (existsSync(join(h, 'kubepods')))
      problems.push(`${h}/kubepods exists (another kubelet on this machine?)`);
  }
  return problems;
}

// --- network --------------------------------------------------------------------------------

/**
 * The pod bridge with the node IP, and the firewall safety net, before any component starts:
 * - traffic to the service CIDR that kube-proxy has not translated is rejected (a ClusterIP packet
 *   must never leave the machine: without a rule it would follow the default route out of eth0);
 * - pod traffic to anything but the bridge (the node itself is INPUT, not FORWARD) is rejected:
 *   pods talk only to each other and to the node;
 * - pod traffic is accepted in FORWARD (dockerd may have set its policy to DROP).
 */
export async function setUpNetwork(n: ClusterNetwork): Promise<void> {
  const prefix = n.podCidr.split('/')[1];
  await mustRun('ip', ['link', 'add', n.bridge, 'type', 'bridge']);
  await mustRun('ip', ['addr', 'add', `${n.nodeIp}/${prefix}`, 'dev', n.bridge]);
  await mustRun('ip', ['link', 'set', n.bridge, 'up']);
  // Inserted at the top in reverse order: REJECTs end up before the ACCEPTs.
  for (const rule of [
    ['FORWARD', '-d', n.podCidr, '-j', 'ACCEPT'],
    ['FORWARD', '-s', n.podCidr, '-j', 'ACCEPT'],
    ['FORWARD', '-s', n.podCidr, '!', '-o', n.bridge, '-j', 'REJECT'],
    ['FORWARD', '-d', n.serviceCidr, '-j', 'REJECT'],
    ['OUTPUT', '-d', n.serviceCidr, '-j', 'REJECT'],
  ]) {
    await mustRun('iptables', ['-w', '5', '-I', ...rule]);
  }
}

// --- firewall undo --------------------------------------------------------------------------

interface Table {
  chains: Map<string, string>;
  rules: string[];
}

function parseSave(text: string): Map<string, Table> {
  const tables = new Map<string, Table>();
  let current: Table | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) {
      current = { chains: new Map(), rules: [] };
      tables.set(line.slice(1).trim(), current);
    } else if (current && line.startsWith(':')) {
      const [name, policy] = line.slice(1).split(' ');
      current.chains.set(name!, policy ?? '-');
    } else if (current && line.startsWith('-A ')) {
      current.rules.push(line.slice(3));
    }
  }
  return tables;
}

const BUILTIN = new Set(['INPUT', 'OUTPUT', 'FORWARD', 'PREROUTING', 'POSTROUTING']);

/** Rules and chains present now but not in `before` that belong to the cluster (`ours`). */
function undoScript(before: string, now: string, ours: (text: string) => boolean): string {
  const b = parseSave(before);
  let script = '';
  for (const [name, table] of parseSave(now)) {
    const old = b.get(name) ?? { chains: new Map<string, string>(), rules: [] };
    const newChains = [...table.chains.keys()].filter(
      (c) => !old.chains.has(c) && !BUILTIN.has(c) && ours(c),
    );
    const count = new Map<string, number>();
    for (const r of old.rules) count.set(r, (count.get(r) ?? 0) + 1);
    const deletes: string[] = [];
    for (const r of table.rules) {
      const left = count.get(r) ?? 0;
      if (left > 0) {
        count.set(r, left - 1);
        continue;
      }
      const chain = r.split(' ')[0]!;
      if (newChains.includes(chain)) continue; // flushed below
      if (ours(r)) deletes.push(`-D ${r}`);
    }
    if (deletes.length === 0 && newChains.length === 0) continue;
    script += `*${name}\n${deletes.join('\n')}${deletes.length ? '\n' : ''}`;
    script += newChains.map((c) => `-F ${c}\n`).join('') + newChains.map((c) => `-X ${c}\n`).join('');
    script += 'COMMIT\n';
  }
  return script;
}

function emptyTables(now: string): string[] {
  const empty: string[] = [];
  for (const [name, table] of parseSave(now)) {
    const onlyBuiltin = [...table.chains.entries()].every(([c, p]) => BUILTIN.has(c) && p === 'ACCEPT');
    if (onlyBuiltin && table.rules.length === 0) empty.push(name);
  }
  return empty;
}

const normalize = (text: string): string =>
  text
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => l.replace(/ \[\d+:\d+\]$/, ''))
    .join('\n');

/** Undoes the cluster's firewall changes; returns what still differs from the snapshot. */
export async function restoreFirewall(
  n: ClusterNetwork,
  snapshot: HostSnapshot,
  log: (line: string) => void,
): Promise<string[]> {
  const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  const mine = new RegExp(
    `KUBE-|CNI-|${esc(n.podCidr)}|${esc(n.serviceCidr)}|${esc(n.nodeIp)}/|(^| )${esc(n.bridge)}( |$)`,
  );
  const ours = (text: string): boolean => mine.test(text);
  const leftovers: string[] = [];
  const families = [
    { save: 'iptables-save', restore: 'iptables-restore', nft: 'ip', before: snapshot.iptables.v4 },
    { save: 'ip6tables-save', restore: 'ip6tables-restore', nft: 'ip6', before: snapshot.iptables.v6 },
  ] as const;
  for (const f of families) {
    const now = await save(f.save);
    if (now === '' && f.before === '') continue;
    const script = undoScript(f.before, now, ours);
    if (script !== '') {
      const r = await runCommand(f.restore, ['-w', '5', '--noflush'], { input: script, timeoutMs: 30_000 });
      if (r.code !== 0) log(`${f.restore} of the undo script failed: ${r.stderr.trim()}\n${script}`);
    }
    // Tables created only for the cluster (iptables-nft creates a table on first use) and empty again.
    let after = await save(f.save);
    const existed = new Set(parseSave(f.before).keys());
    for (const table of emptyTables(after)) {
      if (existed.has(table)) continue;
      const r = await runCommand('nft', ['delete', 'table', f.nft, table], { timeoutMs: 10_000 });
      if (r.code !== 0) log(`nft delete table ${f.nft} ${table}: ${r.stderr.trim()}`);
    }
    after = await save(f.save);
    if (normalize(after) !== normalize(f.before)) {
      const was = new Set(normalize(f.before).split('\n'));
      const is = new Set(normalize(after).split('\n'));
      const diff = [
        ...[...is].filter((l) => !was.has(l)).map((l) => `+ ${l}`),
        ...[...was].filter((l) => !is.has(l)).map((l) => `- ${l}`),
      ];
      if (diff.length) leftovers.push(`${f.save} differs from before the cluster:\n${diff.join('\n')}`);
    }
  }
  // nftables tables of kube-proxy's nftables mode, should any exist.
  const tablesNow = await nftTables();
  for (const t of tablesNow) {
    if (!snapshot.nftTables.includes(t) && / kube-proxy$/.test(t)) {
      await runCommand('nft', ['delete', ...t.split(' ')], { timeoutMs: 10_000 });
    }
  }
  return leftovers;
}

// --- processes, mounts, links, cgroups, sysctls ---------------------------------------------

export function cgroupHierarchies(): string[] {
  try {
    return readdirSync('/sys/fs/cgroup', { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => join('/sys/fs/cgroup', d.name));
  } catch {
    return [];
  }
}

function cgroupDirs(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    out.push(dir);
    let entries: import('node:fs').Dirent[] = [];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) if (e.isDirectory()) walk(join(dir, e.name));
  };
  if (existsSync(root)) walk(root);
  return out;
}

/** Pids of the processes in the cluster's kubepods cgroups (the pods' containers). */
export function podProcesses(): number[] {
  const pids = new Set<number>();
  for (const h of cgroupHierarchies()) {
    for (const dir of cgroupDirs(join(h, 'kubepods'))) {
      try {
        for (const p of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n')) {
          if (p.trim() !== '') pids.add(Number(p));
        }
      } catch {
        // gone meanwhile
      }
    }
  }
  return [...pids];
}

/** Pids whose command line contains `needle` (e.g. the shims serving our containerd socket). */
export function processesMatching(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    if (procCmdline(pid).includes(needle)) pids.push(pid);
  }
  return pids;
}

function kill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

async function killAndWait(
  pids: readonly number[],
  what: string,
  log: (line: string) => void,
): Promise<void> {
  if (pids.length === 0) return;
  log(`killing ${pids.length} leftover ${what}: ${pids.join(' ')}`);
  for (const pid of pids) kill(pid, 'SIGKILL');
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && pids.some((p) => existsSync(`/proc/${p}`) && procStart(p) !== undefined)) {
    await sleep(100);
  }
}

/** Kills the pods' processes and the shims of our containerd socket (after containerd stopped). */
export async function killLeftovers(containerdSocket: string, log: (line: string) => void): Promise<void> {
  await killAndWait(processesMatching(`-address ${containerdSocket}`), 'containerd shims', log);
  await killAndWait(podProcesses(), 'pod processes', log);
}

/** Unmounts everything mounted below `dir` (kubelet volumes, container rootfs, netns), deepest first. */
export async function unmountUnder(dir: string, log: (line: string) => void): Promise<void> {
  const prefix = `${dir.replace(/\/$/, '')}/`;
  for (let round = 0; round < 3; round++) {
    const points = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[4]?.replace(/\\040/g, ' '))
      .filter((p): p is string => p?.startsWith(prefix) === true)
      .sort((a, b) => b.length - a.length);
    if (points.length === 0) return;
    for (const p of points) {
      const r = await runCommand('umount', ['-l', p], { timeoutMs: 10_000 });
      if (r.code !== 0 && round === 2) log(`umount ${p}: ${r.stderr.trim()}`);
    }
  }
}

export async function removeNetwork(n: ClusterNetwork, snapshot: HostSnapshot | undefined): Promise<void> {
  const links = await runCommand('ip', ['-o', 'link', 'show', 'master', n.bridge]);
  if (links.code === 0) {
    for (const line of links.stdout.split('\n')) {
      const name = line.split(': ')[1]?.split('@')[0];
      if (name) await runCommand('ip', ['link', 'del', name]);
    }
  }
  if (snapshot?.bridgeExisted !== true) await runCommand('ip', ['link', 'del', n.bridge]);
  // libcni's cache, when it appeared only for this cluster and holds no results any more.
  if (snapshot && !snapshot.cniCacheExisted) {
    try {
      rmdirSync(join(CNI_CACHE, 'results'));
    } catch {
      // absent, or results of somebody else
    }
    try {
      rmdirSync(CNI_CACHE);
    } catch {
      // absent or not empty
    }
  }
}

/** Removes the kubepods cgroup trees the kubelet made (deepest first), once their processes are gone. */
export async function removePodCgroups(log: (line: string) => void): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const left: string[] = [];
    for (const h of cgroupHierarchies()) {
      for (const dir of cgroupDirs(join(h, 'kubepods')).reverse()) {
        try {
          rmdirSync(dir);
        } catch {
          left.push(dir);
        }
      }
    }
    if (left.length === 0) return;
    if (Date.now() > deadline) {
      log(`could not remove ${left.length} cgroup(s), e.g. ${left[0]}`);
      return;
    }
    await killAndWait(podProcesses(), 'pod processes', log);
    await sleep(200);
  }
}

/** Writes back every sysctl that differs from the snapshot; returns the ones that could not be. */
export function restoreSysctls(snapshot: HostSnapshot, log: (line: string) => void): string[] {
  const failed: string[] = [];
  for (const [key, value] of Object.entries(snapshot.sysctls)) {
    const now = readSysctl(key);
    if (now === value) continue;
    try {
      writeFileSync(`/proc/sys/${key}`, value);
      log(`sysctl ${key.replaceAll('/', '.')}: ${now} -> ${value} (restored)`);
    } catch (error) {
      failed.push(`sysctl ${key}=${value}: ${(error as Error).message}`);
    }
  }
  return failed;
}

/**
 * After a killed run: stop what the dead harness started (by recorded pid, checking the command
 * line still names its dir), the containers, then undo the host changes and remove its dir.
 */
export async function recoverHost(state: ClusterState, log: (line: string) => void): Promise<string[]> {
  const pids = state.children.filter((c) => procCmdline(c.pid).includes(state.dir)).map((c) => c.pid);
  await killAndWait(pids, 'cluster processes', log);
  await unmountUnder(state.dir, log);
  const problems: string[] = [];
  // Without a snapshot the run stopped before it touched the host (or found it taken): the shims,
  // pod cgroups and bridge are not ours then.
  if (state.snapshot) {
    await killLeftovers(state.containerdSocket, log);
    await unmountUnder(state.dir, log);
    await removeNetwork(state.network, state.snapshot);
    await removePodCgroups(log);
    problems.push(...(await restoreFirewall(state.network, state.snapshot, log)));
    problems.push(...restoreSysctls(state.snapshot, log));
  }
  await rm(state.dir, { recursive: true, force: true, maxRetries: 3 });
  return problems;
}
