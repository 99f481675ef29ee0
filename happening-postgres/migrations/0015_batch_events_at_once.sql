-- A batch locks, checks and searches all its events at once, and takes all its seats with
-- one statement, instead of doing each for every run of one event's bookings.
--
-- Over 1,000 events a batch's runs are mostly one booking each, and every run paid its own
-- statements: the sum of its seats, two shared advisory locks, the event's floor and status
-- (two reads of one row), the search, and a call taking its seats (0011). In 10 s at 64
-- clients over HTTP (pg_stat_statements): 24,841 runs for 26,466 bookings, those statements
-- 5.3 s of the batches' 15.2 s of execution. Now, per batch whatever its events:
--   1. the shared advisory lock of each distinct lock key (one statement);
--   2. each event's status, floor and seats wanted, in a snapshot taken after the locks (so
--      that a cancel committed before a lock was granted is seen);
--   3. one search: each event's lowest free seats from its floor, FOR UPDATE SKIP LOCKED;
--   4. the shares handed out in the bookings' order (array work, no statement);
--   5. one UPDATE taking every seat handed out, by the ctids the search read
--      (`happening_take_shares`, now for many events).
-- Besides these, as before: a floor raise for an event whose seats lie far above its floor
-- (0004), and each idempotency key's INSERT.
-- A booking that fails (refused, key taken, no full share left) is decided before its share
-- is handed out, so the seats go to the next booking of its event; seats found and handed
-- to nobody stay free (locked by this batch until its commit).

DROP FUNCTION happening_take_shares(uuid, integer[], uuid[]);

-- Takes the seat rows at `p_rows` (their ctids) for bookings `p_owners`, row i for booking
-- i: seats this transaction locked while they were free (the batch's search, which read
-- their ctids as it locked them; a locked row is never moved, the ctid holds until the
-- commit). Fails unless it took every one.
--
-- By ctid (a TID scan), not by key: one statement for all the batch's seats with no index
-- walk at all, and one plan whatever the statistics. A connection keeps the generic plan it
-- made first, and the server's pool makes it at start (`batch::warm_up`), on a new
-- deployment while `event_seats` is empty. A single UPDATE joining the seats' keys with
-- `unnest(...)` was planned there as a hash join over a sequential scan (769 buffers and 37
-- ms a call over 1,000 events, 875 bookings/s instead of 3,684, until the table's next
-- ANALYZE); with sequential scans and hash and merge joins off, on a table analyzed while
-- empty, as a walk of the whole primary key per call. Here the only other plan is a
-- sequential scan, which the SET rules out (tests/batch.rs plans the take on an empty
-- table, analyzed and not).
CREATE FUNCTION happening_take_shares(p_rows tid[], p_owners uuid[])
RETURNS void LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $fn$
DECLARE
    v_taken bigint;
BEGIN
    -- `coalesce(...) IS NULL`: a seat never goes to two bookings, whatever a caller passes.
    UPDATE event_seats SET booking_id = p_owners[array_position(p_rows, ctid)]
     WHERE ctid = ANY (p_rows) AND coalesce(booking_id, hold_id) IS NULL;
    GET DIAGNOSTICS v_taken = ROW_COUNT;
    IF v_taken <> coalesce(cardinality(p_rows), 0) THEN
        RAISE EXCEPTION 'took % of the % shared seats', v_taken, coalesce(cardinality(p_rows), 0);
    END IF;
END
$fn$;

