/** The desired-state object of a function vecscale owns, fingerprinted from the exact statement that creates it. */
import { createHash } from 'node:crypto';
import { type FunctionObject, keys } from '../model/state.js';

/** Dollar-quote tag for function bodies (never appears in a body vecscale generates). */
export const DOLLAR = '$vecscale$';

const md5 = (s: string): string => createHash('md5').update(s).digest('hex');

export interface FunctionSpec {
  readonly schema: string;
  readonly name: string;
  /** Argument types, for GRANT/COMMENT/DROP. */
  readonly argTypes: string;
  /** The full CREATE FUNCTION statement. */
  readonly create: string;
  /** The body between the dollar quotes (its md5 shows hand edits: it is what prosrc holds). */
  readonly body: string;
  readonly grantees: readonly string[];
  /** CREATE OR REPLACE suffices for a new definition (same signature and result type). */
  readonly replaceable?: boolean;
  /** The one-argument batch overload of a function of the same name (upsert_<c>(rows jsonb)). */
  readonly overload?: 'rows';
}

export function functionObject(f: FunctionSpec): FunctionObject {
  return {
    kind: 'function',
    key: keys.function(f.schema, f.name, f.overload),
    managed: true,
    schema: f.schema,
    name: f.name,
    definitionMd5: md5(f.create),
    bodyMd5: md5(f.body),
    grantees: [...f.grantees].sort(),
    create: f.create,
    argTypes: f.argTypes,
    ...(f.replaceable ? { replaceable: true } : {}),
  };
}
