// `tally operator`: run the Kubernetes operator until SIGTERM/SIGINT.
import { parseArgs } from 'node:util';
import { startOperator } from '../operator/main.ts';
import { UsageError } from './errors.ts';

export const OPERATOR_USAGE = `Usage: tally operator --nats-url URL --image IMAGE [options]

  --kubeconfig FILE        kubeconfig to use (default: in-cluster, then $KUBECONFIG / ~/.kube/config)
  --nats-url URL           NATS server(s) the operator manages JetStream on (comma-separated)
  --worker-nats-url URL    NATS server(s) written into worker configs (default: --nats-url)
  --image IMAGE            image the worker Deployments run (the operator's own)
  --metrics-port PORT      port of /metrics, /healthz, /readyz (default 8081)`;

export async function operatorCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      kubeconfig: { type: 'string' },
      'nats-url': { type: 'string', default: process.env.TALLY_NATS_URL },
      'worker-nats-url': { type: 'string' },
      image: { type: 'string', default: process.env.TALLY_IMAGE },
      'image-pull-policy': { type: 'string' },
      'metrics-port': { type: 'string', default: '8081' },
      'metrics-host': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${OPERATOR_USAGE}\n`);
    return 0;
  }
  if (!values['nats-url'])
    throw new UsageError(`--nats-url (or TALLY_NATS_URL) is required\n\n${OPERATOR_USAGE}`);
  if (!values.image) throw new UsageError(`--image (or TALLY_IMAGE) is required\n\n${OPERATOR_USAGE}`);
  const port = Number(values['metrics-port']);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new UsageError(`--metrics-port ${values['metrics-port']} is not a port`);
  const policy = values['image-pull-policy'];
  if (policy && !['Always', 'IfNotPresent', 'Never'].includes(policy)) {
    throw new UsageError(`--image-pull-policy must be Always, IfNotPresent or Never`);
  }
  const split = (s: string) =>
    s
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean);
  const handle = await startOperator({
    ...(values.kubeconfig ? { kubeconfig: values.kubeconfig } : {}),
    natsServers: split(values['nats-url']),
    ...(values['worker-nats-url'] ? { workerNatsServers: split(values['worker-nats-url']) } : {}),
    image: values.image,
    ...(policy ? { imagePullPolicy: policy as 'Always' } : {}),
    metricsPort: port,
    ...(values['metrics-host'] ? { metricsHost: values['metrics-host'] } : {}),
  });
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  await handle.stop();
  return 0;
}
