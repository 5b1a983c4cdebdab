/**
 * The topology config stage in three steps: the written shape with defaults (parse.ts, driven by schema.ts), env
 * interpolation of free-text values (interpolate.ts, applied to each string the shape check accepts), then named
 * cross-field rules (rules.ts). User mistakes come back as data, all at once and sorted by position; nothing throws.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, relative, resolve } from 'node:path';
import { createInterpolator } from './interpolate.js';
import { checkShape } from './parse.js';
import { type Draft, runRules } from './rules.js';
import type { IndexDocument, Loose, QueryDocument, TopologyDocument } from './schema.js';
import { DEFAULT_FDW_USER } from './types.js';
import type { CollectionSpec, ConfigProblem, IndexSpec, LoadResult, QuerySettings, SecondarySpec, Topology } from './types.js';

export { topologyJsonSchema } from './json-schema.js';
export { RULES, type Rule } from './rules.js';

const FROM_TEXT = '<string>';

/**
 * Parses and validates topology text. Pure: `file` only names the source in problems and in `Topology.file`
 * (made absolute; pass '<string>' for text that has no file), `env` fills `${NAME}` references.
 */
export function parseTopology(text: string, file: string, env: Readonly<Record<string, string | undefined>>): LoadResult {
  const source = file === FROM_TEXT ? file : resolve(file);
  const interpolator = createInterpolator(env, source, shownFile(source));
  const shape = checkShape(text, source, interpolator.transform);
  const problems = [...shape.problems];
  const draft = shape.document === undefined ? undefined : toDraft(shape.document);
  problems.push(...interpolator.problems());
  if (draft !== undefined) problems.push(...runRules(draft, { file: source, locate: shape.locate, unresolved: interpolator.unresolved }));
  const sorted = sortProblems(problems);
  if (sorted.some((p) => p.severity === 'error')) return { ok: false, problems: sorted };
  const topology = draft === undefined ? undefined : complete(draft, source, interpolator.secrets());
  // Without errors nothing is missing: the shape check reports every required key it cannot fill.
  if (topology === undefined) return { ok: false, problems: [{ severity: 'error', path: '', file: source, message: 'internal error: the topology is incomplete' }] };
  return { ok: true, topology, warnings: sorted };
}

/** Reads and validates a topology file; a file that cannot be read is a problem in the result, not a throw. */
export function loadTopology(path: string, env: Readonly<Record<string, string | undefined>> = process.env): LoadResult {
  const file = resolve(path);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    return { ok: false, problems: [{ severity: 'error', path: '', file, message: `cannot read the topology file: ${readError(e)}` }] };
  }
  return parseTopology(text, file, env);
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
    secondaries: [...(doc.secondaries ?? [])].map(([name, s]) => ({ name, url: s.url })),
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
    })),
    extensionSchema: doc.extension_schema,
    apiRoles: doc.api_roles ?? [],
  };
}

function toQuerySettings(query: Loose<QueryDocument>): Loose<QuerySettings> {
  return { efSearch: query.ef_search, iterativeScan: query.iterative_scan, probes: query.probes };
}

function toIndexSpec(index: Loose<IndexDocument>): Loose<IndexSpec> {
  switch (index.method) {
    case 'hnsw':
      return { method: 'hnsw', m: index.m, efConstruction: index.ef_construction };
    case 'ivfflat':
      return { method: 'ivfflat', lists: index.lists };
    default:
      return { method: index.method };
  }
}

/** The Topology, or undefined if anything is still missing. */
function complete(draft: Draft, file: string, secrets: readonly string[]): Topology | undefined {
  const secondaries: SecondarySpec[] = [];
  for (const s of draft.secondaries) {
    if (s.url === undefined) return undefined;
    secondaries.push({ name: s.name, url: s.url, fdwUser: DEFAULT_FDW_USER, fdwPassword: undefined });
  }
  const collections: CollectionSpec[] = [];
  for (const c of draft.collections) {
    const index = c.index === undefined ? undefined : fullIndex(c.index);
    const query = c.query === undefined ? undefined : fullQuery(c.query);
    if (c.dimension === undefined || c.metric === undefined || index === undefined || query === undefined) return undefined;
    const base = { name: c.name, dimension: c.dimension, metric: c.metric, index, query, columns: c.columns, protect: false };
    if (c.secondary !== undefined && c.shards === undefined) collections.push({ ...base, secondary: c.secondary });
    else if (c.shards !== undefined && c.shards.length > 0 && c.secondary === undefined) {
      collections.push({ ...base, shards: c.shards, partitions: c.partitions ?? defaultPartitions(c.shards.length) });
    } else return undefined;
  }
  if (draft.primaryUrl === undefined) return undefined;
  const { extensionSchema, apiRoles } = draft;
  return { version: 1, file, primary: { url: draft.primaryUrl }, secondaries, collections, extensionSchema, apiRoles, secrets };
}

/** The next power of two ≥ the number of shards. */
export const defaultPartitions = (shards: number): number => 2 ** Math.ceil(Math.log2(Math.max(shards, 1)));

function fullQuery({ efSearch, iterativeScan, probes }: Loose<QuerySettings>): QuerySettings | undefined {
  return efSearch === undefined || iterativeScan === undefined || probes === undefined ? undefined : { efSearch, iterativeScan, probes };
}

function fullIndex(index: Loose<IndexSpec>): IndexSpec | undefined {
  switch (index.method) {
    case 'hnsw':
      return index.m === undefined || index.efConstruction === undefined ? undefined : { method: 'hnsw', m: index.m, efConstruction: index.efConstruction };
    case 'ivfflat':
      return index.lists === undefined ? undefined : { method: 'ivfflat', lists: index.lists };
    case 'none':
      return { method: 'none' };
    default:
      return undefined;
  }
}

function readError(e: unknown): string {
  const code = typeof e === 'object' && e !== null && 'code' in e ? e.code : undefined;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'it is a directory';
  return e instanceof Error ? e.message : String(e);
}

