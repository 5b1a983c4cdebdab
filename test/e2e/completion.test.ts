/** `vecscale completion`: scripts made from the command tree, loaded into a real bash and asked for completions. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { vecscale } from '../cli.js';

const dir = mkdtempSync(join(tmpdir(), 'vecscale-completion-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('bash: subcommands, their options, a nested command, the shells; files for the rest', async () => {
  const r = await vecscale(['completion', 'bash']);
  assert.equal(r.code, 0, r.stderr);
  const script = join(dir, 'vecscale.bash');
  writeFileSync(script, r.stdout);
  const complete = (...words: string[]) =>
    execFileSync('bash', ['-c', `source ${script}; COMP_WORDS=(vecscale ${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length}; _vecscale; printf '%s\\n' "\${COMPREPLY[@]}"`], { encoding: 'utf8', cwd: dir })
      .trim().split('\n').filter(Boolean).sort();
  assert.deepEqual(complete('sa'), ['sandbox']);
  assert.deepEqual(complete('sandbox', ''), ['down', 'status', 'up']);
  assert.deepEqual(complete('sandbox', '--'), ['--help']);
  assert.deepEqual(complete('sandbox', 'up', '--r'), ['--replicas']);
  assert.deepEqual(complete('plan', '--de'), ['--detailed-exitcode']);
  assert.deepEqual(complete('rec'), ['recall']);
  assert.deepEqual(complete('recall', '--ef'), ['--ef-search']);
  assert.deepEqual(complete('recall', '--min'), ['--min-recall']);
  assert.deepEqual(complete('completion', ''), ['bash', 'fish', 'zsh']);
  writeFileSync(join(dir, 'topology.yaml'), 'version: 1\n');
  writeFileSync(join(dir, 'my topo.yaml'), 'version: 1\n');
  assert.deepEqual(complete('plan', 'topo'), ['topology.yaml']);
  assert.deepEqual(complete('plan', 'my'), ['my topo.yaml'], 'a file name with a space stays whole');
  // A subcommand's name later on the line is an argument, not a command: query status <TAB> offers files.
  assert.deepEqual(complete('query', 'status', 'topo'), ['topology.yaml']);
});

test('zsh and fish scripts are printed; an unknown shell is refused with the choices', async () => {
  assert.match((await vecscale(['completion', 'zsh'])).stdout, /^# vecscale completion for zsh: source <\(vecscale completion zsh\)/);
  const fish = await vecscale(['completion', 'fish']);
  assert.match(fish.stdout, /complete -c vecscale -n '__fish_seen_subcommand_from sandbox' -a up /);
  const bad = await vecscale(['completion', 'powershell']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /Allowed choices are bash, zsh, fish/);
});
