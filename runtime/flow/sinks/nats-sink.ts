// NATS sink: JetStream publish with Nats-Msg-Id = event id when a stream captures the subject
// (dedupe on redelivery). Which stream is asked of the JetStream API (and remembered a while) rather
// than found out by trying: a JetStream publish is a request, and plain subscribers on the subject
// would receive it and leave it unanswered until the timeout.
//
// When no stream captures the subject, the outcome is never a stored delivery:
// - the built-in canonical sink (CANONICAL_SINK_NAME) fails transiently (code "no_stream"):
//   reconciliation reads its events from the stream, so they wait, are retried and at last
//   dead-lettered with the reason, rather than published to nobody;
// - any other NATS sink publishes plainly (code "core", sink write outcome "published_unstored",
//   not counted in tally_flow_messages_delivered_total), for core subscribers. Kept on purpose:
//   fan-out to plain subscribers is a supported use, and the examples' tally.canonical.* sinks
//   rely on it. Start-up code lists such sinks with natsSinksWithoutStream() to say so.

import { idempotencyKey } from '../../../api/envelope.ts';
import { TallyError } from '../../../api/errors.ts';
import type { FlowWorkerConfig } from '../../../api/worker-config.ts';
import type { BusWriter } from '../../bus/types.ts';
import { CANONICAL_SINK_NAME } from '../../nats/canonical.ts';
import { FlowErrorCode, SinkError } from '../errors.ts';
import { CLOUDEVENTS_JSON } from './http-sink.ts';
import type { Sink } from './types.ts';

export type NatsSinkConfig = Extract<FlowWorkerConfig['sinks'][number], { type: 'nats' }>;

/** How long the answer to "does a stream capture this subject?" is trusted. */
export const STREAM_LOOKUP_TTL_MS = 30_000;

export const NATS_SINK_ERROR_CODES = { noStream: 'FLOW_SINK_NO_STREAM' } as const;

/** A NATS sink that must store its events has no stream capturing its subject: a configuration error. */
export class NatsSinkNoStreamError extends TallyError {
  override name = 'NatsSinkNoStreamError';
  readonly code = NATS_SINK_ERROR_CODES.noStream;
  readonly sink: string;
  readonly subject: string;
  constructor(flow: string, sink: NatsSinkConfig, options?: ErrorOptions) {
    super(
      `flow ${flow}: sink ${sink.name} publishes to ${sink.subject}, which no JetStream stream captures, so its events would not be stored: ${fixFor(sink)}`,
      options,
    );
    this.sink = sink.name;
    this.subject = sink.subject;
  }
}

/** True for sinks whose events must land in a stream (no plain-publish fallback). */
export function requiresStream(sink: NatsSinkConfig): boolean {
  return sink.name === CANONICAL_SINK_NAME;
}

function fixFor(sink: NatsSinkConfig): string {
  return requiresStream(sink)
    ? "create the namespace's canonical stream (the operator and `tally run` do; see ensureNamespaceStreams)"
    : `create a stream whose subjects capture ${sink.subject}, or point the sink at a subject a stream captures`;
}

/**
 * The NATS sinks of a worker whose subject no stream captures, for start-up checks: those that
 * requiresStream() are a configuration error (NatsSinkNoStreamError), the others publish plainly.
 */
export async function natsSinksWithoutStream(
  sinks: readonly FlowWorkerConfig['sinks'][number][],
  streamFor: (subject: string) => Promise<string | undefined>,
): Promise<NatsSinkConfig[]> {
  const missing: NatsSinkConfig[] = [];
  for (const s of sinks) {
    if (s.type === 'nats' && (await streamFor(s.subject)) === undefined) missing.push(s);
  }
  return missing;
}

/** Throws NatsSinkNoStreamError for the first sink that must store its events and cannot. */
export async function assertNatsSinkStreams(
  flow: string,
  sinks: readonly FlowWorkerConfig['sinks'][number][],
  streamFor: (subject: string) => Promise<string | undefined>,
): Promise<void> {
  const refused = (await natsSinksWithoutStream(sinks, streamFor)).find(requiresStream);
  if (refused) throw new NatsSinkNoStreamError(flow, refused);
}

export function createNatsSink(
  config: NatsSinkConfig,
  bus: BusWriter,
  observe: (code: string, seconds: number) => void = () => {},
  now: () => number = Date.now,
): Sink {
  const mustStore = requiresStream(config);
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
      let stream: string | undefined;
      try {
        stream = await streamOf();
        if (stream) {
          await bus.publish(config.subject, body, { msgId: event.id, headers });
          observe('stream', seconds());
          return undefined;
        }
        if (!mustStore) {
          await bus.send(config.subject, body, headers);
          observe('core', seconds());
          // Handed to whoever listens, stored nowhere: counted apart from deliveries.
          return { outcome: 'published_unstored' };
        }
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
      // Transient: the stream may be (re)created meanwhile (the operator does), and each retry asks again.
      lookup = undefined;
      observe('no_stream', seconds());
      throw new SinkError(
        `sink ${config.name}: no JetStream stream captures ${config.subject}, so the event is not stored: ${fixFor(config)}`,
        { sink: config.name, permanent: false, code: FlowErrorCode.SinkUnavailable },
      );
    },
    async close() {},
  };
}
