// The `tally` command: one binary, one subcommand per job.
import { UsageError } from './errors.ts';

const USAGE = `Usage: tally <command> [options]

Commands:
  validate   check resources offline (schemas and references)       tally validate -f DIR
  operator   run the Kubernetes operator                               tally operator --nats-url URL --image IMG
  runtime    run a flow worker from a WorkerConfig file                tally runtime --config FILE
  run        run flows standalone without Kubernetes                   tally run -f DIR --nats-url URL
  demo       local demo: nats-server, the example flow, simulated traffic

Run "tally <command> --help" for the options of a command.`;

type Command = (argv: string[]) => Promise<number>;

const commands: Record<string, () => Promise<Command>> = {
  validate: async () => (await import('./validate.ts')).validateCommand,
  demo: async () => (await import('./demo.ts')).demoCommand,
  operator: async () => (await import('./operator.ts')).operatorCommand,
  runtime: async () => (await import('./runtime.ts')).runtimeCommand,
  run: async () => (await import('./run.ts')).runCommand,
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
