/**
 * Catalog reads. Raw rows stay in this file; `toState` (pure, tested on fixture rows) maps them into the model.
 * Runs in a READ ONLY transaction with search_path = pg_catalog, so every name we read is resolved the same way
 * whatever the role's settings.
 */
import type { Db } from '../db/connect.js';
import {
  type Column,
  type DatabaseRole,
  type DatabaseState,
  type DbObject,
  keys,
  type LiveFacts,
  MANAGED_COMMENT,
  VIEWDEF_MARK,
  DEFINITION_MARK,
  HELPER_SCHEMA,
  WRITE_SCHEMA,
  REMOTE_SCHEMA,
  VECS_SCHEMA,
  API_SCHEMA,
} from '../model/state.js';
import { qualified } from '../sql/quote.js';
import { byCodePoint, secretFingerprint } from '../util/fingerprint.js';

/** What to look at: vecscale's schemas, plus the relation names the topology wants (to see collisions). */
export interface IntrospectScope {
  readonly relationNames: readonly string[];
  /** Function names the topology wants (match_<c>, filter_sql). */
  readonly functionNames: readonly string[];
}

export interface RawCatalog {
  readonly facts: { current_user: string; server_version_num: string; dblink_public: boolean };
  readonly extensions: ReadonlyArray<{ extname: string; nspname: string }>;
  readonly schemas: ReadonlyArray<{ nspname: string; comment: string | null }>;
  readonly relations: ReadonlyArray<{
    oid: number;
    nspname: string;
    relname: string;
    relkind: string;
    comment: string | null;
    viewdef_md5: string | null;
    reloptions: string[] | null;
    grantees: string[];
    write_trigger: string | null;
  }>;
  readonly functions: ReadonlyArray<{
    nspname: string;
    proname: string;
    signature: string;
    body_md5: string;
    comment: string | null;
    grantees: string[];
  }>;
  readonly columns: ReadonlyArray<{
    attrelid: number;
    attname: string;
    type: string;
    attnotnull: boolean;
    default: string | null;
    attfdwoptions: string[] | null;
  }>;
  readonly primaryKeys: ReadonlyArray<{ conrelid: number; columns: string[] }>;
  readonly indexes: ReadonlyArray<{
    indrelid: number;
    relname: string;
    amname: string;
    opcname: string;
    column: string | null;
    reloptions: string[] | null;
    indisvalid: boolean;
    comment: string | null;
  }>;
  readonly foreignTables: ReadonlyArray<{ ftrelid: number; srvname: string; ftoptions: string[] | null }>;
  readonly servers: ReadonlyArray<{ srvname: string; fdwname: string; srvoptions: string[] | null; comment: string | null }>;
  readonly userMappings: ReadonlyArray<{ srvname: string; usename: string; umoptions: string[] | null }>;
  readonly nonEmpty: ReadonlyArray<{ relname: string }>;
}

const SCHEMAS = [VECS_SCHEMA, API_SCHEMA, REMOTE_SCHEMA, HELPER_SCHEMA, WRITE_SCHEMA];

// NOTE: aclexplode() lists the owner's own privileges too; grantee 0 is PUBLIC.
const GRANTEES = (acl: string, owner: string, privilege?: string) =>
  `ARRAY(SELECT DISTINCT CASE a.grantee WHEN 0 THEN 'public' ELSE a.grantee::pg_catalog.regrole::text END
           FROM pg_catalog.aclexplode(${acl}) a WHERE a.grantee <> ${owner}${privilege ? ` AND a.privilege_type = '${privilege}'` : ''} ORDER BY 1)`;

