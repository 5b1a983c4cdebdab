/**
 * `npm run bench:move [-- --rows 100000 --dim 384 --rate 50]`: moves one HNSW collection (m 16, ef_construction 64)
 * from pod_1 to pod_2 of the local sandbox with `apply()` while a steady writer runs through the primary, and
 * compares the move with the anchor: the same table copied by `pg_dump -t vecs.<c> | psql` on the same machine
 * (its COPY and the index builds the restore runs). Reports move time, anchor time, their ratio (goal ≤ 1.5×), the
 * writer's latency during the move (max, p99: the write pause the application sees), the cutover pause the move
 * reports, writer errors, and rows lost against the set the writer's committed statements imply (must be 0).
 * Runs in databases of its own (vecscale_bench_move, and vecscale_bench_anchor on pod_2), recreated each run.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { apply, plan } from '../src/api.js';
import type { ApplyEvents } from '../src/apply/execute.js';
import { parseTopology } from '../src/config/index.js';
import type { Topology } from '../src/config/types.js';
import type { ProgressEvent } from '../src/model/progress.js';
import type { MoveReport } from '../src/move/run.js';
import { hasChanges } from '../src/plan/types.js';
import { findPostgres } from '../src/sandbox/pg-bin.js';
import { sandboxUp, sandboxUrls } from '../src/sandbox/sandbox.js';
import { type Latency, startWriter, type WriterReport } from './bench-move-writer.js';

const DB = 'vecscale_bench_move';
const ANCHOR_DB = 'vecscale_bench_anchor';
const C = 'bench_move';

const { values: flags } = parseArgs({
  options: {
    rows: { type: 'string', default: '100000' },
    dim: { type: 'string', default: '384' },
    rate: { type: 'string', default: '50' },
    // Runs everything but the move (the writer for 10 s, checked against the source): tests the bench itself.
    'no-move': { type: 'boolean', default: false },
  },
});
const ROWS = Number(flags.rows);
const DIM = Number(flags.dim);
const RATE = Number(flags.rate);
if (![ROWS, DIM, RATE].every((n) => Number.isInteger(n) && n > 0)) throw new Error('--rows, --dim and --rate take positive integers');

const log = (line: string) => process.stderr.write(`${line}\n`);
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const now = () => Number(process.hrtime.bigint()) / 1e6;

function withDb(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/**
 * A move replication an earlier run left in the bench's databases (a subscription there, a slot of them) would
 * refuse DROP DATABASE: those go first, vecscale's only (by their prefix), in the bench's database only, every
 * cluster's subscriptions before any slot (a subscription keeps its slot active).
 */
