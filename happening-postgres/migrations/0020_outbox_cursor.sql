-- The outbox without an update per notification.
--
-- Before, a relay claimed rows by setting `claimed_until` and marked them sent by changing
-- `status`, which is in the pending rows' index predicate: two row versions more per
-- notification, three index entries for the second, and dead versions for vacuum (measured
-- in BENCHMARKS.md, "What the outbox costs"). Now a notification is written once, and a
-- relay round writes two small rows whatever its size.
--
-- The order: each row carries the transaction that wrote it (`xid`, the top-level one) and
-- its `seq`; the relays read in (xid, seq) order past `outbox_cursor`. A row may commit
-- after rows of later transactions, so a relay reads only rows of transactions older than
-- every writing transaction of this database still running (`happening_outbox_horizon`):
-- those have all ended, and no row can appear behind the cursor afterwards. (A writing
-- transaction that stays open holds the relay back until it ends; the server's
-- transactions are short.)
--
-- A claim is a range of that order, (from, to], with a lease (`outbox_claims`): claims are
-- taken one at a time (the cursor's row lock), so relays of several servers get disjoint
-- ranges; a claim whose lease ended, or that its relay gave back, is claimed again first.
-- When its relay reports the range sent, the claim is deleted.
--
-- The delivery status of a row is then derived (view `notifications_now`): stored
-- `pending`, behind the cursor and in no open claim, it has been sent. Consumers' reports
-- (delivered, failed) are still stored: they are not in any index, so they are HOT updates.
--
-- Transaction ids are the cluster's: a logical restore into another cluster (pg_dump and
-- restore, a logical replica promoted) brings rows and a cursor whose ids may be ahead of
-- the new cluster's, so that new rows would sort behind the cursor. Every server adopts the
-- outbox when it connects (`happening_outbox_adopt`, before it writes): the restored rows
-- are renumbered to xid 0, in seq order. A claim refuses to run on an outbox not adopted.
--
-- Rows written before this migration have xid 0: they come first, in seq order. Servers
-- of the previous release fail to claim (the column is gone) and retry, and read every
-- relayed row as still pending (their depth, audit and API): replace every server before
-- the load comes back.

ALTER TABLE notifications ADD COLUMN xid xid8 NOT NULL DEFAULT '0';
ALTER TABLE notifications ALTER COLUMN xid SET DEFAULT pg_current_xact_id();
CREATE INDEX notifications_outbox_idx ON notifications (xid, seq);
DROP INDEX notifications_pending_idx;
ALTER TABLE notifications DROP COLUMN claimed_until;
-- `seq` comes from its sequence; the unique index was read by the claims only.
ALTER TABLE notifications DROP CONSTRAINT notifications_seq_key;

-- One row: everything at or before (xid, seq) has been claimed.
CREATE TABLE outbox_cursor (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    xid xid8   NOT NULL,
    seq bigint NOT NULL
);
-- Past the rows already sent: the first pending row is the next.
INSERT INTO outbox_cursor (xid, seq)
SELECT '0', coalesce((SELECT min(seq) - 1 FROM notifications WHERE status = 'pending'), (SELECT max(seq) FROM notifications), 0);

-- The claims not yet reported sent: (from, to] of (xid, seq), disjoint, all behind the cursor.
CREATE TABLE outbox_claims (
    id           bigserial PRIMARY KEY,
    from_xid     xid8 NOT NULL,
    from_seq     bigint NOT NULL,
    to_xid       xid8 NOT NULL,
    to_seq       bigint NOT NULL,
    -- NULL: given back (SeatStore::release_claims), claimed again at once.
    leased_until timestamptz,
    CHECK ((from_xid, from_seq) < (to_xid, to_seq))
);
-- Claims are disjoint: a row's claim, if any, is the one with the greatest start below it.
CREATE INDEX outbox_claims_from_idx ON outbox_claims (from_xid, from_seq);

-- Notifications with their delivery status as the relays left it.
CREATE VIEW notifications_now AS
SELECT n.seq, n.xid, n.id, n.user_id, n.type, n.event_id, n.booking_id, n.org_id, n.seats, n.expires_at,
       CASE WHEN n.status = 'pending'
                 AND (n.xid, n.seq) <= (SELECT c.xid, c.seq FROM outbox_cursor c)
                 AND NOT EXISTS (SELECT 1 FROM (SELECT k.to_xid, k.to_seq FROM outbox_claims k
                                                 WHERE (k.from_xid, k.from_seq) < (n.xid, n.seq)
                                                 ORDER BY k.from_xid DESC, k.from_seq DESC LIMIT 1) k
                                  WHERE (n.xid, n.seq) <= (k.to_xid, k.to_seq))
            THEN 'sent' ELSE n.status END AS status,
       n.read, n.created_at
  FROM notifications n;

