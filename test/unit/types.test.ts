/**
 * `vecscale types`: the generated file is deterministic, and it type-checks real programs against the real kysely
 * and @supabase/supabase-js packages (tsc --noEmit --strict), while misuse (fixtures/types/misuse.ts, every line
 * under @ts-expect-error) does not.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadTopology } from '../../src/config/index.js';
import { generateTypes } from '../../src/types/generate.js';
import { ROOT } from '../harness.js';
import { scratchDir, typecheck } from '../tsc.js';

const fixtures = join(ROOT, 'fixtures', 'types');
const env = { PRIMARY_PASSWORD: 'x', POD_PASSWORD: 'y' };
const topology = () => {
  const r = loadTopology(join(fixtures, 'topology.yaml'), env);
  if (!r.ok) throw new Error(r.problems.map((p) => p.message).join('\n'));
  return r.topology;
};

const dir = scratchDir('types-test');
const tsc = (files: string[]) => typecheck(dir, files);

test('the same topology gives the same bytes; each flavour has its own part', () => {
  const a = generateTypes(topology(), 'both');
  assert.equal(generateTypes(topology(), 'both'), a);
  assert.match(a, /export interface VecscaleDB \{\n {2}docs: DocsTable;\n {2}images: ImagesTable;\n\}/);
  assert.match(a, /export type Database = \{/);
  assert.doesNotMatch(generateTypes(topology(), 'kysely'), /export type Database/);
  assert.doesNotMatch(generateTypes(topology(), 'supabase'), /export interface VecscaleDB/);
  // Extracted columns: nullable on read, never written.
  assert.match(a, /url: ColumnType<string \| null, never, never>;/);
  assert.match(a, /published: ColumnType<Date \| null, never, never>;/);
  assert.match(a, /big: ColumnType<string \| null, never, never>;/);
});

test('the generated file compiles with tsc --strict, and so does a program using it with kysely and supabase-js', () => {
  writeFileSync(join(dir, 'vecscale.ts'), generateTypes(topology(), 'both'));
  copyFileSync(join(fixtures, 'app.ts'), join(dir, 'app.ts'));
  const r = tsc(['vecscale.ts', 'app.ts']);
  assert.equal(r.output, '');
  assert.equal(r.status, 0);
});

test('misuse does not type-check: a wrong column, a wrong RPC argument, an unknown filter operator (every @ts-expect-error is used)', () => {
  writeFileSync(join(dir, 'vecscale.ts'), generateTypes(topology(), 'both'));
  copyFileSync(join(fixtures, 'misuse.ts'), join(dir, 'misuse.ts'));
  const r = tsc(['vecscale.ts', 'misuse.ts']);
  assert.equal(r.output, '', 'an @ts-expect-error line type-checked (TS2578 names it)');
  assert.equal(r.status, 0);
  // And without the directives, each of those lines is an error.
  const stripped = readFileSync(join(fixtures, 'misuse.ts'), 'utf8').replace(/\/\/ @ts-expect-error.*\n/g, '');
  writeFileSync(join(dir, 'misuse.ts'), stripped);
  const bare = tsc(['vecscale.ts', 'misuse.ts']);
  assert.notEqual(bare.status, 0);
  const expected = (readFileSync(join(fixtures, 'misuse.ts'), 'utf8').match(/^ *\/\/ @ts-expect-error/gm) ?? []).length;
  const lines = new Set([...bare.output.matchAll(/misuse\.ts\((\d+),/g)].map((m) => m[1]));
  assert.equal(lines.size, expected, bare.output);
});

test('parseVector and formatVector: the text pg and supabase-js return, and back', async () => {
  writeFileSync(join(dir, 'vecscale.ts'), generateTypes(topology(), 'kysely'));
  const js = execFileSync(process.execPath, ['--import', 'tsx', '-e', `
    const m = await import(${JSON.stringify(join(dir, 'vecscale.ts'))});
    const out = [m.parseVector('[1,2.5,-3e-05]'), m.parseVector(' [ ] '), m.formatVector([1, 2.5, -0.00003])];
    for (const bad of ['1,2', '[1,,2]', '[a]', '[1,2']) { try { m.parseVector(bad); out.push('accepted ' + bad); } catch { out.push('refused'); } }
    for (const bad of [[NaN], [Infinity], ['1']]) { try { m.formatVector(bad); out.push('accepted'); } catch { out.push('refused'); } }
    console.log(JSON.stringify(out));
  `], { encoding: 'utf8', cwd: ROOT });
  assert.deepEqual(JSON.parse(js), [[1, 2.5, -0.00003], [], '[1,2.5,-0.00003]', 'refused', 'refused', 'refused', 'refused', 'refused', 'refused', 'refused']);
});
