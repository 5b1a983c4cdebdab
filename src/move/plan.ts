/**
 * Which collections move, and what each move will do: pure, from the topology and the live state. The planner
 * plans everything else against `before` (the topology with each moving collection where its rows are now), so its
 * steps never touch a moving collection's layout; the move itself is carried out by src/move/run.ts.
 */
import type { Topology } from '../config/types.js';
import { isTableOf, type Part } from '../model/placement.js';
import { type LiveDatabase, keys, SECONDARY_SCHEMA, VECS_SCHEMA } from '../model/state.js';
import type { MoveFlow, MoveLeftover, MovePart, MovePlan } from '../plan/types.js';
import { flowsOf, liveLayout, partsOf, retiredParts, sameLayout, topologyWith } from './layout.js';
import { collectionTag, isMoveObject } from './names.js';
import { type ReplicationDemand, replicationLeftovers } from './prerequisites.js';

export interface MovesDecision {
  readonly moves: readonly MovePlan[];
  /** The topology the rest of the plan converges to: moving collections where their rows are now. */
  readonly before: Topology;
  /** Per database, the object keys the moves own: the ordinary plan neither changes nor drops them. */
  readonly owned: ReadonlyMap<string, ReadonlySet<string>>;
}

const part = (p: Part): MovePart => ({ secondary: p.secondary, table: p.table, ...(p.modulus !== undefined ? { modulus: p.modulus, remainder: p.remainder } : {}) });

/** A leftover of some move, with what tells whose it is: its name (tag prefix), or the vecs table it is. */
interface Candidate {
  readonly leftover: MoveLeftover;
  readonly name?: string;
  readonly table?: string;
}

/**
 * Every move object found in any database, once (the planner asks per collection: filtering this list keeps that
 * linear in the number of objects, not collections × objects).
 */
function leftoverCandidates(live: ReadonlyMap<string, LiveDatabase>): Candidate[] {
  const out: Candidate[] = [];
  // Slots are the cluster's: every database of a cluster sees them; each is reported once, under the first.
  const seenSlots = new Set<string>();
  for (const [database, l] of live) {
    const r = l.facts.replication;
    for (const s of r?.subscriptions ?? []) out.push({ name: s.name, leftover: { database, kind: 'subscription', name: s.name, detail: s.enabled ? 'enabled' : 'disabled' } });
    for (const p of r?.publications ?? []) out.push({ name: p.name, leftover: { database, kind: 'publication', name: p.name, detail: p.tables.join(', ') } });
    for (const s of r?.slots ?? []) {
      const cluster = r?.cluster ? `${r.cluster.systemIdentifier}@${r.cluster.startedAt}` : database;
      if (seenSlots.has(`${cluster}/${s.name}`)) continue;
      seenSlots.add(`${cluster}/${s.name}`);
      const held = s.retainedBytes === null ? '' : `, holds ${Math.round(s.retainedBytes / 1024)} kB of WAL`;
      out.push({ name: s.name, leftover: { database, kind: 'replication slot', name: s.name, detail: `${s.active ? 'active' : 'inactive'}${held}` } });
    }
    for (const o of l.state.objects.values()) {
      if (o.kind === 'function' && o.schema === SECONDARY_SCHEMA && isMoveObject(o.name)) out.push({ name: o.name, leftover: { database, kind: 'function', name: `${o.schema}.${o.name}` } });
    }
    for (const [key, mark] of l.facts.moveMarks ?? []) {
      const name = key.slice('relation:'.length);
      const [schema, table] = [name.slice(0, name.indexOf('.')), name.slice(name.indexOf('.') + 1)];
      const leftover = { database, kind: 'table' as const, name, detail: mark };
      if (mark === 'beacon' || mark === 'log') {
        if (schema === SECONDARY_SCHEMA) out.push({ name: table, leftover });
      } else if (schema === VECS_SCHEMA) out.push({ table, leftover });
    }
  }
  return out;
}

/**
 * Every replication object, mirror function and move-marked table of `collection` (by its tag), or of none known: the
 * candidates whose name `belongs`, or whose vecs table is one `tableOf` claims.
 */
const leftoversOf = (candidates: readonly Candidate[], belongs: (name: string) => boolean, tableOf: (table: string) => boolean): MoveLeftover[] =>
  candidates.filter((c) => (c.name !== undefined ? belongs(c.name) : tableOf(c.table!))).map((c) => c.leftover);

