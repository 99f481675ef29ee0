//! `RedisAdmission` against `MemoryAdmission`, call by call: random sequences of every port
//! operation (including calls on events that are missing, forgotten or rebuilt, pushes out
//! of order and twice, every promotion policy, and restores with a current or a stale
//! version) must give the same outcome on both, move the event's version in the same cases,
//! and leave the same counter and queue behind.

mod common;

use happening_core::domain::WaitlistPolicy;
use happening_core::ids::{BookingId, EventId};
use happening_core::memory::MemoryAdmission;
use happening_core::ports::*;
use happening_redis::RedisAdmission;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

const EVENTS: usize = 2;
const BOOKINGS: usize = 8;

#[derive(Debug, Clone)]
enum Op {
    SetFree(usize, u32),
    Take(usize, u32, u32, bool, Option<u32>),
    Give(usize, u32),
    Free(usize),
    Forget(usize),
    Push(usize, usize, u32),
    Remove(usize, usize),
    Position(usize, usize),
    Len(usize),
    List(usize, u32),
    Front(usize),
    Pop(usize, WaitlistPolicy),
    /// Restore with the current version (`true`) or a stale one.
    Restore(usize, bool, u32, Vec<(usize, u32)>),
}

impl Op {
    fn event(&self) -> usize {
        match *self {
            Op::SetFree(e, ..)
            | Op::Take(e, ..)
            | Op::Give(e, ..)
            | Op::Free(e)
            | Op::Forget(e)
            | Op::Push(e, ..)
            | Op::Remove(e, ..)
            | Op::Position(e, ..)
            | Op::Len(e)
            | Op::List(e, ..)
            | Op::Front(e)
            | Op::Pop(e, ..)
            | Op::Restore(e, ..) => e,
        }
    }
}

fn policy() -> impl Strategy<Value = WaitlistPolicy> {
    prop_oneof![Just(WaitlistPolicy::Fifo), Just(WaitlistPolicy::FirstFit), Just(WaitlistPolicy::Partial)]
}

fn op() -> impl Strategy<Value = Op> {
    let ev = 0..EVENTS;
    let b = 0..BOOKINGS;
    prop_oneof![
        2 => (ev.clone(), 0u32..12).prop_map(|(e, n)| Op::SetFree(e, n)),
        4 => (ev.clone(), 1u32..7, 0u32..7, any::<bool>(), prop::option::of(0u32..4))
            .prop_map(|(e, want, min, q, cap)| Op::Take(e, want, 1 + min % want, q, cap)),
        2 => (ev.clone(), 0u32..5).prop_map(|(e, n)| Op::Give(e, n)),
        1 => ev.clone().prop_map(Op::Free),
        1 => ev.clone().prop_map(Op::Forget),
        5 => (ev.clone(), b.clone(), 0u32..7).prop_map(|(e, b, s)| Op::Push(e, b, s)),
        2 => (ev.clone(), b.clone()).prop_map(|(e, b)| Op::Remove(e, b)),
        1 => (ev.clone(), b.clone()).prop_map(|(e, b)| Op::Position(e, b)),
        1 => ev.clone().prop_map(Op::Len),
        1 => (ev.clone(), 0u32..6).prop_map(|(e, n)| Op::List(e, n)),
        1 => ev.clone().prop_map(Op::Front),
        4 => (ev.clone(), policy()).prop_map(|(e, p)| Op::Pop(e, p)),
        2 => (ev, any::<bool>(), 0u32..12, prop::collection::vec((b, 0u32..7), 0..6))
            .prop_map(|(e, current, free, v)| Op::Restore(e, current, free, v)),
    ]
}

/// A case: the order of the bookings' `seq`s (each booking has one, as in the store), and
/// the calls.
fn calls() -> impl Strategy<Value = (Vec<u64>, Vec<Op>)> {
    (Just((0..BOOKINGS as u64).map(|i| i * 7 + 3).collect::<Vec<_>>()).prop_shuffle(), prop::collection::vec(op(), 1..60))
}

