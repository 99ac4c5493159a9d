-- The hybrid retrieval as a function, so that the service sends one short prepared statement
-- with its values bound (the query vector in binary) instead of a long text with the vector
-- inlined twice, which PostgreSQL had to parse, 384 numbers each time, on every question.
--
-- Vector leg: the `depth` nearest chunks of the owners by cosine distance (HNSW with pgvector's
-- iterative scan under the owner filter; a sequential scan when `exact`, the reference the
-- benchmark measures recall against). Keyword leg: the `depth` best of all the owners' chunks
-- matching `words` (NULL: no keyword leg), by ts_rank then id. Fused by reciprocal rank
-- (k = 60), ties by chunk id.
--
-- Plans: planning this query took longer than running it over one person's documents, so a
-- call for one owner (every answer) runs a plan made once per connection (generic), with the
-- owner compared as one value: the planner then expects one owner's share of the chunks (the
-- average), and PostgreSQL 18 (the version tested) reads them through the owner index and sorts them by
-- distance, exactly (an `= ANY` over an array it cannot see would count as ten owners, and
-- could tip the plan to the HNSW index). A call for several owners (talent search) or for the
-- exact reference is planned for its own values, as before: how many chunks a scope covers
-- decides between walking the HNSW index and sorting. plan_cache_mode set inside stays inside
-- the function (it has a SET clause for it); the other settings, made with set_config(…,
-- true), last until the end of the caller's transaction, like the SET LOCAL they replace.
-- 60 is reciprocal rank fusion's constant: ranks deeper than that contribute little.
CREATE FUNCTION hybrid_retrieve(
    query_vector vector, owners uuid[], words tsquery, depth integer, k integer,
    ef_search integer, exact boolean)
RETURNS TABLE (id uuid, document_id uuid, owner_id uuid, title text, location text,
               text text, score float8, similarity float8, pinned boolean)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $fn$
#variable_conflict use_column
BEGIN
    IF exact THEN
        PERFORM set_config('enable_indexscan', 'off', true);
    ELSE
        PERFORM set_config('hnsw.iterative_scan', 'relaxed_order', true);
        PERFORM set_config('hnsw.ef_search', ef_search::text, true);
    END IF;
    IF cardinality(owners) = 1 AND NOT exact THEN
        RETURN QUERY
        WITH vec AS (
            SELECT v.id, v.d, row_number() OVER (ORDER BY v.d, v.id) AS r FROM (
                SELECT c.id, c.embedding <=> query_vector AS d FROM chunks c
                WHERE c.owner_id = owners[1]
                ORDER BY c.embedding <=> query_vector LIMIT depth) v),
        kw AS (
            SELECT m.id, row_number() OVER (ORDER BY m.rank DESC, m.id) AS r FROM (
                SELECT c.id, ts_rank(c.keywords, words) AS rank FROM chunks c
                WHERE words IS NOT NULL AND c.owner_id = owners[1] AND c.keywords @@ words
                ORDER BY rank DESC, c.id LIMIT depth) m),
        fused AS (
            SELECT coalesce(vec.id, kw.id) AS id, vec.d,
                   coalesce(1.0::float8 / (60 + vec.r), 0)
                     + coalesce(1.0::float8 / (60 + kw.r), 0) AS score
            FROM vec FULL OUTER JOIN kw ON vec.id = kw.id
            ORDER BY score DESC, id LIMIT k)
        SELECT c.id, c.document_id, c.owner_id, d.title, c.location, c.text,
               f.score::float8, (1 - f.d)::float8, c.pinned
        FROM fused f JOIN chunks c ON c.id = f.id
        JOIN documents d ON d.document_id = c.document_id
        ORDER BY f.score DESC, c.id;
        RETURN;
    END IF;
    -- The same query over several owners, planned per call.
    PERFORM set_config('plan_cache_mode', 'force_custom_plan', true);
    RETURN QUERY
    WITH vec AS (
        SELECT v.id, v.d, row_number() OVER (ORDER BY v.d, v.id) AS r FROM (
            SELECT c.id, c.embedding <=> query_vector AS d FROM chunks c
            WHERE c.owner_id = ANY(owners)
            ORDER BY c.embedding <=> query_vector LIMIT depth) v),
    kw AS (
        SELECT m.id, row_number() OVER (ORDER BY m.rank DESC, m.id) AS r FROM (
            SELECT c.id, ts_rank(c.keywords, words) AS rank FROM chunks c
            WHERE words IS NOT NULL AND c.owner_id = ANY(owners) AND c.keywords @@ words
            ORDER BY rank DESC, c.id LIMIT depth) m),
    fused AS (
        SELECT coalesce(vec.id, kw.id) AS id, vec.d,
               coalesce(1.0::float8 / (60 + vec.r), 0)
                 + coalesce(1.0::float8 / (60 + kw.r), 0) AS score
        FROM vec FULL OUTER JOIN kw ON vec.id = kw.id
        ORDER BY score DESC, id LIMIT k)
    SELECT c.id, c.document_id, c.owner_id, d.title, c.location, c.text,
           f.score::float8, (1 - f.d)::float8, c.pinned
    FROM fused f JOIN chunks c ON c.id = f.id
    JOIN documents d ON d.document_id = c.document_id
    ORDER BY f.score DESC, c.id;
END
$fn$;
