-- take_quota as in 20261207000003, except that a counter a refused call created is removed
-- again instead of being left at 0: the subtransaction of the first version rolled such a row
-- back, and a refused guest (one fresh token after another at an address's ceiling) must not
-- leave a row behind per token. A counter at 1 after this call's unit was taken held nothing
-- before it, so deleting it restores what was there.
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
                DELETE FROM quota_counters AS q
                WHERE q.scope = scopes[j]
                  AND q.period = CASE WHEN daily[j] THEN day ELSE 'total' END
                  AND q.used = 1;
                IF NOT FOUND THEN
                    UPDATE quota_counters AS q SET used = q.used - 1
                    WHERE q.scope = scopes[j]
                      AND q.period = CASE WHEN daily[j] THEN day ELSE 'total' END;
                END IF;
            END LOOP;
            taken := '{}';
            RETURN;
        END IF;
        taken := taken || n;
    END LOOP;
END;
$$;
