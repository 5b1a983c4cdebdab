/** plan, apply, destroy, check and validate: prepare (file + flags) → library call → render. */
import { chmodSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { apply, type ApplyResult, planAndSave } from '../../api.js';
import { adviceLines, check } from '../../check.js';
import { formatProblem, loadTopology } from '../../config/index.js';
import { readBoundedText } from '../../config/read-file.js';
import type { ConfigProblem, Topology } from '../../config/types.js';
import { VecscaleError } from '../../errors.js';
import { SAVED_PLAN_FORMAT, type SavedPlan } from '../../plan/saved.js';
import { hasChanges, type Plan } from '../../plan/types.js';
import { planToJson, renderPlan } from '../../render/plan.js';
import { createProgressRenderer, progressMode } from '../../render/progress.js';
import { ExitCode, ExitWith } from '../exit.js';
import { escapeControls, type Output, registerSecrets, streamEvents } from '../output.js';

export interface CommonOptions {
  readonly connectTimeout?: number;
  /** --statement-timeout, in ms (0: none). */
  readonly statementTimeout?: number;
  /** Literal passwords in the file are errors, not warnings. */
  readonly strict?: boolean;
}

export interface SafetyOptions {
  /** Collections whose destructive steps may run, or 'all' (from --allow-destructive, repeatable, comma-separated). */
  readonly allowDestructive?: readonly string[];
  /** Set new generated wrapper passwords. */
  readonly rotateFdwPasswords?: boolean;
}

const allowOf = (o: SafetyOptions): readonly string[] | 'all' | undefined =>
  o.allowDestructive === undefined ? undefined : o.allowDestructive.includes('all') ? 'all' : o.allowDestructive;

// formatProblem labels warnings itself; errors get their label here.
export const problemLine = (out: Output, p: ConfigProblem): string =>
  p.severity === 'error' ? `${out.color.red('error:')} ${formatProblem(p)}` : out.color.yellow(formatProblem(p));

/** Loads and validates the file; problems print located and end with exit 6 before any connection. */
export function loadOrExit(file: string, out: Output, opts: { strict?: boolean } = {}): Topology {
  const result = loadTopology(file, process.env, { strict: opts.strict ?? false });
  if (!result.ok) {
    for (const p of result.problems) out.info(problemLine(out, p));
    if (out.json) out.result({ valid: false, problems: result.problems });
    throw new ExitWith(ExitCode.config);
  }
  registerSecrets(result.topology.secrets);
  for (const w of result.warnings) out.info(problemLine(out, w));
  return result.topology;
}

const runOpts = (o: CommonOptions) => ({
  connectTimeoutMs: o.connectTimeout === undefined ? undefined : o.connectTimeout * 1000,
  ...(o.statementTimeout === undefined ? {} : { statementTimeoutMs: o.statementTimeout }),
});

export async function validateCommand(file: string, opts: { strict?: boolean }, out: Output): Promise<void> {
  const t = loadOrExit(file, out, opts);
  if (out.json) out.result({ valid: true, secondaries: t.secondaries.length, collections: t.collections.length });
  else out.info(`${file} is valid: ${t.secondaries.length} secondaries, ${t.collections.length} collections.`);
}

/** Writes a file readable by its owner only, atomically (a reader never sees half a plan). */
function writePrivate(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

export async function planCommand(
  file: string,
  opts: CommonOptions & SafetyOptions & { detailedExitcode?: boolean; out?: string },
  out: Output,
): Promise<void> {
  const topology = loadOrExit(file, out, opts);
  const outFile = opts.out === undefined ? undefined : resolve(opts.out);
  const { plan: p, saved } = await planAndSave(topology, {
    ...runOpts(opts),
    allowDestructive: allowOf(opts),
    rotateFdwPasswords: opts.rotateFdwPasswords ?? false,
    ...(outFile ? { save: { topologyFile: relative(dirname(outFile), topology.file) } } : {}),
  });
  out.info(renderPlan(p, out.color));
  if (outFile && saved) {
    try {
      writePrivate(outFile, `${JSON.stringify(saved, null, 2)}\n`);
    } catch (e) {
      throw new VecscaleError('config', `cannot write the plan to ${opts.out}: ${(e as Error).message}`);
    }
    out.info(`Saved the plan to ${opts.out} (mode 0600). Apply exactly this plan with: vecscale apply ${opts.out}`);
  }
  if (out.json) out.result(planToJson(p));
  if (p.blockers.length > 0) throw new ExitWith(ExitCode.blocked);
  if (opts.detailedExitcode && hasChanges(p)) throw new ExitWith(ExitCode.changesPending);
}

async function confirm(out: Output, p: Plan, verb: string): Promise<boolean> {
  if (!out.interactive) {
    throw new VecscaleError('approval', `${verb} needs approval: run it on a terminal to answer the prompt, or pass --auto-approve`, {
      meta: { summary: p.summary },
    });
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`\n${verb === 'destroy' ? 'Destroy' : 'Apply'} these changes? Only 'yes' is accepted: `);
    return answer.trim() === 'yes';
  } finally {
    rl.close();
  }
}

/** A saved plan of thousands of collections is a few MB: anything near this is not one. */
const MAX_SAVED_PLAN_BYTES = 256 * 1024 * 1024;

/** A saved plan file (`plan --out`), or undefined when `file` is a topology. */
function readSavedPlan(file: string): SavedPlan | undefined {
  let text: string;
  try {
    text = readBoundedText(file, MAX_SAVED_PLAN_BYTES);
  } catch {
    return undefined; // loadOrExit reports an unreadable file (/dev/zero, a FIFO, …) as the topology's
  }
  if (!text.trimStart().startsWith('{')) return undefined;
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new VecscaleError('config', `${file}: not a saved plan (invalid JSON: ${(e as Error).message})`);
  }
  const d = doc as Partial<SavedPlan>;
  if (d.vecscalePlan !== SAVED_PLAN_FORMAT || typeof d.topologyFile !== 'string' || typeof d.topologyHash !== 'string' || !d.plan || !d.fingerprints || !d.options) {
    throw new VecscaleError('config', `${file}: not a saved plan of this vecscale version (make it again with vecscale plan --out ${file})`);
  }
  return d as SavedPlan;
}

