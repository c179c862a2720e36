// The watch stream is newline-delimited JSON over TCP, and TCP cuts it wherever it likes: inside
// an event, inside a multi-byte UTF-8 character. These tests cut it everywhere and expect the
// same events as if it had arrived in one piece.
import { describe, expect, it } from 'vitest';
import { decodeWatchStream, WatchDecoder, WatchLineError } from './watch-decoder.ts';

const enc = new TextEncoder();
// Buffers, as undici yields them (and as the old `chunk.toString()` decoding expected).
const bytes = (s: string) => Buffer.from(enc.encode(s));

const event = (name: string, value: string) => ({
  type: 'ADDED',
  object: { metadata: { name }, data: { lookup: value } },
});
const line = (e: unknown) => `${JSON.stringify(e)}\n`;

/** Feeds `chunks` through one decoder and returns every event, including the flush at the end. */
function decodeAll(chunks: Uint8Array[]): unknown[] {
  const d = new WatchDecoder();
  return [...chunks.flatMap((c) => d.push(c)), ...d.end()];
}

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected an error');
}

/** Cuts `buf` at the given byte offsets. */
function cut(buf: Uint8Array, offsets: number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const o of [...offsets, buf.length]) {
    out.push(buf.subarray(prev, o));
    prev = o;
  }
  return out;
}

describe('WatchDecoder', () => {
  // 2, 3 and 4 bytes in UTF-8 (the last one is also a surrogate pair in UTF-16).
  for (const ch of ['ü', '€', '𝄞']) {
    it(`keeps ${JSON.stringify(ch)} (${enc.encode(ch).length} bytes) intact when a chunk boundary falls inside it`, () => {
      const value = `M${ch}ller`;
      const buf = bytes(line(event('a', value)));
      const start = buf.indexOf(bytes(ch));
      const width = enc.encode(ch).length;
      expect(start).toBeGreaterThan(0);
      for (let k = 1; k < width; k++) {
        const events = decodeAll(cut(buf, [start + k]));
        expect(events, `cut ${k} byte(s) into the character`).toEqual([event('a', value)]);
      }
    });
  }

  it('keeps multi-byte characters intact at every cut point of a line, in two or three chunks', () => {
    const value = 'Müller zahlt 5 € für 𝄞';
    const buf = bytes(line(event('a', value)));
    for (let i = 1; i < buf.length; i++) {
      expect(decodeAll(cut(buf, [i])), `cut at byte ${i}`).toEqual([event('a', value)]);
      if (i + 1 < buf.length) {
        expect(decodeAll(cut(buf, [i, i + 1])), `cut at bytes ${i} and ${i + 1}`).toEqual([
          event('a', value),
        ]);
      }
    }
  });

  it('yields several events that arrive in one chunk, in order', () => {
    const evs = [event('a', '1'), event('b', '€'), event('c', '3')];
    const d = new WatchDecoder();
    expect(d.push(bytes(evs.map(line).join('')))).toEqual(evs);
    expect(d.end()).toEqual([]);
  });

  it('yields one event that arrives one byte at a time, only once its newline has arrived', () => {
    const e = event('a', 'Müller €𝄞');
    const buf = bytes(line(e));
    const d = new WatchDecoder();
    const seen: unknown[] = [];
    for (let i = 0; i < buf.length; i++) {
      seen.push(...d.push(buf.subarray(i, i + 1)));
      if (i < buf.length - 1) expect(seen).toEqual([]);
    }
    expect(seen).toEqual([e]);
    expect(d.end()).toEqual([]);
  });

  it('flushes a final line that has no newline when the stream ends', () => {
    const a = event('a', '€');
    const b = event('b', 'ü');
    const d = new WatchDecoder();
    expect(d.push(bytes(`${line(a)}${JSON.stringify(b)}`))).toEqual([a]);
    expect(d.end()).toEqual([b]);
  });

  it('ignores blank lines, including whitespace-only and CRLF ones', () => {
    const a = event('a', '1');
    const b = event('b', '2');
    const text = `\n\n${line(a)}   \n\r\n${JSON.stringify(b)}\r\n\n`;
    expect(decodeAll([bytes(text)])).toEqual([a, b]);
  });

  it('throws a readable error naming what the apiserver sent when a line is not JSON', () => {
    const d = new WatchDecoder();
    const err = catchError(() => d.push(bytes(`${line(event('a', '1'))}<html>502 Bad Gateway</html>\n`)));
    expect(err).toBeInstanceOf(WatchLineError);
    const e = err as WatchLineError;
    expect(e.message).toMatch(/not JSON/);
    expect(e.message).toContain('<html>502 Bad Gateway</html>');
    expect(e.line).toBe('<html>502 Bad Gateway</html>');
    expect(e.cause).toBeInstanceOf(SyntaxError);
  });

  it('truncates a long invalid line in the error message', () => {
    const junk = `{"type":"ADDED","object":${'x'.repeat(10_000)}`;
    const err = catchError(() => new WatchDecoder().push(bytes(`${junk}\n`)));
    expect(err).toBeInstanceOf(WatchLineError);
    const msg = (err as Error).message;
    expect(msg.length).toBeLessThan(400);
    expect(msg).toContain('{"type":"ADDED","object":xxx');
    expect(msg).toContain(`(${junk.length} chars)`);
    expect((err as WatchLineError).line).toBe(junk);
  });

  it('throws the same readable error for an invalid line flushed at the end', () => {
    const d = new WatchDecoder();
    expect(d.push(bytes('{"type":"ADDED","obj'))).toEqual([]);
    expect(() => d.end()).toThrow(/not JSON.*\{"type":"ADDED","obj/);
  });
});

describe('decodeWatchStream', () => {
  it('decodes an async byte stream, cut inside characters, and flushes at its end', async () => {
    const evs = [event('a', 'Müller'), event('b', '€'), event('c', '𝄞')];
    const buf = bytes(evs.map(line).join('').trimEnd()); // the last event has no newline
    async function* source() {
      for (let i = 0; i < buf.length; i += 3) yield buf.subarray(i, i + 3);
    }
    const out: unknown[] = [];
    for await (const e of decodeWatchStream(source())) out.push(e);
    expect(out).toEqual(evs);
  });
});
