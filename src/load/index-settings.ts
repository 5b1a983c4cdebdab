/**
 * The settings `vecscale load`'s rebuild of a vector index runs with: the same rule as apply's builds
 * (src/plan/index-build.ts) — `index.build` as written, else maintenance_work_mem raised to what the build needs within
 * what vecscale takes by itself — as SET LOCALs inside the rebuild's transaction (its end resets them).
 */
import type { IndexSpec } from '../config/types.js';
import type { Db } from '../db/connect.js';
import { BUILD_FACTS, type BuildFactsRow, CURRENT_ROWS } from '../introspect/catalog.js';
import { buildFactsOf } from '../introspect/map.js';
import { type IndexObject, keys, type LiveFacts, VECS_SCHEMA } from '../model/state.js';
import { indexParams } from '../desired/collection.js';
import { planIndexBuild } from '../plan/index-build.js';
import { literal, qualified } from '../sql/quote.js';
import { formatBytes } from '../util/bytes.js';

interface Row extends BuildFactsRow {
  rows: number;
  bytes: number;
}

const FACTS_SQL = (table: string) => `
SELECT ${CURRENT_ROWS}::pg_catalog.float8 AS rows, pg_catalog.pg_table_size(c.oid)::pg_catalog.float8 AS bytes,
       ${BUILD_FACTS}
  FROM pg_catalog.pg_class c WHERE c.oid = ${literal(qualified(VECS_SCHEMA, table))}::pg_catalog.regclass`;

/**
 * The SET LOCAL statements for rebuilding `definition` (pg_get_indexdef) on `table`, and a few words for the progress
 * label; none when the session's settings stand, or the index is not a vector index of the topology's kind.
 */
export async function rebuildSettings(
  db: Db,
  table: string,
  definition: string,
  index: IndexSpec,
  dimension: number,
): Promise<{ statements: string[]; label: string }> {
  const method = /\bUSING\s+(hnsw|ivfflat)\b/i.exec(definition)?.[1]?.toLowerCase();
  if (method === undefined || index.method === 'none' || index.method !== method) return { statements: [], label: '' };
  const r = (await db.query<Row>(FACTS_SQL(table))).rows[0];
  if (!r) return { statements: [], label: '' };
  const key = keys.relation(VECS_SCHEMA, table);
  const object: IndexObject = {
    kind: 'index',
    key: keys.index(VECS_SCHEMA, table),
    managed: true,
    schema: VECS_SCHEMA,
    table,
    name: '',
    method: index.method,
    column: 'vec',
    opclass: '',
    params: indexParams(index),
    valid: true,
    build: { dimension, settings: index.build ?? {} },
  };
  const facts: Pick<LiveFacts, 'rowEstimates' | 'maintenanceWorkMem' | 'buildLimits'> = {
    rowEstimates: new Map([[key, Number(r.rows) >= 0 ? { rows: Number(r.rows) } : { bytes: Number(r.bytes) }]]),
    ...buildFactsOf(r),
  };
  const how = planIndexBuild(object, facts as LiveFacts);
  // Inside the rebuild's transaction: SET LOCAL, which its COMMIT or ROLLBACK undoes (no RESET needed).
  const statements = how.before.map((s) => s.replace(/^SET /, 'SET LOCAL '));
  const label = how.memory === undefined || statements.length === 0 ? '' : ` (maintenance_work_mem ${formatBytes(how.memory)}${how.workersFrom.from === 'topology' ? `, ${how.workers} parallel workers` : ''})`;
  return { statements, label };
}
