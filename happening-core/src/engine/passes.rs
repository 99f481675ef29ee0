//! Promotion passes of one engine, at most one at a time per event.
//!
//! Why: every cancel, resize, and (with PostgreSQL admission) every queued booking runs a
//! promotion pass. Passes side by side on one event all pick the same head of the waitlist
//! and queue on its row in the store, each holding a pooled connection while it waits: the
//! first promotes it, the others find it promoted and queue again on the next head, so a
//! burst of n cancels made O(n²) lock waits, and its waiting passes starved unrelated
//! requests of connections (a 5 s pool wait then fails them).
//!
//! So a pass asked for while one runs on the same event waits for the *next* pass, which
//! starts when the running one ends and serves every request that arrived meanwhile. Each
//! caller still returns only after a whole pass that started after its call, as if it had
//! run its own: a cancel that returns has had its freed seats offered to the waitlist. The
//! waiting holds no connection and no lock. Across engines (several servers) passes still
//! run side by side, at most one per engine and event.
//!
//! The next pass is run by the first caller waiting for it (not by the one whose pass just
//! ended, which returns), so no caller runs more than one pass. A caller dropped while it
//! leads (a request cancelled mid-pass) hands the lead on, and those its pass would have
//! served ask again; a caller dropped while it waits passes on a lead handed to it, so that
//! the callers behind it never wait for a pass nobody runs.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Mutex, MutexGuard, PoisonError};

use futures_channel::oneshot;

use crate::error::{BackendError, Error, Result};
use crate::ids::EventId;

/// What a waiting caller is told.
enum Turn {
    /// The pass that served you ended: its count of promotions, or its error's text (an
    /// [`Error`] is not `Clone`; the followers only mark the event for reconciliation).
    Done(std::result::Result<u32, String>),
    /// Run the next pass yourself.
    Lead,
}

/// Per event with a pass running: the callers waiting for the next one, in arrival order.
#[derive(Default)]
pub(super) struct Passes(Mutex<HashMap<EventId, VecDeque<oneshot::Sender<Turn>>>>);

impl Passes {
    /// Runs `pass` for `event`, or waits for the next pass another caller runs; see the
    /// module docs. Returns that pass's count of promotions (which may include seats freed
    /// by other callers).
    pub(super) async fn run<F, Fut>(&self, event: EventId, pass: F) -> Result<u32>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<u32>>,
    {
        loop {
            let waiting = match self.map().entry(event) {
                Entry::Vacant(v) => {
                    v.insert(VecDeque::new());
                    None
                }
                Entry::Occupied(mut o) => {
                    let (tx, rx) = oneshot::channel();
                    o.get_mut().push_back(tx);
                    Some(Waiting { passes: self, event, rx, answered: false })
                }
            };
            if let Some(mut w) = waiting {
                let turn = (&mut w.rx).await;
                w.answered = true;
                match turn {
                    Ok(Turn::Done(outcome)) => return outcome.map_err(|why| Error::Backend(BackendError::msg(why))),
                    Ok(Turn::Lead) => {}
                    // The leader that would have served us was dropped mid-pass: ask again.
                    Err(oneshot::Canceled) => continue,
                }
            }
            return self.lead(event, pass).await;
        }
    }

    async fn lead<F, Fut>(&self, event: EventId, pass: F) -> Result<u32>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<u32>>,
    {
        // Everyone waiting now asked before this pass starts: it serves them.
        let served = std::mem::take(self.map().get_mut(&event).expect("a leader's event has an entry"));
        let mut lead = Lead { passes: self, event, served };
        let outcome = pass().await;
        let told = match &outcome {
            Ok(n) => Ok(*n),
            Err(e) => Err(e.to_string()),
        };
        for tx in lead.served.drain(..) {
            // A receiver gone is a caller that stopped waiting.
            let _ = tx.send(Turn::Done(told.clone()));
        }
        outcome
    }

    /// Hands the lead of `event`'s next pass to the first caller still waiting, or ends the
    /// event's entry when none is.
    fn hand_on(&self, event: EventId) {
        let mut map = self.map();
        let waiting = map.get_mut(&event).expect("an event being handed on has an entry");
        while let Some(tx) = waiting.pop_front() {
            if tx.send(Turn::Lead).is_ok() {
                return;
            }
        }
        map.remove(&event);
    }

    fn map(&self) -> MutexGuard<'_, HashMap<EventId, VecDeque<oneshot::Sender<Turn>>>> {
        // Nothing panics while the lock is held; taking it poisoned keeps `Lead::drop` from
        // panicking during an unwind.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The lead of one pass. Dropped when the pass ends or when its caller is dropped
/// mid-pass: either way it hands the lead to the first caller still waiting, or ends the
/// event's entry. The `served` it still holds then (only if dropped mid-pass) are dropped
/// unanswered, so they ask again.
struct Lead<'a> {
    passes: &'a Passes,
    event: EventId,
    served: VecDeque<oneshot::Sender<Turn>>,
}

