import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CsvParser, csvField, csvRowToRecord, headerProblem, parseCsv } from './csv.ts';

const rows = (text: string, delimiter?: string) =>
  parseCsv(text, delimiter ? { delimiter } : {}).map((r) => ({
    line: r.line,
    fields: r.fields,
    ...(r.error ? { error: r.error } : {}),
  }));

describe('CsvParser (RFC 4180)', () => {
  it('reads plain records with CRLF or LF and a missing final line break', () => {
    expect(rows('id,sku\r\n1,A\r\n2,B')).toEqual([
      { line: 1, fields: ['id', 'sku'] },
      { line: 2, fields: ['1', 'A'] },
      { line: 3, fields: ['2', 'B'] },
    ]);
    expect(rows('a\nb\n')).toEqual([
      { line: 1, fields: ['a'] },
      { line: 2, fields: ['b'] },
    ]);
  });

  it('keeps delimiters, line breaks and doubled quotes inside quoted fields, numbering physical lines', () => {
    const text =
      'id,note,qty\r\n1,"Deliver to rear door, ring ""twice""",3\r\n2,"line one\r\nline two",4\n3,"",5\n';
    expect(rows(text)).toEqual([
      { line: 1, fields: ['id', 'note', 'qty'] },
      { line: 2, fields: ['1', 'Deliver to rear door, ring "twice"', '3'] },
      { line: 3, fields: ['2', 'line one\r\nline two', '4'] },
      { line: 5, fields: ['3', '', '5'] },
    ]);
  });

  it('keeps empty fields and skips blank lines', () => {
    expect(rows('a,b,c\n,,\n\n\r\nx,,z\n')).toEqual([
      { line: 1, fields: ['a', 'b', 'c'] },
      { line: 2, fields: ['', '', ''] },
      { line: 5, fields: ['x', '', 'z'] },
    ]);
  });

  it('strips a UTF-8 byte order mark and takes another delimiter', () => {
    expect(rows('\uFEFFa;b\n"1;2";3\n', ';')).toEqual([
      { line: 1, fields: ['a', 'b'] },
      { line: 2, fields: ['1;2', '3'] },
    ]);
    expect(() => new CsvParser({ delimiter: '"' })).toThrow(/delimiter/);
  });

  it('reports text after a closing quote and an unterminated quote, and goes on', () => {
    const r = rows('a,b\n"x"y,1\n2,3\n"open,4\n5,6');
    expect(r[1]).toMatchObject({ line: 2, error: expect.stringMatching(/after the closing quote/) });
    expect(r[2]).toEqual({ line: 3, fields: ['2', '3'] });
    expect(r[3]).toMatchObject({ line: 4, error: expect.stringMatching(/opened on line 4 is never closed/) });
  });

  it('keeps a quote inside an unquoted field literally', () => {
    expect(rows('a\n12" pipe\n')[1]?.fields).toEqual(['12" pipe']);
  });

  it('keeps the raw text of each record', () => {
    const r = parseCsv('a,b\n"x\n""y""",2\n');
    expect(r[1]?.raw).toBe('"x\n""y""",2');
  });

  it('gives the same records however the text is split into chunks', () => {
    const field = fc.string({
      unit: fc.constantFrom('a', 'b', ',', '"', '\n', '\r', ' ', 'é', '😀'),
      maxLength: 8,
    });
    fc.assert(
      fc.property(
        fc.array(fc.array(field, { minLength: 2, maxLength: 4 }), { minLength: 1, maxLength: 8 }),
        fc.array(fc.nat({ max: 50 }), { maxLength: 10 }),
        fc.constantFrom('\n', '\r\n'),
        (records, cuts, eol) => {
          // A record of one empty field would be a blank line: give every record a first field.
          const data = records.map((r) => ['k', ...r]);
          const text = data.map((r) => r.map((f) => csvField(f)).join(',')).join(eol) + eol;
          const parser = new CsvParser();
          const out = [];
          let pos = 0;
          for (const cut of [...cuts].sort((a, b) => a - b)) {
            const at = Math.min(text.length, cut);
            if (at > pos) {
              out.push(...parser.push(text.slice(pos, at)));
              pos = at;
            }
          }
          out.push(...parser.push(text.slice(pos)), ...parser.end());
          expect(out.map((r) => r.fields)).toEqual(data);
          expect(out.every((r) => r.error === undefined)).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('header and rows', () => {
  it('refuses empty and repeated column names', () => {
    expect(headerProblem(['id', 'sku'])).toBeUndefined();
    expect(headerProblem(['id', ' '])).toMatch(/column 2 .* no name/);
    expect(headerProblem(['id', 'sku', 'id'])).toMatch(/"id" twice \(columns 1 and 3\)/);
  });

  it('turns a row into a record keyed by the header, or says what is wrong', () => {
    expect(csvRowToRecord(['id', ' sku '], ['1', 'A'])).toEqual({ record: { id: '1', sku: 'A' } });
    expect(csvRowToRecord(['id', 'sku'], ['1'])).toEqual({ error: 'has 1 field, the header has 2' });
  });
});
