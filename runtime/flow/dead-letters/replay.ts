// What a replay publishes: the dead letter's original payload and headers, onto the flow's ingest
// subject, under a new dedupe id (the ingest stream already holds the original one, so that would be
// dropped), carrying the ORIGINAL source message id in Tally-Source-Msg-Id. The processor derives
// the event id and the sink idempotency key from that id, so a sink that already applied the event
// sees the same key again and does not apply it twice. Pure.
import { randomBytes } from 'node:crypto';
import type { BusHeaders } from '../../bus/types.ts';
import { DLQ_HEADERS } from './headers.ts';

export const REPLAY_HEADERS = {
  /** The id the payload was first ingested under (the processor prefers it to Nats-Msg-Id). */
  sourceMsgId: DLQ_HEADERS.sourceMsgId,
  /** `<dead-letter stream>:<seq>` this message was replayed from (lineage only). */
  replayOf: 'Tally-Replay-Of',
} as const;

/** Headers the dead-lettering added (and JetStream's own): dropped before the payload goes back in. */
const DROPPED = new Set([...Object.values(DLQ_HEADERS), REPLAY_HEADERS.replayOf].map((h) => h.toLowerCase()));

/** A short id for one `tally dlq replay` run: replays of the same dead letter in one run share a dedupe id. */
export function newReplayRunId(): string {
  return randomBytes(6).toString('hex');
}

/**
 * The replay's Nats-Msg-Id. New per run, so a second replay (say after another mapping fix) is not
 * dropped by the ingest stream's duplicate window; the same within a run, so a publish retried after a
 * lost ack is stored once.
 */
export function replayMsgId(runId: string, seq: number, sourceMsgId: string): string {
  return `replay:${runId}:${seq}:${sourceMsgId}`;
}

export function replayHeaders(input: {
  headers: BusHeaders;
  sourceMsgId: string;
  stream: string;
  seq: number;
}): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(input.headers)) {
    const lower = k.toLowerCase();
    if (lower.startsWith('nats-') || DROPPED.has(lower)) continue;
    out[k] = v;
  }
  out[REPLAY_HEADERS.sourceMsgId] = input.sourceMsgId;
  out[REPLAY_HEADERS.replayOf] = `${input.stream}:${input.seq}`;
  return out;
}
