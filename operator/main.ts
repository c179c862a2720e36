// Wires the operator: kubeconfig, NATS, controller, and an HTTP endpoint for metrics and probes.
import { createServer } from 'node:http';
import { hostname } from 'node:os';
import { KubeConfig } from '@kubernetes/client-node';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { type Logger, pino } from 'pino';
import { Controller } from './controller.ts';
import { EventRecorder } from './events.ts';
import { KubeClient } from './kube/client.ts';
import { operatorMetrics } from './metrics.ts';
import { connectNats } from './nats/provisioner.ts';

export interface OperatorOptions {
  /** Path of a kubeconfig; in-cluster config when absent and running in a pod, else the default. */
  kubeconfig?: string;
  natsServers: string[];
  /** Servers written into worker configs; defaults to natsServers. */
  workerNatsServers?: string[];
  image: string;
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  /** Port of /metrics, /healthz and /readyz; 0 picks a free one. */
  metricsPort: number;
  metricsHost?: string;
  resyncMs?: number;
  log?: Logger;
}

export interface OperatorHandle {
  metricsPort: number;
  controller: Controller;
  stop(): Promise<void>;
}

export function loadKubeConfig(path?: string): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else if (process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
  else kc.loadFromDefault();
  return kc;
}

export async function startOperator(opts: OperatorOptions): Promise<OperatorHandle> {
  const log = opts.log ?? pino({ name: 'tally-operator', level: process.env.TALLY_LOG_LEVEL ?? 'info' });
  const client = new KubeClient(loadKubeConfig(opts.kubeconfig));
  const metrics = operatorMetrics();
  const { nc, jsm } = await connectNats(opts.natsServers, 'tally-operator');
  const kvm = new Kvm(nc);
  logNatsStatus(nc, log);

  const controller = new Controller({
    client,
    log,
    metrics,
    ...(opts.resyncMs ? { resyncMs: opts.resyncMs } : {}),
    context: {
      jsm: () => jsm,
      kvm: () => kvm,
      events: new EventRecorder(client, process.env.POD_NAME ?? hostname(), log),
      now: () => new Date(),
      render: {
        image: opts.image,
        ...(opts.imagePullPolicy ? { imagePullPolicy: opts.imagePullPolicy } : {}),
      },
      workerNatsServers: opts.workerNatsServers ?? opts.natsServers,
    },
  });

  // Reconciliation workers publish each report; refresh that policy's status right away.
  nc.subscribe('tally.*.recon.*.reports', {
    callback: (err, msg) => {
      if (err) return;
      const [, namespace, , policy] = msg.subject.split('.');
      if (namespace && policy) controller.queue.add(`ReconciliationPolicy/${namespace}/${policy}`);
    },
  });

  let ready = false;
  const server = createServer((req, res) => {
    if (req.url === '/metrics') {
      void metrics.registry.metrics().then((text) => {
        res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text);
      });
    } else if (req.url === '/healthz') {
      res.writeHead(200).end('ok');
    } else if (req.url === '/readyz') {
      const ok = ready && !nc.isClosed();
      res.writeHead(ok ? 200 : 503).end(ok ? 'ok' : 'not ready');
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) =>
    server.listen(opts.metricsPort, opts.metricsHost ?? '0.0.0.0', resolve),
  );
  const address = server.address();
  const metricsPort = typeof address === 'object' && address ? address.port : opts.metricsPort;

  const abort = new AbortController();
  const running = controller.run(abort.signal);
  void controller.synced.then(() => {
    ready = true;
  });
  log.info({ metricsPort, nats: opts.natsServers }, 'operator started');

  return {
    metricsPort,
    controller,
    async stop() {
      abort.abort();
      await running.catch(() => undefined);
      await new Promise((resolve) => server.close(resolve));
      await nc.drain().catch(() => undefined);
      await client.close();
      log.info('operator stopped');
    },
  };
}

async function logNatsStatus(nc: NatsConnection, log: Logger): Promise<void> {
  for await (const s of nc.status()) {
    if (s.type === 'disconnect' || s.type === 'reconnect')
      log.warn({ nats: s.type }, 'NATS connection status');
  }
}
