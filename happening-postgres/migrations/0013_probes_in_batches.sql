-- The admission's probes go in batches (`PgAdmission`, `gather.rs`): one call answers the
-- probes that queued while the others ran, in one snapshot, each as 0012's probe did.
--
-- On the hot event over HTTP (64 clients) the probe was a call per booking: 22,418 calls in
-- 10 s at 0.23 ms each, most of it what any call costs (the round trip, the statement's
-- executor start, the function's SET clause, the transaction). One client, one call of
-- eight probes took 0.47 ms against 0.24 ms for a call of one.
DROP FUNCTION happening_probe(uuid, bigint, bigint, boolean, bigint);

-- Per probe i, in order: is event p_event[i] known, does anyone wait (asked only if
-- p_ask_queued[i]), how many seats are free counting at most p_want[i] from the floor, and
-- whether the request is short (fewer than p_min[i] free, or someone waits) while
-- p_waiting_max[i] or more wait (NULL: no cap, false). A STABLE function runs all its
-- statements in its caller's snapshot.
CREATE FUNCTION happening_probe(p_event uuid[], p_want bigint[], p_min bigint[], p_ask_queued boolean[], p_waiting_max bigint[])
RETURNS TABLE (known boolean, queued boolean, free bigint, queue_full boolean)
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
AS $fn$
BEGIN
    FOR i IN 1 .. coalesce(cardinality(p_event), 0) LOOP
        SELECT EXISTS (SELECT 1 FROM events WHERE id = p_event[i]),
               (p_ask_queued[i] AND EXISTS (SELECT 1 FROM bookings WHERE event_id = p_event[i] AND status = 'waiting')),
               (SELECT count(*) FROM (SELECT 1 FROM event_seats
                                      WHERE event_id = p_event[i] AND booking_id IS NULL AND hold_id IS NULL
                                        AND seat_no >= (SELECT seats_free_from FROM events WHERE id = p_event[i])
                                      ORDER BY seat_no LIMIT p_want[i]) f)
          INTO known, queued, free;
        queue_full := false;
        IF known AND p_waiting_max[i] IS NOT NULL AND (queued OR least(p_want[i], free) < p_min[i]) THEN
            SELECT count(*) >= p_waiting_max[i]
              FROM (SELECT 1 FROM bookings WHERE event_id = p_event[i] AND status = 'waiting' LIMIT p_waiting_max[i]) w
              INTO queue_full;
        END IF;
        RETURN NEXT;
    END LOOP;
END
$fn$;
