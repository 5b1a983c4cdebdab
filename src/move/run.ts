/**
 * Carries out the moves of a plan, one collection at a time, as a state machine whose state is the databases
 * themselves: where the primary's wrappers point (switched only in the cutover's transaction), the targets' move
 * marks, and the replication objects named after the collection (src/move/names.ts). So a run cut off anywhere —
 * `kill -9`, a restarted database — is picked up by the next plan: before the cutover the move starts again from a
 * clean slate (what the earlier attempt left is removed first), after it the old tables are retired.
 *
 *   targets → flows (publication + slot + subscription across databases; change-log trigger + copy + resync inside one)
 *   → copy → vector index → catch-up → cutover (writes wait; verify; switch) → retire old tables → remove machinery
 */
import type { Topology } from '../config/types.js';
import { connect, type Db, targetOf } from '../db/connect.js';
import { VecscaleError } from '../errors.js';
import { isTableOf, type Part } from '../model/placement.js';
import type { ProgressSink } from '../model/progress.js';
import { keys, type LiveDatabase, SECONDARY_SCHEMA, VECS_SCHEMA } from '../model/state.js';
import type { PlanOptions } from '../plan/planner.js';
import type { DatabasePlan, MoveFlow, MovePart, MovePlan, Plan } from '../plan/types.js';
import { createSql } from '../plan/sql.js';
import { ident, literal, qualified, secret } from '../sql/quote.js';
import { runSecretStatement } from '../apply/secrets.js';
import { parsePgUrl, scrub } from '../util/url.js';
import { liveLayout, topologyWith } from './layout.js';
import { removeMachinery, replicaIdentity } from './machinery.js';
import { type CutoverResult, type ReplicationGroup, runCutover } from './cutover.js';
import { collectionTag, flowName, isMoveObject, replicationName } from './names.js';
import { attachSql, belongsSql, changeLogSql, ownerOnlySql, copyChunkSql, markSql, mirrorFunction, mirrorTriggerSql, publicationSql, resyncSql, stagingSql } from './sql.js';
import { runStepsInTransaction } from './steps.js';

export interface MoveRunOptions {
  readonly topology: Topology;
  readonly dbs: ReadonlyMap<string, Db>;
  /** The apply's secrets (one generated wrapper password per run, whichever plan carries it). */
  readonly secrets: ReadonlyMap<string, string>;
  readonly planOptions: PlanOptions;
  /** Introspects every database and plans `topology` (a move's own plans pass `movedTables`). */
  readonly replan: (topology: Topology, opts: PlanOptions) => Promise<{ plan: Plan; live: Map<string, LiveDatabase> }>;
  /** Runs a plan the way apply does (each database's transaction, then its index builds). */
  readonly execute: (plan: Plan) => Promise<void>;
  readonly progress?: ProgressSink;
}

