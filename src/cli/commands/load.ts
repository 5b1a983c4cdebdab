/** `vecscale load`: prepare (topology, input, format) → library call (src/load/run.ts) → render. */
import { createReadStream, fstatSync, statSync } from 'node:fs';
import { createGunzip } from 'node:zlib';
import { VecscaleError } from '../../errors.js';
import { formatOfName, type InputFormat } from '../../load/input.js';
import { load, type LoadReport } from '../../load/run.js';
import { collectionOf } from '../../query/run.js';
import { createLoadProgress } from '../../render/load-progress.js';
import { progressMode } from '../../render/progress.js';
import { ExitCode, ExitWith } from '../exit.js';
import { escapeControls, type Output } from '../output.js';
import { loadOrExit } from './topology.js';

export interface LoadFlags {
  /** The topology file (-f). */
  readonly file: string;
  readonly format?: string;
  readonly upsert?: boolean;
  readonly connectTimeout?: number;
  /** --statement-timeout, in ms (0: none). */
  readonly statementTimeout?: number;
}

/** How many bad lines the human summary shows (--json lists up to MAX_BAD_LINES_LISTED). */
const SHOWN_BAD_LINES = 20;

const FORMATS: readonly InputFormat[] = ['jsonl', 'csv'];

function formatOf(path: string, flag: string | undefined): InputFormat {
  if (flag !== undefined) {
    if (!(FORMATS as readonly string[]).includes(flag)) throw new VecscaleError('config', `--format must be jsonl or csv (got ${JSON.stringify(flag)})`);
    return flag as InputFormat;
  }
  if (path === '-') return 'jsonl';
  const f = formatOfName(path);
  if (f === undefined) {
    throw new VecscaleError('config', `cannot tell the format of ${path} from its name`, {
      hint: 'name it .jsonl, .ndjson or .csv (optionally .gz), or give --format jsonl or --format csv',
    });
  }
  return f;
}

interface Opened {
  readonly input: AsyncIterable<Buffer>;
  readonly source: string;
  readonly totalBytes: number | undefined;
  readonly bytesRead: (() => number) | undefined;
}