async function clearMoves(urls: readonly string[], db: string): Promise<void> {
  const inDb = async (url: string, fn: (c: pg.Client) => Promise<unknown>) => {
    const exists = await withClient(url, async (c) => (await c.query('SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1', [db])).rowCount === 1);
    if (exists) await withClient(withDb(url, db), fn);
  };
  for (const url of urls) {
    await inDb(url, async (c) => {
      const subs = await c.query(`SELECT subname FROM pg_catalog.pg_subscription WHERE subdbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database()) AND subname LIKE 'vecscale\\_mv\\_%'`);
      for (const { subname } of subs.rows) {
        // Its slot is on the source, dropped below from that side: the subscription lets go of it first.
        await c.query(`ALTER SUBSCRIPTION ${subname} DISABLE`);
        await c.query(`ALTER SUBSCRIPTION ${subname} SET (slot_name = NONE)`);
        await c.query(`DROP SUBSCRIPTION ${subname}`);
      }
    });
  }
  for (const url of urls) {
    await withClient(url, async (c) => {
      const slots = await c.query(`SELECT slot_name FROM pg_catalog.pg_replication_slots WHERE database = $1 AND slot_name LIKE 'vecscale\\_mv\\_%'`, [db]);
      for (const { slot_name } of slots.rows) {
        for (let i = 0; ; i++) {
          const r = await c.query('SELECT pg_catalog.pg_drop_replication_slot(slot_name) FROM pg_catalog.pg_replication_slots WHERE slot_name = $1 AND NOT active', [slot_name]);
          if (r.rowCount === 1) break;
          if (i === 50) throw new Error(`replication slot ${slot_name} is still active after 10 s`);
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    });
  }
}

async function recreate(url: string, db: string): Promise<string> {
  await withClient(url, async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    await c.query(`CREATE DATABASE ${db}`);
  });
  return withDb(url, db);
}

function topologyOn(urls: { primary: string; pod1: string; pod2: string }, secondary: 'pod_a' | 'pod_b', index: boolean): Topology {
  const yaml = `version: 1
primary: { url: "${urls.primary}" }
secondaries:
  pod_a: { url: "${urls.pod1}" }
  pod_b: { url: "${urls.pod2}" }
collections:
  ${C}:
    secondary: ${secondary}
    dimension: ${DIM}
    metric: cosine
    index: ${index ? '{ method: hnsw, m: 16, ef_construction: 64 }' : '{ method: none }'}
`;
  const parsed = parseTopology(yaml, '<bench:move>', {});
  if (!parsed.ok) throw new Error(parsed.problems.map((p) => p.message).join('\n'));
  return parsed.topology;
}

/** Random unit vectors (Gaussian, normalised), generated inside PostgreSQL: nothing crosses the wire. */
async function load(pod1: string): Promise<void> {
  await withClient(pod1, async (c) => {
    const batch = 10_000;
    for (let from = 1; from <= ROWS; from += batch) {
      const to = Math.min(ROWS, from + batch - 1);
      // `WHERE g > 0` correlates the vector's subquery with its row: uncorrelated, PostgreSQL would compute it once.
      await c.query(
        `INSERT INTO vecs.${C} (id, vec, metadata)
         SELECT 'r' || g, l2_normalize(v.a::vector), jsonb_build_object('n', g, 'bucket', g % 10)
         FROM generate_series($1::int, $2::int) g,
         LATERAL (SELECT array_agg(sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()))::real[] AS a
                  FROM generate_series(1, $3::int) WHERE g > 0) v`,
        [from, to, DIM],
      );
      process.stderr.write(`\rloading ${to} / ${ROWS}`);
    }
    process.stderr.write('\n');
    await c.query(`VACUUM ANALYZE vecs.${C}`);
  });
}

/** `pg_dump -t vecs.<c> <pod_1> | psql <scratch db on pod_2>`: wall time of the pipeline, index builds included. */
async function anchor(pod1: string, pod2Admin: string): Promise<number> {
  const scratch = await recreate(pod2Admin, ANCHOR_DB);
  await withClient(scratch, async (c) => c.query('CREATE EXTENSION vector; CREATE SCHEMA vecs'));
  const bin = findPostgres().bindir;
  const t = now();
  await new Promise<void>((resolve, reject) => {
    const dump = spawn(join(bin, 'pg_dump'), ['-t', `vecs.${C}`, '--no-owner', '--no-privileges', '-d', pod1], { stdio: ['ignore', 'pipe', 'inherit'] });
    const restore = spawn(join(bin, 'psql'), ['-q', '-X', '-v', 'ON_ERROR_STOP=1', '-d', scratch], { stdio: ['pipe', 'ignore', 'inherit'] });
    dump.stdout.pipe(restore.stdin);
    const codes: Array<number | null> = [];
    const done = (name: string) => (code: number | null) => {
      if (code !== 0) reject(new Error(`${name} exited ${code}`));
      codes.push(code);
      if (codes.length === 2) resolve();
    };
    dump.on('exit', done('pg_dump'));
    restore.on('exit', done('psql'));
  });
  const ms = now() - t;
  const n = await withClient(scratch, async (c) => Number((await c.query(`SELECT count(*) AS n FROM vecs.${C}`)).rows[0].n));
  if (n !== ROWS) throw new Error(`the anchor restored ${n} rows, not ${ROWS}`);
  await withClient(pod2Admin, (c) => c.query(`DROP DATABASE ${ANCHOR_DB} WITH (FORCE)`));
  return ms;
}

/** Replication objects of vecscale's left on a cluster (slots, publications, subscriptions): must be none. */
async function leftovers(url: string): Promise<string[]> {
  return withClient(url, async (c) => {
    const { rows } = await c.query(
      `SELECT 'slot ' || slot_name AS o FROM pg_catalog.pg_replication_slots WHERE slot_name LIKE 'vecscale\\_mv\\_%'
       UNION ALL SELECT 'publication ' || pubname FROM pg_catalog.pg_publication WHERE pubname LIKE 'vecscale\\_mv\\_%'
       UNION ALL SELECT 'subscription ' || subname FROM pg_catalog.pg_subscription WHERE subname LIKE 'vecscale\\_mv\\_%'`,
    );
    return rows.map((r) => `${new URL(url).port}: ${r.o as string}`);
  });
}

function pct(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}

/** One line per started/finished step, and a running step's progress at most every 10 s. */
function progressSink(events: ProgressEvent[]): (e: ProgressEvent) => void {
  const last = new Map<string, number>();
  const t0 = Date.now();
  const log = (line: string) => process.stderr.write(`[+${Math.round((Date.now() - t0) / 1000)}s]${line}\n`);
  return (e) => {
    events.push(e);
    if (e.type === 'progress') {
      if (e.at - (last.get(e.id) ?? 0) < 10_000) return;
      last.set(e.id, e.at);
      const count = e.done !== undefined ? ` ${e.done}${e.total !== undefined ? ` / ${e.total}` : ''} ${e.unit ?? ''}` : '';
      log(`  … ${e.label}:${count}${e.lagBytes !== undefined ? ` lag ${e.lagBytes} B` : ''}${e.phase ? ` (${e.phase})` : ''}`);
    } else log(`  ${e.type === 'step-started' ? '▶' : e.ok ? '✓' : '✗'} ${e.label}${e.type === 'step-finished' && e.detail ? `: ${e.detail}` : ''}`);
  };
}

/** Wall time of each step the move reported, by its label, in ms. */
function stepTimes(events: readonly ProgressEvent[]): Record<string, number> {
  const started = new Map<string, number>();
  const out: Record<string, number> = {};
  for (const e of events) {
    if (e.type === 'step-started') started.set(e.id, e.at);
    if (e.type === 'step-finished' && started.has(e.id)) out[e.label] = e.at - started.get(e.id)!;
  }
  return out;
}

async function main(): Promise<void> {
  const urls = sandboxUrls(await sandboxUp());
  const [pod1Admin, pod2Admin] = Object.values(urls.secondaries);
  if (!pod1Admin || !pod2Admin) throw new Error('the sandbox needs 2 secondaries');
  const fsync = await withClient(pod1Admin, async (c) => (await c.query('SHOW fsync')).rows[0].fsync as string);
  await clearMoves([urls.primary, pod1Admin, pod2Admin], DB);
  const dbs = { primary: await recreate(urls.primary, DB), pod1: await recreate(pod1Admin, DB), pod2: await recreate(pod2Admin, DB) };

  log(`${C}: ${ROWS} × ${DIM}, HNSW m 16 ef_construction 64, pod_a → pod_b (sandbox fsync ${fsync})`);
  const ok = (r: { status: string }) => {
    if (r.status !== 'applied' && r.status !== 'no_changes') throw new Error(`apply: ${r.status}`);
  };
  ok(await apply(topologyOn(dbs, 'pod_a', false), { approve: async () => true }));
  await load(dbs.pod1);
  let t = now();
  ok(await apply(topologyOn(dbs, 'pod_a', true), { approve: async () => true }));
  const indexMs = now() - t;
  log(`index built on pod_a by apply: ${seconds(indexMs)}`);

  log('anchor: pg_dump | psql …');
  const anchorMs = await anchor(dbs.pod1, pod2Admin);
  log(`anchor: ${seconds(anchorMs)}`);

  const writer = await startWriter({ primary: dbs.primary, source: dbs.pod1, collection: C, rows: ROWS, dim: DIM, rate: RATE, log });
  await new Promise((r) => setTimeout(r, 3000)); // a steady state before the move starts

  const moved = topologyOn(dbs, 'pod_b', true);
  const events: ProgressEvent[] = [];
  const sink = progressSink(events);
  const applyEvents: ApplyEvents = { onWarning: (db, m) => log(`  warning (${db}): ${m}`), onProgress: sink };
  let moveReport: MoveReport | undefined;
  let moveError: string | undefined;
  log('move: apply() …');
  t = now();
  const moveStart = writer.clock();
  if (flags['no-move']) await new Promise((r) => setTimeout(r, 10_000));
  else {
    // A failed move is a result too: the writer is stopped and checked against where the rows still are.
    try {
      const result = await apply(moved, { approve: async () => true, events: applyEvents, onPlan: (p) => log(`move plan: ${p.databases.map((d) => `${d.database} ${d.steps.length} steps`).join(', ')}`) });
      if (result.status === 'blocked') throw new Error(`the move is blocked:\n${result.plan.blockers.map((b) => `  - ${JSON.stringify(b)}`).join('\n')}`);
      ok(result);
      moveReport = result.status === 'applied' ? result.moves?.find((m) => m.collection === C) : undefined;
      if (!moveReport) throw new Error('apply() reported no move of the collection');
    } catch (e) {
      moveError = (e as Error).message;
      log(`move failed: ${moveError}`);
    }
  }
  const moveMs = now() - t;
  const moveEnd = writer.clock();
  log(`move: ${seconds(moveMs)}`);
  await new Promise((r) => setTimeout(r, 2000));
  const target = flags['no-move'] || moveError !== undefined ? dbs.pod1 : dbs.pod2;
  const report: WriterReport = await writer.stop(target);

  const leftList = (await Promise.all([dbs.primary, dbs.pod1, dbs.pod2].map(leftovers))).flat();
  for (const l of leftList) log(`left behind: ${l}`);
  const left = leftList.length;
  const nextPlan = await plan(flags['no-move'] || moveError !== undefined ? topologyOn(dbs, 'pod_a', true) : moved);
  const sourceLeft = flags['no-move'] || moveError !== undefined ? '0' : await withClient(dbs.pod1, async (c) => (await c.query(`SELECT count(*) AS n FROM pg_catalog.pg_tables WHERE schemaname = 'vecs'`)).rows[0].n as string);

  const inMove = (l: Latency) => l.start >= moveStart && l.start <= moveEnd;
  const during = report.latencies.filter(inMove).map((l) => l.ms);
  const readsDuring = report.reads.filter(inMove).map((l) => l.ms);
  const before = report.latencies.filter((l) => l.start < moveStart).map((l) => l.ms);
  const pause = moveReport?.pauseMs ?? undefined;
  const steps = stepTimes(events);
  const out = {
    rows: ROWS,
    dim: DIM,
    fsync,
    rate: RATE,
    moveMs: Math.round(moveMs),
    anchorMs: Math.round(anchorMs),
    moveError: moveError ?? null,
    ratio: Number((moveMs / anchorMs).toFixed(2)),
    indexBuildMs: Math.round(indexMs),
    writes: report.latencies.length,
    writesDuringMove: during.length,
    writeP50BeforeMs: Number(pct(before, 50).toFixed(1)),
    writeP99DuringMs: Number(pct(during, 99).toFixed(1)),
    writeMaxDuringMs: Number(Math.max(...during).toFixed(1)),
    reportedPauseMs: pause ?? null,
    pausePartsMs: moveReport?.pauseParts ?? null,
    writerErrors: report.errors.length,
    rowsExpected: report.expected,
    rowsMissing: report.missing,
    rowsWrong: report.wrong,
    rowsExtra: report.extra,
    primaryRows: report.primaryRows,
    reads: report.reads.length,
    readErrors: report.readErrors.length,
    readMaxDuringMs: Number(Math.max(...readsDuring).toFixed(1)),
    leftoverReplicationObjects: left,
    sourceTablesLeft: Number(sourceLeft),
    nextPlanChanges: hasChanges(nextPlan),
    moveCopyMs: moveReport?.copyMs ?? null,
    moveIndexMs: moveReport?.indexMs ?? null,
    cutoverAttempts: moveReport?.cutoverAttempts ?? null,
    steps,
  };
  const f = (ms: number) => `${ms.toFixed(1)} ms`;
  const table = [
    `move of ${ROWS} × ${DIM} (HNSW m 16, ef_construction 64) pod_a → pod_b, writer ${RATE}/s through the primary (fsync ${fsync})`,
    '',
    '| measure | value | goal |',
    '|---|---|---|',
    `| move (apply) | ${seconds(moveMs)}${moveError ? ` FAILED: ${moveError}` : ''} | |`,
    `| anchor: pg_dump -t \\| psql | ${seconds(anchorMs)} | |`,
    `| of it: copy / index build (the move's report) | ${moveReport ? `${seconds(moveReport.copyMs)} / ${seconds(moveReport.indexMs)}` : '-'} | |`,
    `| index build alone (apply on pod_a, before) | ${seconds(indexMs)} | |`,
    `| ratio move / anchor | ${out.ratio}× | ≤ 1.5× |`,
    `| writer latency before the move, p50 | ${f(out.writeP50BeforeMs)} | |`,
    `| writer latency during the move, p99 / max | ${f(out.writeP99DuringMs)} / ${f(out.writeMaxDuringMs)} | max ≤ 1000 ms |`,
    `| cutover pause the move reports (attempts) | ${pause === undefined ? 'not reported' : `${f(pause)} (${moveReport?.cutoverAttempts})`} | ≤ 1000 ms |`,
    `| writes (during the move) / writer errors | ${out.writes} (${out.writesDuringMove}) / ${out.writerErrors} | 0 errors |`,
    `| rows expected / missing / wrong / extra | ${report.expected} / ${report.missing} / ${report.wrong} / ${report.extra} | 0 / 0 / 0 |`,
    `| rows through the primary after | ${report.primaryRows} | ${report.expected} |`,
    `| reads (match_*) during the move: max latency / read errors | ${f(out.readMaxDuringMs)} / ${out.readErrors} | 0 errors |`,
    `| replication objects left / source tables left | ${left} / ${sourceLeft} | 0 / 0 |`,
    `| next plan has changes | ${out.nextPlanChanges} | false |`,
  ];
  for (const e of [...report.errors, ...report.readErrors].slice(0, 8)) log(`error: ${e}`);
  process.stdout.write(`${table.join('\n')}\n${JSON.stringify(out)}\n`);
}

await main();
