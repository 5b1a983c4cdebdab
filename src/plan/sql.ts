/**
 * SQL for each object kind. `Record<ObjectKind, …>` makes a new kind without builders a compile error.
 * Names go through the quote module; pgvector's type and operator classes are schema-qualified, so statements do
 * not depend on the applying role's search_path.
 */
import { ident, literal, options, qualified, secret, verifier } from '../sql/quote.js';
import { byCodePoint } from '../util/fingerprint.js';
import {
  type Acl,
  type AclObjectType,
  initialAcl,
  type Column,
  type DbObject,
  DEFINITION_MARK,
  QUERY_MARK,
  MANAGED_COMMENT,
  type ObjectKind,
  ownOptions,
  type Privilege,
  PROTECTED_MARK,
  ROLE_OWNER_MARK,
  WRITE_TRIGGER,
  WRITE_BATCH_TRIGGERS,
  BATCHED,
  isVectorMethod,
} from '../model/state.js';

export interface SqlContext {
  readonly vectorSchema: string;
  /**
   * The ACL an object of this type gets when the applying role creates it in `schema` (its default privileges): a
   * create revokes exactly that, in its own transaction, so no default grant outlives it.
   */
  readonly initialAcl?: (type: AclObjectType, schema: string | undefined) => Acl;
}

type Of<K extends ObjectKind> = Extract<DbObject, { kind: K }>;

/** `guardEmpty`: a table planned as empty is dropped only if it still is (checked under an exclusive lock). */
export interface DropOptions {
  readonly concurrently?: boolean;
  readonly guardEmpty?: boolean;
}

interface Builders<K extends ObjectKind> {
  create(o: Of<K>, ctx: SqlContext, opts: { concurrently: boolean }): string[];
  /** Removes the object; undefined: vecscale never drops this kind. */
  drop?(o: Of<K>, opts: DropOptions): string[];
  /** The marker comment; undefined for kinds that take none. */
  mark?(o: Of<K>): string;
}

const typeSql = (type: string, ctx: SqlContext): string =>
  type.startsWith('vector(') ? `${ident(ctx.vectorSchema)}.${type}` : type;

/** A column definition; a foreign-table column's options (`column_name=vec`) go between its type and constraints. */
function columnSql(c: Column, ctx: SqlContext, columnOptions: readonly string[] = []): string {
  const pairs = columnOptions.map((o) => [o.slice(0, o.indexOf('=')), literal(o.slice(o.indexOf('=') + 1))] as const);
  return [
    ident(c.name),
    typeSql(c.type, ctx),
    pairs.length ? options(pairs) : '',
    c.notNull ? 'NOT NULL' : '',
    c.default !== null ? `DEFAULT ${c.default}` : '',
  ]
    .filter(Boolean)
    .join(' ');
}

/** The marker comment; `suffix` records more about the object (PROTECTED_MARK, the role's ROLE_OWNER_MARK). */
const comment = (what: string, name: string, suffix = ''): string => `COMMENT ON ${what} ${name} IS ${literal(MANAGED_COMMENT + suffix)}`;

/**
 * The view's marker with an md5 of its stored definition, computed under search_path = pg_catalog (as the
 * introspector computes it: pg_get_viewdef qualifies names by the search_path in force), and the md5 of the SELECT
 * it was made from.
 */
const viewMark = (name: string, queryMd5: string | null | undefined): string =>
  `DO $vecscale$ DECLARE saved text := pg_catalog.current_setting('search_path'); digest text; BEGIN ` +
  `PERFORM pg_catalog.set_config('search_path', 'pg_catalog', true); ` +
  `digest := pg_catalog.md5(pg_catalog.pg_get_viewdef(${literal(name)}::pg_catalog.regclass)); ` +
  `PERFORM pg_catalog.set_config('search_path', saved, true); ` +
  `EXECUTE pg_catalog.format('COMMENT ON VIEW %s IS %L', ${literal(name)}, ${literal(MANAGED_COMMENT + DEFINITION_MARK)} || digest || ${literal(QUERY_MARK + (queryMd5 ?? ''))}); END $vecscale$`;

/** What GRANT and REVOKE say an object is, and its name. */
interface AclTarget {
  readonly what: 'TABLE' | 'FUNCTION' | 'SCHEMA' | 'FOREIGN SERVER';
  readonly name: string;
  /** The default-privileges type it is created as; undefined: none apply (servers). */
  readonly type?: AclObjectType;
  readonly schema?: string;
}

