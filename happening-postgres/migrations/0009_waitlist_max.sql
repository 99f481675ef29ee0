-- An event's cap on its waitlist (`Event::waitlist_max`): NULL is no cap, 0 no waitlist.
-- The admission reads it with the event (`TakeRequest::waitlist_max`); the store only keeps
-- it, since a booking refused for a full waitlist writes nothing.
ALTER TABLE events ADD COLUMN waitlist_max integer CHECK (waitlist_max >= 0);
