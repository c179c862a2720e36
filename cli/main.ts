// The `tally` command: one binary, one subcommand per job.
import { UsageError } from './errors.ts';

const USAGE = `Usage: tally <command> [options]

Commands:
  validate   check resources offline (schemas, references, tests)     tally validate -f DIR
  mapping    run mapping test cases and map sample payloads            tally mapping test -f DIR [--input FILE]
  operator   run the Kubernetes operator                               tally operator --nats-url URL --image IMG
  runtime    run a flow or reconciliation worker from its WorkerConfig  tally runtime --config FILE
  run        run flows standalone without Kubernetes                   tally run -f DIR [--nats-url URL]
  backfill   load a CSV or JSON-lines file into a flow (resumable)     tally backfill FILE --config WORKERCONFIG
  dlq        list, show and replay a flow's dead letters               tally dlq list --flow NS/NAME --nats-url URL
  xref       show and repair the cross-reference store                 tally xref get --entity Order --key KEY
  recon      reconciliation reports                                    tally recon report --policy NAME
  demo       local demo: nats-server, the example flow, simulated traffic

Run "tally <command> --help" for the options of a command.`;

type Command = (argv: string[]) => Promise<number>;

const commands: Record<string, () => Promise<Command>> = {
  validate: async () => (await import('./validate.ts')).validateCommand,
  mapping: async () => (await import('./mapping-test.ts')).mappingCommand,
  demo: async () => (await import('./demo.ts')).demoCommand,
  operator: async () => (await import('./operator.ts')).operatorCommand,
  runtime: async () => (await import('./runtime.ts')).runtimeCommand,
  run: async () => (await import('./run.ts')).runCommand,
  recon: async () => (await import('./recon.ts')).reconCommand,
  backfill: async () => (await import('./backfill/command.ts')).backfillCommand,
  dlq: async () => (await import('./dlq/command.ts')).dlqCommand,
  xref: async () => (await import('./xref.ts')).xrefCommand,
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return name ? 0 : 2;
  }
  const load = commands[name];
  try {
    if (!load) throw new UsageError(`unknown command "${name}"\n\n${USAGE}`);
    return await (await load())(rest);
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`tally ${name}: ${(err as Error).message}\n`);
      return 2;
    }
    process.stderr.write(`tally ${name}: ${(err as Error).message}\n`);
    return 1;
  }
}

if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2));
}
