import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { topologyJsonSchema } from '../../src/config/index.js';

const fixtures = fileURLToPath(new URL('../../fixtures/', import.meta.url));
type S = boolean | { readonly [k: string]: unknown };
const obj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const typeOf = (v: unknown): string =>
  v === null ? 'null' : Array.isArray(v) ? 'array' : Number.isInteger(v) ? 'integer' : typeof v === 'number' ? 'number' : typeof v;

/** The subset of draft 2020-12 the generated schema uses: enough to check fixtures against it. */
function valid(schema: S, v: unknown): boolean {
  if (typeof schema === 'boolean') return schema;
  const s = schema as Record<string, unknown>;
  const types = s.type === undefined ? undefined : ([] as unknown[]).concat(s.type);
  if (types && !types.includes(typeOf(v))) return false;
  if ('const' in s && s.const !== v) return false;
  if (Array.isArray(s.enum) && !s.enum.includes(v)) return false;
  if (s.not !== undefined && valid(s.not as S, v)) return false;
  if (Array.isArray(v) && s.items !== undefined && !v.every((x) => valid(s.items as S, x))) return false;
  if (Array.isArray(v) && s.uniqueItems === true && new Set(v.map((x) => JSON.stringify(x))).size !== v.length) return false;
  if (typeof v === 'number' && ((typeof s.minimum === 'number' && v < s.minimum) || (typeof s.maximum === 'number' && v > s.maximum))) return false;
  if (typeof v === 'string' && typeof s.pattern === 'string' && !new RegExp(s.pattern, 'u').test(v)) return false;
  if (obj(v)) {
    const props = obj(s.properties) ? s.properties : {};
    if (Array.isArray(s.required) && !s.required.every((k) => typeof k === 'string' && k in v)) return false;
    for (const [k, x] of Object.entries(v)) {
      if (obj(s.propertyNames) && !valid(s.propertyNames as S, k)) return false;
      const sub = (props[k] ?? s.additionalProperties ?? true) as S;
      if (!valid(sub, x)) return false;
    }
  }
  if (Array.isArray(s.allOf) && !s.allOf.every((x) => valid(x as S, v))) return false;
  if (Array.isArray(s.anyOf) && !s.anyOf.some((x) => valid(x as S, v))) return false;
  if (s.if !== undefined && valid(s.if as S, v) && s.then !== undefined && !valid(s.then as S, v)) return false;
  return true;
}

const load = (kind: string, f: string): unknown => parse(readFileSync(join(fixtures, kind, f), 'utf8'));
const schema = topologyJsonSchema() as Record<string, unknown>;

test('the schema is draft 2020-12, closed at the root, and requires version and primary', () => {
  assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
  assert.equal(schema.additionalProperties, false);
  assert.deepEqual(schema.required, ['version', 'primary']);
  assert.deepEqual(Object.keys(schema.properties as object), ['version', 'extension_schema', 'api_roles', 'write_roles', 'primary', 'secondaries', 'collections']);
});

test('every object is closed, every property described, identifier maps constrain their names', () => {
  const walk = (s: unknown, path: string): void => {
    if (!obj(s)) return;
    if (s.type === 'object' || (Array.isArray(s.type) && s.type.includes('object'))) {
      assert.ok(s.additionalProperties !== undefined && s.additionalProperties !== true, `${path} is open`);
      if (s.propertyNames !== undefined) assert.deepEqual(s.propertyNames, { pattern: '^[a-z_][a-z0-9_]{0,62}$' }, path);
    }
    if (obj(s.properties)) {
      for (const [k, sub] of Object.entries(s.properties)) {
        if (sub === false) continue;
        assert.ok(obj(sub) && typeof sub.description === 'string' && sub.description.length > 0, `${path}.${k} has no description`);
        walk(sub, `${path}.${k}`);
      }
    }
    if (obj(s.additionalProperties)) walk(s.additionalProperties, `${path}.*`);
    if (obj(s.items)) walk(s.items, `${path}[]`);
  };
  walk(schema, '');
});

test('the collection schema carries the enums, ranges and defaults of the parser', () => {
  const collections = schema.properties as Record<string, Record<string, unknown>>;
  const collection = (collections.collections?.additionalProperties ?? {}) as Record<string, Record<string, Record<string, unknown>>>;
  const p = collection.properties ?? {};
  assert.deepEqual(p.dimension, { description: p.dimension?.description, type: 'integer', minimum: 1, maximum: 16000 });
  assert.deepEqual(p.metric?.enum, ['cosine', 'l2', 'inner_product']);
  assert.equal(p.metric?.default, 'cosine');
  const index = p.index as { properties: Record<string, Record<string, unknown>> };
  assert.deepEqual(index.properties.method?.enum, ['hnsw', 'ivfflat', 'none']);
  assert.deepEqual([index.properties.m?.minimum, index.properties.m?.maximum, index.properties.m?.default], [2, 100, 16]);
  assert.deepEqual([index.properties.ef_construction?.minimum, index.properties.ef_construction?.default], [4, 64]);
  assert.deepEqual([index.properties.lists?.maximum, index.properties.lists?.default], [32768, 100]);
  assert.deepEqual(collection.required, ['dimension']);
  assert.deepEqual([p.shards?.type, p.partitions?.minimum, p.partitions?.maximum], [['array', 'null'], 1, 64]);
  const query = p.query as { type: unknown; properties: Record<string, Record<string, unknown>> };
  assert.deepEqual(query.type, ['object', 'null']);
  assert.deepEqual([query.properties.ef_search?.minimum, query.properties.ef_search?.maximum, query.properties.ef_search?.default], [1, 1000, 100]);
  assert.deepEqual([query.properties.iterative_scan?.enum, query.properties.iterative_scan?.default], [['relaxed_order', 'strict_order', 'off'], 'relaxed_order']);
  assert.deepEqual([query.properties.probes?.minimum, query.properties.probes?.maximum, query.properties.probes?.default], [1, 32768, 10]);
});