/** `SELECT`, `SELECT*`, `UPDATE(col)`, `UPDATE(col)*` split into their parts. */
function parsePrivilege(p: string): { privilege: string; column?: string; grantable: boolean } {
  const grantable = p.endsWith('*');
  const base = grantable ? p.slice(0, -1) : p;
  const open = base.indexOf('(');
  return open < 0 ? { privilege: base, grantable } : { privilege: base.slice(0, open), column: base.slice(open + 1, -1), grantable };
}

/** One statement's text around its grantees (`REVOKE … FROM`, then the grantees, then `CASCADE` or nothing). */
type Clause = readonly [head: string, tail: string, grantee: string];

/** One statement per head and tail, its grantees in a stable order (PUBLIC first). */
function statements(clauses: readonly Clause[]): string[] {
  const by = new Map<string, { head: string; tail: string; grantees: string[] }>();
  for (const [head, tail, grantee] of clauses) {
    const k = `${head}\0${tail}`;
    const entry = by.get(k) ?? { head, tail, grantees: [] };
    entry.grantees.push(grantee);
    by.set(k, entry);
  }
  const order = (a: string, b: string) => (a === 'public' ? -1 : b === 'public' ? 1 : byCodePoint(a, b));
  return [...by]
    .sort(([a], [b]) => byCodePoint(a, b))
    .map(([, e]) => `${e.head} ${e.grantees.sort(order).map(roleSql).join(', ')}${e.tail}`);
}

/**
 * GRANT and REVOKE turning ACL `from` into `to` — the whole ACL: a grantee `to` does not name loses everything,
 * PUBLIC included. Revokes first; grantees with the same change share a statement.
 */
export function aclSql(target: AclTarget, from: Acl, to: Acl): string[] {
  const on = `${target.what} ${target.name}`;
  const revokeAll: Clause[] = [];
  const revoke: Clause[] = [];
  const revokeOption: Clause[] = [];
  const grant: Clause[] = [];
  const grantOption: Clause[] = [];
  for (const grantee of [...new Set([...Object.keys(from), ...Object.keys(to)])].sort(byCodePoint)) {
    const have = (from[grantee] ?? []).map(parsePrivilege);
    const want = (to[grantee] ?? []).map(parsePrivilege);
    // A grantee that may grant onward may have: its revokes CASCADE to what it granted (nothing else can remove that).
    const cascade = have.some((p) => p.grantable) ? ' CASCADE' : '';
    if (want.length === 0) {
      if (have.length > 0) revokeAll.push([`REVOKE ALL ON ${on} FROM`, cascade, grantee]);
      continue;
    }
    const tableLevel = (ps: typeof have, grantable?: boolean) =>
      new Set(ps.filter((p) => p.column === undefined && (grantable === undefined || p.grantable === grantable)).map((p) => p.privilege));
    const has = tableLevel(have);
    const wants = tableLevel(want);
    const hasOption = tableLevel(have, true);
    const wantsOption = tableLevel(want, true);
    const extra = [...has].filter((p) => !wants.has(p)).sort(byCodePoint);
    const missing = [...wants].filter((p) => !has.has(p) && !wantsOption.has(p)).sort(byCodePoint);
    // A column's own privilege is never wanted: each goes, column by column.
    const columns = have.filter((p) => p.column !== undefined && !want.some((w) => w.privilege === p.privilege && w.column === p.column));
    if (extra.length) revoke.push([`REVOKE ${extra.join(', ')} ON ${on} FROM`, cascade, grantee]);
    for (const c of columns) revoke.push([`REVOKE ${c.privilege} (${ident(c.column!)}) ON ${on} FROM`, c.grantable ? ' CASCADE' : '', grantee]);
    const extraOption = [...hasOption].filter((p) => wants.has(p) && !wantsOption.has(p)).sort(byCodePoint);
    if (extraOption.length) revokeOption.push([`REVOKE GRANT OPTION FOR ${extraOption.join(', ')} ON ${on} FROM`, ' CASCADE', grantee]);
    if (missing.length) grant.push([`GRANT ${missing.join(', ')} ON ${on} TO`, '', grantee]);
    const missingOption = [...wantsOption].filter((p) => !hasOption.has(p)).sort(byCodePoint);
    if (missingOption.length) grantOption.push([`GRANT ${missingOption.join(', ')} ON ${on} TO`, ' WITH GRANT OPTION', grantee]);
  }
  return [revokeAll, revoke, revokeOption, grant, grantOption].flatMap(statements);
}