/** Reads the catalogs of one database. */
export async function readCatalog(db: Db, scope: IntrospectScope): Promise<RawCatalog> {
  await db.query('BEGIN READ ONLY');
  try {
    await db.query("SET LOCAL search_path = pg_catalog");
    const q = async <R>(text: string, values: unknown[] = []): Promise<R[]> => (await db.query(text, values)).rows as R[];
    const facts = (await q<RawCatalog['facts']>(
      `SELECT current_user::text AS current_user, current_setting('server_version_num') AS server_version_num,
              EXISTS (SELECT FROM pg_catalog.pg_depend d
                        JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid AND e.extname = 'dblink'
                        JOIN pg_catalog.pg_proc p ON p.oid = d.objid AND d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass,
                        LATERAL pg_catalog.aclexplode(COALESCE(p.proacl, pg_catalog.acldefault('f', p.proowner))) a
                       WHERE d.deptype = 'e' AND a.grantee = 0 AND a.privilege_type = 'EXECUTE') AS dblink_public`,
    ))[0]!;
    const extensions = await q<RawCatalog['extensions'][number]>(
      `SELECT e.extname::text, n.nspname::text
         FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
        WHERE e.extname IN ('vector', 'postgres_fdw', 'dblink')`,
    );
    const schemas = await q<RawCatalog['schemas'][number]>(
      `SELECT n.nspname::text, pg_catalog.obj_description(n.oid, 'pg_namespace') AS comment
         FROM pg_catalog.pg_namespace n
        WHERE n.nspname = ANY($1::text[]) OR n.nspname IN (SELECT e.extnamespace::regnamespace::text FROM pg_catalog.pg_extension e)`,
      [SCHEMAS],
    );
    // Relations named like a collection, or carrying our marker, in vecscale's schemas (any kind: collisions count).
    const relations = await q<RawCatalog['relations'][number]>(
      `SELECT c.oid::int AS oid, n.nspname::text, c.relname::text, c.relkind::text,
              pg_catalog.obj_description(c.oid, 'pg_class') AS comment,
              CASE WHEN c.relkind = 'v' THEN pg_catalog.md5(pg_catalog.pg_get_viewdef(c.oid)) END AS viewdef_md5,
              c.reloptions::text[] AS reloptions,
              ${GRANTEES("COALESCE(c.relacl, pg_catalog.acldefault('r', c.relowner))", 'c.relowner', 'SELECT')} AS grantees,
              (SELECT t.tgfoid::pg_catalog.regproc::text FROM pg_catalog.pg_trigger t
                WHERE t.tgrelid = c.oid AND t.tgname = 'vecscale_write') AS write_trigger
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ANY($1::text[])
          AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
          AND (c.relname = ANY($2::text[]) OR pg_catalog.obj_description(c.oid, 'pg_class') LIKE $3 || '%')
        ORDER BY n.nspname, c.relname`,
      [SCHEMAS, scope.relationNames, MANAGED_COMMENT],
    );
    const functions = await q<RawCatalog['functions'][number]>(
      `SELECT n.nspname::text, p.proname::text, p.oid::pg_catalog.regprocedure::text AS signature,
              pg_catalog.md5(p.prosrc) AS body_md5, pg_catalog.obj_description(p.oid, 'pg_proc') AS comment,
              ${GRANTEES("COALESCE(p.proacl, pg_catalog.acldefault('f', p.proowner))", 'p.proowner', 'EXECUTE')} AS grantees
         FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = ANY($1::text[])
          AND (p.proname = ANY($2::text[]) OR pg_catalog.obj_description(p.oid, 'pg_proc') LIKE $3 || '%')
        ORDER BY n.nspname, p.proname, 3`,
      [SCHEMAS, scope.functionNames, MANAGED_COMMENT],
    );
    const oids = relations.map((r) => r.oid);
    const columns = await q<RawCatalog['columns'][number]>(
      `SELECT a.attrelid::int AS attrelid, a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type,
              a.attnotnull, pg_catalog.pg_get_expr(d.adbin, d.adrelid) AS default, a.attfdwoptions::text[] AS attfdwoptions
         FROM pg_catalog.pg_attribute a
         LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attrelid, a.attnum`,
      [oids],
    );
    const primaryKeys = await q<RawCatalog['primaryKeys'][number]>(
      `SELECT con.conrelid::int AS conrelid,
              ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(attnum, ord)
                      JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
                     ORDER BY k.ord) AS columns
         FROM pg_catalog.pg_constraint con
        WHERE con.contype = 'p' AND con.conrelid = ANY($1::oid[])`,
      [oids],
    );
    // NOTE: only the vector access methods; a btree or gin index a user adds is theirs and stays out of the model.
    const indexes = await q<RawCatalog['indexes'][number]>(
      `SELECT i.indrelid::int AS indrelid, ic.relname::text, am.amname::text, opc.opcname::text,
              (SELECT a.attname::text FROM pg_catalog.pg_attribute a
                WHERE a.attrelid = i.indrelid AND a.attnum = i.indkey[0]) AS column,
              ic.reloptions::text[] AS reloptions, i.indisvalid,
              pg_catalog.obj_description(ic.oid, 'pg_class') AS comment
         FROM pg_catalog.pg_index i
         JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
         JOIN pg_catalog.pg_am am ON am.oid = ic.relam
         JOIN pg_catalog.pg_opclass opc ON opc.oid = i.indclass[0]
        WHERE i.indrelid = ANY($1::oid[]) AND am.amname IN ('hnsw', 'ivfflat')
        ORDER BY ic.relname`,
      [oids],
    );
    const foreignTables = await q<RawCatalog['foreignTables'][number]>(
      `SELECT ft.ftrelid::int AS ftrelid, s.srvname::text, ft.ftoptions::text[] AS ftoptions
         FROM pg_catalog.pg_foreign_table ft JOIN pg_catalog.pg_foreign_server s ON s.oid = ft.ftserver
        WHERE ft.ftrelid = ANY($1::oid[])`,
      [oids],
    );
    const servers = await q<RawCatalog['servers'][number]>(
      `SELECT s.srvname::text, w.fdwname::text, s.srvoptions::text[] AS srvoptions,
              pg_catalog.obj_description(s.oid, 'pg_foreign_server') AS comment
         FROM pg_catalog.pg_foreign_server s JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid = s.srvfdw
        ORDER BY s.srvname`,
    );
    // NOTE: pg_user_mappings shows umoptions (passwords included) only to the mapped user and the server's owner;
    // they are fingerprinted in `toState` and never leave this process.
    const userMappings = await q<RawCatalog['userMappings'][number]>(
      `SELECT um.srvname::text, um.usename::text, um.umoptions::text[] AS umoptions
         FROM pg_catalog.pg_user_mappings um ORDER BY um.srvname, um.usename`,
    );
    const nonEmpty: Array<{ relname: string }> = [];
    for (const r of relations) {
      if (r.nspname === VECS_SCHEMA && r.relkind === 'r') {
        const rows = await q(`SELECT 1 FROM ${qualified(VECS_SCHEMA, r.relname)} LIMIT 1`);
        if (rows.length > 0) nonEmpty.push({ relname: r.relname });
      }
    }
    return { facts, extensions, schemas, relations, functions, columns, primaryKeys, indexes, foreignTables, servers, userMappings, nonEmpty };
  } finally {
    await db.query('ROLLBACK').catch(() => undefined);
  }
}

