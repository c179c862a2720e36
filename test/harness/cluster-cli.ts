// The kube tier's cluster by hand (root):
//
//   node test/harness/cluster-cli.ts up       build/refresh the images, start the cluster, print how to
//                                             use it, run until Ctrl-C, then tear it down
//   node test/harness/cluster-cli.ts down     clean up after a run that was killed (SIGKILL, a crash):
//                                             its processes, containers, mounts, bridge, cgroups,
//                                             firewall rules and sysctls, from /run/tally-cluster
//   node test/harness/cluster-cli.ts status   is a cluster recorded, and is its owner alive
//
// (`janitor PID START` is started by startCluster itself, detached: it waits for the process that
// owns the cluster and, should that die without stopping it (SIGKILL, or a test runner killing its
// worker on Ctrl-C), does what `down` does.)
import { setTimeout as sleep } from 'node:timers/promises';
import { startCluster } from './cluster.ts';
import { readClusterState, recoverHost, releaseClusterLock, stateOwnerAlive } from './cluster-host.ts';
import { buildImages } from './images.ts';

const log = (line: string): void => {
  process.stderr.write(`[tally cluster] ${line}\n`);
};

async function main(command: string | undefined): Promise<number> {
  switch (command) {
    case 'status': {
      const state = readClusterState();
      if (!state) {
        process.stdout.write('no cluster recorded\n');
        return 0;
      }
      const alive = stateOwnerAlive(state);
      process.stdout.write(
        `cluster of pid ${state.ownerPid} (${alive ? 'running' : 'owner gone: run `down`'}), started ${state.startedAt}, dir ${state.dir}\n`,
      );
      return alive ? 0 : 1;
    }
    case 'down': {
      const state = readClusterState();
      if (!state) {
        process.stdout.write('no cluster recorded: nothing to do\n');
        return 0;
      }
      if (stateOwnerAlive(state)) {
        process.stderr.write(
          `pid ${state.ownerPid} still runs this cluster: stop that process (Ctrl-C) instead\n`,
        );
        return 1;
      }
      const problems = await recoverHost(state, log);
      await releaseClusterLock();
      for (const p of problems) log(`WARNING: ${p}`);
      log(problems.length ? 'done, host NOT fully restored' : 'done, host restored');
      return problems.length ? 1 : 0;
    }
    case 'janitor': {
      const [pid, start] = [Number(process.argv[3]), process.argv[4]];
      for (;;) {
        const state = readClusterState();
        // Stopped normally (state gone), or another cluster by now: nothing for us.
        if (!state || state.ownerPid !== pid || state.ownerStart !== start) return 0;
        if (!stateOwnerAlive(state)) {
          log(`owner pid ${pid} is gone without stopping its cluster: cleaning up`);
          await sleep(1500); // let the process watchdogs stop the components first
          const problems = await recoverHost(state, log);
          await releaseClusterLock();
          for (const p of problems) log(`WARNING: ${p}`);
          log(problems.length ? 'done, host NOT fully restored' : 'done, host restored');
          return problems.length ? 1 : 0;
        }
        await sleep(500);
      }
    }
    case 'up': {
      const images = await buildImages({ log });
      const cluster = await startCluster({
        images: [images.pause.tar, images.tally.tar],
        sandboxImage: images.pause.image,
        handleSignals: false,
        log,
      });
      process.stdout.write(
        `export KUBECONFIG=${cluster.adminKubeconfig}\n# image ${images.tally.image} (imagePullPolicy: Never); Ctrl-C stops the cluster\n`,
      );
      await new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
      const problems = await cluster.stop();
      return problems.length ? 1 : 0;
    }
    default:
      process.stderr.write('usage: node test/harness/cluster-cli.ts up|down|status\n');
      return 2;
  }
}

process.exitCode = await main(process.argv[2]);
