/**
 * Owned rows in the desired state (src/query/access.ts, src/query/write-functions.ts): public.<c>'s WHERE, and the
 * owner checks of its write trigger and of upsert_<c>; a collection without `access` keeps its objects as they were.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildDesired } from '../../src/desired/index.js';
import type { DbObject } from '../../src/model/state.js';
import { collection, sharded, topology } from '../topologies.js';

const access = { ownerKey: 'owner_id', claim: 'sub' };
const t = topology({
  apiRoles: ['anon', 'authenticated'],
  writeRoles: ['authenticated', 'service_role'],
  collections: [
    collection('docs', 'pod_text', { dimension: 3, access }),
    sharded('shdocs', ['pod_text', 'pod_img'], 2, { dimension: 3, access }),
    collection('open', 'pod_img', { dimension: 3 }),
  ],
});
const primary = new Map(
  buildDesired(t, { vectorSchema: 'public', dblinkSchema: 'vecscale', owners: new Map() })
    .find((d) => d.database === 'primary')!
    .objects.entries(),
);
const find = (kind: DbObject['kind'], name: string, pick: (o: DbObject) => boolean = () => true): DbObject => {
  const o = [...primary.values()].find((x) => x.kind === kind && 'name' in x && x.name === name && pick(x));
  assert.ok(o, `${kind} ${name} in the desired state`);
  return o;
};
const viewQuery = (name: string) => {
  const v = find('view', name);
  return v.kind === 'view' ? (v.query ?? '') : '';
};
const body = (name: string, pick?: (o: DbObject) => boolean) => {
  const f = find('function', name, pick);
  return f.kind === 'function' ? (f.create ?? '') : '';
};

test("public.<c>'s WHERE: the trusted roles, is_superuser, or the caller's claim as the owner (no function, no relation)", () => {
  const where = /WHERE ([\s\S]*)$/.exec(viewQuery('docs'))?.[1] ?? '';
  assert.match(where, /ARRAY\['postgres', 'service_role'\]/, 'trusted: service_role and the applying login, not authenticated');
  assert.match(where, /current_setting\('is_superuser'\)/, 'superusers');
  assert.match(where, /metadata OPERATOR\(pg_catalog\.@>\) \(SELECT CASE WHEN o\.claim IS NOT NULL THEN pg_catalog\.jsonb_build_object\('owner_id', o\.claim\) END/, 'the owner pattern');
  assert.match(where, /'request\.jwt\.claims'.*OPERATOR\(pg_catalog\.->>\) 'sub'/, 'the claim');
  assert.doesNotMatch(where, /vecscale\.|pg_roles/, 'no vecscale function (dropping access) and no relation (LOCK TABLE on the view)');
  assert.match(viewQuery('shdocs'), /WHERE /, 'sharded too');
  assert.doesNotMatch(viewQuery('open'), /WHERE/, 'a collection without access: every row');
});

test('the write trigger and upsert_<c> of an owned collection check the owner; without access, nothing changes', () => {
  const trigger = body('write_docs');
  assert.match(trigger, /WHERE id = OLD\.id AND \(NOT restricted OR metadata OPERATOR\(pg_catalog\.@>\) mine\);/, 'UPDATE and DELETE guarded');
  assert.equal(trigger.match(/NOT restricted OR metadata/g)?.length, 2, 'both the UPDATE and the DELETE');
  assert.match(trigger, /ERRCODE = '42501', MESSAGE = 'vecscale: public\.docs: a row written must have metadata "owner_id" equal to the request''s JWT claim "sub"'/);
  const open = body('write_open');
  assert.doesNotMatch(open, /restricted|mine|42501/, 'no owner checks without access');
  const one = body('upsert_docs', (o) => o.kind === 'function' && o.argTypes !== 'pg_catalog.jsonb');
  assert.ok(one.indexOf('LOCK TABLE') < one.indexOf('restricted :='), 'the view lock first, then the owner checks');
  assert.match(one, /UPDATE "vecscale_write"\."docs" w SET embedding = \$2, metadata = COALESCE\(\$3, '\{\}'::pg_catalog\.jsonb\) WHERE w\.id OPERATOR\(pg_catalog\.=\) \$1 AND w\.metadata OPERATOR\(pg_catalog\.@>\) mine;/);
  const rows = body('upsert_shdocs', (o) => o.kind === 'function' && o.argTypes === 'pg_catalog.jsonb');
  assert.match(rows, /UPDATE "vecscale_write"\."shdocs" w SET embedding = l\.embedding, metadata = l\.metadata FROM/, 'batch: one UPDATE of own rows');
  assert.doesNotMatch(body('upsert_open'), /restricted/, 'upsert_<c> without access unchanged');
});
