/** The human reasons plans give: why an object is created, and what differs when it is changed. */
import type { FieldChange } from '../diff.js';
import {
  type Acl, API_SCHEMA, BATCHED, type DbObject, type ExtensionObject, type FunctionObject, HELPER_SCHEMA, INDEX_PREFIX, type IndexObject, type Privilege,
  REMOTE_SCHEMA, type SchemaObject, type TableObject, VECS_SCHEMA, type ViewObject, WRITE_SCHEMA,
} from '../model/state.js';

/** `<c>_p<i>of<n>`: partition i of n of collection c (see model/placement.ts). */
const PARTITION = /^(.+)_p(\d+)of(\d+)$/;

/** `collection docs` or `partition 1 of 4 of collection images`, for a table or view named after what it holds. */
function holds(name: string): string {
  const m = PARTITION.exec(name);
  return m ? `partition ${m[2]} of ${m[3]} of collection ${m[1]}` : `collection ${name}`;
}

function extensionPurpose(o: ExtensionObject): string {
  if (o.name === 'vector') return `pgvector (in schema ${o.schema}): the vector type and distance operators that the collections, their indexes, the views and match_* use`;
  const mine = `in schema ${o.schema}, executable by its owner only`;
  if (o.name === 'postgres_fdw') return `postgres_fdw (${mine}): the foreign servers and foreign tables through which the primary reads and writes the collections on the secondaries`;
  if (o.name === 'dblink') return `dblink (${mine}): search_<c> sends match_<c>'s whole query to the collection's secondary over one connection kept per session`;
  return `extension ${o.name} (in schema ${o.schema})`;
}

function schemaPurpose(o: SchemaObject): string {
  switch (o.name) {
    case VECS_SCHEMA:
      return 'where the vecs client keeps its collections: one table per collection (or partition), created as vecs creates it';
    case REMOTE_SCHEMA:
      return `private schema of the foreign tables (and, sharded, the partitioned tables) that the ${API_SCHEMA}.<c> views and match_* read; applications use the views`;
    case WRITE_SCHEMA:
      return `private schema of the foreign tables that writes go to (through the ${API_SCHEMA}.<c> views' triggers and upsert_*)`;
    case HELPER_SCHEMA:
      return "vecscale's private schema: on the primary its functions (filter compiler, match_sql_*, search_*, write_*) and dblink and postgres_fdw; on a secondary the views the primary reads and writes";
    default:
      // The one other schema vecscale creates: extension_schema, where pgvector goes.
      return `the schema pgvector is installed in (extension_schema: ${o.name})`;
  }
}

function tablePurpose(o: TableObject): string {
  if (o.partitionKey) {
    const over = `partitioned by ${o.partitionKey} over ${o.partitions?.length ?? 0} foreign partitions, one per shard table`;
    return o.schema === WRITE_SCHEMA
      ? `routes each write through ${API_SCHEMA}.${o.name} (INSERT, COPY, UPDATE, DELETE) to its partition table: ${over}`
      : `collection ${o.name} across its shards, as ${API_SCHEMA}.${o.name} reads it (extracted columns computed on the shards) and upserts reach it: ${over}`;
  }
  const vec = o.columns.find((c) => c.name === 'vec');
  return `the rows of ${holds(o.name)}: ${vec?.type ?? 'vector'} embeddings with id and metadata, as the vecs client creates them`;
}

function viewPurpose(o: ViewObject): string {
  if (o.schema === API_SCHEMA) {
    const reads = o.dependsOn?.find((k) => k.startsWith('relation:'))?.slice('relation:'.length);
    return `collection ${o.name} for applications (SQL, PostgREST): reads ${reads ?? 'its foreign table'}` +
      `${o.writeTrigger ? `, writes go through ${o.writeTrigger.replace(BATCHED, '')}${o.writeTrigger.endsWith(BATCHED) ? ' (a statement\'s INSERTs in one batch)' : ''}` : ''}; runs as its caller`;
  }
  const upserts = `its INSTEAD OF INSERT trigger runs INSERT … ON CONFLICT (id) DO UPDATE on ${VECS_SCHEMA}.${o.name}`;
  if (o.writeTrigger && PARTITION.test(o.name)) return `what the primary reads of ${holds(o.name)} (extracted columns computed here) and its upserts into it: ${upserts}`;
  if (o.query?.includes(' UNION ALL ') || (o.dependsOn ?? []).some((k) => PARTITION.test(k))) {
    return `the rows of collection ${o.name} that this shard holds, all its partitions together (for whoever administers the shard)`;
  }
  const extracted = o.columns.map((c) => c.name).filter((n) => !['id', 'embedding', 'metadata'].includes(n));
  return `what the primary reads of collection ${o.name}: ${VECS_SCHEMA}.${o.name} with embedding = vec` +
    (extracted.length ? ` and the metadata keys ${extracted.join(', ')} as typed columns` : '') +
    (o.writeTrigger ? `, and where its upserts go: ${upserts}` : '');
}

