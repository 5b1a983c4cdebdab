/** plan, apply and validate: prepare (file + flags) → library call → render. */
import { createInterface } from 'node:readline/promises';
import { apply, plan } from '../../api.js';
import { check } from '../../check.js';
import { formatProblem, loadTopology } from '../../config/index.js';
import type { ConfigProblem, Topology } from '../../config/types.js';
import { VecscaleError } from '../../errors.js';
import { hasChanges, type Plan } from '../../plan/types.js';
import { planToJson, renderPlan } from '../../render/plan.js';
import { ExitCode, ExitWith } from '../exit.js';
import { type Output, registerSecrets } from '../output.js';

export interface CommonOptions {
  readonly connectTimeout?: number;
}

// formatProblem labels warnings itself; errors get their label here.
const problemLine = (out: Output, p: ConfigProblem): string =>
  p.severity === 'error' ? `${out.color.red('error:')} ${formatProblem(p)}` : out.color.yellow(formatProblem(p));

/** Loads and validates the file; problems print located and end with exit 6 before any connection. */
export function loadOrExit(file: string, out: Output): Topology {
  const result = loadTopology(file);
  if (!result.ok) {
    for (const p of result.problems) out.info(problemLine(out, p));
    if (out.json) out.result({ valid: false, problems: result.problems });
    throw new ExitWith(ExitCode.config);
  }
  registerSecrets(result.topology.secrets);
  for (const w of result.warnings) out.info(problemLine(out, w));
  return result.topology;
}

const runOpts = (o: CommonOptions) => ({ connectTimeoutMs: o.connectTimeout === undefined ? undefined : o.connectTimeout * 1000 });

export async function validateCommand(file: string, _opts: unknown, out: Output): Promise<void> {
  const t = loadOrExit(file, out);
  if (out.json) out.result({ valid: true, secondaries: t.secondaries.length, collections: t.collections.length });
  else out.info(`${file} is valid: ${t.secondaries.length} secondaries, ${t.collections.length} collections.`);
}

export async function planCommand(file: string, opts: CommonOptions & { detailedExitcode?: boolean }, out: Output): Promise<void> {
  const topology = loadOrExit(file, out);
  const p = await plan(topology, runOpts(opts));
  out.info(renderPlan(p, out.color));
  if (out.json) out.result(planToJson(p));
  if (p.blockers.length > 0) throw new ExitWith(ExitCode.blocked);
  if (opts.detailedExitcode && hasChanges(p)) throw new ExitWith(ExitCode.changesPending);
}

async function confirm(out: Output, p: Plan): Promise<boolean> {
  if (!out.interactive) {
    throw new VecscaleError('approval', 'apply needs approval: run it on a terminal to answer the prompt, or pass --auto-approve', {
      meta: { summary: p.summary },
    });
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`\nApply these changes? Only 'yes' is accepted: `);
    return answer.trim() === 'yes';
  } finally {
    rl.close();
  }
}

export async function applyCommand(file: string, opts: CommonOptions & { autoApprove?: boolean }, out: Output): Promise<void> {
  const topology = loadOrExit(file, out);
  const result = await apply(topology, {
    ...runOpts(opts),
    onPlan: (p) => out.info(renderPlan(p, out.color)),
    approve: async (p) => opts.autoApprove === true || (await confirm(out, p)),
    events: {
      onDatabaseStart: (db) => out.info(out.color.bold(`Applying to ${db.role === 'primary' ? 'the primary' : `secondary ${db.database}`}…`)),
      onWarning: (db, msg) => out.info(`${out.color.yellow('warning')}: ${db}: ${msg}`),
    },
  });
  if (out.json) {
    out.result({ status: result.status, committed: result.status === 'applied' ? result.committed : [], plan: planToJson(result.plan) });
  }
  switch (result.status) {
    case 'blocked':
      out.info(out.color.red('Nothing applied: the plan has blocked steps.'));
      throw new ExitWith(ExitCode.blocked);
    case 'declined':
      out.info('Apply cancelled. Nothing applied.');
      throw new ExitWith(ExitCode.approval);
    case 'no_changes':
      return;
    case 'applied': {
      const s = result.plan.summary;
      out.info(out.color.green(`Apply complete: ${s.create} created, ${s.change} changed, ${s.replace} replaced, ${s.drop} dropped.`));
    }
  }
}

export async function checkCommand(file: string, opts: CommonOptions, out: Output): Promise<void> {
  const topology = loadOrExit(file, out);
  const r = await check(topology, runOpts(opts));
  if (out.json) out.result(r);
  for (const p of r.partitions) {
    const where = `${p.collection}: partition ${p.partition} on ${p.secondary}`;
    if (p.misplaced === 0) {
      out.info(`${out.color.green('✓')} ${where}: every row belongs here`);
      continue;
    }
    out.info(`${out.color.red('✗')} ${where}: ${p.misplaced} row${p.misplaced === 1 ? '' : 's'} on the wrong partition (written straight to the shard?)`);
    for (const row of p.rows) out.info(`    id ${JSON.stringify(row.id)} belongs to ${row.belongs}`);
    if (p.misplaced > p.rows.length) out.info(`    … and ${p.misplaced - p.rows.length} more`);
  }
  if (r.partitions.length === 0) out.info('No sharded collections: nothing to check.');
  if (!r.healthy) {
    out.info('Rows on the wrong partition are invisible to reads by id through the primary. Move each to its partition ' +
      '(delete it on the shard, then insert or upsert it through the primary).');
    throw new ExitWith(ExitCode.changesPending);
  }
}