const parseOptions = (opts: readonly string[] | null): Record<string, string> => {
  const out: Record<string, string> = {};
  for (const o of opts ?? []) {
    const i = o.indexOf('=');
    out[o.slice(0, i)] = o.slice(i + 1);
  }
  return out;
};

// NOTE: format_type() schema-qualifies types not visible on search_path (we run with pg_catalog only), so pgvector's
// type reads `public.vector(384)` or `extensions.vector(384)`; where pgvector lives is checked on its own.
const normaliseType = (type: string): string => type.replace(/^[a-z_][a-z0-9_$]*\.(?=vector\b)/, '').replace(/^"[^"]+"\.(?=vector\b)/, '');

const isManaged = (comment: string | null): boolean =>
  comment === MANAGED_COMMENT || (comment?.startsWith(MANAGED_COMMENT + VIEWDEF_MARK) ?? false);

// NOTE: a view's marker records md5(pg_get_viewdef) from its creation; a different digest now means a hand edit.
// An unmarked view (not ours) has no record and counts as intact: it is judged by its columns alone.
const viewIntact = (comment: string | null, md5: string | null): boolean =>
  !comment?.startsWith(MANAGED_COMMENT + VIEWDEF_MARK) || comment.slice((MANAGED_COMMENT + VIEWDEF_MARK).length) === md5;

