// Framing of a Kubernetes watch response: newline-delimited JSON events over a byte stream.
// Pure (no I/O) so it can be tested by cutting the stream at every byte.
//
// Why bytes, not strings: the network cuts chunks anywhere, including inside a multi-byte UTF-8
// character. Decoding each chunk on its own turns both halves into U+FFFD, and "Müller" reaches
// the informer cache (and from there WorkerConfigs) as "M��ller". A streaming TextDecoder holds
// the incomplete bytes back until the rest of the character arrives.
import { TallyError } from '../../api/errors.ts';

/** How much of a bad line goes into an error message: enough to recognise it, not a whole object. */
const MAX_QUOTED = 200;

/** A line of the watch stream that is not JSON; `line` is all of it, the message quotes the start. */
export class WatchLineError extends TallyError {
  override name = 'WatchLineError';
  readonly code = 'KUBE_WATCH_LINE_INVALID';
  readonly line: string;
  constructor(line: string, cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(`the apiserver sent a watch line that is not JSON (${reason}): ${quote(line)}`, { cause });
    this.line = line;
  }
}

/**
 * Feed it the response body chunk by chunk with `push`, then call `end` once the body is done.
 * Each returns the events completed by that input, parsed but not validated (the caller knows
 * the shape). Blank lines (and a trailing CR) are ignored. A bad line throws WatchLineError;
 * the stream is then unusable (the caller ends the watch and re-lists), so the decoder is spent.
 */
export class WatchDecoder {
  readonly #text = new TextDecoder('utf-8');
  /** The tail after the last newline: the start of an event whose newline has not arrived yet. */
  #partial = '';

  push(chunk: Uint8Array): unknown[] {
    return this.#lines(this.#text.decode(chunk, { stream: true }));
  }

  /** Flushes the decoder and parses a last line that had no newline. */
  end(): unknown[] {
    const out = this.#lines(this.#text.decode());
    const last = this.#partial;
    this.#partial = '';
    const event = parseLine(last);
    if (event !== undefined) out.push(event);
    return out;
  }

  #lines(text: string): unknown[] {
    // Most chunks of a large object carry no newline: keep them without rescanning the tail.
    let nl = text.indexOf('\n');
    if (nl < 0) {
      this.#partial += text;
      return [];
    }
    const out: unknown[] = [];
    const buf = this.#partial + text;
    let start = 0;
    nl += this.#partial.length;
    while (nl >= 0) {
      const event = parseLine(buf.slice(start, nl));
      if (event !== undefined) out.push(event);
      start = nl + 1;
      nl = buf.indexOf('\n', start);
    }
    this.#partial = buf.slice(start);
    return out;
  }
}

/** The events of a whole byte stream (such as an undici response body), flushed at its end. */
export async function* decodeWatchStream(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<unknown> {
  const decoder = new WatchDecoder();
  for await (const chunk of chunks) yield* decoder.push(chunk);
  yield* decoder.end();
}

/** `undefined` for a blank line; trimming also drops the CR of a CRLF line ending. */
function parseLine(raw: string): unknown {
  const line = raw.trim();
  if (!line) return undefined;
  try {
    return JSON.parse(line);
  } catch (cause) {
    throw new WatchLineError(line, cause);
  }
}

/** The line as sent (raw, so JSON stays readable), cut to MAX_QUOTED characters. */
function quote(line: string): string {
  if (line.length <= MAX_QUOTED) return line;
  let head = line.slice(0, MAX_QUOTED);
  // Do not cut a surrogate pair in half, or the message itself would carry a broken character.
  if (/[\uD800-\uDBFF]$/.test(head)) head = head.slice(0, -1);
  return `${head}… (${line.length} chars)`;
}