test('api_roles is a list of distinct, unreserved role names', () => {
  const roles = (schema.properties as Record<string, Record<string, unknown>>).api_roles;
  assert.deepEqual([roles?.type, roles?.uniqueItems], [['array', 'null'], true]);
  assert.deepEqual((roles?.items as Record<string, unknown>).not, { anyOf: [{ enum: ['postgres', 'public'] }, { pattern: '^pg_' }] });
  const doc = (api_roles: unknown) => ({ version: 1, primary: { url: 'postgres://u@h/db' }, api_roles });
  for (const ok of [['anon', 'authenticated'], [], null]) assert.ok(valid(schema, doc(ok)), JSON.stringify(ok));
  for (const bad of ['anon', ['anon', 'anon'], ['public'], ['pg_monitor'], ['postgres'], ['Anon']]) assert.equal(valid(schema, doc(bad)), false, JSON.stringify(bad));
});

test('valid fixtures pass the schema', () => {
  for (const f of readdirSync(join(fixtures, 'valid'))) assert.ok(valid(schema, load('valid', f)), f);
});

test('fixtures with a shape error fail the schema too (cross-field rules are not expressible there)', () => {
  const shapeErrors = [
    'bad-column-name', 'bad-dimension', 'bad-extension-schema', 'bad-method', 'bad-metric', 'bad-name', 'bad-secondary-name',
    'bad-version', 'dimension-out-of-range', 'lists-out-of-range', 'm-out-of-range', 'missing-dimension', 'missing-primary',
    'missing-version', 'none-index-with-keys', 'primary-not-mapping', 'unknown-column-type', 'unknown-key', 'unknown-top-level-key',
    'url-not-a-string', 'wrong-index-key', 'wrong-type', 'root-not-mapping', 'bad-ef-search', 'bad-iterative-scan',
    'api-roles-not-list', 'api-roles-duplicate', 'api-roles-reserved', 'protect-not-boolean', 'fdw-user-reserved',
  ];
  for (const name of shapeErrors) assert.equal(valid(schema, load('invalid', `${name}.yaml`)), false, name);
});

test('index variants: keys of another method are refused, a missing method means hnsw', () => {
  const doc = (index: unknown) => ({ version: 1, primary: { url: 'postgres://u@h/db' }, collections: { d: { secondary: 's', dimension: 3, index } } });
  assert.ok(valid(schema, doc({ m: 8 })));
  assert.ok(valid(schema, doc(null)));
  assert.ok(valid(schema, doc({ method: 'ivfflat', lists: 5 })));
  assert.equal(valid(schema, doc({ lists: 5 })), false);
  assert.equal(valid(schema, doc({ method: 'ivfflat', m: 5 })), false);
  assert.equal(valid(schema, doc({ method: 'none', ef_construction: 5 })), false);
  // The method alone is the variant with its defaults, as the parser reads it.
  for (const method of ['none', 'hnsw', 'ivfflat']) assert.ok(valid(schema, doc(method)), method);
  assert.equal(valid(schema, doc('nonee')), false);
  assert.equal(valid(schema, doc(5)), false);
});

test('index.build: sizes with a PostgreSQL unit, workers 0–1024, for hnsw and ivfflat only', () => {
  const doc = (index: unknown) => ({ version: 1, primary: { url: 'postgres://u@h/db' }, collections: { d: { secondary: 's', dimension: 3, index } } });
  for (const build of [{ maintenance_work_mem: '4GB', parallel_workers: 4 }, { maintenance_work_mem: '96 MB' }, {}, null]) {
    assert.ok(valid(schema, doc({ method: 'hnsw', build })), JSON.stringify(build));
    assert.ok(valid(schema, doc({ method: 'ivfflat', build })), JSON.stringify(build));
  }
  for (const build of [{ maintenance_work_mem: 4096 }, { maintenance_work_mem: '4gb' }, { maintenance_work_mem: '1.5GB' }, { parallel_workers: 1025 }, { workers: 2 }]) {
    assert.equal(valid(schema, doc({ build })), false, JSON.stringify(build));
  }
  assert.equal(valid(schema, doc({ method: 'none', build: {} })), false, 'method none takes no build');
});

test('column types: canonical names and aliases in any case, nothing else', () => {
  const doc = (type: string) => ({ version: 1, primary: { url: '${URL}' }, collections: { d: { secondary: 's', dimension: 3, columns: { c: type } } } });
  for (const t of ['text', 'TIMESTAMPTZ', 'Double  Precision', 'int8', 'timestamp with time zone']) assert.ok(valid(schema, doc(t)), t);
  for (const t of ['varchar', 'double', 'intx']) assert.equal(valid(schema, doc(t)), t === 'double', t);
});
