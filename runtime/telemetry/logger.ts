// Structured JSON logs: every line carries the worker's business keys (a flow's flow and channel, a
// reconciliation policy's policy); per-message child loggers add the business key, trace id and
// source message id so one order can be followed across hops.
import { type DestinationStream, type Logger, pino } from 'pino';

export type { Logger } from 'pino';

/** The keys on every line of a worker: a flow's, or a reconciliation policy's. */
export type WorkerKeys = { flow: string; channel: string } | { policy: string };

export type LoggerOptions = WorkerKeys & {
  /** pino level; default TALLY_LOG_LEVEL or info. */
  level?: string;
  /** Where lines go; default stdout. */
  destination?: DestinationStream;
};

export function createLogger(options: LoggerOptions): Logger {
  const base =
    'policy' in options ? { policy: options.policy } : { flow: options.flow, channel: options.channel };
  const config = {
    level: options.level ?? process.env.TALLY_LOG_LEVEL ?? 'info',
    base,
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
    serializers: { err: pino.stdSerializers.err },
  };
  return options.destination ? pino(config, options.destination) : pino(config);
}

/**
 * `logger` with `keys` bound, adding only those it does not carry already: pino writes a key
 * bound twice twice on every line (a caller's logger often has the flow and channel already). A
 * key bound with another value is bound again: the worker's value is the true one, and JSON readers
 * take the last.
 */
export function withKeys(logger: Logger, keys: Readonly<Record<string, string>>): Logger {
  const bound = logger.bindings();
  const missing = Object.entries(keys).filter(([k, v]) => bound[k] !== v);
  return missing.length === 0 ? logger : logger.child(Object.fromEntries(missing));
}

export interface MessageContext {
  sourceMsgId?: string;
  businessKey?: string;
  traceId?: string;
}

/** A child logger for one message; fields that are not known yet are left out. */
export function messageLogger(base: Logger, ctx: MessageContext): Logger {
  const fields: Record<string, string> = {};
  if (ctx.sourceMsgId) fields.sourceMsgId = ctx.sourceMsgId;
  if (ctx.businessKey) fields.businessKey = ctx.businessKey;
  if (ctx.traceId) fields.traceId = ctx.traceId;
  return base.child(fields);
}
