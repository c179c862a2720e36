// What the kube tier needs on the host, as one human-readable reason ('' when all is there).
import { accessSync, constants, existsSync } from 'node:fs';
import { join } from 'node:path';
import { CLUSTER_BINARIES, HOST_COMMANDS, HOST_PREREQUISITES } from '../../harness/cluster.ts';
import { haveCommand } from '../../harness/cluster-exec.ts';
import { toolsBinDir } from '../../harness/tools.ts';

export const APT_PACKAGES =
  'docker.io debootstrap containernetworking-plugins iptables nftables runc openssl';

export async function kubeTierSkipReason(): Promise<string> {
  if (process.env.TALLY_KUBE === '0') return 'TALLY_KUBE=0';
  if (process.platform !== 'linux') return `needs Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'needs root (a bridge, iptables, cgroups and mounts for the kubelet)';
  const missing: string[] = [];
  const tools = [...CLUSTER_BINARIES, 'helm'].filter((b) => {
    try {
      accessSync(join(toolsBinDir(), b), constants.X_OK);
      return false;
    } catch {
      return true;
    }
  });
  if (tools.length) missing.push(`${tools.join(', ')} (run: bash tools/install.sh --kube)`);
  const files = Object.values(HOST_PREREQUISITES).filter((f) => !existsSync(f));
  const commands: string[] = [];
  for (const c of [...HOST_COMMANDS, 'docker', 'dockerd', 'debootstrap', 'go']) {
    if (!(await haveCommand(c))) commands.push(c);
  }
  if (files.length || commands.length) {
    missing.push(
      `${[...commands, ...files].join(', ')} (run: apt-get update && apt-get install -y ${APT_PACKAGES})`,
    );
  }
  if (!existsSync('/sys/fs/cgroup/memory') && !existsSync('/sys/fs/cgroup/cgroup.controllers')) {
    missing.push('a cgroup filesystem at /sys/fs/cgroup');
  }
  return missing.length ? `missing ${missing.join('; ')}` : '';
}