impl Drop for Lead<'_> {
    fn drop(&mut self) {
        self.passes.hand_on(self.event);
    }
}

/// A caller waiting for its turn. Dropped unanswered (its own caller was dropped), it closes
/// its receiver, so that no lead is handed to it any more, and hands on a lead that reached
/// it already: the callers behind it would otherwise wait for a pass nobody runs.
struct Waiting<'a> {
    passes: &'a Passes,
    event: EventId,
    rx: oneshot::Receiver<Turn>,
    answered: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        // After `close`, a send fails, and `try_recv` sees any that came before it.
        self.rx.close();
        if let Ok(Some(Turn::Lead)) = self.rx.try_recv() {
            self.passes.hand_on(self.event);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    const CALLERS: usize = 64;
    /// Bounds every wait of these tests: a hang is the failure they look for.
    const HANG: Duration = Duration::from_secs(60);

    /// A logical clock shared by callers and passes, to order "called" before "started".
    #[derive(Default)]
    struct Probe {
        clock: AtomicU64,
        running: AtomicU32,
        running_max: AtomicU32,
        passes: AtomicU32,
    }

    impl Probe {
        /// A pass: counts itself, lets the others run, returns its start time.
        async fn pass(&self, fail: bool) -> Result<u32> {
            let started = self.clock.fetch_add(1, Ordering::SeqCst);
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.running_max.fetch_max(now, Ordering::SeqCst);
            self.passes.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            self.running.fetch_sub(1, Ordering::SeqCst);
            if fail {
                return Err(Error::Backend(BackendError::msg("store down")));
            }
            Ok(started as u32)
        }
    }

    async fn call(passes: Arc<Passes>, probe: Arc<Probe>, event: EventId, fail: bool) -> (u64, Result<u32>) {
        let called = probe.clock.fetch_add(1, Ordering::SeqCst);
        let p = probe.clone();
        let r = passes.run(event, move || async move { p.pass(fail).await }).await;
        (called, r)
    }

    fn waiting(passes: &Passes, event: EventId) -> Option<usize> {
        passes.map().get(&event).map(VecDeque::len)
    }

    async fn until(what: impl Fn() -> bool) {
        tokio::time::timeout(HANG, async {
            while !what() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .expect("waited too long");
    }

    /// A caller whose pass, once it leads one, runs only when `release` says so (the
    /// others queue meanwhile); the flag says its pass has started (it took those it serves).
    fn gated(
        passes: &Arc<Passes>,
        probe: &Arc<Probe>,
        event: EventId,
        release: impl Fn() -> bool + Send + Sync + 'static,
    ) -> (tokio::task::JoinHandle<(u64, Result<u32>)>, Arc<AtomicBool>) {
        let (passes, probe) = (passes.clone(), probe.clone());
        let started = Arc::new(AtomicBool::new(false));
        let flag = started.clone();
        let task = tokio::spawn(async move {
            let called = probe.clock.fetch_add(1, Ordering::SeqCst);
            let p = probe.clone();
            let r = passes
                .run(event, move || async move {
                    flag.store(true, Ordering::SeqCst);
                    until(release).await;
                    p.pass(false).await
                })
                .await;
            (called, r)
        });
        (task, started)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn one_pass_at_a_time_per_event_each_caller_served_by_a_pass_started_after_it() {
        let passes = Arc::new(Passes::default());
        let probe = Arc::new(Probe::default());
        let event = EventId::new();
        let p = passes.clone();
        let (leader, started) = gated(&passes, &probe, event, move || waiting(&p, event) == Some(CALLERS - 1));
        until(|| started.load(Ordering::SeqCst)).await;
        let mut tasks: Vec<_> = (1..CALLERS).map(|_| tokio::spawn(call(passes.clone(), probe.clone(), event, false))).collect();
        tasks.push(leader);
        for t in tasks {
            let (called, r) = tokio::time::timeout(HANG, t).await.expect("a caller hung").unwrap();
            let started = r.expect("the pass succeeds") as u64;
            assert!(started > called, "served by a pass started at {started}, before the call at {called}");
        }
        assert_eq!(probe.running_max.load(Ordering::SeqCst), 1, "passes of one event overlapped");
        // The leader's, then one for all who queued behind it.
        assert_eq!(probe.passes.load(Ordering::SeqCst), 2);
        assert_eq!(waiting(&passes, event), None, "an entry outlived its passes");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn passes_of_different_events_run_side_by_side() {
        const EVENTS: usize = 8;
        let passes = Arc::new(Passes::default());
        // Each pass waits until all are running: passes of different events kept one at a
        // time would hang here.
        let barrier = Arc::new(tokio::sync::Barrier::new(EVENTS));
        let tasks: Vec<_> = (0..EVENTS)
            .map(|_| {
                let (passes, barrier) = (passes.clone(), barrier.clone());
                tokio::spawn(async move {
                    passes
                        .run(EventId::new(), || async move {
                            barrier.wait().await;
                            Ok(1)
                        })
                        .await
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(tokio::time::timeout(HANG, t).await.expect("passes were serialized").unwrap().unwrap(), 1);
        }
        assert!(passes.map().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_failed_pass_fails_those_it_served() {
        let passes = Arc::new(Passes::default());
        let probe = Arc::new(Probe::default());
        let event = EventId::new();
        let tasks: Vec<_> = (0..16).map(|_| tokio::spawn(call(passes.clone(), probe.clone(), event, true))).collect();
        for t in tasks {
            let err = tokio::time::timeout(HANG, t).await.expect("a caller hung").unwrap().1.expect_err("every pass fails");
            assert!(err.to_string().contains("store down"), "{err}");
        }
        assert!(passes.map().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_waiter_dropped_after_the_lead_reached_it_hands_it_on() {
        let passes = Arc::new(Passes::default());
        let probe = Arc::new(Probe::default());
        let event = EventId::new();
        let p = passes.clone();
        let (leader, started) = gated(&passes, &probe, event, move || waiting(&p, event) == Some(2));
        until(|| started.load(Ordering::SeqCst)).await;
        // The first waiter: polled until it queues, then never again.
        let mut dropped = Box::pin(call(passes.clone(), probe.clone(), event, false));
        assert!(tokio::time::timeout(Duration::from_millis(20), &mut dropped).await.is_err(), "it waits");
        assert_eq!(waiting(&passes, event), Some(1));
        let behind = tokio::spawn(call(passes.clone(), probe.clone(), event, false));
        // The leader's pass ends and hands the lead to the first waiter, which is not polled.
        tokio::time::timeout(HANG, leader).await.expect("the leader hung").unwrap().1.unwrap();
        drop(dropped);
        let (called, r) = tokio::time::timeout(HANG, behind).await.expect("the caller behind hung").unwrap();
        assert!(r.unwrap() as u64 > called);
        assert_eq!(probe.passes.load(Ordering::SeqCst), 2);
        assert!(passes.map().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn those_a_dropped_leader_would_have_served_ask_again() {
        let passes = Arc::new(Passes::default());
        let probe = Arc::new(Probe::default());
        let event = EventId::new();
        let p = passes.clone();
        let (first, started) = gated(&passes, &probe, event, move || waiting(&p, event) == Some(2));
        until(|| started.load(Ordering::SeqCst)).await;
        // Next in line, with a pass that never ends: it will lead, serving the one behind it.
        let (second, second_started) = gated(&passes, &probe, event, || false);
        until(|| waiting(&passes, event) == Some(1)).await;
        let behind = tokio::spawn(call(passes.clone(), probe.clone(), event, false));
        tokio::time::timeout(HANG, first).await.expect("the first leader hung").unwrap().1.unwrap();
        until(|| second_started.load(Ordering::SeqCst)).await;
        assert_eq!(waiting(&passes, event), Some(0), "the one behind is served by the second's pass");
        second.abort();
        let (called, r) = tokio::time::timeout(HANG, behind).await.expect("the caller behind hung").unwrap();
        assert!(r.unwrap() as u64 > called, "it asked again and ran a pass of its own");
        assert_eq!(probe.passes.load(Ordering::SeqCst), 2);
        assert!(passes.map().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_leader_dropped_mid_pass_hands_on_and_nobody_hangs() {
        let passes = Arc::new(Passes::default());
        let probe = Arc::new(Probe::default());
        let event = EventId::new();
        // The leader: a pass that never ends, dropped once the others queued behind it.
        let (leader, started) = gated(&passes, &probe, event, || false);
        until(|| started.load(Ordering::SeqCst)).await;
        let tasks: Vec<_> = (0..16).map(|_| tokio::spawn(call(passes.clone(), probe.clone(), event, false))).collect();
        until(|| waiting(&passes, event) == Some(16)).await;
        assert_eq!(probe.passes.load(Ordering::SeqCst), 0, "a pass ran beside the leader's");
        leader.abort();
        for t in tasks {
            let (called, r) = tokio::time::timeout(HANG, t).await.expect("a caller hung").unwrap();
            assert!(r.unwrap() as u64 > called);
        }
        assert_eq!(probe.running_max.load(Ordering::SeqCst), 1);
        assert!(passes.map().is_empty());
    }
}
