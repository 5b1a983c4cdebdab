/**
 * The topology config stage in three steps: the written shape with defaults (parse.ts, driven by schema.ts), env
 * interpolation of free-text values and resolution of secrets (interpolate.ts, secrets.ts, applied to each string the
 * shape check accepts), then named cross-field rules (rules.ts); a `password:` key is merged into its URL last.
 * User mistakes come back as data, all at once and sorted by position; nothing throws.
 */
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { withPassword } from '../util/url.js';
import { createInterpolator } from './interpolate.js';
import { readError } from './messages.js';
import { formatBytes, readBoundedText } from './read-file.js';
import { checkShape } from './parse.js';
import { type Draft, runRules } from './rules.js';
import type { IndexDocument, Loose, QueryDocument, TopologyDocument } from './schema.js';
import { createSecretResolver, MAX_SECRET_BYTES, type ReadSecretFile } from './secrets.js';
import type { CollectionSpec, ConfigProblem, IndexBuild, IndexSpec, LoadResult, QuerySettings, SecondarySpec, Topology } from './types.js';

export { topologyJsonSchema } from './json-schema.js';
export { RULES, type Rule } from './rules.js';
export type { ReadSecretFile } from './secrets.js';

const FROM_TEXT = '<string>';

/**
 * The largest topology vecscale reads: about 45,000 collections written compactly, validated in about 4 s (the
 * YAML parser's own pace). A larger file is a mistake or an attack, not a topology.
 */
export const MAX_TOPOLOGY_BYTES = 4 * 1024 * 1024;

export interface ParseOptions {
  /** `--strict`: a password written in the file (problem code `literal_secret`) is an error, not a warning. */
  readonly strict?: boolean;
  /** Reads a `file:` secret by absolute path (default: a regular file of at most 64 KiB); tests inject one to need no files. */
  readonly readSecretFile?: ReadSecretFile;
  /** `vecscale types`: unset variables are no error, their values placeholders (see createInterpolator). */
  readonly placeholders?: boolean;
}

const readSecret: ReadSecretFile = (absPath) => readBoundedText(absPath, MAX_SECRET_BYTES);

const tooLarge = (file: string): ConfigProblem => ({
  severity: 'error', path: '', file, message: `the topology file is larger than ${formatBytes(MAX_TOPOLOGY_BYTES)}, the most vecscale reads`,
});

/**
 * Parses and validates topology text. `file` names the source in problems and in `Topology.file` (made absolute;
 * pass '<string>' for text that has no file) and anchors relative `file:` secrets (the working directory for
 * '<string>'); `env` fills `${NAME}` references. Reads nothing but `file:` secrets, through `opts.readSecretFile`.
 */
export function parseTopology(text: string, file: string, env: Readonly<Record<string, string | undefined>>, opts: ParseOptions = {}): LoadResult {
  const source = file === FROM_TEXT ? file : resolve(file);
  // Text handed in directly meets the same bound as a file (UTF-16 length ≤ UTF-8 bytes: cheap test first).
  if (text.length > MAX_TOPOLOGY_BYTES || Buffer.byteLength(text, 'utf8') > MAX_TOPOLOGY_BYTES) return { ok: false, problems: [tooLarge(source)] };
  const interpolator = createInterpolator(env, source, shownFile(source), opts.placeholders === true);
  const baseDir = source === FROM_TEXT ? process.cwd() : dirname(source);
  const secrets = createSecretResolver(interpolator, source, baseDir, opts.readSecretFile ?? readSecret);
  const shape = checkShape(text, source, secrets.transform);
  const problems = [...shape.problems];
  const draft = shape.document === undefined ? undefined : toDraft(shape.document);
  problems.push(...interpolator.problems(), ...secrets.problems());
  const unresolved = new Set([...interpolator.unresolved, ...secrets.unresolved]);
  if (draft !== undefined) problems.push(...runRules(draft, { file: source, locate: shape.locate, unresolved }));
  const sorted = sortProblems(problems).map((p) => (opts.strict && p.code === 'literal_secret' ? { ...p, severity: 'error' as const } : p));
  if (sorted.some((p) => p.severity === 'error')) return { ok: false, problems: sorted };
  const topology = draft === undefined ? undefined : complete(draft, source, [...new Set([...interpolator.secrets(), ...secrets.secrets()])]);
  // Without errors nothing is missing: the shape check reports every required key it cannot fill.
  if (topology === undefined) return { ok: false, problems: [{ severity: 'error', path: '', file: source, message: 'internal error: the topology is incomplete' }] };
  return { ok: true, topology, warnings: sorted };
}

