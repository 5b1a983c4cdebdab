/** init: writes the commented starter topology (templates/topology.yaml), pointed at vecscale's JSON Schema. */
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { VecscaleError } from '../../errors.js';
import type { Output } from '../output.js';

// src/cli/commands/ and dist/cli/commands/ both sit three levels below the package root.
const TEMPLATE = fileURLToPath(new URL('../../../templates/topology.yaml', import.meta.url));
const SCHEMA = fileURLToPath(new URL('../../../templates/topology.schema.json', import.meta.url));
const WORKFLOW = fileURLToPath(new URL('../../../templates/github-actions.yml', import.meta.url));

/** The yaml-language-server modeline; the template carries one (valid where it lies) that init replaces. */
const MODELINE = /^# yaml-language-server: \$schema=.*$/;
const DEFAULT_FILE = 'topology.yaml';

export async function initCommand(file: string, opts: { force?: boolean }, out: Output): Promise<void> {
  const target = resolve(file);
  const ref = schemaRef(dirname(target), SCHEMA);
  const content = withModeline(readTemplate(), ref);
  try {
    // 'wx' fails if the file exists: no window between a check and the write.
    writeFileSync(target, content, { encoding: 'utf8', flag: opts.force ? 'w' : 'wx' });
  } catch (e) {
    throw writeError(file, target, e);
  }

  const vars = envVars(content);
  const arg = file === DEFAULT_FILE ? '' : ` ${shellQuote(file)}`;
  const c = out.color;
  const steps = [
    ['validate', 'checks the file; connects to nothing'],
    ['plan', 'shows what apply would change; changes nothing'],
    ['apply', 'converges the databases (asks first)'],
  ] as const;
  const width = Math.max(...steps.map(([cmd]) => cmd.length));
  if (out.json) out.result({ written: target, schema: ref, env: vars });
  out.info(
    [
      `${c.green('Wrote')} ${file}: a commented starter topology (a primary, two secondaries, one collection).`,
      c.dim(`Editors with the YAML language server check it against ${ref}.`),
      '',
      c.bold('Next steps:'),
      `  1. Edit the hosts, secondaries and collections in ${file}.`,
      `  2. Set the environment variables it reads (passwords stay out of the file):`,
      ...vars.map((v) => `       export ${v}=…`),
      ...steps.map(([cmd, what], i) => `  ${i + 3}. ${c.cyan(`vecscale ${cmd}${arg}`)}${' '.repeat(width - cmd.length)}   ${what}`),
      c.dim(`For CI (plan on pull requests, apply on main): ${schemaRef(process.cwd(), WORKFLOW)}`),
    ].join('\n'),
  );
}

function readTemplate(): string {
  try {
    return readFileSync(TEMPLATE, 'utf8');
  } catch (e) {
    throw new VecscaleError('internal', `cannot read vecscale's starter topology ${TEMPLATE}: ${e instanceof Error ? e.message : String(e)}`, {
      hint: 'the vecscale installation is incomplete: reinstall it',
    });
  }
}

/** Replaces the template's modeline with one for `ref`, or puts one first if the template has none. */
export function withModeline(template: string, ref: string): string {
  const line = `# yaml-language-server: $schema=${ref}`;
  const [first = '', ...rest] = template.split('\n');
  return MODELINE.test(first) ? [line, ...rest].join('\n') : `${line}\n${template}`;
}

/**
 * How the written file refers to the schema: relative to its folder when both sit in one project (the nearest
 * folder above the file with a package.json or .git — e.g. ./node_modules/vecscale/templates/topology.schema.json,
 * which works in every clone once `npm ci` has run), else the schema's absolute path (a global install).
 */
export function schemaRef(fromDir: string, schema: string): string {
  const root = projectRoot(fromDir);
  if (root !== undefined && isInside(root, schema)) {
    const rel = relative(fromDir, schema).split(sep).join('/');
    return rel.startsWith('../') ? rel : `./${rel}`;
  }
  return schema;
}

function projectRoot(dir: string): string | undefined {
  for (let d = dir; ; d = dirname(d)) {
    if (existsSync(join(d, 'package.json')) || existsSync(join(d, '.git'))) return d;
    if (dirname(d) === d) return undefined;
  }
}

const isInside = (dir: string, path: string): boolean => {
  const rel = relative(dir, path);
  return rel !== '' && !rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel);
};

/** The ${NAME}s the written file reads (in values, not in comments), in order of first use. */
function envVars(content: string): string[] {
  const names = new Set<string>();
  const walk = (v: unknown): void => {
    if (typeof v === 'string') {
      for (const m of v.matchAll(/(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}/g)) if (m[1] !== undefined) names.add(m[1]);
    } else if (Array.isArray(v)) v.forEach(walk);
    else if (typeof v === 'object' && v !== null) Object.values(v).forEach(walk);
  };
  walk(parse(content));
  return [...names];
}

function writeError(file: string, target: string, e: unknown): VecscaleError {
  const code = typeof e === 'object' && e !== null && 'code' in e ? e.code : undefined;
  switch (code) {
    case 'EEXIST':
      if (isDirectory(target)) return new VecscaleError('config', `cannot write ${file}: it is a directory`);
      return new VecscaleError('config', `${file} exists; pass --force to overwrite it`);
    case 'ENOENT':
      return new VecscaleError('config', `cannot write ${file}: the folder ${dirname(target)} does not exist`, {
        hint: 'create the folder first (init does not create folders)',
      });
    case 'EISDIR':
      return new VecscaleError('config', `cannot write ${file}: it is a directory`);
    case 'EACCES':
    case 'EPERM':
      return new VecscaleError('config', `cannot write ${file}: permission denied`);
    default:
      return new VecscaleError('config', `cannot write ${file}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

const isDirectory = (path: string): boolean => {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
};

/** A path as it can be pasted into a POSIX shell. */
const shellQuote = (s: string): string => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
