//! The key scheme, and how a waitlist entry is written as a sorted-set member.
//!
//! Every key of one event carries the event id as its hash tag (`{<event id>}`), so that all
//! of them live in one Redis Cluster slot and one script may touch them together:
//!
//! | key                              | type       | content                                   |
//! |----------------------------------|------------|-------------------------------------------|
//! | `<prefix>:{<event>}:slots`       | string     | free seats (an integer); absent = missing |
//! | `<prefix>:{<event>}:waitlist`    | sorted set | one member per waiting booking, see below |
//! | `<prefix>:{<event>}:seats`       | hash       | booking id -> its member in `waitlist`    |
//! | `<prefix>:{<event>}:version`     | string     | the event's version (an integer), see below |
//!
//! And one publish/subscribe channel per event, `<prefix>:{<event>}:changes`, on which the
//! servers tell each other of its changes (`changes.rs`).
//!
//! Waitlist members are `<seq, 20 digits>:<booking id>:<seats>`, all with score 0: Redis
//! orders members of equal score by their bytes, and zero-padded to 20 digits every `u64`
//! sorts by value. (A score of `seq` would be exact only up to 2^53.) The member carries
//! the seats, so that `pop_fitting` can scan the queue without a hash lookup per entry; the
//! hash finds a booking's member for `remove` and `position`.
//!
//! The version (the `Waitlist` port's docs say when it moves) lets a rebuild write only if
//! nothing changed since it read the store. It outlives `forget`, and when it is absent
//! (never set, or Redis lost it) the first change sets it to the server's clock in
//! microseconds: versions read before Redis lost its data are far below it, so a version is
//! not given twice.

use happening_core::ids::{BookingId, EventId};
use happening_core::ports::WaitEntry;

/// The prefix of every key unless one is given.
pub const DEFAULT_PREFIX: &str = "happening";

/// The Redis keys of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventKeys {
    /// The free-seat counter.
    pub slots: String,
    /// The queue of waiting bookings (a sorted set).
    pub waitlist: String,
    /// Booking id -> its waitlist member (a hash).
    pub seats: String,
    /// The event's version.
    pub version: String,
}

impl EventKeys {
    /// The keys of `event` under `prefix` (which may not contain `{` or `}`: the braces
    /// mark the hash tag).
    pub fn new(prefix: &str, event: EventId) -> Self {
        let base = format!("{prefix}:{{{event}}}");
        Self {
            slots: format!("{base}:slots"),
            waitlist: format!("{base}:waitlist"),
            seats: format!("{base}:seats"),
            version: format!("{base}:version"),
        }
    }

    /// All four, in the order the scripts take them as `KEYS`.
    pub fn all(&self) -> [&str; 4] {
        [&self.slots, &self.waitlist, &self.seats, &self.version]
    }
}

/// The channel on which an event's changes are told across servers (`RedisChanges`): in
/// the event's hash slot, like its keys.
pub(crate) fn changes_channel(prefix: &str, event: EventId) -> String {
    format!("{prefix}:{{{event}}}:changes")
}

/// The event of a channel of [`changes_channel`]'s form.
pub(crate) fn changes_channel_event(channel: &str) -> Option<EventId> {
    let (_, rest) = channel.split_once('{')?;
    let (id, rest) = rest.split_once('}')?;
    (rest == ":changes").then(|| id.parse().ok()).flatten()
}

/// Whether `prefix` can be used: without braces, so that the event id stays the hash tag.
pub(crate) fn valid_prefix(prefix: &str) -> bool {
    !prefix.contains('{') && !prefix.contains('}')
}

/// The sorted-set member of `entry`.
pub(crate) fn member(entry: &WaitEntry) -> String {
    format!("{:020}:{}:{}", entry.seq, entry.booking, entry.seats)
}

