-- A quota reservation in one statement. Every counter is taken in the order given (`used + 1`,
-- only below its limit); the first one at its limit undoes those taken before it (the inner
-- block is a subtransaction) and is reported by its position. Run on its own, the statement is
-- its transaction: the counters' row locks are held while it runs, not across round trips to
-- the client, so asks that share a counter (a chatbot's day, an office's address) queue for
-- microseconds rather than for the network.
-- The quota day `at` falls in, in `zone`, and when the next one starts: the one definition,
-- for reservations and for what `GET …/quota` shows.
CREATE FUNCTION quota_day(at timestamptz, zone text, OUT day text, OUT next_day timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT to_char((at AT TIME ZONE zone)::date, 'YYYY-MM-DD'),
           ((at AT TIME ZONE zone)::date + 1)::timestamp AT TIME ZONE zone
$$;

CREATE FUNCTION take_quota(
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
    BEGIN
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
                RAISE EXCEPTION 'quota % refused', i;
            END IF;
            taken := taken || n;
        END LOOP;
    EXCEPTION WHEN raise_exception THEN
        taken := '{}';
    END;
END;
$$;
