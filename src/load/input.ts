/**
 * `vecscale load`'s input: bytes → numbered lines → rows or bad lines. Pure, streaming, no database.
 *
 * Two formats, one row shape (id, embedding, metadata):
 * - JSON lines (`.jsonl`, `.ndjson`): one object per line, `{"id": "a", "embedding": [0.1, …], "metadata": {…}}`;
 *   `metadata` may be absent or null (it becomes `{}`); any other field is refused (a typo would lose data silently).
 *   An id is a string, or an integer (written as its digits).
 * - CSV (`.csv`, RFC 4180): a header naming `id`, `embedding` and optionally `metadata`, in any order; fields with
 *   commas, quotes or newlines quoted (`"[1,2,3]"`, `"{""k"": 1}"`), a quote inside doubled. An empty unquoted id
 *   is a missing id (as PostgreSQL's CSV reads NULL); `""` is the empty id.
 *
 * Every check the database would make on a row is made here first, so a row it would refuse is a bad line (named
 * with its line number and the reason) and never reaches a COPY, whose failure would undo the whole load: the
 * dimension, finite numbers that fit pgvector's single precision, JSON the database's jsonb can hold (no \u0000, no
 * lone surrogate, numbers within numeric's range, bounded nesting), metadata an object, an id the primary key's btree
 * can hold, UTF-8 text. The embedding and the metadata reach the database as the input wrote them (numbers keep
 * every digit); JSON.parse only checks them.
 */
import { isUtf8 } from 'node:buffer';
import { NUMBER, NUMERIC_MAX_EXPONENT, NUMERIC_MAX_SCALE, numberTokens } from '../util/json-numbers.js';

export type InputFormat = 'jsonl' | 'csv';

/**
 * A row to load; `embedding` and `metadata` are JSON text as written in the input (the embedding's whitespace all
 * spaces: it needs no COPY escapes).
 */
export interface Row {
  /** 1-based line number in the input (a CSV record's first line). */
  readonly line: number;
  readonly id: string;
  readonly embedding: string;
  readonly metadata: string;
}

export interface BadLine {
  readonly line: number;
  readonly reason: string;
}

export type Parsed = Row | BadLine;
export const isBad = (p: Parsed): p is BadLine => (p as BadLine).reason !== undefined;

/** One physical line: its text, or why it has none (too long, not UTF-8). */
export interface RawLine {
  readonly line: number;
  readonly text: string;
  readonly problem?: string;
  /** It ended in CRLF (the CR is not in `text`). */
  readonly crlf?: boolean;
}

/** A line longer than this is a bad line (its bytes are skipped, not kept). */
export const MAX_LINE_BYTES = 64 * 1024 * 1024;
/**
 * The longest id: a btree entry holds 2,704 bytes on 8 kB pages (BTMaxItemSize); an uncompressed varchar key needs
 * 12 more (tuple header, varlena header). Longer compressible ids might fit; none is worth the failed load.
 */
export const MAX_ID_BYTES = 2692;
/** Metadata nested deeper than this is refused (PostgreSQL's recursive jsonb parser gives up somewhere past 5,000). */
export const MAX_METADATA_NESTING = 1000;

// --- lines -----------------------------------------------------------------------------------------------------

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

function decode(line: number, bytes: Buffer, tooLong: boolean): RawLine {
  if (tooLong || bytes.length > MAX_LINE_BYTES) return { line, text: '', problem: `the line is longer than ${MAX_LINE_BYTES / 1024 / 1024} MiB` };
  const end = bytes.length > 0 && bytes[bytes.length - 1] === 0x0d ? bytes.length - 1 : bytes.length;
  const body = end === bytes.length ? bytes : bytes.subarray(0, end);
  if (!isUtf8(body)) return { line, text: '', problem: 'the line is not valid UTF-8' };
  return { line, text: body.toString('utf8'), ...(end !== bytes.length ? { crlf: true } : {}) };
}

