/** `vecscale recall`: prepare (file, flags, query file) → measureRecall → render; exit 2 below --min-recall. */
import { VecscaleError } from '../../errors.js';
import { checkVector } from '../../query/query-input.js';
import { collectionOf } from '../../query/run.js';
import { parseQueryFile } from '../../recall/measure.js';
import { measureRecall, type RecallReport } from '../../recall/run.js';
import { ExitCode, ExitWith } from '../exit.js';
import { MAX_QUERY_FILE_BYTES, readFlagFile } from '../input-file.js';
import { type Output, table } from '../output.js';
import { loadOrExit } from './topology.js';

export interface RecallFlags {
  readonly file: string;
  readonly queries?: number;
  readonly k?: number;
  readonly efSearch?: number[];
  readonly probes?: number[];
  readonly queryFile?: string;
  readonly minRecall?: number;
  readonly connectTimeout?: number;
  readonly statementTimeout?: number;
}

/** The query file's vectors, each checked as `vecscale query` checks its vector; problems name the file and line. */
function vectorsFrom(path: string, dimension: number, metric: Parameters<typeof checkVector>[1]): number[][] {
  const text = readFlagFile('--query-file', path, MAX_QUERY_FILE_BYTES, 'give fewer query vectors (--queries N uses only the first N)');
  const r = parseQueryFile(text, dimension);
  if (!r.ok) throw new VecscaleError('config', `--query-file ${path}: ${r.problem.where} ${r.problem.message}`);
  r.vectors.forEach((v, i) => {
    try {
      checkVector(v, metric);
    } catch (e) {
      throw new VecscaleError('config', `--query-file ${path}: ${r.where[i]}: ${(e as Error).message}`);
    }
  });
  return r.vectors;
}

const fixed = (x: number, digits: number): string => (Number.isNaN(x) ? '' : x.toFixed(digits));

function settingCell(s: RecallReport['settings'][number]): string {
  if (s.name === null) return 'exact (no index)';
  return s.value === null ? `${s.name} ${s.effective} (collection's)` : `${s.name} ${s.value}`;
}

export async function recallCommand(collection: string, flags: RecallFlags, out: Output): Promise<void> {
  const topology = loadOrExit(flags.file, out);
  const c = collectionOf(topology, collection);
  const vectors = flags.queryFile === undefined ? undefined : vectorsFrom(flags.queryFile, c.dimension, c.metric);
  const report = await measureRecall(topology, {
    collection,
    ...(flags.queries === undefined ? {} : { queries: flags.queries }),
    ...(vectors === undefined ? {} : { vectors }),
    ...(flags.k === undefined ? {} : { k: flags.k }),
    ...(flags.efSearch === undefined ? {} : { efSearch: flags.efSearch }),
    ...(flags.probes === undefined ? {} : { probes: flags.probes }),
    ...(flags.connectTimeout === undefined ? {} : { connectTimeoutMs: flags.connectTimeout * 1000 }),
    ...(flags.statementTimeout === undefined ? {} : { statementTimeoutMs: flags.statementTimeout }),
  });
  const below = flags.minRecall === undefined ? [] : report.settings.filter((s) => s.recall.mean < flags.minRecall!);
  if (out.json) {
    out.result({ ...report, ...(flags.minRecall === undefined ? {} : { minRecall: flags.minRecall, ok: below.length === 0 }) });
  } else {
    const k = report.k;
    out.print(
      table(
        ['setting', `recall@${k} mean`, 'min', 'p50 ms', 'p95 ms', 'queries'],
        report.settings.map((s) => [settingCell(s), fixed(s.recall.mean, 3), fixed(s.recall.min, 3), fixed(s.latencyMs.p50, 2), fixed(s.latencyMs.p95, 2), String(s.queries)]),
      ),
    );
    const queries = report.settings[0]?.queries ?? 0;
    out.info(
      out.color.dim(
        `${report.collection} (${report.index}, ${report.metric}): ${queries} ${report.source === 'sample' ? 'stored vectors' : 'query vectors'} as queries; ` +
          `exact top ${k} by a sequential scan on the secondaries, match_${report.collection} through the primary`,
      ),
    );
  }
  if (below.length > 0) {
    out.info(out.color.red(`recall below --min-recall ${flags.minRecall}: ${below.map((s) => `${settingCell(s)} ${fixed(s.recall.mean, 3)}`).join(', ')}`));
    throw new ExitWith(ExitCode.changesPending);
  }
}
