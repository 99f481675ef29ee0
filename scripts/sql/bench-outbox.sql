-- Three ways to keep the outbox, each driven the same way by a procedure: batches of 64
-- notifications inserted in one statement and committed (as the booking batches write
-- them), and every 16 batches a relay round (claim up to 1,000, then mark them handed on).
-- Each procedure reports its wall time; the tables grow over the rounds as a sale's would.
--   a: today's schema: a partial index on the pending rows; the claim sets claimed_until
--      (a HOT update); marking sent changes the status (a new row version, three index
--      entries: the status is in the partial index's predicate).
--   b: a queue table beside it, fed by a statement trigger; claims and deletes there, and
--      the status update on the notification is HOT.
--   c: append-only with a cursor: nothing is updated per notification; the relay reads past
--      a cursor in (transaction id, seq) order, below the oldest running transaction, so no
--      row can commit behind it, and moves the cursor once per round.

CREATE TABLE na (
    seq bigserial UNIQUE, id uuid PRIMARY KEY, user_id uuid NOT NULL, type text NOT NULL, event_id uuid,
    booking_id uuid, org_id uuid, seats integer NOT NULL, status text NOT NULL, read boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL, claimed_until timestamptz, expires_at timestamptz
) WITH (fillfactor = 50);
CREATE INDEX na_user_idx ON na (user_id, seq DESC);
CREATE INDEX na_pending_idx ON na (seq) WHERE status = 'pending';

CREATE TABLE nb (
    seq bigserial UNIQUE, id uuid PRIMARY KEY, user_id uuid NOT NULL, type text NOT NULL, event_id uuid,
    booking_id uuid, org_id uuid, seats integer NOT NULL, status text NOT NULL, read boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL, expires_at timestamptz
) WITH (fillfactor = 50);
CREATE INDEX nb_user_idx ON nb (user_id, seq DESC);
CREATE TABLE ob (seq bigint PRIMARY KEY, claimed_until timestamptz);
CREATE FUNCTION ob_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ob (seq) SELECT seq FROM added WHERE status = 'pending';
    RETURN NULL;
END $$;
CREATE TRIGGER nb_ob AFTER INSERT ON nb REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION ob_add();

CREATE TABLE nc (
    seq bigserial UNIQUE, id uuid PRIMARY KEY, user_id uuid NOT NULL, type text NOT NULL, event_id uuid,
    booking_id uuid, org_id uuid, seats integer NOT NULL, status text NOT NULL, read boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL, expires_at timestamptz, xid xid8 NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX nc_user_idx ON nc (user_id, seq DESC);
CREATE INDEX nc_relay_idx ON nc ((xid::text::numeric), seq);
CREATE TABLE oc (id int PRIMARY KEY, xid numeric NOT NULL, seq bigint NOT NULL, leased_until timestamptz);
INSERT INTO oc VALUES (1, 0, 0, NULL);

CREATE PROCEDURE run_a(batches int) LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
    FOR i IN 1..batches LOOP
        INSERT INTO na (id, user_id, type, seats, status, created_at)
            SELECT gen_random_uuid(), gen_random_uuid(), 'booking_waitlisted', 1, 'pending', now() FROM generate_series(1, 64);
        COMMIT;
        IF i % 16 = 0 THEN
            WITH c AS MATERIALIZED (SELECT seq FROM na WHERE status = 'pending'
                    AND (claimed_until IS NULL OR claimed_until <= now()) ORDER BY seq LIMIT 1000 FOR UPDATE SKIP LOCKED)
                UPDATE na n SET claimed_until = now() + interval '1 minute' FROM c WHERE n.seq = c.seq;
            COMMIT;
            UPDATE na SET status = 'sent' WHERE status = 'pending' AND claimed_until IS NOT NULL;
            COMMIT;
        END IF;
    END LOOP;
    RAISE NOTICE 'a % ms', round(extract(epoch FROM clock_timestamp() - t0) * 1000);
END $$;

CREATE PROCEDURE run_b(batches int) LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
    FOR i IN 1..batches LOOP
        INSERT INTO nb (id, user_id, type, seats, status, created_at)
            SELECT gen_random_uuid(), gen_random_uuid(), 'booking_waitlisted', 1, 'pending', now() FROM generate_series(1, 64);
        COMMIT;
        IF i % 16 = 0 THEN
            WITH c AS MATERIALIZED (SELECT seq FROM ob WHERE claimed_until IS NULL OR claimed_until <= now()
                    ORDER BY seq LIMIT 1000 FOR UPDATE SKIP LOCKED)
                UPDATE ob o SET claimed_until = now() + interval '1 minute' FROM c WHERE o.seq = c.seq;
            COMMIT;
            WITH d AS (DELETE FROM ob WHERE claimed_until IS NOT NULL RETURNING seq)
                UPDATE nb SET status = 'sent' FROM d WHERE nb.seq = d.seq AND nb.status = 'pending';
            COMMIT;
        END IF;
    END LOOP;
    RAISE NOTICE 'b % ms', round(extract(epoch FROM clock_timestamp() - t0) * 1000);
END $$;

CREATE PROCEDURE run_c(batches int) LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz := clock_timestamp(); cx numeric; cs bigint; lx numeric; ls bigint; n int;
BEGIN
    FOR i IN 1..batches LOOP
        INSERT INTO nc (id, user_id, type, seats, status, created_at)
            SELECT gen_random_uuid(), gen_random_uuid(), 'booking_waitlisted', 1, 'pending', now() FROM generate_series(1, 64);
        COMMIT;
        IF i % 16 = 0 THEN
            UPDATE oc SET leased_until = now() + interval '1 minute' WHERE id = 1 RETURNING xid, seq INTO cx, cs;
            COMMIT;
            -- The round reads the rows it hands on, as a relay would, and keeps the last.
            SELECT count(*), max(x), (array_agg(s ORDER BY x DESC, s DESC))[1] INTO n, lx, ls
                FROM (SELECT xid::text::numeric AS x, seq AS s, nc.* FROM nc
                      WHERE (xid::text::numeric, seq) > (cx, cs)
                        AND xid::text::numeric < pg_snapshot_xmin(pg_current_snapshot())::text::numeric
                      ORDER BY xid::text::numeric, seq LIMIT 1000) r;
            UPDATE oc SET xid = coalesce(lx, cx), seq = coalesce(ls, cs), leased_until = NULL WHERE id = 1;
            COMMIT;
        END IF;
    END LOOP;
    RAISE NOTICE 'c % ms', round(extract(epoch FROM clock_timestamp() - t0) * 1000);
END $$;
