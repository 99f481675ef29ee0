-- Two changes to the booking functions.
--
-- 1. Seats taken by number use the primary key, one statement per seat
--    (`happening_take_seats`). `seat_no = ANY (p_wanted)` let PL/pgSQL's cached generic plan
--    take the event's free-seat index with only `event_id` as its condition and filter every
--    free seat of the event by the array: on an event of 100,000 seats, 1,142 buffers for
--    one seat (pg_stat_statements). A join with `unnest(...)` was no better: on an event just
--    created, before the table's first ANALYZE, the planner hashed the whole free-seat index
--    (1,178 buffers, 57 ms for a batch's seats). An equality on the whole key (event_id,
--    seat_no) has one plan whatever the statistics say: a lookup of one row.
--
-- 2. One seat search per event per batch, instead of one per booking. On a hot event each
--    search for the lowest free seats walks, from the floor (0004), past the seats that
--    bookings in flight are taking: with 64 clients about 35 buffers a search. A batch's
--    confirmed bookings of one event now share one search: the batch finds the lowest free
--    seats for all of them and locks them (`FOR UPDATE SKIP LOCKED`), hands each booking its
--    share in order, and takes a booking's seats once the booking is written. A booking that
--    fails gives its share to the next; a booking left without a
--    share (fewer seats were free than asked) is contended (HP005), and the store tries it
--    again alone, blocking, as it does a contended booking of a batch since 0003.
--
--    Locks, in the order every transaction takes them (no new cycle):
--    - The event's shared advisory lock comes first, as in each booking, so an exclusive
--      holder (an event cancelled or resized) never waits for seats this batch has locked
--      while the batch waits for it.
--    - The shared seats are locked, and taken, in the batch's own transaction, never in a
--      booking's subtransaction: one booking's rollback cannot release another's seats, and
--      a seat locked by a transaction and updated by its subtransaction would need a
--      MultiXact (both must be remembered), which every later reader of the row resolves.
--      Seats locked and left unused stay free; they are only out of reach of other
--      bookings until this batch commits. A booking's seats are taken before the next
--      booking's turn, so a later search of the same event in this batch (two events whose
--      lock keys collide, interleaved) sees them taken.
--    - A booking's idempotency key is now inserted after the batch locked the seats (it
--      was before its own search). A twin request with the same key, in flight in another
--      transaction that waits for one of those seats, closes a cycle: PostgreSQL breaks it
--      after `deadlock_timeout` (1 s), and the store retries the booking it rolled back.
--      Only a client's concurrent retries of one booking can meet this.
--    - The floor is raised here when the seats found lie more than 32 above it, as a lone
--      booking does (0004): this batch's seats are still free in the raise's snapshot, so
--      the floor never passes them.
--
-- `happening_confirm` is therefore split: the checks every new booking passes
-- (`happening_booking_begin`, which `happening_enqueue` of 0003 now calls too) and the rows a
-- confirmed booking writes (`happening_booking_rows`) are functions of their own, used by it
-- and by the batch. The seat search in between is 0004's (with 1. above); the batch no
-- longer calls it.

-- The event's shared advisory lock, the event must be live, the idempotency key bound.
-- Returns the event's floor. Errors: HP001 event not found, HP002 event cancelled, HP003
-- key taken.
CREATE FUNCTION happening_booking_begin(
    p_event uuid, p_lock bigint, p_booking uuid, p_key_user uuid, p_key text, p_fingerprint bigint, p_now timestamptz
) RETURNS integer LANGUAGE plpgsql AS $fn$
DECLARE
    v_status text;
    v_floor  integer;
BEGIN
    PERFORM pg_advisory_xact_lock_shared(p_lock);
    SELECT status, seats_free_from INTO v_status, v_floor FROM events WHERE id = p_event;
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
    RETURN v_floor;
END
$fn$;