interface ApplyCliOptions extends CommonOptions, SafetyOptions {
  readonly autoApprove?: boolean;
  readonly lockTimeout?: number;
}

async function converge(file: string, opts: ApplyCliOptions, out: Output, destroy: boolean): Promise<void> {
  // --json: stdout is a stream of events, one JSON object a line (plan, database-started, step-started,
  // step-finished, progress, warning, then summary — or error), for CI systems to render as they come.
  if (out.json) streamEvents();
  const saved = destroy ? undefined : readSavedPlan(file);
  if (saved && (opts.allowDestructive || opts.rotateFdwPasswords)) {
    throw new VecscaleError('config', '--allow-destructive and --rotate-fdw-passwords belong to `vecscale plan --out`: a saved plan applies with the options it was made with');
  }
  const topologyFile = saved ? resolve(dirname(resolve(file)), saved.topologyFile) : file;
  const topology = loadOrExit(topologyFile, out, opts);
  const verb = destroy ? 'destroy' : 'apply';
  const waiting = new Set<string>();
  // Long steps' progress on stderr: spinners on a terminal, heartbeat lines off one, JSON lines with --json.
  const progress = createProgressRenderer({
    mode: progressMode({ json: out.json, isTTY: Boolean(process.stderr.isTTY), color: out.color.level > 0, env: process.env }),
    stream: process.stderr,
    escape: escapeControls,
  });
  // Text printed while spinners are drawn goes above them.
  const info = (text: string) => progress.interrupt(() => out.info(text));
  const result: ApplyResult = await apply(topology, {
    ...runOpts(opts),
    allowDestructive: allowOf(opts),
    rotateFdwPasswords: opts.rotateFdwPasswords ?? false,
    destroy,
    ...(saved ? { saved } : {}),
    lockTimeoutMs: (opts.lockTimeout ?? 30) * 1000,
    onLockWait: (db) => {
      if (waiting.has(db)) return;
      waiting.add(db);
      info(`Waiting for another vecscale run to release its lock on ${db} (up to ${opts.lockTimeout ?? 30} s)…`);
    },
    onPlan: (p) => {
      if (saved) out.info(`Applying the saved plan ${file}: the live databases and the topology still match it.`);
      out.info(renderPlan(p, out.color));
      if (out.json) out.result({ type: 'plan', plan: planToJson(p) });
    },
    approve: async (p) => opts.autoApprove === true || (await confirm(out, p, verb)),
    events: {
      onDatabaseStart: (db) => {
        info(out.color.bold(`Applying to ${db.role === 'primary' ? 'the primary' : `secondary ${db.database}`}…`));
        if (out.json) out.result({ type: 'database-started', database: db.database, role: db.role, steps: db.steps.length });
      },
      onStep: (step) => {
        if (out.json) out.result({ type: 'step-started', database: step.database, step: step.id, object: step.object, action: step.action, risk: step.risk });
      },
      onStepDone: (step, ms) => {
        if (out.json) out.result({ type: 'step-finished', database: step.database, step: step.id, ms });
      },
      onWarning: (db, msg) => {
        info(`${out.color.yellow('warning')}: ${db}: ${msg}`);
        if (out.json) out.result({ type: 'warning', database: db, message: msg });
      },
      onProgress: (e) => {
        progress.sink(e);
        if (out.json) out.result({ type: 'progress', event: e });
      },
    },
  }).finally(() => progress.close());
  if (out.json) {
    out.result({
      type: 'summary',
      status: result.status,
      committed: result.status === 'applied' ? result.committed : [],
      ...(result.status === 'applied' && result.moves ? { moves: result.moves } : {}),
      summary: result.plan.summary,
    });
  }
  switch (result.status) {
    case 'blocked':
      out.info(out.color.red('Nothing applied: the plan has blocked steps.'));
      throw new ExitWith(ExitCode.blocked);
    case 'declined':
      out.info(`${destroy ? 'Destroy' : 'Apply'} cancelled. Nothing applied.`);
      throw new ExitWith(ExitCode.approval);
    case 'no_changes':
      return;
    case 'applied': {
      const s = result.plan.summary;
      out.info(out.color.green(`${destroy ? 'Destroy' : 'Apply'} complete: ${s.create} created, ${s.change} changed, ${s.replace} replaced, ${s.drop} dropped.`));
      for (const m of result.moves ?? []) {
        if (m.kind !== 'move') continue;
        const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
        out.info(`Moved ${m.collection}: ${m.rows} rows verified; copy ${secs(m.copyMs)}, index ${secs(m.indexMs)}, write pause ${m.pauseMs} ms (cutover attempt ${m.cutoverAttempts}), ${secs(m.totalMs)} in all.`);
      }
    }
  }
}