function functionPurpose(o: FunctionObject): string {
  if (o.key.endsWith('(rows)')) return `batch form of ${o.name}: a JSON array of {id, embedding, metadata}, upserted in one call`;
  if (o.schema === HELPER_SCHEMA && o.name === 'upsert_row') return 'triggers of the upsert views: each INSERT\'s rows buffered, then one INSERT … ON CONFLICT (id) DO UPDATE on the collection table (or partition)';
  if (o.schema === HELPER_SCHEMA && o.name === 'filter_sql') return "compiles vecs' filter language into the SQL condition match_* runs on the secondaries";
  if (o.name.startsWith('write_')) return `INSTEAD OF trigger of ${API_SCHEMA}.${o.name.slice(6)}: sends its INSERT, UPDATE and DELETE to where each row lives`;
  if (o.name.startsWith('upsert_')) return `insert or update by id (vecs' upsert) in collection ${o.name.slice(7)}, where the row lives: ON CONFLICT does not pass through postgres_fdw`;
  if (o.name.startsWith('match_sql_')) return `builds the statement match_${o.name.slice(10)} runs (filter compiled, vector and LIMIT inlined); explain shows it`;
  if (o.schema === HELPER_SCHEMA && o.name.startsWith('search_')) {
    return `runs match_${o.name.slice(7)}'s query on the secondary over dblink (SECURITY DEFINER: dblink is its owner's only)`;
  }
  if (o.name.startsWith('match_')) {
    return `similarity search over collection ${o.name.slice(6)} (vecs' match API): filter, ORDER BY distance and LIMIT k run where the rows are`;
  }
  if (o.schema === HELPER_SCHEMA && o.name.startsWith('text_sql_')) {
    return `builds the statements hybrid_${o.name.slice(9)} runs on the secondaries (both legs: full text and semantic, filter compiled)`;
  }
  if (o.schema === HELPER_SCHEMA && o.name.startsWith('hybrid_')) {
    return `runs hybrid_${o.name.slice(7)}'s legs on the secondaries over dblink and fuses their ranks (SECURITY DEFINER: dblink is its owner's only)`;
  }
  if (o.name.startsWith('hybrid_')) {
    return `hybrid search over collection ${o.name.slice(7)} (Supabase's hybrid_search): full text and vectors merged by Reciprocal Rank Fusion`;
  }
  if (o.schema === HELPER_SCHEMA && o.name === 'sees_all_rows') return 'owned rows: whether the caller is trusted with every row (write_roles that are not api_roles, the applying login, superusers)';
  if (o.schema === HELPER_SCHEMA && o.name === 'jwt_claim') return "owned rows: the request's JWT claim (request.jwt.claims, as PostgREST sets it)";
  return `function ${o.schema}.${o.name}`;
}

function indexPurpose(o: IndexObject): string {
  const over = o.expression === undefined ? '' : ` over ${o.expression}`;
  switch (o.method) {
    case 'gin':
      return `full-text index of ${holds(o.table)} (text:): GIN${over}, the expression full-text search matches, so its searches use it`;
    case 'btree':
      return `owner index of ${holds(o.table)} (access:): btree${over}, the expression owned-row reads filter on, so they use it`;
    default:
      return `similarity index of ${holds(o.table)}: ${o.method} (${Object.entries(o.params).map(([k, v]) => `${k}=${v}`).join(', ')}) with ${o.opclass}, named as vecs names it so vecs finds it`;
  }
}

