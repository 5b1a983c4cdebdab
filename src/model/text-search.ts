/**
 * The SQL expressions of full-text search (`text:`) and owned rows (`access:`) over a vecs table's `metadata`, one
 * definition for the indexes on the secondary (src/desired/collection.ts) and the statements that must use them
 * (src/query/hybrid.ts, src/query/access.ts): PostgreSQL uses an expression index only for the same expression.
 * Every name qualified: they run under the wrapper session's search path, and in index definitions.
 */
import type { AccessSpec, TextSearchSpec } from '../config/types.js';
import { literal } from '../sql/quote.js';

/** The text search configuration, schema-qualified: `'pg_catalog.english'::pg_catalog.regconfig`. */
export const textSearchConfig = (text: TextSearchSpec): string => `${literal(`pg_catalog.${text.language}`)}::pg_catalog.regconfig`;

/** The searched document of a row: `to_tsvector(config, metadata->>'<source>')` (`row` qualifies metadata, e.g. `t`). */
export const documentExpression = (text: TextSearchSpec, row?: string): string =>
  `pg_catalog.to_tsvector(${textSearchConfig(text)}, ${row ? `${row}.` : ''}metadata OPERATOR(pg_catalog.->>) ${literal(text.source)})`;

/** A query's tsquery, as Supabase's hybrid_search makes it: `websearch_to_tsquery(config, <query text>)`. */
export const tsqueryExpression = (text: TextSearchSpec, queryText: string): string => `pg_catalog.websearch_to_tsquery(${textSearchConfig(text)}, ${queryText})`;

/** A row's owner: `metadata->>'<owner_key>'` (parenthesised, as an index expression must be). */
export const ownerExpression = (access: AccessSpec, row?: string): string =>
  `(${row ? `${row}.` : ''}metadata OPERATOR(pg_catalog.->>) ${literal(access.ownerKey)})`;
