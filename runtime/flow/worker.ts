// The flow worker: source -> flow stream -> mapping -> sinks, in the worker shell (runtime/worker:
// /metrics, /healthz, /readyz, waiting for NATS, graceful stop). Startup fails fast on anything the
// config or environment gets wrong (missing secret, mapping that does not compile); NATS being
// away is waited out, with readiness saying so.
import type { Registry } from 'prom-client';
import { durationMs } from '../../api/common.ts';
import type { FlowWorkerConfig } from '../../api/worker-config.ts';
import { Slots } from '../bus/slots.ts';
import type { Bus, ConsumerHandle, SubscriptionHandle } from '../bus/types.ts';
import { listenAddress, type RouteHandler } from '../http/server.ts';
import { compileMapping } from '../mapping/index.ts';
import type { CompiledMapping } from '../mapping/types.ts';
import { flowNames, isOrdered, partitionCount } from '../nats/flow-resources.ts';
import { createLogger, type Logger, withKeys } from '../telemetry/logger.ts';
import { createFlowMetrics } from '../telemetry/metrics.ts';
import { DEFAULT_GRACE_MS, startWorkerShell, type WorkerShell } from '../worker/shell.ts';
import { connectXrefStore } from '../xref/connect.ts';
import { xrefBucketName } from '../xref/keys.ts';
import { FlowErrorCode, WorkerStartupError } from './errors.ts';
import { createIngestRouter } from './partition.ts';
import { createProcessor } from './processor.ts';
import { type Env, requireEnv } from './secrets.ts';
import { createHttpSink } from './sinks/http-sink.ts';
import { createMasterDataSink } from './sinks/master-data-sink.ts';
import { assertNatsSinkStreams, createNatsSink } from './sinks/nats-sink.ts';
import type { Sink } from './sinks/types.ts';
import {
  type HttpPollHandle,
  type PreparedPoll,
  prepareHttpPoll,
  startHttpPollSource,
} from './sources/http-poll.ts';
import { startNatsSource } from './sources/nats-source.ts';
import { createWebhookHandler } from './sources/webhook.ts';

export interface FlowWorkerOptions {
  /** Environment with the secrets and TALLY_HTTP_HOST / TALLY_HTTP_PORT; default process.env. */
  env?: Env;
  logger?: Logger;
  /** Aborting stops the worker gracefully (same as handle.stop()). */
  signal?: AbortSignal;
  /** How long stop() waits for webhooks and messages in progress; default 20 s. */
  graceMs?: number;
  /**
   * Messages processed at once; default the largest HTTP sink maxInFlight, at least 16 (64 when
   * every sink is a NATS one), at least one per partition.
   */
  maxInFlight?: number;
  /** Include Node process metrics on /metrics; default true. */
  processMetrics?: boolean;
  /** How often consumer lag is read from JetStream for /metrics; default 15 s. */
  lagPollMs?: number;
}

export interface FlowWorkerHandle {
  /** The port the HTTP server listens on. */
  readonly port: number;
  readonly registry: Registry;
  /** Ready: connected to NATS, consuming, not stopping. */
  ready(): boolean;
  /** Graceful stop; idempotent. */
  stop(): Promise<void>;
  /** Resolves once the worker has stopped (after stop() or the signal). */
  readonly stopped: Promise<void>;
}

const DEFAULT_IN_FLIGHT = 16;
/**
 * Without HTTP sinks a message waits only for JetStream acks: a deeper pipeline keeps the worker
 * busy while the server stores a burst (measured: about 1.2x the throughput of 16, bench/flow.ts).
 */
const NATS_ONLY_IN_FLIGHT = 64;
const DEFAULT_LAG_POLL_MS = 15_000;

/** The worker's consumers (one per partition in an ordered flow) as one handle. */
function allConsumers(handles: readonly ConsumerHandle[]): ConsumerHandle {
  return {
    running: () => handles.length > 0 && handles.every((h) => h.running()),
    stop: async (graceMs) => {
      await Promise.all(handles.map((h) => h.stop(graceMs)));
    },
    inFlight: () => handles.reduce((n, h) => n + h.inFlight(), 0),
  };
}

/** Everything that must hold before anything starts: secrets present, mapping compiles, source supported. */
function prepare(
  config: FlowWorkerConfig,
  env: Env,
): { secret: string | undefined; mapping: CompiledMapping; httpPoll: PreparedPoll | undefined } {
  const source = config.source;
  // httpPoll source: credentials and paths checked before anything starts.
  const httpPoll = source.type === 'httpPoll' ? prepareHttpPoll(source, env) : undefined;
  let secret: string | undefined;
  if (source.type === 'webhook' && source.signature.scheme !== 'none') {
    if (!source.signature.secret) {
      throw new WorkerStartupError(
        FlowErrorCode.MissingSecret,
        `source.signature.secret is required for scheme ${source.signature.scheme}`,
      );
    }
    secret = requireEnv(env, source.signature.secret.env, 'webhook signing secret');
  }
  return { secret, mapping: compileMapping(config.mapping), httpPoll };
}

