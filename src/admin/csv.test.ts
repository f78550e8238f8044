import { describe, expect, it } from 'vitest';
import { csvLine, parseCsv } from './csv.ts';

describe('csv', () => {
  it('When cells hold commas, quotes and newlines, then they round-trip through csvLine and parseCsv', () => {
    const text = csvLine(['a,b', 'say "hi"', 'two\nlines', '']) + csvLine(['x', 'y', 'z', 'w']);
    expect(parseCsv(text).rows.map((r) => r.cells)).toEqual([
      ['a,b', 'say "hi"', 'two\nlines', ''],
      ['x', 'y', 'z', 'w'],
    ]);
  });

  it('When a cell starts like a spreadsheet formula, then the export defuses it with a quote mark', () => {
    expect(csvLine(['=HYPERLINK("x")', '+1', '-2', '@a', 'ok'])).toBe(`"'=HYPERLINK(""x"")",'+1,'-2,'@a,ok\r\n`);
  });

  it('When the input has a BOM, blank lines and CRLF, then rows keep their line numbers', () => {
    const r = parseCsv('\ufeffh1,h2\r\n\r\na,b\r\nc,d');
    expect(r.rows).toEqual([
      { line: 1, cells: ['h1', 'h2'] },
      { line: 3, cells: ['a', 'b'] },
      { line: 4, cells: ['c', 'd'] },
    ]);
  });

  it('When a quote is never closed or sits inside a bare cell, then the error names the line', () => {
    expect(parseCsv('a,b\n"open,c\n').error).toEqual({ line: 2, message: 'a quoted cell is not closed' });
    expect(parseCsv('a,b\nx"y,c\n').error?.line).toBe(2);
  });
});
