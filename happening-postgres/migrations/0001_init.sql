-- Happening's schema: the seeds' tables, with their constraints, plus one row per seat.
--
-- Why one row per seat (event_seats) instead of a counter on the event row: booking locks
-- only the seat rows it takes (FOR UPDATE SKIP LOCKED), so concurrent bookings of one event
-- never queue on one hot row; and "a seat is owned by at most one booking or hold" is the
-- primary key itself.

CREATE TABLE users (
    id          uuid PRIMARY KEY,
    keycloak_id text NOT NULL UNIQUE CHECK (length(keycloak_id) BETWEEN 1 AND 255),
    email       text CHECK (email IS NULL OR (length(email) <= 320 AND position('@' IN email) > 1)),
    name        text CHECK (name IS NULL OR length(name) <= 1000),
    created_at  timestamptz NOT NULL
);
CREATE INDEX users_email_idx ON users (lower(email));

CREATE TABLE organizations (
    id         uuid PRIMARY KEY,
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 1000),
    created_at timestamptz NOT NULL
);

CREATE TABLE organization_users (
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role            text NOT NULL CHECK (role IN ('orgAdmin', 'organizer', 'user')),
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (organization_id, user_id)
);
CREATE INDEX organization_users_user_idx ON organization_users (user_id);

CREATE TABLE organization_invites (
    token           text PRIMARY KEY CHECK (length(token) BETWEEN 16 AND 128),
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    email           text NOT NULL CHECK (length(email) <= 320),
    role            text NOT NULL CHECK (role IN ('orgAdmin', 'organizer', 'user')),
    invited_by      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    status          text NOT NULL CHECK (status IN ('pending', 'accepted', 'revoked')),
    expires_at      timestamptz NOT NULL,
    created_at      timestamptz NOT NULL
);

CREATE TABLE events (
    id              uuid PRIMARY KEY,
    org_id          uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 1000),
    description     text,
    category        text,
    event_date      timestamptz NOT NULL,
    total_slots     integer NOT NULL CHECK (total_slots >= 1),
    status          text NOT NULL CHECK (status IN ('upcoming', 'cancelled')),
    waitlist_policy text NOT NULL CHECK (waitlist_policy IN ('fifo', 'first_fit', 'partial')),
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX events_org_date_idx ON events (org_id, event_date DESC);

CREATE TABLE bookings (
    id           uuid PRIMARY KEY,
    event_id     uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    -- The booker's id: a users row for people of the HTTP API, or an embedder's own id.
    user_id      uuid NOT NULL,
    -- Seats requested (a partial confirmation keeps the request here).
    seats        integer NOT NULL CHECK (seats BETWEEN 1 AND 1000),
    -- Seats owned while confirmed (kept for the record once cancelled), ascending.
    seat_numbers integer[] NOT NULL DEFAULT '{}',
    status       text NOT NULL CHECK (status IN ('confirmed', 'waiting', 'cancelled')),
    -- The durable waiting order: counters and waitlists kept elsewhere are rebuilt from it.
    queue_seq    bigint,
    hold_id      uuid,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    CHECK ((status = 'waiting') = (queue_seq IS NOT NULL)),
    CHECK (status <> 'confirmed' OR cardinality(seat_numbers) BETWEEN 1 AND seats)
);
CREATE INDEX bookings_event_idx ON bookings (event_id, created_at);
CREATE INDEX bookings_user_idx ON bookings (user_id, created_at DESC);
CREATE UNIQUE INDEX bookings_waiting_idx ON bookings (event_id, queue_seq) WHERE status = 'waiting';
CREATE SEQUENCE booking_queue_seq;

CREATE TABLE holds (
    id           uuid PRIMARY KEY,
    event_id     uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    user_id      uuid NOT NULL,
    seat_numbers integer[] NOT NULL CHECK (cardinality(seat_numbers) >= 1),
    expires_at   timestamptz NOT NULL,
    created_at   timestamptz NOT NULL
);
CREATE INDEX holds_expiry_idx ON holds (expires_at, id);

-- One row per seat of every event; a seat is free, booked or held, never two of these.
CREATE TABLE event_seats (
    event_id   uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    seat_no    integer NOT NULL CHECK (seat_no >= 1),
    -- No foreign keys on these two: seats are taken before the booking or hold row is
    -- written, in the same transaction, and a per-seat key check at commit would cost
    -- every booking one lookup per seat. The store clears them with the booking or hold.
    booking_id uuid,
    hold_id    uuid,
    PRIMARY KEY (event_id, seat_no),
    CHECK (booking_id IS NULL OR hold_id IS NULL)
);
CREATE INDEX event_seats_free_idx ON event_seats (event_id, seat_no) WHERE booking_id IS NULL AND hold_id IS NULL;
CREATE INDEX event_seats_booking_idx ON event_seats (booking_id) WHERE booking_id IS NOT NULL;
CREATE INDEX event_seats_hold_idx ON event_seats (hold_id) WHERE hold_id IS NOT NULL;

CREATE TABLE booking_history (
    id           bigserial PRIMARY KEY,
    booking_id   uuid NOT NULL REFERENCES bookings (id) ON DELETE CASCADE,
    action       text NOT NULL CHECK (action IN ('created', 'cancelled', 'promoted', 'modified')),
    status       text NOT NULL CHECK (status IN ('confirmed', 'waiting', 'cancelled')),
    seat_numbers integer[] NOT NULL,
    created_at   timestamptz NOT NULL
);
CREATE INDEX booking_history_booking_idx ON booking_history (booking_id, id);

-- The outbox: written in the same transaction as the change it reports.
CREATE TABLE notifications (
    seq        bigserial UNIQUE,
    id         uuid PRIMARY KEY,
    user_id    uuid NOT NULL,
    type       text NOT NULL CHECK (type IN ('booking_confirmed', 'booking_waitlisted', 'booking_cancelled',
                   'seats_cancelled', 'waitlist_promoted', 'hold_expired', 'event_updated', 'event_cancelled',
                   'invitation_received')),
    event_id   uuid,
    booking_id uuid,
    org_id     uuid,
    seats      integer NOT NULL CHECK (seats >= 0),
    status     text NOT NULL CHECK (status IN ('pending', 'sent', 'delivered', 'failed')),
    read       boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL,
    -- A relay's claim on a pending row (see SeatStore::claim_pending).
    claimed_until timestamptz
);
CREATE INDEX notifications_user_idx ON notifications (user_id, seq DESC);
CREATE INDEX notifications_pending_idx ON notifications (seq) WHERE status = 'pending';

CREATE TABLE idempotency_keys (
    user_id     uuid NOT NULL,
    key         text NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
    fingerprint bigint NOT NULL,
    -- Inserted before the booking in the same transaction, hence deferred.
    booking_id  uuid NOT NULL REFERENCES bookings (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (user_id, key)
);