/**
 * Splits a byte stream into numbered lines (LF or CRLF; a UTF-8 BOM at the start is dropped), one array per chunk
 * read. `onBytes` hears of every chunk's size as it is read (progress against the file's size).
 *
 * The complete lines of a chunk are checked and decoded at once (one isUtf8, one toString, one split: native code),
 * and line by line only when that check fails, to name the lines that are not UTF-8.
 */
export async function* readLines(input: AsyncIterable<Buffer | string>, onBytes: (n: number) => void = () => undefined): AsyncGenerator<RawLine[]> {
  let lineNo = 0;
  let carry: Buffer[] = [];
  let carryLength = 0;
  let tooLong = false;
  let head: Buffer | undefined = Buffer.alloc(0); // the first bytes, until the BOM question is settled
  for await (const piece of input) {
    let chunk = typeof piece === 'string' ? Buffer.from(piece, 'utf8') : piece;
    onBytes(chunk.length);
    if (head !== undefined) {
      head = Buffer.concat([head, chunk]);
      if (head.length < BOM.length && BOM.subarray(0, head.length).equals(head)) continue;
      chunk = head.subarray(0, BOM.length).equals(BOM) ? head.subarray(BOM.length) : head;
      head = undefined;
    }
    const out: RawLine[] = [];
    const firstNl = chunk.indexOf(0x0a);
    if (firstNl < 0) {
      if (!tooLong && chunk.length > 0) {
        carry.push(chunk);
        carryLength += chunk.length;
        if (carryLength > MAX_LINE_BYTES) {
          tooLong = true;
          carry = [];
          carryLength = 0;
        }
      }
      continue;
    }
    // The line the last chunk left open ends here.
    lineNo++;
    out.push(decode(lineNo, carry.length > 0 ? Buffer.concat([...carry, chunk.subarray(0, firstNl)]) : chunk.subarray(0, firstNl), tooLong));
    carry = [];
    carryLength = 0;
    tooLong = false;
    const lastNl = chunk.lastIndexOf(0x0a);
    if (lastNl > firstNl) {
      const body = chunk.subarray(firstNl + 1, lastNl);
      if (isUtf8(body)) {
        for (const text of body.toString('utf8').split('\n')) {
          lineNo++;
          out.push(text.endsWith('\r') ? { line: lineNo, text: text.slice(0, -1), crlf: true } : { line: lineNo, text });
        }
      } else {
        let start = 0;
        for (;;) {
          const nl = body.indexOf(0x0a, start);
          lineNo++;
          out.push(decode(lineNo, body.subarray(start, nl < 0 ? body.length : nl), false));
          if (nl < 0) break;
          start = nl + 1;
        }
      }
    }
    if (lastNl + 1 < chunk.length) {
      carry.push(chunk.subarray(lastNl + 1));
      carryLength = chunk.length - lastNl - 1;
    }
    yield out;
  }
  if (head !== undefined && head.length > 0) {
    // The whole input was shorter than a BOM.
    carry = [head];
    carryLength = head.length;
  }
  if (carryLength > 0 || tooLong) yield [decode(lineNo + 1, Buffer.concat(carry), tooLong)];
}

// --- checks shared by both formats -----------------------------------------------------------------------------

// \u0000 cannot be stored in text or jsonb; a lone surrogate is not Unicode (UTF-8 cannot carry it).
const BAD_STRING = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

const shown = (text: string): string => JSON.stringify(text.length > 40 ? `${text.slice(0, 36)}…` : text);

/** The id as text, or why it is not one. */
function checkId(value: unknown): string | { reason: string } {
  let id: string;
  if (value === undefined || value === null) return { reason: 'no id' };
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) return { reason: 'the id must be a string, or an integer of at most 15 digits' };
    id = String(value);
  } else if (typeof value === 'string') {
    id = value;
  } else {
    return { reason: `the id must be a string (got ${Array.isArray(value) ? 'an array' : typeof value === 'object' ? 'an object' : typeof value})` };
  }
  if (BAD_STRING.test(id)) return { reason: `the id ${shown(id)} holds \\u0000 or a lone surrogate, which PostgreSQL cannot store` };
  const bytes = Buffer.byteLength(id, 'utf8');
  if (bytes > MAX_ID_BYTES) return { reason: `the id is ${bytes} bytes long; a primary key entry holds at most ${MAX_ID_BYTES}` };
  return id;
}