-- Takes the seats `p_wanted` of `p_event` that are free, for a booking (`p_booking`) or a
-- hold (`p_hold`); returns those taken, ascending. One statement per seat, an equality on
-- the whole key (event_id, seat_no) (1. above), in ascending seat order whatever the
-- caller's order, so that two takers never lock seats in opposite orders (`= ANY` got that
-- from the index). The caller compares what it got with what it asked.
CREATE FUNCTION happening_take_seats(p_event uuid, p_wanted integer[], p_booking uuid, p_hold uuid)
RETURNS integer[] LANGUAGE plpgsql AS $fn$
DECLARE
    v_seat  integer;
    v_taken integer[] := '{}';
BEGIN
    IF (p_booking IS NULL) = (p_hold IS NULL) THEN
        RAISE EXCEPTION 'a seat is taken for a booking or for a hold';
    END IF;
    FOREACH v_seat IN ARRAY ARRAY(SELECT DISTINCT x FROM unnest(p_wanted) x ORDER BY 1) LOOP
        UPDATE event_seats SET booking_id = p_booking, hold_id = p_hold
        WHERE event_id = p_event AND seat_no = v_seat AND booking_id IS NULL AND hold_id IS NULL;
        IF FOUND THEN
            v_taken := v_taken || v_seat;
        END IF;
    END LOOP;
    RETURN v_taken;
END
$fn$;

-- 0003's `happening_enqueue`, with its checks and rows in the functions below.
CREATE OR REPLACE FUNCTION happening_enqueue(
    p_event uuid, p_lock bigint, p_booking uuid, p_user uuid, p_requested integer,
    p_key_user uuid, p_key text, p_fingerprint bigint, p_now timestamptz,
    p_action text, p_status text, p_note_id uuid, p_note_kind text, p_note_seats integer
) RETURNS bigint LANGUAGE plpgsql AS $fn$
DECLARE
    v_seq bigint;
BEGIN
    PERFORM happening_booking_begin(p_event, p_lock, p_booking, p_key_user, p_key, p_fingerprint, p_now);
    v_seq := nextval('booking_queue_seq');
    PERFORM happening_booking_rows(p_event, p_booking, p_user, p_requested, '{}', v_seq, p_now,
                                   p_action, p_status, p_note_id, p_note_kind, p_note_seats);
    RETURN v_seq;
END
$fn$;

-- A new booking, with its history row and outbox row: confirmed with `p_seats` (ascending),
-- or waiting at `p_seq` (no seats).
CREATE FUNCTION happening_booking_rows(
    p_event uuid, p_booking uuid, p_user uuid, p_requested integer, p_seats integer[], p_seq bigint, p_now timestamptz,
    p_action text, p_status text, p_note_id uuid, p_note_kind text, p_note_seats integer
) RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO bookings (id, event_id, user_id, seats, seat_numbers, status, queue_seq, hold_id, created_at, updated_at)
    VALUES (p_booking, p_event, p_user, p_requested, p_seats, CASE WHEN p_seq IS NULL THEN 'confirmed' ELSE 'waiting' END,
            p_seq, NULL, p_now, p_now);
    INSERT INTO booking_history (booking_id, action, status, seat_numbers, created_at)
    VALUES (p_booking, p_action, p_status, p_seats, p_now);
    INSERT INTO notifications (id, user_id, type, event_id, booking_id, org_id, seats, status, read, created_at)
    VALUES (p_note_id, p_user, p_note_kind, p_event, p_booking, NULL, p_note_seats, 'pending', false, p_now);
END
$fn$;

CREATE OR REPLACE FUNCTION happening_confirm(
    p_event uuid, p_lock bigint, p_booking uuid, p_user uuid, p_requested integer, p_n integer,
    p_wanted integer[], p_strict boolean, p_blocking boolean,
    p_key_user uuid, p_key text, p_fingerprint bigint, p_now timestamptz,
    p_action text, p_status text, p_note_id uuid, p_note_kind text, p_note_seats integer
) RETURNS integer[] LANGUAGE plpgsql AS $fn$
DECLARE
    v_floor  integer;
    v_seats  integer[];
    v_more   integer[];
    v_taken  integer[];
    v_free   bigint;
