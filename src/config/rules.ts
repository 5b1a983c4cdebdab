/**
 * Stage 3: rules that need more than one value, or a value after interpolation. Each is a small named function
 * over the normalised draft; they run on whatever passed the shape check, so one bad collection does not hide
 * the problems of another.
 */
import { parsePgUrl, redactUrl } from '../util/url.js';
import { suggest } from './messages.js';
import type { Locator, Position } from './parse.js';
import type { Loose } from './schema.js';
import type { ColumnSpec, ConfigProblem, IndexSpec, Metric, QuerySettings } from './types.js';

/**
 * The topology before its last checks: every value the shape check accepted, so anything may be missing. Rules
 * check what is there; the Topology is only built when nothing is missing and no rule objected.
 */
export interface Draft {
  readonly primaryUrl: string | undefined;
  readonly secondaries: readonly DraftSecondary[];
  readonly collections: readonly DraftCollection[];
  readonly extensionSchema: string | undefined;
  /** Valid, distinct role names. */
  readonly apiRoles: readonly string[];
}
export interface DraftSecondary { readonly name: string; readonly url: string | undefined }
export interface DraftCollection {
  readonly name: string;
  readonly secondary: string | undefined;
  readonly dimension: number | undefined;
  readonly metric: Metric | undefined;
  readonly index: Loose<IndexSpec> | undefined;
  readonly query: Loose<QuerySettings> | undefined;
  /** Columns whose type is valid. */
  readonly columns: readonly ColumnSpec[];
}

export interface RuleContext {
  readonly file: string;
  readonly locate: Locator;
  /** Values that lack an environment variable: already reported, not worth checking further. */
  readonly unresolved: ReadonlySet<string>;
}

export type Rule = (draft: Draft, ctx: RuleContext) => ConfigProblem[];

/** pgvector's limit for both index methods on the `vector` type. */
export const MAX_INDEXED_DIMENSIONS = 2000;
/** Names vecscale gives the columns of every collection view, and PostgreSQL's system columns. */
export const RESERVED_COLUMNS = ['id', 'embedding', 'metadata', 'vec', 'ctid', 'xmin', 'xmax', 'cmin', 'cmax', 'tableoid'] as const;
/** Schemas pgvector must not go to: the vecs client's, vecscale's private one, and the system's. */
const RESERVED_SCHEMAS = ['vecs', 'vecscale_remote', 'pg_catalog', 'information_schema', 'pg_toast'] as const;

const error = (ctx: RuleContext, path: string, pos: Position | undefined, message: string): ConfigProblem => ({
  severity: 'error', path, file: ctx.file, line: pos?.line, column: pos?.column, message,
});

/** Every valid-looking connection URL, with its dotted path. */
function urls(draft: Draft): { path: string; url: string }[] {
  const all = [{ path: 'primary.url', url: draft.primaryUrl }, ...draft.secondaries.map((s) => ({ path: `secondaries.${s.name}.url`, url: s.url }))];
  return all.flatMap(({ path, url }) => (url === undefined ? [] : [{ path, url }]));
}