// Every part is looked up, not only up to the first that may hold rows: a lookup not yet answered counts as rows,
// and the plan asks about what it looked up — with some(), one more partition per round, and a plan that ran out of
// rounds took empty shards for full ones (a move where a re-create does).
const hasRows = (live: ReadonlyMap<string, LiveDatabase>, parts: readonly Part[]): boolean =>
  parts.map((p) => live.get(p.secondary)?.facts.nonEmpty.has(keys.relation(VECS_SCHEMA, p.table)) ?? false).includes(true);

function stepsOf(collection: string, from: readonly Part[], to: readonly Part[], flows: readonly MoveFlow[]): MovePlan['steps'] {
  const targets = [...new Set(flows.map((f) => f.target.secondary))];
  const sources = [...new Set(flows.map((f) => f.source.secondary))];
  const repl = flows.filter((f) => f.method === 'replication');
  const trig = flows.filter((f) => f.method === 'trigger');
  const name = (p: MovePart) => `${VECS_SCHEMA}.${p.table}`;
  const filter = (f: MoveFlow) => (f.filter ? ` (rows with hash(id) mod ${f.filter.modulus} = ${f.filter.remainder})` : '');
  return [
    ...targets.map((db) => ({ database: db, description: `create ${flows.filter((f) => f.target.secondary === db).map((f) => name(f.target)).filter((v, i, a) => a.indexOf(v) === i).join(', ')} (vecs' shape, no vector index yet), marked as move targets`, risk: 'safe' as const })),
    ...repl.map((f) => ({ database: f.source.secondary, description: `publish ${name(f.source)}${filter(f)} and create replication slot for ${f.target.secondary}; subscription on ${f.target.secondary} copies it into ${name(f.target)} and follows every change`, risk: 'safe' as const })),
    ...trig.map((f) => ({ database: f.source.secondary, description: `a trigger on ${name(f.source)} logs the ids every write touches; a chunked copy fills ${name(f.target)}${filter(f)}, then the logged ids are brought over again`, risk: 'safe' as const })),
    ...targets.map((db) => ({ database: db, description: `build the indexes of the targets (vector; full text and owner where the collection has them) after the copy`, risk: 'safe' as const })),
    { database: 'primary', description: `cutover: writes to ${collection} through the primary wait (locks on public.${collection} and its wrappers), the sources are write-locked, the targets catch up, row count and a checksum over (id, metadata, vec) must agree, the wrappers switch to the new layout in the same transaction; writes resume`, risk: 'disruptive' as const },
    ...[...new Set(retiredParts(from, to).map((p) => p.secondary))].map((db) => ({
      database: db,
      description: `drop ${retiredParts(from, to).filter((p) => p.secondary === db).map(name).join(', ')} once verified (a late direct writer there then fails loudly: the table is gone)`,
      risk: 'disruptive' as const,
    })),
    ...sources.map((db) => ({ database: db, description: 'remove the publication, slot, subscription and trigger of the move', risk: 'safe' as const })),
  ];
}

const PAUSE =
  'writes through the primary pause at cutover only: while the targets catch up and count and checksum are compared ' +
  '(about 0.05 s plus 6 µs per row moved: 683 ms for 100k rows × 384 on 2 shared cores); a blocked write waits and then succeeds. Reads through match_<c> and public.<c> go on during the copy and wait during the pause too';

