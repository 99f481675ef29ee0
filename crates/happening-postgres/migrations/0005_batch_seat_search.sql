-- One seat search per event per batch, instead of one per booking.
--
-- On a hot event each search for the lowest free seats walks, from the floor (0004), past
-- the seats that bookings in flight are taking: with 64 clients about 35 buffers a search.
-- A batch's confirmed bookings of one event now share one search: the batch finds the
-- lowest free seats for all of them at once and locks them (`FOR UPDATE SKIP LOCKED`),
-- then hands each booking its share, which `happening_confirm` takes by seat number (the
-- primary key) instead of searching. A booking that fails gives its share back to the next
-- one; a booking left without a share (fewer seats were free than asked) searches on its
-- own, as before.
--
-- Locks, in the order every transaction takes them (no new cycle):
-- - The event's shared advisory lock comes first, as in each booking, so an exclusive
--   holder (an event cancelled or resized) never waits for seats this batch has locked
--   while the batch waits for it.
-- - The shared seats are locked in the batch's own transaction, not in a booking's
--   subtransaction, so one booking's rollback does not release another's seats. Seats
--   locked and left unused (bookings that failed at the end of a batch) stay free; they
--   are only out of reach of other bookings until this batch commits.
-- - The floor is raised here when the seats found lie more than 32 above it, as a booking
--   searching on its own does (0004): the seats this batch holds are still free in the
--   raise's snapshot, so the floor never passes them.
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
            IF p_confirm[i] THEN
                seats := happening_confirm(
                    p_event[i], p_lock[i], p_booking[i], p_user[i], p_requested[i], p_n[i],
                    v_mine, false, false,
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
            -- Rolled back: its share is still free, and locked by this batch.
            v_shared := v_mine || v_shared;
        END;
        RETURN NEXT;
    END LOOP;
END
$fn$;
