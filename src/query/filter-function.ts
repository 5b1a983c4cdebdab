/**
 * vecs' filter language, compiled in the database into SQL that the secondary runs (and postgres_fdw ships).
 *
 * vecs (0.4.x, `build_filters`) writes `metadata->'key' <op> value::jsonb`. postgres_fdw never ships that: the text
 * key is a collatable constant. `jsonb_path_query_first(metadata, 'strict $."key"', '{}', true)` is the same value
 * (NULL when the key is missing or metadata is not an object), is immutable, and takes nothing collatable — so it
 * ships. `x @> '[]'` stands for vecs' `jsonb_typeof(x) = 'array'` (a text comparison, which would not ship).
 *
 * The compiler runs in the database (a PL/pgSQL function), so `match_*` called from supabase-js `rpc()` gets the
 * same filters as the CLI. Every value reaches the SQL through format('%L'); every name and operator in the SQL it
 * writes is qualified, since it runs on the secondary under the wrapper session's search path.
 */
import type { Acl, FunctionObject } from '../model/state.js';
import { HELPER_SCHEMA } from '../model/state.js';
import { qualified } from '../sql/quote.js';
import { T } from '../sql/types.js';
import { defineFunction } from './function-object.js';

/**
 * A filter's bounds: its size (as jsonb), its operators (`$eq`, `$and`, …, every `$`-key), and the nesting of
 * `$and`/`$or`; its numbers stay within what prints short (the compiled SQL carries them as text).
 */
export const FILTER_LIMITS = { bytes: 65_536, operators: 256, depth: 8 } as const;

/** A jsonpath that finds a number whose text would be huge (1e131071, 1e-131071): jsonb keeps only its digits. */
const NUMBER_OUT_OF_RANGE =
  "'strict $.** ? (@.type() == \"number\" && (@ >= 1e308 || @ <= -1e308 || (@ != 0 && @ < 1e-307 && @ > -1e-307)))'";

const FILTER_SQL = qualified(HELPER_SCHEMA, 'filter_sql');

/**
 * Body of `vecscale.filter_sql(filter jsonb, depth integer DEFAULT 0) RETURNS text`: NULL for no condition, else a
 * boolean SQL expression. As vecs (SQLAlchemy) does: an empty `$and`/`$or` adds no condition and drops out of its
 * parent; a nested `{}` is SQL NULL (no row matches). The top call checks the bounds; each level of `$and`/`$or`
 * calls it again one deeper.
 */