export interface MoveReport {
  readonly collection: string;
  readonly kind: MovePlan['kind'];
  /** Rows on the new tables at cutover. */
  readonly rows: number;
  /** Writes through the primary waited this long at cutover (locks held until the switch committed). */
  readonly pauseMs: number | null;
  /** The cutover's pause by phase (ms), when it ran. */
  readonly pauseParts?: CutoverResult['pauseParts'];
  readonly copyMs: number;
  readonly indexMs: number;
  readonly totalMs: number;
  readonly cutoverAttempts: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const vecsName = (t: string) => `${VECS_SCHEMA}.${t}`;
const asPart = (p: MovePart): Part => ({ ...p });

/** Runs every move of the plan in order. */
export async function runMoves(moves: readonly MovePlan[], o: MoveRunOptions): Promise<MoveReport[]> {
  const out: MoveReport[] = [];
  for (const [i, m] of moves.entries()) {
    // The moves after this one have not run: the plans of this one keep them where their rows are.
    const pending = new Map(moves.slice(i + 1).filter((x) => x.kind === 'move').map((x) => [x.collection, x.from.map(asPart)]));
    out.push(await runOne(m, o, topologyWith(o.topology, pending)));
  }
  return out;
}

async function runOne(m: MovePlan, o: MoveRunOptions, after: Topology): Promise<MoveReport> {
  const started = Date.now();
  const spec = after.collections.find((c) => c.name === m.collection);
  const emit = (type: 'step-started' | 'step-finished', step: string, label: string, extra: Record<string, unknown> = {}) =>
    o.progress?.({ type, id: `move:${m.collection}:${step}`, database: 'primary', label, at: Date.now(), ...(type === 'step-finished' ? { ok: true } : {}), ...extra } as never);
  if (m.kind === 'cleanup' || !spec) {
    const { live } = await o.replan(after, { ...o.planOptions, movedTables: new Set() });
    const tag = m.collection ? collectionTag(m.collection) : undefined;
    const belongs = (n: string) => isMoveObject(n) && (tag ? n.startsWith(tag) : !o.topology.collections.some((c) => n.startsWith(collectionTag(c.name))));
    const now = m.collection ? liveLayout(o.topology, live.get('primary')!.state, m.collection) : undefined;
    await removeMachinery({
      dbs: o.dbs, live, belongs,
      tableBelongs: (_db, t) => m.leftovers.some((l) => l.kind === 'table' && l.name === t),
      // Without wrappers on the primary nothing says which copy is live: keep every table (only its mark goes).
      isLive: (db, t) => now?.some((p) => p.secondary === db && vecsName(p.table) === t) ?? true,
      protect: spec?.protect ?? false,
      slots: m.leftovers.filter((l) => l.kind === 'replication slot' && !isMoveObject(l.name)),
      ...(m.collection ? { fullIdentity: (_db: string, t: string) => isTableOf(m.collection!, t) } : {}),
    });
    return { collection: m.collection, kind: m.kind, rows: 0, pauseMs: null, copyMs: 0, indexMs: 0, totalMs: Date.now() - started, cutoverAttempts: 0 };
  }
  const tag = collectionTag(m.collection);
  const belongs = (n: string) => n.startsWith(tag);
  // Move-marked tables of this collection: its tables in vecs (targets, staging) and its flows' beacons.
  const fullIdentity = (_db: string, t: string) => isTableOf(m.collection, t);
  const ofCollection = (t: string) => (t.startsWith(`${VECS_SCHEMA}.`) && isTableOf(m.collection, t.slice(VECS_SCHEMA.length + 1))) || t.startsWith(`${SECONDARY_SCHEMA}.${tag}`);
  if (m.kind === 'finish') {
    await retire(m, o, after);
    const { live } = await o.replan(after, { ...o.planOptions, movedTables: new Set() });
    await removeMachinery({ dbs: o.dbs, live, belongs, tableBelongs: (_d, t) => ofCollection(t), isLive: (db, t) => m.to.some((p) => p.secondary === db && vecsName(p.table) === t), protect: spec.protect, fullIdentity });
    return { collection: m.collection, kind: m.kind, rows: 0, pauseMs: null, copyMs: 0, indexMs: 0, totalMs: Date.now() - started, cutoverAttempts: 0 };
  }

  // 0. Rows on the wrong partition (written straight into a shard's table) belong to no target: a split would drop them.
  await refuseMisplaced(o, m);
  // 1. A clean slate: whatever an earlier attempt left (before its cutover, so nothing of it is live).
  emit('step-started', 'prepare', `preparing the move of ${m.collection}`);
  let { live } = await o.replan(after, { ...o.planOptions, movedTables: new Set() });
  // The tables the primary reads now are live even if marked (a move that committed, then was changed again).
  await removeMachinery({ dbs: o.dbs, live, belongs, tableBelongs: (_d, t) => ofCollection(t), isLive: (db, t) => m.from.some((p) => p.secondary === db && vecsName(p.table) === t), protect: spec.protect, fullIdentity });

  // 2. The new tables, as the plan of the new layout creates them, without their vector index (built after the copy).
  const first = await o.replan(after, { ...o.planOptions, movedTables: new Set() });
  live = first.live;
  await o.execute(onlySteps(first.plan, (s, db) => db.role === 'secondary' && s.action === 'create' && s.kind !== 'index'));
  const targets = uniqueParts(m.flows.map((f) => f.target));
  for (const t of targets) await query(o, t.secondary, markSql(t.table, 'target'));
  const vectorSchema = vectorSchemaOf(live);
  emit('step-finished', 'prepare', `preparing the move of ${m.collection}`);

  // 3. The flows, and the copy.
  const copyStarted = Date.now();
  emit('step-started', 'copy', `copying ${m.collection}: ${describeParts(m.from)} → ${describeParts(m.to)}`);
  const groups = replicationGroups(o, m);
  for (const [target, byTarget] of groupBy(m.flows.filter((f) => f.method === 'replication'), (f) => f.target.secondary)) {
    // One transaction: each staging table is owner-only from the moment it exists (default privileges grant at CREATE).
    await inTransaction(o, target, stagingFor(byTarget, spec.dimension, vectorSchema));
  }
  for (const g of groups) await startReplication(o, m.collection, g);
  for (const flows of mirrorGroups(m)) await mirror(o, m.collection, flows, (done) => progress(o, m, 'copy', done));
  await waitForSync(o, m, groups);
  const copyMs = Date.now() - copyStarted;
  emit('step-finished', 'copy', `copying ${m.collection}`, { detail: `copied in ${Math.round(copyMs / 1000)} s` });

  // 4. The targets' indexes (vector, full text, owner), now that they hold the rows (faster than building them while
  // they arrive).
  const indexStarted = Date.now();
  const tables = new Set(targets.map((t) => `${t.secondary}/${keys.relation(VECS_SCHEMA, t.table)}`));
  await o.execute(onlySteps(first.plan, (s, db) => s.kind === 'index' && tables.has(`${db.database}/${indexTableKey(s.id, db.database)}`)));
  const indexMs = Date.now() - indexStarted;

  // 5. Catch up, then cut over: the plan of the new layout, the old tables marked as moved (their drops lose nothing).
  emit('step-started', 'catch-up', `catching up ${m.collection}`);
  await waitForLag(o, m, groups);
  for (const flows of mirrorGroups(m)) await drainLog(o, m.collection, flows, 100);
  emit('step-finished', 'catch-up', `catching up ${m.collection}`);
  const retired = m.from.filter((s) => !m.to.some((t) => t.secondary === s.secondary && t.table === s.table));
  const movedTables = new Set(retired.map((r) => `${r.secondary}/${keys.relation(VECS_SCHEMA, r.table)}`));
  const { plan: cutPlan, live: cutLive } = await o.replan(after, { ...o.planOptions, movedTables });
  emit('step-started', 'cutover', `cutover of ${m.collection}`);
  const cut = await cutover(o, m, groups, cutPlan, cutLive);
  emit('step-finished', 'cutover', `cutover of ${m.collection}`, { detail: `${cut.rows} rows verified, writes paused ${cut.pauseMs} ms (locks ${cut.pauseParts.locks}, catch-up ${cut.pauseParts.catchUp}, verification ${cut.pauseParts.verify}, switch ${cut.pauseParts.switch})` });

  // 6. The machinery goes; the targets lose their move mark.
  ({ live } = await o.replan(after, { ...o.planOptions, movedTables: new Set() }));
  await removeMachinery({ dbs: o.dbs, live, belongs, tableBelongs: (_d, t) => ofCollection(t), isLive: (db, t) => m.to.some((p) => p.secondary === db && vecsName(p.table) === t), protect: spec.protect, fullIdentity });
  return { collection: m.collection, kind: 'move', rows: cut.rows, pauseMs: cut.pauseMs, pauseParts: cut.pauseParts, copyMs, indexMs, totalMs: Date.now() - started, cutoverAttempts: cut.attempts };
}

// ---------------------------------------------------------------------------------------------------------------

/** The replication objects' name of a flow from pod `source` to pod `target` (their databases' names in it). */
function groupName(o: MoveRunOptions, collection: string, source: string, target: string): string {
  const end = (pod: string) => {
    const s = o.topology.secondaries.find((x) => x.name === pod);
    if (!s) throw new Error(`no secondary ${pod}`);
    return { pod, database: parsePgUrl(s.url).database };
  };
  return replicationName(collection, end(source), end(target));
}

function replicationGroups(o: MoveRunOptions, m: MovePlan): ReplicationGroup[] {
  return [...groupBy(m.flows.filter((f) => f.method === 'replication'), (f) => `${f.source.secondary}\u0000${f.target.secondary}`).values()].map((flows) => ({
    name: groupName(o, m.collection, flows[0]!.source.secondary, flows[0]!.target.secondary),
    source: flows[0]!.source.secondary,
    target: flows[0]!.target.secondary,
    flows,
  }));
}

function groupBy<T>(items: readonly T[], key: (t: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const i of items) out.set(key(i), [...(out.get(key(i)) ?? []), i]);
  return out;
}

const uniqueParts = (parts: readonly MovePart[]): MovePart[] => [...new Map(parts.map((p) => [`${p.secondary}/${p.table}`, p])).values()];
const describeParts = (parts: readonly MovePart[]): string =>
  [...groupBy(parts, (p) => p.secondary)].map(([db, ps]) => `${db} (${ps.map((p) => p.table).join(', ')})`).join(', ');
const indexTableKey = (stepId: string, database: string): string => stepId.slice(database.length + 1).replace(/^index:/, 'relation:').replace(/#[a-z]+$/, '');

function vectorSchemaOf(live: ReadonlyMap<string, LiveDatabase>): string {
  for (const l of live.values()) if (l.facts.vectorSchema) return l.facts.vectorSchema;
  return 'public';
}

/** The plan with only the steps `keep` selects (databases without any left out). */
function onlySteps(plan: Plan, keep: (s: DatabasePlan['steps'][number], db: DatabasePlan) => boolean): Plan {
  return { ...plan, databases: plan.databases.map((d) => ({ ...d, steps: d.steps.filter((s) => keep(s, d)) })), moves: [] };
}

/** Runs `sqls` in one transaction on `database` (rolled back on an error). */
async function inTransaction(o: MoveRunOptions, database: string, sqls: readonly string[]): Promise<void> {
  if (sqls.length === 0) return;
  await query(o, database, 'BEGIN');
  try {
    for (const sql of sqls) await query(o, database, sql);
    await query(o, database, 'COMMIT');
  } catch (err) {
    await o.dbs.get(database)?.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

async function query(o: MoveRunOptions, database: string, sql: string, params: unknown[] = []): Promise<Record<string, unknown>[]> {
  const db = o.dbs.get(database);
  if (!db) throw new Error(`no connection for ${database}`);
  try {
    return (await db.query(sql, params)).rows as Record<string, unknown>[];
  } catch (err) {
    const e = err as { message?: string; code?: string };
    throw new VecscaleError('database', `${database}: moving rows: ${e.message ?? String(err)}`, {
      cause: err,
      meta: { database, sqlstate: e.code ?? null },
      hint: 'nothing is lost: run apply again, it starts the move again (or, after its cutover, finishes it); plan shows which',
    });
  }
}

/**
 * Staging tables on one target database: a target named otherwise than its source gets the source's name above it
 * (a partitioned table), since logical replication applies a source's changes to the table of the same name. A
 * split (one source, several targets here) attaches every target under one; a merge (several sources, one target)
 * chains them, each staging table a partition of the next.
 */
function stagingFor(flows: readonly MoveFlow[], dimension: number, vectorSchema: string): string[] {
  const renamed = flows.filter((f) => f.source.table !== f.target.table);
  const sql: string[] = [];
  const bounds = (t: MovePart) => [t.modulus ?? 1, t.remainder ?? 0] as const;
  const bySource = groupBy(renamed, (f) => f.source.table);
  const byTarget = groupBy(renamed, (f) => f.target.table);
  for (const [source, fs] of bySource) {
    if (fs.length < 2 && (byTarget.get(fs[0]!.target.table)?.length ?? 0) > 1) continue; // a merge: chained below
    sql.push(...stagingSql(source, dimension, vectorSchema));
    for (const f of fs) sql.push(attachSql(source, f.target.table, ...bounds(f.target)));
  }
  for (const [target, fs] of byTarget) {
    if (fs.length < 2) continue;
    let below = target;
    for (const f of fs) {
      sql.push(...stagingSql(f.source.table, dimension, vectorSchema), attachSql(f.source.table, below, ...bounds(f.target)));
      below = f.source.table;
    }
  }
  return sql;
}

/** libpq's quoting of a connection-string value. */
const conninfoValue = (v: string): string => `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/**
 * Publication, slot and beacon on the source; beacon and subscription on the target. The subscription reaches the
 * source with the topology's URL for it; its connection string (the password in it) travels only as a bound
 * parameter into the statement built in the database (src/apply/secrets.ts), and is kept only in pg_subscription.
 */
async function startReplication(o: MoveRunOptions, collection: string, g: ReplicationGroup): Promise<void> {
  const sources = groupBy(g.flows, (f) => f.source.table);
  const beacon = qualified(SECONDARY_SCHEMA, g.name);
  const beaconSql = [
    `CREATE TABLE ${beacon} (id integer PRIMARY KEY, n bigint NOT NULL)`,
    `COMMENT ON TABLE ${beacon} IS ${literal(`managed by vecscale; move beacon`)}`,
    `REVOKE ALL ON ${beacon} FROM PUBLIC`,
    ownerOnlySql(beacon),
  ];
  await inTransaction(o, g.target, beaconSql);
  await inTransaction(o, g.source, [...beaconSql, `INSERT INTO ${beacon} VALUES (1, 0)`]);
  const tables = [...sources].map(([table, fs]) => ({ table, filters: fs.some((f) => !f.filter) ? undefined : fs.map((f) => f.filter!) }));
  for (const t of tables) if (t.filters) await replicaIdentity(o.dbs.get(g.source)!, g.source, t.table, 'FULL');
  const publication = publicationSql(g.name, tables).replace(' WITH (', `, ${beacon} WITH (`);
  await query(o, g.source, publication);
  // Created here, not by CREATE SUBSCRIPTION: that would need the statement outside any transaction block, and the
  // secret path needs one. The slot's name is the subscription's: DROP SUBSCRIPTION drops it.
  await query(o, g.source, 'SELECT pg_catalog.pg_create_logical_replication_slot($1, $2)', [g.name, 'pgoutput']);
  const src = o.topology.secondaries.find((s) => s.name === g.source);
  if (!src) throw new Error(`no secondary ${g.source}`);
  const u = parsePgUrl(src.url);
  const conninfo = [
    `host=${conninfoValue(u.host)}`,
    `port=${conninfoValue(String(u.port))}`,
    `dbname=${conninfoValue(u.database)}`,
    `user=${conninfoValue(u.user)}`,
    // A source that drops packets must not hang CREATE or DROP SUBSCRIPTION for the TCP timeout.
    `connect_timeout=${conninfoValue('10')}`,
    ...(u.password !== undefined ? [`password=${conninfoValue(u.password)}`] : []),
    ...(u.sslmode ? [`sslmode=${conninfoValue(u.sslmode)}`] : []),
    `application_name=${conninfoValue(`vecscale move ${collection}`)}`,
  ].join(' ');
  const ref = `move.conninfo.${g.source}`;
  const secrets = new Map([...o.secrets, [ref, conninfo]]);
  const create =
    `CREATE SUBSCRIPTION ${ident(g.name)} CONNECTION ${secret(ref)} PUBLICATION ${ident(g.name)} ` +
    `WITH (create_slot = false, slot_name = ${literal(g.name)}, enabled = false, copy_data = true)`;
  const db = o.dbs.get(g.target)!;
  try {
    await db.query('BEGIN');
    await runSecretStatement(db, create, secrets);
    await db.query('COMMIT');
  } catch (err) {
    await db.query('ROLLBACK').catch(() => undefined);
    const why = scrub((err as Error).message, [...secrets.values(), ...(u.password !== undefined ? [u.password] : [])]);
    throw new VecscaleError('database', `${g.target}: could not subscribe to ${g.source} (the target connects to the source with the topology's URL for ${g.source}: it must reach that host and port, and the user must have REPLICATION): ${why}`);
  }
  await query(o, g.target, `ALTER SUBSCRIPTION ${ident(g.name)} ENABLE`);
}

/** A move inside one database: the change log and its trigger first, then the copy in chunks, then a first resync. */
async function mirror(o: MoveRunOptions, collection: string, flows: readonly MoveFlow[], onChunk: (rows: number) => void): Promise<void> {
  const source = flows[0]!.source;
  const name = flowName(collection, source.table, 'mirror');
  const targets = flows.map((f) => ({ table: f.target.table, filter: f.filter }));
  const db = o.dbs.get(source.secondary)!;
  await db.query('BEGIN');
  try {
    for (const sql of changeLogSql(name)) await db.query(sql);
    for (const sql of createSql(mirrorFunction(name), { vectorSchema: 'public' })) await db.query(sql);
    // EXECUTE to no one but its owner, whatever the applying role's default privileges grant at CREATE.
    await db.query(ownerOnlySql(`${qualified(SECONDARY_SCHEMA, name)}()`, 'FUNCTION'));
    await db.query(mirrorTriggerSql(name, source.table));
    await db.query('COMMIT');
  } catch (err) {
    await db.query('ROLLBACK').catch(() => undefined);
    throw new VecscaleError('database', `${source.secondary}: could not create the change log and trigger on ${vecsName(source.table)}: ${(err as Error).message}`, { cause: err });
  }
  let last: string | undefined;
  let done = 0;
  for (;;) {
    const rows = await query(o, source.secondary, copyChunkSql(source.table, targets, last === undefined, 2000), last === undefined ? [] : [last]);
    const n = Number(rows[0]?.n ?? 0);
    if (n === 0) break;
    last = String(rows[0]!.last);
    done += n;
    onChunk(done);
  }
  await drainLog(o, collection, flows, 0);
}

/** Resyncs logged ids until a round takes no more than `until` entries (0: the log is empty). */
export async function drainLog(o: MoveRunOptions, collection: string, flows: readonly MoveFlow[], until: number, on?: Db): Promise<void> {
  const source = flows[0]!.source;
  const log = flowName(collection, source.table, 'mirror');
  const targets = flows.map((f) => ({ table: f.target.table, filter: f.filter }));
  for (let round = 0; ; round++) {
    const sql = resyncSql(log, source.table, targets, 5000);
    const rows = on ? (await on.query(sql)).rows : await query(o, source.secondary, sql);
    if (Number(rows[0]?.n ?? 0) <= until) return;
    // Under the cutover's locks nothing but a flood of forged log entries can keep it going: give up, retry later.
    if (on && round >= 200) throw new VecscaleError('database', `${source.secondary}: the change log of ${vecsName(source.table)} does not empty`, { meta: { reason: 'catch_up' } });
  }
}

/**
 * The cutover's last resync, in a session of its own that commits it (the caller's holds the source's lock, and
 * commits only after the primary switched: rows resynced there would be invisible, and lost on a rollback).
 */
async function drainCommitted(o: MoveRunOptions, m: MovePlan, source: string): Promise<void> {
  const groups = mirrorGroups(m).filter((fs) => fs[0]!.source.secondary === source);
  if (groups.length === 0) return;
  const target = targetOf(o.dbs.get(source)!);
  if (!target) throw new Error(`no target for ${source}`);
  const side = await connect(target, { applicationName: 'vecscale move' });
  try {
    for (const flows of groups) await drainLog(o, m.collection, flows, 0, side);
  } finally {
    await side.end().catch(() => undefined);
  }
}

/** `finish`: the change logs an interrupted cutover left on `source`, resynced (committed) into their targets. */
async function drainLeftLogs(o: MoveRunOptions, m: MovePlan, source: string, parts: readonly MovePart[], live: ReadonlyMap<string, LiveDatabase>): Promise<void> {
  const objects = live.get(source)?.state.objects;
  const targets = m.to.filter((t) => t.secondary === source);
  const flows: MoveFlow[][] = [];
  for (const retired of parts) {
    if (!objects?.has(keys.relation(SECONDARY_SCHEMA, flowName(m.collection, retired.table, 'mirror')))) continue;
    // A retired table's bounds are in its name (`<c>_p<i>of<n>`; none: a collection on one secondary).
    const bounds = /_p(\d+)of(\d+)$/.exec(retired.table);
    const p: MovePart = bounds ? { ...retired, remainder: Number(bounds[1]), modulus: Number(bounds[2]) } : retired;
    const m1 = p.modulus ?? 1;
    const fs = targets
      .filter((t) => (p.remainder ?? 0) % Math.min(m1, t.modulus ?? 1) === (t.remainder ?? 0) % Math.min(m1, t.modulus ?? 1))
      .map((t): MoveFlow => ({ source: p, target: t, method: 'trigger', ...((t.modulus ?? 1) > m1 ? { filter: { modulus: t.modulus!, remainder: t.remainder ?? 0 } } : {}) }));
    if (fs.length > 0) flows.push(fs);
  }
  if (flows.length === 0) return;
  const side = await connect(targetOf(o.dbs.get(source)!)!, { applicationName: 'vecscale move' });
  try {
    for (const fs of flows) await drainLog(o, m.collection, fs, 0, side);
  } finally {
    await side.end().catch(() => undefined);
  }
}

/** A move starts only when every source row is on the partition PostgreSQL's hash rule puts it in. */
async function refuseMisplaced(o: MoveRunOptions, m: MovePlan): Promise<void> {
  for (const s of m.from) {
    if (s.modulus === undefined || !m.flows.some((f) => f.source.secondary === s.secondary && f.source.table === s.table)) continue;
    const rows = await query(o, s.secondary, `SELECT pg_catalog.count(*) AS n FROM ${qualified(VECS_SCHEMA, s.table)} WHERE NOT (${belongsSql('id', { modulus: s.modulus, remainder: s.remainder ?? 0 })})`);
    const n = Number(rows[0]?.n ?? 0);
    if (n > 0) {
      throw new VecscaleError('precondition', `${s.secondary}: ${n} row${n === 1 ? '' : 's'} of ${vecsName(s.table)} belong${n === 1 ? 's' : ''} to another partition (written straight into the shard's table): moving ${m.collection} would leave ${n === 1 ? 'it' : 'them'} behind; nothing of the move was done`, {
        hint: `run vecscale check: it names each row and gives the SQL that puts it where it belongs`,
        meta: { collection: m.collection, database: s.secondary, table: s.table, misplaced: n },
      });
    }
  }
}

/** The flows of a move inside one database, by source table. */
const mirrorGroups = (m: MovePlan): MoveFlow[][] => [...groupBy(m.flows.filter((f) => f.method === 'trigger'), (f) => `${f.source.secondary}\u0000${f.source.table}`).values()];

function progress(o: MoveRunOptions, m: MovePlan, step: 'copy' | 'catch-up', done: number | undefined, total?: number, lagBytes?: number): void {
  o.progress?.({
    type: 'progress',
    id: `move:${m.collection}:${step}`,
    database: 'primary',
    label: step === 'copy' ? `copying ${m.collection}` : `catching up ${m.collection}`,
    at: Date.now(),
    ...(done !== undefined ? { unit: 'rows' as const, done } : {}),
    ...(total !== undefined ? { total } : {}),
    ...(lagBytes !== undefined ? { lagBytes } : {}),
  });
}

/** Until every subscribed table is ready (`r`); a subscription that keeps failing stops the move, naming it. */
async function waitForSync(o: MoveRunOptions, m: MovePlan, groups: readonly ReplicationGroup[]): Promise<void> {
  let lastReport = 0;
  for (;;) {
    let pending = 0;
    let copied = 0;
    for (const g of groups) {
      const rows = await query(
        o,
        g.target,
        `SELECT (SELECT pg_catalog.count(*) FROM pg_catalog.pg_subscription_rel r WHERE r.srsubid = s.oid AND r.srsubstate OPERATOR(pg_catalog.<>) 'r') AS pending,
                (SELECT pg_catalog.count(*) FROM pg_catalog.pg_subscription_rel r WHERE r.srsubid = s.oid) AS tables,
                COALESCE((SELECT st.sync_error_count + st.apply_error_count FROM pg_catalog.pg_stat_subscription_stats st WHERE st.subid = s.oid), 0) AS errors,
                COALESCE((SELECT pg_catalog.sum(c.tuples_processed) FROM pg_catalog.pg_stat_progress_copy c WHERE c.datid = s.subdbid), 0) AS copying
           FROM pg_catalog.pg_subscription s WHERE s.subname = $1 AND s.subdbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())`,
        [g.name],
      );
      const r = rows[0];
      if (!r) throw new VecscaleError('database', `${g.target}: subscription ${g.name} of the move of ${m.collection} is gone`);
      if (Number(r.errors) >= 3) {
        throw new VecscaleError('database', `${g.target}: subscription ${g.name} (rows of ${m.collection} from ${g.source}) keeps failing; see ${g.target}'s server log. The move stopped before its cutover: nothing changed for applications, and the next apply starts it again`);
      }
      pending += Number(r.pending) + (Number(r.tables) === 0 ? 1 : 0);
      copied += Number(r.copying);
    }
    if (pending === 0) return;
    if (Date.now() - lastReport > 1000) {
      lastReport = Date.now();
      // Rows the initial copies have written so far (pg_stat_progress_copy of the table-sync workers).
      if (copied > 0) progress(o, m, 'copy', copied);
    }
    await sleep(100);
  }
}

/**
 * Until a change made on each source now reaches its targets within 250 ms, three rounds in a row: the cutover's own
 * beacon (under the locks) then waits about as little. Measured with the flow's beacon row, not by the slot's
 * distance from the source's WAL: a slot's cluster carries every other database's WAL too, and on a busy cluster
 * that distance never gets small (a move on a shared test cluster waited in vain). The distance is still shown.
 */
async function waitForLag(o: MoveRunOptions, m: MovePlan, groups: readonly ReplicationGroup[]): Promise<void> {
  if (groups.length === 0) return;
  const deadline = Date.now() + 15 * 60_000;
  const ROUND_MS = 2_000;
  const errorsAtStart: Record<string, number> = {};
  let calm = 0;
  for (;;) {
    let worst = 0;
    let bytes = 0;
    for (const g of groups) {
      const started = Date.now();
      await beaconArrives(o, (sql) => query(o, g.source, sql), g.target, g.name, ROUND_MS, (i) => Math.min(5 * 2 ** i, 100));
      worst = Math.max(worst, Date.now() - started);
      // An apply worker that fails on a change (and restarts, and fails) never catches up: say so, do not wait 15 min.
      const errors = Number((await query(o, g.target, `SELECT COALESCE((SELECT st.apply_error_count FROM pg_catalog.pg_stat_subscription_stats st JOIN pg_catalog.pg_subscription s ON s.oid OPERATOR(pg_catalog.=) st.subid WHERE s.subname OPERATOR(pg_catalog.=) $1 AND s.subdbid OPERATOR(pg_catalog.=) (SELECT oid FROM pg_catalog.pg_database WHERE datname OPERATOR(pg_catalog.=) pg_catalog.current_database())), 0) AS n`, [g.name]))[0]?.n ?? 0);
      const first = (errorsAtStart[g.name] ??= errors);
      if (errors - first >= 3) {
        throw new VecscaleError('database', `${g.target}: subscription ${g.name} (rows of ${m.collection} from ${g.source}) keeps failing to apply a change; see ${g.target}'s server log. The move stopped before its cutover: nothing changed for applications, and the next apply starts it again`);
      }
      const rows = await query(o, g.source, `SELECT pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), confirmed_flush_lsn)::pg_catalog.int8 AS lag FROM pg_catalog.pg_replication_slots WHERE slot_name = $1 AND database OPERATOR(pg_catalog.=) pg_catalog.current_database()`, [g.name]);
      bytes = Math.max(bytes, Number(rows[0]?.lag ?? 0));
    }
    calm = worst < 250 ? calm + 1 : 0;
    if (calm >= 3) return;
    if (Date.now() > deadline && calm === 0) {
      throw new VecscaleError('database', `the targets of ${m.collection} still take ${worst} ms or more to apply a change made on their sources after 15 minutes; the move stopped before its cutover (the next apply starts it again)`);
    }
    progress(o, m, 'catch-up', undefined, undefined, bytes);
    await sleep(100);
  }
}

async function cutover(o: MoveRunOptions, m: MovePlan, groups: readonly ReplicationGroup[], plan: Plan, live: ReadonlyMap<string, LiveDatabase>): Promise<CutoverResult> {
  return runCutover({
    o, move: m, groups, plan,
    vectorSchema: (db) => live.get(db)?.facts.vectorSchema ?? vectorSchemaOf(live),
    // Under the locks, and only after the lag was small: a target that needs longer costs an attempt, not a long pause.
    waitBeacons: (source, flows) => waitBeacons(o, source, flows, 5_000),
    // Under the source's lock: the log's last entries, so the targets equal the source.
    drain: async (source) => {
      await drainCommitted(o, m, source);
    },
  });
}

/** `finish`: the cutover committed; each old table is write-locked, the targets catch up with it, and it goes. */
async function retire(m: MovePlan, o: MoveRunOptions, after: Topology): Promise<void> {
  const movedTables = new Set(m.from.map((r) => `${r.secondary}/${keys.relation(VECS_SCHEMA, r.table)}`));
  const { plan, live } = await o.replan(after, { ...o.planOptions, movedTables });
  const subs = [...live].flatMap(([db, l]) => (l.facts.replication?.subscriptions ?? []).filter((s) => s.name.startsWith(collectionTag(m.collection))).map((s) => ({ db, name: s.name })));
  for (const [source, parts] of groupBy(m.from, (p) => p.secondary)) {
    const db = o.dbs.get(source)!;
    await db.query('BEGIN');
    try {
      await db.query(`LOCK TABLE ${parts.map((p) => qualified(VECS_SCHEMA, p.table)).join(', ')} IN EXCLUSIVE MODE`);
      const beacons = subs.filter((s) => s.name === groupName(o, m.collection, source, s.db));
      await waitBeacons(o, source, beacons.map((b) => ({ target: b.db, name: b.name })));
      // A move inside this database: what its log still holds goes to the targets first, committed.
      await drainLeftLogs(o, m, source, parts, live);
      const dbPlan = plan.databases.find((d) => d.database === source);
      if (dbPlan) await runStepsInTransaction(db, dbPlan, o.secrets);
      await db.query('COMMIT');
    } catch (err) {
      await db.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }
}

/**
 * Advances each flow's beacon on the source (in a session of its own: the caller's holds the source's lock) and
 * waits until the target has applied it: every change committed on the source before is then applied too, since a
 * subscription applies in commit order. Bounded: a target that does not catch up in time fails the caller.
 */
export async function waitBeacons(o: MoveRunOptions, source: string, flows: readonly { target: string; name: string }[], timeoutMs = 10_000): Promise<void> {
  if (flows.length === 0) return;
  const main = o.dbs.get(source)!;
  const target = targetOf(main);
  if (!target) throw new Error(`no target for ${source}`);
  const side = await connect(target, { applicationName: 'vecscale move' });
  try {
    for (const f of flows) {
      if (!(await beaconArrives(o, async (sql) => (await side.query(sql)).rows, f.target, f.name, timeoutMs, () => 2))) {
        throw new VecscaleError('database', `${f.target} did not catch up with ${source} within ${timeoutMs} ms`, { meta: { reason: 'catch_up' } });
      }
    }
  } finally {
    await side.end().catch(() => undefined);
  }
}

/**
 * Advances flow `name`'s beacon on its source (with `advance`) and waits, at most `timeoutMs`, until `target` has
 * applied it: whether it did. A subscription applies in commit order, so what the source committed before has too.
 */
async function beaconArrives(
  o: MoveRunOptions,
  advance: (sql: string) => Promise<Record<string, unknown>[]>,
  target: string,
  name: string,
  timeoutMs: number,
  pollMs: (round: number) => number,
): Promise<boolean> {
  const beacon = qualified(SECONDARY_SCHEMA, name);
  const n = Number((await advance(`UPDATE ${beacon} SET n = n OPERATOR(pg_catalog.+) 1 WHERE id OPERATOR(pg_catalog.=) 1 RETURNING n`))[0]?.n ?? 0);
  const deadline = Date.now() + timeoutMs;
  for (let round = 0; ; round++) {
    const got = await query(o, target, `SELECT n FROM ${beacon} WHERE id OPERATOR(pg_catalog.=) 1`);
    if (Number(got[0]?.n ?? -1) >= n) return true;
    if (Date.now() > deadline) return false;
    await sleep(pollMs(round));
  }
}