export const applyCommand = (file: string, opts: ApplyCliOptions, out: Output): Promise<void> => converge(file, opts, out, false);
export const destroyCommand = (file: string, opts: ApplyCliOptions, out: Output): Promise<void> => converge(file, opts, out, true);

export async function checkCommand(file: string, opts: CommonOptions, out: Output): Promise<void> {
  const topology = loadOrExit(file, out, opts);
  const r = await check(topology, runOpts(opts));
  if (out.json) out.result(r);
  for (const p of r.partitions) {
    const where = `${p.collection}: partition ${p.partition} on ${p.secondary}`;
    if (p.misplaced === 0) {
      out.info(`${out.color.green('✓')} ${where}: every row belongs here`);
      continue;
    }
    out.info(`${out.color.red('✗')} ${where}: ${p.misplaced} row${p.misplaced === 1 ? '' : 's'} on the wrong partition (written straight to the shard?)`);
    for (const row of p.rows) for (const line of adviceLines(row)) out.info(`    ${line}`);
    if (p.misplaced > p.rows.length) out.info(`    … and ${p.misplaced - p.rows.length} more`);
  }
  if (r.partitions.length === 0) out.info('No sharded collections: nothing to check.');
  if (!r.healthy) {
    out.info('Rows on the wrong partition are invisible to reads by id through the primary. Each one above says whether ' +
      'its partition holds a row with the same id and gives the SQL to run on the primary; where the two copies differ, ' +
      'choose which to keep (vecs tables carry no timestamp).');
    throw new ExitWith(ExitCode.changesPending);
  }
}
