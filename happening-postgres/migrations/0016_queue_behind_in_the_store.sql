-- A newcomer queues behind the waitlist in the store's own step (SeatStore::confirm's
-- `behind_queue`), so that PostgreSQL alone can confirm a booking without first probing the
-- event (`happening_probe`): the admission derived from the store skips the probe for an
-- event it has not seen short lately (`SlotCounter::unchecked_take`), and only a booking
-- the store finds short asks it (for the waitlist's cap). Over 1,000 events at 64 clients
-- over HTTP the probes were 9,525 calls for 38,663 bookings, and a stage every booking
-- passed through, so the batches behind it stayed small (6.6 bookings each).
--
-- `happening_book_batch` takes `p_behind` (per item): a confirmed item with it is refused,
-- `HP006` ('queued', mapped to Short), while a booking of its event waits, whether
-- committed (one look per event, on `bookings_waiting_idx`) or written ahead of it in the
-- same batch; the seats such items would have wanted are not searched for. Its other steps
-- are 0015's. `SET enable_seqscan = off`: the look at the waitlist must stay on its index in
-- a plan made while `bookings` was empty (the warm pool plans at start, see 0015). Without
-- it, on a table analyzed while empty, it was a sequential scan: 1,000 bookings read for an
-- event with nobody waiting (tests/batch.rs).
--
-- `happening_confirm_behind` is `happening_confirm` (0005; requested seats, and bookings
-- contended in a batch) with the same check first, under the event's shared lock: before
-- the seats, since a newcomer behind the queue waits whatever seats it asked for (a strict
-- request for taken seats waits rather than conflicts, as the engine decided it when the
-- admission probed; the reference model's rule). Its SET applies to the statements of
-- `happening_confirm` too, all of them index lookups.
--
-- The batch function of 0015 (16 arguments) stays, as a call of the new one with `p_behind`
-- false, for engines of the previous release while a rolling upgrade runs (they probe first,
-- as they always did); a later migration drops it.

CREATE FUNCTION happening_book_batch(
    p_confirm boolean[], p_event uuid[], p_lock bigint[], p_booking uuid[], p_user uuid[],
    p_requested integer[], p_n integer[],
    p_key_user uuid[], p_key text[], p_fingerprint bigint[], p_now timestamptz[],
    p_action text[], p_status text[], p_note_id uuid[], p_note_kind text[], p_note_seats integer[],
    p_behind boolean[]
) RETURNS TABLE (code text, message text, seats integer[], seq bigint) LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
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
    v_waits   boolean[]; -- someone waits (asked only of an event with p_behind items)
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
    -- And whether anyone waits, for an event whose newcomers queue behind the waitlist
    -- (`p_behind`, see SeatStore::confirm): those are refused (short) and need no seats.
    SELECT array_agg(d.event_id ORDER BY d.first),
           array_agg(CASE WHEN e.status IS NULL THEN 'HP001' WHEN e.status = 'cancelled' THEN 'HP002' END ORDER BY d.first),
           array_agg(coalesce(e.seats_free_from, 1) ORDER BY d.first),
           array_agg(CASE WHEN e.status = 'cancelled' OR e.status IS NULL THEN 0 WHEN w.waits THEN d.need_ahead ELSE d.need END
                     ORDER BY d.first),
           array_agg(coalesce(w.waits, false) ORDER BY d.first)
      INTO v_events, v_refused, v_floor, v_need, v_waits
      FROM (SELECT p_event[j] AS event_id, min(j) AS first,
                   coalesce(sum(p_n[j]) FILTER (WHERE p_confirm[j] AND p_n[j] > 0), 0)::integer AS need,
                   coalesce(sum(p_n[j]) FILTER (WHERE p_confirm[j] AND p_n[j] > 0 AND NOT coalesce(p_behind[j], false)), 0)::integer AS need_ahead,
                   bool_or(p_confirm[j] AND coalesce(p_behind[j], false)) AS behind
              FROM generate_subscripts(p_event, 1) AS j GROUP BY p_event[j]) AS d
      LEFT JOIN LATERAL (SELECT ev.status, ev.seats_free_from FROM events ev WHERE ev.id = d.event_id OFFSET 0) AS e ON true
      LEFT JOIN LATERAL (SELECT EXISTS (SELECT 1 FROM bookings b WHERE b.event_id = d.event_id AND b.status = 'waiting') AS waits
                          WHERE d.behind OFFSET 0) AS w ON true;
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
                IF p_confirm[i] AND coalesce(p_behind[i], false) AND v_waits[v_k] THEN
                    RAISE EXCEPTION USING ERRCODE = 'HP006', MESSAGE = 'queued';
                END IF;
                IF v_next[v_k] + v_n - 1 > v_last[v_k] THEN
                    -- Rolls the key back with the subtransaction.
                    RAISE EXCEPTION USING ERRCODE = 'HP005', MESSAGE = 'contended';
                END IF;
            EXCEPTION WHEN OTHERS THEN
                r_code[i] := SQLSTATE;
                r_msg[i] := SQLERRM;
            END;
        ELSIF p_confirm[i] AND coalesce(p_behind[i], false) AND v_waits[v_k] THEN
            -- Someone waits, in the store or ahead in this batch: a newcomer queues behind.
            r_code[i] := 'HP006';
            r_msg[i] := 'queued';
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
                v_waits[v_k] := true;
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

CREATE FUNCTION happening_confirm_behind(
    p_behind boolean,
    p_event uuid, p_lock bigint, p_booking uuid, p_user uuid, p_requested integer, p_n integer,
    p_wanted integer[], p_strict boolean, p_blocking boolean,
    p_key_user uuid, p_key text, p_fingerprint bigint, p_now timestamptz,
    p_action text, p_status text, p_note_id uuid, p_note_kind text, p_note_seats integer
) RETURNS integer[] LANGUAGE plpgsql
SET enable_seqscan = off
AS $fn$
BEGIN
    IF p_behind THEN
        PERFORM pg_advisory_xact_lock_shared(p_lock);
        IF EXISTS (SELECT 1 FROM bookings b WHERE b.event_id = p_event AND b.status = 'waiting') THEN
            RAISE EXCEPTION USING ERRCODE = 'HP006', MESSAGE = 'queued';
        END IF;
    END IF;
    RETURN happening_confirm(p_event, p_lock, p_booking, p_user, p_requested, p_n, p_wanted, p_strict, p_blocking,
                             p_key_user, p_key, p_fingerprint, p_now, p_action, p_status, p_note_id, p_note_kind, p_note_seats);
END
$fn$;

CREATE OR REPLACE FUNCTION happening_book_batch(
    p_confirm boolean[], p_event uuid[], p_lock bigint[], p_booking uuid[], p_user uuid[],
    p_requested integer[], p_n integer[],
    p_key_user uuid[], p_key text[], p_fingerprint bigint[], p_now timestamptz[],
    p_action text[], p_status text[], p_note_id uuid[], p_note_kind text[], p_note_seats integer[]
) RETURNS TABLE (code text, message text, seats integer[], seq bigint) LANGUAGE sql AS $fn$
    SELECT * FROM happening_book_batch(p_confirm, p_event, p_lock, p_booking, p_user, p_requested, p_n, p_key_user, p_key,
                                       p_fingerprint, p_now, p_action, p_status, p_note_id, p_note_kind, p_note_seats,
                                       array_fill(false, ARRAY[coalesce(cardinality(p_event), 0)]));
$fn$;
