/**
 * Supabase-shaped test databases (../shared/FACTS.md, "A Supabase-shaped database"): the API roles, an
 * `authenticator` login role that switches role per request the way PostgREST does, Supabase's default privileges
 * (everything `postgres` creates in `public` is granted to the API roles), and the request shapes PostgREST (v14)
 * sends for supabase-js `select`, `rpc`, `insert`, `update` and `delete`, replayed with `pg` as named prepared
 * statements with unknown-typed parameters.
 */
import pg from 'pg';
import { freshDatabases, sql } from './harness.js';
import type { SandboxUrls } from '../src/sandbox/sandbox.js';

export type Dbs = SandboxUrls & { readonly name: string };

export const API_ROLES = ['anon', 'authenticated', 'service_role'] as const;
export type ApiRole = (typeof API_ROLES)[number];
/** The authenticator's password (loopback-only test clusters). */
export const AUTHENTICATOR_PASSWORD = 'authenticator-test-pw';

/** Roles are cluster-wide and test files run concurrently: create each once, whoever comes first. */
const once = (statement: string) => `DO $$ BEGIN ${statement}; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$`;

const CLUSTER_SETUP = [
  once('CREATE ROLE anon NOLOGIN'),
  once('CREATE ROLE authenticated NOLOGIN'),
  once('CREATE ROLE service_role NOLOGIN BYPASSRLS'),
  once(`CREATE ROLE authenticator LOGIN NOINHERIT PASSWORD '${AUTHENTICATOR_PASSWORD}'`),
  'GRANT anon, authenticated, service_role TO authenticator',
  "ALTER ROLE anon SET statement_timeout = '3s'",
  "ALTER ROLE authenticated SET statement_timeout = '8s'",
];

/** What every Supabase project database carries (per database; the roles above per cluster). */
const DATABASE_SETUP = [
  'CREATE SCHEMA IF NOT EXISTS extensions',
  'GRANT USAGE ON SCHEMA public, extensions TO anon, authenticated, service_role',
  'ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated, service_role',
  'ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role',
  'ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT ALL ON SEQUENCES TO anon, authenticated, service_role',
  // Supabase installs extensions, pgvector included, in schema extensions.
  'CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA extensions',
];

/** Makes one database (and its cluster) Supabase-shaped. */
export async function prepareSupabase(url: string): Promise<void> {
  for (const s of [...CLUSTER_SETUP, ...DATABASE_SETUP]) {
    // GRANT … TO authenticator may race with another file's identical GRANT: both mean the same.
    await sql(url, s).catch((e: { code?: string }) => {
      if (e.code !== 'XX000' && e.code !== '23505') throw e;
    });
  }
}

/** Fresh databases on every test cluster, each prepared the Supabase way. */
export async function supabaseDatabases(prefix: string): Promise<Dbs> {
  const dbs = await freshDatabases(prefix);
  for (const url of [dbs.primary, ...Object.values(dbs.secondaries)]) await prepareSupabase(url);
  return dbs;
}

/** The database's URL with the authenticator's login, as PostgREST connects. */
export function authenticatorUrl(url: string): string {
  const u = new URL(url);
  u.username = 'authenticator';
  u.password = AUTHENTICATOR_PASSWORD;
  return u.toString();
}

/** A PostgREST-like session: the authenticator's connection, one transaction per request. */
export class Rest {
  private constructor(private readonly client: pg.Client) {}

  static async connect(url: string): Promise<Rest> {
    const client = new pg.Client({ connectionString: authenticatorUrl(url) });
    client.on('error', () => undefined);
    await client.connect();
    return new Rest(client);
  }

  async end(): Promise<void> {
    await this.client.end().catch(() => undefined);
  }

  /** The underlying connection (to create pg_temp objects in the session first, as a hostile caller would). */
  get raw(): pg.Client {
    return this.client;
  }

  private readonly roleSettings = new Map<string, Array<[string, string]>>();

  /**
   * The role's own settings (`ALTER ROLE anon SET statement_timeout = '3s'`): PostgREST (v11.2+) applies them to each
   * request it runs as that role, since switching role with set_config does not.
   */
  private async settingsOf(role: string): Promise<Array<[string, string]>> {
    let settings = this.roleSettings.get(role);
    if (!settings) {
      const rows = await this.client.query<{ s: string }>(
        `SELECT unnest(s.setconfig) AS s FROM pg_catalog.pg_db_role_setting s
          WHERE s.setrole = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $1)
            AND s.setdatabase IN (0, (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database()))
          ORDER BY s.setdatabase`,
        [role],
      );
      settings = rows.rows.map((r) => [r.s.slice(0, r.s.indexOf('=')), r.s.slice(r.s.indexOf('=') + 1)]);
      this.roleSettings.set(role, settings);
    }
    return settings;
  }

