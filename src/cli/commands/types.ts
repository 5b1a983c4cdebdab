/**
 * `vecscale types [file] [--out path] [--flavor kysely|supabase|both]`: TypeScript types for the primary's API, from
 * the topology alone. No connection, and no secrets needed: a variable the environment does not set (a password, a
 * host, a whole URL) or a secret file stands for a placeholder — the types depend on no URL or password.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { loadTopology } from '../../config/index.js';
import { readBoundedText } from '../../config/read-file.js';
import { VecscaleError } from '../../errors.js';
import { FLAVORS, type Flavor, generateTypes } from '../../types/generate.js';
import { ExitCode, ExitWith } from '../exit.js';
import type { Output } from '../output.js';
import { problemLine } from './topology.js';

export interface TypesFlags {
  readonly out?: string;
  readonly flavor?: string;
  /** --check: compare with --out instead of writing it; exit 2 when it differs. */
  readonly check?: boolean;
}

const PLACEHOLDER = 'vecscale-types-placeholder';

export async function typesCommand(file: string, opts: TypesFlags, out: Output): Promise<void> {
  const flavor = (opts.flavor ?? 'both') as Flavor;
  if (!FLAVORS.includes(flavor)) throw new VecscaleError('config', `--flavor must be kysely, supabase or both (got ${JSON.stringify(opts.flavor)})`);
  // Only the collections matter here: unset variables (and secret files) stand for placeholders.
  const result = loadTopology(file, process.env, { placeholders: true, readSecretFile: () => PLACEHOLDER });
  if (!result.ok) {
    for (const p of result.problems) out.info(problemLine(out, p));
    if (out.json) out.result({ valid: false, problems: result.problems });
    throw new ExitWith(ExitCode.config);
  }
  const text = generateTypes(result.topology, flavor);
  if (opts.out === undefined) {
    if (opts.check) throw new VecscaleError('config', '--check needs --out <file> to compare with');
    out.print(text.endsWith('\n') ? text.slice(0, -1) : text);
    return;
  }
  const target = resolve(opts.out);
  if (opts.check) {
    let current: string | undefined;
    try {
      current = readBoundedText(target, 64 * 1024 * 1024); // not a regular file (/dev/zero): it differs
    } catch {
      current = undefined;
    }
    if (current === text) {
      out.info(`${opts.out} is up to date.`);
      return;
    }
    out.info(`${opts.out} ${current === undefined ? 'does not exist' : 'differs from the topology'}: run vecscale types ${file} --out ${opts.out}`);
    throw new ExitWith(ExitCode.changesPending);
  }
  try {
    mkdirSync(dirname(target), { recursive: true });
    const tmp = `${target}.${process.pid}.tmp`;
    writeFileSync(tmp, text);
    renameSync(tmp, target);
  } catch (e) {
    throw new VecscaleError('config', `cannot write ${opts.out}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  out.info(`Wrote ${opts.out} (${result.topology.collections.length} collection${result.topology.collections.length === 1 ? '' : 's'}, ${flavor}).`);
}
