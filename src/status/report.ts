/**
 * `vecscale status`, the judging half: what ./read.ts found, against the topology. Pure. Every problem names the
 * database, the object and what to do about it; `healthy` is true when there is none.
 */
import type { CollectionSpec, Topology } from '../config/types.js';
import { indexName, indexParams, OPCLASS, serverFor, sessionSettings } from '../desired/index.js';
import { ownerIndexName, textIndexName } from '../desired/collection.js';
import { MOVE_PREFIX } from '../move/names.js';
import { collectionOfTable, describeLayout, partsOf, secondariesOf } from '../model/placement.js';
import { API_SCHEMA, HELPER_SCHEMA, REMOTE_SCHEMA, VECS_SCHEMA, WRITE_SCHEMA } from '../model/state.js';
import { hybridFunctionName } from '../query/hybrid.js';
import { matchFunctionName } from '../query/match-function.js';
import { literal, qualified } from '../sql/quote.js';
import { formatBytes } from '../util/bytes.js';
import { clusterOf } from '../util/url.js';
import { isQuerySetting, type RawIndex, type RawOrphan, type RawPrimary, type RawSecondary, type RawStatus, type RawTable } from './read.js';

export interface Problem {
  /** 'primary' or a secondary's name. */
  readonly database: string;
  /** What it is about: `collection docs`, `slot x`, `vecscale_remote.docs`. */
  readonly object: string;
  readonly message: string;
  /** What to do. */
  readonly fix: string;
}

export interface IndexStatus {
  readonly name: string;
  readonly method: string;
  readonly opclass: string;
  readonly params: Readonly<Record<string, string>>;
  readonly valid: boolean;
  /** null: sizes unknown (see DatabaseStatus.warning). */
  readonly bytes: number | null;
}

export interface PartStatus {
  readonly secondary: string;
  readonly table: string;
  /** False: the table is not there (or its secondary did not answer: `reachable` false). */
  readonly present: boolean;
  readonly reachable: boolean;
  readonly rows: number | null;
  /** True: a count(*); false: the planner's estimate (pg_class.reltuples). */
  readonly rowsExact: boolean;
  readonly tableBytes: number | null;
  readonly lastAnalyze: string | null;
  readonly index: IndexStatus | null;
  /** The index the topology wants (null: none). */
  readonly wantedIndex: { readonly name: string; readonly method: string; readonly opclass: string; readonly params: Readonly<Record<string, string>> } | null;
  /** The foreign server the primary reads this part through, and the query settings its connections get. */
  readonly server: string;
  readonly serverSettings: Readonly<Record<string, string>> | null;
  /** hnsw.* / ivfflat.* defaults of the secondary's database (and of the wrapper role there): overridden by the server's. */
  readonly secondarySettings: Readonly<Record<string, string>> | null;
}

export interface CollectionStatus {
  readonly name: string;
  readonly secondaries: readonly string[];
  /** Sum over the parts; null when a part is unknown. */
  readonly rows: number | null;
  readonly rowsExact: boolean;
  readonly parts: readonly PartStatus[];
}

export interface DatabaseStatus {
  readonly database: string;
  readonly reachable: boolean;
  readonly error?: string;
  readonly version?: string;
  readonly pgvector?: string | null;
  readonly walLevel?: string;
  readonly slots?: RawSecondary['slots'];
  readonly replicas?: RawSecondary['replicas'];
  readonly declaredReplicas?: number;
  /** Walsenders whose state the connecting role may not see (it needs pg_read_all_stats). */
  readonly hiddenReplicas?: number;
  /** Not a problem, but worth knowing: why sizes and counts are unknown. */
  readonly warning?: string;
}

export interface WrapperStatus {
  readonly table: string;
  readonly server: string;
  readonly remote: string;
  /** The secondary its server points at. */
  readonly secondary?: string;
  readonly ok: boolean;
  readonly error?: string;
}

export interface StatusReport {
  readonly healthy: boolean;
  readonly databases: readonly DatabaseStatus[];
  readonly collections: readonly CollectionStatus[];
  readonly wrappers: readonly WrapperStatus[];
  readonly problems: readonly Problem[];
}

