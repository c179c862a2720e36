// What a dead-lettered message carries: the original payload and headers, plus why it failed,
// how often it was tried and when, so `tally dlq` can show it and replay it.
import type { BusHeaders } from '../../bus/types.ts';

export const DLQ_HEADERS = {
  errorClass: 'Tally-Error-Class',
  errorCode: 'Tally-Error-Code',
  errorMessage: 'Tally-Error-Message',
  errorReason: 'Tally-Error-Reason',
  attempts: 'Tally-Attempts',
  firstReceived: 'Tally-First-Received',
  deadLetteredAt: 'Tally-Dead-Lettered-At',
  flow: 'Tally-Flow',
  sourceMsgId: 'Tally-Source-Msg-Id',
} as const;

export const MAX_ERROR_MESSAGE_BYTES = 1024;

/** One line, at most `maxBytes` UTF-8 bytes (cut on a character boundary, marked with an ellipsis). */
export function singleLine(text: string, maxBytes = MAX_ERROR_MESSAGE_BYTES): string {
  const line = text
    .replace(/[\r\n\t]+/g, ' ')
    .replace(/[\p{Cc}]/gu, '')
    .trim();
  if (Buffer.byteLength(line) <= maxBytes) return line;
  let out = '';
  let bytes = 0;
  for (const ch of line) {
    const b = Buffer.byteLength(ch);
    if (bytes + b > maxBytes - 3) break;
    out += ch;
    bytes += b;
  }
  return `${out}...`;
}

export interface DeadLetterInput {
  original: BusHeaders;
  error: { name: string; code: string; message: string; reason: string };
  attempts: number;
  firstReceived: Date;
  now: Date;
  /** namespace/name */
  flow: string;
  sourceMsgId: string;
}

/** JetStream's own headers (Nats-Msg-Id, Nats-Expected-*) are not copied: they would change the publish. */
export function deadLetterHeaders(input: DeadLetterInput): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(input.original)) {
    if (!k.toLowerCase().startsWith('nats-')) out[k] = v;
  }
  out[DLQ_HEADERS.errorClass] = input.error.name;
  out[DLQ_HEADERS.errorCode] = input.error.code;
  out[DLQ_HEADERS.errorMessage] = singleLine(input.error.message);
  out[DLQ_HEADERS.errorReason] = input.error.reason;
  out[DLQ_HEADERS.attempts] = String(input.attempts);
  out[DLQ_HEADERS.firstReceived] = input.firstReceived.toISOString();
  out[DLQ_HEADERS.deadLetteredAt] = input.now.toISOString();
  out[DLQ_HEADERS.flow] = input.flow;
  out[DLQ_HEADERS.sourceMsgId] = input.sourceMsgId;
  return out;
}

export function deadLetterMsgId(sourceMsgId: string): string {
  return `dlq:${sourceMsgId}`;
}