-- The pending notifications, oldest first: past the lowest open claim's start or the
-- cursor (an index range), those the view calls pending.
CREATE FUNCTION happening_outbox_pending(p_limit bigint) RETURNS SETOF notifications_now
LANGUAGE sql STABLE AS $fn$
    WITH low AS (
        SELECT x, s FROM (SELECT xid AS x, seq AS s FROM outbox_cursor
                          UNION ALL SELECT from_xid, from_seq FROM outbox_claims) b
         ORDER BY x, s LIMIT 1
    )
    SELECT v.* FROM low, notifications_now v
     WHERE (v.xid, v.seq) > (low.x, low.s) AND v.status = 'pending'
     ORDER BY v.xid, v.seq LIMIT p_limit
$fn$;

-- The oldest transaction id still running in this database that has written (or will:
-- it holds an id), the caller's own included: every transaction before it has ended, so
-- a snapshot taken after this call sees all their rows. The caller MUST hold a
-- transaction id already (the claim locks the cursor first), so that any id handed out
-- after this call is later than the horizon. From pg_stat_activity (`backend_xid` is shown
-- to every role; 32-bit ids, widened by the caller's epoch), then the prepared transactions
-- of the database, read in that order: a transaction that prepares between the two reads
-- is in the second, one that prepared before in both.
CREATE FUNCTION happening_outbox_horizon() RETURNS xid8 LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    own numeric := pg_current_xact_id()::text::numeric;
    low numeric;
BEGIN
    -- The activity as of now, not as read earlier in the caller's transaction.
    PERFORM pg_stat_clear_snapshot();
    -- Each running id's distance back from the caller's, modulo 2^32; ids handed out after
    -- the caller's (the upper half) are later than the caller's own, so they do not count.
    SELECT min(own - d) INTO low
      FROM (SELECT ((own % 4294967296) - x::text::numeric + 4294967296) % 4294967296 AS d
              FROM (SELECT backend_xid AS x FROM pg_stat_activity WHERE datname = current_database() AND backend_xid IS NOT NULL
                    UNION ALL
                    SELECT transaction FROM pg_prepared_xacts WHERE database = current_database()) r) a
     WHERE d < 2147483648;
    RETURN least(coalesce(low, own), own)::text::xid8;
END
$fn$;

-- Makes the outbox this cluster's (see above): when the cursor is ahead of the cluster's
-- transaction ids, rows sent are stored so, open claims end (their rows are sent again: at
-- least once), every row goes to xid 0 in seq order and the cursor before the first
-- pending. Called by every server when it connects, before it writes; true if it changed
-- anything. Under a lock that writers of notifications wait for.
CREATE FUNCTION happening_outbox_adopt() RETURNS boolean LANGUAGE plpgsql AS $fn$
BEGIN
    IF (SELECT xid FROM outbox_cursor) < pg_snapshot_xmax(pg_current_snapshot()) THEN
        RETURN false;
    END IF;
    LOCK TABLE notifications IN SHARE ROW EXCLUSIVE MODE;
    PERFORM 1 FROM outbox_cursor FOR UPDATE;
    IF (SELECT xid FROM outbox_cursor) < pg_snapshot_xmax(pg_current_snapshot()) THEN
        RETURN false;
    END IF;
    UPDATE notifications n SET status = 'sent'
      FROM notifications_now v
     WHERE v.id = n.id AND n.status = 'pending' AND v.status = 'sent';
    DELETE FROM outbox_claims;
    UPDATE notifications SET xid = '0' WHERE xid <> '0';
    UPDATE outbox_cursor SET xid = '0',
           seq = coalesce((SELECT min(seq) - 1 FROM notifications WHERE status = 'pending'), (SELECT max(seq) FROM notifications), 0);
    RETURN true;
END
$fn$;

-- Claims up to `p_limit` pending notifications until `p_lease_until` (SeatStore::claim_pending):
-- a claim whose lease ended first (its rows still stored pending), else new rows past the
-- cursor of transactions that have all ended. Returns them in (xid, seq) order.
CREATE FUNCTION happening_outbox_claim(p_now timestamptz, p_lease_until timestamptz, p_limit integer)
RETURNS SETOF notifications LANGUAGE plpgsql AS $fn$
DECLARE
    c      outbox_cursor;
    k      outbox_claims;
    r      notifications;
    last_x xid8;
    last_s bigint;
    n      integer;
    rounds integer := 0;
    horizon xid8;
BEGIN
    IF p_limit < 1 THEN
        RAISE EXCEPTION 'happening_outbox_claim: p_limit must be at least 1, not %', p_limit;
    END IF;
    -- One claimer at a time: claims are one per batch, and short.
    SELECT * INTO c FROM outbox_cursor FOR UPDATE;
    IF c.xid >= pg_current_xact_id() THEN
        RAISE EXCEPTION 'the outbox''s cursor (%) is ahead of this cluster''s transaction ids (%): it was restored from another cluster and not adopted (happening_outbox_adopt, run by every server as it connects)', c.xid, pg_current_xact_id();
    END IF;
    LOOP
        SELECT * INTO k FROM outbox_claims WHERE leased_until IS NULL OR leased_until <= p_now
         ORDER BY from_xid, from_seq LIMIT 1;
        EXIT WHEN NOT FOUND;
        n := 0;
        FOR r IN SELECT * FROM notifications
                  WHERE (xid, seq) > (k.from_xid, k.from_seq) AND (xid, seq) <= (k.to_xid, k.to_seq) AND status = 'pending'
                  ORDER BY xid, seq LIMIT p_limit LOOP
            RETURN NEXT r;
            n := n + 1;
            last_x := r.xid;
            last_s := r.seq;
        END LOOP;
        IF n = 0 THEN
            -- Nothing of it is pending any more (reported one by one).
            DELETE FROM outbox_claims WHERE id = k.id;
            CONTINUE;
        END IF;
        IF (last_x, last_s) < (k.to_xid, k.to_seq) THEN
            -- More than `p_limit` left: the rest is a claim of its own, free at once.
            INSERT INTO outbox_claims (from_xid, from_seq, to_xid, to_seq) VALUES (last_x, last_s, k.to_xid, k.to_seq);
        END IF;
        UPDATE outbox_claims SET to_xid = last_x, to_seq = last_s, leased_until = p_lease_until WHERE id = k.id;
        RETURN;
    END LOOP;
    -- New rows. Rows of a transaction still running, or of one after it, wait: it may yet
    -- commit rows that sort before them. Non-pending rows (reported before they were
    -- claimed) are passed over; a few rounds of only those are read before giving up.
    horizon := happening_outbox_horizon();
    LOOP
        rounds := rounds + 1;
        n := 0;
        last_x := NULL;
        FOR r IN SELECT * FROM notifications
                  WHERE (xid, seq) > (c.xid, c.seq) AND xid < horizon
                  ORDER BY xid, seq LIMIT p_limit LOOP
            IF r.status = 'pending' THEN
                RETURN NEXT r;
                n := n + 1;
            END IF;
            last_x := r.xid;
            last_s := r.seq;
        END LOOP;
        EXIT WHEN last_x IS NULL;
        IF n > 0 THEN
            INSERT INTO outbox_claims (from_xid, from_seq, to_xid, to_seq, leased_until)
            VALUES (c.xid, c.seq, last_x, last_s, p_lease_until);
        END IF;
        c.xid := last_x;
        c.seq := last_s;
        EXIT WHEN n > 0 OR rounds >= 10;
    END LOOP;
    IF rounds > 1 OR last_x IS NOT NULL THEN
        -- Only when it moved: an idle relay's poll writes nothing but its lock.
        UPDATE outbox_cursor SET xid = c.xid, seq = c.seq;
    END IF;
END
$fn$;

-- Reports notifications handed to the Notifier (SeatStore::set_delivery, sent): a claim
-- whose pending rows are all among them ends (its rows are then sent, by the view); any
-- other still pending row is stored sent.
CREATE FUNCTION happening_outbox_sent(p_ids uuid[]) RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
    DELETE FROM outbox_claims k
     WHERE EXISTS (SELECT 1 FROM notifications n WHERE n.id = ANY (p_ids)
                      AND (n.xid, n.seq) > (k.from_xid, k.from_seq) AND (n.xid, n.seq) <= (k.to_xid, k.to_seq))
       AND NOT EXISTS (SELECT 1 FROM notifications n
                        WHERE (n.xid, n.seq) > (k.from_xid, k.from_seq) AND (n.xid, n.seq) <= (k.to_xid, k.to_seq)
                          AND n.status = 'pending' AND n.id <> ALL (p_ids));
    UPDATE notifications n SET status = 'sent'
      FROM notifications_now v
     WHERE n.id = ANY (p_ids) AND n.status = 'pending' AND v.id = n.id AND v.status = 'pending';
END
$fn$;
