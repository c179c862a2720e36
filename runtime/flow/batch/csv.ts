// CSV as RFC 4180 writes it, parsed incrementally (chunks may split anywhere): a header row, fields
// separated by a delimiter, records by CRLF (LF or CR alone accepted), quoted fields that hold
// delimiters, line breaks and doubled quotes. Pure: the reader feeds it text.
//
// Leniencies, as spreadsheet exports need them: a quote inside an unquoted field is kept literally;
// blank lines are skipped. Errors are per record (the record is reported, the rest goes on): text
// after a closing quote, a quoted field still open at the end of the file.

export interface CsvRecord {
  /** Physical line (1-based) where the record starts. */
  line: number;
  fields: string[];
  /** The record's text as in the file, without its line break (for reports and reject files). */
  raw: string;
  /** Set when the record is malformed. */
  error?: string;
}

export interface CsvOptions {
  /** Field separator, one character; default ",". */
  delimiter?: string;
}

export class CsvParser {
  readonly #delimiter: string;
  #line = 1;
  #recordLine = 1;
  #fields: string[] = [];
  #field = '';
  #raw = '';
  /** The current field started with a quote. */
  #quoted = false;
  #inQuotes = false;
  #afterQuote = false;
  #pendingCr = false;
  #started = false;
  #bomChecked = false;
  #error: string | undefined;
  #out: CsvRecord[] = [];

  constructor(options: CsvOptions = {}) {
    const d = options.delimiter ?? ',';
    if (d.length !== 1 || d === '"' || d === '\r' || d === '\n') {
      throw new RangeError(
        `the CSV delimiter must be one character other than a quote or line break, not ${JSON.stringify(d)}`,
      );
    }
    this.#delimiter = d;
  }

  #endField(): void {
    this.#fields.push(this.#field);
    this.#field = '';
    this.#quoted = false;
    this.#afterQuote = false;
  }

  #endRecord(): void {
    const blank = this.#fields.length === 0 && this.#field === '' && !this.#quoted;
    if (!blank) {
      this.#endField();
      const record: CsvRecord = { line: this.#recordLine, fields: this.#fields, raw: this.#raw };
      if (this.#error) record.error = this.#error;
      this.#out.push(record);
    }
    this.#fields = [];
    this.#field = '';
    this.#raw = '';
    this.#quoted = false;
    this.#afterQuote = false;
    this.#error = undefined;
    this.#started = false;
  }

  /** Feed text; returns the records completed by it. */
  push(chunk: string): CsvRecord[] {
    let text = chunk;
    if (!this.#bomChecked && text.length > 0) {
      this.#bomChecked = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    const d = this.#delimiter;
    for (let i = 0; i < text.length; i++) {
      const c = text[i]!;
      if (this.#pendingCr) {
        this.#pendingCr = false;
        if (c === '\n') {
          // The LF of a CRLF: the line was counted at the CR.
          if (this.#inQuotes) {
            this.#field += c;
            this.#raw += c;
          }
          continue;
        }
      }
      if (!this.#started) {
        this.#started = true;
        this.#recordLine = this.#line;
      }
      if (this.#inQuotes) {
        if (c === '"') {
          this.#inQuotes = false;
          this.#afterQuote = true;
        } else {
          this.#field += c;
          if (c === '\n') this.#line++;
          else if (c === '\r') {
            this.#line++;
            this.#pendingCr = true;
          }
        }
        this.#raw += c;
        continue;
      }
      if (c === '\r' || c === '\n') {
        this.#line++;
        if (c === '\r') this.#pendingCr = true;
        this.#endRecord();
        continue;
      }
      this.#raw += c;
      if (this.#afterQuote) {
        if (c === '"') {
          // A doubled quote inside a quoted field.
          this.#field += '"';
          this.#inQuotes = true;
          this.#afterQuote = false;
        } else if (c === d) {
          this.#endField();
        } else {
          this.#error ??= `unexpected ${JSON.stringify(c)} after the closing quote of field ${this.#fields.length + 1}; quote the whole field and double the quotes inside it`;
          this.#field += c;
        }
        continue;
      }
      if (c === d) this.#endField();
      else if (c === '"' && this.#field === '' && !this.#quoted) {
        this.#quoted = true;
        this.#inQuotes = true;
      } else this.#field += c;
    }
    return this.#take();
  }

  /** End of input: the last record (without a final line break), or an unterminated quote. */
  end(): CsvRecord[] {
    if (this.#inQuotes) {
      this.#error ??= `a quoted field opened on line ${this.#recordLine} is never closed`;
      this.#inQuotes = false;
    }
    if (this.#started) this.#endRecord();
    return this.#take();
  }

  #take(): CsvRecord[] {
    const out = this.#out;
    this.#out = [];
    return out;
  }
}

/** Parse a whole CSV text (tests, small files). */
export function parseCsv(text: string, options: CsvOptions = {}): CsvRecord[] {
  const p = new CsvParser(options);
  return [...p.push(text), ...p.end()];
}

/** Problems with a header row (empty or repeated names), or undefined when it is usable. */
export function headerProblem(fields: readonly string[]): string | undefined {
  const seen = new Map<string, number>();
  for (const [i, raw] of fields.entries()) {
    const name = raw.trim();
    if (name === '') return `column ${i + 1} of the header row has no name; every column needs one`;
    const before = seen.get(name);
    if (before !== undefined)
      return `the header names column "${name}" twice (columns ${before + 1} and ${i + 1})`;
    seen.set(name, i);
  }
  return undefined;
}

/** A data row as a JSON record keyed by the header; undefined plus a reason when the column count differs. */
export function csvRowToRecord(
  header: readonly string[],
  fields: readonly string[],
): { record: Record<string, string> } | { error: string } {
  if (fields.length !== header.length) {
    return {
      error: `has ${fields.length} field${fields.length === 1 ? '' : 's'}, the header has ${header.length}`,
    };
  }
  const record: Record<string, string> = {};
  header.forEach((name, i) => {
    record[name.trim()] = fields[i]!;
  });
  return { record };
}

/** One field written for CSV (quoted when it must be). */
export function csvField(value: string, delimiter = ','): string {
  return /["\r\n]/.test(value) || value.includes(delimiter) || value !== value.trim()
    ? `"${value.replaceAll('"', '""')}"`
    : value;
}