/** How GRANT names an object that carries an ACL, or undefined for kinds without one. */
function aclTarget(o: DbObject): AclTarget | undefined {
  switch (o.kind) {
    case 'schema':
      return { what: 'SCHEMA', name: ident(o.name), type: 'n' };
    case 'table':
    case 'view':
    case 'foreign_table':
      return { what: 'TABLE', name: qualified(o.schema, o.name), type: 'r', schema: o.schema };
    case 'function':
      return { what: 'FUNCTION', name: `${qualified(o.schema, o.name)}(${o.argTypes ?? ''})`, type: 'f', schema: o.schema };
    case 'server':
      return { what: 'FOREIGN SERVER', name: ident(o.name) };
    default:
      return undefined;
  }
}

const aclOf = (o: DbObject): Acl | undefined => ('acl' in o ? o.acl : undefined);

/** After a CREATE: from what the object was just granted by default to exactly its desired ACL. */
function initialAclSql(o: DbObject, ctx: SqlContext): string[] {
  const target = aclTarget(o);
  const acl = aclOf(o);
  if (!target || acl === undefined) return [];
  const initial = target.type === undefined ? {} : (ctx.initialAcl ?? ((type, schema) => initialAcl(undefined, type, schema)))(target.type, target.schema);
  return aclSql(target, initial, acl);
}

/** What ALTER calls each kind whose owner vecscale keeps (GRANT says TABLE for all three relation kinds). */
const ALTER_KIND: Partial<Record<ObjectKind, string>> = {
  table: 'TABLE',
  view: 'VIEW',
  foreign_table: 'FOREIGN TABLE',
  schema: 'SCHEMA',
  server: 'SERVER',
  function: 'FUNCTION',
};

/** `ALTER … OWNER TO` the desired owner, where vecscale keeps the owner and it differs. */
export function ownerSql(actual: DbObject, desired: DbObject): string[] {
  // (A role's `owner` is the primary it serves, not a role.)
  if (desired.kind === 'role' || actual.kind === 'role') return [];
  const want = 'owner' in desired ? desired.owner : undefined;
  if (want === undefined || ('owner' in actual && actual.owner === want)) return [];
  const kind = ALTER_KIND[desired.kind];
  const target = aclTarget(desired);
  return kind === undefined || target === undefined ? [] : [`ALTER ${kind} ${target.name} OWNER TO ${ident(want)}`];
}

/** Turns a live object's ACL into the desired one (drift, adoption). */
export function aclChangeSql(actual: DbObject, desired: DbObject): string[] {
  const target = aclTarget(desired);
  const want = aclOf(desired);
  if (!target || want === undefined) return [];
  return aclSql(target, aclOf(actual) ?? {}, want);
}

/**
 * A view's write triggers: the INSTEAD OF row trigger running `fn` (`schema.name`, regproc's spelling), and with the
 * BATCHED suffix the BEFORE and AFTER INSERT statement triggers that buffer and send a statement's rows
 * (src/query/write-functions.ts).
 */
const writeTriggerSql = (view: string, fn: string | undefined): string[] => {
  if (fn === undefined) return [];
  const batched = fn.endsWith(BATCHED);
  // Two identifiers: quoted here like every other name.
  const [schema = '', name = ''] = (batched ? fn.slice(0, -BATCHED.length) : fn).split('.');
  const run = `EXECUTE FUNCTION ${qualified(schema, name)}()`;
  return [
    `CREATE TRIGGER ${ident(WRITE_TRIGGER)} INSTEAD OF INSERT OR UPDATE OR DELETE ON ${view} FOR EACH ROW ${run}`,
    ...(batched
      ? [
          `CREATE TRIGGER ${ident(WRITE_BATCH_TRIGGERS.begin)} BEFORE INSERT ON ${view} FOR EACH STATEMENT ${run}`,
          `CREATE TRIGGER ${ident(WRITE_BATCH_TRIGGERS.flush)} AFTER INSERT ON ${view} FOR EACH STATEMENT ${run}`,
        ]
      : []),
  ];
};

/** Drops whichever of a view's write triggers exist. */
const dropWriteTriggersSql = (view: string): string[] =>
  [WRITE_TRIGGER, WRITE_BATCH_TRIGGERS.begin, WRITE_BATCH_TRIGGERS.flush].map((t) => `DROP TRIGGER IF EXISTS ${ident(t)} ON ${view}`);

/** `HASH (id)`: the only partition key vecscale builds; its column is quoted like every other name. */
function partitionKeySql(key: string): string {
  const m = /^HASH \((\w+)\)$/.exec(key);
  if (!m) throw new Error(`vecscale builds HASH (column) partitioning only, not ${key}`);
  return `HASH (${ident(m[1]!)})`;
}

const roleSql = (role: string): string => (role === 'public' ? 'PUBLIC' : ident(role));

