/**
 * CSV in and out (RFC 4180: comma, CRLF, double quotes doubled). Cells an exported file
 * could turn into a spreadsheet formula are prefixed with `'` (OWASP CSV injection), and
 * the parser is strict: an unterminated quote or a stray quote is an error with its line.
 */

const FORMULA_START = /^[=+\-@\t\r]/;

export function csvCell(v: unknown): string {
  let s = v === null || v === undefined ? '' : v instanceof Date ? v.toISOString() : String(v);
  if (FORMULA_START.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export const csvLine = (values: readonly unknown[]): string => values.map(csvCell).join(',') + '\r\n';

export interface CsvParse {
  rows: { line: number; cells: string[] }[];
  error?: { line: number; message: string };
}

/** Parses the whole text; blank lines are skipped; a UTF-8 BOM is ignored. */
export function parseCsv(text: string): CsvParse {
  const src = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const rows: CsvParse['rows'] = [];
  let cells: string[] = [];
  let cell = '';
  let quoted = false;
  let line = 1;
  let rowLine = 1;
  let cellStarted = false;
  const endRow = () => {
    cells.push(cell);
    if (cells.length > 1 || cells[0] !== '') rows.push({ line: rowLine, cells });
    cells = [];
    cell = '';
    cellStarted = false;
  };
  for (let i = 0; i < src.length; i++) {
    const c = src[i] as string;
    if (quoted) {
      if (c === '"') {
        if (src[i + 1] === '"') {
          cell += '"';
          i++;
        } else quoted = false;
      } else {
        if (c === '\n') line++;
        cell += c;
      }
      continue;
    }
    if (c === '"') {
      if (cellStarted) return { rows, error: { line, message: 'a quote inside an unquoted cell' } };
      quoted = true;
      cellStarted = true;
    } else if (c === ',') {
      cells.push(cell);
      cell = '';
      cellStarted = false;
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && src[i + 1] === '\n') i++;
      endRow();
      line++;
      rowLine = line;
    } else {
      cell += c;
      cellStarted = true;
    }
  }
  if (quoted) return { rows, error: { line: rowLine, message: 'a quoted cell is not closed' } };
  if (cell !== '' || cells.length) endRow();
  return { rows };
}