/// Runs one call on `a`; the outcome as text, to compare, with whether it moved the
/// event's version (the values differ between backends; when they move may not).
async fn call(a: &dyn Admission, events: &[EventId], bookings: &[BookingId], seqs: &[u64], op: &Op) -> String {
    let before = a.version(events[op.event()]).await.unwrap();
    let outcome = outcome(a, events, bookings, seqs, op, before).await;
    let moved = a.version(events[op.event()]).await.unwrap() != before;
    format!("{outcome} moved: {moved}")
}

async fn outcome(a: &dyn Admission, events: &[EventId], bookings: &[BookingId], seqs: &[u64], op: &Op, version: u64) -> String {
    let entry = |b: usize, seats: u32| WaitEntry { booking: bookings[b], seats, seq: seqs[b] };
    match *op {
        Op::SetFree(e, n) => format!("{:?}", a.set_free(events[e], n).await),
        Op::Take(e, want, min, behind_queue, waitlist_max) => {
            format!("{:?}", a.take(events[e], TakeRequest { want, min, behind_queue, waitlist_max }).await)
        }
        Op::Give(e, n) => format!("{:?}", a.give(events[e], n).await),
        Op::Free(e) => format!("{:?}", a.free(events[e]).await),
        Op::Forget(e) => format!("{:?}", a.forget(events[e]).await),
        Op::Push(e, b, seats) => format!("{:?}", a.push(events[e], entry(b, seats)).await),
        Op::Remove(e, b) => format!("{:?}", a.remove(events[e], bookings[b]).await),
        Op::Position(e, b) => format!("{:?}", a.position(events[e], bookings[b]).await),
        Op::Len(e) => format!("{:?}", a.len(events[e]).await),
        Op::List(e, n) => format!("{:?}", a.list(events[e], n).await),
        Op::Front(e) => format!("{:?}", a.front(events[e]).await),
        Op::Pop(e, p) => format!("{:?}", a.pop_fitting(events[e], p).await),
        Op::Restore(e, current, free, ref v) => {
            let mut entries: Vec<WaitEntry> = v.iter().map(|&(b, s)| entry(b, s)).collect();
            entries.sort_by_key(|x| x.seq);
            entries.dedup_by_key(|x| x.booking);
            let version = if current { version } else { version + 1 };
            format!("{:?}", a.restore(events[e], version, free, entries).await)
        }
    }
}

/// Counter and whole queue of every event.
async fn state(a: &dyn Admission, events: &[EventId]) -> String {
    let mut s = String::new();
    for &e in events {
        s += &format!("{:?} {:?}; ", a.free(e).await, a.list(e, u32::MAX).await);
    }
    s
}

#[test]
fn redis_admission_answers_every_call_as_the_memory_one() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let Some(url) = common::redis_url() else {
        return;
    };
    let prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
    let redis = rt.block_on(RedisAdmission::connect(&url, &prefix)).expect("connect");
    let cases: u32 = std::env::var("HAPPENING_REDIS_DIFF_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(400);
    let mut runner = TestRunner::new(Config { cases, max_shrink_iters: 2_000, ..Config::default() });
    let result = runner.run(&calls(), |(seqs, ops)| {
        rt.block_on(async {
            let memory = MemoryAdmission::new();
            let events: Vec<EventId> = (0..EVENTS).map(|_| EventId::new()).collect();
            let bookings: Vec<BookingId> = (0..BOOKINGS).map(|_| BookingId::new()).collect();
            for (step, op) in ops.iter().enumerate() {
                let want = call(&memory, &events, &bookings, &seqs, op).await;
                let got = call(&redis, &events, &bookings, &seqs, op).await;
                prop_assert_eq!(&got, &want, "step {} {:?}", step, op);
                let (want, got) = (state(&memory, &events).await, state(&redis, &events).await);
                prop_assert_eq!(&got, &want, "state after step {} {:?}", step, op);
            }
            for &e in &events {
                redis.forget(e).await.unwrap();
            }
            Ok(())
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