/** `WITH (security_invoker = true)`: a view's options as CREATE VIEW takes them. */
const viewOptionsSql = (opts: readonly string[]): string =>
  opts.length === 0 ? '' : ` WITH (${opts.map((o) => `${ident(o.slice(0, o.indexOf('=')))} = ${o.slice(o.indexOf('=') + 1)}`).join(', ')})`;

const sortedOptions = (o: Readonly<Record<string, string>>): Array<[string, string]> =>
  Object.entries(o).sort(([a], [b]) => byCodePoint(a, b));

const builders: { [K in ObjectKind]: Builders<K> } = {
  extension: {
    create: (o) => [
      `CREATE EXTENSION IF NOT EXISTS ${ident(o.name)} WITH SCHEMA ${ident(o.schema)}`,
      // Extension functions are executable by PUBLIC (and whoever default privileges name) once created; dblink's
      // must be its owner's only (see match-function.ts), and so are postgres_fdw's.
      ...(o.grants !== undefined ? [ownerOnlySql(o.name)] : []),
    ],
  },
  schema: {
    create: (o) => [`CREATE SCHEMA IF NOT EXISTS ${ident(o.name)}`],
    mark: (o) => comment('SCHEMA', ident(o.name)),
  },
  table: {
    create: (o, ctx) => [
      `CREATE TABLE ${qualified(o.schema, o.name)} (${[
        ...o.columns.map((c) => columnSql(c, ctx)),
        ...(o.primaryKey.length ? [`PRIMARY KEY (${o.primaryKey.map(ident).join(', ')})`] : []),
      ].join(', ')})${o.partitionKey ? ` PARTITION BY ${partitionKeySql(o.partitionKey)}` : ''}`,
    ],
    // A table planned as empty: rows written since the plan are not lost, checked under an exclusive lock. A
    // destructive drop the user allowed, and a partitioned table on the primary (whose rows are remote), skip it.
    drop: (o, { guardEmpty }) => [
      ...(guardEmpty
        ? [
            `LOCK TABLE ${qualified(o.schema, o.name)} IN ACCESS EXCLUSIVE MODE`,
            `DO $vecscale$ BEGIN IF EXISTS (SELECT FROM ${qualified(o.schema, o.name)}) THEN ` +
              `RAISE EXCEPTION 'vecscale: %.% gained rows since it was planned; nothing dropped', ${literal(o.schema)}, ${literal(o.name)}; END IF; END $vecscale$`,
          ]
        : []),
      `DROP TABLE ${qualified(o.schema, o.name)} RESTRICT`,
    ],
    mark: (o) => comment('TABLE', qualified(o.schema, o.name), o.protected ? PROTECTED_MARK : ''),
  },
  index: {
    create: (o, ctx, { concurrently }) => {
      const head = `CREATE INDEX ${concurrently ? 'CONCURRENTLY ' : ''}${ident(o.name)} ON ${qualified(o.schema, o.table)} USING ${o.method} `;
      if (!isVectorMethod(o.method)) {
        // A metadata index: its expression is built from quoted parts (src/model/text-search.ts).
        if (o.expression === undefined) throw new Error(`no expression for index ${o.schema}.${o.name}`);
        return [`${head}(${o.expression})`];
      }
      return [
        `${head}(${ident(o.column)} ${ident(ctx.vectorSchema)}.${ident(o.opclass)}) ` +
          `WITH (${sortedOptions(o.params).map(([k, v]) => `${k} = ${Number(v)}`).join(', ')})`,
      ];
    },
    drop: (o, { concurrently }) => [`DROP INDEX ${concurrently ? 'CONCURRENTLY ' : ''}${qualified(o.schema, o.name)} RESTRICT`],
    mark: (o) => comment('INDEX', qualified(o.schema, o.name)),
  },
  view: {
    create: (o) => {
      if (o.query === undefined) throw new Error(`no query for view ${o.schema}.${o.name}`);
      const name = qualified(o.schema, o.name);
      return [`CREATE VIEW ${name}${viewOptionsSql(o.options)} AS ${o.query}`, ...writeTriggerSql(name, o.writeTrigger)];
    },
    drop: (o) => [`DROP VIEW ${qualified(o.schema, o.name)} RESTRICT`],
    mark: (o) => viewMark(qualified(o.schema, o.name), o.queryMd5),
  },
  server: {
    create: (o) => [`CREATE SERVER ${ident(o.name)} FOREIGN DATA WRAPPER ${ident(o.wrapper)} ${options(literalOptions(o.options))}`],
    // RESTRICT: a foreign table or mapping vecscale does not drop with it keeps it (and fails the apply, rolled back).
    drop: (o) => [`DROP SERVER ${ident(o.name)} RESTRICT`],
    mark: (o) => comment('SERVER', ident(o.name)),
  },
  user_mapping: {
    create: (o) => [
      `CREATE USER MAPPING FOR ${roleSql(o.role)} SERVER ${ident(o.server)} ${options(mappingOptions(o))}`,
    ],
    drop: (o) => [`DROP USER MAPPING FOR ${roleSql(o.role)} SERVER ${ident(o.server)}`],
  },
  function: {
    create: (o) => {
      if (o.create === undefined || o.argTypes === undefined) throw new Error(`no definition for function ${o.schema}.${o.name}`);
      const fn = `${qualified(o.schema, o.name)}(${o.argTypes})`;
      return [o.create, `COMMENT ON FUNCTION ${fn} IS ${literal(MANAGED_COMMENT + DEFINITION_MARK + (o.definitionMd5 ?? ''))}`];
    },
    // NOTE: regprocedure output (schema.name(types)) is the catalog's own, already-quoted spelling.
    drop: (o) => [`DROP FUNCTION ${o.signature ?? `${qualified(o.schema, o.name)}(${o.argTypes ?? ''})`} RESTRICT`],
  },
  foreign_table: {
    create: (o, ctx) => {
      const name = qualified(o.schema, o.name);
      if (o.partition === undefined) {
        return [
          `CREATE FOREIGN TABLE ${name} (${o.columns.map((c) => columnSql(c, ctx, o.columnOptions[c.name])).join(', ')}) ` +
            `SERVER ${ident(o.server)} ${options(literalOptions(o.options))}`,
        ];
      }
      // A partition takes its columns from the parent; their options (column_name) are set afterwards.
      const [schema = '', parent = ''] = o.partition.parent.split('.');
      const columnOptions = Object.entries(o.columnOptions).sort(([a], [b]) => byCodePoint(a, b));
      const add = (opt: string) => `ADD ${ident(opt.slice(0, opt.indexOf('=')))} ${literal(opt.slice(opt.indexOf('=') + 1))}`;
      return [
        `CREATE FOREIGN TABLE ${name} PARTITION OF ${qualified(schema, parent)} ` +
          `FOR VALUES WITH (MODULUS ${Number(o.partition.modulus)}, REMAINDER ${Number(o.partition.remainder)}) ` +
          `SERVER ${ident(o.server)} ${options(literalOptions(o.options))}`,
        ...columnOptions.map(([column, opts]) => `ALTER FOREIGN TABLE ${name} ALTER COLUMN ${ident(column)} OPTIONS (${opts.map(add).join(', ')})`),
      ];
    },
    // A partition goes with its parent when that is dropped first (same phase): IF EXISTS, not an error.
    drop: (o) => [`DROP FOREIGN TABLE ${o.partition ? 'IF EXISTS ' : ''}${qualified(o.schema, o.name)} RESTRICT`],
    mark: (o) => comment('FOREIGN TABLE', qualified(o.schema, o.name)),
  },
  role: {
    create: (o) => [
      // The password travels as its SCRAM verifier, computed by vecscale (src/apply/secrets.ts).
      `CREATE ROLE ${ident(o.name)} ${PLAIN_LOGIN}${o.passwordRef ? ` PASSWORD ${verifier(o.passwordRef)}` : ''}`,
    ],
    mark: (o) => comment('ROLE', ident(o.name), ROLE_OWNER_MARK + (o.owner ?? '')),
  },
  grants: {
    create: (o) => privilegeSql(o.role, [], o.privileges),
  },
  settings: {
    create: (o) => databaseSettingsSql({}, o.values),
    drop: (o) => databaseSettingsSql(o.values, {}),
  },
};

