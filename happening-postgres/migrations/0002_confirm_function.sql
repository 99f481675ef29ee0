-- The hot path of a flash sale, a confirmed booking, as one server-side call: one round
-- trip (and one implicit transaction) instead of six. Same steps and locks as the Rust
-- path in src/store.rs and src/alloc.rs (which promotions and holds still use):
-- the event's shared advisory lock, the event must be live, the idempotency key, the
-- requested seats if all free (strict: a conflict naming the taken ones), else the lowest
-- free with SKIP LOCKED (fast) or waiting in ascending seat order (blocking), then the
-- booking, its history row and its outbox row.
--
-- Outcomes other than success are raised with these SQLSTATEs, so that the whole call
-- rolls back; the store maps them to its errors:
--   HP001 event not found, HP002 event cancelled, HP003 idempotency key taken,
--   HP004 seats taken (MESSAGE: the seats, comma separated), HP005 contended in fast mode
--   (retry blocking), HP006 short (MESSAGE: the free seats).
CREATE FUNCTION happening_confirm(
    p_event uuid, p_lock bigint, p_booking uuid, p_user uuid, p_requested integer, p_n integer,
    p_wanted integer[], p_strict boolean, p_blocking boolean,
    p_key_user uuid, p_key text, p_fingerprint bigint, p_now timestamptz,
    p_action text, p_status text, p_note_id uuid, p_note_kind text, p_note_seats integer
) RETURNS integer[] LANGUAGE plpgsql AS $fn$
DECLARE
    v_status text;
    v_seats  integer[];
    v_more   integer[];
    v_taken  integer[];
    v_free   bigint;
BEGIN
    PERFORM pg_advisory_xact_lock_shared(p_lock);
    SELECT status INTO v_status FROM events WHERE id = p_event;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'HP001', MESSAGE = 'event not found';
    END IF;
    IF v_status = 'cancelled' THEN
        RAISE EXCEPTION USING ERRCODE = 'HP002', MESSAGE = 'event cancelled';
    END IF;
    IF p_key IS NOT NULL THEN
        INSERT INTO idempotency_keys (user_id, key, fingerprint, booking_id, created_at)
        VALUES (p_key_user, p_key, p_fingerprint, p_booking, p_now) ON CONFLICT DO NOTHING;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'HP003', MESSAGE = 'idempotency key taken';
        END IF;
    END IF;
    IF cardinality(p_wanted) > 0 THEN
        BEGIN
            WITH u AS (
                UPDATE event_seats SET booking_id = p_booking
                WHERE event_id = p_event AND seat_no = ANY (p_wanted) AND booking_id IS NULL AND hold_id IS NULL
                RETURNING seat_no)
            SELECT array_agg(seat_no ORDER BY seat_no) INTO v_seats FROM u;
            IF coalesce(cardinality(v_seats), 0) <> cardinality(p_wanted) THEN
                v_taken := ARRAY(SELECT x FROM unnest(p_wanted) x EXCEPT SELECT y FROM unnest(coalesce(v_seats, '{}')) y ORDER BY 1);
                -- Undo the partial take (and its locks) with the block's subtransaction.
                RAISE EXCEPTION USING ERRCODE = 'HP004';
            END IF;
        EXCEPTION WHEN SQLSTATE 'HP004' THEN
            v_seats := NULL;
            IF p_strict THEN
                RAISE EXCEPTION USING ERRCODE = 'HP004', MESSAGE = array_to_string(v_taken, ',');
            END IF;
        END;
    END IF;
    IF v_seats IS NULL AND NOT p_blocking THEN
        WITH f AS MATERIALIZED (
                SELECT seat_no FROM event_seats
                WHERE event_id = p_event AND booking_id IS NULL AND hold_id IS NULL
                ORDER BY seat_no LIMIT p_n FOR UPDATE SKIP LOCKED),
             u AS (
                UPDATE event_seats s SET booking_id = p_booking FROM f
                WHERE s.event_id = p_event AND s.seat_no = f.seat_no RETURNING s.seat_no)
        SELECT array_agg(seat_no ORDER BY seat_no) INTO v_seats FROM u;
        IF coalesce(cardinality(v_seats), 0) <> p_n THEN
            RAISE EXCEPTION USING ERRCODE = 'HP005', MESSAGE = 'contended';
        END IF;
    ELSIF v_seats IS NULL THEN
        v_seats := '{}';
        WHILE cardinality(v_seats) < p_n LOOP
            WITH f AS MATERIALIZED (
                    SELECT seat_no FROM event_seats
                    WHERE event_id = p_event AND booking_id IS NULL AND hold_id IS NULL
                      AND seat_no > coalesce((SELECT max(x) FROM unnest(v_seats) x), 0)
                    ORDER BY seat_no LIMIT p_n - cardinality(v_seats) FOR UPDATE),
                 u AS (
                    UPDATE event_seats s SET booking_id = p_booking FROM f
                    WHERE s.event_id = p_event AND s.seat_no = f.seat_no RETURNING s.seat_no)
            SELECT array_agg(seat_no ORDER BY seat_no) INTO v_more FROM u;
            IF v_more IS NULL THEN
                SELECT count(*) INTO v_free FROM event_seats
                WHERE event_id = p_event AND booking_id IS NULL AND hold_id IS NULL;
                RAISE EXCEPTION USING ERRCODE = 'HP006', MESSAGE = (v_free + cardinality(v_seats))::text;
            END IF;
            v_seats := v_seats || v_more;
        END LOOP;
    END IF;
    IF cardinality(v_seats) <> p_n THEN
        RAISE EXCEPTION 'allocation returned % seats for %', cardinality(v_seats), p_n;
    END IF;
    v_seats := ARRAY(SELECT x FROM unnest(v_seats) x ORDER BY 1);
    INSERT INTO bookings (id, event_id, user_id, seats, seat_numbers, status, queue_seq, hold_id, created_at, updated_at)
    VALUES (p_booking, p_event, p_user, p_requested, v_seats, 'confirmed', NULL, NULL, p_now, p_now);
    INSERT INTO booking_history (booking_id, action, status, seat_numbers, created_at)
    VALUES (p_booking, p_action, p_status, v_seats, p_now);
    INSERT INTO notifications (id, user_id, type, event_id, booking_id, org_id, seats, status, read, created_at)
    VALUES (p_note_id, p_user, p_note_kind, p_event, p_booking, NULL, p_note_seats, 'pending', false, p_now);
    RETURN v_seats;
END
$fn$;