/** Reads and validates a topology file; a file that cannot be read is a problem in the result, not a throw. */
export function loadTopology(path: string, env: Readonly<Record<string, string | undefined>> = process.env, opts: ParseOptions = {}): LoadResult {
  const file = resolve(path);
  let text: string;
  try {
    text = readBoundedText(file, MAX_TOPOLOGY_BYTES);
  } catch (e) {
    return { ok: false, problems: [{ severity: 'error', path: '', file, message: `cannot read the topology file: ${readError(e)}` }] };
  }
  return parseTopology(text, file, env, opts);
}

/** `topology.yaml:12:5: collections.docs.dimension: must be …`, the file relative to the working directory. */
export function formatProblem(p: ConfigProblem): string {
  const where = p.line === undefined ? shownFile(p.file) : `${shownFile(p.file)}:${p.line}:${p.column ?? 1}`;
  return `${p.severity === 'warning' ? 'warning: ' : ''}${where}: ${p.path === '' ? '' : `${p.path}: `}${p.message}`;
}

function shownFile(file: string): string {
  return isAbsolute(file) ? relative(process.cwd(), file) || file : file;
}

/** By line then column, unpositioned first; stable, so problems on one spot keep the order they were found in. */
function sortProblems(problems: readonly ConfigProblem[]): ConfigProblem[] {
  return [...problems].sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
}

/** Renames into the model, in file order. Defaults are already in place (the shape check fills them). */
function toDraft(doc: Loose<TopologyDocument>): Draft {
  return {
    primaryUrl: doc.primary?.url,
    primaryPassword: doc.primary?.password,
    secondaries: [...(doc.secondaries ?? [])].map(([name, s]) => ({
      name,
      url: s.url,
      password: s.password,
      replicas: s.replicas ?? [],
      fdwUser: s.fdw_user,
      fdwPassword: s.fdw_password,
    })),
    collections: [...(doc.collections ?? [])].map(([name, c]) => ({
      name,
      secondary: c.secondary,
      // An absent list parses as empty: no shards written.
      shards: c.shards?.length ? c.shards : undefined,
      partitions: c.partitions,
      dimension: c.dimension,
      metric: c.metric,
      index: c.index === undefined ? undefined : toIndexSpec(c.index),
      query: c.query === undefined ? undefined : toQuerySettings(c.query),
      columns: [...(c.columns ?? [])].flatMap(([column, type]) => (type === undefined ? [] : [{ name: column, type }])),
      protect: c.protect,
      text: c.text === undefined ? undefined : { source: c.text.source, language: c.text.language },
      access: c.access === undefined ? undefined : { ownerKey: c.access.owner_key, claim: c.access.claim },
    })),
    extensionSchema: doc.extension_schema,
    apiRoles: doc.api_roles ?? [],
    writeRoles: doc.write_roles ?? [],
  };
}

function toQuerySettings(query: Loose<QueryDocument>): Loose<QuerySettings> {
  return { efSearch: query.ef_search, iterativeScan: query.iterative_scan, probes: query.probes };
}

function toIndexSpec(index: Loose<IndexDocument>): Loose<IndexSpec> {
  switch (index.method) {
    case 'hnsw':
      return { method: 'hnsw', m: index.m, efConstruction: index.ef_construction, ...withBuild(toIndexBuild(index.build)) };
    case 'ivfflat':
      return { method: 'ivfflat', lists: index.lists, ...withBuild(toIndexBuild(index.build)) };
    default:
      return { method: index.method };
  }
}

