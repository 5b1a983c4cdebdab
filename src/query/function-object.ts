/**
 * The one builder of every function vecscale creates, on every database: its header always says who it runs as
 * and fixes the search path, so a new function cannot forget either.
 *
 * `SET search_path = pg_catalog, pg_temp`: with pg_temp named last, the session's temporary schema is searched after
 * pg_catalog for relations and types (left out, PostgreSQL searches it *first*, even with `search_path = ''`, and a
 * caller's `pg_temp.text` domain would run the caller's code as the owner). Functions and operators are never looked
 * up in pg_temp, so with this path an unqualified function or operator can only be pg_catalog's. Bodies still
 * schema-qualify every type, relation and function (`pg_catalog.text`, `"public".vector`, `pg_catalog.format`), and
 * every operator outside pg_catalog (pgvector's), including in the SQL they build and send to a secondary, which runs
 * under another session's search path.
 */
import { createHash } from 'node:crypto';
import type { Acl, FunctionObject } from '../model/state.js';
import { keys } from '../model/state.js';
import { dollarQuoted, ident, qualified } from '../sql/quote.js';
import { T } from '../sql/types.js';

const md5 = (s: string): string => createHash('md5').update(s).digest('hex');

/** The search path of every vecscale function, as `SET` writes it and as pg_proc.proconfig stores it. */
export const FUNCTION_SEARCH_PATH = 'pg_catalog, pg_temp';

export interface FunctionArg {
  readonly name: string;
  /** A schema-qualified type (`pg_catalog.jsonb`, `"public".vector(384)`). */
  readonly type: string;
  readonly default?: string;
}

export interface FunctionSpec {
  readonly schema: string;
  readonly name: string;
  readonly args: readonly FunctionArg[];
  /** `pg_catalog.text`, `pg_catalog.void`, `pg_catalog.trigger` or `TABLE(…)` with qualified types. */
  readonly returns: string;
  readonly volatility: 'IMMUTABLE' | 'STABLE' | 'VOLATILE';
  readonly parallelSafe?: boolean;
  /**
   * SECURITY DEFINER, and why the function must act with rights its callers lack. Absent: SECURITY INVOKER.
   * Never for a function in an API schema (a test checks).
   */
  readonly definer?: { readonly reason: string };
  /** `plan_cache_mode = force_custom_plan`: every call planned with its own values (LIMIT k shipped on call 6 too). */
  readonly customPlan?: boolean;
  /** The PL/pgSQL body (between the dollar quotes; its md5 shows hand edits, as prosrc holds it). */
  readonly body: string;
  /** Who may EXECUTE it (PUBLIC's default EXECUTE is revoked): the whole ACL, as vecscale owns it. */
  readonly acl: Acl;
  /** CREATE OR REPLACE suffices for a new definition (same signature and result type). */
  readonly replaceable?: boolean;
  /** The one-argument batch overload of a function of the same name (upsert_<c>(rows jsonb)). */
  readonly overload?: 'rows';
}

/** A function's argument types for GRANT/COMMENT/DROP: typmods mean nothing in a signature. */
const signatureTypes = (args: readonly FunctionArg[]): string => args.map((a) => a.type.replace(/\(\d+\)$/, '')).join(', ');

/** The settings every function carries, in the order the header sets them (pg_proc.proconfig keeps that order). */
export function functionConfig(spec: Pick<FunctionSpec, 'customPlan'>): string[] {
  return [`search_path=${FUNCTION_SEARCH_PATH}`, ...(spec.customPlan ? ['plan_cache_mode=force_custom_plan'] : [])];
}

/** `CREATE FUNCTION …` and the desired-state object, fingerprinted from that exact statement. */
export function defineFunction(spec: FunctionSpec): FunctionObject {
  const args = spec.args.map((a) => `${ident(a.name)} ${a.type}${a.default !== undefined ? ` DEFAULT ${a.default}` : ''}`);
  const create = [
    `CREATE FUNCTION ${qualified(spec.schema, spec.name)}(${args.join(', ')}) RETURNS ${spec.returns}`,
    `LANGUAGE plpgsql ${spec.volatility}${spec.parallelSafe ? ' PARALLEL SAFE' : ''}`,
    spec.definer ? 'SECURITY DEFINER' : 'SECURITY INVOKER',
    `SET search_path = ${FUNCTION_SEARCH_PATH}`,
    ...(spec.customPlan ? ['SET plan_cache_mode = force_custom_plan'] : []),
    `AS ${dollarQuoted(spec.body)}`,
  ].join(' ');
  return {
    kind: 'function',
    key: keys.function(spec.schema, spec.name, spec.overload),
    managed: true,
    schema: spec.schema,
    name: spec.name,
    definitionMd5: md5(create),
    bodyMd5: md5(spec.body),
    acl: spec.acl,
    securityDefiner: spec.definer !== undefined,
    config: functionConfig(spec),
    create,
    argTypes: signatureTypes(spec.args),
    ...(spec.replaceable ? { replaceable: true } : {}),
  };
}

/**
 * A trigger function in vecscale's schema: SECURITY INVOKER (it writes as whoever fired the trigger), and executable
 * by nobody — firing a trigger needs no EXECUTE. CREATE OR REPLACE keeps the triggers that use it.
 */
export function defineTriggerFunction(schema: string, name: string, body: string): FunctionObject {
  return defineFunction({ schema, name, args: [], returns: T.trigger, volatility: 'VOLATILE', body, acl: {}, replaceable: true });
}