/**
 * Loads pgvector's library into the session (a vector literal through its input function, wherever the extension
 * lives): until then `hnsw.*` is a placeholder, which only a superuser may SET or RESET in ALTER DATABASE.
 */
const LOAD_PGVECTOR =
  "EXECUTE pg_catalog.format('SELECT %L::%I.vector', '[1]', (SELECT n.nspname FROM pg_catalog.pg_extension e " +
  "JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'vector'));";

/**
 * ALTER DATABASE … SET/RESET for the database the statement runs in (ALTER DATABASE takes a name, not CURRENT).
 * Sessions opened afterwards see the new default; pgvector checks the value.
 */
function databaseSettingsSql(from: Readonly<Record<string, string>>, to: Readonly<Record<string, string>>): string[] {
  const names = [...new Set([...Object.keys(from), ...Object.keys(to)])].filter((n) => from[n] !== to[n]).sort(byCodePoint);
  return names.map((n) => {
    const value = to[n];
    const change = value === undefined ? `RESET ${n}` : `SET ${n} = %L`;
    const args = value === undefined ? '' : `, ${literal(value)}`;
    return `DO $vecscale$ BEGIN ${LOAD_PGVECTOR} EXECUTE pg_catalog.format('ALTER DATABASE %I ${change}', pg_catalog.current_database()${args}); END $vecscale$`;
  });
}

