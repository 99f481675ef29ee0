-- The probe answers a capped waitlist in the same snapshot (`Take::WaitlistFull`).
--
-- 0009's cap was checked by a second statement after 0010's probe: another round trip,
-- another snapshot (the port asks for one atomic step), and a plan left to the heuristic.
-- The probe now also takes the request's bounds and the cap, and counts the queue (at most
-- `p_waiting_max` entries: with PostgreSQL alone a refusal reads up to the cap's number of
-- index entries, as a push already counts the bookings ahead) only when the request would
-- not be taken. A STABLE function runs all its statements in its caller's snapshot.
DROP FUNCTION happening_probe(uuid, bigint, boolean);

-- Returns: is the event known, does anyone wait (asked only if p_ask_queued), how many seats
-- are free counting at most p_want from the floor, and whether the request is short (fewer
-- than p_min free, or someone waits) while p_waiting_max or more wait (NULL: no cap, false).
CREATE FUNCTION happening_probe(p_event uuid, p_want bigint, p_min bigint, p_ask_queued boolean, p_waiting_max bigint,
                                OUT known boolean, OUT queued boolean, OUT free bigint, OUT queue_full boolean)
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
AS $fn$
BEGIN
    SELECT EXISTS (SELECT 1 FROM events WHERE id = p_event),
           (p_ask_queued AND EXISTS (SELECT 1 FROM bookings WHERE event_id = p_event AND status = 'waiting')),
           (SELECT count(*) FROM (SELECT 1 FROM event_seats
                                  WHERE event_id = p_event AND booking_id IS NULL AND hold_id IS NULL
                                    AND seat_no >= (SELECT seats_free_from FROM events WHERE id = p_event)
                                  ORDER BY seat_no LIMIT p_want) f)
      INTO known, queued, free;
    queue_full := false;
    IF known AND p_waiting_max IS NOT NULL AND (queued OR least(p_want, free) < p_min) THEN
        SELECT count(*) >= p_waiting_max
          FROM (SELECT 1 FROM bookings WHERE event_id = p_event AND status = 'waiting' LIMIT p_waiting_max) w
          INTO queue_full;
    END IF;
END
$fn$;
