// NATS source: take messages from a subject and republish them onto the flow stream with a dedupe
// id (the incoming Nats-Msg-Id, else a hash of the data). Replicas share a queue group so each
// message is republished once. A request (reply subject) is answered only after the stream has it.
import type { Bus, CoreMessage } from '../../bus/types.ts';
import type { Logger } from '../../telemetry/logger.ts';
import type { FlowMetrics } from '../../telemetry/metrics.ts';
import { contentHashId, ingestHeaders, usableId } from '../ingest.ts';
import type { IngestRouter } from '../partition.ts';
import { traceFromHeader } from '../trace.ts';

export interface NatsSourceDeps {
  subject: string;
  queue: string;
  /** The flow-stream subject (partition) of each payload. */
  route: IngestRouter;
  bus: Bus;
  metrics: FlowMetrics;
  logger: Logger;
  now?: () => Date;
}

export function natsSourceMsgId(m: CoreMessage): string {
  return usableId(m.headers['Nats-Msg-Id']) ?? contentHashId(m.data);
}

export function startNatsSource(deps: NatsSourceDeps) {
  const now = deps.now ?? (() => new Date());
  const encoder = new TextEncoder();
  return deps.bus.subscribe(
    deps.subject,
    async (m) => {
      const msgId = natsSourceMsgId(m);
      const trace = traceFromHeader(m.headers.traceparent);
      try {
        const { subject } = await deps.route(m.data);
        const ack = await deps.bus.publish(subject, m.data, {
          msgId,
          headers: ingestHeaders({ source: 'nats', trace, receivedAt: now() }),
        });
        deps.metrics.received('nats', ack.duplicate);
        if (m.reply)
          deps.bus.respond(m.reply, encoder.encode(JSON.stringify({ id: msgId, duplicate: ack.duplicate })));
      } catch (err) {
        // A plain subscription cannot be redelivered: say so loudly; a requester learns it from the reply.
        deps.metrics.failed('bus_unavailable');
        deps.logger.error(
          { err, sourceMsgId: msgId, subject: m.subject },
          'source message could not be stored',
        );
        if (m.reply)
          deps.bus.respond(m.reply, encoder.encode(JSON.stringify({ error: (err as Error).message })));
      }
    },
    { queue: deps.queue },
  );
}