/**
 * Revokes whatever any role but the owner may do with an extension's functions and foreign-data wrappers (PUBLIC,
 * default privileges, grants by hand): they are found in the catalog, so whatever was granted goes.
 */
function ownerOnlySql(extension: string): string {
  const grantee = "CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(a.grantee)) END";
  const cascade = "CASE WHEN a.is_grantable THEN ' CASCADE' ELSE '' END";
  const member = (catalog: string) =>
    `d.classid = 'pg_catalog.${catalog}'::pg_catalog.regclass AND d.deptype = 'e' AND d.refobjid = ` +
    `(SELECT e.oid FROM pg_catalog.pg_extension e WHERE e.extname = ${literal(extension)})`;
  return (
    'DO $vecscale$ DECLARE stmt pg_catalog.text; BEGIN FOR stmt IN ' +
    `SELECT pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM %s%s', p.oid::pg_catalog.regprocedure, ${grantee}, ${cascade}) ` +
    'FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_proc p ON p.oid = d.objid, ' +
    "LATERAL pg_catalog.aclexplode(COALESCE(p.proacl, pg_catalog.acldefault('f', p.proowner))) a " +
    `WHERE ${member('pg_proc')} AND a.grantee <> p.proowner ` +
    'UNION ' +
    `SELECT pg_catalog.format('REVOKE ALL ON FOREIGN DATA WRAPPER %I FROM %s%s', w.fdwname, ${grantee}, ${cascade}) ` +
    'FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid = d.objid, ' +
    "LATERAL pg_catalog.aclexplode(COALESCE(w.fdwacl, pg_catalog.acldefault('F', w.fdwowner))) a " +
    `WHERE ${member('pg_foreign_data_wrapper')} AND a.grantee <> w.fdwowner ` +
    'LOOP EXECUTE stmt; END LOOP; END $vecscale$'
  );
}

/** A login role and nothing more; INHERIT off, so a membership granted later by hand brings no privileges along. */
const PLAIN_LOGIN = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT CONNECTION LIMIT -1 VALID UNTIL 'infinity'";


const privilegeTarget = (p: Privilege): string =>
  p.on === 'schema' ? `SCHEMA ${ident(p.schema)}` : `TABLE ${qualified(p.schema, p.name ?? '')}`;
const privilegeKey = (p: Privilege): string => `${p.on}:${p.schema}.${p.name ?? ''}`;

/** GRANT what `to` has and `from` lacks, REVOKE what `from` has and `to` lacks, per object. */
function privilegeSql(role: string, from: readonly Privilege[], to: readonly Privilege[]): string[] {
  const had = new Map(from.map((p) => [privilegeKey(p), p]));
  const want = new Map(to.map((p) => [privilegeKey(p), p]));
  const out: string[] = [];
  for (const [k, p] of want) {
    const missing = p.privileges.filter((x) => !had.get(k)?.privileges.includes(x));
    if (missing.length) out.push(`GRANT ${missing.join(', ')} ON ${privilegeTarget(p)} TO ${ident(role)}`);
  }
  for (const [k, p] of had) {
    const extra = p.privileges.filter((x) => !want.get(k)?.privileges.includes(x));
    if (extra.length) out.push(`REVOKE ${extra.join(', ')} ON ${privilegeTarget(p)} FROM ${ident(role)}`);
  }
  return out;
}

/** A user-mapping option's SQL value: the password as a placeholder (the model holds only its fingerprint). */
const mappingValue = (o: Of<'user_mapping'>, k: string, v: string): string =>
  k === 'password' && o.passwordRef ? secret(o.passwordRef) : literal(v);

const mappingOptions = (o: Of<'user_mapping'>): Array<[string, string]> =>
  sortedOptions(o.options).map(([k, v]) => [k, mappingValue(o, k, v)]);

const literalOptions = (o: Readonly<Record<string, string>>): Array<[string, string]> =>
  sortedOptions(o).map(([k, v]) => [k, literal(v)]);

const get = <K extends ObjectKind>(kind: K): Builders<K> => builders[kind] as Builders<K>;

/**
 * CREATE statements, the marker comment where the kind takes one and the object is managed, then the object's whole
 * ACL: what default privileges just granted is revoked in the same transaction.
 */
export function createSql(o: DbObject, ctx: SqlContext, opts = { concurrently: false }): string[] {
  const b = get(o.kind) as Builders<ObjectKind>;
  const out = b.create(o as never, ctx, opts);
  if (o.managed && b.mark) out.push(b.mark(o as never));
  out.push(...initialAclSql(o, ctx));
  return out;
}