/// The entry a member stands for; `None` if it is not one of ours.
pub(crate) fn parse_member(member: &str) -> Option<WaitEntry> {
    let mut parts = member.splitn(3, ':');
    let seq = parts.next()?.parse().ok()?;
    let booking = parts.next()?.parse::<BookingId>().ok()?;
    let seats = parts.next()?.parse().ok()?;
    Some(WaitEntry { booking, seats, seq })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hash tag Redis Cluster hashes: the part between the first `{` and the first `}`
    /// after it, if that part is not empty; else the whole key.
    fn hash_tag(key: &str) -> &str {
        if let Some(open) = key.find('{') {
            if let Some(len) = key[open + 1..].find('}') {
                if len > 0 {
                    return &key[open + 1..open + 1 + len];
                }
            }
        }
        key
    }

    /// The cluster slot of a key (CRC16/XMODEM of its hash tag, mod 16384).
    fn slot(key: &str) -> u16 {
        let mut crc: u16 = 0;
        for &b in hash_tag(key).as_bytes() {
            crc ^= (b as u16) << 8;
            for _ in 0..8 {
                crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
            }
        }
        crc % 16384
    }

    #[test]
    fn crc16_matches_the_cluster_specification() {
        // The reference value of the Redis Cluster specification: CRC16("123456789") = 0x31C3.
        assert_eq!(slot("123456789"), 0x31C3);
        assert_eq!(slot("foo{123456789}bar"), slot("123456789"));
    }

    #[test]
    fn every_key_of_an_event_shares_its_hash_tag() {
        let event = EventId::new();
        let keys = EventKeys::new(DEFAULT_PREFIX, event);
        assert_eq!(keys.slots, format!("happening:{{{event}}}:slots"));
        assert_eq!(keys.waitlist, format!("happening:{{{event}}}:waitlist"));
        assert_eq!(keys.seats, format!("happening:{{{event}}}:seats"));
        assert_eq!(keys.version, format!("happening:{{{event}}}:version"));
        for key in keys.all() {
            assert_eq!(hash_tag(key), event.to_string(), "{key}");
            assert_eq!(slot(key), slot(&keys.slots), "{key}");
        }
        let distinct: std::collections::BTreeSet<&str> = keys.all().into_iter().collect();
        assert_eq!(distinct.len(), 4);
    }

    #[test]
    fn an_events_changes_channel_is_in_its_slot_and_names_it() {
        let event = EventId::new();
        let channel = changes_channel(DEFAULT_PREFIX, event);
        assert_eq!(channel, format!("happening:{{{event}}}:changes"));
        assert_eq!(slot(&channel), slot(&EventKeys::new(DEFAULT_PREFIX, event).slots));
        assert_eq!(changes_channel_event(&channel), Some(event));
        assert_eq!(changes_channel_event(&format!("x:{{{event}}}:slots")), None);
        assert_eq!(changes_channel_event("x:{not-an-id}:changes"), None);
    }

    #[test]
    fn events_differ_and_the_prefix_is_not_hashed() {
        let (a, b) = (EventId::new(), EventId::new());
        let ka = EventKeys::new("x", a);
        let kb = EventKeys::new("x", b);
        assert_ne!(hash_tag(&ka.slots), hash_tag(&kb.slots));
        for (x, y) in ka.all().into_iter().zip(kb.all()) {
            assert_ne!(x, y);
        }
        // Another prefix: other keys, the same slot (the tag is the event alone).
        let other = EventKeys::new("tenant-7", a);
        assert_ne!(other.slots, ka.slots);
        assert_eq!(slot(&other.slots), slot(&ka.slots));
        assert!(valid_prefix("happening") && valid_prefix("") && valid_prefix("a:b"));
        assert!(!valid_prefix("a{b}") && !valid_prefix("{") && !valid_prefix("}"));
    }

    #[test]
    fn members_round_trip_and_sort_by_seq() {
        let seqs = [0u64, 1, 9, 10, 99, 1 << 53, (1 << 53) + 1, u64::MAX - 1, u64::MAX];
        let entries: Vec<WaitEntry> = seqs.iter().map(|&seq| WaitEntry { booking: BookingId::new(), seats: 50, seq }).collect();
        let members: Vec<String> = entries.iter().map(member).collect();
        for (e, m) in entries.iter().zip(&members) {
            assert_eq!(parse_member(m), Some(*e), "{m}");
        }
        let mut sorted = members.clone();
        sorted.sort();
        assert_eq!(sorted, members, "byte order is seq order");
        assert_eq!(parse_member("nonsense"), None);
        assert_eq!(parse_member("00000000000000000001:not-a-uuid:3"), None);
    }
}