/** Why a parsed embedding cannot go into vector(dimension), or undefined. */
function embeddingProblem(value: unknown, dimension: number): string | undefined {
  if (value === undefined || value === null) return 'no embedding';
  if (!Array.isArray(value)) return 'the embedding must be a JSON array of numbers';
  if (value.length !== dimension) return `the embedding has ${value.length} dimensions; the collection has ${dimension}`;
  for (let i = 0; i < value.length; i++) {
    const x: unknown = value[i];
    if (typeof x !== 'number') return `embedding[${i}] is not a number (${x === null ? 'null' : typeof x})`;
    // JSON.parse reads 1e999 as Infinity; a finite double past 3.4028235e38 is infinite in single precision.
    if (!Number.isFinite(Math.fround(x))) return `embedding[${i}] is not a finite number in single precision (|x| ≤ 3.4e38)`;
  }
  return undefined;
}

/** PostgreSQL's numeric (jsonb's numbers): at most this many digits before the point. */
const NUMERIC_MAX_WEIGHT_DIGITS = 131_072;

/** Why a JSON number token overflows numeric ("value overflows numeric format"), or undefined. */
export function jsonbNumberProblem(token: string): string | undefined {
  const m = new RegExp(`^${NUMBER.source}$`).exec(token);
  if (!m) return undefined;
  const whole = m[1]!;
  const fraction = m[2] ?? '';
  const e = Number(m[3] ?? 0);
  const digits = whole + fraction;
  const first = digits.search(/[1-9]/);
  const weight = first < 0 ? 0 : whole.length - first - 1 + e;
  if (Math.abs(e) >= NUMERIC_MAX_EXPONENT || fraction.length - e > NUMERIC_MAX_SCALE || weight >= NUMERIC_MAX_WEIGHT_DIGITS) {
    return `the number ${token.length > 24 ? `${token.slice(0, 20)}…` : token} overflows PostgreSQL's numeric`;
  }
  return undefined;
}


/** Why parsed metadata (written as `raw`) cannot be a vecs metadata value, or undefined. */
function metadataProblem(value: unknown, raw: string): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return `the metadata must be a JSON object (got ${Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value})`;
  }
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v === 'string') {
      if (BAD_STRING.test(v)) return `the metadata string ${shown(v)} holds \\u0000 or a lone surrogate, which PostgreSQL's jsonb cannot store`;
      continue;
    }
    if (typeof v !== 'object' || v === null) continue;
    if (depth > MAX_METADATA_NESTING) return `the metadata is nested deeper than ${MAX_METADATA_NESTING} levels`;
    if (Array.isArray(v)) {
      for (const x of v) stack.push([x, depth + 1]);
      continue;
    }
    for (const [k, x] of Object.entries(v)) {
      if (BAD_STRING.test(k)) return `the metadata key ${shown(k)} holds \\u0000 or a lone surrogate, which PostgreSQL's jsonb cannot store`;
      stack.push([x, depth + 1]);
    }
  }
  // Without an exponent, no number in text this short can overflow numeric (scale ≤ 16,383, weight < 131,072 digits).
  if (/\d[eE]/.test(raw) || raw.length > NUMERIC_MAX_SCALE) {
    for (const token of numberTokens(raw)) {
      const problem = jsonbNumberProblem(token);
      if (problem !== undefined) return `in the metadata, ${problem}`;
    }
  }
  return undefined;
}

const jsonError = (e: unknown): string => {
  // V8 quotes part of the input in some messages ("Unexpected token 'x', "…" is not valid JSON"): keep the gist.
  const m = String((e as Error).message ?? e).replace(/, ".*" is not valid JSON$/s, '');
  return m.length > 100 ? `${m.slice(0, 97)}…` : m;
};

// --- JSON lines ------------------------------------------------------------------------------------------------

const WS = (c: number): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;