/**
 * Only the keys written (an absent one is vecscale's to decide when it plans the build); nothing written, no `build`,
 * so a topology without it reads (and hashes, src/plan/saved.ts) as before.
 */
function toIndexBuild(build: { readonly maintenance_work_mem?: number; readonly parallel_workers?: number } | undefined): IndexBuild | undefined {
  const out = {
    ...(build?.maintenance_work_mem === undefined ? {} : { maintenanceWorkMemKb: build.maintenance_work_mem }),
    ...(build?.parallel_workers === undefined ? {} : { parallelWorkers: build.parallel_workers }),
  };
  return Object.keys(out).length === 0 ? undefined : out;
}

const withBuild = (build: IndexBuild | undefined): { build?: IndexBuild } => (build === undefined ? {} : { build });

/**
 * A `password:` key goes into the URL's userinfo, so everything downstream reads one `url` whichever way the
 * password was written (the rules made sure the URL had none of its own).
 */
const connectionUrl = (url: string, password: string | undefined): string => (password === undefined ? url : withPassword(url, password));

/** The Topology, or undefined if anything is still missing. */
function complete(draft: Draft, file: string, secrets: readonly string[]): Topology | undefined {
  const secondaries: SecondarySpec[] = [];
  for (const s of draft.secondaries) {
    if (s.url === undefined || s.fdwUser === undefined) return undefined;
    secondaries.push({ name: s.name, url: connectionUrl(s.url, s.password), replicas: s.replicas, fdwUser: s.fdwUser, fdwPassword: s.fdwPassword });
  }
  const collections: CollectionSpec[] = [];
  for (const c of draft.collections) {
    const index = c.index === undefined ? undefined : fullIndex(c.index);
    const query = c.query === undefined ? undefined : fullQuery(c.query);
    if (c.dimension === undefined || c.metric === undefined || index === undefined || query === undefined || c.protect === undefined) return undefined;
    const text = c.text === undefined ? undefined : c.text.source && c.text.language ? { source: c.text.source, language: c.text.language } : null;
    const access = c.access === undefined ? undefined : c.access.ownerKey && c.access.claim ? { ownerKey: c.access.ownerKey, claim: c.access.claim } : null;
    if (text === null || access === null) return undefined;
    const base = {
      name: c.name, dimension: c.dimension, metric: c.metric, index, query, columns: c.columns, protect: c.protect,
      ...(text ? { text } : {}),
      ...(access ? { access } : {}),
    };
    if (c.secondary !== undefined && c.shards === undefined) collections.push({ ...base, secondary: c.secondary });
    else if (c.shards !== undefined && c.shards.length > 0 && c.secondary === undefined) {
      collections.push({ ...base, shards: c.shards, partitions: c.partitions ?? defaultPartitions(c.shards.length) });
    } else return undefined;
  }
  if (draft.primaryUrl === undefined) return undefined;
  const { extensionSchema, apiRoles, writeRoles } = draft;
  const primary = { url: connectionUrl(draft.primaryUrl, draft.primaryPassword) };
  return { version: 1, file, primary, secondaries, collections, extensionSchema, apiRoles, writeRoles, secrets };
}

/** The next power of two ≥ the number of shards. */
export const defaultPartitions = (shards: number): number => 2 ** Math.ceil(Math.log2(Math.max(shards, 1)));

function fullQuery({ efSearch, iterativeScan, probes }: Loose<QuerySettings>): QuerySettings | undefined {
  return efSearch === undefined || iterativeScan === undefined || probes === undefined ? undefined : { efSearch, iterativeScan, probes };
}

function fullIndex(index: Loose<IndexSpec>): IndexSpec | undefined {
  switch (index.method) {
    case 'hnsw':
      return index.m === undefined || index.efConstruction === undefined
        ? undefined
        : { method: 'hnsw', m: index.m, efConstruction: index.efConstruction, ...withBuild(index.build) };
    case 'ivfflat':
      return index.lists === undefined ? undefined : { method: 'ivfflat', lists: index.lists, ...withBuild(index.build) };
    case 'none':
      return { method: 'none' };
    default:
      return undefined;
  }
}