  /**
   * One request as `role`: `BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY|READ WRITE`, the role switched with
   * set_config (not SET ROLE), the role's own settings applied, then `fn`, then COMMIT (ROLLBACK on error, which is
   * rethrown). `claims`: the verified JWT's claims PostgREST puts in request.jwt.claims (default `{ role }`).
   */
  async request<T>(role: ApiRole, write: boolean, fn: (q: Query) => Promise<T>, claims: Record<string, unknown> = { role }): Promise<T> {
    const settings = await this.settingsOf(role);
    await this.client.query(`BEGIN ISOLATION LEVEL READ COMMITTED ${write ? 'READ WRITE' : 'READ ONLY'}`);
    try {
      const extra = settings.map((_, i) => `, set_config($${5 + 2 * i}, $${6 + 2 * i}, true)`).join('');
      await this.client.query(
        `select set_config('search_path', $1, true), set_config('role', $2, true), set_config('request.jwt.claims', $3, true), set_config('request.method', $4, true)${extra}`,
        ['"public", "extensions"', role, JSON.stringify(claims), write ? 'POST' : 'GET', ...settings.flat()],
      );
      const result = await fn(new Query(this.client));
      await this.client.query('COMMIT');
      return result;
    } catch (e) {
      await this.client.query('ROLLBACK').catch(() => undefined);
      throw e;
    }
  }
}

const RESPONSE = `SELECT null::bigint AS total_result_set, pg_catalog.count(_postgrest_t) AS page_total,
    coalesce(json_agg(_postgrest_t), '[]') AS body, nullif(current_setting('response.headers', true), '') AS response_headers,
    nullif(current_setting('response.status', true), '') AS response_status, '' AS response_inserted`;
const MUTATION_RESPONSE = `SELECT '' AS total_result_set, pg_catalog.count(_postgrest_t) AS page_total, array[]::text[] AS header, ''::text AS body,
    nullif(current_setting('response.headers', true), '') AS response_headers, nullif(current_setting('response.status', true), '') AS response_status,
    '' AS response_inserted`;

let statementNumber = 0;
/**
 * A named prepared statement whose parameters are typed as given (705 = unknown, 114 = json), as PostgREST sends
 * them. NOTE: node-pg passes `types` both to Parse (as parameter OIDs, when it is an array) and to the row parser
 * (its getTypeParser): an array that has both does both.
 */
async function prepared<R extends pg.QueryResultRow>(client: pg.Client, text: string, values: unknown[], oids: number[]): Promise<R[]> {
  statementNumber += 1;
  const types = Object.assign([...oids], { getTypeParser: pg.types.getTypeParser });
  const result = await client.query<R>({ name: `pgrst_${statementNumber}`, text, values, types: types as never });
  return result.rows;
}

/** The SQL supabase-js requests become, for one table or function. */
export class Query {
  constructor(private readonly client: pg.Client) {}

  /** `supabase.from(table).select(columns).eq(column, value)` (or no filter). */
  async select(table: string, columns: readonly string[], eq?: readonly [string, string]): Promise<unknown[]> {
    const t = `"public"."${table}"`;
    const where = eq ? ` WHERE ${t}."${eq[0]}" = $1` : '';
    const n = eq ? 2 : 1;
    const text = `WITH pgrst_source AS ( SELECT ${columns.map((c) => `${t}."${c}"`).join(', ')} FROM ${t}${where} LIMIT $${n} OFFSET $${n + 1} ) ${RESPONSE} FROM ( SELECT * FROM pgrst_source ) _postgrest_t`;
    const values = [...(eq ? [eq[1]] : []), '1000', '0'];
    const [row] = await prepared<{ body: unknown[] }>(this.client, text, values, values.map(() => 705));
    return row!.body;
  }

  /**
   * A GET with PostgREST filters already rendered as the WHERE they become (`or=(id.eq.x,…)` →
   * `("public"."docs"."id" = $1 OR …)`), the filter values first and then limit and offset.
   */
  async selectWhere(table: string, columns: readonly string[], where: string, values: readonly string[]): Promise<unknown[]> {
    const t = `"public"."${table}"`;
    const n = values.length + 1;
    const text = `WITH pgrst_source AS ( SELECT ${columns.map((c) => `${t}."${c}"`).join(', ')} FROM ${t} WHERE ${where} LIMIT $${n} OFFSET $${n + 1} ) ${RESPONSE} FROM ( SELECT * FROM pgrst_source ) _postgrest_t`;
    const all = [...values, '1000', '0'];
    const [row] = await prepared<{ body: unknown[] }>(this.client, text, all, all.map(() => 705));
    return row!.body;
  }

