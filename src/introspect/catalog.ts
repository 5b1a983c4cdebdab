/**
 * Catalog reads. Raw rows are private to introspection; `toState` (./map.ts, pure, tested on fixture rows) maps
 * them into the model.
 * Runs in a READ ONLY transaction with search_path = pg_catalog, so every name we read is resolved the same way
 * whatever the role's settings.
 */
import { QUIET_SETTINGS } from '../model/log-sinks.js';
import type { Db } from '../db/connect.js';
import { API_SCHEMA, BATCHED, DATABASE_SETTINGS, HELPER_SCHEMA, INDEX_PREFIX, MANAGED_COMMENT, REMOTE_SCHEMA, VECS_SCHEMA, WRITE_BATCH_TRIGGERS, WRITE_SCHEMA, WRITE_TRIGGER } from '../model/state.js';
import { probeServers, type RawProbe } from './probe.js';
import { readReplication, type RawReplication } from './replication.js';

/** One privilege of an ACL as aclexplode() lists it: grantee name ('public' for PUBLIC), privilege, WITH GRANT OPTION. */
export type AclRow = readonly [grantee: string, privilege: string, grantable: boolean];

/** What to look at: vecscale's schemas, plus the relation names the topology wants (to see collisions). */
export interface IntrospectScope {
  readonly relationNames: readonly string[];
  /** Function names the topology wants (match_<c>, filter_sql). */
  readonly functionNames: readonly string[];
  /** The wrapper role whose privileges in this database to read (secondaries), and whether the role itself is this database's to manage. */
  readonly role?: { readonly name: string; readonly home: boolean };
  /** The roles the topology grants to (api_roles, write_roles): whether they exist here. */
  readonly grantees?: readonly string[];
}

/**
 * The planner's own row estimate of a table now, as PostgreSQL makes it (estimate_rel_size): the density the last
 * VACUUM or ANALYZE saw (reltuples / relpages) times the pages the table has now — a table analyzed small and
 * bulk-loaded since is estimated at its size today. Analyzed empty and filled since: -1, as never analyzed (counted).
 */
export const CURRENT_ROWS = `CASE WHEN c.relkind <> 'r' OR c.reltuples < 0 THEN c.reltuples
            WHEN c.relpages > 0 THEN c.reltuples / c.relpages
                 * pg_catalog.ceil(pg_catalog.pg_relation_size(c.oid) / pg_catalog.current_setting('block_size')::pg_catalog.float8)
            WHEN pg_catalog.pg_relation_size(c.oid) > 0 THEN -1
            ELSE c.reltuples END`;

/**
 * What an index build in this session gets and what bounds it (src/plan/index-build.ts), as select-list items: the
 * columns of BuildFactsRow. NOTE: shared_buffers counts 8kB buffers (its unit in pg_settings), so it is read as
 * setting × unit rather than from current_setting's text.
 */
export const BUILD_FACTS = `pg_catalog.pg_size_bytes(pg_catalog.current_setting('maintenance_work_mem'))::pg_catalog.float8 AS maintenance_work_mem,
              pg_catalog.current_setting('max_parallel_maintenance_workers')::pg_catalog.int4 AS max_parallel_maintenance_workers,
              pg_catalog.current_setting('max_parallel_workers')::pg_catalog.int4 AS max_parallel_workers,
              pg_catalog.current_setting('max_worker_processes')::pg_catalog.int4 AS max_worker_processes,
              (SELECT s.setting::pg_catalog.float8 * pg_catalog.pg_size_bytes(s.unit) FROM pg_catalog.pg_settings s
                WHERE s.name = 'shared_buffers')::pg_catalog.float8 AS shared_buffers`;

export interface BuildFactsRow {
  maintenance_work_mem: number;
  max_parallel_maintenance_workers: number;
  max_parallel_workers: number;
  max_worker_processes: number;
  shared_buffers: number;
}

