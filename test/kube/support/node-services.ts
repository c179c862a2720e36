// Host-side peers that pods can reach: they listen on the node IP (the pod bridge's address), which
// pods reach directly. Nothing here listens on an external interface.
import { writeFileSync } from 'node:fs';
import { createServer, type Server, connect as tcpConnect } from 'node:net';
import { join } from 'node:path';
import { makeTempDir, removeTempDir } from '../../harness/cleanup.ts';
import { freePort } from '../../harness/ports.ts';
import { type ChildHandle, spawnChild, waitForHttp } from '../../harness/process.ts';
import { toolPath } from '../../harness/tools.ts';

export interface NodeNats {
  /** nats://<node IP>:<port>, for pods and the host alike. */
  url: string;
  child: ChildHandle | undefined;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** nats-server with JetStream on the node IP; monitoring on loopback. Not started until start(). */
export async function nodeNats(nodeIp: string): Promise<NodeNats> {
  const dir = makeTempDir('kube-nats');
  const [port, monitorPort] = await Promise.all([freePort(nodeIp), freePort()]);
  const conf = join(dir, 'nats.conf');
  writeFileSync(
    conf,
    `listen: "${nodeIp}:${port}"\nhttp: "127.0.0.1:${monitorPort}"\nserver_name: tally-kube\njetstream { store_dir: "${join(dir, 'js')}" }\n`,
  );
  const handle: NodeNats = {
    url: `nats://${nodeIp}:${port}`,
    child: undefined,
    start: async () => {
      const child = spawnChild({
        name: 'nats-server',
        command: toolPath('nats-server'),
        args: ['-c', conf],
        logFile: join(dir, 'nats-server.log'),
        orphanDir: dir, // removed by the watchdog should this process die without stop()
      });
      handle.child = child;
      await waitForHttp(`http://127.0.0.1:${monitorPort}/healthz?js-enabled-only=true`, {
        children: [child],
        timeoutMs: 20_000,
      });
    },
    stop: async () => {
      await handle.child?.stop();
      removeTempDir(dir);
    },
  };
  return handle;
}

export interface Forwarder {
  /** <node IP>:<port> */
  host: string;
  port: number;
  close(): Promise<void>;
}

/** A TCP forwarder from the node IP to a loopback server (the simulators bind 127.0.0.1 only). */
export async function forwardFromNode(nodeIp: string, targetPort: number): Promise<Forwarder> {
  const port = await freePort(nodeIp);
  const sockets = new Set<import('node:net').Socket>();
  const server: Server = createServer((inbound) => {
    const outbound = tcpConnect({ host: '127.0.0.1', port: targetPort });
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        inbound.destroy();
        outbound.destroy();
      });
    }
    inbound.pipe(outbound);
    outbound.pipe(inbound);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, nodeIp, () => resolve());
  });
  return {
    host: nodeIp,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
