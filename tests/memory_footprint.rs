//! Memory of the in-memory engine, counted by the allocator (deterministic, unlike time):
//! about one bit per seat, and a small constant per booking.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use happening::core::domain::NewEvent;
use happening::core::ids::UserId;
use happening::core::{BookRequest, Engine};

struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> isize {
    LIVE_BYTES.load(Ordering::Relaxed)
}

#[test]
fn seats_cost_a_bit_and_bookings_a_small_constant() {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        let engine = Engine::in_memory();
        let admin = engine.upsert_user("admin", None, None).await.unwrap();
        let org_id = engine.create_org(admin.id, "Acme").await.unwrap().id;
        // Warm the shared structures (shards, outbox) so they are not charged to the event.
        let warm = NewEvent::new(org_id, "warm", chrono::Utc::now(), 1);
        engine.create_event(warm.clone()).await.unwrap();

        let before = live();
        let e = engine.create_event(NewEvent { capacity: 100_000, ..warm }).await.unwrap().event.id;
        let event_bytes = live() - before;
        println!("event of 100,000 seats: {event_bytes} bytes");
        assert!(event_bytes < 16 * 1024, "an event of 100,000 seats costs {event_bytes} bytes");

        let user = UserId::new();
        let before = live();
        const N: isize = 20_000;
        for _ in 0..N {
            engine.book(BookRequest { event_id: e, user_id: user, seats: Some(1), ..Default::default() }).await.unwrap();
        }
        let per_booking = (live() - before) / N;
        println!("per confirmed booking (record, history, notification, indexes): {per_booking} bytes");
        assert!(per_booking < 1024, "{per_booking} bytes per booking");
    });
}
