-- Time-limited offers of seats freed for the waitlist. With an event's `offer_ttl_seconds`
-- set, a promotion makes the booking `offered` until `offer_expires_at`, its seats held for
-- it; it is then accepted (`confirmed`), declined or expired (SeatStore::promote,
-- accept_offer, decline_offer, expire_offers).

ALTER TABLE events ADD COLUMN offer_ttl_seconds integer CHECK (offer_ttl_seconds BETWEEN 1 AND 2592000);

ALTER TABLE bookings ADD COLUMN offer_expires_at timestamptz;
ALTER TABLE bookings DROP CONSTRAINT bookings_status_check;
ALTER TABLE bookings ADD CONSTRAINT bookings_status_check
    CHECK (status IN ('confirmed', 'waiting', 'cancelled', 'offered', 'declined', 'expired'));
ALTER TABLE bookings ADD CONSTRAINT bookings_offer_check
    CHECK (status <> 'offered' OR (offer_expires_at IS NOT NULL AND cardinality(seat_numbers) BETWEEN 1 AND seats));
-- The open offers, by expiry: the background step reads the due ones from the front.
CREATE INDEX bookings_offer_expiry_idx ON bookings (offer_expires_at, id) WHERE status = 'offered';

ALTER TABLE booking_history DROP CONSTRAINT booking_history_action_check;
ALTER TABLE booking_history ADD CONSTRAINT booking_history_action_check
    CHECK (action IN ('created', 'cancelled', 'promoted', 'modified', 'offered', 'accepted', 'declined', 'expired'));
ALTER TABLE booking_history DROP CONSTRAINT booking_history_status_check;
ALTER TABLE booking_history ADD CONSTRAINT booking_history_status_check
    CHECK (status IN ('confirmed', 'waiting', 'cancelled', 'offered', 'declined', 'expired'));

-- An offered booking's seats are its own (`booking_id`, so that no seat is owned twice) and
-- marked `offered`, so that one walk of an event's seats counts them as held, not booked
-- (the event view, the seat map) without reading its bookings. Not in any index: setting and
-- clearing it are HOT updates.
ALTER TABLE event_seats ADD COLUMN offered boolean NOT NULL DEFAULT false;
ALTER TABLE event_seats ADD CONSTRAINT event_seats_offered_check CHECK (NOT offered OR booking_id IS NOT NULL);

ALTER TABLE notifications DROP CONSTRAINT notifications_type_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_type_check
    CHECK (type IN ('booking_confirmed', 'booking_waitlisted', 'booking_cancelled', 'seats_cancelled',
                    'waitlist_promoted', 'waitlist_offer', 'offer_accepted', 'offer_expired', 'offer_declined', 'hold_expired',
                    'event_updated', 'event_cancelled', 'invitation_received'));
-- Until when the offer a `waitlist_offer` tells of is open.
ALTER TABLE notifications ADD COLUMN expires_at timestamptz;
