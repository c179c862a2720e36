// `tally run -f DIR --nats-url URL`: run the flows of a folder without Kubernetes.
import { parseArgs } from 'node:util';
import { UsageError } from './errors.ts';
import { startStandalone } from './standalone.ts';

export const RUN_USAGE = `Usage: tally run -f <file|dir> [-f ...] --nats-url URL [--port PORT] [--host HOST]

Runs every IntegrationFlow in the given files as an in-process worker (no Kubernetes): the same
WorkerConfig, JetStream resources and worker code as under the operator. Secrets come from Secret
documents in the files or from the environment. Stops cleanly on Ctrl-C.`;

export async function runCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      filename: { type: 'string', short: 'f', multiple: true },
      'nats-url': { type: 'string', default: process.env.TALLY_NATS_URL },
      port: { type: 'string', default: '8080' },
      host: { type: 'string', default: '127.0.0.1' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${RUN_USAGE}\n`);
    return 0;
  }
  if (!values.filename?.length) throw new UsageError(`no input: pass -f <file|dir>\n\n${RUN_USAGE}`);
  if (!values['nats-url']) throw new UsageError(`--nats-url (or TALLY_NATS_URL) is required\n\n${RUN_USAGE}`);
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new UsageError(`--port ${values.port} is not a port`);
  const run = await startStandalone({
    paths: values.filename,
    natsServers: values['nats-url'].split(','),
    port,
    host: values.host,
  });
  for (const f of run.flows) {
    process.stderr.write(
      `flow ${f.name}: listening on http://${values.host}:${f.worker.port} (metrics at /metrics)\n`,
    );
  }
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await run.stop();
  return 0;
}