export const FILTER_SQL_BODY = `
DECLARE
  key ${T.text};
  val ${T.jsonb};
  op ${T.text};
  arg ${T.jsonb};
  target ${T.text};
  parts ${T.textArray} := '{}'::${T.textArray};
  cond ${T.jsonb};
  part ${T.text};
BEGIN
  IF filter IS NULL THEN
    RETURN NULL;
  END IF;
  IF depth = 0 THEN
    -- Sizes are measured without printing the filter: a number like 1e131071 is 8 bytes as jsonb, 131 KB as text.
    IF pg_catalog.pg_column_size(filter) > ${FILTER_LIMITS.bytes} THEN
      RAISE EXCEPTION 'vecscale filter: the filter is % bytes (as jsonb); at most ${FILTER_LIMITS.bytes}', pg_catalog.pg_column_size(filter) USING ERRCODE = '22023';
    END IF;
    IF pg_catalog.jsonb_path_exists(filter, ${NUMBER_OUT_OF_RANGE}::${T.jsonpath}) THEN
      RAISE EXCEPTION 'vecscale filter: numbers must be 0 or between 1e-307 and 1e308 in magnitude' USING ERRCODE = '22023';
    END IF;
    IF pg_catalog.jsonb_array_length(pg_catalog.jsonb_path_query_array(filter,
         'strict $.** ? (@.type() == "object").keyvalue() ? (@.key starts with "$")'::${T.jsonpath})) > ${FILTER_LIMITS.operators} THEN
      RAISE EXCEPTION 'vecscale filter: more than ${FILTER_LIMITS.operators} operators ($eq, $and, …)' USING ERRCODE = '22023';
    END IF;
  END IF;
  IF pg_catalog.jsonb_typeof(filter) <> 'object' THEN
    RAISE EXCEPTION 'vecscale filter: filters must be a JSON object, got %', pg_catalog.jsonb_typeof(filter) USING ERRCODE = '22023';
  END IF;
  IF filter = '{}'::${T.jsonb} THEN
    RETURN NULL;
  END IF;
  IF (SELECT pg_catalog.count(*) FROM pg_catalog.jsonb_object_keys(filter)) > 1 THEN
    RAISE EXCEPTION 'vecscale filter: max 1 entry per filter (got keys %); combine them with $and', (SELECT pg_catalog.string_agg(k, ', ') FROM pg_catalog.jsonb_object_keys(filter) k) USING ERRCODE = '22023';
  END IF;
  SELECT e.key, e.value INTO key, val FROM pg_catalog.jsonb_each(filter) e;

  IF key IN ('$and', '$or') THEN
    IF depth >= ${FILTER_LIMITS.depth} THEN
      RAISE EXCEPTION 'vecscale filter: $and/$or nested deeper than ${FILTER_LIMITS.depth} levels' USING ERRCODE = '22023';
    END IF;
    IF pg_catalog.jsonb_typeof(val) <> 'array' THEN
      RAISE EXCEPTION 'vecscale filter: % needs a list of conditions', key USING ERRCODE = '22023';
    END IF;
    FOR cond IN SELECT c.cond FROM pg_catalog.jsonb_array_elements(val) WITH ORDINALITY AS c(cond, n) ORDER BY c.n LOOP
      IF cond = '{}'::${T.jsonb} THEN
        part := 'NULL';
      ELSE
        part := ${FILTER_SQL}(cond, depth + 1);
      END IF;
      IF part IS NOT NULL THEN
        parts := parts || ('(' || part || ')');
      END IF;
    END LOOP;
    IF pg_catalog.cardinality(parts) = 0 THEN
      RETURN NULL;
    END IF;
    RETURN pg_catalog.array_to_string(parts, CASE key WHEN '$and' THEN ' AND ' ELSE ' OR ' END);
  END IF;
  IF pg_catalog.jsonb_typeof(val) <> 'object' THEN
    RAISE EXCEPTION 'vecscale filter: key "%" needs an operator object such as {"$eq": ...}', key USING ERRCODE = '22023';
  END IF;
  IF (SELECT pg_catalog.count(*) FROM pg_catalog.jsonb_object_keys(val)) <> 1 THEN
    RAISE EXCEPTION 'vecscale filter: key "%" needs exactly one operator', key USING ERRCODE = '22023';
  END IF;
  SELECT e.key, e.value INTO op, arg FROM pg_catalog.jsonb_each(val) e;

  -- vecs' metadata->'key', in a form postgres_fdw ships.
  target := pg_catalog.format('pg_catalog.jsonb_path_query_first(metadata, %L::pg_catalog.jsonpath, ''{}''::pg_catalog.jsonb, true)',
                              'strict $.' || pg_catalog.to_json(key)::${T.text});
  CASE op
    WHEN '$eq' THEN
      -- vecs: containment for values without a length (numbers, booleans, null), equality otherwise.
      IF pg_catalog.jsonb_typeof(arg) IN ('number', 'boolean', 'null') THEN
        RETURN pg_catalog.format('metadata OPERATOR(pg_catalog.@>) %L::pg_catalog.jsonb', pg_catalog.jsonb_build_object(key, arg)::${T.text});
      END IF;
      RETURN pg_catalog.format('%s OPERATOR(pg_catalog.=) %L::pg_catalog.jsonb', target, arg::${T.text});
    WHEN '$ne' THEN RETURN pg_catalog.format('%s OPERATOR(pg_catalog.<>) %L::pg_catalog.jsonb', target, arg::${T.text});
    WHEN '$lt' THEN RETURN pg_catalog.format('%s OPERATOR(pg_catalog.<) %L::pg_catalog.jsonb', target, arg::${T.text});
    WHEN '$lte' THEN RETURN pg_catalog.format('%s OPERATOR(pg_catalog.<=) %L::pg_catalog.jsonb', target, arg::${T.text});
    WHEN '$gt' THEN RETURN pg_catalog.format('%s OPERATOR(pg_catalog.>) %L::pg_catalog.jsonb', target, arg::${T.text});
    WHEN '$gte' THEN RETURN pg_catalog.format('%s OPERATOR(pg_catalog.>=) %L::pg_catalog.jsonb', target, arg::${T.text});
    WHEN '$in' THEN
      IF pg_catalog.jsonb_typeof(arg) <> 'array' THEN
        RAISE EXCEPTION 'vecscale filter: argument to $in filter must be a list (key "%")', key USING ERRCODE = '22023';
      END IF;
      IF EXISTS (SELECT FROM pg_catalog.jsonb_array_elements(arg) x WHERE pg_catalog.jsonb_typeof(x) NOT IN ('number', 'string', 'boolean')) THEN
        RAISE EXCEPTION 'vecscale filter: argument to $in filter must be a list of scalars (key "%")', key USING ERRCODE = '22023';
      END IF;
      IF pg_catalog.jsonb_array_length(arg) = 0 THEN
        RETURN 'false';
      END IF;
      -- vecs' IN (…), with the operator named: = ANY over the list.
      RETURN pg_catalog.format('%s OPERATOR(pg_catalog.=) ANY (ARRAY[%s]::pg_catalog.jsonb[])', target,
        (SELECT pg_catalog.string_agg(pg_catalog.format('%L::pg_catalog.jsonb', x::${T.text}), ', ' ORDER BY n)
           FROM pg_catalog.jsonb_array_elements(arg) WITH ORDINALITY AS a(x, n)));
    WHEN '$contains' THEN
      IF pg_catalog.jsonb_typeof(arg) NOT IN ('number', 'string', 'boolean') THEN
        RAISE EXCEPTION 'vecscale filter: argument to $contains filter must be a scalar (key "%")', key USING ERRCODE = '22023';
      END IF;
      RETURN pg_catalog.format('(%s OPERATOR(pg_catalog.@>) %L::pg_catalog.jsonb AND %s OPERATOR(pg_catalog.@>) ''[]''::pg_catalog.jsonb)',
                               target, arg::${T.text}, target);
    ELSE
      RAISE EXCEPTION 'vecscale filter: unknown operator "%" for key "%" (known: $eq $ne $lt $lte $gt $gte $in $contains, and $and $or)', op, key USING ERRCODE = '22023';
  END CASE;
END`;

/** `vecscale.filter_sql(filter jsonb, depth integer DEFAULT 0)`: the filter compiler. Pure: IMMUTABLE, invoker. */
export function filterFunction(acl: Acl): FunctionObject {
  return defineFunction({
    schema: HELPER_SCHEMA,
    name: 'filter_sql',
    args: [
      { name: 'filter', type: T.jsonb },
      { name: 'depth', type: T.int4, default: '0' },
    ],
    returns: T.text,
    volatility: 'IMMUTABLE',
    parallelSafe: true,
    body: FILTER_SQL_BODY,
    acl,
  });
}
