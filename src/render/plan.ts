/**
 * Plan rendering. Deterministic: the same plan renders byte-identically (no timestamps, no map-order surprises).
 * Secrets never reach here as values; placeholders render as '<redacted>'.
 */
import type { ChalkInstance } from 'chalk';
import { redactSecrets } from '../sql/quote.js';
import type { Action, MovePart, MovePlan, Plan, PlanStep } from '../plan/types.js';
import { hasChanges, PLAN_FORMAT_VERSION } from '../plan/types.js';

export const SYMBOL: Readonly<Record<Action, string>> = {
  create: '+',
  alter: '~',
  adopt: '~',
  replace: '-/+',
  drop: '-',
};

function paintSymbol(c: ChalkInstance, action: Action): string {
  const s = SYMBOL[action].padStart(3);
  return action === 'create' ? c.green(s) : action === 'drop' ? c.red(s) : action === 'replace' ? c.yellow(s) : c.cyan(s);
}

/** Function bodies (between vecscale's dollar quotes) shortened for people; `--json` carries them whole. */
const elideBodies = (sql: string): string =>
  sql.replace(/\$vecscale\$([\s\S]*?)\$vecscale\$/g, (_, body: string) => `$vecscale$ … ${body.trim().split('\n').length} lines (--json shows them) $vecscale$`);

function renderStep(c: ChalkInstance, step: PlanStep): string[] {
  const tags = [step.risk !== 'safe' ? step.risk : '', step.transactional ? '' : 'outside the transaction']
    .filter(Boolean)
    .map((t) => (t === 'destructive' ? c.red.bold(`[${t}]`) : c.yellow(`[${t}]`)));
  const lines = [`${paintSymbol(c, step.action)} ${c.bold(step.object)}${tags.length ? ` ${tags.join(' ')}` : ''}`];
  lines.push(`      ${c.dim(step.reason)}`);
  for (const sql of [...step.drop, ...step.sql]) lines.push(`      ${c.dim(`${elideBodies(redactSecrets(sql))};`)}`);
  return lines;
}

export function summaryLine(plan: Plan): string {
  const s = plan.summary;
  const moves = plan.moves?.filter((m) => m.kind === 'move').length ?? 0;
  const other = (plan.moves?.length ?? 0) - moves;
  const extra = [moves ? `${moves} to move` : '', other ? `${other} move${other === 1 ? '' : 's'} to finish` : ''].filter(Boolean).join(', ');
  return `Plan: ${s.create} to create, ${s.change} to change, ${s.replace} to replace, ${s.drop} to drop${extra ? `, ${extra}` : ''}.`;
}

const partName = (p: MovePart): string => `${p.secondary}: vecs.${p.table}`;

