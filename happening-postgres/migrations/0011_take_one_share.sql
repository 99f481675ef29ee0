-- A run of one seat takes it with a cached plan.
--
-- Over 1,000 events a batch's runs are mostly one booking of one seat, and 0008's EXECUTE
-- planned each of those UPDATEs anew: 1,495 ms of planning for 1,710 ms of execution over
-- 14,135 calls (pg_stat_statements, 10 s at 64 clients). A single seat is an equality on
-- the primary key, the one plan there is, so it needs no planning per call; a run of
-- several seats keeps 0008's EXECUTE (planned for the seats at hand, see 0008 for why).
CREATE OR REPLACE FUNCTION happening_take_shares(p_event uuid, p_seats integer[], p_owners uuid[])
RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    v_taken bigint;
BEGIN
    IF coalesce(cardinality(p_seats), 0) = 0 THEN
        RETURN;
    END IF;
    IF cardinality(p_seats) = 1 THEN
        UPDATE event_seats SET booking_id = p_owners[1]
         WHERE event_id = p_event AND seat_no = p_seats[1] AND coalesce(booking_id, hold_id) IS NULL;
    ELSE
        EXECUTE 'UPDATE event_seats SET booking_id = ($3::uuid[])[array_position($2::integer[], seat_no)]
                 WHERE event_id = $1 AND seat_no = ANY ($2::integer[]) AND coalesce(booking_id, hold_id) IS NULL'
            USING p_event, p_seats, p_owners;
    END IF;
    GET DIAGNOSTICS v_taken = ROW_COUNT;
    IF v_taken <> cardinality(p_seats) THEN
        RAISE EXCEPTION 'took % of the shared seats % of event %', v_taken, p_seats, p_event;
    END IF;
END
$fn$;