export function dropSql(o: DbObject, opts: DropOptions = {}): string[] | undefined {
  const b = get(o.kind) as Builders<ObjectKind>;
  return b.drop?.(o as never, opts);
}

export function markSql(o: DbObject): string | undefined {
  const b = get(o.kind) as Builders<ObjectKind>;
  return b.mark?.(o as never);
}

/** `OPTIONS (SET …, ADD …, DROP …)` turning `actual` into `desired`; `value` renders a desired option's value. */
function optionChanges(
  actual: Readonly<Record<string, string>>,
  desired: Readonly<Record<string, string>>,
  value: (key: string, v: string) => string,
): string {
  const parts: string[] = [];
  for (const [k, v] of sortedOptions(desired)) {
    if (actual[k] !== v) parts.push(`${actual[k] === undefined ? 'ADD' : 'SET'} ${ident(k)} ${value(k, v)}`);
  }
  for (const k of Object.keys(actual).sort()) if (desired[k] === undefined) parts.push(`DROP ${ident(k)}`);
  return `OPTIONS (${parts.join(', ')})`;
}

/** Whether `desired` only appends columns to `actual` (the in-place change that keeps grants and dependants). */
export function appendsColumns(actual: readonly Column[], desired: readonly Column[]): boolean {
  return desired.length > actual.length && actual.every((c, i) => desired[i]?.name === c.name && desired[i]?.type === c.type);
}

/** A function's CREATE and marker, as CREATE OR REPLACE: same signature, so its ACL, owner and triggers stay. */
function replaceFunctionSql(o: Of<'function'>): string[] {
  const b = get('function');
  return b.create(o, { vectorSchema: '' }, { concurrently: false }).map((s) => s.replace(/^CREATE FUNCTION /, 'CREATE OR REPLACE FUNCTION '));
}

/** `ALTER VIEW … SET (…)` / `RESET (…)` turning a view's options into the desired ones. */
function viewOptionChanges(name: string, actual: readonly string[], desired: readonly string[]): string[] {
  const key = (o: string) => o.slice(0, o.indexOf('='));
  const set = desired.filter((o) => !actual.includes(o));
  const reset = actual.filter((o) => !desired.some((d) => key(d) === key(o))).map(key);
  return [
    ...(set.length ? [`ALTER VIEW ${name} SET (${viewOptionsSql(set).slice(' WITH ('.length, -1)})`] : []),
    ...(reset.length ? [`ALTER VIEW ${name} RESET (${reset.map(ident).join(', ')})`] : []),
  ];
}

/**
 * In-place changes: options of servers, user mappings and foreign tables (only the options vecscale owns), view
 * options, appended columns of views (CREATE OR REPLACE VIEW) and foreign tables (ADD COLUMN), a function redefined
 * or its attributes set back (CREATE OR REPLACE, owner), and every ACL. Grants and dependants survive.
 */