BEGIN
    v_floor := happening_booking_begin(p_event, p_lock, p_booking, p_key_user, p_key, p_fingerprint, p_now);
    IF cardinality(p_wanted) > 0 THEN
        BEGIN
            v_seats := happening_take_seats(p_event, p_wanted, p_booking, NULL);
            IF cardinality(v_seats) <> cardinality(p_wanted) THEN
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
                WHERE event_id = p_event AND booking_id IS NULL AND hold_id IS NULL AND seat_no >= v_floor
                ORDER BY seat_no LIMIT p_n FOR UPDATE SKIP LOCKED),
             u AS (
                UPDATE event_seats s SET booking_id = p_booking FROM f
                WHERE s.event_id = p_event AND s.seat_no = f.seat_no RETURNING s.seat_no)
        SELECT array_agg(seat_no ORDER BY seat_no) INTO v_seats FROM u;
        IF coalesce(cardinality(v_seats), 0) <> p_n THEN
            RAISE EXCEPTION USING ERRCODE = 'HP005', MESSAGE = 'contended';
        END IF;
        IF v_seats[1] - v_floor > 32 THEN
            PERFORM happening_raise_seat_floor(p_event);
        END IF;
    ELSIF v_seats IS NULL THEN
        v_seats := '{}';
        WHILE cardinality(v_seats) < p_n LOOP
            WITH f AS MATERIALIZED (
                    SELECT seat_no FROM event_seats
                    WHERE event_id = p_event AND booking_id IS NULL AND hold_id IS NULL
                      AND seat_no > coalesce((SELECT max(x) FROM unnest(v_seats) x), v_floor - 1)
                    ORDER BY seat_no LIMIT p_n - cardinality(v_seats) FOR UPDATE),
                 u AS (
                    UPDATE event_seats s SET booking_id = p_booking FROM f
                    WHERE s.event_id = p_event AND s.seat_no = f.seat_no RETURNING s.seat_no)
            SELECT array_agg(seat_no ORDER BY seat_no) INTO v_more FROM u;
            IF v_more IS NULL THEN
                SELECT count(*) INTO v_free FROM event_seats
                WHERE event_id = p_event AND booking_id IS NULL AND hold_id IS NULL AND seat_no >= v_floor;
                RAISE EXCEPTION USING ERRCODE = 'HP006', MESSAGE = (v_free + cardinality(v_seats))::text;
            END IF;
            v_seats := v_seats || v_more;
        END LOOP;
    END IF;
    IF cardinality(v_seats) <> p_n THEN
        RAISE EXCEPTION 'allocation returned % seats for %', cardinality(v_seats), p_n;
    END IF;
    v_seats := ARRAY(SELECT x FROM unnest(v_seats) x ORDER BY 1);
    PERFORM happening_booking_rows(p_event, p_booking, p_user, p_requested, v_seats, NULL, p_now,
                                   p_action, p_status, p_note_id, p_note_kind, p_note_seats);
    RETURN v_seats;
END
$fn$;

CREATE OR REPLACE FUNCTION happening_book_batch(
    p_confirm boolean[], p_event uuid[], p_lock bigint[], p_booking uuid[], p_user uuid[],
    p_requested integer[], p_n integer[],
    p_key_user uuid[], p_key text[], p_fingerprint bigint[], p_now timestamptz[],
    p_action text[], p_status text[], p_note_id uuid[], p_note_kind text[], p_note_seats integer[]
) RETURNS TABLE (code text, message text, seats integer[], seq bigint) LANGUAGE plpgsql AS $fn$
DECLARE
    v_event  uuid;              -- the event whose seats `v_shared` holds
    v_shared integer[] := '{}'; -- seats found for its confirmed bookings, not yet handed out
    v_need   bigint;
    v_floor  integer;
    v_mine   integer[];
