-- A waiting booking is told its place in line (`waiting_number`) by the same step that
-- queues it (SeatStore::enqueue), so that the bookings joining one queue are told 1, 2, 3,
-- ... in queue order, each number once, however many servers write at once.
--
-- `event_queues` keeps each event's count of waiting bookings, kept by triggers on
-- `bookings` (so that no path that queues, promotes, cancels or deletes a booking can miss
-- it). A batch that queues bookings of an event locks the event's row first, reads the
-- count, and only then takes each booking's `queue_seq`: the bookings queued for one event
-- are thereby serialized (a second batch waits for the first to commit), and within that
-- order each booking's number is the count before it plus one. A booking leaving the queue
-- takes the same row lock (its trigger), so no departure interleaves either. The count also
-- answers "how many wait" in O(1), where a count of the waiting index was O(queue).
--
-- The row is written twice per batch that queues (the lock, then the count): a narrow
-- table half-filled per page keeps both HOT updates.

CREATE TABLE event_queues (
    event_id uuid PRIMARY KEY REFERENCES events (id) ON DELETE CASCADE,
    waiting  integer NOT NULL CHECK (waiting >= 0)
) WITH (fillfactor = 50);

-- No booking may change while the counts are taken and the triggers created (servers of
-- the previous release may be running): they wait for this migration to commit.
LOCK TABLE bookings IN SHARE ROW EXCLUSIVE MODE;

INSERT INTO event_queues (event_id, waiting)
SELECT e.id, (SELECT count(*) FROM bookings b WHERE b.event_id = e.id AND b.status = 'waiting')
  FROM events e;

-- Inserted rows: an event's row is created on its first waiting booking if it has none
-- (events written by hand, or by the previous release while it still runs).
CREATE FUNCTION happening_queue_inserted() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO event_queues AS q (event_id, waiting)
    SELECT n.event_id, count(*) FROM inserted n WHERE n.status = 'waiting' GROUP BY n.event_id ORDER BY n.event_id
    ON CONFLICT (event_id) DO UPDATE SET waiting = q.waiting + EXCLUDED.waiting;
    RETURN NULL;
END
$fn$;

-- Updated rows: status changes (a booking is never queued again once it left the queue, but
-- the count would follow if it were).
CREATE FUNCTION happening_queue_updated() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    UPDATE event_queues q SET waiting = q.waiting + d.delta
      FROM (SELECT x.event_id, sum(x.d)::integer AS delta
              FROM (SELECT o.event_id, -1 AS d FROM old_rows o WHERE o.status = 'waiting'
                    UNION ALL
                    SELECT n.event_id, 1 FROM new_rows n WHERE n.status = 'waiting') AS x
             GROUP BY x.event_id HAVING sum(x.d) <> 0 ORDER BY x.event_id) AS d
     WHERE q.event_id = d.event_id;
    RETURN NULL;
END
$fn$;

