/** `vecscale query` and `vecscale explain`: prepare (file, vector, filter) → library call → render. */
import { VecscaleError } from '../../errors.js';
import { checkFilter } from '../../query/query-input.js';
import { explainMatch, queryDirect, queryPrimary } from '../../query/run.js';
import { ExitCode, ExitWith } from '../exit.js';
import { MAX_VECTOR_FILE_BYTES, readFlagFile } from '../input-file.js';
import { type Output, table } from '../output.js';
import { loadOrExit } from './topology.js';

export interface QueryFlags {
  readonly file: string;
  readonly vector?: string;
  readonly vectorFile?: string;
  readonly limit?: number;
  readonly filter?: string;
  readonly direct?: boolean;
  readonly connectTimeout?: number;
}

/** A vector as JSON (`[0.1, 0.2]`) or as numbers separated by commas or whitespace. */
export function parseVector(text: string, from: string): number[] {
  const trimmed = text.trim();
  let values: unknown;
  try {
    values = trimmed.startsWith('[') ? JSON.parse(trimmed) : trimmed.split(/[\s,]+/).filter(Boolean).map(Number);
  } catch {
    throw new VecscaleError('config', `${from} is not a JSON array of numbers`);
  }
  if (!Array.isArray(values) || values.length === 0 || !values.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    throw new VecscaleError('config', `${from} must be a non-empty list of finite numbers`);
  }
  return values as number[];
}

function vectorOf(flags: QueryFlags): number[] | undefined {
  if (flags.vector !== undefined && flags.vectorFile !== undefined) throw new VecscaleError('config', 'give --vector or --vector-file, not both');
  if (flags.vector !== undefined) return parseVector(flags.vector, '--vector');
  if (flags.vectorFile !== undefined) {
    const text = readFlagFile('--vector-file', flags.vectorFile, MAX_VECTOR_FILE_BYTES);
    return parseVector(text, `--vector-file ${flags.vectorFile}`);
  }
  return undefined;
}

/** The filter as written: checked here (messages name --filter), passed to the database unchanged (numbers keep every digit). */
function filterOf(flags: QueryFlags): string {
  if (flags.filter === undefined) return '{}';
  checkFilter(flags.filter, '--filter');
  return flags.filter;
}

const cell = (v: unknown): string => (v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : typeof v === 'number' ? String(Number(v.toPrecision(6))) : String(v));

export async function queryCommand(collection: string, flags: QueryFlags, out: Output): Promise<void> {
  const topology = loadOrExit(flags.file, out);
  const vector = vectorOf(flags);
  if (!vector) throw new VecscaleError('config', 'a query vector is needed: --vector \'[…]\' or --vector-file F');
  const input = { collection, vector, limit: flags.limit, filter: filterOf(flags), connectTimeoutMs: flags.connectTimeout && flags.connectTimeout * 1000 };
  const result = flags.direct ? await queryDirect(topology, input) : await queryPrimary(topology, input);
  if (out.json) {
    out.result({ collection, via: result.via, rows: result.rows });
    return;
  }
  out.print(table(result.columns as string[], result.rows.map((r) => result.columns.map((c) => cell(r[c])))));
  out.info(out.color.dim(`${result.rows.length} rows via ${result.via === 'primary' ? `the primary (match_${collection})` : `secondary ${result.via} (direct)`}`));
}

export async function explainCommand(collection: string, flags: QueryFlags, out: Output): Promise<void> {
  const topology = loadOrExit(flags.file, out);
  const r = await explainMatch(topology, {
    collection,
    vector: vectorOf(flags),
    limit: flags.limit,
    filter: filterOf(flags),
    connectTimeoutMs: flags.connectTimeout && flags.connectTimeout * 1000,
  });
  if (out.json) out.result(r);
  const mark = (ok: boolean, what: string) => `${ok ? out.color.green('✓') : out.color.red('✗')} ${what}`;
  const short = (sql: string) => sql.replace(/'\[[^\]]{60,}\]'/g, "'[…]'");
  if (r.sharded) {
    out.info(`match_${collection}${r.filtered ? ' (filtered)' : ''} sends to ${r.sharded.partitions} partitions at once; each runs on its secondary:`);
    for (const sql of r.view.remoteSql) out.info(`  ${out.color.dim(short(sql))}`);
    for (const line of r.match.plan.split('\n')) out.info(`    ${out.color.dim(short(line))}`);
  } else {
    out.info(`match_${collection}${r.filtered ? ' (filtered)' : ''} runs on the secondary:`);
    out.info(`  ${out.color.dim(short(r.match.sql))}`);
    for (const line of r.match.plan.split('\n')) out.info(`    ${out.color.dim(short(line))}`);
    out.info(`SQL on public.${collection} (ORDER BY distance LIMIT k) ships through postgres_fdw:`);
    for (const sql of r.view.remoteSql) out.info(`  ${out.color.dim(short(sql))}`);
  }
  const marks = [mark(r.ships.where, r.filtered ? 'filter' : 'no filter'), mark(r.ships.orderBy, 'ORDER BY distance'), mark(r.ships.limit, 'LIMIT')];
  if (r.sharded) marks.push(mark(r.sharded.concurrent === r.sharded.partitions, `${r.sharded.concurrent} partitions at once`));
  out.info(marks.join('   '));
  if (!r.ok) {
    out.info(out.color.red('Part of the query stays on the primary: it would fetch more rows than it returns.'));
    out.info(r.view.plan);
    throw new ExitWith(ExitCode.error);
  }
}
