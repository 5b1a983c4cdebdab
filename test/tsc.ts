/**
 * Type-checking generated TypeScript in tests: a scratch directory inside the repository (so `kysely`, `pg` and
 * `@supabase/supabase-js` resolve from its node_modules), and `tsc --noEmit --strict` over files in it.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after } from 'node:test';
import { ROOT } from './harness.js';

/** A scratch ES-module directory under .vecscale/, removed when the test file ends. */
export function scratchDir(prefix: string): string {
  mkdirSync(join(ROOT, '.vecscale'), { recursive: true });
  const dir = mkdtempSync(join(ROOT, '.vecscale', `${prefix}-`));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** tsc --noEmit --strict over `files` (relative to `dir`): its exit status and output (empty when clean). */
export function typecheck(dir: string, files: readonly string[]): { status: number | null; output: string } {
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true,
      types: ['node'], typeRoots: [join(ROOT, 'node_modules', '@types')],
    },
    files,
  }));
  const r = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(dir, 'tsconfig.json')], { encoding: 'utf8', cwd: dir });
  return { status: r.status, output: `${r.stdout}${r.stderr}`.trim() };
}
