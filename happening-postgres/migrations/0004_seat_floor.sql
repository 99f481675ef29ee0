-- Where the search for an event's lowest free seat starts.
--
-- Taking a seat updates its row, and the partial index of free seats keeps an entry for
-- every seat taken since the last vacuum: on a hot event each search for the lowest free
-- seat walked all of them from seat 1 (BENCHMARKS.md, "PostgreSQL: engine vs the seed's
-- design"). `events.seats_free_from` is a floor below which every seat is taken, so the
-- searches start there instead.
--
-- Invariant, in every committed state: no seat below `seats_free_from` is free.
-- - Freeing a seat (cancel, cancel seats, a hold released or expired, an event cancelled)
--   lowers the floor to it if it is above: a trigger, so that no path can forget it. It
--   locks the event row in any case, until the commit. It is deferred to the commit, so
--   that the event row is locked last, after every seat row the transaction locks, and a
--   cancel never waits for it while holding seats another transaction wants.
-- - Raising the floor (`happening_raise_seat_floor`) locks the event row first (skipping it
--   if another transaction has it) and then takes the lowest seat free in a snapshot taken
--   after that lock: a seat freed by a transaction still running is lowered again by its
--   trigger, which waits for the lock; one freed before is seen. Seats that concurrent
--   bookings are taking still look free in that snapshot, so a booking that rolls back
--   never leaves a free seat below the floor.
-- Starting at 1 is always correct (existing events begin there); a floor that is too low
-- only makes a search longer.
ALTER TABLE events ADD COLUMN seats_free_from integer NOT NULL DEFAULT 1 CHECK (seats_free_from >= 1);

CREATE FUNCTION happening_seat_freed() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    -- Lock the row even when the floor is already at or below the seat: else a raise could
    -- lock it, not yet see this seat free (this transaction has not committed), and lift
    -- the floor above it. Holding the lock until this commit makes a raise skip the event.
    PERFORM 1 FROM events WHERE id = NEW.event_id FOR NO KEY UPDATE;
    UPDATE events SET seats_free_from = NEW.seat_no WHERE id = NEW.event_id AND seats_free_from > NEW.seat_no;
    RETURN NULL;
END
$fn$;

CREATE CONSTRAINT TRIGGER event_seats_freed AFTER UPDATE OF booking_id, hold_id ON event_seats
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN ((OLD.booking_id IS NOT NULL OR OLD.hold_id IS NOT NULL) AND NEW.booking_id IS NULL AND NEW.hold_id IS NULL)
    EXECUTE FUNCTION happening_seat_freed();

-- Moves the floor up to the event's lowest free seat, unless another transaction holds the
-- event row (a cancel committing, another raise): then it is left for a later booking.
-- Called by a booking that found its seats far above the floor; in the caller's
-- transaction (a rollback undoes it with the rest).
CREATE FUNCTION happening_raise_seat_floor(p_event uuid) RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    v_floor integer;
BEGIN
    SELECT seats_free_from INTO v_floor FROM events WHERE id = p_event FOR NO KEY UPDATE SKIP LOCKED;
    IF FOUND THEN
        -- A new statement, so a new snapshot: taken after the lock.
        UPDATE events SET seats_free_from = f.lo
        FROM (SELECT min(seat_no) AS lo FROM event_seats
              WHERE event_id = p_event AND booking_id IS NULL AND hold_id IS NULL AND seat_no >= v_floor) f
        WHERE id = p_event AND f.lo > seats_free_from;
    END IF;
END
$fn$;

-- `happening_confirm` of 0002 again, whole (an applied migration is never edited: sqlx checks
-- each one's checksum at start), searching from the floor, and raising it when the seats it
-- took lie more than 32 above. What a search still walks is then the seats taken or being
-- taken since the last raise: about as many as bookings in flight (BENCHMARKS.md: on a hot
-- event with 64 clients, a third of the buffers per search, an eighth per admission probe).
CREATE OR REPLACE FUNCTION happening_confirm(
    p_event uuid, p_lock bigint, p_booking uuid, p_user uuid, p_requested integer, p_n integer,
    p_wanted integer[], p_strict boolean, p_blocking boolean,
    p_key_user uuid, p_key text, p_fingerprint bigint, p_now timestamptz,
    p_action text, p_status text, p_note_id uuid, p_note_kind text, p_note_seats integer
) RETURNS integer[] LANGUAGE plpgsql AS $fn$
DECLARE
    v_status text;
    v_floor  integer;
    v_seats  integer[];
    v_more   integer[];
    v_taken  integer[];
    v_free   bigint;
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
    INSERT INTO bookings (id, event_id, user_id, seats, seat_numbers, status, queue_seq, hold_id, created_at, updated_at)
    VALUES (p_booking, p_event, p_user, p_requested, v_seats, 'confirmed', NULL, NULL, p_now, p_now);
    INSERT INTO booking_history (booking_id, action, status, seat_numbers, created_at)
    VALUES (p_booking, p_action, p_status, v_seats, p_now);
    INSERT INTO notifications (id, user_id, type, event_id, booking_id, org_id, seats, status, read, created_at)
    VALUES (p_note_id, p_user, p_note_kind, p_event, p_booking, NULL, p_note_seats, 'pending', false, p_now);
    RETURN v_seats;
END
$fn$;