/** Pure mapping of raw catalog rows into the shared model. */
export function toState(database: string, role: DatabaseRole, raw: RawCatalog): { state: DatabaseState; facts: LiveFacts } {
  const objects: DbObject[] = [];
  for (const e of raw.extensions) {
    objects.push({ kind: 'extension', key: keys.extension(e.extname), managed: false, name: e.extname, schema: e.nspname });
  }
  for (const s of raw.schemas) {
    objects.push({ kind: 'schema', key: keys.schema(s.nspname), managed: isManaged(s.comment), name: s.nspname });
  }
  const columnsOf = (oid: number): Column[] =>
    raw.columns
      .filter((c) => c.attrelid === oid)
      .map((c) => ({ name: c.attname, type: normaliseType(c.type), notNull: c.attnotnull, default: c.default }));
  const relName = new Map(raw.relations.map((r) => [r.oid, r]));
  for (const r of raw.relations) {
    const base = { key: keys.relation(r.nspname, r.relname), managed: isManaged(r.comment), schema: r.nspname, name: r.relname };
    if (r.relkind === 'v' || r.relkind === 'm') {
      objects.push({
        ...base,
        kind: 'view',
        columns: columnsOf(r.oid).map((c) => ({ ...c, notNull: false, default: null })),
        definitionIntact: viewIntact(r.comment, r.viewdef_md5),
        materialized: r.relkind === 'm',
        options: [...(r.reloptions ?? [])].sort(byCodePoint),
        grantees: r.grantees,
        ...(r.write_trigger ? { writeTrigger: r.write_trigger } : {}),
      });
    } else if (r.relkind === 'f') {
      const ft = raw.foreignTables.find((f) => f.ftrelid === r.oid);
      objects.push({
        ...base,
        kind: 'foreign_table',
        server: ft?.srvname ?? '',
        options: parseOptions(ft?.ftoptions ?? null),
        columns: columnsOf(r.oid).map((c) => ({ ...c, notNull: false, default: null })),
        columnOptions: Object.fromEntries(
          raw.columns.filter((c) => c.attrelid === r.oid && c.attfdwoptions?.length).map((c) => [c.attname, [...c.attfdwoptions!].sort(byCodePoint)]),
        ),
      });
    } else {
      // NOTE: a partitioned table ('p') maps to a table too; its columns will not match a collection's.
      objects.push({
        ...base,
        kind: 'table',
        columns: columnsOf(r.oid),
        primaryKey: raw.primaryKeys.find((p) => p.conrelid === r.oid)?.columns ?? [],
        ordinary: r.relkind === 'r',
      });
    }
  }
  // One vector index per collection table: ours (marker) if present, else the first in name order.
  const seenTables = new Set<number>();
  const sorted = [...raw.indexes].sort((a, b) => Number(isManaged(b.comment)) - Number(isManaged(a.comment)) || byCodePoint(a.relname, b.relname));
  for (const i of sorted) {
    const table = relName.get(i.indrelid);
    if (!table || table.nspname !== VECS_SCHEMA || seenTables.has(i.indrelid)) continue;
    seenTables.add(i.indrelid);
    const params = parseOptions(i.reloptions);
    objects.push({
      kind: 'index',
      key: keys.index(table.nspname, table.relname),
      managed: isManaged(i.comment),
      schema: table.nspname,
      table: table.relname,
      name: i.relname,
      method: i.amname === 'ivfflat' ? 'ivfflat' : 'hnsw',
      column: i.column ?? '',
      opclass: i.opcname,
      params: Object.fromEntries(Object.entries(params).sort(([a], [b]) => byCodePoint(a, b))),
      valid: i.indisvalid,
    });
  }
  for (const f of raw.functions) {
    const marker = MANAGED_COMMENT + DEFINITION_MARK;
    objects.push({
      kind: 'function',
      key: keys.function(f.nspname, f.proname),
      managed: isManaged(f.comment),
      schema: f.nspname,
      name: f.proname,
      definitionMd5: f.comment?.startsWith(marker) ? f.comment.slice(marker.length) : null,
      bodyMd5: f.body_md5,
      grantees: f.grantees,
      signature: f.signature,
    });
  }
  for (const s of raw.servers) {
    objects.push({
      kind: 'server',
      key: keys.server(s.srvname),
      managed: isManaged(s.comment),
      name: s.srvname,
      wrapper: s.fdwname,
      options: parseOptions(s.srvoptions),
    });
  }
  const serverManaged = new Map(raw.servers.map((s) => [s.srvname, isManaged(s.comment)]));
  for (const m of raw.userMappings) {
    // Every option but the user name may be a secret (password, sslpassword, …): only fingerprints leave here.
    const options = Object.fromEntries(
      Object.entries(parseOptions(m.umoptions)).map(([k, v]) => [k, k === 'user' ? v : secretFingerprint(v)]),
    );
    objects.push({
      kind: 'user_mapping',
      key: keys.userMapping(m.srvname, m.usename),
      // NOTE: user mappings take no comment; they are ours when their server is.
      managed: serverManaged.get(m.srvname) ?? false,
      server: m.srvname,
      role: m.usename,
      options,
    });
  }
  const vector = raw.extensions.find((e) => e.extname === 'vector');
  return {
    state: { database, role, objects: new Map(objects.map((o) => [o.key, o])) },
    facts: {
      database,
      currentUser: raw.facts.current_user,
      serverVersion: Number(raw.facts.server_version_num),
      vectorSchema: vector?.nspname,
      dblinkSchema: raw.extensions.find((e) => e.extname === 'dblink')?.nspname,
      dblinkPublic: raw.facts.dblink_public,
      nonEmpty: new Set(raw.nonEmpty.map((r) => keys.relation(VECS_SCHEMA, r.relname))),
    },
  };
}