CREATE OR REPLACE FUNCTION happening_book_batch(
    p_confirm boolean[], p_event uuid[], p_lock bigint[], p_booking uuid[], p_user uuid[],
    p_requested integer[], p_n integer[],
    p_key_user uuid[], p_key text[], p_fingerprint bigint[], p_now timestamptz[],
    p_action text[], p_status text[], p_note_id uuid[], p_note_kind text[], p_note_seats integer[]
) RETURNS TABLE (code text, message text, seats integer[], seq bigint) LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $fn$
DECLARE
    -- Per distinct event k, in order of first appearance: its id, HP001/HP002 for all its
    -- bookings (or NULL), its floor, the seats its confirmed bookings want (0 if refused),
    -- and its found seats: v_found[v_next[k] .. v_last[k]] (their rows at v_found_row[..]),
    -- handed out from v_next[k] up.
    v_events  uuid[];
    v_refused text[];
    v_floor   integer[];
    v_need    integer[];
    v_next    integer[];
    v_last    integer[];
    v_found   integer[] := '{}'; -- found seats, by event then seat
    v_found_k integer[] := '{}'; -- the event (k) of each
    v_found_row tid[] := '{}';   -- the row (ctid) of each
    v_k       integer;
    v_n       integer;
    v_mine    integer[];
    -- Per item i: its error (NULL: written), its queue place if waiting, and its seats if
    -- confirmed: v_flat[r_from[i] : r_to[i]] (empty when r_from[i] > r_to[i]).
    r_code    text[] := '{}';
    r_msg     text[] := '{}';
    r_seq     bigint[] := '{}';
    r_from    integer[] := '{}';
    r_to      integer[] := '{}';
    v_flat    integer[] := '{}';
    v_ok      integer[] := '{}'; -- the items whose checks passed, in order
    v_take    tid[] := '{}';     -- every seat handed out: its row and booking
    v_owner   uuid[] := '{}';
    k         integer;
