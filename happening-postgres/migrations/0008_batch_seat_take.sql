-- A batch takes the shared seats of a run of one event's bookings in one statement, not
-- one statement per seat (`happening_take_seats` for each booking, 0005).
--
-- After 0006, on the hot event over HTTP, the per-seat UPDATE was the batch's most frequent
-- statement (one per booking, 0.1 ms each with its executor start and the table's CHECK
-- constraints parsed again, as 0006 says of INSERTs) plus a function call per booking.
-- The batch now collects a run's shares with their bookings and takes them with one UPDATE
-- when the run ends: before the next search (so a second run of the same event, in a batch
-- not sorted by event, cannot hand them out again) and after the loop.
--
-- The UPDATE is `seat_no = ANY (seats)` on the primary key, run with EXECUTE ... USING so
-- that it is planned for the seats at hand each time. Its check that the seats are free is
-- written `coalesce(booking_id, hold_id) IS NULL` on purpose: that does not imply the
-- free-seat index's predicate (`booking_id IS NULL AND hold_id IS NULL`), so that index is
-- no candidate. With the predicate spelled out, the planner took the free-seat index with
-- `event_id` alone as its condition and the array as a filter, even for a literal array:
-- 1,197 buffers and 47 ms a call on the hot event (85,000 entries read), and 725 bookings/s
-- instead of 2,200 over HTTP. 0005 met the same plan for `= ANY` in a cached generic plan.
-- On the primary key it is 13 buffers. The seats are locked by this batch and were free
-- when locked, so every one is taken; the check stays (a seat never goes to two bookings),
-- and a batch that took fewer than it was given fails.

-- Takes `p_seats` of `p_event`, seat i for booking `p_owners[i]`: seats this transaction
-- locked while they were free (the batch's search).
CREATE FUNCTION happening_take_shares(p_event uuid, p_seats integer[], p_owners uuid[])
RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    v_taken bigint;
BEGIN
    IF coalesce(cardinality(p_seats), 0) = 0 THEN
        RETURN;
    END IF;
    EXECUTE 'UPDATE event_seats SET booking_id = ($3::uuid[])[array_position($2::integer[], seat_no)]
             WHERE event_id = $1 AND seat_no = ANY ($2::integer[]) AND coalesce(booking_id, hold_id) IS NULL'
        USING p_event, p_seats, p_owners;
    GET DIAGNOSTICS v_taken = ROW_COUNT;
    IF v_taken <> cardinality(p_seats) THEN
        RAISE EXCEPTION 'took % of the shared seats % of event %', v_taken, p_seats, p_event;
    END IF;
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
    v_take   integer[] := '{}'; -- seats of `v_event` handed out and not yet taken
    v_owner  uuid[] := '{}';    -- the booking of each seat of `v_take`
BEGIN
    FOR i IN 1 .. coalesce(cardinality(p_event), 0) LOOP
        r_code[i] := NULL; r_msg[i] := NULL; r_seq[i] := NULL;
        IF p_confirm[i] AND v_event IS DISTINCT FROM p_event[i] THEN
            -- The first confirmed booking of a run of this event's: one search for the run.
            -- The last run's seats are taken first, so that this search cannot hand them
            -- out again if it is the same event (a batch not sorted by event).
            PERFORM happening_take_shares(v_event, v_take, v_owner);
            v_take := '{}';
            v_owner := '{}';
            v_event := p_event[i];
            SELECT sum(p_n[j]) INTO v_need FROM generate_subscripts(p_event, 1) j
            WHERE j >= i AND p_confirm[j] AND p_event[j] = v_event;
            PERFORM pg_advisory_xact_lock_shared(p_lock[i]);
            SELECT seats_free_from INTO v_floor FROM events WHERE id = v_event;
            -- Seats this batch locked for an earlier run of this event and has not handed
            -- out are still free; the ones it handed out are taken already (above).
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
            -- Its seats are taken with the run's (above and below), in this transaction.
            v_take := v_take || v_mine;
            v_owner := v_owner || array_fill(p_booking[i], ARRAY[cardinality(v_mine)]);
        END IF;
    END LOOP;
    PERFORM happening_take_shares(v_event, v_take, v_owner);

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
