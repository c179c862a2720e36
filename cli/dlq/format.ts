// What `tally dlq` prints: tables, JSON and the detail of one dead letter. Pure. Header values and
// payloads come from outside, so control characters are escaped before they reach a terminal.
import type { DeadLetter, DeadLetterSummary } from '../../runtime/flow/dead-letters/record.ts';

/** Escapes control characters (C0, DEL, C1) and bidi overrides; newline and tab only when asked. */
export function printable(text: string, keepNewlines = false): string {
  return text.replace(/[\p{Cc}\u202a-\u202e\u2066-\u2069]/gu, (c) => {
    if (keepNewlines && (c === '\n' || c === '\t')) return c;
    return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
  });
}

/** At most `max` characters, marked with an ellipsis when cut. */
export function truncate(text: string, max: number): string {
  const chars = [...text];
  return chars.length <= max ? text : `${chars.slice(0, Math.max(0, max - 1)).join('')}…`;
}

/** ISO 8601 to the second, UTC. */
export function isoSeconds(d: Date | undefined): string {
  return d ? d.toISOString().replace(/\.\d{3}Z$/, 'Z') : '-';
}

export function table(headings: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headings.map((h, i) => Math.max(h.length, ...rows.map((r) => [...(r[i] ?? '')].length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c + ' '.repeat(widths[i]! - [...c].length)))
      .join('  ')
      .trimEnd();
  return `${[line(headings), ...rows.map(line)].join('\n')}\n`;
}

export const LIST_MESSAGE_WIDTH = 80;

export function formatListTable(items: readonly DeadLetterSummary[]): string {
  return table(
    ['SEQ', 'DEAD-LETTERED', 'ATTEMPTS', 'REASON', 'ERROR CLASS', 'SOURCE MSG ID', 'MESSAGE'],
    items.map((d) => [
      String(d.seq),
      isoSeconds(d.storedAt),
      d.attempts === undefined ? '-' : String(d.attempts),
      printable(d.reason) || '-',
      printable(d.errorClass) || '-',
      truncate(printable(d.sourceMsgId), 48),
      truncate(printable(d.message), LIST_MESSAGE_WIDTH) || '-',
    ]),
  );
}

export function summaryJson(d: DeadLetterSummary) {
  return {
    seq: d.seq,
    deadLetteredAt: d.storedAt.toISOString(),
    flow: d.flow,
    reason: d.reason,
    errorClass: d.errorClass,
    errorCode: d.errorCode,
    message: d.message,
    attempts: d.attempts ?? null,
    firstReceived: d.firstReceived?.toISOString() ?? null,
    sourceMsgId: d.sourceMsgId,
  };
}

export type DecodedPayload =
  | { encoding: 'json'; value: unknown }
  | { encoding: 'utf8'; value: string }
  | { encoding: 'base64'; value: string };

export function decodePayload(data: Uint8Array): DecodedPayload {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(data);
  } catch {
    return { encoding: 'base64', value: Buffer.from(data).toString('base64') };
  }
  try {
    return { encoding: 'json', value: JSON.parse(text) as unknown };
  } catch {
    return { encoding: 'utf8', value: text };
  }
}

export function formatShowText(d: DeadLetter, stream: string): string {
  const field = (label: string, value: string) => `${`${label}:`.padEnd(17)}${printable(value)}`;
  const lines = [
    `Dead letter ${d.seq} in ${stream} (subject ${printable(d.subject)})`,
    field('Dead-lettered', d.storedAt.toISOString()),
    field('Flow', d.flow || '-'),
    field('Reason', d.reason || '-'),
    field('Error class', d.errorCode ? `${d.errorClass} (${d.errorCode})` : d.errorClass || '-'),
    field('Message', d.message || '-'),
    field('Attempts', d.attempts === undefined ? '-' : String(d.attempts)),
    field('First received', d.firstReceived?.toISOString() ?? '-'),
    field('Source msg id', d.sourceMsgId),
    '',
    'Headers:',
    ...Object.keys(d.headers)
      .sort((a, b) => a.localeCompare(b))
      .map((k) => `  ${printable(k)}: ${printable(d.headers[k]!)}`),
    '',
  ];
  const payload = decodePayload(d.data);
  const what =
    payload.encoding === 'json'
      ? 'JSON'
      : payload.encoding === 'utf8'
        ? 'text, not JSON'
        : 'not UTF-8; base64';
  lines.push(`Payload (${d.data.byteLength} bytes, ${what}):`);
  if (payload.encoding === 'json') lines.push(JSON.stringify(payload.value, null, 2));
  else lines.push(printable(payload.value, true));
  return `${lines.join('\n')}\n`;
}

export function showJson(d: DeadLetter, stream: string) {
  const payload = decodePayload(d.data);
  return {
    stream,
    subject: d.subject,
    ...summaryJson(d),
    headers: d.headers,
    payloadBytes: d.data.byteLength,
    payloadEncoding: payload.encoding,
    payload: payload.value,
  };
}

export interface ReplayRow {
  seq: number;
  sourceMsgId: string;
  reason: string;
  result: 'would replay' | 'replayed' | 'gone' | 'failed' | 'not attempted';
  replaySeq?: number;
  /** The ingest subject (partition) the replay went to. */
  subject?: string;
  msgId?: string;
  purged?: boolean;
  error?: string;
}

export function formatReplayTable(rows: readonly ReplayRow[]): string {
  return table(
    ['SEQ', 'SOURCE MSG ID', 'REASON', 'RESULT', 'INGEST SEQ', 'PURGED'],
    rows.map((r) => [
      String(r.seq),
      truncate(printable(r.sourceMsgId), 48),
      printable(r.reason) || '-',
      r.error ? `${r.result}: ${truncate(printable(r.error), LIST_MESSAGE_WIDTH)}` : r.result,
      r.replaySeq === undefined ? '-' : String(r.replaySeq),
      r.purged === undefined ? '-' : r.purged ? 'yes' : 'no',
    ]),
  );
}
