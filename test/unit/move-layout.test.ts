import assert from 'node:assert/strict';
import { test } from 'node:test';
import { flowsOf, retiredParts, specWithLayout } from '../../src/move/layout.js';
import { partsOf } from '../../src/model/placement.js';
import { belongsSql, remainderSql } from '../../src/move/sql.js';
import { collectionTag, flowName } from '../../src/move/names.js';
import { collection, sharded } from '../topologies.js';

const single = (secondary: string) => partsOf(collection('docs', secondary));
const shards = (list: string[], partitions: number) => partsOf(sharded('docs', list, partitions));
const describe = (flows: ReturnType<typeof flowsOf>) =>
  flows.map((f) => `${f.source.secondary}/${f.source.table} -> ${f.target.secondary}/${f.target.table} ${f.method}${f.filter ? ` ${f.filter.remainder}of${f.filter.modulus}` : ''}`);

test('a move to another pod is one replication flow of the whole table, under its own name', () => {
  assert.deepEqual(describe(flowsOf(single('a'), single('b'))), ['a/docs -> b/docs replication']);
  assert.deepEqual(retiredParts(single('a'), single('b')).map((p) => p.secondary), ['a']);
});

test('adding a shard moves only the partitions the round-robin rule reassigns', () => {
  assert.deepEqual(describe(flowsOf(shards(['a', 'b'], 4), shards(['a', 'b', 'c'], 4))), [
    'a/docs_p2of4 -> c/docs_p2of4 replication',
    'b/docs_p3of4 -> a/docs_p3of4 replication',
  ]);
});

test('doubling partitions splits each inside its database, by the hash rule', () => {
  assert.deepEqual(describe(flowsOf(shards(['a', 'b'], 2), shards(['a', 'b'], 4))), [
    'a/docs_p0of2 -> a/docs_p0of4 trigger 0of4',
    'b/docs_p1of2 -> b/docs_p1of4 trigger 1of4',
    'a/docs_p0of2 -> a/docs_p2of4 trigger 2of4',
    'b/docs_p1of2 -> b/docs_p3of4 trigger 3of4',
  ]);
});

test('halving partitions merges pairs; single ↔ sharded splits and merges the whole table', () => {
  assert.deepEqual(describe(flowsOf(shards(['a', 'b'], 4), shards(['a', 'b'], 2))), [
    'a/docs_p0of4 -> a/docs_p0of2 trigger',
    'a/docs_p2of4 -> a/docs_p0of2 trigger',
    'b/docs_p1of4 -> b/docs_p1of2 trigger',
    'b/docs_p3of4 -> b/docs_p1of2 trigger',
  ]);
  assert.deepEqual(describe(flowsOf(single('a'), shards(['a', 'b'], 2))), ['a/docs -> a/docs_p0of2 trigger 0of2', 'a/docs -> b/docs_p1of2 replication 1of2']);
  assert.deepEqual(describe(flowsOf(shards(['a', 'b'], 2), single('b'))), ['a/docs_p0of2 -> b/docs replication', 'b/docs_p1of2 -> b/docs trigger']);
});

test('an unchanged layout has no flows', () => {
  assert.deepEqual(flowsOf(shards(['a', 'b'], 4), shards(['a', 'b'], 4)), []);
});

test('a live layout reads back as a spec when it is round-robin, and not otherwise', () => {
  const c = collection('docs', 'a');
  const s = specWithLayout(c, shards(['b', 'a'], 4));
  assert.deepEqual(s?.shards !== undefined ? [s.shards, s.partitions] : undefined, [['b', 'a'], 4]);
  const odd = shards(['a', 'b'], 4).map((p, i) => (i === 3 ? { ...p, secondary: 'b' } : i === 2 ? { ...p, secondary: 'b' } : p));
  assert.equal(specWithLayout(c, odd), undefined);
});

test('hash predicates are built from pg_catalog only, with typed constants', () => {
  assert.equal(remainderSql('id', 1), '0::pg_catalog.int8');
  const r = remainderSql('id', 4);
  assert.match(r, /^\(\(\(pg_catalog\.hashtextextended\(id::pg_catalog\.text, 8816678312871386365::pg_catalog\.int8\)/);
  assert.match(r, /OPERATOR\(pg_catalog\.\+\) 3::pg_catalog\.int8/); // 0x49a0f4dd15e5a8e3 & 3
  assert.equal(belongsSql('id', undefined), 'true');
});

test('replication object names: one prefix, the collection tag first, short enough for slot names', () => {
  const name = flowName('a'.repeat(53), 'pod_x', 'pod_y');
  assert.ok(name.startsWith(collectionTag('a'.repeat(53))));
  assert.match(name, /^vecscale_mv_[0-9a-f]{10}_[0-9a-f]{10}$/);
  assert.notEqual(flowName('docs', 'a', 'b'), flowName('docs', 'b', 'a'));
});