/** Why an object exists, as a create step's reason: what it is for, naming what it serves. */
export function purpose(o: DbObject): string {
  switch (o.kind) {
    case 'extension':
      return extensionPurpose(o);
    case 'schema':
      return schemaPurpose(o);
    case 'table':
      return tablePurpose(o);
    case 'index':
      return indexPurpose(o);
    case 'view':
      return viewPurpose(o);
    case 'server': {
      const hosts = (o.options.host ?? '').split(',');
      const ports = (o.options.port ?? '').split(',');
      const at = hosts.map((h, i) => `${h}:${ports[i] ?? ports[0]}`);
      if (at.length > 1) {
        return `read server ${o.name} (${at.join(', ')} /${o.options.dbname}, target_session_attrs ${o.options.target_session_attrs}): reads of the foreign tables and search_*'s dblink connections go to a standby that is up, else to the secondary (${at[0]}); pgvector operators shipped (extensions 'vector')`;
      }
      return `foreign server for secondary ${o.name} (${at[0]}/${o.options.dbname}): the foreign tables and search_*'s dblink connections reach it through it, pgvector operators shipped (extensions 'vector')`;
    }
    case 'user_mapping':
      return o.role === 'public'
        ? `every role reaches ${o.server} as ${o.options.user} (FOR PUBLIC): the API objects run as their callers, whose privileges on the foreign tables decide what they may read`
        : `${o.role} connects to ${o.server} as ${o.options.user}`;
    case 'foreign_table': {
      const what = `${o.options.schema_name}.${o.options.table_name} on ${o.server}`;
      if (o.partition) return `partition ${o.partition.remainder} of ${o.partition.modulus} of ${o.partition.parent}: ${o.schema === WRITE_SCHEMA ? 'writes' : 'reads and upserts into'} ${what}`;
      return o.schema === WRITE_SCHEMA ? `where writes on ${API_SCHEMA}.${o.name} go: ${what}` : `what ${API_SCHEMA}.${o.name} reads: ${what}`;
    }
    case 'function':
      return functionPurpose(o);
    case 'role':
      return `wrapper role ${o.name} (cluster-wide): the login the primary's foreign servers and dblink use here; no superuser, no CREATE, only the privileges vecscale grants it (password ${o.setPassword ? 'set by this apply' : 'kept'})`;
    case 'grants':
      return `what ${o.role} may use here of what vecscale does not own: ${o.privileges.map(privilegeText).join('; ')} (its privileges on vecscale's objects come with their grants; any other is revoked)`;
    case 'settings':
      return `defaults for clients that connect here directly, such as the vecs client (${Object.entries(o.values).map(([k, v]) => `${k} = ${v}`).join(', ')}): filtered searches return k rows`;
  }
}

/** `privileges: anon loses DELETE, INSERT; service_role gains SELECT`: what an ACL change does, per grantee. */
function aclChanges(from: Acl, to: Acl): string {
  const who = (g: string) => (g === 'public' ? 'PUBLIC' : g);
  const parts: string[] = [];
  for (const g of [...new Set([...Object.keys(from), ...Object.keys(to)])].sort()) {
    const lose = (from[g] ?? []).filter((p) => !(to[g] ?? []).includes(p));
    const gain = (to[g] ?? []).filter((p) => !(from[g] ?? []).includes(p));
    if (lose.length) parts.push(`${who(g)} loses ${lose.join(', ')}`);
    if (gain.length) parts.push(`${who(g)} gets ${gain.join(', ')}`);
  }
  return `privileges: ${parts.join('; ')}`;
}

/** `USAGE on schema vecs`, `SELECT, INSERT on vecs.docs`. */
export const privilegeText = (p: Privilege): string =>
  `${p.privileges.join(', ')} on ${p.on === 'schema' ? `schema ${p.schema}` : `${p.schema}.${p.name ?? ''}`}`;

const show = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v));