/** Decides the moves of a plan. */
export function decideMoves(topology: Topology, live: ReadonlyMap<string, LiveDatabase>): MovesDecision {
  const primary = live.get('primary');
  const moves: MovePlan[] = [];
  const layouts = new Map<string, Part[]>();
  const owned = new Map<string, Set<string>>();
  const own = (db: string, key: string) => owned.set(db, (owned.get(db) ?? new Set()).add(key));
  const tags = new Set(topology.collections.map((c) => collectionTag(c.name)));
  const candidates = leftoverCandidates(live);
  for (const c of topology.collections) {
    const tag = collectionTag(c.name);
    const leftovers = leftoversOf(candidates, (n) => n.startsWith(tag), (t) => isTableOf(c.name, t));
    const now = primary ? liveLayout(topology, primary.state, c.name) : undefined;
    const want = partsOf(c);
    for (const l of leftovers) {
      if (l.kind === 'function') own(l.database, keys.function(SECONDARY_SCHEMA, l.name.slice(SECONDARY_SCHEMA.length + 1)));
      // A marked table the primary already reads is live (a cutover committed before its mark was cleared).
      if (l.kind === 'table' && l.detail === 'target' && !now?.some((p) => p.secondary === l.database && `${VECS_SCHEMA}.${p.table}` === l.name)) {
        own(l.database, keys.relation(VECS_SCHEMA, l.name.slice(VECS_SCHEMA.length + 1)));
      }
    }
    if (now && !sameLayout(now, want) && hasRows(live, now)) {
      const flows = flowsOf(now, want).map((f) => ({ ...f, source: part(f.source), target: part(f.target) }));
      layouts.set(c.name, now);
      moves.push({ collection: c.name, kind: 'move', from: now.map(part), to: want.map(part), flows, steps: stepsOf(c.name, now, want, flows), leftovers, writePause: PAUSE });
      continue;
    }
    if (leftovers.length === 0) continue;
    // The cutover committed (the primary reads the new layout) but the old tables are still there: retired after a
    // last catch-up, since a direct writer may still have written into them.
    const retired = now && sameLayout(now, want) && leftovers.some((l) => l.kind !== 'table')
      ? [...live].flatMap(([db, l]) =>
          [...l.state.objects.values()].flatMap((o) =>
            o.kind === 'table' && o.schema === VECS_SCHEMA && o.managed && isTableOf(c.name, o.name) && !want.some((p) => p.secondary === db && p.table === o.name) && !l.facts.moveMarks?.has(o.key)
              ? [{ secondary: db, table: o.name }]
              : [],
          ),
        )
      : [];
    for (const r of retired) own(r.secondary, keys.relation(VECS_SCHEMA, r.table));
    moves.push({
      collection: c.name,
      kind: retired.length > 0 ? 'finish' : 'cleanup',
      from: retired,
      to: want.map(part),
      flows: [],
      steps: [
        ...retired.map((r) => ({ database: r.secondary, description: `write-lock ${VECS_SCHEMA}.${r.table}, let the targets catch up with it, drop it (the cutover committed; this finishes the move)`, risk: 'disruptive' as const })),
        ...leftovers.map((l) => ({ database: l.database, description: `remove ${l.kind} ${l.name} left by an interrupted move${l.detail ? ` (${l.detail})` : ''}`, risk: 'safe' as const })),
      ],
      leftovers,
      writePause: retired.length > 0 ? 'none through the primary (it reads the new layout already)' : 'none',
    });
  }
  // Leftovers of collections the topology no longer names, and table-sync slots whose subscription is gone.
  const orphanSync = replicationLeftovers([...live].map(([database, l]) => ({ database, facts: l.facts.replication })))
    .filter((l) => !isMoveObject(l.name))
    .map(({ message: _m, ...l }) => l);
  const stray = [...leftoversOf(candidates, (n) => isMoveObject(n) && ![...tags].some((t) => n.startsWith(t)), () => false), ...orphanSync];
  if (stray.length > 0) {
    for (const l of stray) if (l.kind === 'function') own(l.database, keys.function(SECONDARY_SCHEMA, l.name.slice(SECONDARY_SCHEMA.length + 1)));
    moves.push({
      collection: '',
      kind: 'cleanup',
      from: [],
      to: [],
      flows: [],
      steps: stray.map((l) => ({ database: l.database, description: `remove ${l.kind} ${l.name} left by a move of a collection no longer in the topology${l.detail ? ` (${l.detail})` : ''}`, risk: 'safe' as const })),
      leftovers: stray,
      writePause: 'none',
    });
  }
  return { moves, before: topologyWith(topology, layouts), owned };
}

/** What the moves ask of each database: subscriptions it serves as a source, subscriptions created on it. */
export function replicationDemands(moves: readonly MovePlan[], live: ReadonlyMap<string, LiveDatabase>): ReplicationDemand[] {
  const sources = new Map<string, Set<string>>();
  const targets = new Map<string, Set<string>>();
  for (const m of moves) {
    if (m.kind !== 'move') continue;
    for (const f of m.flows) {
      if (f.method !== 'replication') continue;
      const pair = `${m.collection}/${f.source.secondary}/${f.target.secondary}`;
      sources.set(f.source.secondary, (sources.get(f.source.secondary) ?? new Set()).add(pair));
      targets.set(f.target.secondary, (targets.get(f.target.secondary) ?? new Set()).add(pair));
    }
  }
  return [...new Set([...sources.keys(), ...targets.keys()])].map((database) => ({
    database,
    role: live.get(database)?.facts.currentUser ?? '?',
    facts: live.get(database)?.facts.replication,
    sourceSubscriptions: sources.get(database)?.size ?? 0,
    targetSubscriptions: targets.get(database)?.size ?? 0,
  }));
}