/** The input's bytes: a file (gunzipped when it ends in .gz) or stdin; a file that cannot be read is exit 6. */
function open(path: string): Opened {
  if (path === '-') {
    if (process.stdin.isTTY) {
      throw new VecscaleError('config', 'the input is stdin, which is a terminal', { hint: 'pipe the rows in: … | vecscale load <collection> -' });
    }
    let size: number | undefined;
    try {
      const st = fstatSync(0);
      if (st.isFile()) size = st.size; // `< file.jsonl`: a size, so an ETA
    } catch {
      // no size: no ETA
    }
    return { input: process.stdin, source: 'stdin', totalBytes: size, bytesRead: undefined };
  }
  let size: number;
  try {
    const st = statSync(path);
    if (st.isDirectory()) throw new VecscaleError('config', `${path} is a directory, not a file of rows`);
    size = st.size;
  } catch (e) {
    if (e instanceof VecscaleError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new VecscaleError('config', `cannot read ${path}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (e as Error).message}`);
  }
  const raw = createReadStream(path, { highWaterMark: 1024 * 1024 });
  // Streams start before the load reads them (it connects first): an early error waits for the reader, which sees it
  // (an errored stream's iterator throws it) — without a listener now, it would end the process.
  raw.on('error', () => undefined);
  if (!/\.gz$/i.test(path)) return { input: raw, source: path, totalBytes: size, bytesRead: undefined };
  let read = 0;
  raw.on('data', (chunk) => (read += chunk.length));
  const gunzip = createGunzip();
  gunzip.on('error', () => undefined);
  // A read error of the file reaches the reader through the gunzip stream.
  raw.on('error', (err) => gunzip.destroy(err));
  return { input: raw.pipe(gunzip), source: path, totalBytes: size, bytesRead: () => read };
}

const plural = (k: number, one: string, many = `${one}s`): string => `${k.toLocaleString('en-US')} ${k === 1 ? one : many}`;
const seconds = (ms: number): string => `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;

function summary(r: LoadReport, out: Output): string[] {
  const where = r.tables.map((t) => `${t.secondary}: ${t.table}${r.tables.length > 1 ? ` ${t.rows.toLocaleString('en-US')}` : ''}`).join(', ');
  const lines = [
    `${out.color.green('✔')} ${r.upsert ? 'Upserted' : 'Loaded'} ${plural(r.rowsLoaded, 'row')} into ${r.collection} (${where}) in ${seconds(r.loadMs)} ` +
      `(${r.rowsPerSecond.toLocaleString('en-US')} rows/s)` +
      (r.upsert ? `: ${plural(r.rowsReplaced, 'existing row')} replaced` : '') +
      (r.linesSuperseded > 0 ? `; ${plural(r.linesSuperseded, 'line')} superseded by a later line with the same id` : '') +
      '.',
  ];
  const rebuilt = r.tables.flatMap((t) => t.indexesRebuilt.map((i) => `${t.secondary}: vecs.${i.name} (${seconds(i.ms)})`));
  if (rebuilt.length > 0) lines.push(`  The collection was empty: its vector index was built after the rows were in — ${rebuilt.join(', ')}.`);
  if (r.badLineCount > 0) {
    lines.push(out.color.yellow(`${plural(r.badLineCount, 'bad line')} of ${r.source} ${r.badLineCount === 1 ? 'was' : 'were'} not loaded:`));
    for (const b of r.badLines.slice(0, SHOWN_BAD_LINES)) lines.push(`  line ${b.line}: ${b.reason}`);
    const more = r.badLineCount - Math.min(SHOWN_BAD_LINES, r.badLines.length);
    if (more > 0) lines.push(out.color.dim(`  … and ${more.toLocaleString('en-US')} more (--json lists the first ${r.badLines.length.toLocaleString('en-US')})`));
  }
  return lines;
}

export async function loadCommand(collection: string, path: string, flags: LoadFlags, out: Output): Promise<void> {
  const topology = loadOrExit(flags.file, out);
  collectionOf(topology, collection);
  const format = formatOf(path, flags.format);
  const opened = open(path);
  const progress = createLoadProgress({
    mode: progressMode({ json: out.json, isTTY: Boolean(process.stderr.isTTY), color: out.color.level > 0, env: process.env }),
    stream: process.stderr,
    label: `loading ${collection} from ${opened.source}`,
    escape: escapeControls,
  });
  // Ctrl-C (or a TERM) ends the load the orderly way — rolled back, dropped indexes built again; a second one kills.
  const abort = new AbortController();
  const stop = () => {
    abort.abort();
    (opened.input as unknown as { destroy?: () => void }).destroy?.();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  let report: LoadReport;
  try {
    report = await load(topology, {
      collection,
      input: opened.input,
      format,
      source: opened.source,
      ...(opened.totalBytes !== undefined ? { totalBytes: opened.totalBytes } : {}),
      ...(opened.bytesRead ? { bytesRead: opened.bytesRead } : {}),
      upsert: flags.upsert === true,
      ...(flags.connectTimeout !== undefined ? { connectTimeoutMs: flags.connectTimeout * 1000 } : {}),
      ...(flags.statementTimeout !== undefined ? { statementTimeoutMs: flags.statementTimeout } : {}),
      signal: abort.signal,
      events: { onStats: progress.update, onRowsDone: progress.rowsDone, onProgress: progress.sink, onNote: (t) => progress.note(t) },
    });
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    progress.close();
    // A file not read to its end (a failure) is closed; stdin is left to the process.
    if (path !== '-') (opened.input as unknown as { destroy?: () => void }).destroy?.();
  }
  if (out.json) out.result({ status: report.badLineCount > 0 ? 'loaded_with_bad_lines' : 'loaded', ...report });
  else for (const l of summary(report, out)) out.info(l);
  if (report.badLineCount > 0) throw new ExitWith(ExitCode.changesPending);
}
