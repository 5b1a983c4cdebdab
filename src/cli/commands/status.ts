/** `vecscale status`: prepare (file + flags) → library call → render (tables on stdout, or one JSON document). */
import { status, type CollectionStatus, type DatabaseStatus, type StatusReport } from '../../status/index.js';
import { formatBytes } from '../../util/bytes.js';
import { ExitCode, ExitWith } from '../exit.js';
import { type Output, table } from '../output.js';
import { type CommonOptions, loadOrExit } from './topology.js';

export interface StatusFlags extends CommonOptions {
  readonly exact?: boolean;
}

/** status's own default bound on each statement: it reads catalogs, and a silent database should not hold it 30 s. */
const STATUS_STATEMENT_TIMEOUT_MS = 10_000;

const rowsText = (rows: number | null, exact: boolean): string =>
  rows === null ? '?' : `${exact ? '' : '~'}${rows.toLocaleString('en-US')}`;

const settingsText = (s: Readonly<Record<string, string>> | null, method: string): string => {
  if (s === null) return '?';
  const key = method === 'ivfflat' ? 'ivfflat.probes' : 'hnsw.ef_search';
  return s[key] ?? '-';
};

function databaseRows(dbs: readonly DatabaseStatus[]): string[][] {
  return dbs.map((d) =>
    d.reachable
      ? [
          d.database,
          'yes',
          d.version ?? '',
          d.database === 'primary' ? '' : (d.pgvector ?? 'missing'),
          d.walLevel ?? '',
          d.slots === undefined ? '' : String(d.slots.length),
          d.replicas === undefined ? '' : (d.hiddenReplicas ? '?' : `${d.replicas.filter((r) => r.state === 'streaming').length}`) + `/${d.declaredReplicas ?? 0}` +
            lagText(d),
        ]
      : [d.database, 'NO', '', '', '', '', ''],
  );
}

function lagText(d: DatabaseStatus): string {
  const lags = (d.replicas ?? []).map((r) => r.replayLagSeconds).filter((x): x is number => x !== null);
  return lags.length === 0 ? '' : ` (lag ≤ ${Math.max(...lags).toFixed(1)} s)`;
}

function collectionRows(cs: readonly CollectionStatus[]): string[][] {
  return cs.flatMap((c) =>
    c.parts.map((p, i) => {
      const method = p.index?.method ?? p.wantedIndex?.method ?? 'none';
      return [
        i === 0 ? c.name : '',
        p.table === c.name ? p.secondary : `${p.secondary} ${p.table}`,
        !p.reachable ? '?' : !p.present ? 'missing' : rowsText(p.rows, p.rowsExact),
        p.tableBytes === null ? '' : formatBytes(p.tableBytes),
        p.index === null ? (p.wantedIndex === null ? 'none' : p.present ? 'MISSING' : '') : `${p.index.name} ${p.index.method}${p.index.valid ? '' : ' INVALID'}`,
        p.index === null || p.index.bytes === null ? '' : formatBytes(p.index.bytes),
        p.lastAnalyze === null ? (p.present ? 'never' : '') : p.lastAnalyze.slice(0, 19).replace('T', ' '),
        `${settingsText(p.serverSettings, method)} / ${settingsText(p.secondarySettings, method)}`,
      ];
    }).concat(c.parts.length > 1 ? [['', '(total)', rowsText(c.rows, c.rowsExact), '', '', '', '', '']] : []),
  );
}

function render(out: Output, r: StatusReport): void {
  out.print(table(['database', 'reachable', 'version', 'pgvector', 'wal_level', 'slots', 'standbys'], databaseRows(r.databases)));
  out.print('');
  out.print(
    table(['collection', 'secondary', 'rows', 'table', 'index', 'index size', 'analyzed', 'search (server / pod default)'], collectionRows(r.collections)),
  );
  out.print('');
  const failed = r.wrappers.filter((w) => !w.ok).length;
  out.print(`wrappers: ${r.wrappers.length} foreign tables on the primary, ${failed} failing`);
  for (const d of r.databases) if (d.warning) out.print(`note: ${d.database}: ${d.warning}`);
  for (const d of r.databases) if (d.hiddenReplicas) out.print(`note: ${d.database}: the state of ${d.hiddenReplicas} standby connection(s) is hidden from this role (it needs pg_read_all_stats)`);
  out.print('rows: ~ is the planner\'s estimate (tables over 64 MB; --exact counts them)');
  if (r.problems.length === 0) {
    out.info(out.color.green('✓ healthy'));
    return;
  }
  out.print('');
  out.print(`${r.problems.length} problem${r.problems.length === 1 ? '' : 's'}:`);
  for (const p of r.problems) {
    out.print(`✗ ${p.database}: ${p.object}: ${p.message}`);
    out.print(`    fix: ${p.fix}`);
  }
}

export async function statusCommand(file: string, flags: StatusFlags, out: Output): Promise<void> {
  const topology = loadOrExit(file, out, flags);
  const report = await status(topology, {
    ...(flags.connectTimeout === undefined ? {} : { connectTimeoutMs: flags.connectTimeout * 1000 }),
    statementTimeoutMs: flags.statementTimeout ?? STATUS_STATEMENT_TIMEOUT_MS,
    exact: flags.exact ?? false,
  });
  if (out.json) out.result(report);
  else render(out, report);
  if (!report.healthy) {
    if (out.json) out.info(`${report.problems.length} problem(s) need attention`);
    throw new ExitWith(ExitCode.changesPending);
  }
}
