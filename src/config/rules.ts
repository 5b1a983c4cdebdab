/**
 * Stage 3: rules that need more than one value, or a value after interpolation. Each is a small named function
 * over the normalised draft; they run on whatever passed the shape check, so one bad collection does not hide
 * the problems of another.
 */
import { parsePgUrl, redactUrl, transactionPoolerProblem, urlParameterProblem } from '../util/url.js';
import { suggest } from './messages.js';
import type { Locator, Position } from './parse.js';
import type { Loose } from './schema.js';
import type { AccessSpec, ColumnSpec, ConfigProblem, IndexSpec, Metric, QuerySettings, TextSearchSpec } from './types.js';

/**
 * The topology before its last checks: every value the shape check accepted, so anything may be missing. Rules
 * check what is there; the Topology is only built when nothing is missing and no rule objected.
 */
export interface Draft {
  readonly primaryUrl: string | undefined;
  /** The `password:` key, resolved (merged into the URL when the Topology is built). */
  readonly primaryPassword: string | undefined;
  readonly secondaries: readonly DraftSecondary[];
  readonly collections: readonly DraftCollection[];
  readonly extensionSchema: string | undefined;
  /** Valid, distinct role names. */
  readonly apiRoles: readonly string[];
  readonly writeRoles: readonly string[];
}
export interface DraftSecondary {
  readonly name: string;
  readonly url: string | undefined;
  readonly password: string | undefined;
  /** Its standbys' URLs (the valid ones, in file order). */
  readonly replicas: readonly string[];
  /** Defaulted: undefined only when the written name is invalid. */
  readonly fdwUser: string | undefined;
  readonly fdwPassword: string | undefined;
}
export interface DraftCollection {
  readonly name: string;
  readonly secondary: string | undefined;
  /** Valid, distinct names, as written; undefined when not written. */
  readonly shards: readonly string[] | undefined;
  readonly partitions: number | undefined;
  readonly dimension: number | undefined;
  readonly metric: Metric | undefined;
  readonly index: Loose<IndexSpec> | undefined;
  readonly query: Loose<QuerySettings> | undefined;
  /** Columns whose type is valid. */
  readonly columns: readonly ColumnSpec[];
  readonly protect: boolean | undefined;
  readonly text: Loose<TextSearchSpec> | undefined;
  readonly access: Loose<AccessSpec> | undefined;
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
/**
 * The names of match_<c>'s result column and arguments: a column named so would make its RETURNS TABLE name a column
 * twice, or an argument and a result column alike (PostgreSQL refuses both).
 */
export const MATCH_NAMES = ['distance', 'query_embedding', 'match_count', 'filter', 'ef_search', 'probes', 'iterative_scan'] as const;
/** Schemas pgvector must not go to: the vecs client's, vecscale's private one, and the system's. */
const RESERVED_SCHEMAS = ['vecs', 'vecscale', 'vecscale_remote', 'vecscale_write', 'pg_catalog', 'information_schema', 'pg_toast'] as const;

const error = (ctx: RuleContext, path: string, pos: Position | undefined, message: string): ConfigProblem => ({
  severity: 'error', path, file: ctx.file, line: pos?.line, column: pos?.column, message,
});

const replicaPath = (secondary: string, i: number): string => `secondaries.${secondary}.replicas[${i}]`;

/** Every valid-looking connection URL, with its dotted path. */
function urls(draft: Draft): { path: string; url: string }[] {
  const all = [
    { path: 'primary.url', url: draft.primaryUrl },
    ...draft.secondaries.map((s) => ({ path: `secondaries.${s.name}.url`, url: s.url })),
    ...draft.secondaries.flatMap((s) => s.replicas.map((url, i) => ({ path: replicaPath(s.name, i), url }))),
  ];
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
  // An unencoded / ? # in the password ends the authority early: the user and password then look absent.
  if (u.username === '' && u.password === '' && url.slice(url.indexOf('//') + 2).includes('@')) {
    return 'its user or password holds an unencoded / ? or # (the URL ends its host there): percent-encode it, or use ${ENV} or password:';
  }
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

/** Every usable URL (one whose value is known and well formed), with its dotted path. */
const usableUrls = (draft: Draft, ctx: RuleContext): { path: string; url: string }[] =>
  urls(draft).filter(({ path, url }) => !ctx.unresolved.has(path) && urlProblem(url) === undefined);

/**
 * A URL means one thing: its parameters reach vecscale's own connection and the wrappers' foreign server alike, or
 * not at all. `?port=5433` once made vecscale create a collection on 5433 while the wrapper pointed at 5432.
 */
const urlParametersAreCarried: Rule = (draft, ctx) =>
  usableUrls(draft, ctx).flatMap(({ path, url }) => {
    const message = urlParameterProblem(url);
    return message === undefined ? [] : [error(ctx, path, ctx.locate.near(path), message)];
  });

/** A transaction-mode pooler, where the URL says so (Supabase's port 6543); the connection finds the others. */
const urlsReachTheServer: Rule = (draft, ctx) =>
  usableUrls(draft, ctx).flatMap(({ path, url }) => {
    const message = transactionPoolerProblem(url);
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

/**
 * libpq takes `?password=` too, but URL parameters are the connection options a foreign server carries, and every
 * role can read those (pg_foreign_server.srvoptions). vecscale builds the user mapping, the one place for a
 * password, from the userinfo; a password parameter would also bypass that.
 */
const noPasswordParameter: Rule = (draft, ctx) =>
  urls(draft).flatMap(({ path, url }) => {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      return []; // urlsArePostgres says why
    }
    if (![...u.searchParams.keys()].some((k) => k.toLowerCase() === 'password')) return [];
    return [error(ctx, path, ctx.locate.near(path),
      "put the password in ${ENV} in the URL's userinfo or in password:, never in URL parameters — they become postgres_fdw server options, which every role can read")];
  });

/** Two passwords for one login: whichever vecscale picked, the other one would be silently ignored. */
const passwordWrittenOnce: Rule = (draft, ctx) => {
  const databases = [
    { at: 'primary', url: draft.primaryUrl, password: draft.primaryPassword },
    ...draft.secondaries.map((s) => ({ at: `secondaries.${s.name}`, url: s.url, password: s.password })),
  ];
  return databases.flatMap(({ at, url, password }) => {
    if (password === undefined || url === undefined || ctx.unresolved.has(`${at}.url`) || urlProblem(url) !== undefined) return [];
    if (new URL(url).password === '') return [];
    const path = `${at}.password`;
    return [error(ctx, path, ctx.locate.near(path), `${at}.url already has a password: write it in one place, the URL's userinfo or password:`)];
  });
};

/**
 * vecscale creates the wrapper role with only the privileges postgres_fdw needs and sets its password: done to the
 * role it connects as, that would lock vecscale (and whoever else logs in as it) out.
 */
const fdwUserIsNotTheLogin: Rule = (draft, ctx) =>
  draft.secondaries.flatMap((s) => {
    const urlPath = `secondaries.${s.name}.url`;
    if (s.url === undefined || s.fdwUser === undefined || ctx.unresolved.has(urlPath) || urlProblem(s.url) !== undefined) return [];
    if (parsePgUrl(s.url).user !== s.fdwUser) return [];
    const path = `secondaries.${s.name}.fdw_user`;
    return [error(ctx, path, ctx.locate.near(path),
      `"${s.fdwUser}" is the user of ${urlPath}: the wrapper needs a role of its own (vecscale sets its password and privileges), so choose another fdw_user`)];
  });

/**
 * Roles are cluster-wide: secondaries that are databases of one cluster (host:port) and name the same fdw_user
 * share one role, so one password. Two different ones (or one written and one generated) would leave a user
 * mapping on the primary with the wrong password.
 */
const fdwPasswordsAgree: Rule = (draft, ctx) => {
  const first = new Map<string, DraftSecondary>();
  const problems: ConfigProblem[] = [];
  for (const s of draft.secondaries) {
    const path = `secondaries.${s.name}.fdw_password`;
    const unusable = s.url === undefined || ctx.unresolved.has(`secondaries.${s.name}.url`) || urlProblem(s.url) !== undefined;
    if (unusable || s.fdwUser === undefined || ctx.unresolved.has(path)) continue;
    const { host, port } = parsePgUrl(s.url);
    const cluster = `${host.toLowerCase()}:${port}`;
    const other = first.get(`${cluster}/${s.fdwUser}`);
    if (other === undefined) first.set(`${cluster}/${s.fdwUser}`, s);
    else if (other.fdwPassword !== s.fdwPassword) {
      problems.push(error(ctx, path, ctx.locate.near(path),
        `shares the role "${s.fdwUser}" with secondaries.${other.name} (both on ${cluster}; roles are cluster-wide): give both the same fdw_password, or leave it out of both`));
    }
  }
  return problems;
};

/** More secondaries than this: no "did you mean" (it compares the name with each) and no list of them in the message. */
const MAX_NAMES_SHOWN = 50;

const secondaryIsDefined: Rule = (draft, ctx) => {
  const names = draft.secondaries.map((s) => s.name);
  const defined = new Set(names);
  const few = names.length <= MAX_NAMES_SHOWN;
  const undefinedName = (path: string, name: string): ConfigProblem => {
    const hint = few ? suggest(name, names) : undefined;
    const tail = hint ? ` (did you mean "${hint}"?)` : names.length === 0 ? ' (none are defined)' : few ? ` (defined: ${names.join(', ')})` : '';
    return error(ctx, path, ctx.locate.near(path), `secondary "${name}" is not defined in secondaries${tail}`);
  };
  return draft.collections.flatMap((c) => [
    ...(c.secondary === undefined || defined.has(c.secondary) ? [] : [undefinedName(`collections.${c.name}.secondary`, c.secondary)]),
    ...(c.shards ?? []).flatMap((s, i) => (defined.has(s) ? [] : [undefinedName(`collections.${c.name}.shards[${i}]`, s)])),
  ]);
};

/** A collection lives on one secondary or is split across shards: exactly one of the two keys. */
const placementIsOne: Rule = (draft, ctx) =>
  draft.collections.flatMap((c) => {
    const path = `collections.${c.name}`;
    const at = ctx.locate.key(path) ?? ctx.locate.near(path);
    if (c.secondary !== undefined && c.shards !== undefined) {
      return [error(ctx, `${path}.shards`, ctx.locate.near(`${path}.shards`), 'write secondary (one database) or shards (split across several), not both')];
    }
    // A key written with a bad value has its own problem already.
    const written = ctx.locate.key(`${path}.secondary`) ?? ctx.locate.key(`${path}.shards`);
    if (c.secondary === undefined && c.shards === undefined && written === undefined) {
      return [error(ctx, path, at, 'needs secondary: <name>, or shards: [<name>, …] to split it across several secondaries')];
    }
    return [];
  });

/** Hash partitions: a power of two (so a later split doubles cleanly) and at least one per shard. */
const partitionsFitShards: Rule = (draft, ctx) =>
  draft.collections.flatMap((c) => {
    if (c.partitions === undefined) return [];
    const path = `collections.${c.name}.partitions`;
    if (c.shards === undefined) return [error(ctx, path, ctx.locate.near(path), 'partitions applies to a sharded collection: write shards: [...] instead of secondary')];
    const n = c.partitions;
    if ((n & (n - 1)) !== 0) return [error(ctx, path, ctx.locate.near(path), `must be a power of two (got ${n}; try ${2 ** Math.ceil(Math.log2(n))})`)];
    if (n < c.shards.length) return [error(ctx, path, ctx.locate.near(path), `must be at least the number of shards (${c.shards.length}), so every shard holds a partition`)];
    return [];
  });

/** `<c>_p<i>of<n>` names a partition table of a sharded collection (see desired.ts). */
export const PARTITION_NAME_RE = /_p\d+of\d+$/;

const partitionNamesAreFree: Rule = (draft, ctx) =>
  draft.collections
    .filter((c) => PARTITION_NAME_RE.test(c.name))
    .map((c) => {
      const path = `collections.${c.name}`;
      return error(ctx, path, ctx.locate.key(path) ?? ctx.locate.near(path), `collection names ending in _p<i>of<n> are reserved for the partitions of sharded collections`);
    });

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
      .filter((col) => (RESERVED_COLUMNS as readonly string[]).includes(col.name) || (MATCH_NAMES as readonly string[]).includes(col.name))
      .map((col) => {
        const path = `collections.${c.name}.columns.${col.name}`;
        const message = (MATCH_NAMES as readonly string[]).includes(col.name)
          ? `column name "${col.name}" is reserved: ${MATCH_NAMES.join(', ')} are match_<collection>'s result column and arguments`
          : `column name "${col.name}" is reserved: ${RESERVED_COLUMNS.slice(0, 4).join(', ')} are vecscale's and ${RESERVED_COLUMNS.slice(4).join(', ')} are PostgreSQL system columns`;
        return error(ctx, path, ctx.locate.key(path) ?? ctx.locate.near(path), message);
      }),
  );

/** hybrid_<c>'s result columns and arguments, beyond match_<c>'s: no extracted column of a collection with text may take them. */
export const HYBRID_NAMES = ['score', 'full_text_rank', 'semantic_rank', 'query_text', 'full_text_weight', 'semantic_weight', 'rrf_k'] as const;

const hybridNamesAreFree: Rule = (draft, ctx) =>
  draft.collections.flatMap((c) =>
    c.text === undefined
      ? []
      : c.columns
          .filter((col) => (HYBRID_NAMES as readonly string[]).includes(col.name))
          .map((col) => {
            const path = `collections.${c.name}.columns.${col.name}`;
            return error(ctx, path, ctx.locate.key(path) ?? ctx.locate.near(path),
              `column name "${col.name}" is reserved in a collection with text: ${HYBRID_NAMES.join(', ')} are hybrid_<collection>'s result columns and arguments`);
          }),
  );

/** The metadata keys text.source and access.owner_key / claim name: never empty (a key of '' matches nothing useful). */
const textAndAccessKeysAreNamed: Rule = (draft, ctx) =>
  draft.collections.flatMap((c) => {
    const keys: Array<[string, string | undefined]> = [];
    if (c.text !== undefined) keys.push([`collections.${c.name}.text.source`, c.text.source]);
    if (c.access !== undefined) keys.push([`collections.${c.name}.access.owner_key`, c.access.ownerKey], [`collections.${c.name}.access.claim`, c.access.claim]);
    return keys
      .filter(([, v]) => v !== undefined && v.trim() === '')
      .map(([path]) => error(ctx, path, ctx.locate.near(path), 'must not be empty'));
  });

/** access restricts the api_roles: without any, it would restrict nobody. */
const accessHasApiRoles: Rule = (draft, ctx) =>
  draft.apiRoles.length > 0
    ? []
    : draft.collections
        .filter((c) => c.access !== undefined)
        .map((c) => {
          const path = `collections.${c.name}.access`;
          return error(ctx, path, ctx.locate.key(path) ?? ctx.locate.near(path),
            'access restricts the callers in api_roles, and api_roles is empty: list the roles whose rows are owned (e.g. api_roles: [anon, authenticated])');
        });

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

/**
 * A secondary's read server lists its standbys and itself as libpq hosts (src/desired/servers.ts): one dbname and one
 * sslmode for all. A physical standby holds the same databases as its source, so another database name is a mistake.
 */
const replicasMatchTheirSecondary: Rule = (draft, ctx) =>
  draft.secondaries.flatMap((s) => {
    if (s.url === undefined || ctx.unresolved.has(`secondaries.${s.name}.url`) || urlProblem(s.url) !== undefined) return [];
    const pod = parsePgUrl(s.url);
    return s.replicas.flatMap((url, i) => {
      const path = replicaPath(s.name, i);
      if (ctx.unresolved.has(path) || urlProblem(url) !== undefined) return [];
      const r = parsePgUrl(url);
      if (r.database !== pod.database) {
        return [error(ctx, path, ctx.locate.near(path), `names database "${r.database}", secondaries.${s.name}.url "${pod.database}": a physical standby holds its secondary's databases, so write the same one`)];
      }
      if (r.sslmode !== pod.sslmode) {
        return [error(ctx, path, ctx.locate.near(path), `has sslmode ${r.sslmode ?? '(default)'}, secondaries.${s.name}.url ${pod.sslmode ?? '(default)'}: the wrappers reach a secondary and its standbys through one server, with one sslmode`)];
      }
      return [];
    });
  });

/**
 * A writer reads too: a role in both lists would say one thing twice, and drift apart when one list is edited — unless
 * a collection has owned rows (`access`): there a role in both is an API caller restricted to its own rows that may
 * write them (src/query/access.ts: only the write_roles that are not api_roles are trusted with every row).
 */
const rolesListedOnce: Rule = (draft, ctx) => {
  if (draft.collections.some((c) => c.access !== undefined)) return [];
  const readers = new Set(draft.apiRoles);
  return draft.writeRoles.flatMap((role, i) => {
    if (!readers.has(role)) return [];
    const path = `write_roles[${i}]`;
    return [error(ctx, path, ctx.locate.near(path), `"${role}" is in api_roles too: write_roles read as well, so list it in write_roles only`)];
  });
};

/**
 * vecscale computes the wrapper role's SCRAM verifier itself (the password never reaches the server), from the bytes
 * of the password; libpq would first normalise a non-ASCII one (SASLprep), so the two could disagree. ASCII is used
 * as it is by both.
 */
const fdwPasswordIsAscii: Rule = (draft, ctx) =>
  draft.secondaries.flatMap((s) => {
    const path = `secondaries.${s.name}.fdw_password`;
    if (s.fdwPassword === undefined || ctx.unresolved.has(path) || /^[\x01-\x7f]*$/.test(s.fdwPassword)) return [];
    return [error(ctx, path, ctx.locate.near(path), 'must be ASCII: vecscale sends the role a SCRAM verifier it computes from the password (PostgreSQL would normalise other characters first), never the password')];
  });

/** Every rule, by name; run in this order (the result is sorted by position anyway). */
export const RULES: Readonly<Record<string, Rule>> = {
  urlsArePostgres,
  databasesAreDistinct,
  noPasswordParameter,
  urlParametersAreCarried,
  urlsReachTheServer,
  passwordWrittenOnce,
  fdwUserIsNotTheLogin,
  fdwPasswordsAgree,
  secondaryIsDefined,
  placementIsOne,
  partitionsFitShards,
  partitionNamesAreFree,
  efConstructionCoversM,
  dimensionIsIndexable,
  columnNamesAreFree,
  hybridNamesAreFree,
  textAndAccessKeysAreNamed,
  accessHasApiRoles,
  collectionsVisibleToVecs,
  collectionNamesFit,
  extensionSchemaIsFree,
  rolesListedOnce,
  fdwPasswordIsAscii,
  replicasMatchTheirSecondary,
};

/** Runs every rule over the draft. */
export function runRules(draft: Draft, ctx: RuleContext): ConfigProblem[] {
  return Object.values(RULES).flatMap((rule) => rule(draft, ctx));
}
