/**
 * Owned rows (`access: { owner_key, claim }`, README "Permission-aware search"): for a caller that is not trusted with
 * every row, match_<c>, hybrid_<c> and public.<c> return only the rows whose `metadata->'<owner_key>'` is the JSON
 * string of its JWT claim, and its writes may only write such rows.
 *
 * Who the caller is: the role PostgREST switched to (`set_config('role', …)`, as `SET ROLE`: `current_setting('role')`),
 * else the login (`session_user`). Not `current_user`: inside search_<c>, SECURITY DEFINER, that is the owner; and the
 * role setting cannot be set to a role the session is not a member of. Trusted with every row: the write_roles that
 * are not api_roles (service_role), the role vecscale applies as, and superusers — by name, so a role that inherits an
 * API role's privileges without being listed is restricted (default deny). The claim comes from
 * `request.jwt.claims`, which PostgREST sets from a verified JWT: a session that can run SQL of its own can set it to
 * anything, as it can for Supabase's RLS policies (`auth.uid()` reads the same setting); the API's callers cannot.
 *
 * Both functions are STABLE, SECURITY INVOKER, and say nothing about any row: the readers may execute them.
 */
import type { AccessSpec, CollectionSpec, Topology } from '../config/types.js';
import { type Acl, type FunctionObject, HELPER_SCHEMA } from '../model/state.js';
import { ownerExpression } from '../model/text-search.js';
import { literal, qualified } from '../sql/quote.js';
import { T } from '../sql/types.js';
import { byCodePoint } from '../util/fingerprint.js';
import { parsePgUrl } from '../util/url.js';
import { defineFunction } from './function-object.js';

export const SEES_ALL_FUNCTION = 'sees_all_rows';
export const JWT_CLAIM_FUNCTION = 'jwt_claim';
export const OWNER_METADATA_FUNCTION = 'owner_metadata';

/** The session setting PostgREST puts the request's verified JWT claims in (a JSON object). */
export const JWT_CLAIMS_SETTING = 'request.jwt.claims';

/** Roles trusted with every row of an owned collection: write_roles that are not api_roles, and the applying login. */
export function trustedRoles(topology: Topology): string[] {
  const api = new Set(topology.apiRoles);
  const login = parsePgUrl(topology.primary.url).user;
  return [...new Set([...topology.writeRoles.filter((r) => !api.has(r)), ...(login ? [login] : [])])].sort(byCodePoint);
}

/** The caller, as the functions below see it: the role switched to, else the login. */
const CALLER = `CASE WHEN pg_catalog.current_setting('role') OPERATOR(pg_catalog.=) 'none' THEN pg_catalog.session_user()::${T.text} ELSE pg_catalog.current_setting('role') END`;

/**
 * SQL: whether the caller is trusted with every row. It reads no relation, so the view public.<c> can carry it:
 * LOCK TABLE public.<c> (upsert_<c>, match_<c>) locks every relation its view reads, in ROW EXCLUSIVE mode for
 * upserts, which needs write privileges on it (pg_roles: permission denied). Whether the caller is a superuser:
 * `is_superuser`, which SET ROLE and set_config('role', …) keep for the role switched to, and SECURITY DEFINER leaves
 * alone.
 */
const seesAllSql = (topology: Topology): string => `(SELECT c.caller OPERATOR(pg_catalog.=) ANY (ARRAY[${trustedRoles(topology).map(literal).join(', ')}]::${T.textArray})
      OR pg_catalog.current_setting('is_superuser') OPERATOR(pg_catalog.=) 'on'
    FROM (SELECT ${CALLER} AS caller) c)`;

/** SQL: the request's claim `key` (a text expression) as text; NULL without one. A setting that is not JSON raises 22P02. */
const claimSql = (key: string): string =>
  `NULLIF(pg_catalog.current_setting(${literal(JWT_CLAIMS_SETTING)}, true), '')::${T.jsonb} OPERATOR(pg_catalog.->>) ${key}`;

/** `vecscale.sees_all_rows()`: whether the caller is trusted with every row (see the module's comment). */
export function seesAllFunction(topology: Topology, acl: Acl): FunctionObject {
  const body = `
BEGIN
  RETURN ${seesAllSql(topology)};
END`;
  return defineFunction({ schema: HELPER_SCHEMA, name: SEES_ALL_FUNCTION, args: [], returns: T.bool, volatility: 'STABLE', body, acl });
}

/**
 * `vecscale.jwt_claim(claim text)`: the request's claim as text (`request.jwt.claims ->> claim`), NULL when there is
 * none — no JWT, the claim missing or JSON null, or the setting not JSON.
 */
