/**
 * RFC 4180 CSV: fields separated by commas, records by CRLF or LF (a lone CR too); a field in
 * double quotes may hold commas, line breaks and doubled quotes (`""` → `"`). A leading UTF-8 BOM is
 * dropped. Lenient where files in the wild are: a quote inside an unquoted field is kept as text,
 * and text after a closing quote is appended to the field. Each record carries the physical line
 * (1-based) it starts on; lines that are entirely empty are no record. An opening quote never
 * closed is an error at the line where its record starts (the rest of the file is in that field).
 */

export interface CsvRecord {
  fields: string[];
  /** Physical line (1-based) where the record starts. */
  line: number;
}

export interface CsvParse {
  records: CsvRecord[];
  errors: { line: number; reason: string }[];
}

export function parseCsv(input: string): CsvParse {
  const text = input.charCodeAt(0) === 0xfeff ? input.slice(1) : input;
  const records: CsvRecord[] = [];
  const errors: { line: number; reason: string }[] = [];
  let line = 1;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const start = line;
    const fields: string[] = [];
    let field = '';
    let quotedOpen = false;
    let ended = false;
    let sawAny = false;
    while (i < n && !ended) {
      const c = text[i];
      if (quotedOpen) {
        if (c === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i += 2;
          } else {
            quotedOpen = false;
            i += 1;
          }
        } else {
          if (c === '\n' || (c === '\r' && text[i + 1] !== '\n')) line += 1;
          field += c;
          i += 1;
        }
        continue;
      }
      if (c === '"' && field === '') {
        quotedOpen = true;
        sawAny = true;
        i += 1;
      } else if (c === ',') {
        fields.push(field);
        field = '';
        sawAny = true;
        i += 1;
      } else if (c === '\r' || c === '\n') {
        i += c === '\r' && text[i + 1] === '\n' ? 2 : 1;
        line += 1;
        ended = true;
      } else {
        field += c;
        sawAny = true;
        i += 1;
      }
    }
    if (quotedOpen) {
      errors.push({ line: start, reason: 'a quoted field is never closed' });
      break;
    }
    if (!sawAny) continue;
    fields.push(field);
    records.push({ fields, line: start });
  }
  return { records, errors };
}
