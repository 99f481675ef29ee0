//! The in-memory notification outbox: an append-only log with a cursor before which nothing
//! is pending, so handing the pending rows to a relay costs O(batch).

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use crate::domain::{DeliveryStatus, Notification};
use crate::ids::{EventId, NotificationId, UserId};

use super::sharded::IdMap;

#[derive(Default)]
pub(crate) struct Outbox {
    log: Vec<Notification>,
    /// Claimed by a relay until then (parallel to `log`).
    leases: Vec<Option<DateTime<Utc>>>,
    /// Every row before `cursor` is no longer pending.
    cursor: usize,
    by_user: IdMap<UserId, Vec<usize>>,
    by_id: IdMap<NotificationId, usize>,
}

impl Outbox {
    pub(crate) fn push(&mut self, n: Notification) {
        self.by_user.entry(n.user_id).or_default().push(self.log.len());
        self.by_id.insert(n.id, self.log.len());
        self.log.push(n);
        self.leases.push(None);
    }

    pub(crate) fn pending(&self, limit: usize) -> Vec<Notification> {
        self.log[self.cursor..].iter().filter(|n| n.status == DeliveryStatus::Pending).take(limit).cloned().collect()
    }

    /// Pending rows (claimed or not): O(rows after the cursor).
    pub(crate) fn depth(&self) -> u64 {
        self.log[self.cursor..].iter().filter(|n| n.status == DeliveryStatus::Pending).count() as u64
    }

    pub(crate) fn claim(&mut self, limit: usize, now: DateTime<Utc>, lease_until: DateTime<Utc>) -> Vec<Notification> {
        let mut out = Vec::new();
        for i in self.cursor..self.log.len() {
            if out.len() == limit {
                break;
            }
            if self.log[i].status == DeliveryStatus::Pending && self.leases[i].is_none_or(|l| l <= now) {
                self.leases[i] = Some(lease_until);
                out.push(self.log[i].clone());
            }
        }
        out
    }

    pub(crate) fn set_delivery(&mut self, ids: &[NotificationId], status: DeliveryStatus) {
        let mut wanted: HashSet<NotificationId> = ids.iter().copied().collect();
        // Pending rows are at or after the cursor; sent ones may be anywhere.
        let start = if status == DeliveryStatus::Sent { self.cursor } else { 0 };
        for n in self.log[start..].iter_mut() {
            if wanted.is_empty() {
                break;
            }
            if wanted.remove(&n.id) && forward(n.status, status) {
                n.status = status;
            }
        }
        while self.cursor < self.log.len() && self.log[self.cursor].status != DeliveryStatus::Pending {
            self.cursor += 1;
        }
    }

    pub(crate) fn release(&mut self, ids: &[NotificationId]) {
        for id in ids {
            if let Some(&i) = self.by_id.get(id) {
                self.leases[i] = None;
            }
        }
    }

    pub(crate) fn get(&self, id: NotificationId) -> Option<Notification> {
        self.by_id.get(&id).map(|&i| self.log[i].clone())
    }

    /// A user's notifications, newest first.
    pub(crate) fn of_user(&self, user: UserId, limit: usize, offset: usize) -> Vec<Notification> {
        self.by_user
            .get(&user)
            .map(|idx| idx.iter().rev().skip(offset).take(limit).map(|&i| self.log[i].clone()).collect())
            .unwrap_or_default()
    }

    /// The notifications about bookings of an event, oldest first: a scan of the whole log
    /// (for audits).
    pub(crate) fn of_event_bookings(&self, event: EventId) -> Vec<Notification> {
        self.log.iter().filter(|n| n.event_id == Some(event) && n.booking_id.is_some()).cloned().collect()
    }

    /// Marks one of `user`'s notifications read; `false` if it is not theirs.
    pub(crate) fn mark_read(&mut self, user: UserId, id: NotificationId) -> bool {
        let Some(idx) = self.by_user.get(&user) else { return false };
        match idx.iter().find(|&&i| self.log[i].id == id) {
            Some(&i) => {
                self.log[i].read = true;
                true
            }
            None => false,
        }
    }
}

/// Whether a notification may move from `from` to `to` (never backwards).
pub(crate) fn forward(from: DeliveryStatus, to: DeliveryStatus) -> bool {
    use DeliveryStatus::*;
    matches!((from, to), (Pending, Sent) | (Pending | Sent | Failed, Delivered) | (Pending | Sent, Failed))
}