export function alterSql(actual: DbObject, desired: DbObject, ctx: SqlContext): string[] {
  // The owner first: its ACL entries are then the new owner's, and the ACL is made exact after.
  const acl = [...ownerSql(actual, desired), ...aclChangeSql(actual, desired)];
  if (desired.kind === 'extension') return desired.grants !== undefined ? [ownerOnlySql(desired.name)] : [];
  if (desired.kind === 'server' && actual.kind === 'server') {
    const own = ownOptions('server', actual.options);
    const changed = JSON.stringify(sortedOptions(own)) !== JSON.stringify(sortedOptions(desired.options));
    return [...(changed ? [`ALTER SERVER ${ident(desired.name)} ${optionChanges(own, desired.options, (_, v) => literal(v))}`] : []), ...acl];
  }
  if (desired.kind === 'user_mapping' && actual.kind === 'user_mapping') {
    const own = ownOptions('user_mapping', actual.options);
    const value = (k: string, v: string) => mappingValue(desired, k, v);
    return [`ALTER USER MAPPING FOR ${roleSql(desired.role)} SERVER ${ident(desired.server)} ${optionChanges(own, desired.options, value)}`];
  }
  if (desired.kind === 'view' && actual.kind === 'view' && desired.query !== undefined) {
    const name = qualified(desired.schema, desired.name);
    const columnsChanged = JSON.stringify(actual.columns.map((c) => [c.name, c.type])) !== JSON.stringify(desired.columns.map((c) => [c.name, c.type]));
    const trigger = desired.writeTrigger !== undefined && actual.writeTrigger !== desired.writeTrigger
      ? [...dropWriteTriggersSql(name), ...writeTriggerSql(name, desired.writeTrigger)]
      : [];
    const redefine = columnsChanged || desired.queryMd5 !== actual.queryMd5;
    // CREATE OR REPLACE VIEW sets the options it is given (and resets the others).
    const replace = redefine ? [`CREATE OR REPLACE VIEW ${name}${viewOptionsSql(desired.options)} AS ${desired.query}`, viewMark(name, desired.queryMd5)] : [];
    return [...replace, ...(redefine ? [] : viewOptionChanges(name, actual.options, desired.options)), ...trigger, ...acl];
  }
  if (desired.kind === 'function' && actual.kind === 'function') {
    // Redefined (a replaceable function), or its body or attributes changed by hand: the same CREATE, OR REPLACE.
    const redefine =
      desired.definitionMd5 !== actual.definitionMd5 || desired.bodyMd5 !== actual.bodyMd5 ||
      desired.securityDefiner !== actual.securityDefiner || JSON.stringify(desired.config) !== JSON.stringify(actual.config);
    return [...(redefine ? replaceFunctionSql(desired) : []), ...acl];
  }
  if (desired.kind === 'table' && actual.kind === 'table') {
    // The marker (protect changed), appended columns of a partitioned table (the planner allows those only where the
    // table holds no rows itself) and the ACL: everything else about a table is a replace.
    const added = desired.columns.slice(actual.columns.length).map((c) => `ADD COLUMN ${columnSql(c, ctx)}`);
    return [
      ...((desired.protected !== undefined && desired.protected !== actual.protected) || !actual.managed ? [markSql(desired)!] : []),
      ...(added.length && !desired.ordinary ? [`ALTER TABLE ${qualified(desired.schema, desired.name)} ${added.join(', ')}`] : []),
      ...acl,
    ];
  }
  if (desired.kind === 'schema' && actual.kind === 'schema') {
    return [...(desired.managed && !actual.managed ? [markSql(desired)!] : []), ...acl];
  }
  if (desired.kind === 'role' && actual.kind === 'role') {
    const name = ident(desired.name);
    return [
      ...(actual.attributes.length || desired.setPassword
        ? [`ALTER ROLE ${name} ${PLAIN_LOGIN}${desired.setPassword && desired.passwordRef ? ` PASSWORD ${verifier(desired.passwordRef)}` : ''}`]
        : []),
      ...actual.memberOf.map((r) => `REVOKE ${ident(r)} FROM ${name}`),
      // A member of the wrapper role would hold its privileges (and could SET ROLE to it).
      ...(actual.members ?? []).map((m) => `REVOKE ${name} FROM ${ident(m)}`),
      // Settings apply to every session the wrappers open: none is wanted, wherever it was set.
      ...[...new Set((actual.settings ?? []).map((s) => s.slice(0, s.indexOf(': '))))].sort(byCodePoint)
        .map((db) => `ALTER ROLE ${name}${db === '*' ? '' : ` IN DATABASE ${ident(db)}`} RESET ALL`),
      ...(actual.owner !== desired.owner || !actual.managed ? [markSql(desired)!] : []),
    ];
  }
  if (desired.kind === 'grants' && actual.kind === 'grants') {
    return privilegeSql(desired.role, actual.privileges, desired.privileges);
  }
  if (desired.kind === 'settings' && actual.kind === 'settings') return databaseSettingsSql(actual.values, desired.values);
  if (desired.kind === 'foreign_table' && actual.kind === 'foreign_table') {
    const name = qualified(desired.schema, desired.name);
    const optionsChanged = JSON.stringify(sortedOptions(actual.options)) !== JSON.stringify(sortedOptions(desired.options));
    // A partition's columns are its parent's: the parent's ADD COLUMN (planned before it) adds them here.
    const added = desired.partition ? [] : desired.columns.slice(actual.columns.length).map((c) => `ADD COLUMN ${columnSql(c, ctx)}`);
    return [
      ...(optionsChanged ? [`ALTER FOREIGN TABLE ${name} ${optionChanges(actual.options, desired.options, (_, v) => literal(v))}`] : []),
      ...(added.length ? [`ALTER FOREIGN TABLE ${name} ${added.join(', ')}`] : []),
      ...acl,
    ];
  }
  throw new Error(`no in-place change for ${desired.kind}`);
}

/** Adopting what exists exactly as needed: the marker under its own name, the owner and the ACL made exact. */
export function adoptSql(actual: DbObject, desired: DbObject): string[] {
  return [...[markSql(actual) ?? ''].filter(Boolean), ...ownerSql(actual, desired), ...aclChangeSql(actual, desired)];
}