/** The index just past the string whose opening quote is at `i`. */
function stringEnd(text: string, i: number): number {
  let j = i + 1;
  for (;;) {
    const q = text.indexOf('"', j);
    if (q < 0) return text.length;
    let b = q - 1;
    while (text.charCodeAt(b) === 0x5c) b--;
    if ((q - 1 - b) % 2 === 0) return q + 1;
    j = q + 1;
  }
}

/** The index just past the JSON value starting at `i` (text JSON.parse accepted). */
function valueEnd(text: string, i: number): number {
  const c = text.charCodeAt(i);
  if (c === 0x22) return stringEnd(text, i);
  if (c === 0x7b || c === 0x5b) {
    let depth = 0;
    for (let j = i; j < text.length; ) {
      const d = text.charCodeAt(j);
      if (d === 0x22) {
        j = stringEnd(text, j);
        continue;
      }
      if (d === 0x7b || d === 0x5b) depth++;
      else if (d === 0x7d || d === 0x5d) {
        depth--;
        if (depth === 0) return j + 1;
      }
      j++;
    }
    return text.length;
  }
  let j = i;
  while (j < text.length) {
    const d = text.charCodeAt(j);
    if (d === 0x2c || d === 0x7d || d === 0x5d || WS(d)) break;
    j++;
  }
  return j;
}

/**
 * Where each top-level member's value is in the text of a JSON object that JSON.parse accepted: [start, end).
 * A key written twice is returned as `repeated` (JSON.parse would silently keep the last one).
 */
function memberSpans(text: string): { spans: Map<string, [number, number]>; repeated?: string } {
  const spans = new Map<string, [number, number]>();
  let i = 0;
  const skip = () => {
    while (i < text.length && WS(text.charCodeAt(i))) i++;
  };
  skip();
  i++; // {
  for (;;) {
    skip();
    if (i >= text.length || text.charCodeAt(i) === 0x7d) break;
    const keyEnd = stringEnd(text, i);
    const rawKey = text.slice(i, keyEnd);
    const key = rawKey.includes('\\') ? (JSON.parse(rawKey) as string) : rawKey.slice(1, -1);
    i = keyEnd;
    skip();
    i++; // :
    skip();
    const start = i;
    i = valueEnd(text, i);
    if (spans.has(key)) return { spans, repeated: key };
    spans.set(key, [start, i]);
    skip();
    if (text.charCodeAt(i) === 0x2c) i++;
  }
  return { spans };
}

const JSONL_FIELDS = new Set(['id', 'embedding', 'metadata']);

/** JSON whitespace other than spaces (tab, newline, CR) as spaces: a row's embedding needs no COPY escapes. */
const spaced = (embedding: string): string => embedding.replace(/[\t\n\r]/g, ' ');

/**
 * An embedding of exactly `dimension` JSON numbers (spaces the only whitespace) whose integer parts have at most 38 digits (so, without an
 * exponent, |x| < 1e38: within single precision). One compiled regular expression per dimension.
 */
const NUM = '-?(?:0|[1-9]\\d{0,37})(?:\\.\\d+)?(?:[eE][+-]?\\d+)?';
const embeddingShapes = new Map<number, RegExp>();
function embeddingShape(dimension: number): RegExp {
  let re = embeddingShapes.get(dimension);
  if (!re) {
    re = new RegExp(`^\\[ *${NUM}(?: *, *${NUM}){${dimension - 1}} *\\]$`);
    embeddingShapes.set(dimension, re);
  }
  return re;
}
const EXPONENT_TOKEN = /-?[\d.]+[eE][+-]?\d+/g;

/**
 * Whether embedding text is exactly `dimension` finite single-precision numbers — decided without parsing every
 * number (JSON.parse of a 384-number array is most of a line's cost): the shape by one regular expression, and
 * only numbers with an exponent parsed. False means "look closer" (the slow path names the problem), never "bad".
 */
