/**
 * vecs' filter language, compiled on the primary into SQL that postgres_fdw ships to the secondary.
 *
 * vecs (0.4.x, `build_filters`) writes `metadata->'key' <op> value::jsonb`. postgres_fdw never ships that: the text
 * key is a collatable constant. `jsonb_path_query_first(metadata, 'strict $."key"', '{}', true)` is the same value
 * (NULL when the key is missing or metadata is not an object), is immutable, and takes nothing collatable — so it
 * ships. `x @> '[]'` stands for vecs' `jsonb_typeof(x) = 'array'` (a text comparison, which would not ship).
 *
 * The compiler runs in the database (a PL/pgSQL function), so `match_*` called from supabase-js `rpc()` gets the
 * same filters as the CLI. Every value reaches the SQL through format('%L').
 */

/**
 * Body of `vecscale.filter_sql(filter jsonb) RETURNS text`: NULL for no condition, else a boolean SQL expression.
 * As vecs (SQLAlchemy) does: an empty `$and`/`$or` adds no condition and drops out of its parent; a nested `{}`
 * is SQL NULL (no row matches).
 */
export const FILTER_SQL_BODY = `
DECLARE
  key text;
  val jsonb;
  op text;
  arg jsonb;
  target text;
  parts text[] := '{}';
  cond jsonb;
  part text;
BEGIN
  IF filter IS NULL THEN
    RETURN NULL;
  END IF;
  IF pg_catalog.jsonb_typeof(filter) <> 'object' THEN
    RAISE EXCEPTION 'vecscale filter: filters must be a JSON object, got %', pg_catalog.jsonb_typeof(filter) USING ERRCODE = '22023';
  END IF;
  IF filter = '{}'::jsonb THEN
    RETURN NULL;
  END IF;
  IF (SELECT pg_catalog.count(*) FROM pg_catalog.jsonb_object_keys(filter)) > 1 THEN
    RAISE EXCEPTION 'vecscale filter: max 1 entry per filter (got keys %); combine them with $and', (SELECT pg_catalog.string_agg(k, ', ') FROM pg_catalog.jsonb_object_keys(filter) k) USING ERRCODE = '22023';
  END IF;
  SELECT e.key, e.value INTO key, val FROM pg_catalog.jsonb_each(filter) e;

  IF key IN ('$and', '$or') THEN
    IF pg_catalog.jsonb_typeof(val) <> 'array' THEN
      RAISE EXCEPTION 'vecscale filter: % needs a list of conditions', key USING ERRCODE = '22023';
    END IF;
    FOR cond IN SELECT c.cond FROM pg_catalog.jsonb_array_elements(val) WITH ORDINALITY AS c(cond, n) ORDER BY c.n LOOP
      IF cond = '{}'::jsonb THEN
        part := 'NULL';
      ELSE
        part := vecscale.filter_sql(cond);
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
                              'strict $.' || pg_catalog.to_json(key)::text);
  CASE op
    WHEN '$eq' THEN
      -- vecs: containment for values without a length (numbers, booleans, null), equality otherwise.
      IF pg_catalog.jsonb_typeof(arg) IN ('number', 'boolean', 'null') THEN
        RETURN pg_catalog.format('metadata OPERATOR(pg_catalog.@>) %L::pg_catalog.jsonb', pg_catalog.jsonb_build_object(key, arg)::text);
      END IF;
      RETURN pg_catalog.format('%s OPERATOR(pg_catalog.=) %L::pg_catalog.jsonb', target, arg::text);
    WHEN '$ne' THEN RETURN pg_catalog.format('%s OPERATOR(pg_catalog.<>) %L::pg_catalog.jsonb', target, arg::text);
    WHEN '$lt' THEN RETURN pg_catalog.format('%s OPERATOR(pg_catalog.<) %L::pg_catalog.jsonb', target, arg::text);
    WHEN '$lte' THEN RETURN pg_catalog.format('%s OPERATOR(pg_catalog.<=) %L::pg_catalog.jsonb', target, arg::text);
    WHEN '$gt' THEN RETURN pg_catalog.format('%s OPERATOR(pg_catalog.>) %L::pg_catalog.jsonb', target, arg::text);
    WHEN '$gte' THEN RETURN pg_catalog.format('%s OPERATOR(pg_catalog.>=) %L::pg_catalog.jsonb', target, arg::text);
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
      RETURN pg_catalog.format('%s IN (%s)', target,
        (SELECT pg_catalog.string_agg(pg_catalog.format('%L::pg_catalog.jsonb', x::text), ', ' ORDER BY n)
           FROM pg_catalog.jsonb_array_elements(arg) WITH ORDINALITY AS a(x, n)));
    WHEN '$contains' THEN
      IF pg_catalog.jsonb_typeof(arg) NOT IN ('number', 'string', 'boolean') THEN
        RAISE EXCEPTION 'vecscale filter: argument to $contains filter must be a scalar (key "%")', key USING ERRCODE = '22023';
      END IF;
      RETURN pg_catalog.format('(%s OPERATOR(pg_catalog.@>) %L::pg_catalog.jsonb AND %s OPERATOR(pg_catalog.@>) ''[]''::pg_catalog.jsonb)',
                               target, arg::text, target);
    ELSE
      RAISE EXCEPTION 'vecscale filter: unknown operator "%" for key "%" (known: $eq $ne $lt $lte $gt $gte $in $contains, and $and $or)', op, key USING ERRCODE = '22023';
  END CASE;
END`;
