-- take_quota without its subtransaction. The first version undid a refused reservation by
-- raising inside an EXCEPTION block: every call, refused or not, opened a subtransaction (a
-- savepoint, a subtransaction id once it wrote), on the path every ask takes. The statement is
-- its own transaction and holds the row locks of the counters it took until it ends, so the
-- counters taken before a refusal can simply be given back by hand: nothing else can have
-- touched them in between. Same signature, same results.
CREATE OR REPLACE FUNCTION take_quota(
    at timestamptz,
    zone text,
    scopes text[],
    daily boolean[],
    limits bigint[],
    OUT refused integer,
    OUT taken integer[],
    OUT day text,
    OUT next_day timestamptz
)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    n integer;
BEGIN
    SELECT d.day, d.next_day INTO day, next_day FROM quota_day(at, zone) d;
    refused := 0;
    taken := '{}';
    FOR i IN 1 .. coalesce(array_length(scopes, 1), 0) LOOP
        n := NULL;
        INSERT INTO quota_counters AS q (scope, period, used)
        SELECT scopes[i], CASE WHEN daily[i] THEN day ELSE 'total' END, 1
        WHERE limits[i] > 0
        ON CONFLICT (scope, period) DO UPDATE SET used = q.used + 1
        WHERE q.used < limits[i]
        RETURNING q.used INTO n;
        IF n IS NULL THEN
            refused := i;
            -- Give back what this call took before the refusal (locked by us since).
            FOR j IN 1 .. i - 1 LOOP
                UPDATE quota_counters AS q SET used = q.used - 1
                WHERE q.scope = scopes[j]
                  AND q.period = CASE WHEN daily[j] THEN day ELSE 'total' END;
            END LOOP;
            taken := '{}';
            RETURN;
        END IF;
        taken := taken || n;
    END LOOP;
END;
$$;