export function embeddingFits(text: string, dimension: number): boolean {
  if (!embeddingShape(dimension).test(text)) return false;
  if (text.indexOf('e') < 0 && text.indexOf('E') < 0) return true;
  for (const m of text.matchAll(EXPONENT_TOKEN)) if (!Number.isFinite(Math.fround(Number(m[0])))) return false;
  return true;
}

/**
 * The fast path of a JSON line: the top-level members found by a strict scan that skips strings with indexOf and
 * takes the embedding's array to its first `]` (numbers have none), the embedding checked by `embeddingFits`, and
 * the rest of the line — with the embedding replaced by 0 — given to JSON.parse. Both succeed only if JSON.parse
 * would accept the whole line. Undefined: take the slow path (anything unusual, or anything wrong).
 */
function fastJsonLine(line: number, text: string, dimension: number): Parsed | undefined {
  const spans = new Map<string, [number, number]>();
  const skip = (i: number): number => {
    while (i < text.length && WS(text.charCodeAt(i))) i++;
    return i;
  };
  let i = skip(0);
  if (text.charCodeAt(i) !== 0x7b) return undefined;
  i = skip(i + 1);
  if (text.charCodeAt(i) === 0x7d) return undefined;
  for (;;) {
    if (text.charCodeAt(i) !== 0x22) return undefined;
    const keyEnd = stringEnd(text, i);
    if (keyEnd > text.length || text.charCodeAt(keyEnd - 1) !== 0x22 || keyEnd - i < 2) return undefined;
    const rawKey = text.slice(i, keyEnd);
    if (rawKey.includes('\\')) return undefined;
    const key = rawKey.slice(1, -1);
    i = skip(keyEnd);
    if (text.charCodeAt(i) !== 0x3a) return undefined;
    const start = skip(i + 1);
    let end: number;
    if (key === 'embedding' && text.charCodeAt(start) === 0x5b) {
      end = text.indexOf(']', start) + 1;
      if (end === 0) return undefined;
    } else {
      end = valueEnd(text, start);
    }
    if (spans.has(key) || !JSONL_FIELDS.has(key)) return undefined;
    spans.set(key, [start, end]);
    i = skip(end);
    const c = text.charCodeAt(i);
    if (c === 0x2c) {
      i = skip(i + 1);
      continue;
    }
    if (c !== 0x7d || skip(i + 1) !== text.length) return undefined;
    break;
  }
  const e = spans.get('embedding');
  if (!e || text.charCodeAt(e[0]) !== 0x5b) return undefined;
  const embedding = text.slice(e[0], e[1]);
  if (!embeddingFits(embedding, dimension)) return undefined;
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(`${text.slice(0, e[0])}0${text.slice(e[1])}`) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const id = checkId(o.id);
  if (typeof id !== 'string') return undefined;
  let metadata = '{}';
  if (o.metadata !== undefined && o.metadata !== null) {
    const [ms, me] = spans.get('metadata')!;
    metadata = text.slice(ms, me);
    if (metadataProblem(o.metadata, metadata) !== undefined) return undefined;
  }
  return { line, id, embedding, metadata };
}

/** One JSON line → a row, a bad line, or undefined (a blank line). */
export function parseJsonLine(raw: RawLine, dimension: number): Parsed | undefined {
  const { line, text } = raw;
  if (raw.problem !== undefined) return { line, reason: raw.problem };
  const fast = fastJsonLine(line, text, dimension);
  if (fast !== undefined) return fast;
  if (text.trim() === '') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { line, reason: `not valid JSON: ${jsonError(e)}` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { line, reason: 'not a JSON object' };
  const o = value as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!JSONL_FIELDS.has(k)) return { line, reason: `unknown field ${shown(k)} (a line has id, embedding and metadata)` };
  }
  const id = checkId(o.id);
  if (typeof id !== 'string') return { line, reason: id.reason };
  const problem = embeddingProblem(o.embedding, dimension);
  if (problem !== undefined) return { line, reason: problem };
  const { spans, repeated } = memberSpans(text);
  if (repeated !== undefined) return { line, reason: `the field ${shown(repeated)} appears twice` };
  const [es, ee] = spans.get('embedding')!;
  let metadata = '{}';
  if (o.metadata !== undefined && o.metadata !== null) {
    const [ms, me] = spans.get('metadata')!;
    metadata = text.slice(ms, me);
    const bad = metadataProblem(o.metadata, metadata);
    if (bad !== undefined) return { line, reason: bad };
  }
  return { line, id, embedding: spaced(text.slice(es, ee)), metadata };
}