/** Why a URL cannot be used, or undefined. Never quotes the password: everything shown goes through redactUrl. */
export function urlProblem(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'is not a valid URL: write postgres://user:${PASSWORD}@host:5432/database';
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') return `must be a postgres:// or postgresql:// URL (got ${redactUrl(url)})`;
  if (u.hostname === '') return `has no host (got ${redactUrl(url)})`;
  if (u.username === '') return `has no user: write postgres://USER@host/database (got ${redactUrl(url)})`;
  const parts = { user: u.username, password: u.password, database: u.pathname.replace(/^\//, '') };
  for (const [what, raw] of Object.entries(parts)) {
    try {
      if (decodeURIComponent(raw).includes('\0')) return `its ${what} contains a NUL character`;
    } catch {
      // Never echo the offending part: it may be the password.
      return `its ${what} has a malformed %-escape: percent-encode it (or take it from \${ENV}, which is encoded for you)`;
    }
  }
  if (u.port !== '' && (Number(u.port) < 1 || Number(u.port) > 65535)) return `has port ${u.port}; ports are 1–65535`;
  return undefined;
}

const urlsArePostgres: Rule = (draft, ctx) =>
  urls(draft).flatMap(({ path, url }) => {
    const message = ctx.unresolved.has(path) ? undefined : urlProblem(url);
    return message === undefined ? [] : [error(ctx, path, ctx.locate.near(path), message)];
  });

/** Two wrappers on one database would fight over the same tables; the primary cannot also be a secondary. */
const databasesAreDistinct: Rule = (draft, ctx) => {
  const seen = new Map<string, string>();
  const problems: ConfigProblem[] = [];
  for (const { path, url } of urls(draft)) {
    if (ctx.unresolved.has(path) || urlProblem(url) !== undefined) continue;
    const p = parsePgUrl(url);
    const target = `${p.host.toLowerCase()}:${p.port}/${p.database}`;
    const first = seen.get(target);
    if (first === undefined) seen.set(target, path.replace(/\.url$/, ''));
    else problems.push(error(ctx, path, ctx.locate.near(path), `points at the same database as ${first} (${target})`));
  }
  return problems;
};

const secondaryIsDefined: Rule = (draft, ctx) => {
  const names = draft.secondaries.map((s) => s.name);
  return draft.collections
    .flatMap((c) => (c.secondary === undefined || names.includes(c.secondary) ? [] : [{ ...c, secondary: c.secondary }]))
    .map((c) => {
      const path = `collections.${c.name}.secondary`;
      const hint = suggest(c.secondary, names);
      const tail = hint ? ` (did you mean "${hint}"?)` : names.length === 0 ? ' (none are defined)' : ` (defined: ${names.join(', ')})`;
      return error(ctx, path, ctx.locate.near(path), `secondary "${c.secondary}" is not defined in secondaries${tail}`);
    });
};

/** pgvector refuses `ef_construction < 2 * m` when the index is built: catch it before anything runs. */
const efConstructionCoversM: Rule = (draft, ctx) =>
  draft.collections.flatMap((c) => {
    if (c.index?.method !== 'hnsw') return [];
    const { m, efConstruction } = c.index;
    if (m === undefined || efConstruction === undefined || efConstruction >= 2 * m) return [];
    const path = `collections.${c.name}.index.ef_construction`;
    return [error(ctx, path, ctx.locate.near(path), `ef_construction (${efConstruction}) must be at least 2 × m = ${2 * m}`)];
  });

const dimensionIsIndexable: Rule = (draft, ctx) =>
  draft.collections.flatMap((c) => {
    const method = c.index?.method;
    if (method === undefined || method === 'none' || c.dimension === undefined || c.dimension <= MAX_INDEXED_DIMENSIONS) return [];
    const path = `collections.${c.name}.dimension`;
    const message = `pgvector cannot build an ${method} index over ${MAX_INDEXED_DIMENSIONS} dimensions; use index: { method: none } or reduce the dimension`;
    return [error(ctx, path, ctx.locate.near(path), message)];
  });

const columnNamesAreFree: Rule = (draft, ctx) =>
  draft.collections.flatMap((c) =>
    c.columns
      .filter((col) => (RESERVED_COLUMNS as readonly string[]).includes(col.name))
      .map((col) => {
        const path = `collections.${c.name}.columns.${col.name}`;
        const message = `column name "${col.name}" is reserved: ${RESERVED_COLUMNS.slice(0, 4).join(', ')} are vecscale's and ${RESERVED_COLUMNS.slice(4).join(', ')} are PostgreSQL system columns`;
        return error(ctx, path, ctx.locate.key(path) ?? ctx.locate.near(path), message);
      }),
  );

/** vecscale names functions after collections (match_sql_<c> is the longest); PostgreSQL cuts names at 63 bytes. */
export const MAX_COLLECTION_NAME = 63 - 'match_sql_'.length;

const collectionNamesFit: Rule = (draft, ctx) =>
  draft.collections
    .filter((c) => c.name.length > MAX_COLLECTION_NAME)
    .map((c) => {
      const path = `collections.${c.name}`;
      return error(ctx, path, ctx.locate.key(path) ?? ctx.locate.near(path),
        `collection name is ${c.name.length} characters; at most ${MAX_COLLECTION_NAME}, so that match_sql_${'<name>'} fits PostgreSQL's 63`);
    });

/** vecs hides collections whose name starts with `_`: such a collection would be invisible to it. */
const collectionsVisibleToVecs: Rule = (draft, ctx) =>
  draft.collections
    .filter((c) => c.name.startsWith('_'))
    .map((c) => {
      const path = `collections.${c.name}`;
      return error(ctx, path, ctx.locate.key(path) ?? ctx.locate.near(path), `collection name "${c.name}" starts with "_": the vecs client hides such collections`);
    });

const extensionSchemaIsFree: Rule = (draft, ctx) => {
  const schema = draft.extensionSchema;
  if (schema === undefined || !((RESERVED_SCHEMAS as readonly string[]).includes(schema) || schema.startsWith('pg_'))) return [];
  return [error(ctx, 'extension_schema', ctx.locate.near('extension_schema'), `"${schema}" is reserved (${RESERVED_SCHEMAS.join(', ')}, pg_*): choose another schema for pgvector`)];
};

/** Every rule, by name; run in this order (the result is sorted by position anyway). */
export const RULES: Readonly<Record<string, Rule>> = {
  urlsArePostgres,
  databasesAreDistinct,
  secondaryIsDefined,
  efConstructionCoversM,
  dimensionIsIndexable,
  columnNamesAreFree,
  collectionsVisibleToVecs,
  collectionNamesFit,
  extensionSchemaIsFree,
};

/** Runs every rule over the draft. */
export function runRules(draft: Draft, ctx: RuleContext): ConfigProblem[] {
  return Object.values(RULES).flatMap((rule) => rule(draft, ctx));
}
