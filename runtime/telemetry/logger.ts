// Structured JSON logs: every line carries the flow and channel; per-message child loggers add
// the business key, trace id and source message id so one order can be followed across hops.
import { type DestinationStream, type Logger, pino } from 'pino';

export type { Logger } from 'pino';

export interface LoggerOptions {
  flow: string;
  channel: string;
  /** pino level; default TALLY_LOG_LEVEL or info. */
  level?: string;
  /** Where lines go; default stdout. */
  destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions): Logger {
  const config = {
    level: options.level ?? process.env.TALLY_LOG_LEVEL ?? 'info',
    base: { flow: options.flow, channel: options.channel },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  return options.destination ? pino(config, options.destination) : pino(config);
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
