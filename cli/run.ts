// `tally run -f DIR [--nats-url URL]`: run the flows of a folder without Kubernetes. With no NATS URL
// it starts a temporary nats-server of its own (cli/embedded-nats.ts), gone again when it stops.
import { parseArgs } from 'node:util';
import { type EmbeddedNats, startEmbeddedNats } from './embedded-nats.ts';
import { UsageError } from './errors.ts';
import { type StandaloneFlow, startStandalone } from './standalone.ts';

export const RUN_USAGE = `Usage: tally run -f <file|dir> [-f ...] [--nats-url URL] [--port PORT] [--host HOST]

Runs every IntegrationFlow in the given files as an in-process worker (no Kubernetes): the same
WorkerConfig, JetStream resources and worker code as under the operator. Secrets come from Secret
documents in the files or from the environment. Stops cleanly on Ctrl-C.

  --nats-url URL  NATS server(s) with JetStream, comma-separated (default: $TALLY_NATS_URL). With
                  neither, tally run starts a temporary nats-server (.tools/bin/nats-server of this
                  checkout, else the one on PATH; \`npm run tools\` builds it) on a free loopback
                  port with its store in a temp dir, both removed when tally run stops.
  --port PORT     HTTP port of the first flow's worker, the next flows take the next ones
                  (default 8080; 0 = free ports)
  --host HOST     address the workers listen on (default 127.0.0.1)`;

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
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new UsageError(`--port ${values.port} is not a port`);
  const host = values.host;
  const say = (line: string) => process.stdout.write(`${line}\n`);

  // Listening from the start: a Ctrl-C while starting must still stop what has been started.
  let nats: EmbeddedNats | undefined;
  let signalled = false;
  let wake!: () => void;
  const stopRequested = new Promise<void>((resolve) => {
    wake = resolve;
  });
  const onSignal = () => {
    if (signalled) {
      // A second Ctrl-C does not wait for the workers' grace period.
      process.stderr.write('tally run: stopping at once\n');
      nats?.kill();
      process.exit(130);
    }
    signalled = true;
    wake();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let run: { flows: StandaloneFlow[]; stop(): Promise<void> } | undefined;
  try {
    let servers = values['nats-url']?.split(',').filter(Boolean);
    if (!servers?.length) {
      say('No --nats-url (or TALLY_NATS_URL): starting a temporary nats-server with JetStream ...');
      nats = await startEmbeddedNats();
      say(`nats-server ${nats.url} (temporary; ${nats.bin}, pid ${nats.pid})`);
      say(`  JetStream store ${nats.storeDir} (temporary: removed when tally run stops)`);
      servers = [nats.url];
    }
    if (!signalled) {
      say(`Starting the flows of ${values.filename.join(', ')} ...`);
      run = await startStandalone({ paths: values.filename, natsServers: servers, port, host });
      for (const f of run.flows) {
        const webhook = f.spec.source.webhook?.path;
        say(
          `flow ${f.name}: listening on http://${host}:${f.worker.port}${webhook ? ` (webhook ${webhook})` : ''}, metrics at /metrics`,
        );
        for (const s of f.plainNatsSinks) {
          process.stderr.write(
            `warning: flow ${f.name}: sink ${s.name} publishes to ${s.subject}, which no JetStream stream captures: its events reach only core NATS subscribers and are not stored (sink metric code "core"). To keep them, create a stream capturing ${s.subject}.\n`,
          );
        }
      }
      say(`Running. Ctrl-C stops the workers${nats ? ' and the temporary nats-server' : ''}.`);
    }
    await stopRequested;
  } finally {
    if (run) {
      say('Stopping the workers (events in progress finish first) ...');
      await run.stop();
    }
    if (nats) {
      await nats.stop();
      say(`Stopped the temporary nats-server and removed ${nats.dir}.`);
    }
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return 0;
}