  /** `supabase.rpc(fn, args)`: a POST with a JSON body; `args` declares each argument's SQL type, in order. */
  async rpc(fn: string, args: ReadonlyArray<readonly [name: string, type: string, value: unknown]>, returnsSet = true): Promise<unknown> {
    const names = args.map(([n]) => `"${n}"`).join(', ');
    const record = args.map(([n, type]) => `"${n}" ${type}`).join(', ');
    const call = `"public"."${fn}"(${args.map(([n]) => `"${n}" := pgrst_body."${n}"`).join(', ')})`;
    const source = returnsSet
      ? `SELECT "pgrst_call".* FROM (SELECT $1 AS json_data) pgrst_payload, LATERAL (SELECT ${names} FROM json_to_record(pgrst_payload.json_data) AS _(${record}) LIMIT 1) pgrst_body, LATERAL ${call} pgrst_call`
      : `SELECT ${call} AS pgrst_scalar FROM (SELECT $1 AS json_data) pgrst_payload, LATERAL (SELECT ${names} FROM json_to_record(pgrst_payload.json_data) AS _(${record}) LIMIT 1) pgrst_body`;
    const text = `WITH pgrst_source AS (${source}) ${RESPONSE} FROM (SELECT "${fn}".* FROM "pgrst_source" AS "${fn}" LIMIT $2 OFFSET $3) _postgrest_t`;
    const body = JSON.stringify(Object.fromEntries(args.map(([n, , v]) => [n, v])));
    const [row] = await prepared<{ body: unknown }>(this.client, text, [body, '1000', '0'], [114, 705, 705]);
    return row!.body;
  }

  /** `supabase.from(table).insert(rows)`. */
  async insert(table: string, rows: ReadonlyArray<Record<string, unknown>>): Promise<number> {
    const t = `"public"."${table}"`;
    const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))].sort();
    const text =
      `WITH pgrst_source AS (INSERT INTO ${t}(${cols.map((c) => `"${c}"`).join(', ')}) SELECT ${cols.map((c) => `"pgrst_body"."${c}"`).join(', ')} ` +
      `FROM (SELECT $1 AS json_data) pgrst_payload, LATERAL (SELECT ${cols.map((c) => `"${c}"`).join(', ')} FROM json_populate_recordset (null::${t}, pgrst_payload.json_data) _ ) pgrst_body RETURNING 1) ` +
      `${MUTATION_RESPONSE} FROM (SELECT 1 FROM pgrst_source) _postgrest_t`;
    const [row] = await prepared<{ page_total: string }>(this.client, text, [JSON.stringify(rows)], [114]);
    return Number(row!.page_total);
  }

  /** `supabase.from(table).update(patch).eq(column, value)`. */
  async update(table: string, patch: Record<string, unknown>, eq: readonly [string, string]): Promise<number> {
    const t = `"public"."${table}"`;
    const cols = Object.keys(patch).sort();
    const text =
      `WITH pgrst_source AS (UPDATE ${t} SET ${cols.map((c) => `"${c}" = "pgrst_body"."${c}"`).join(', ')} ` +
      `FROM (SELECT $1 AS json_data) pgrst_payload, LATERAL (SELECT ${cols.map((c) => `"${c}"`).join(', ')} FROM json_populate_record (null::${t}, pgrst_payload.json_data) _ ) pgrst_body ` +
      `WHERE ${t}."${eq[0]}" = $2 RETURNING 1) ${MUTATION_RESPONSE} FROM (SELECT 1 FROM pgrst_source) _postgrest_t`;
    const [row] = await prepared<{ page_total: string }>(this.client, text, [JSON.stringify(patch), eq[1]], [114, 705]);
    return Number(row!.page_total);
  }

  /** `supabase.from(table).delete().eq(column, value)`. */
  async delete(table: string, eq: readonly [string, string]): Promise<number> {
    const t = `"public"."${table}"`;
    const text = `WITH pgrst_source AS (DELETE FROM ${t} WHERE ${t}."${eq[0]}" = $1 RETURNING 1) ${MUTATION_RESPONSE} FROM (SELECT 1 FROM pgrst_source) _postgrest_t`;
    const [row] = await prepared<{ page_total: string }>(this.client, text, [eq[1]], [705]);
    return Number(row!.page_total);
  }
}
