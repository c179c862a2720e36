// A dead letter as `tally dlq` sees it: the stored message (original payload and headers plus the
// DLQ_HEADERS the worker added) and a summary of why it failed. Pure: the store does the I/O.
import type { BusHeaders } from '../../bus/types.ts';
import { DLQ_HEADERS } from './headers.ts';

export interface DeadLetterSummary {
  /** Sequence in the flow's dead-letter stream. */
  seq: number;
  /** When the dead-letter stream stored it (server clock); what --since/--until compare against. */
  storedAt: Date;
  /** namespace/name of the flow, from Tally-Flow. */
  flow: string;
  reason: string;
  errorClass: string;
  errorCode: string;
  /** One line (the worker already cut it to 1 KiB). */
  message: string;
  /** Deliveries the worker made before giving up; undefined when the header is missing. */
  attempts: number | undefined;
  firstReceived: Date | undefined;
  /** The id the payload was first ingested under: replay keeps it so event id and idempotency key stay. */
  sourceMsgId: string;
}

export interface DeadLetter extends DeadLetterSummary {
  subject: string;
  headers: BusHeaders;
  data: Uint8Array;
}

/** Header lookup ignoring case (NATS keeps the case a publisher used). */
export function header(headers: BusHeaders, name: string): string | undefined {
  const direct = headers[name];
  if (direct !== undefined) return direct;
  const lower = name.toLowerCase();
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === lower) return v;
  return undefined;
}

function date(text: string | undefined): Date | undefined {
  if (!text) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : new Date(ms);
}

/**
 * The original source message id of a dead letter: Tally-Source-Msg-Id, else its own dedupe id
 * without the `dlq:` prefix, else its place in the dead-letter stream (stable across replays).
 */
export function originalSourceMsgId(headers: BusHeaders, stream: string, seq: number): string {
  const fromHeader = header(headers, DLQ_HEADERS.sourceMsgId)?.trim();
  if (fromHeader) return fromHeader;
  const own = header(headers, 'Nats-Msg-Id')?.trim();
  if (own?.startsWith('dlq:') && own.length > 4) return own.slice(4);
  return `${stream}:${seq}`;
}

export function summarize(input: {
  seq: number;
  storedAt: Date;
  headers: BusHeaders;
  stream: string;
}): DeadLetterSummary {
  const h = (name: string) => header(input.headers, name) ?? '';
  const attempts = Number.parseInt(h(DLQ_HEADERS.attempts), 10);
  return {
    seq: input.seq,
    storedAt: input.storedAt,
    flow: h(DLQ_HEADERS.flow),
    reason: h(DLQ_HEADERS.errorReason),
    errorClass: h(DLQ_HEADERS.errorClass),
    errorCode: h(DLQ_HEADERS.errorCode),
    message: h(DLQ_HEADERS.errorMessage),
    attempts: Number.isFinite(attempts) ? attempts : undefined,
    firstReceived: date(h(DLQ_HEADERS.firstReceived)),
    sourceMsgId: originalSourceMsgId(input.headers, input.stream, input.seq),
  };
}