// --- CSV -------------------------------------------------------------------------------------------------------

/** A CSV record's fields (null: empty and unquoted), or why it cannot be read, or `open`: a quote spans the line end. */
export function parseCsvRecord(s: string): { fields: Array<string | null> } | { error: string } | 'open' {
  const fields: Array<string | null> = [];
  let i = 0;
  for (;;) {
    if (s.charCodeAt(i) === 0x22) {
      let value = '';
      let j = i + 1;
      for (;;) {
        const q = s.indexOf('"', j);
        if (q < 0) return 'open';
        value += s.slice(j, q);
        if (s.charCodeAt(q + 1) === 0x22) {
          value += '"';
          j = q + 2;
          continue;
        }
        i = q + 1;
        break;
      }
      fields.push(value);
      if (i >= s.length) return { fields };
      if (s.charCodeAt(i) !== 0x2c) return { error: `field ${fields.length}: text after its closing quote` };
      i++;
    } else {
      const comma = s.indexOf(',', i);
      const value = comma < 0 ? s.slice(i) : s.slice(i, comma);
      if (value.includes('"')) return { error: `field ${fields.length + 1}: a quote inside an unquoted field (quote the field, and double the quotes in it)` };
      fields.push(value === '' ? null : value);
      if (comma < 0) return { fields };
      i = comma + 1;
    }
  }
}

const CSV_COLUMNS = ['id', 'embedding', 'metadata'] as const;
type CsvColumn = (typeof CSV_COLUMNS)[number];

/** A CSV header's column positions, or why it is not a header vecscale can read. */
export function csvHeader(fields: ReadonlyArray<string | null>): Record<CsvColumn, number | undefined> | { error: string } {
  const at: Record<CsvColumn, number | undefined> = { id: undefined, embedding: undefined, metadata: undefined };
  for (const [i, f] of fields.entries()) {
    const name = (f ?? '').trim().toLowerCase();
    if (!(CSV_COLUMNS as readonly string[]).includes(name)) {
      return { error: `column ${i + 1} of the header is ${shown(f ?? '')}: the columns are id, embedding and (optionally) metadata, named in the first line` };
    }
    if (at[name as CsvColumn] !== undefined) return { error: `the header names ${name} twice` };
    at[name as CsvColumn] = i;
  }
  if (at.id === undefined || at.embedding === undefined) return { error: 'the header must name id and embedding (and optionally metadata)' };
  return at;
}

export interface LineParser {
  /** A physical line in; out a row, a bad line, or undefined (blank, the header, or a record still open). */
  push(raw: RawLine): Parsed | undefined;
  /** The end of the input: a record left open is a bad line. */
  end(): Parsed | undefined;
}

/** Thrown for an input that cannot be read at all (a CSV without a usable header). */
export class InputFormatError extends Error {}

export function jsonlParser(dimension: number): LineParser {
  return { push: (raw) => parseJsonLine(raw, dimension), end: () => undefined };
}

/** The most lines a CSV record may span (a stray quote must not swallow the rest of the file). */
export const MAX_CSV_RECORD_LINES = 10_000;

