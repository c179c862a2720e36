// A real nats-server with JetStream for integration tests, on free loopback ports.
import { join } from 'node:path';
import { makeTempDir, removeTempDir } from './cleanup.ts';
import { freePort } from './ports.ts';
import { type ChildHandle, type StopOptions, spawnChild, waitForHttp } from './process.ts';
import { toolPath } from './tools.ts';

export interface NatsServerOptions {
  /** Client port; default a free one. */
  port?: number;
  /** Monitoring (HTTP) port; default a free one. */
  monitorPort?: number;
  /** Keep the temp dir (store + log) after stop(). Also TALLY_KEEP_TMP=1. */
  keep?: boolean;
  /** Extra nats-server arguments. */
  args?: readonly string[];
  /** Default 20 000 ms. */
  startTimeoutMs?: number;
}

export interface NatsServerHandle {
  /** nats://127.0.0.1:<port> */
  readonly url: string;
  readonly port: number;
  readonly monitorPort: number;
  /** http://127.0.0.1:<monitorPort> */
  readonly monitorUrl: string;
  /** Temp dir holding the store dir and nats-server.log. */
  readonly dir: string;
  /** JetStream store dir (-sd); survives halt()/restart(). */
  readonly storeDir: string;
  readonly logFile: string;
  /** pid of the running server, undefined while halted. */
  readonly pid: number | undefined;
  running(): boolean;
  /** Stops the process only (same ports and store kept), e.g. `halt({ signal: 'SIGKILL' })` for a crash. */
  halt(options?: StopOptions): Promise<void>;
  /** Starts the process again after halt(), on the same ports and store; resolves when healthy. */
  start(): Promise<void>;
  /** halt() then start(). */
  restart(options?: StopOptions): Promise<void>;
  /** Stops the process and removes the temp dir (unless keep); idempotent. */
  stop(): Promise<void>;
}

/** Starts nats-server with JetStream (`-js -sd`) on 127.0.0.1; resolves once /healthz reports JetStream ok. */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServerHandle> {
  const bin = toolPath('nats-server');
  const dir = makeTempDir('nats');
  const storeDir = join(dir, 'store');
  const logFile = join(dir, 'nats-server.log');
  const timeoutMs = options.startTimeoutMs ?? 20_000;
  let port: number;
  let monitorPort: number;
  try {
    port = options.port ?? (await freePort());
    monitorPort = options.monitorPort ?? (await freePort());
  } catch (error) {
    removeTempDir(dir);
    throw error;
  }
  const monitorUrl = `http://127.0.0.1:${monitorPort}`;
  const args = [
    ...['-a', '127.0.0.1', '-p', String(port), '-m', String(monitorPort)],
    ...['-js', '-sd', storeDir, '-n', `tally-test-${port}`],
    ...(options.args ?? []),
  ];

  let child: ChildHandle | undefined;
  let stopped: Promise<void> | undefined;

  const start = async (): Promise<void> => {
    if (child?.running()) return;
    const started = spawnChild({
      name: 'nats-server',
      command: bin,
      args,
      logFile,
      orphanDir: options.keep ? undefined : dir,
    });
    child = started;
    try {
      await waitForHttp(`${monitorUrl}/healthz?js-enabled-only=true`, { timeoutMs, children: [started] });
    } catch (error) {
      await started.stop({ signal: 'SIGKILL' });
      throw error;
    }
  };

  const halt = async (stopOptions?: StopOptions): Promise<void> => {
    await child?.stop(stopOptions);
  };

  const handle: NatsServerHandle = {
    url: `nats://127.0.0.1:${port}`,
    port,
    monitorPort,
    monitorUrl,
    dir,
    storeDir,
    logFile,
    get pid() {
      return child?.running() ? child.pid : undefined;
    },
    running: () => child?.running() ?? false,
    halt,
    start,
    restart: async (stopOptions?: StopOptions) => {
      await halt(stopOptions);
      await start();
    },
    stop: () => {
      stopped ??= (async () => {
        try {
          await halt();
        } finally {
          removeTempDir(dir, options.keep);
        }
      })();
      return stopped;
    },
  };

  try {
    await start();
  } catch (error) {
    removeTempDir(dir, options.keep);
    throw error;
  }
  return handle;
}
