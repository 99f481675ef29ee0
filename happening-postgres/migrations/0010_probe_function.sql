-- The admission's probe (`PgAdmission::take`, on every booking's path without Redis) as a
-- function whose plan is generic and cached per connection.
--
-- Why: sent as a prepared statement, PostgreSQL custom-planned it on 79% of its calls (its
-- three sub-selects cost more to plan than to run): 4.0 s of planning against 1.8 s of
-- execution in a 10 s run on one hot event (pg_stat_statements with track_planning,
-- BENCHMARKS.md "The probe's plan"). The generic plan is the one wanted whatever the
-- event: the primary key of events, the waiting-bookings index, and the free-seat index
-- from the floor in seat order (`ORDER BY seat_no`, see admission.rs for why).
--
-- Returns: is the event known, does anyone wait (asked only if p_ask_queued), and how many
-- seats are free counting at most p_limit from the floor (`events.seats_free_from`).
CREATE FUNCTION happening_probe(p_event uuid, p_limit bigint, p_ask_queued boolean,
                                OUT known boolean, OUT queued boolean, OUT free bigint)
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
AS $fn$
BEGIN
    SELECT EXISTS (SELECT 1 FROM events WHERE id = p_event),
           (p_ask_queued AND EXISTS (SELECT 1 FROM bookings WHERE event_id = p_event AND status = 'waiting')),
           (SELECT count(*) FROM (SELECT 1 FROM event_seats
                                  WHERE event_id = p_event AND booking_id IS NULL AND hold_id IS NULL
                                    AND seat_no >= (SELECT seats_free_from FROM events WHERE id = p_event)
                                  ORDER BY seat_no LIMIT p_limit) f)
      INTO known, queued, free;
END
$fn$;

-- The same for the batch function's own statements: the search for a run's free seats was
-- custom-planned on 89% of its calls (2,168 plans for 2,448 calls, 308 ms of planning for
-- 427 ms of execution). Its seat take is an EXECUTE, planned for its values every time by
-- design (migrations/0008), which this does not change.
ALTER FUNCTION happening_book_batch(boolean[], uuid[], bigint[], uuid[], uuid[], integer[], integer[],
    uuid[], text[], bigint[], timestamptz[], text[], text[], uuid[], text[], integer[])
    SET plan_cache_mode = force_generic_plan;