/** A never-analyzed vecs table up to this size (pg_table_size) is counted, for the index build's memory note. */
export const COUNT_UNANALYZED_BYTES = 1024 * 1024 * 1024;

export interface RawCatalog {
  readonly facts: { current_user: string; server_version_num: string; superuser: boolean; can_quiet_log: boolean; owns_database: boolean } & BuildFactsRow;
  /** The connecting role's default privileges: object type (r, f, n), schema (null: every schema), ACL. */
  readonly defaultAcls: ReadonlyArray<{ objtype: string; schema: string | null; acl: AclRow[] }>;
  /** The topology's grantees that exist, and whether each may use pgvector's schema. */
  readonly grantees: ReadonlyArray<{ rolname: string; uses_vector_schema: boolean }>;
  /** `grants`: what roles other than the owner may do with the extension's functions and foreign-data wrappers. */
  readonly extensions: ReadonlyArray<{ extname: string; nspname: string; grants: string[] }>;
  readonly schemas: ReadonlyArray<{ nspname: string; comment: string | null; owner: string; acl: AclRow[] }>;
  readonly relations: ReadonlyArray<{
    oid: number;
    nspname: string;
    relname: string;
    relkind: string;
    /** The planner's row estimate (-1: never vacuumed or analyzed). */
    reltuples: number;
    /**
     * The table's size on disk with its TOAST (a long vector is stored there), in bytes — read only where there is no
     * row estimate (reltuples < 0 above), else 0: it stands in for one.
     */
    relation_bytes: number;
    /** Its main fork's size: 0 means it holds no row (absent in older fixtures: read as 0). */
    main_bytes?: number;
    comment: string | null;
    viewdef_md5: string | null;
    reloptions: string[] | null;
    owner: string;
    acl: AclRow[];
    write_trigger: string | null;
    /** `HASH (id)` for a partitioned table. */
    partition_key: string | null;
    /** `FOR VALUES WITH (modulus 4, remainder 1)` for a partition, and its parent as schema.name. */
    partition_bound: string | null;
    partition_parent: string | null;
    /** A partitioned table's partitions (schema.name). */
    partitions: string[] | null;
  }>;
  readonly functions: ReadonlyArray<{
    nspname: string;
    proname: string;
    signature: string;
    body_md5: string;
    comment: string | null;
    acl: AclRow[];
    prosecdef: boolean;
    proconfig: string[];
    owner: string;
  }>;
  readonly columns: ReadonlyArray<{
    attrelid: number;
    attname: string;
    type: string;
    attnotnull: boolean;
    default: string | null;
    attfdwoptions: string[] | null;
    /** The column's own privileges. */
    acl: AclRow[];
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
  readonly servers: ReadonlyArray<{ srvname: string; fdwname: string; srvoptions: string[] | null; comment: string | null; owner: string; acl: AclRow[] }>;
  readonly userMappings: ReadonlyArray<{ srvname: string; usename: string; umoptions: string[] | null }>;
  readonly roles: ReadonlyArray<{
    rolname: string;
    rolsuper: boolean;
    rolcreatedb: boolean;
    rolcreaterole: boolean;
    rolreplication: boolean;
    rolbypassrls: boolean;
    rolinherit: boolean;
    rolcanlogin: boolean;
    /** -1: no limit. */
    rolconnlimit: number;
    /** null or 'infinity': no expiry. */
    rolvaliduntil: string | null;
    /** Roles that are members of it: each holds the wrapper's privileges. */
    members: string[];
    comment: string | null;
    member_of: string[];
    /** `<database or *>: name=value`, from pg_db_role_setting. */
    settings: string[];
  }>;
  /** Secondaries: this database's defaults among DATABASE_SETTINGS, `name=value`. */
  readonly databaseSettings: ReadonlyArray<{ setting: string }>;
  /** Primary: a login through each server that has a managed foreign table. */
  readonly probes: readonly RawProbe[];
  /** Logical replication settings and vecscale's replication objects (./replication.ts); absent in older fixtures. */
  readonly replication?: RawReplication;
  /** The wrapper role's privileges in this database, per schema or relation. */
  readonly privileges: ReadonlyArray<{ on: 'schema' | 'table'; schema: string; name: string | null; privileges: string[] }>;
  /** Relations of vecscale's that objects it does not manage depend on (views, rules, foreign keys): `schema.name` → who. */
  readonly dependants: ReadonlyArray<{
    nspname: string;
    relname: string;
    dependant: string;
    /** Set when the dependant is a view in scope (vecscale's, or named like one of its objects). */
    in_scope_schema: string | null;
    in_scope_name: string | null;
  }>;
}

const SCHEMAS = [VECS_SCHEMA, API_SCHEMA, REMOTE_SCHEMA, HELPER_SCHEMA, WRITE_SCHEMA];

// NOTE: aclexplode() lists the owner's own privileges too (left out: they are the owner's, not a grant); grantee 0 is
// PUBLIC. A NULL ACL means the built-in default, which acldefault() spells out (for functions: EXECUTE to PUBLIC).
// Names come from pg_get_userbyid(), unquoted, as ident() expects them (regrole would quote).
// NOTE: obj_description() is a SQL function run once per row (and the marker is read in WHERE too): a join reads the
// same pg_description row, as `d.description`, at a fraction of the cost over thousands of objects.
export const COMMENT_JOIN = (oid: string, catalog: 'pg_class' | 'pg_proc') =>
  `LEFT JOIN pg_catalog.pg_description d ON d.objoid = ${oid} AND d.classoid = 'pg_catalog.${catalog}'::pg_catalog.regclass AND d.objsubid = 0`;

const ACL_ROWS = (acl: string, owner: string) =>
  `COALESCE((SELECT pg_catalog.json_agg(pg_catalog.json_build_array(
              CASE a.grantee WHEN 0 THEN 'public' ELSE pg_catalog.pg_get_userbyid(a.grantee)::text END, a.privilege_type, a.is_grantable)
              ORDER BY a.grantee, a.privilege_type)
            FROM pg_catalog.aclexplode(${acl}) a WHERE a.grantee <> ${owner}), '[]'::pg_catalog.json)`;

/**
 * How long reading the catalogs waits for another session's lock (a table's size opens it: an ACCESS EXCLUSIVE lock
 * held by a migration or an open transaction holds the read up). Past it, ./index.ts names the holder.
 */
export const CATALOG_LOCK_TIMEOUT_MS = 10_000;

/** Reads the catalogs of one database. */
export async function readCatalog(db: Db, scope: IntrospectScope): Promise<RawCatalog> {
  await db.query('BEGIN READ ONLY');
  try {
    // One round trip: SET LOCAL search_path and lock_timeout.
    await db.query(`SELECT pg_catalog.set_config('search_path', 'pg_catalog', true), pg_catalog.set_config('lock_timeout', '${CATALOG_LOCK_TIMEOUT_MS}', true)`);
    const q = async <R>(text: string, values: unknown[] = []): Promise<R[]> => (await db.query(text, values)).rows as R[];
    const facts = (await q<RawCatalog['facts']>(
      `SELECT current_user::text AS current_user, current_setting('server_version_num') AS server_version_num,
              (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) AS superuser,
              -- NOTE: PG15 lets a superuser grant SET on these parameters (GRANT SET ON PARAMETER); superusers may anyway.
              (SELECT bool_and(pg_catalog.has_parameter_privilege(p, 'SET')) FROM unnest($1::text[]) p) AS can_quiet_log,
              -- NOTE: ALTER DATABASE … SET needs the owner's privileges (or a superuser's).
              (SELECT pg_catalog.pg_has_role(current_user, d.datdba, 'USAGE') FROM pg_catalog.pg_database d
                WHERE d.datname = pg_catalog.current_database()) AS owns_database,
              ${BUILD_FACTS}`,
      [QUIET_SETTINGS],
    ))[0]!;
    // NOTE: default privileges apply to objects their role creates: vecscale's objects are created by current_user.
    const defaultAcls = await q<RawCatalog['defaultAcls'][number]>(
      `SELECT d.defaclobjtype::text AS objtype, n.nspname::text AS schema, ${ACL_ROWS('d.defaclacl', 'd.defaclrole')} AS acl
         FROM pg_catalog.pg_default_acl d LEFT JOIN pg_catalog.pg_namespace n ON n.oid = d.defaclnamespace
        WHERE d.defaclrole = (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = current_user)
          AND d.defaclobjtype IN ('r', 'f', 'n')
        ORDER BY 1, 2`,
    );
    const grantees = await q<RawCatalog['grantees'][number]>(
      `SELECT r.rolname::text,
              COALESCE(pg_catalog.has_schema_privilege(r.oid, (SELECT e.extnamespace FROM pg_catalog.pg_extension e WHERE e.extname = 'vector'), 'USAGE'), true)
                AS uses_vector_schema
         FROM pg_catalog.pg_roles r WHERE r.rolname = ANY($1::text[]) ORDER BY 1`,
      [scope.grantees ?? []],
    );
    // NOTE: an extension's functions and FDWs are its members in pg_depend (deptype 'e'); their ACLs are their own.
    const extensions = await q<RawCatalog['extensions'][number]>(
      `SELECT e.extname::text, n.nspname::text,
              ARRAY(SELECT g FROM (
                      SELECT (CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(a.grantee)::text END)
                             || ' ' || a.privilege_type || ' ' || p.oid::pg_catalog.regprocedure::text AS g
                        FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_proc p ON p.oid = d.objid,
                             LATERAL pg_catalog.aclexplode(COALESCE(p.proacl, pg_catalog.acldefault('f', p.proowner))) a
                       WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND d.refobjid = e.oid AND d.deptype = 'e'
                         AND a.grantee <> p.proowner
                      UNION
                      SELECT (CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(a.grantee)::text END)
                             || ' ' || a.privilege_type || ' foreign-data wrapper ' || w.fdwname::text
                        FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid = d.objid,
                             LATERAL pg_catalog.aclexplode(COALESCE(w.fdwacl, pg_catalog.acldefault('F', w.fdwowner))) a
                       WHERE d.classid = 'pg_catalog.pg_foreign_data_wrapper'::pg_catalog.regclass AND d.refobjid = e.oid
                         AND d.deptype = 'e' AND a.grantee <> w.fdwowner) grants ORDER BY 1) AS grants
         FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
        WHERE e.extname IN ('vector', 'postgres_fdw', 'dblink')`,
    );
    const schemas = await q<RawCatalog['schemas'][number]>(
      `SELECT n.nspname::text, pg_catalog.obj_description(n.oid, 'pg_namespace') AS comment, pg_catalog.pg_get_userbyid(n.nspowner)::text AS owner,
              ${ACL_ROWS("COALESCE(n.nspacl, pg_catalog.acldefault('n', n.nspowner))", 'n.nspowner')} AS acl
         FROM pg_catalog.pg_namespace n
        WHERE n.nspname = ANY($1::text[]) OR n.nspname IN (SELECT e.extnamespace::regnamespace::text FROM pg_catalog.pg_extension e)`,
      [SCHEMAS],
    );
    // Relations named like a collection, or carrying our marker, in vecscale's schemas (any kind: collisions count).
    const relations = await q<RawCatalog['relations'][number]>(
      `SELECT c.oid::int AS oid, n.nspname::text, c.relname::text, c.relkind::text, ${CURRENT_ROWS}::pg_catalog.float8 AS reltuples,
              CASE WHEN c.relkind = 'r' AND (c.reltuples < 0 OR c.relpages = 0) AND pg_catalog.pg_relation_size(c.oid) > 0
                   THEN pg_catalog.pg_table_size(c.oid)::pg_catalog.float8 ELSE 0 END AS relation_bytes,
              CASE WHEN c.relkind = 'r' THEN pg_catalog.pg_relation_size(c.oid)::pg_catalog.float8 ELSE 0 END AS main_bytes,
              d.description AS comment,
              CASE WHEN c.relkind = 'v' THEN pg_catalog.md5(pg_catalog.pg_get_viewdef(c.oid)) END AS viewdef_md5,
              c.reloptions::text[] AS reloptions, pg_catalog.pg_get_userbyid(c.relowner)::text AS owner,
              ${ACL_ROWS("COALESCE(c.relacl, pg_catalog.acldefault('r', c.relowner))", 'c.relowner')} AS acl,
              (SELECT t.tgfoid::pg_catalog.regproc::text
                      || CASE WHEN (SELECT pg_catalog.count(*) FROM pg_catalog.pg_trigger b
                                     WHERE b.tgrelid = c.oid AND b.tgfoid = t.tgfoid AND b.tgname = ANY ($5::text[])) = 2
                              THEN $6 ELSE '' END
                 FROM pg_catalog.pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = $4) AS write_trigger,
              CASE WHEN c.relkind = 'p' THEN pg_catalog.pg_get_partkeydef(c.oid) END AS partition_key,
              CASE WHEN c.relispartition THEN pg_catalog.pg_get_expr(c.relpartbound, c.oid) END AS partition_bound,
              (SELECT i.inhparent::pg_catalog.regclass::text FROM pg_catalog.pg_inherits i
                WHERE i.inhrelid = c.oid AND c.relispartition) AS partition_parent,
              CASE WHEN c.relkind = 'p' THEN ARRAY(SELECT i.inhrelid::pg_catalog.regclass::text FROM pg_catalog.pg_inherits i
                                                    WHERE i.inhparent = c.oid) END AS partitions
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         ${COMMENT_JOIN('c.oid', 'pg_class')}
        WHERE n.nspname = ANY($1::name[])
          AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
          AND (c.relname = ANY($2::name[]) OR d.description LIKE $3 || '%')
        ORDER BY n.nspname, c.relname`,
      [SCHEMAS, scope.relationNames, MANAGED_COMMENT, WRITE_TRIGGER, Object.values(WRITE_BATCH_TRIGGERS), BATCHED],
    );
    const functions = await q<RawCatalog['functions'][number]>(
      `SELECT n.nspname::text, p.proname::text, p.oid::pg_catalog.regprocedure::text AS signature,
              pg_catalog.md5(p.prosrc) AS body_md5, d.description AS comment,
              ${ACL_ROWS("COALESCE(p.proacl, pg_catalog.acldefault('f', p.proowner))", 'p.proowner')} AS acl,
              p.prosecdef, COALESCE(p.proconfig, '{}')::text[] AS proconfig, pg_catalog.pg_get_userbyid(p.proowner)::text AS owner
         FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
         ${COMMENT_JOIN('p.oid', 'pg_proc')}
        WHERE n.nspname = ANY($1::name[])
          AND (p.proname = ANY($2::name[]) OR d.description LIKE $3 || '%')
        ORDER BY n.nspname, p.proname, 3`,
      [SCHEMAS, scope.functionNames, MANAGED_COMMENT],
    );
    const oids = relations.map((r) => r.oid);
    const columns = await q<RawCatalog['columns'][number]>(
      `SELECT a.attrelid::int AS attrelid, a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type,
              a.attnotnull, pg_catalog.pg_get_expr(d.adbin, d.adrelid) AS default, a.attfdwoptions::text[] AS attfdwoptions,
              CASE WHEN a.attacl IS NULL THEN '[]'::pg_catalog.json ELSE ${ACL_ROWS('a.attacl', 'c.relowner')} END AS acl
         FROM pg_catalog.pg_attribute a
         JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
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
    // NOTE: the vector access methods, and the gin and btree indexes vecscale made (its marker and a metadata index
    // prefix, src/desired/collection.ts); any other btree or gin index, a user's, is theirs and stays out of the model.
    // Of an expression index, indkey[0] is 0: no column.
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
        WHERE i.indrelid = ANY($1::oid[])
          AND (am.amname IN ('hnsw', 'ivfflat')
               OR (am.amname IN ('gin', 'btree')
                   AND pg_catalog.starts_with(pg_catalog.obj_description(ic.oid, 'pg_class'), $2)
                   AND EXISTS (SELECT FROM pg_catalog.unnest($3::text[]) p WHERE pg_catalog.starts_with(ic.relname::text, p))))
        ORDER BY ic.relname`,
      [oids, MANAGED_COMMENT, Object.values(INDEX_PREFIX)],
    );
    const foreignTables = await q<RawCatalog['foreignTables'][number]>(
      `SELECT ft.ftrelid::int AS ftrelid, s.srvname::text, ft.ftoptions::text[] AS ftoptions
         FROM pg_catalog.pg_foreign_table ft JOIN pg_catalog.pg_foreign_server s ON s.oid = ft.ftserver
        WHERE ft.ftrelid = ANY($1::oid[])`,
      [oids],
    );
    const servers = await q<RawCatalog['servers'][number]>(
      `SELECT s.srvname::text, w.fdwname::text, s.srvoptions::text[] AS srvoptions,
              pg_catalog.obj_description(s.oid, 'pg_foreign_server') AS comment, pg_catalog.pg_get_userbyid(s.srvowner)::text AS owner,
              ${ACL_ROWS("COALESCE(s.srvacl, pg_catalog.acldefault('S', s.srvowner))", 's.srvowner')} AS acl
         FROM pg_catalog.pg_foreign_server s JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid = s.srvfdw
        ORDER BY s.srvname`,
    );
    // NOTE: pg_user_mappings shows umoptions (passwords included) only to the mapped user and the server's owner;
    // they are fingerprinted in `toState` and never leave this process.
    const userMappings = await q<RawCatalog['userMappings'][number]>(
      `SELECT um.srvname::text, um.usename::text, um.umoptions::text[] AS umoptions
         FROM pg_catalog.pg_user_mappings um ORDER BY um.srvname, um.usename`,
    );
    const roles = scope.role
      ? await q<RawCatalog['roles'][number]>(
          `SELECT r.rolname::text, r.rolsuper, r.rolcreatedb, r.rolcreaterole, r.rolreplication, r.rolbypassrls, r.rolinherit,
                  r.rolcanlogin, r.rolconnlimit, r.rolvaliduntil::text AS rolvaliduntil, pg_catalog.shobj_description(r.oid, 'pg_authid') AS comment,
                  ARRAY(SELECT pg_catalog.pg_get_userbyid(m.roleid)::text FROM pg_catalog.pg_auth_members m WHERE m.member = r.oid ORDER BY 1) AS member_of,
                  ARRAY(SELECT pg_catalog.pg_get_userbyid(m.member)::text FROM pg_catalog.pg_auth_members m WHERE m.roleid = r.oid ORDER BY 1) AS members,
                  -- NOTE: pg_db_role_setting is shared: the role's settings in every database of the cluster show here.
                  ARRAY(SELECT COALESCE(d.datname::text, '*') || ': ' || c
                          FROM pg_catalog.pg_db_role_setting s LEFT JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase,
                               LATERAL pg_catalog.unnest(s.setconfig) c
                         WHERE s.setrole = r.oid ORDER BY 1) AS settings
             FROM pg_catalog.pg_roles r WHERE r.rolname = $1`,
          [scope.role.name],
        )
      : [];
    // NOTE: aclexplode(NULL) yields nothing: an object with default privileges grants the role nothing.
    const privileges = roles.length
      ? await q<RawCatalog['privileges'][number]>(
          `SELECT 'schema' AS on, n.nspname::text AS schema, NULL::text AS name, array_agg(a.privilege_type::text ORDER BY a.privilege_type) AS privileges
             FROM pg_catalog.pg_namespace n, LATERAL pg_catalog.aclexplode(n.nspacl) a
            WHERE a.grantee = $1::text::pg_catalog.regrole
            GROUP BY n.nspname
           UNION ALL
           SELECT 'table', n.nspname::text, c.relname::text, array_agg(a.privilege_type::text ORDER BY a.privilege_type)
             FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace,
                  LATERAL pg_catalog.aclexplode(c.relacl) a
            WHERE a.grantee = $1::text::pg_catalog.regrole
            GROUP BY n.nspname, c.relname
            ORDER BY 1, 2, 3`,
          [scope.role!.name],
        )
      : [];
    // What a DROP … RESTRICT of a relation in scope would trip over: views over it (ours, to rebuild with it, and
    // others', which block), foreign keys and other normal dependencies vecscale does not manage.
    const dependants = await q<RawCatalog['dependants'][number]>(
      `SELECT DISTINCT n.nspname::text, c.relname::text,
              pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid) AS dependant,
              CASE WHEN dc.oid = ANY($1::oid[]) THEN dn.nspname::text END AS in_scope_schema,
              CASE WHEN dc.oid = ANY($1::oid[]) THEN dc.relname::text END AS in_scope_name
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_catalog.pg_depend d ON d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid = c.oid AND d.deptype = 'n'
         LEFT JOIN pg_catalog.pg_rewrite rw ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND rw.oid = d.objid
         LEFT JOIN pg_catalog.pg_class dc ON dc.oid = rw.ev_class
         LEFT JOIN pg_catalog.pg_namespace dn ON dn.oid = dc.relnamespace
        WHERE c.oid = ANY($1::oid[])
          AND (rw.oid IS NULL OR rw.ev_class <> c.oid)
          AND d.classid NOT IN ('pg_catalog.pg_type'::pg_catalog.regclass, 'pg_catalog.pg_attrdef'::pg_catalog.regclass,
                                'pg_catalog.pg_index'::pg_catalog.regclass, 'pg_catalog.pg_trigger'::pg_catalog.regclass)
          AND NOT (d.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass
                   AND EXISTS (SELECT FROM pg_catalog.pg_constraint con WHERE con.oid = d.objid AND con.conrelid = c.oid))
        ORDER BY 1, 2, 3`,
      [oids],
    );
    // NOTE: only the defaults vecscale manages are read; the others are the database owner's.
    const databaseSettings = scope.role
      ? await q<RawCatalog['databaseSettings'][number]>(
          `SELECT c AS setting FROM pg_catalog.pg_db_role_setting s, LATERAL pg_catalog.unnest(s.setconfig) c
            WHERE s.setrole = 0 AND s.setdatabase = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())
              AND pg_catalog.split_part(c, '=', 1) = ANY($1::text[])
            ORDER BY 1`,
          [DATABASE_SETTINGS],
        )
      : [];
    const replication = await readReplication(q);
    // One managed foreign table per server, to log in through it (last: a failure is held to its savepoint).
    const probeTables = new Map<string, { schema: string; name: string }>();
    const byOid = new Map(relations.map((r) => [r.oid, r]));
    for (const ft of foreignTables) {
      const r = byOid.get(ft.ftrelid);
      if (r?.comment?.startsWith(MANAGED_COMMENT) && !probeTables.has(ft.srvname)) probeTables.set(ft.srvname, { schema: r.nspname, name: r.relname });
    }
    const probes = await probeServers(db, probeTables);
    return { facts, defaultAcls, grantees, extensions, schemas, relations, functions, columns, primaryKeys, indexes, foreignTables, servers, userMappings, roles, privileges, dependants, databaseSettings, replication, probes };
  } finally {
    await db.query('ROLLBACK').catch(() => undefined);
  }
}