BEGIN
    IF coalesce(cardinality(p_event), 0) = 0 THEN
        RETURN;
    END IF;
    -- 1. The shared locks keep each event live (cancelling or resizing one takes its lock
    -- exclusively) until the batch commits. In ascending order of key, in every batch: a
    -- shared request queues behind a waiting exclusive one, so two batches locking in
    -- opposite orders could each wait for the other through two cancels' queued locks.
    -- (A volatile function of the select list runs after the sort.)
    PERFORM pg_advisory_xact_lock_shared(x.l) FROM (SELECT DISTINCT unnest(p_lock) AS l) AS x ORDER BY x.l;
    -- 2. A new statement, so a snapshot taken after the locks were granted. Each event by
    -- its primary key: `OFFSET 0` keeps the lookup a subquery run per event, where a join
    -- was planned (generically, for 200 events) as a hash join over every event's row: 63
    -- buffers a call over 1,000 events, against 3 per event.
    SELECT array_agg(d.event_id ORDER BY d.first),
           array_agg(CASE WHEN e.status IS NULL THEN 'HP001' WHEN e.status = 'cancelled' THEN 'HP002' END ORDER BY d.first),
           array_agg(coalesce(e.seats_free_from, 1) ORDER BY d.first),
           array_agg(CASE WHEN e.status = 'cancelled' OR e.status IS NULL THEN 0 ELSE d.need END ORDER BY d.first)
      INTO v_events, v_refused, v_floor, v_need
      FROM (SELECT p_event[j] AS event_id, min(j) AS first,
                   coalesce(sum(p_n[j]) FILTER (WHERE p_confirm[j] AND p_n[j] > 0), 0)::integer AS need
              FROM generate_subscripts(p_event, 1) AS j GROUP BY p_event[j]) AS d
      LEFT JOIN LATERAL (SELECT ev.status, ev.seats_free_from FROM events ev WHERE ev.id = d.event_id OFFSET 0) AS e ON true;
    -- 3. Each event's lowest free seats from its floor, skipping seats other batches locked.
    -- With each seat its row's ctid, as locked (the latest version: a row updated since
    -- this statement's snapshot is read again before it is locked).
    SELECT coalesce(array_agg(s.seat_no ORDER BY u.k, s.seat_no), '{}'), coalesce(array_agg(u.k ORDER BY u.k, s.seat_no), '{}'),
           coalesce(array_agg(s.seat_row ORDER BY u.k, s.seat_no), '{}')
      INTO v_found, v_found_k, v_found_row
      FROM unnest(v_events, v_floor, v_need) WITH ORDINALITY AS u(event_id, floor, need, k)
     CROSS JOIN LATERAL (
           SELECT es.seat_no, es.ctid AS seat_row FROM event_seats es
            WHERE es.event_id = u.event_id AND es.booking_id IS NULL AND es.hold_id IS NULL AND es.seat_no >= u.floor
            ORDER BY es.seat_no LIMIT u.need FOR UPDATE SKIP LOCKED) AS s
     WHERE u.need > 0;
    v_next := array_fill(1, ARRAY[cardinality(v_events)]);
    v_last := array_fill(0, ARRAY[cardinality(v_events)]);
    FOR j IN REVERSE cardinality(v_found) .. 1 LOOP
        v_next[v_found_k[j]] := j;
        IF v_last[v_found_k[j]] = 0 THEN
            v_last[v_found_k[j]] := j;
        END IF;
    END LOOP;
    FOR k IN 1 .. cardinality(v_events) LOOP
        IF v_last[k] > 0 AND v_found[v_next[k]] - v_floor[k] > 32 THEN
            PERFORM happening_raise_seat_floor(v_events[k]);
        END IF;
    END LOOP;

    -- 4. The bookings in order.
    FOR i IN 1 .. cardinality(p_event) LOOP
        r_code[i] := NULL; r_msg[i] := NULL; r_seq[i] := NULL;
        v_k := array_position(v_events, p_event[i]);
        v_n := CASE WHEN p_confirm[i] THEN p_n[i] ELSE 0 END;
        v_mine := '{}';
        IF p_confirm[i] AND coalesce(p_n[i], 0) < 1 THEN
            -- A caller's bug, refused alone (it would be written as waiting).
            r_code[i] := '22023';
            r_msg[i] := 'a confirmed booking takes at least one seat';
        ELSIF v_refused[v_k] IS NOT NULL THEN
            r_code[i] := v_refused[v_k];
            r_msg[i] := CASE v_refused[v_k] WHEN 'HP001' THEN 'event not found' ELSE 'event cancelled' END;
        ELSIF p_key[i] IS NOT NULL THEN
            -- Binding the key can fail (taken: HP003) or wait for a twin's transaction, and
            -- be a deadlock's victim (0005): a subtransaction, so that it fails alone.
            BEGIN
                INSERT INTO idempotency_keys (user_id, key, fingerprint, booking_id, created_at)
                VALUES (p_key_user[i], p_key[i], p_fingerprint[i], p_booking[i], p_now[i]) ON CONFLICT DO NOTHING;
                IF NOT FOUND THEN
                    RAISE EXCEPTION USING ERRCODE = 'HP003', MESSAGE = 'idempotency key taken';
                END IF;
                IF v_next[v_k] + v_n - 1 > v_last[v_k] THEN
                    -- Rolls the key back with the subtransaction.
                    RAISE EXCEPTION USING ERRCODE = 'HP005', MESSAGE = 'contended';
                END IF;
            EXCEPTION WHEN OTHERS THEN
                r_code[i] := SQLSTATE;
                r_msg[i] := SQLERRM;
            END;
        ELSIF v_next[v_k] + v_n - 1 > v_last[v_k] THEN
            -- No full share: fewer seats were free (or unlocked) than the event's bookings
            -- asked. Its own search here could take seats shared out to the bookings after
            -- it, so it is contended: the store tries it again alone, blocking, after this
            -- batch.
            r_code[i] := 'HP005';
            r_msg[i] := 'contended';
        END IF;
        IF r_code[i] IS NULL THEN
            IF v_n > 0 THEN
                v_mine := v_found[v_next[v_k] : v_next[v_k] + v_n - 1];
                v_take := v_take || v_found_row[v_next[v_k] : v_next[v_k] + v_n - 1];
                v_next[v_k] := v_next[v_k] + v_n;
                v_owner := v_owner || array_fill(p_booking[i], ARRAY[v_n]);
            ELSE
                r_seq[i] := nextval('booking_queue_seq');
            END IF;
            v_ok := v_ok || i;
        END IF;
        r_from[i] := cardinality(v_flat) + 1;
        v_flat := v_flat || v_mine;
        r_to[i] := cardinality(v_flat);
    END LOOP;
    -- 5. Every seat handed out, in this transaction.
    PERFORM happening_take_shares(v_take, v_owner);

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
        -- One booking's rows failed (see 0006): each booking alone.
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

    FOR i IN 1 .. cardinality(p_event) LOOP
        code := r_code[i];
        message := r_msg[i];
        seats := CASE WHEN r_code[i] IS NULL AND p_confirm[i] THEN v_flat[r_from[i]:r_to[i]] END;
        seq := CASE WHEN r_code[i] IS NULL THEN r_seq[i] END;
        RETURN NEXT;
    END LOOP;
END
$fn$;