/** Human account of field changes; never prints a password or its fingerprint. */
export function describeFields(fields: Readonly<Record<string, FieldChange>>): string {
  // Another kind of object (a partitioned table where a foreign table belongs): the other fields say nothing more.
  if (fields.kind) return `is a ${show(fields.kind.from).replace('_', ' ')}, should be a ${show(fields.kind.to).replace('_', ' ')}`;
  const parts: string[] = [];
  for (const [field, { from, to }] of Object.entries(fields)) {
    if (field === 'managed') continue;
    if (field === 'name') {
      // A metadata index's name hashes what defines it; a vector index's changed parameters show as params.
      if (typeof to === 'string' && to.startsWith(INDEX_PREFIX.text)) parts.push(`language or source key changed (${show(from)} → ${to})`);
      if (typeof to === 'string' && to.startsWith(INDEX_PREFIX.owner)) parts.push(`owner key changed (${show(from)} → ${to})`);
      continue;
    }
    if (field === 'columns') {
      const a = new Map((from as Array<{ name: string; type: string }> | undefined)?.map((c) => [c.name, c]) ?? []);
      const d = new Map((to as Array<{ name: string; type: string }> | undefined)?.map((c) => [c.name, c]) ?? []);
      for (const [name, c] of d) {
        const old = a.get(name);
        if (!old) parts.push(`column ${name} added`);
        else if (JSON.stringify(old) !== JSON.stringify(c)) {
          parts.push(old.type !== c.type ? `column ${name}: ${old.type} → ${c.type}` : `column ${name} changed`);
        }
      }
      for (const name of a.keys()) if (!d.has(name)) parts.push(`column ${name} removed`);
      if (parts.length === 0) parts.push('column order changed');
    } else if ((field === 'options' || field === 'params') && !Array.isArray(to)) {
      const a = (from ?? {}) as Record<string, string>;
      const d = (to ?? {}) as Record<string, string>;
      for (const k of [...new Set([...Object.keys(d), ...Object.keys(a)])].sort()) {
        if (a[k] === d[k]) continue;
        const secretish = [a[k], d[k]].some((v) => v?.startsWith('hmac:'));
        if (secretish) parts.push(a[k] === undefined ? `${k} set` : d[k] === undefined ? `${k} removed` : `${k} changed`);
        else parts.push(`${k}: ${a[k] ?? '(none)'} → ${d[k] ?? '(none)'}`);
      }
    } else if (field === 'definitionIntact') {
      parts.push('definition edited outside vecscale');
    } else if (field === 'valid') {
      parts.push('index is invalid (an interrupted concurrent build)');
    } else if (field === 'ordinary') {
      parts.push('is a partitioned table, not an ordinary table as vecs needs');
    } else if (field === 'partitions') {
      parts.push(`partitions ${JSON.stringify(from ?? [])} → ${JSON.stringify(to ?? [])}`);
    } else if (field === 'partition') {
      const b = (x: unknown) => (x ? `${(x as { remainder: number }).remainder} of ${(x as { modulus: number }).modulus}` : 'none');
      parts.push(`partition ${b(from)} → ${b(to)}`);
    } else if (field === 'materialized') {
      parts.push('is a materialized view');
    } else if (field === 'columnOptions') {
      parts.push(`column options set by hand (${Object.keys(from as object).join(', ')})`);
    } else if (field === 'options' && Array.isArray(to)) {
      parts.push(`view options ${JSON.stringify(from)} → ${JSON.stringify(to)}`);
    } else if (field === 'writeTrigger') {
      parts.push(from ? 'write trigger changed' : 'write trigger missing');
    } else if (field === 'grants') {
      parts.push(`its functions are its owner's only: revoke ${((from ?? []) as string[]).join('; ')}`);
    } else if (field === 'acl') {
      parts.push(aclChanges((from ?? {}) as Acl, (to ?? {}) as Acl));
    } else if (field === 'securityDefiner') {
      const mode = (v: unknown) => (v ? 'SECURITY DEFINER' : 'SECURITY INVOKER');
      parts.push(`${mode(from)} → ${mode(to)}`);
    } else if (field === 'config') {
      parts.push(`settings ${JSON.stringify(from ?? [])} → ${JSON.stringify(to ?? [])}`);
    } else if (field === 'owner') {
      parts.push(`owner ${show(from)} → ${show(to)}`);
    } else if (field === 'privileges') {
      const a = new Set(((from ?? []) as Privilege[]).map(privilegeText));
      const d = new Set(((to ?? []) as Privilege[]).map(privilegeText));
      for (const p of d) if (!a.has(p)) parts.push(`grant ${p}`);
      for (const p of a) if (!d.has(p)) parts.push(`revoke ${p}`);
    } else if (field === 'password') {
      parts.push('password set');
    } else if (field === 'attributes') {
      parts.push(`attributes ${JSON.stringify(from)} → plain login role`);
    } else if (field === 'memberOf') {
      parts.push(`member of ${JSON.stringify(from)} → none`);
    } else if (field === 'settings') {
      parts.push(`settings ${((from ?? []) as string[]).join('; ')} → none (they apply to every session of the wrappers)`);
    } else if (field === 'values') {
      const a = (from ?? {}) as Record<string, string>;
      const d = (to ?? {}) as Record<string, string>;
      for (const k of [...new Set([...Object.keys(d), ...Object.keys(a)])].sort()) if (a[k] !== d[k]) parts.push(`${k}: ${a[k] ?? '(default)'} → ${d[k] ?? '(default)'}`);
    } else if (field === 'members') {
      parts.push(`members ${JSON.stringify(from ?? [])} → none (each would hold its privileges)`);
    } else if (field === 'protected') {
      parts.push(to ? 'protect: true recorded' : 'protect removed');
    } else if (field === 'queryMd5') {
      // Its columns changing changes its SELECT too; only a SELECT alone changed is a new vecscale's definition.
      if (!('columns' in fields)) parts.push(from ? 'definition changed' : 'definition from an older vecscale');
    } else if (field === 'definitionMd5') {
      parts.push('definition changed');
    } else if (field === 'bodyMd5') {
      // A new definition has a new body too: only a body alone changed means a hand edit.
      if (!('definitionMd5' in fields)) parts.push('body edited outside vecscale');
    } else {
      parts.push(`${field}: ${show(from)} → ${show(to)}`);
    }
  }
  return parts.join('; ');
}
