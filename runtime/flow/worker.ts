// The flow worker: source -> flow stream -> mapping -> sinks, with /metrics, /healthz, /readyz.
// Startup fails fast on anything the config or environment gets wrong (missing secret, mapping
// that does not compile); NATS being away is waited out, with readiness saying so.
import type { Registry } from 'prom-client';
import { durationMs } from '../../api/common.ts';
import type { FlowWorkerConfig } from '../../api/worker-config.ts';
import { connectJetStreamBus } from '../bus/jetstream.ts';
import type { Bus, ConsumerHandle, SubscriptionHandle } from '../bus/types.ts';
import { type HttpServerHandle, listenAddress, type RouteHandler, startHttpServer } from '../http/server.ts';
import { compileMapping } from '../mapping/index.ts';
import type { CompiledMapping } from '../mapping/types.ts';
import { createLogger, type Logger } from '../telemetry/logger.ts';
import { createFlowMetrics } from '../telemetry/metrics.ts';
import { FlowErrorCode, WorkerStartupError } from './errors.ts';
import { createProcessor } from './processor.ts';
import { type Env, requireEnv } from './secrets.ts';
import { createHttpSink } from './sinks/http-sink.ts';
import { createNatsSink } from './sinks/nats-sink.ts';
import type { Sink } from './sinks/types.ts';
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
  /** Messages processed at once; default the largest HTTP sink maxInFlight, at least 16. */
  maxInFlight?: number;
  /** Include Node process metrics on /metrics; default true. */
  processMetrics?: boolean;
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

const DEFAULT_GRACE_MS = 20_000;
const DEFAULT_IN_FLIGHT = 16;

/** Everything that must hold before anything starts: secrets present, mapping compiles, source supported. */
function prepare(
  config: FlowWorkerConfig,
  env: Env,
): { secret: string | undefined; mapping: CompiledMapping } {
  const source = config.source;
  if (source.type === 'httpPoll') {
    throw new WorkerStartupError(
      FlowErrorCode.UnsupportedSource,
      'source type httpPoll is not supported by this worker version yet; use a webhook, nats or batch source',
    );
  }
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
  return { secret, mapping: compileMapping(config.mapping) };
}

export async function runFlowWorker(
  config: FlowWorkerConfig,
  options: FlowWorkerOptions = {},
): Promise<FlowWorkerHandle> {
  const env = options.env ?? process.env;
  const flowId = `${config.flow.namespace}/${config.flow.name}`;
  // Every line names the flow and channel, whoever made the logger.
  const logger =
    options.logger?.child({ flow: flowId, channel: config.flow.channel }) ??
    createLogger({ flow: flowId, channel: config.flow.channel });
  const graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
  const { secret, mapping } = prepare(config, env);
  const metrics = createFlowMetrics(
    { flow: flowId, channel: config.flow.channel },
    { processMetrics: options.processMetrics ?? true },
  );

  let bus: Bus | undefined;
  let consumer: ConsumerHandle | undefined;
  let subscription: SubscriptionHandle | undefined;
  let stopping = false;

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
      sinks.push(
        s.type === 'http' ? createHttpSink(s, { env, observe }) : createNatsSink(s, lazyBus, observe),
      );
    }
  } catch (err) {
    await Promise.all(sinks.map((s) => s.close()));
    throw err;
  }
  const maxInFlight =
    options.maxInFlight ??
    Math.max(DEFAULT_IN_FLIGHT, ...config.sinks.map((s) => (s.type === 'http' ? s.maxInFlight : 0)));

  const routes = new Map<string, RouteHandler>();
  if (config.source.type === 'webhook') {
    routes.set(
      config.source.path,
      createWebhookHandler({
        source: config.source,
        secret,
        bus: () => bus,
        ingestSubject: config.nats.ingestSubject,
        metrics,
        logger,
        accepting: () => !stopping,
      }),
    );
  }

  const readiness = () => {
    const checks = {
      nats: bus?.connected() ?? false,
      consumer: consumer?.running() ?? false,
      accepting: !stopping,
    };
    return { ready: checks.nats && checks.consumer && checks.accepting, checks };
  };

  let server: HttpServerHandle;
  try {
    server = await startHttpServer(
      { registry: metrics.registry, readiness, routes, logger },
      listenAddress(config.http.port, env),
    );
  } catch (err) {
    await Promise.all(sinks.map((s) => s.close()));
    throw err;
  }

  let resolveStopped!: () => void;
  const stopped = new Promise<void>((resolve) => {
    resolveStopped = resolve;
  });
  const startup = new AbortController();
  let stopping$: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping$ ??= (async () => {
      stopping = true;
      startup.abort();
      logger.info({ graceMs }, 'stopping: no new webhooks or messages; finishing those in progress');
      await Promise.all([server.close(graceMs), subscription?.stop(), consumer?.stop(graceMs)]);
      if (consumer && consumer.inFlight() > 0) {
        logger.warn(
          { inFlight: consumer.inFlight() },
          'messages still in progress after the grace period; they will be redelivered',
        );
      }
      await Promise.all(sinks.map((s) => s.close()));
      await bus?.close();
      logger.info('stopped');
      resolveStopped();
    })();
    return stopping$;
  };
  const onAbort = () => void stop();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) onAbort();

  const handle: FlowWorkerHandle = {
    port: server.port,
    registry: metrics.registry,
    ready: () => readiness().ready,
    stop,
    stopped,
  };

  try {
    bus = await connectJetStreamBus({
      servers: config.nats.servers,
      name: `tally-flow ${flowId}`,
      logger,
      signal: startup.signal,
    });
    if (stopping) {
      await bus.close();
      return handle;
    }
    if (config.source.type === 'nats') {
      subscription = startNatsSource({
        subject: config.source.subject,
        queue: `tally_${config.flow.namespace}_${config.flow.name}`,
        ingestSubject: config.nats.ingestSubject,
        bus,
        metrics,
        logger,
      });
    }
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
      sinks,
      bus,
      metrics,
      logger,
    });
    consumer = await bus.consume(
      config.nats.stream,
      config.nats.consumer,
      async (m) => {
        await processMessage(m);
      },
      { maxInFlight },
    );
    if (stopping) await consumer.stop(0);
    logger.info(
      { stream: config.nats.stream, consumer: config.nats.consumer, maxInFlight, port: server.port },
      'flow worker started',
    );
  } catch (err) {
    if (stopping) {
      await stop();
      return handle;
    }
    await stop();
    throw err;
  }
  return handle;
}