/** A move: what goes where, how, its steps with their risk, and the write pause. */
function renderMove(c: ChalkInstance, m: MovePlan): string[] {
  const head =
    m.kind === 'move'
      ? `${c.cyan('>')} ${c.bold(`move collection ${m.collection}`)} ${c.yellow('[online]')}`
      : m.kind === 'finish'
        ? `${c.cyan('>')} ${c.bold(`finish the move of ${m.collection}`)} ${c.dim('(its cutover committed)')}`
        : `${c.cyan('>')} ${c.bold(m.collection ? `clean up after a move of ${m.collection}` : 'clean up after moves')}`;
  const out = [head];
  if (m.kind === 'move' && m.leftovers.length > 0) {
    out.push(`      ${c.yellow('in progress')}: an earlier run was interrupted before its cutover (applications still use the old tables); apply removes what it left and starts the move again:`);
    for (const l of m.leftovers) out.push(`      ${c.dim(`- ${l.database}: ${l.kind} ${l.name}${l.detail ? ` (${l.detail})` : ''}`)}`);
  }
  if (m.kind === 'move') {
    out.push(`      from ${m.from.map(partName).join(', ')}`, `      to   ${m.to.map(partName).join(', ')}`);
    for (const f of m.flows) {
      const how = f.method === 'replication' ? 'logical replication' : 'change-log trigger + copy (same database)';
      out.push(`      ${c.dim(`${partName(f.source)} → ${partName(f.target)}: ${how}${f.filter ? `, rows with hash(id) mod ${f.filter.modulus} = ${f.filter.remainder}` : ''}`)}`);
    }
  }
  for (const [i, st] of m.steps.entries()) {
    const tag = st.risk === 'safe' ? '' : ` ${c.yellow(`[${st.risk}]`)}`;
    out.push(`      ${i + 1}. ${st.database}: ${st.description}${tag}`);
  }
  out.push(`      ${c.dim(`write pause: ${m.writePause}`)}`);
  const replicated = m.flows.filter((f) => f.method === 'replication');
  if (replicated.length > 0) {
    out.push(`      ${c.dim("note: each subscription keeps its source's URL, password included, in pg_subscription on its target (readable by superusers only) until the move removes it")}`);
    // A read-only plan cannot try it (nothing on a pod can open a connection without creating something first).
    const pairs = [...new Set(replicated.map((f) => `${f.target.secondary} → ${f.source.secondary}`))];
    out.push(`      ${c.dim(`note: each target's server connects to its source with the topology's URL for it (${pairs.join(', ')}): that host and port must be reachable from the target's server, not only from here; apply finds out before anything is copied`)}`);
  }
  return out;
}

/** The human plan: grouped by database in apply order, a reason per step, one summary line. */
export function renderPlan(plan: Plan, c: ChalkInstance): string {
  const out: string[] = [];
  for (const db of plan.databases) {
    if (db.steps.length === 0) continue;
    out.push(`${c.bold(db.role === 'primary' ? 'primary' : `secondary ${db.database}`)}  ${c.dim(db.url)}`);
    for (const step of db.steps) out.push(...renderStep(c, step));
    out.push('');
  }
  if (plan.moves?.length) {
    out.push(c.bold('moves'));
    for (const m of plan.moves) out.push(...renderMove(c, m));
    out.push('');
  }
  if (plan.blockers.length > 0) {
    out.push(c.red.bold('Blocked (apply refuses while these remain):'));
    for (const b of plan.blockers) out.push(`  ${c.red('!')} ${b.database}: ${b.object}: ${b.reason}`);
    out.push('');
  }
  if (plan.notes.length > 0) {
    out.push(c.bold('Notes:'));
    for (const n of plan.notes) out.push(`  ${c.dim('·')} ${n.database}: ${n.object}: ${n.message}`);
    out.push('');
  }
  if (hasChanges(plan)) out.push(c.bold(summaryLine(plan)));
  if (plan.blockers.length > 0) {
    const n = plan.blockers.length;
    out.push(c.red.bold('Blocked:') + ` ${n} ${n === 1 ? 'problem' : 'problems'} above; apply changes nothing until ${n === 1 ? 'it is' : 'they are'} resolved.`);
  } else if (!hasChanges(plan)) {
    out.push(c.green('No changes.') + ' Every database matches the topology.');
  }
  return out.join('\n');
}

/** The JSON document of `plan --json`: the plan itself, SQL with placeholders shown redacted. */
/** The plan document of `plan --json` (templates/plan.schema.json, src/plan/schema.ts). */
export function planToJson(plan: Plan): unknown {
  return {
    ...plan,
    format_version: PLAN_FORMAT_VERSION,
    changes: hasChanges(plan),
    // What the plan amounts to, blockers first: a blocked plan with no steps is not "no changes".
    status: plan.blockers.length > 0 ? 'blocked' : hasChanges(plan) ? 'changes' : 'no-changes',
    blocked: plan.blockers.length > 0,
    databases: plan.databases.map((d) => ({
      ...d,
      steps: d.steps.map((s) => ({ ...s, symbol: SYMBOL[s.action], drop: s.drop.map(redactSecrets), sql: s.sql.map(redactSecrets) })),
    })),
  };
}