export function jwtClaimFunction(acl: Acl): FunctionObject {
  const body = `
BEGIN
  RETURN ${claimSql('claim')};
EXCEPTION WHEN invalid_text_representation THEN
  RETURN NULL;
END`;
  return defineFunction({ schema: HELPER_SCHEMA, name: JWT_CLAIM_FUNCTION, args: [{ name: 'claim', type: T.text }], returns: T.text, volatility: 'STABLE', body, acl });
}

/**
 * `vecscale.owner_metadata(owner_key text, claim text)`: what the metadata of every row of the caller's contains,
 * `{"<owner_key>": "<the claim>"}` (jsonb), NULL when the request has no such claim. `metadata @> it` holds exactly
 * when the owner key's value is that JSON string (a number, an array or an object holding it do not: jsonb
 * containment unwraps an array only at the top level), and unlike `metadata->>'k' = …` postgres_fdw ships it.
 */
export function ownerMetadataFunction(acl: Acl): FunctionObject {
  const body = `
DECLARE
  owner ${T.text} := ${qualified(HELPER_SCHEMA, JWT_CLAIM_FUNCTION)}(claim);
BEGIN
  IF owner IS NULL THEN
    RETURN NULL;
  END IF;
  RETURN pg_catalog.jsonb_build_object(owner_key, owner);
END`;
  return defineFunction({
    schema: HELPER_SCHEMA,
    name: OWNER_METADATA_FUNCTION,
    args: [{ name: 'owner_key', type: T.text }, { name: 'claim', type: T.text }],
    returns: T.jsonb,
    volatility: 'STABLE',
    body,
    acl,
  });
}

/** The primary's access functions, when any collection has owned rows. */
export function accessFunctions(topology: Topology, acl: Acl): FunctionObject[] {
  return topology.collections.some((c) => c.access !== undefined) ? [seesAllFunction(topology, acl), jwtClaimFunction(acl), ownerMetadataFunction(acl)] : [];
}

/** SQL: `vecscale.owner_metadata('<owner_key>', '<claim>')`, the caller's owner pattern (NULL: no claim). */
export const ownerMetadataCall = (access: AccessSpec): string =>
  `${qualified(HELPER_SCHEMA, OWNER_METADATA_FUNCTION)}(${literal(access.ownerKey)}, ${literal(access.claim)})`;

/**
 * The condition of public.<c>'s rows (its view's WHERE): the caller is trusted with every row, or the row is its own.
 * Both halves are uncorrelated subqueries, initplans evaluated once per statement, so postgres_fdw ships the whole
 * condition to the secondary as `($1 OR metadata @> $2)` — per foreign partition, for a sharded collection — and a
 * caller's own WHERE is ANDed to it: no filter of the caller's can widen it.
 *
 * The same SQL as seesAllFunction and jwtClaimFunction (seesAllSql, claimSql), inlined rather than calling them: a view
 * depends on the functions it calls, and removing the last `access` would then have to redefine every
 * such view before dropping the functions, an order the planner does not know (it drops first). One difference: a
 * request.jwt.claims that is not JSON fails the read instead of reading as no claim (PostgREST always sets JSON).
 */
export function ownedRowsCondition(access: AccessSpec, topology: Topology): string {
  const mine = `(SELECT CASE WHEN o.claim IS NOT NULL THEN pg_catalog.jsonb_build_object(${literal(access.ownerKey)}, o.claim) END FROM (SELECT ${claimSql(literal(access.claim))} AS claim) o)`;
  return `${seesAllSql(topology)} OR metadata OPERATOR(pg_catalog.@>) ${mine}`;
}

/**
 * PL/pgSQL (DECLARE items) of search_<c>/hybrid: `owner`, the caller's claim when the caller is restricted to its own
 * rows (NULL: every row), and `restricted`.
 */
export const ownerDeclarations = (c: CollectionSpec): string =>
  c.access === undefined
    ? ''
    : `
  restricted ${T.bool} := NOT ${qualified(HELPER_SCHEMA, SEES_ALL_FUNCTION)}();
  owner ${T.text} := CASE WHEN restricted THEN ${qualified(HELPER_SCHEMA, JWT_CLAIM_FUNCTION)}(${literal(c.access.claim)}) END;`;

/**
 * The condition a restricted statement carries on the secondary (PL/pgSQL text expression over `owner`): the owner
 * key's text equal to the claim (what the owner index serves) and its JSON value the claim's string (so a number or
 * an array never passes for it), `metadata` of the row queried.
 */
export const ownerConditionSql = (c: CollectionSpec): string =>
  c.access === undefined
    ? 'NULL'
    : `pg_catalog.format(${literal(`${ownerExpression(c.access).replace(/%/g, '%%')} OPERATOR(pg_catalog.=) %L AND metadata OPERATOR(pg_catalog.@>) %L::pg_catalog.jsonb`)}, owner, pg_catalog.jsonb_build_object(${literal(c.access.ownerKey)}, owner)::${T.text})`;
