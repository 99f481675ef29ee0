//! The conformance suite: the booking rules, written once against the engine
//! and its ports. Every backend runs it through [`conformance_tests!`](crate::conformance_tests):
//!
//! ```ignore
//! happening_core::conformance_tests!(|| async { Harness::in_memory(0) });
//! ```
//!
//! The rules live by area, one file each: booking, waitlist, cancel, events, holds,
//! offers, membership, records (history, notifications, outbox), validation, admission
//! (the derived counter and queue). A rule is a `pub async fn(&Harness)` there and a name
//! in the macro's list below.

use crate::clock::Clock;
use crate::domain::*;
use crate::engine::{BookRequest, HoldRequest};
use crate::error::{Conflict, Entity, Error};
use crate::ids::*;
use crate::limits::Limits;
use crate::ports::{AdmissionError, Pushed, StoreError, Take, TakeRequest, WaitEntry, Waitlist};
use crate::testkit::interleave::Interleave;
use crate::testkit::{invariants, Harness};

use WaitlistPolicy::*;

mod admission;
mod booking;
mod cancel;
mod events;
mod holds;
mod membership;
mod offers;
mod records;
mod validation;
mod waitlist;

pub use admission::*;
pub use booking::*;
pub use cancel::*;
pub use events::*;
pub use holds::*;
pub use membership::*;
pub use offers::*;
pub use records::*;
pub use validation::*;
pub use waitlist::*;

/// Expands to one `#[tokio::test]` per rule, each on a fresh harness from `$make`
/// (an expression `Fn() -> impl Future<Output = Harness>`, or `Option<Harness>` where
/// `None` means the backend is not configured and the test is skipped; the factory itself
/// must fail under CI).
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@cases $make;
            book_confirms_lowest_free_seats,
            requested_seats_when_free,
            taken_requested_seats_fall_back_to_lowest,
            strict_seats_conflict_names_taken_seats,
            short_booking_waits_in_order,
            a_burst_that_waits_is_numbered_one_to_n_in_queue_order,
            fifo_newcomer_queues_behind_waiting,
            confirm_behind_the_queue_is_short_while_anyone_waits,
            first_fit_newcomer_that_fits_is_confirmed,
            accept_partial_takes_what_is_free,
            demo_cancel_seats_promotes,
            fifo_stops_at_first_that_does_not_fit,
            first_fit_promotes_every_one_that_fits,
            partial_policy_gives_head_what_is_free,
            cancel_waiting_leaves_queue_and_promotes_next,
            cancel_twice_conflicts,
            full_waitlist_turns_newcomers_away_and_writes_nothing,
            cancel_seats_rules,
            resize_up_promotes,
            resize_down_keeps_taken_seats,
            promotion_cut_by_its_limit_is_finished_by_reconcile_dirty,
            hold_expiry_frees_and_promotes,
            hold_of_taken_seats_conflicts,
            hold_release_and_owner_checks,
            hold_becomes_booking,
            cancel_event_cancels_everything,
            idempotent_requests_replay,
            twin_requests_with_one_key_book_once,
            history_and_notifications_for_every_change,
            bad_input_changes_nothing,
            bad_holds_events_and_hold_bookings_change_nothing,
            counter_rebuilt_when_missing,
            restore_loses_to_any_step_after_its_version,
            rebuild_keeps_a_step_made_while_it_read_the_store,
            cancels_at_once_promote_everyone_one_pass_at_a_time_where_pops_only_read,
            push_says_whether_seats_are_free,
            outbox_claims_and_delivery,
            directory_roles_and_invites,
            book_as_follows_the_organization_s_rules,
            auth_cache_keeps_grants_until_changed_here_or_stale,
            lists_page_with_offset,
            event_bookings_page_by_status,
            offer_holds_seats_until_accepted,
            declined_offer_passes_to_the_next_in_line,
            expired_offer_passes_on_in_the_background_step,
            offers_due_together_end_once_each,
            offers_follow_the_waitlist_policy,
            cancels_and_resizes_respect_offered_seats,
            racing_answers_end_each_offer_once,
        );
    };
    (@cases $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(harness) = $crate::testkit::MaybeHarness::get(($make)().await) else { return };
                $crate::testkit::conformance::$name(&harness).await;
            }
        )*
    };
}

async fn check(h: &Harness, event: EventId) {
    if let Err(breach) = invariants::check(&h.engine, event).await {
        panic!("invariant broken: {breach}");
    }
}

fn conflict_seats(r: Result<Booking, Error>) -> (Conflict, Vec<SeatNo>) {
    match r {
        Err(Error::Conflict { reason, seats }) => (reason, seats),
        other => panic!("expected a conflict, got {other:?}"),
    }
}

async fn status(h: &Harness, b: &Booking) -> (BookingStatus, Vec<SeatNo>) {
    let b = h.engine.booking(b.id).await.expect("booking");
    (b.status, b.seat_numbers)
}

fn hold_req(e: EventId, u: UserId, seats: Option<u32>, numbers: Option<Vec<SeatNo>>) -> HoldRequest {
    HoldRequest { event_id: e, user_id: u, seats, seat_numbers: numbers, ttl_ms: 60_000 }
}

/// A snapshot of everything a bad request could have touched.
async fn snapshot(h: &Harness, e: EventId) -> (EventView, SeatMap, Vec<Booking>, usize) {
    let pending = h.engine.store().pending_notifications(u32::MAX).await.unwrap().len();
    (h.engine.event(e).await.unwrap(), h.engine.seat_map(e).await.unwrap(), h.engine.store().event_bookings(e).await.unwrap(), pending)
}

/// Asserts that `r` is a refusal of `field`.
fn refused<T: std::fmt::Debug>(r: Result<T, Error>, field: &str, what: &str) {
    match r {
        Err(Error::Invalid { field: f, .. }) => assert_eq!(f, field, "{what}"),
        other => panic!("{what}: expected invalid {field}, got {other:?}"),
    }
}
