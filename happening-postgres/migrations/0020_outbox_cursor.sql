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
-- Rows written before this migration have xid 0: they come first, in seq order. Servers
-- of the previous release that still run fail to claim (the column is gone) and retry; their
-- notifications wait for the relays of this one.

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

-- Notifications with their delivery status as the relays left it.
CREATE VIEW notifications_now AS
SELECT n.seq, n.xid, n.id, n.user_id, n.type, n.event_id, n.booking_id, n.org_id, n.seats, n.expires_at,
       CASE WHEN n.status = 'pending'
                 AND (n.xid, n.seq) <= (SELECT c.xid, c.seq FROM outbox_cursor c)
                 AND NOT EXISTS (SELECT 1 FROM outbox_claims k
                                  WHERE (n.xid, n.seq) > (k.from_xid, k.from_seq) AND (n.xid, n.seq) <= (k.to_xid, k.to_seq))
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
-- after this call is later than the horizon. From pg_stat_activity (32-bit ids, widened by
-- the caller's epoch); when a session is hidden from the caller (another role) or a
-- prepared transaction exists, the cluster's oldest running transaction (`pg_snapshot_xmin`),
-- which is earlier, so safe.
CREATE FUNCTION happening_outbox_horizon() RETURNS xid8 LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    own numeric := pg_current_xact_id()::text::numeric;
    low numeric;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_prepared_xacts)
       OR EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND query = '<insufficient privilege>') THEN
        RETURN pg_snapshot_xmin(pg_current_snapshot());
    END IF;
    -- Each running id's distance back from the caller's, modulo 2^32; ids handed out after
    -- the caller's (the upper half) are later than the caller's own, so they do not count.
    SELECT min(own - d) INTO low
      FROM (SELECT ((own % 4294967296) - backend_xid::text::numeric + 4294967296) % 4294967296 AS d
              FROM pg_stat_activity WHERE datname = current_database() AND backend_xid IS NOT NULL) a
     WHERE d < 2147483648;
    RETURN least(coalesce(low, own), own)::text::xid8;
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
    -- One claimer at a time: claims are one per batch, and short.
    SELECT * INTO c FROM outbox_cursor FOR UPDATE;
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
    UPDATE outbox_cursor SET xid = c.xid, seq = c.seq;
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
     WHERE n.id = ANY (p_ids) AND v.id = n.id AND v.status = 'pending';
END
$fn$;