BEGIN
    FOR i IN 1 .. coalesce(cardinality(p_event), 0) LOOP
        code := NULL; message := NULL; seats := NULL; seq := NULL;
        IF p_confirm[i] AND v_event IS DISTINCT FROM p_event[i] THEN
            -- The first confirmed booking of a run of this event's: one search for the run.
            v_event := p_event[i];
            SELECT sum(p_n[j]) INTO v_need FROM generate_subscripts(p_event, 1) j
            WHERE j >= i AND p_confirm[j] AND p_event[j] = v_event;
            PERFORM pg_advisory_xact_lock_shared(p_lock[i]);
            SELECT seats_free_from INTO v_floor FROM events WHERE id = v_event;
            v_shared := ARRAY(
                SELECT seat_no FROM event_seats
                WHERE event_id = v_event AND booking_id IS NULL AND hold_id IS NULL AND seat_no >= coalesce(v_floor, 1)
                ORDER BY seat_no LIMIT v_need FOR UPDATE SKIP LOCKED);
            IF cardinality(v_shared) > 0 AND v_shared[1] - v_floor > 32 THEN
                PERFORM happening_raise_seat_floor(v_event);
            END IF;
        END IF;
        v_mine := '{}';
        IF p_confirm[i] AND p_event[i] = v_event AND cardinality(v_shared) >= p_n[i] THEN
            v_mine := v_shared[1:p_n[i]];
            v_shared := v_shared[p_n[i] + 1:];
        END IF;
        BEGIN
            IF cardinality(v_mine) > 0 THEN
                PERFORM happening_booking_begin(p_event[i], p_lock[i], p_booking[i], p_key_user[i], p_key[i], p_fingerprint[i], p_now[i]);
                PERFORM happening_booking_rows(p_event[i], p_booking[i], p_user[i], p_requested[i], v_mine, NULL, p_now[i],
                                               p_action[i], p_status[i], p_note_id[i], p_note_kind[i], p_note_seats[i]);
                seats := v_mine;
            ELSIF p_confirm[i] THEN
                -- No share: fewer seats were free (or unlocked) than the run asked. Its own
                -- search here could take seats shared out to the bookings after it (locked
                -- by this transaction and still free), so it is contended: the
                -- store tries it again alone, blocking, after this batch. (The checks first,
                -- so that a missing or cancelled event, or a taken key, says so.)
                PERFORM happening_booking_begin(p_event[i], p_lock[i], p_booking[i], p_key_user[i], p_key[i], p_fingerprint[i], p_now[i]);
                RAISE EXCEPTION USING ERRCODE = 'HP005', MESSAGE = 'contended';
            ELSE
                seq := happening_enqueue(
                    p_event[i], p_lock[i], p_booking[i], p_user[i], p_requested[i],
                    p_key_user[i], p_key[i], p_fingerprint[i], p_now[i],
                    p_action[i], p_status[i], p_note_id[i], p_note_kind[i], p_note_seats[i]);
            END IF;
        EXCEPTION WHEN OTHERS THEN
            code := SQLSTATE;
            message := SQLERRM;
            seats := NULL;
            -- Rolled back: its share is still free, and locked by this batch.
            v_shared := v_mine || v_shared;
            v_mine := '{}';
        END;
        IF cardinality(v_mine) > 0 THEN
            -- Written: its seats, in this transaction (see the top). They are locked by it
            -- and free, so every one is taken.
            IF cardinality(happening_take_seats(p_event[i], v_mine, p_booking[i], NULL)) <> p_n[i] THEN
                RAISE EXCEPTION 'booking % could not take its shared seats %', p_booking[i], v_mine;
            END IF;
        END IF;
        RETURN NEXT;
    END LOOP;
END
$fn$;
