// NATS sink: JetStream publish with Nats-Msg-Id = event id when a stream captures the subject
// (dedupe on redelivery), plain publish when none does. Which one is asked of the JetStream API
// (and remembered a while) rather than found out by trying: a JetStream publish is a request, and
// plain subscribers on the subject would receive it and leave it unanswered until the timeout.

import { idempotencyKey } from '../../../api/envelope.ts';
import type { FlowWorkerConfig } from '../../../api/worker-config.ts';
import type { BusWriter } from '../../bus/types.ts';
import { FlowErrorCode, SinkError } from '../errors.ts';
import { CLOUDEVENTS_JSON } from './http-sink.ts';
import type { Sink } from './types.ts';

export type NatsSinkConfig = Extract<FlowWorkerConfig['sinks'][number], { type: 'nats' }>;

/** How long the answer to "does a stream capture this subject?" is trusted. */
export const STREAM_LOOKUP_TTL_MS = 30_000;

export function createNatsSink(
  config: NatsSinkConfig,
  bus: BusWriter,
  observe: (code: string, seconds: number) => void = () => {},
  now: () => number = Date.now,
): Sink {
  let lookup: { stream: string | undefined; at: number } | undefined;
  const streamOf = async (): Promise<string | undefined> => {
    if (!lookup || now() - lookup.at > STREAM_LOOKUP_TTL_MS) {
      lookup = { stream: await bus.streamFor(config.subject), at: now() };
    }
    return lookup.stream;
  };
  return {
    name: config.name,
    type: 'nats',
    async deliver(event, body) {
      const headers = {
        'content-type': CLOUDEVENTS_JSON,
        traceparent: event.traceparent,
        'Tally-Idempotency-Key': idempotencyKey(event),
        'Tally-Event-Type': event.type,
      };
      const started = performance.now();
      const seconds = () => (performance.now() - started) / 1000;
      try {
        if (await streamOf()) {
          await bus.publish(config.subject, body, { msgId: event.id, headers });
          observe('stream', seconds());
        } else {
          await bus.send(config.subject, body, headers);
          observe('core', seconds());
        }
        return undefined;
      } catch (err) {
        // The streams may have changed since we looked (e.g. NoStream): look again next time.
        lookup = undefined;
        observe('error', seconds());
        throw new SinkError(
          `sink ${config.name}: publish to ${config.subject} failed: ${(err as Error).message}`,
          { sink: config.name, permanent: false, code: FlowErrorCode.SinkUnavailable },
          { cause: err },
        );
      }
    },
    async close() {},
  };
}