export function csvParser(dimension: number): LineParser {
  let header: Record<CsvColumn, number | undefined> | undefined;
  let width = 0;
  let open: { line: number; text: string; lines: number } | undefined;
  const record = (line: number, s: string): Parsed | undefined => {
    const r = parseCsvRecord(s);
    if (r === 'open') {
      open = { line, text: s, lines: (open?.lines ?? 0) + 1 };
      if (open.lines > MAX_CSV_RECORD_LINES || open.text.length > MAX_LINE_BYTES) {
        open = undefined;
        if (header === undefined) throw new InputFormatError(`line ${line}: a quoted field of the header is not closed within ${MAX_CSV_RECORD_LINES} lines`);
        return { line, reason: `a quoted field opened on this line is not closed within ${MAX_CSV_RECORD_LINES} lines` };
      }
      return undefined;
    }
    open = undefined;
    if ('error' in r && header === undefined) throw new InputFormatError(`line ${line}: the header is not valid CSV: ${r.error}`);
    if ('error' in r) return { line, reason: `not valid CSV: ${r.error}` };
    if (header === undefined) {
      const h = csvHeader(r.fields);
      if ('error' in h) throw new InputFormatError(`line ${line}: ${h.error}`);
      header = h;
      width = r.fields.length;
      return undefined;
    }
    if (r.fields.length !== width) return { line, reason: `${r.fields.length} fields; the header has ${width}` };
    const id = checkId(r.fields[header.id!]);
    if (typeof id !== 'string') return { line, reason: id.reason };
    const rawEmbedding = r.fields[header.embedding!];
    if (rawEmbedding === null || rawEmbedding === undefined || rawEmbedding.trim() === '') return { line, reason: 'no embedding' };
    let embedding = rawEmbedding.trim();
    if (!embeddingFits(embedding, dimension)) {
      let value: unknown;
      try {
        value = JSON.parse(rawEmbedding);
      } catch (e) {
        return { line, reason: `the embedding is not a JSON array: ${jsonError(e)}` };
      }
      const problem = embeddingProblem(value, dimension);
      if (problem !== undefined) return { line, reason: problem };
      embedding = spaced(embedding);
    }
    let metadata = '{}';
    const rawMetadata = header.metadata === undefined ? null : r.fields[header.metadata];
    if (rawMetadata !== null && rawMetadata !== undefined && rawMetadata.trim() !== '') {
      let value: unknown;
      try {
        value = JSON.parse(rawMetadata);
      } catch (e) {
        return { line, reason: `the metadata is not valid JSON: ${jsonError(e)}` };
      }
      // JSON null, as in JSON lines (and an empty field): no metadata, `{}`.
      if (value !== null) {
        const bad = metadataProblem(value, rawMetadata);
        if (bad !== undefined) return { line, reason: bad };
        metadata = rawMetadata;
      }
    }
    return { line, id, embedding, metadata };
  };
  return {
    push: (raw) => {
      if (raw.problem !== undefined) {
        if (header === undefined) throw new InputFormatError(`line ${raw.line}: ${raw.problem.replace(/^the line/, 'the header')}`);
        const wasOpen = open;
        open = undefined;
        return { line: wasOpen?.line ?? raw.line, reason: raw.problem };
      }
      // readLines took the line's CR off; inside a quoted field it is data (RFC 4180: CRLF stays CRLF).
      if (open) return record(open.line, `${open.text}${raw.crlf ? '\r\n' : '\n'}${raw.text}`);
      if (raw.text.trim() === '') return undefined;
      return record(raw.line, raw.text);
    },
    end: () => {
      if (!open) {
        // An empty input (or blank lines only) has no header: not a CSV vecscale can read, as the README says (exit 6).
        if (header === undefined) throw new InputFormatError('the CSV input is empty: its first line must be a header naming id, embedding and (optionally) metadata');
        return undefined;
      }
      const line = open.line;
      open = undefined;
      if (header === undefined) throw new InputFormatError(`line ${line}: a quoted field of the header is never closed`);
      return { line, reason: 'a quoted field opened on this line is never closed' };
    },
  };
}

export const parserFor = (format: InputFormat, dimension: number): LineParser => (format === 'csv' ? csvParser(dimension) : jsonlParser(dimension));

/** The format a file name says, or undefined (`.jsonl`, `.ndjson`, `.csv`, each optionally `.gz`). */
export function formatOfName(name: string): InputFormat | undefined {
  const base = name.toLowerCase().replace(/\.gz$/, '');
  if (base.endsWith('.jsonl') || base.endsWith('.ndjson')) return 'jsonl';
  if (base.endsWith('.csv')) return 'csv';
  return undefined;
}
