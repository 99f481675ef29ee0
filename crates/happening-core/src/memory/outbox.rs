//! The in-memory notification outbox: an append-only log with a cursor before which nothing
//! is pending, so handing the pending rows to a relay costs O(batch).

use std::collections::HashSet;

use crate::domain::{DeliveryStatus, Notification};
use crate::ids::{NotificationId, UserId};

use super::sharded::IdMap;

#[derive(Default)]
pub(crate) struct Outbox {
    log: Vec<Notification>,
    /// Every row before `cursor` is no longer pending.
    cursor: usize,
    by_user: IdMap<UserId, Vec<usize>>,
}

impl Outbox {
    pub(crate) fn push(&mut self, n: Notification) {
        self.by_user.entry(n.user_id).or_default().push(self.log.len());
        self.log.push(n);
    }

    pub(crate) fn pending(&self, limit: usize) -> Vec<Notification> {
        self.log[self.cursor..].iter().filter(|n| n.status == DeliveryStatus::Pending).take(limit).cloned().collect()
    }

    pub(crate) fn mark_sent(&mut self, ids: &[NotificationId]) {
        let mut wanted: HashSet<NotificationId> = ids.iter().copied().collect();
        for n in self.log[self.cursor..].iter_mut() {
            if wanted.is_empty() {
                break;
            }
            if wanted.remove(&n.id) && n.status == DeliveryStatus::Pending {
                n.status = DeliveryStatus::Sent;
            }
        }
        while self.cursor < self.log.len() && self.log[self.cursor].status != DeliveryStatus::Pending {
            self.cursor += 1;
        }
    }

    /// A user's notifications, newest first.
    pub(crate) fn of_user(&self, user: UserId, limit: usize) -> Vec<Notification> {
        self.by_user.get(&user).map(|idx| idx.iter().rev().take(limit).map(|&i| self.log[i].clone()).collect()).unwrap_or_default()
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