const QUERY_KEYS = new Set(['hnsw.ef_search', 'hnsw.iterative_scan', 'ivfflat.probes']);

const wantedIndexOf = (c: CollectionSpec, table: string): PartStatus['wantedIndex'] => {
  if (c.index.method === 'none') return null;
  return { name: indexName(c, c.index, table), method: c.index.method, opclass: OPCLASS[c.metric], params: indexParams(c.index) };
};

/** pgvector's defaults, which a missing reloption means. */
const PARAM_DEFAULTS: Record<string, Record<string, string>> = { hnsw: { m: '16', ef_construction: '64' }, ivfflat: { lists: '100' } };

const indexStatus = (i: RawIndex): IndexStatus => ({
  name: i.name,
  method: i.method,
  opclass: i.opclass,
  params: { ...PARAM_DEFAULTS[i.method], ...i.options },
  valid: i.valid,
  bytes: i.bytes,
});

const describeIndex = (i: { method: string; params: Readonly<Record<string, string>>; opclass: string }): string =>
  `${i.method} (${Object.entries(i.params).map(([k, v]) => `${k} ${v}`).join(', ')}; ${i.opclass})`;

const sameParams = (a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean =>
  Object.keys({ ...a, ...b }).every((k) => a[k] === b[k]);

function partStatus(c: CollectionSpec, table: string, secondary: string, raw: RawStatus, problems: Problem[]): PartStatus {
  const sec = raw.secondaries.get(secondary);
  const live = sec?.ok ? sec.value.tables.find((t) => t.table === table) : undefined;
  const wanted = wantedIndexOf(c, table);
  const primary = raw.primary.ok ? raw.primary.value : undefined;
  // The server is the one the primary's foreign table names (a secondary with standbys is read through a server of
  // its own); the topology's when there is none.
  const foreign = primary?.foreignTables.find((t) => t.schema === REMOTE_SCHEMA && t.name === table);
  const server = foreign?.server ?? serverFor(secondary, c.query);
  if (primary && !foreign) {
    problems.push({ database: 'primary', object: `collection ${c.name}`, message: `the foreign table ${REMOTE_SCHEMA}.${table} is missing on the primary`, fix: 'vecscale apply creates it' });
  }
  const serverSettings = primary?.serverSettings[server] ?? null;
  const secondarySettings = sec?.ok ? { ...sec.value.databaseSettings, ...sec.value.wrapperRoleSettings } : null;
  const object = `collection ${c.name}${table === c.name ? '' : ` (${VECS_SCHEMA}.${table})`}`;
  if (sec?.ok && !live) {
    problems.push({ database: secondary, object, message: `${VECS_SCHEMA}.${table} does not exist on ${secondary}`, fix: 'vecscale apply creates it' });
  }
  const picked = live ? pickIndex(live, wanted?.name) : undefined;
  const index = picked ? indexStatus(picked) : undefined;
  if (live && wanted) {
    if (!index) {
      problems.push({
        database: secondary,
        object,
        message: `${VECS_SCHEMA}.${table} has no vector index; the topology wants ${describeIndex(wanted)}: every search is a sequential scan`,
        fix: 'vecscale apply builds it (CREATE INDEX CONCURRENTLY; the plan states the memory it needs)',
      });
    } else if (!index.valid) {
      problems.push({
        database: secondary,
        object,
        message: `index ${VECS_SCHEMA}.${index.name} is INVALID (an interrupted build): queries do not use it`,
        fix: `vecscale apply drops and builds it again (or by hand: DROP INDEX CONCURRENTLY ${qualified(VECS_SCHEMA, index.name)})`,
      });
    } else if (index.method !== wanted.method || index.opclass !== wanted.opclass || !sameParams(index.params, wanted.params)) {
      problems.push({
        database: secondary,
        object,
        message: `index ${VECS_SCHEMA}.${index.name} is ${describeIndex(index)}; the topology wants ${describeIndex(wanted)}`,
        fix: 'vecscale plan shows the rebuild; vecscale apply runs it',
      });
    }
  }
  // The metadata indexes the topology asks for: without them hybrid search's text leg, or every restricted read,
  // scans the table.
  const metadata = [
    ...(c.text ? [{ name: textIndexName(table, c.text), what: 'full-text index', without: "hybrid search's text leg scans the whole table" }] : []),
    ...(c.access ? [{ name: ownerIndexName(table, c.access), what: 'owner index', without: "every restricted caller's read and search filters the whole table" }] : []),
  ];
  for (const m of live ? metadata : []) {
    const valid = live!.otherIndexes[m.name];
    if (valid === undefined) {
      problems.push({ database: secondary, object, message: `the ${m.what} ${VECS_SCHEMA}.${m.name} of ${VECS_SCHEMA}.${table} is missing: ${m.without}`, fix: 'vecscale apply builds it (CREATE INDEX CONCURRENTLY)' });
    } else if (!valid) {
      problems.push({
        database: secondary,
        object,
        message: `the ${m.what} ${VECS_SCHEMA}.${m.name} is INVALID (an interrupted build): queries do not use it, so ${m.without}`,
        fix: `vecscale plan shows its rebuild (or by hand: DROP INDEX CONCURRENTLY ${qualified(VECS_SCHEMA, m.name)}, then vecscale apply)`,
      });
    }
  }
  if (live && !wanted && index) {
    problems.push({
      database: secondary,
      object,
      message: `index ${VECS_SCHEMA}.${index.name} exists; the topology wants no index (index: none)`,
      fix: 'vecscale plan shows what apply does with it',
    });
  }
  if (primary && serverSettings === null) {
    problems.push({ database: 'primary', object: `server ${server}`, message: `the foreign server ${server} (for ${c.name} on ${secondary}) does not exist`, fix: 'vecscale apply creates it' });
  } else if (serverSettings) {
    const differs = sessionSettings(c.query).filter(([k, v]) => QUERY_KEYS.has(k) && serverSettings[k] !== v);
    if (differs.length > 0) {
      problems.push({
        database: 'primary',
        object: `server ${server}`,
        message: `the search settings of ${server} differ from the topology's for ${c.name}: ${differs.map(([k, v]) => `${k} ${serverSettings[k] ?? 'unset'} (wanted ${v})`).join(', ')}`,
        fix: 'vecscale apply sets them',
      });
    }
  }
  const rows = live === undefined ? null : live.count ?? (live.reltuples < 0 ? null : Math.round(live.reltuples));
  return {
    secondary,
    table,
    present: live !== undefined,
    reachable: sec?.ok ?? false,
    rows,
    rowsExact: live?.count !== undefined,
    tableBytes: live?.tableBytes ?? null,
    lastAnalyze: live?.lastAnalyze ?? null,
    index: index ?? null,
    wantedIndex: wanted,
    server,
    serverSettings,
    secondarySettings,
  };
}

/** The table's vector index: the one with the topology's name, else the first by name. */
const pickIndex = (t: RawTable, name: string | undefined): RawIndex | undefined => t.indexes.find((i) => i.name === name) ?? t.indexes[0];

/**
 * A vecs table vecscale made that the topology does not place here: plan drops it, which needs --allow-destructive
 * when it holds rows (and is refused while it is protected) — so until then every plan is blocked.
 */
function orphanProblem(topology: Topology, secondary: string, o: RawOrphan): Problem {
  const name = collectionOfTable(o.table);
  const c = topology.collections.find((x) => x.name === name);
  const rows = o.rows === null ? 'rows unknown' : o.rows === 0 && o.rowsExact ? 'empty' : `${o.rowsExact ? '' : 'about '}${o.rows} row${o.rows === 1 ? '' : 's'}`;
  const what = `${VECS_SCHEMA}.${o.table} (made by vecscale${o.protected ? ', protected' : ''}; ${rows})`;
  if (c) {
    return {
      database: secondary,
      object: `collection ${c.name}`,
      message: `${what} is still on ${secondary}; the topology places collection ${c.name} ${describeLayout(c)}`,
      fix: 'vecscale plan shows what apply does with it (a move of its rows, or a drop)',
    };
  }
  // Empty, its drop loses nothing: apply drops it without a flag, protected or not (protect refuses lost rows).
  if (o.rows === 0 && o.rowsExact) {
    return {
      database: secondary,
      object: `table ${VECS_SCHEMA}.${o.table}`,
      message: `${what} belongs to collection ${name}, which is not in the topology: apply drops it`,
      fix: `to keep it, put collection ${name} back in the topology; otherwise vecscale apply drops it (it is empty: no flag needed)`,
    };
  }
  return {
    database: secondary,
    object: `table ${VECS_SCHEMA}.${o.table}`,
    message: o.protected
      ? `${what} belongs to collection ${name}, which is not in the topology: apply would drop it, and refuses (it is protected), so every plan is blocked`
      : `${what} belongs to collection ${name}, which is not in the topology: apply drops it`,
    fix: o.protected
      ? `to keep it, put collection ${name} back in the topology; to drop it, put it back with protect: false, apply, then remove it`
      : `to keep it, put collection ${name} back in the topology; to drop it, vecscale apply --allow-destructive ${name} (without it, a table that holds rows blocks every plan)`,
  };
}

/** What a setting in force in the wrappers' sessions on a secondary does to queries and writes through the primary. */
function settingEffect(k: string, v: string): string | undefined {
  if (k === 'session_replication_role' && v !== 'origin') {
    return `session_replication_role = ${v}: triggers do not fire, so upserts through the primary (upsert_<c>, through the secondary's vecscale.<c> view and its triggers) are lost without an error`;
  }
  if (k === 'default_transaction_read_only' && /^(on|true|yes|1)$/i.test(v)) return 'default_transaction_read_only = on: every write through the primary fails';
  if (k === 'statement_timeout' && !/^0\D*$/.test(v)) return `statement_timeout = ${v}: a query through the primary that runs longer fails`;
  return undefined;
}

/**
 * Settings that break the wrappers' sessions: the wrapper role's own (vecscale wants none; apply resets them), and the
 * database defaults among HAZARDS (the database owner's: vecscale does not change them, status names them).
 */
function sessionProblems(name: string, fdwUser: string | undefined, s: RawSecondary): Problem[] {
  const problems: Problem[] = [];
  const own = Object.entries(s.wrapperRoleOwn).map(([k, v]) => ({ k, v, effect: settingEffect(k, v) }));
  if (own.length > 0 && fdwUser !== undefined) {
    const effects = own.flatMap((o) => (o.effect === undefined ? [] : [o.effect]));
    problems.push({
      database: name,
      object: `role ${fdwUser}`,
      // Values only of the settings whose effect is named (or search settings): another's value might be a secret.
      message: `the wrapper role ${fdwUser} has settings of its own (${own.map((o) => (o.effect !== undefined || isQuerySetting(o.k) ? `${o.k}=${o.v}` : o.k)).join(', ')}), in force in every session the wrappers open on ${name}${effects.length ? `: ${effects.join('; ')}` : ''}`,
      fix: `vecscale apply resets them (ALTER ROLE ${fdwUser} … RESET ALL)`,
    });
  }
  for (const [k, v] of Object.entries(s.databaseHazards)) {
    const effect = settingEffect(k, v);
    if (effect === undefined) continue;
    problems.push({
      database: name,
      object: `setting ${k}`,
      message: `${name}'s database default ${effect}`,
      fix: `on ${name}: ALTER DATABASE … RESET ${k} (a database default is its owner's: vecscale does not change it)`,
    });
  }
  return problems;
}

function secondaryProblems(topology: Topology, name: string, s: RawSecondary, seenPhysical: Set<string>): Problem[] {
  const problems: Problem[] = [];
  if (s.pgvector === null) {
    problems.push({ database: name, object: 'extension vector', message: `pgvector is not installed in ${name}'s database`, fix: 'vecscale apply creates the extension' });
  }
  const spec = topology.secondaries.find((x) => x.name === name);
  const cluster = spec ? clusterOf(spec.url) : name;
  for (const slot of s.slots) {
    if (slot.active) continue;
    // A physical slot is the cluster's: every database of it sees the slot; it is named once, under the first.
    if (slot.type === 'physical') {
      const k = `${cluster}/${slot.name}`;
      if (seenPhysical.has(k)) continue;
      seenPhysical.add(k);
    }
    const held = slot.retainedBytes === null ? 'no WAL reserved yet' : `holding ${formatBytes(slot.retainedBytes)} of WAL`;
    const ours = slot.name.startsWith(MOVE_PREFIX);
    problems.push({
      database: name,
      object: `replication slot ${slot.name}`,
      message: `the ${slot.type} replication slot ${slot.name} is inactive, ${held}: the server keeps every WAL segment from it on, until its disk fills`,
      fix: ours
        ? 'it is a move\'s (vecscale_mv_…): vecscale apply resumes that move or removes what an abandoned one left'
        : `if nothing will consume it again, on ${name}: SELECT pg_catalog.pg_drop_replication_slot(${literal(slot.name)})`,
    });
  }
  for (const o of s.orphans) problems.push(orphanProblem(topology, name, o));
  problems.push(...sessionProblems(name, spec?.fdwUser, s));
  const declared = spec?.replicas.length ?? 0;
  const streaming = s.replicas.filter((r) => r.state === 'streaming').length;
  // A role without pg_read_all_stats sees walsenders without their state: unknown, not missing.
  if (streaming < declared && s.hiddenReplicas === 0) {
    problems.push({
      database: name,
      object: 'replicas',
      message: `${declared} standby${declared === 1 ? '' : 's'} declared, ${streaming} streaming from ${name}: reads meant for a standby go to ${name} (or to a standby that falls behind)`,
      fix: 'check each standby (is it up, its primary_conninfo, its log); vecscale plan names an unreachable one',
    });
  }
  return problems;
}


function primaryProblems(topology: Topology, p: RawPrimary, raw: RawStatus): { wrappers: WrapperStatus[]; problems: Problem[] } {
  const problems: Problem[] = [];
  for (const c of topology.collections) {
    const wanted = [c.name, `${matchFunctionName(c.name)}()`, ...(c.text === undefined ? [] : [`${hybridFunctionName(c.name)}()`])];
    const missing = wanted.filter((n) => !p.apiObjects.includes(n));
    if (missing.length > 0) {
      problems.push({
        database: 'primary',
        object: `collection ${c.name}`,
        message: `${missing.map((m) => `${API_SCHEMA}.${m}`).join(', ').replace(/, ([^,]*)$/, ' and $1')} ${missing.length === 1 ? 'is' : 'are'} missing on the primary`,
        fix: 'vecscale apply creates them',
      });
    }
  }
  const relationsOf = (pod: string | undefined) => {
    const r = pod === undefined ? undefined : raw.secondaries.get(pod);
    return r?.ok ? r.value.relations : undefined;
  };
  const wrappers = p.foreignTables.map((t): WrapperStatus => {
    const there = relationsOf(t.secondary);
    const columns = there?.[t.remote];
    const missingColumns = columns === undefined ? [] : t.remoteColumns.filter((c) => !columns.includes(c));
    // What the secondary's catalog shows comes first: a login failure would hide it.
    const error =
      (there !== undefined && columns === undefined
        ? `${t.remote} does not exist on ${t.secondary}`
        : missingColumns.length > 0
          ? `column${missingColumns.length === 1 ? '' : 's'} ${missingColumns.join(', ')} of ${t.remote} ${missingColumns.length === 1 ? 'does' : 'do'} not exist on ${t.secondary}`
          : null) ?? t.error;
    return { table: `${t.schema}.${t.name}`, server: t.server, remote: t.remote, ...(t.secondary === undefined ? {} : { secondary: t.secondary }), ok: error === null, ...(error === null ? {} : { error }) };
  });
  // Every foreign table the topology implies: a dropped one fails its reads, writes or upserts.
  const present = new Set(p.foreignTables.map((t) => `${t.schema}.${t.name}`));
  const implied = new Set<string>();
  for (const c of topology.collections) {
    const replicated = c.shards === undefined && (topology.secondaries.find((x) => x.name === c.secondary)?.replicas.length ?? 0) > 0;
    const wanted = [
      ...partsOf(c).flatMap((part) => [`${REMOTE_SCHEMA}.${part.table}`, `${WRITE_SCHEMA}.${part.table}`]),
      ...(replicated ? [`${HELPER_SCHEMA}.${c.name}`] : []),
    ];
    for (const name of wanted) implied.add(name);
    // vecscale_remote's are reported with their collection's parts.
    for (const name of wanted.filter((n) => !n.startsWith(`${REMOTE_SCHEMA}.`) && !present.has(n))) {
      problems.push({ database: 'primary', object: `collection ${c.name}`, message: `the foreign table ${name} is missing on the primary`, fix: 'vecscale apply creates it' });
    }
  }
  // vecscale's foreign tables the topology does not imply: a collection taken out, or an earlier layout of one. Plan
  // drops them (or a move switches them at its cutover): their reads failing is no reason to create anything again.
  const leftovers = p.foreignTables.filter((t) => t.managed && !implied.has(`${t.schema}.${t.name}`));
  const leftoverNames = new Set(leftovers.map((t) => `${t.schema}.${t.name}`));
  const byCollection = new Map<string, string[]>();
  for (const t of leftovers) {
    const name = collectionOfTable(t.name);
    byCollection.set(name, [...(byCollection.get(name) ?? []), `${t.schema}.${t.name}`]);
  }
  for (const [name, tables] of byCollection) {
    const c = topology.collections.find((x) => x.name === name);
    const list = `the foreign table${tables.length === 1 ? '' : 's'} ${tables.join(', ').replace(/, ([^,]*)$/, ' and $1')}`;
    problems.push(
      c
        ? {
            database: 'primary',
            object: `collection ${c.name}`,
            message: `${list} on the primary ${tables.length === 1 ? 'is' : 'are'} from an earlier layout of collection ${c.name}; the topology places it ${describeLayout(c)}`,
            fix: `vecscale plan shows what apply does with ${tables.length === 1 ? 'it' : 'them'} (a move of its rows, then a drop)`,
          }
        : {
            database: 'primary',
            object: `collection ${name}`,
            message: `${list} on the primary belong${tables.length === 1 ? 's' : ''} to collection ${name}, which is not in the topology`,
            fix: `to keep it, put collection ${name} back in the topology; otherwise vecscale apply drops ${tables.length === 1 ? 'it' : 'them'}, with what else collection ${name} left (vecscale plan lists it)`,
          },
    );
  }
  // session_replication_role in the wrappers' sessions, wherever it came from; a pod's database default or the
  // wrapper role's own setting is named there already (with its RESET), so only another source is named here.
  for (const [server, role] of Object.entries(p.replicationRoles)) {
    if (role === 'origin') continue;
    const pod = p.foreignTables.find((t) => t.server === server)?.secondary;
    const r = pod === undefined ? undefined : raw.secondaries.get(pod);
    const explained = r?.ok === true && ('session_replication_role' in r.value.databaseHazards || 'session_replication_role' in r.value.wrapperRoleOwn);
    if (explained) continue;
    problems.push({
      database: 'primary',
      object: `server ${server}`,
      message: `the wrappers' sessions through server ${server}${pod === undefined ? '' : ` on ${pod}`} run with ${settingEffect('session_replication_role', role)}`,
      fix: `set it back to origin where it is set on ${pod ?? 'that secondary'} (postgresql.conf or ALTER SYSTEM: neither the database's defaults nor the wrapper role's set it)`,
    });
  }
  // One problem per server and failure: a refused password fails every table of the server the same way.
  const failures = new Map<string, WrapperStatus[]>();
  for (const w of wrappers) {
    if (w.ok || w.error?.startsWith('not tried') || leftoverNames.has(w.table)) continue;
    const k = `${w.server}\u0000${w.error}`;
    failures.set(k, [...(failures.get(k) ?? []), w]);
  }
  for (const ws of failures.values()) {
    const w = ws[0]!;
    const password = /password authentication failed|password is required/i.test(w.error ?? '');
    if (/^columns? .* not exist on /.test(w.error ?? '')) {
      problems.push({
        database: 'primary',
        object: w.table,
        message: `${w.table} (server ${w.server}) reads ${w.remote}, whose ${w.error!.replace(/ of \S+ (does|do) not exist on .*$/, '')} ${/^columns /.test(w.error!) ? 'are' : 'is'} gone on the secondary: every query through it fails`,
        fix: `vecscale apply (vecscale plan shows the repair)`,
      });
      continue;
    }
    if (/does not exist/i.test(w.error ?? '')) {
      problems.push({
        database: 'primary',
        object: w.table,
        message: `${w.table} (server ${w.server}) reads ${w.remote}, which is gone on the secondary (${w.error}): every query through it fails`,
        fix: `vecscale apply creates ${w.remote} again`,
      });
      continue;
    }
    if (/stopped answering|took longer than the statement timeout/.test(w.error ?? '')) {
      problems.push({
        database: 'primary',
        object: `server ${w.server}`,
        message: `a login through server ${w.server} (${ws.map((x) => x.table).join(", ")}) got no answer within the statement timeout: the primary cannot reach ${w.secondary ?? 'the host it names'}, or it does not answer the primary`,
        fix: w.secondary === undefined
          ? `the server points at no secondary of the topology: vecscale apply sets its host and port again`
          : `check the network and pg_hba.conf from the primary's host to ${w.secondary} (the server's connect_timeout bounds each new connection)`,
      });
      continue;
    }
    problems.push({
      database: 'primary',
      object: `server ${w.server}`,
      message: `a login through server ${w.server} failed (${ws.map((x) => x.table).join(', ')} read through it): ${w.error}`,
      fix: password
        ? "the wrapper role's password and the user mapping's disagree: vecscale apply sets it again on both sides"
        : 'every query through this server fails the same way: check that the secondary is reachable from the primary',
    });
  }
  return { wrappers, problems };
}

/** The report: every database, collection and wrapper, and every problem with its fix. */
export function buildReport(topology: Topology, raw: RawStatus): StatusReport {
  const problems: Problem[] = [];
  const databases: DatabaseStatus[] = [];
  const seenPhysical = new Set<string>();
  const unreachable = (database: string, error: string) =>
    problems.push({ database, object: 'database', message: error, fix: 'check that it is up, and the URL and password in the topology' });
  if (raw.primary.ok) databases.push({ database: 'primary', reachable: true, version: raw.primary.value.version });
  else {
    databases.push({ database: 'primary', reachable: false, error: raw.primary.error });
    unreachable('primary', raw.primary.error);
  }
  for (const s of topology.secondaries) {
    const r = raw.secondaries.get(s.name);
    if (!r?.ok) {
      const error = r?.ok === false ? r.error : 'not read';
      databases.push({ database: s.name, reachable: false, error, declaredReplicas: s.replicas.length });
      unreachable(s.name, error);
      continue;
    }
    const v = r.value;
    databases.push({
      database: s.name,
      reachable: true,
      version: v.version,
      pgvector: v.pgvector,
      walLevel: v.walLevel,
      slots: v.slots,
      replicas: v.replicas,
      declaredReplicas: s.replicas.length,
      hiddenReplicas: v.hiddenReplicas,
      ...(v.sizesError === undefined ? {} : { warning: `sizes and row counts unknown: ${v.sizesError}` }),
    });
    problems.push(...secondaryProblems(topology, s.name, v, seenPhysical));
  }
  const collections = topology.collections.map((c): CollectionStatus => {
    const parts = partsOf(c).map((p) => partStatus(c, p.table, p.secondary, raw, problems));
    const known = parts.every((p) => p.rows !== null);
    return {
      name: c.name,
      secondaries: secondariesOf(c),
      rows: known ? parts.reduce((n, p) => n + (p.rows ?? 0), 0) : null,
      rowsExact: parts.every((p) => p.rowsExact),
      parts,
    };
  });
  const { wrappers, problems: wrapperProblems } = raw.primary.ok ? primaryProblems(topology, raw.primary.value, raw) : { wrappers: [], problems: [] };
  problems.push(...wrapperProblems);
  // One message per (database, object, message): a server shared by several collections is named once.
  const seen = new Set<string>();
  const unique = problems.filter((p) => {
    const k = `${p.database}\u0000${p.object}\u0000${p.message}`;
    return !seen.has(k) && (seen.add(k), true);
  });
  return { healthy: unique.length === 0, databases, collections, wrappers, problems: unique };
}