export async function runFlowWorker(
  config: FlowWorkerConfig,
  options: FlowWorkerOptions = {},
): Promise<FlowWorkerHandle> {
  const env = options.env ?? process.env;
  const flowId = `${config.flow.namespace}/${config.flow.name}`;
  // Every line names the flow and channel once, whoever made the logger (tally run's has them).
  const keys = { flow: flowId, channel: config.flow.channel };
  const logger = options.logger ? withKeys(options.logger, keys) : createLogger(keys);
  const { secret, mapping, httpPoll } = prepare(config, env);
  // Ordered flows: the partition of each payload, and one consumer per partition (docs/delivery.md).
  const ordered = isOrdered(config.delivery);
  const partitions = partitionCount(config.delivery);
  const names = flowNames(config.flow);
  const route = createIngestRouter({
    partitionKey: config.delivery.partitionKey,
    partitions,
    subject: (p) => (ordered ? names.ingestSubject(p) : config.nats.ingestSubject),
    logger,
  });
  const consumerNames = ordered
    ? Array.from({ length: partitions }, (_, p) => names.partitionConsumer(p))
    : [config.nats.consumer];
  const metrics = createFlowMetrics(
    { flow: flowId, channel: config.flow.channel },
    { processMetrics: options.processMetrics ?? true },
  );

  let bus: Bus | undefined;
  let consumer: ConsumerHandle | undefined;
  let subscription: SubscriptionHandle | undefined;
  let poller: HttpPollHandle | undefined; // httpPoll source

  // A bad TALLY_HTTP_PORT fails here, before anything is opened.
  const address = listenAddress(config.http.port, env);
  // The namespace's cross-reference store: connected on first use (mappings and sinks that read it).
  const xrefBucket = config.nats.xrefBucket ?? xrefBucketName(config.flow.namespace);
  const xref = connectXrefStore(config.nats.servers, xrefBucket, `tally-flow ${flowId} xref`);
  // HTTP sinks first: a missing auth secret must stop us before we touch NATS.
  const sinks: Sink[] = [];
  const lazyBus = {
    publish: (...a: Parameters<Bus['publish']>) => bus!.publish(...a),
    send: (...a: Parameters<Bus['send']>) => bus!.send(...a),
    respond: (...a: Parameters<Bus['respond']>) => bus!.respond(...a),
    streamFor: (...a: Parameters<Bus['streamFor']>) => bus!.streamFor(...a),
  };
  try {
    for (const s of config.sinks) {
      const observe = (code: string, seconds: number) => metrics.sinkRequest(s.name, code, seconds);
      if (s.type === 'http') {
        metrics.circuit(s.name, 'closed', false);
        sinks.push(
          createHttpSink(s, {
            env,
            xref,
            flow: flowId,
            observe,
            maxRetryAfterMs: durationMs(config.delivery.maxBackoff),
            onCircuitChange: (from, to) => {
              metrics.circuit(s.name, to);
              const log = { sink: s.name, from, to };
              if (to === 'open') logger.warn(log, 'sink circuit opened: events wait instead of calling it');
              else
                logger.info(
                  log,
                  `sink circuit ${to === 'closed' ? 'closed: sink is back' : 'half-open: probing'}`,
                );
            },
          }),
        );
      } else if (s.type === 'masterData') sinks.push(createMasterDataSink(s, xref, flowId, observe));
      else sinks.push(createNatsSink(s, lazyBus, observe));
    }
  } catch (err) {
    await Promise.all(sinks.map((s) => s.close()));
    await xref.close();
    throw err;
  }
  // Every partition consumer keeps one pull open, each needing a slot: at least one per partition.
  const httpInFlight = Math.max(0, ...config.sinks.map((s) => (s.type === 'http' ? s.maxInFlight : 0)));
  const maxInFlight =
    options.maxInFlight ??
    Math.max(
      httpInFlight > 0 ? DEFAULT_IN_FLIGHT : NATS_ONLY_IN_FLIGHT,
      ordered ? partitions : 0,
      httpInFlight,
    );

  // Set once listening; the webhook route is not called before.
  let shell: WorkerShell | undefined;
  const routes = new Map<string, RouteHandler>();
  if (config.source.type === 'webhook') {
    routes.set(
      config.source.path,
      createWebhookHandler({
        source: config.source,
        secret,
        bus: () => bus,
        route,
        metrics,
        logger,
        accepting: () => !shell?.stopping(),
      }),
    );
  }

  // Consumer lag for /metrics, read from JetStream now and then (every replica reads it; cheap).
  let lagTimer: NodeJS.Timeout | undefined;
  const startLagPoll = (live: Bus) => {
    const poll = async () => {
      try {
        const lags = await Promise.all(consumerNames.map((n) => live.consumerLag(config.nats.stream, n)));
        metrics.consumerLag({
          pending: lags.reduce((n, l) => n + l.pending, 0),
          ackPending: lags.reduce((n, l) => n + l.ackPending, 0),
        });
      } catch (err) {
        logger.debug({ err }, 'consumer lag not read');
      }
    };
    void poll();
    lagTimer = setInterval(() => void poll(), options.lagPollMs ?? DEFAULT_LAG_POLL_MS);
    lagTimer.unref();
  };

  // The shell (runtime/worker) serves HTTP, waits for NATS and runs the stop; this is what it stops.
  const drain = async (graceMs: number) => {
    clearInterval(lagTimer);
    await Promise.all([
      subscription?.stop(),
      poller?.stop(graceMs), // httpPoll source: finishes the page in progress
      consumer?.stop(graceMs),
    ]);
    if (consumer && consumer.inFlight() > 0) {
      logger.warn(
        { inFlight: consumer.inFlight() },
        'messages still in progress after the grace period; they will be redelivered',
      );
    }
  };
  const close = async () => {
    await Promise.all(sinks.map((s) => s.close()));
    await xref.close();
  };
  const worker = await startWorkerShell({
    name: `tally-flow ${flowId}`,
    servers: config.nats.servers,
    logger,
    registry: metrics.registry,
    address,
    routes,
    checks: () => ({
      consumer: consumer?.running() ?? false,
      // httpPoll source: its own NATS connection for the cursor and lease.
      ...(httpPoll ? { pollerState: poller?.ready() ?? false } : {}),
    }),
    ...(options.signal ? { signal: options.signal } : {}),
    graceMs: options.graceMs ?? DEFAULT_GRACE_MS,
    drain,
    close,
  });
  shell = worker;

  const handle: FlowWorkerHandle = {
    port: worker.port,
    registry: metrics.registry,
    ready: () => worker.ready(),
    stop: () => worker.stop(),
    stopped: worker.stopped,
  };

  try {
    bus = await worker.connect();
    if (worker.stopping()) return handle;
    // A sink that must store its events (the canonical one) and has no stream behind it is a
    // configuration error, said at start-up rather than as events that go nowhere.
    const live$ = bus;
    await assertNatsSinkStreams(flowId, config.sinks, (subject) => live$.streamFor(subject));
    if (config.source.type === 'nats') {
      subscription = startNatsSource({
        subject: config.source.subject,
        queue: `tally_${config.flow.namespace}_${config.flow.name}`,
        route,
        bus,
        metrics,
        logger,
      });
    }
    // --- httpPoll source (runtime/flow/sources/http-poll.ts) ---
    if (httpPoll) {
      poller = startHttpPollSource({
        prepared: httpPoll,
        flow: { namespace: config.flow.namespace, name: config.flow.name, channel: config.flow.channel },
        nats: config.nats,
        replicas: config.stream.replicas,
        route,
        bus,
        metrics,
        logger,
      });
    }
    // --- end httpPoll source ---
    const processMessage = createProcessor({
      config: {
        flow: config.flow,
        mapping: config.mapping,
        nats: config.nats,
        delivery: {
          maxDeliver: config.delivery.maxDeliver,
          initialBackoffMs: durationMs(config.delivery.initialBackoff),
          maxBackoffMs: durationMs(config.delivery.maxBackoff),
          ackWaitMs: durationMs(config.delivery.ackWait),
        },
      },
      mapping,
      xref,
      sinks,
      bus,
      metrics,
      logger,
    });
    // One slot per message held, shared by every consumer: nothing is pulled without a free slot.
    const slots = new Slots(maxInFlight);
    const handler = async (m: Parameters<typeof processMessage>[0]) => {
      await processMessage(m);
    };
    const live = bus;
    consumer = allConsumers(
      await Promise.all(
        consumerNames.map((name) =>
          // Ordered: the server lets one message per partition out at a time; pull just that one.
          live.consume(config.nats.stream, name, handler, { maxInFlight: ordered ? 1 : maxInFlight, slots }),
        ),
      ),
    );
    if (worker.stopping()) {
      await consumer.stop(0);
      return handle;
    }
    startLagPoll(live);
    logger.info(
      {
        stream: config.nats.stream,
        consumers: consumerNames.length > 4 ? `${consumerNames[0]}..${consumerNames.at(-1)}` : consumerNames,
        ordered,
        partitions,
        maxInFlight,
        port: worker.port,
      },
      'flow worker started',
    );
  } catch (err) {
    // Stopped during start-up: the handle reports it stopped; anything else is a failed start.
    const stoppedFirst = worker.stopping();
    await worker.stop();
    if (stoppedFirst) return handle;
    throw err;
  }
  return handle;
}