-- Deleted rows (an event's bookings go with it, and so does its row here).
CREATE FUNCTION happening_queue_deleted() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    UPDATE event_queues q SET waiting = q.waiting - d.n
      FROM (SELECT o.event_id, count(*)::integer AS n FROM old_rows o WHERE o.status = 'waiting'
             GROUP BY o.event_id ORDER BY o.event_id) AS d
     WHERE q.event_id = d.event_id;
    RETURN NULL;
END
$fn$;

CREATE TRIGGER bookings_queue_inserted AFTER INSERT ON bookings
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION happening_queue_inserted();
CREATE TRIGGER bookings_queue_updated AFTER UPDATE ON bookings
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION happening_queue_updated();
CREATE TRIGGER bookings_queue_deleted AFTER DELETE ON bookings
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION happening_queue_deleted();

-- Whether any seat of each event `p_event[i]` is free (`PgAdmission::push`: the booking is
-- queued already, its number was told by the batch), read in the caller's snapshot.
-- `ORDER BY seat_no` keeps the plan on the free-seat index from the floor (0005).
CREATE FUNCTION happening_seats_free(p_event uuid[])
RETURNS TABLE (event_id uuid, seats_free boolean)
LANGUAGE sql STABLE
SET plan_cache_mode = force_generic_plan
AS $fn$
    SELECT u.id, (SELECT es.seat_no FROM event_seats es
                   WHERE es.event_id = u.id AND es.booking_id IS NULL AND es.hold_id IS NULL
                     AND es.seat_no >= coalesce((SELECT ev.seats_free_from FROM events ev WHERE ev.id = u.id), 1)
                   ORDER BY es.seat_no LIMIT 1) IS NOT NULL
      FROM unnest(p_event) AS u(id);
$fn$;

-- The batch of 0016, which also numbers the bookings it queues (step 3b, and the loop): it
-- answers `waiting_number` beside `seq`. Callers select its columns by name, so the
-- previous release's engines read it as before while a rolling upgrade runs; the return
-- type changes, hence DROP and CREATE. The 16-argument form of 0015 stays a call of it.
DROP FUNCTION happening_book_batch(boolean[], uuid[], bigint[], uuid[], uuid[], integer[], integer[], uuid[], text[], bigint[],
                                   timestamptz[], text[], text[], uuid[], text[], integer[]);
DROP FUNCTION happening_book_batch(boolean[], uuid[], bigint[], uuid[], uuid[], integer[], integer[], uuid[], text[], bigint[],
                                   timestamptz[], text[], text[], uuid[], text[], integer[], boolean[]);

CREATE FUNCTION happening_book_batch(
    p_confirm boolean[], p_event uuid[], p_lock bigint[], p_booking uuid[], p_user uuid[],
    p_requested integer[], p_n integer[],
    p_key_user uuid[], p_key text[], p_fingerprint bigint[], p_now timestamptz[],
    p_action text[], p_status text[], p_note_id uuid[], p_note_kind text[], p_note_seats integer[],
    p_behind boolean[]
) RETURNS TABLE (code text, message text, seats integer[], seq bigint, waiting_number integer) LANGUAGE plpgsql
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
    v_queued  integer[]; -- how many wait, for an event with waiting items (its row locked)
    v_q       record;
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
    r_number  integer[] := '{}';
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
    -- 3b. The queue rows of the live events this batch queues bookings of, locked in
    -- ascending order (as every batch locks them), with their counts: the places and
    -- numbers below are taken under these locks, so the bookings queued for one event are
    -- numbered in the order of their places, across batches and servers.
    v_queued := array_fill(NULL::integer, ARRAY[cardinality(v_events)]);
    FOR v_q IN
        INSERT INTO event_queues AS q (event_id, waiting)
        SELECT DISTINCT p_event[j], 0 FROM generate_subscripts(p_event, 1) AS j
         WHERE NOT p_confirm[j] AND v_refused[array_position(v_events, p_event[j])] IS NULL
         ORDER BY 1
        ON CONFLICT (event_id) DO UPDATE SET waiting = q.waiting
        RETURNING q.event_id, q.waiting
    LOOP
        v_queued[array_position(v_events, v_q.event_id)] := v_q.waiting;
    END LOOP;
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
        r_code[i] := NULL; r_msg[i] := NULL; r_seq[i] := NULL; r_number[i] := NULL;
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
                -- Its place and its number, under the event's queue row lock (3b).
                r_seq[i] := nextval('booking_queue_seq');
                v_queued[v_k] := v_queued[v_k] + 1;
                r_number[i] := v_queued[v_k];
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
        waiting_number := CASE WHEN r_code[i] IS NULL THEN r_number[i] END;
        RETURN NEXT;
    END LOOP;
END
$fn$;

CREATE FUNCTION happening_book_batch(
    p_confirm boolean[], p_event uuid[], p_lock bigint[], p_booking uuid[], p_user uuid[],
    p_requested integer[], p_n integer[],
    p_key_user uuid[], p_key text[], p_fingerprint bigint[], p_now timestamptz[],
    p_action text[], p_status text[], p_note_id uuid[], p_note_kind text[], p_note_seats integer[]
) RETURNS TABLE (code text, message text, seats integer[], seq bigint) LANGUAGE sql AS $fn$
    SELECT b.code, b.message, b.seats, b.seq
      FROM happening_book_batch(p_confirm, p_event, p_lock, p_booking, p_user, p_requested, p_n, p_key_user, p_key,
                                p_fingerprint, p_now, p_action, p_status, p_note_id, p_note_kind, p_note_seats,
                                array_fill(false, ARRAY[coalesce(cardinality(p_event), 0)])) AS b;
$fn$;
