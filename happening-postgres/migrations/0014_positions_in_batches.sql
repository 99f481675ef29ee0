-- The waiting bookings' queue positions go in batches (`PgAdmission::push`, `gather.rs`),
-- with whether any seat is free, in one snapshot.
--
-- A push counted the waiting bookings ahead of it: with PostgreSQL alone, a sale of 20,000
-- requests for 1,000 seats made 19,000 counts of up to 19,000 index entries each (O(n^2):
-- 642 requests/s). A batch counts the entries ahead of its first booking of an event once,
-- then only those between one booking and the next. And since it said nothing of the free
-- seats, every push was followed by a promotion pass, which read the queue's head and
-- probed the seats again.
--
-- Per push i (the caller sorts them by event, then queue place): the
-- position of the waiting booking with `queue_seq` p_seq[i] in event p_event[i]'s queue
-- (how many waiting bookings have a place up to its own), and whether any seat of the
-- event is free. A STABLE function runs all its statements in its caller's snapshot.
CREATE FUNCTION happening_positions(p_event uuid[], p_seq bigint[])
RETURNS TABLE (queue_position bigint, seats_free boolean)
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
AS $fn$
DECLARE
    v_event uuid;   -- the event of the previous push
    v_seq   bigint; -- the previous push's place, and its position
    v_pos   bigint;
    v_free  boolean;
BEGIN
    FOR i IN 1 .. coalesce(cardinality(p_event), 0) LOOP
        IF v_event IS DISTINCT FROM p_event[i] THEN
            v_event := p_event[i];
            SELECT count(*) INTO v_pos FROM bookings
            WHERE event_id = v_event AND status = 'waiting' AND queue_seq < p_seq[i];
            v_seq := p_seq[i] - 1;
            -- `ORDER BY seat_no` keeps the plan on the free-seat index from the floor (0005).
            v_free := (SELECT seat_no FROM event_seats
                       WHERE event_id = v_event AND booking_id IS NULL AND hold_id IS NULL
                         AND seat_no >= (SELECT seats_free_from FROM events WHERE id = v_event)
                       ORDER BY seat_no LIMIT 1) IS NOT NULL;
        END IF;
        IF p_seq[i] < v_seq THEN
            RAISE EXCEPTION 'positions out of order: % after % in event %', p_seq[i], v_seq, v_event;
        END IF;
        v_pos := v_pos + (SELECT count(*) FROM bookings
                          WHERE event_id = v_event AND status = 'waiting' AND queue_seq > v_seq AND queue_seq <= p_seq[i]);
        v_seq := p_seq[i];
        queue_position := v_pos;
        seats_free := v_free;
        RETURN NEXT;
    END LOOP;
END
$fn$;
