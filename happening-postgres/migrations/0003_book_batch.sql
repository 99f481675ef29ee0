-- Group commit for the hot path. Under load, concurrent bookings (confirmed or waiting) are
-- gathered by the store (src/batch.rs) and sent as one call of `happening_book_batch`: one
-- round trip and one commit (one WAL flush) for up to 32 bookings instead of one each.
--
-- Each item runs in its own subtransaction (the EXCEPTION block), so that one item's
-- failure (a seat taken, an idempotency key reused, contention) rolls back that item alone
-- and is reported in its row of the result; the others commit together. The caller sorts
-- the items by event lock key, so batches take their shared event locks in one order.

-- A waiting booking, as one server-side call: the event's shared advisory lock, the event
-- must be live, the idempotency key, the next place in the global queue order, then the
-- booking with its history row and outbox row. Returns its `queue_seq`. Errors as
-- `happening_confirm`: HP001 event not found, HP002 event cancelled, HP003 key taken.
CREATE FUNCTION happening_enqueue(
    p_event uuid, p_lock bigint, p_booking uuid, p_user uuid, p_requested integer,
    p_key_user uuid, p_key text, p_fingerprint bigint, p_now timestamptz,
    p_action text, p_status text, p_note_id uuid, p_note_kind text, p_note_seats integer
) RETURNS bigint LANGUAGE plpgsql AS $fn$
DECLARE
    v_status text;
    v_seq    bigint;
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
    v_seq := nextval('booking_queue_seq');
    INSERT INTO bookings (id, event_id, user_id, seats, seat_numbers, status, queue_seq, hold_id, created_at, updated_at)
    VALUES (p_booking, p_event, p_user, p_requested, '{}', 'waiting', v_seq, NULL, p_now, p_now);
    INSERT INTO booking_history (booking_id, action, status, seat_numbers, created_at)
    VALUES (p_booking, p_action, p_status, '{}', p_now);
    INSERT INTO notifications (id, user_id, type, event_id, booking_id, org_id, seats, status, read, created_at)
    VALUES (p_note_id, p_user, p_note_kind, p_event, p_booking, NULL, p_note_seats, 'pending', false, p_now);
    RETURN v_seq;
END
$fn$;

-- Item i is a confirmed booking of the lowest free seats (`p_confirm[i]`: `happening_confirm`
-- in fast mode; a contended item reports HP005 and the caller retries it alone, blocking) or
-- a waiting one (`happening_enqueue`). One row per item, in order: `code` NULL and `seats`
-- (confirmed) or `seq` (waiting), or the item's SQLSTATE and message.
CREATE FUNCTION happening_book_batch(
    p_confirm boolean[], p_event uuid[], p_lock bigint[], p_booking uuid[], p_user uuid[],
    p_requested integer[], p_n integer[],
    p_key_user uuid[], p_key text[], p_fingerprint bigint[], p_now timestamptz[],
    p_action text[], p_status text[], p_note_id uuid[], p_note_kind text[], p_note_seats integer[]
) RETURNS TABLE (code text, message text, seats integer[], seq bigint) LANGUAGE plpgsql AS $fn$
BEGIN
    FOR i IN 1 .. coalesce(cardinality(p_event), 0) LOOP
        code := NULL; message := NULL; seats := NULL; seq := NULL;
        BEGIN
            IF p_confirm[i] THEN
                seats := happening_confirm(
                    p_event[i], p_lock[i], p_booking[i], p_user[i], p_requested[i], p_n[i],
                    '{}', false, false,
                    p_key_user[i], p_key[i], p_fingerprint[i], p_now[i],
                    p_action[i], p_status[i], p_note_id[i], p_note_kind[i], p_note_seats[i]);
            ELSE
                seq := happening_enqueue(
                    p_event[i], p_lock[i], p_booking[i], p_user[i], p_requested[i],
                    p_key_user[i], p_key[i], p_fingerprint[i], p_now[i],
                    p_action[i], p_status[i], p_note_id[i], p_note_kind[i], p_note_seats[i]);
            END IF;
        EXCEPTION WHEN OTHERS THEN
            code := SQLSTATE;
            message := SQLERRM;
        END;
        RETURN NEXT;
    END LOOP;
END
$fn$;
