-- A batch writes its bookings' rows in three statements, not three per booking.
--
-- Profiled during a flash sale (perf over the whole machine, BENCHMARKS.md "Rows written
-- per batch"), PostgreSQL spent 11% of all CPU in `ExecConstraints`: each execution of an
-- INSERT parses its table's CHECK constraints from their stored text (`stringToNode`) and
-- plans them again, and 0005's batch ran three INSERTs per booking (booking, history,
-- outbox), each a statement of its own with its executor start and end. One INSERT per table
-- per batch pays that once for up to 32 bookings.
--
-- The checks no longer call `happening_booking_begin` in a subtransaction per booking
-- either (the same profile: a subtransaction, a function call, a lock and an event read per
-- booking). The event is checked once per run of its bookings (its shared advisory lock,
-- live, found), and every booking of the run fails alone with HP001 or HP002 if it is not.
-- Only a booking with an idempotency key has a subtransaction: binding the key can fail
-- (HP003) or be a deadlock's victim, and must roll back alone. A booking left without a
-- share is HP005 as before, after those checks.
--
-- The rows go in after the loop, for every booking whose checks passed. They can only fail
-- on a bug or a corrupted row (every value was checked by the engine and above); if one
-- does, the rows are written again one booking at a time, each in a subtransaction, and a
-- booking whose rows fail fails alone: its key row is deleted and its seats are given back
-- (the rows' deferred key check and the free-seat trigger see a consistent state at commit).
--
-- Seats are taken as in 0005, right after a booking's checks and before the next booking's
-- turn, in the batch's own transaction (event_seats has no foreign key to bookings).
-- History and outbox rows are inserted in the items' order, so their ids (`bigserial`) keep
-- the order 0005 gave them.
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
    -- Per item i: its error (NULL: written), its queue place if waiting, and its seats if
    -- confirmed: v_flat[r_from[i] : r_to[i]] (empty when r_from[i] > r_to[i]).
    r_code   text[] := '{}';
    r_msg    text[] := '{}';
    r_seq    bigint[] := '{}';
    r_from   integer[] := '{}';
    r_to     integer[] := '{}';
    v_flat   integer[] := '{}';
    v_ok     integer[] := '{}'; -- the items whose checks passed, in order
    v_checked uuid;             -- the event whose checks `v_refused` holds
    v_status text;
    v_refused text;             -- HP001 or HP002 for every booking of `v_checked`, or NULL
    k        integer;
BEGIN
    FOR i IN 1 .. coalesce(cardinality(p_event), 0) LOOP
        r_code[i] := NULL; r_msg[i] := NULL; r_seq[i] := NULL;
        IF p_confirm[i] AND v_event IS DISTINCT FROM p_event[i] THEN
            -- The first confirmed booking of a run of this event's: one search for the run.
            v_event := p_event[i];
            SELECT sum(p_n[j]) INTO v_need FROM generate_subscripts(p_event, 1) j
            WHERE j >= i AND p_confirm[j] AND p_event[j] = v_event;
            PERFORM pg_advisory_xact_lock_shared(p_lock[i]);
            SELECT seats_free_from INTO v_floor FROM events WHERE id = v_event;
            -- Seats this batch locked for an earlier run of this event and has not handed
            -- out are still free; the ones it handed out are taken already (below).
            v_shared := ARRAY(
                SELECT seat_no FROM event_seats
                WHERE event_id = v_event AND booking_id IS NULL AND hold_id IS NULL AND seat_no >= coalesce(v_floor, 1)
                ORDER BY seat_no LIMIT v_need FOR UPDATE SKIP LOCKED);
            IF cardinality(v_shared) > 0 AND v_shared[1] - v_floor > 32 THEN
                PERFORM happening_raise_seat_floor(v_event);
            END IF;
        END IF;
        IF v_checked IS DISTINCT FROM p_event[i] THEN
            -- The checks of the event, once per run of its bookings: the shared lock keeps it
            -- live (cancelling or resizing an event takes the lock exclusively) until the
            -- batch commits.
            v_checked := p_event[i];
            PERFORM pg_advisory_xact_lock_shared(p_lock[i]);
            SELECT status INTO v_status FROM events WHERE id = p_event[i];
            v_refused := CASE WHEN NOT FOUND THEN 'HP001' WHEN v_status = 'cancelled' THEN 'HP002' END;
        END IF;
        v_mine := '{}';
        IF p_confirm[i] AND p_event[i] = v_event AND cardinality(v_shared) >= p_n[i] THEN
            v_mine := v_shared[1:p_n[i]];
            v_shared := v_shared[p_n[i] + 1:];
        END IF;
        IF v_refused IS NOT NULL THEN
            r_code[i] := v_refused;
            r_msg[i] := CASE v_refused WHEN 'HP001' THEN 'event not found' ELSE 'event cancelled' END;
        ELSIF p_key[i] IS NOT NULL THEN
            -- Binding the key can fail (taken: HP003) or wait for a twin's transaction, and
            -- be a deadlock's victim (0005): a subtransaction, so that it fails alone.
            BEGIN
                INSERT INTO idempotency_keys (user_id, key, fingerprint, booking_id, created_at)
                VALUES (p_key_user[i], p_key[i], p_fingerprint[i], p_booking[i], p_now[i]) ON CONFLICT DO NOTHING;
                IF NOT FOUND THEN
                    RAISE EXCEPTION USING ERRCODE = 'HP003', MESSAGE = 'idempotency key taken';
                END IF;
                IF p_confirm[i] AND cardinality(v_mine) = 0 THEN
                    -- Rolls the key back with the subtransaction.
                    RAISE EXCEPTION USING ERRCODE = 'HP005', MESSAGE = 'contended';
                END IF;
            EXCEPTION WHEN OTHERS THEN
                r_code[i] := SQLSTATE;
                r_msg[i] := SQLERRM;
            END;
        ELSIF p_confirm[i] AND cardinality(v_mine) = 0 THEN
            -- No share: fewer seats were free (or unlocked) than the run asked. Its own
            -- search here could take seats shared out to the bookings after it, so it is
            -- contended: the store tries it again alone, blocking, after this batch.
            r_code[i] := 'HP005';
            r_msg[i] := 'contended';
        END IF;
        IF r_code[i] IS NOT NULL THEN
            -- Its share is still free, and locked by this batch: the next booking's.
            v_shared := v_mine || v_shared;
            v_mine := '{}';
        ELSE
            IF NOT p_confirm[i] THEN
                r_seq[i] := nextval('booking_queue_seq');
            END IF;
            v_ok := v_ok || i;
        END IF;
        r_from[i] := cardinality(v_flat) + 1;
        v_flat := v_flat || v_mine;
        r_to[i] := cardinality(v_flat);
        IF cardinality(v_mine) > 0 THEN
            -- Its seats, in this transaction (0005): locked by it and free, so every one
            -- is taken.
            IF cardinality(happening_take_seats(p_event[i], v_mine, p_booking[i], NULL)) <> p_n[i] THEN
                RAISE EXCEPTION 'booking % could not take its shared seats %', p_booking[i], v_mine;
            END IF;
        END IF;
    END LOOP;

    BEGIN
        INSERT INTO bookings (id, event_id, user_id, seats, seat_numbers, status, queue_seq, hold_id, created_at, updated_at)
        SELECT p_booking[u.ix], p_event[u.ix], p_user[u.ix], p_requested[u.ix], v_flat[r_from[u.ix]:r_to[u.ix]],
               CASE WHEN r_seq[u.ix] IS NULL THEN 'confirmed' ELSE 'waiting' END, r_seq[u.ix], NULL, p_now[u.ix], p_now[u.ix]
        FROM unnest(v_ok) WITH ORDINALITY AS u(ix, ord) ORDER BY u.ord;
        INSERT INTO booking_history (booking_id, action, status, seat_numbers, created_at)
        SELECT p_booking[u.ix], p_action[u.ix], p_status[u.ix], v_flat[r_from[u.ix]:r_to[u.ix]], p_now[u.ix]
        FROM unnest(v_ok) WITH ORDINALITY AS u(ix, ord) ORDER BY u.ord;
        INSERT INTO notifications (id, user_id, type, event_id, booking_id, org_id, seats, status, read, created_at)
        SELECT p_note_id[u.ix], p_user[u.ix], p_note_kind[u.ix], p_event[u.ix], p_booking[u.ix], NULL, p_note_seats[u.ix],
               'pending', false, p_now[u.ix]
        FROM unnest(v_ok) WITH ORDINALITY AS u(ix, ord) ORDER BY u.ord;
    EXCEPTION WHEN OTHERS THEN
        -- One booking's rows failed (see the top): each booking alone.
        FOREACH k IN ARRAY v_ok LOOP
            BEGIN
                PERFORM happening_booking_rows(p_event[k], p_booking[k], p_user[k], p_requested[k], v_flat[r_from[k]:r_to[k]],
                                               r_seq[k], p_now[k], p_action[k], p_status[k], p_note_id[k], p_note_kind[k], p_note_seats[k]);
            EXCEPTION WHEN OTHERS THEN
                r_code[k] := SQLSTATE;
                r_msg[k] := SQLERRM;
                DELETE FROM idempotency_keys WHERE p_key[k] IS NOT NULL AND user_id = p_key_user[k] AND key = p_key[k]
                    AND booking_id = p_booking[k];
                UPDATE event_seats SET booking_id = NULL WHERE event_id = p_event[k] AND booking_id = p_booking[k];
            END;
        END LOOP;
    END;

    FOR i IN 1 .. coalesce(cardinality(p_event), 0) LOOP
        code := r_code[i];
        message := r_msg[i];
        seats := CASE WHEN r_code[i] IS NULL AND p_confirm[i] THEN v_flat[r_from[i]:r_to[i]] END;
        seq := CASE WHEN r_code[i] IS NULL THEN r_seq[i] END;
        RETURN NEXT;
    END LOOP;
END
$fn$;

-- Only 0003's and 0005's batches called it.
DROP FUNCTION happening_enqueue(uuid, bigint, uuid, uuid, integer, uuid, text, bigint, timestamptz, text, text, uuid, text, integer);
