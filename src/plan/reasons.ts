/** The human reasons plans give: why an object is created, and what differs when it is changed. */
import type { FieldChange } from '../diff.js';
import { type Acl, API_SCHEMA, type DbObject, type Privilege, HELPER_SCHEMA, REMOTE_SCHEMA, VECS_SCHEMA, WRITE_SCHEMA } from '../model/state.js';

/** Why an object exists, as a create step's reason. */
export function purpose(o: DbObject): string {
  switch (o.kind) {
    case 'extension':
      return o.name === 'vector'
        ? `pgvector, in schema ${o.schema}`
        : o.name === 'postgres_fdw'
          ? `the wrappers reach the secondaries through postgres_fdw (in schema ${o.schema}, executable by its owner only)`
          : `match_* sends its query to the secondary through dblink (in schema ${o.schema}, executable by its owner only)`;
    case 'schema':
      return o.name === VECS_SCHEMA
        ? "the vecs client's schema"
        : o.name === REMOTE_SCHEMA
          ? 'private schema for the foreign tables the API views read (applications use the views)'
          : o.name === WRITE_SCHEMA
            ? 'private schema for the foreign tables writes go to (through the views and upsert_*)'
            : o.name === HELPER_SCHEMA
              ? "vecscale's private schema: its functions and extensions (primary), the wrapper views (secondary)"
              : 'schema for pgvector';
    case 'table': {
      if (o.partitionKey) {
        return `collection ${o.name} across its shards: partitioned by ${o.partitionKey} over ${o.partitions?.length ?? 0} foreign partitions` +
          (o.schema === WRITE_SCHEMA ? ' (upserts)' : '');
      }
      const vec = o.columns.find((c) => c.name === 'vec');
      return `collection ${o.name}: ${vec?.type ?? 'vector'} rows, as the vecs client creates them`;
    }
    case 'index':
      return `${o.method} (${Object.entries(o.params).map(([k, v]) => `${k}=${v}`).join(', ')}) with ${o.opclass}, named so vecs finds it`;
    case 'view':
      if (o.schema === API_SCHEMA) return `API relation for collection ${o.name}, read through the foreign table (runs as its caller)`;
      if (o.writeTrigger) return `upserts into ${VECS_SCHEMA}.${o.name} (INSTEAD OF INSERT … ON CONFLICT), for the primary`;
      return o.query?.includes(' UNION ALL ') || /_p\d+of\d+/.test(o.query ?? '')
        ? `the rows of collection ${o.name} on this shard (for whoever administers it)`
        : `exposes ${VECS_SCHEMA}.${o.name} (embedding = vec, metadata keys as columns) to the wrappers`;
    case 'server':
      return `reaches secondary ${o.name} at ${o.options.host}:${o.options.port}/${o.options.dbname}, pgvector operators shipped (extensions 'vector')`;
    case 'user_mapping':
      return o.role === 'public'
        ? `every role reaches ${o.server} as ${o.options.user} (FOR PUBLIC): the API objects run as their callers, whose privileges on the foreign tables decide what they may read`
        : `${o.role} connects to ${o.server} as ${o.options.user}`;
    case 'foreign_table': {
      const what = `${o.options.schema_name}.${o.options.table_name} on ${o.server}`;
      if (o.partition) return `partition ${o.partition.remainder} of ${o.partition.modulus} of ${o.partition.parent}: ${o.schema === WRITE_SCHEMA ? 'upserts into' : 'reads and writes'} ${what}`;
      return `${o.schema === WRITE_SCHEMA ? 'writes to' : 'reads'} ${what}`;
    }
    case 'function':
      if (o.key.endsWith('(rows)')) return `batch form of ${o.name}: a JSON array of {id, embedding, metadata} in one call`;
      if (o.schema === HELPER_SCHEMA && o.name === 'upsert_row') return 'INSTEAD OF INSERT trigger of the upsert views: INSERT … ON CONFLICT (id) DO UPDATE on the partition';
      if (o.name.startsWith('write_')) return `sends writes on ${API_SCHEMA}.${o.name.slice(6)} to its secondary (or, sharded, to the partition of each row)`;
      if (o.name.startsWith('upsert_')) return `insert or update by id on the collection's secondary (ON CONFLICT does not pass through postgres_fdw)`;
      if (o.name.startsWith('match_sql_')) return `builds the statement match_${o.name.slice(10)} runs (filter compiled, vector and LIMIT inlined)`;
      if (o.schema === HELPER_SCHEMA && o.name.startsWith('search_')) {
        return `runs match_${o.name.slice(7)}'s query on the secondary over dblink (SECURITY DEFINER: dblink is its owner's only)`;
      }
      return o.schema === HELPER_SCHEMA
        ? "compiles vecs' filter language into SQL postgres_fdw ships"
        : `similarity search over ${o.name.replace(/^match_/, '')}: ORDER BY distance LIMIT k and the filter shipped to the secondary (every partition, if sharded)`;
    case 'role':
      return `login role the primary's user mappings use here: no superuser, no CREATE, only the grants below (password ${o.setPassword ? 'set by this apply' : 'kept'})`;
    case 'grants':
      return `what ${o.role} may do here: ${o.privileges.map(privilegeText).join('; ')}`;
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
    if (field === 'managed' || field === 'name') continue;
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
