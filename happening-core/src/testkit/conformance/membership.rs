//! Who may book: the organization's rules in the engine ([`Engine::book_as`]), and the
//! grants an engine keeps for a while ([`Engine::with_auth_cache`]).
//!
//! [`Engine::book_as`]: crate::Engine::book_as
//! [`Engine::with_auth_cache`]: crate::Engine::with_auth_cache

use super::*;
use crate::domain::Role;

/// An organization with an orgAdmin, a member and an organizer, and a user of none.
struct Org {
    id: OrgId,
    admin: UserId,
    member: UserId,
    organizer: UserId,
    stranger: UserId,
}

async fn org(h: &Harness) -> Org {
    let en = &h.engine;
    let user = |role: &'static str| async move { en.upsert_user(&format!("{role}-{}", UserId::new()), None, None).await.unwrap().id };
    let (admin, member, organizer, stranger) = (user("admin").await, user("member").await, user("organizer").await, user("stranger").await);
    let id = en.create_org(admin, "Rules").await.unwrap().id;
    en.add_member(admin, id, member, Role::User).await.unwrap();
    en.add_member(admin, id, organizer, Role::Organizer).await.unwrap();
    Org { id, admin, member, organizer, stranger }
}

fn one_seat(event: EventId, user: UserId) -> BookRequest {
    BookRequest { event_id: event, user_id: user, seats: Some(1), ..Default::default() }
}

pub async fn book_as_follows_the_organization_s_rules(h: &Harness) {
    let o = org(h).await;
    let e = h.event_in(o.id, 10, Fifo).await.id;
    let en = &h.engine;

    let own = en.book_as(o.member, one_seat(e, o.member)).await.unwrap();
    assert_eq!((own.user_id, own.status), (o.member, BookingStatus::Confirmed));
    let (user, status) = en.book_as(o.organizer, one_seat(e, o.member)).await.map(|b| (b.user_id, b.status)).unwrap();
    assert_eq!((user, status), (o.member, BookingStatus::Confirmed), "an organizer books for a member");

    let refused = [
        (en.book_as(o.stranger, one_seat(e, o.stranger)).await, "to a stranger the event does not exist"),
        (en.book_as(o.member, one_seat(e, o.organizer)).await, "a member books for nobody else"),
        (en.book_as(o.organizer, one_seat(e, o.stranger)).await, "an organizer books for members only"),
    ];
    assert!(matches!(&refused[0].0, Err(Error::NotFound(Entity::Event))), "{}: {:?}", refused[0].1, refused[0].0);
    assert!(
        matches!(&refused[1].0, Err(Error::Forbidden("booking for another user needs the organizer role"))),
        "{}: {:?}",
        refused[1].1,
        refused[1].0
    );
    assert!(matches!(&refused[2].0, Err(Error::Invalid { field: "user_id", .. })), "{}: {:?}", refused[2].1, refused[2].0);

    // A hold of another organization's event does not exist to this one's members.
    let elsewhere = h.event(5, Fifo).await;
    let hold = en
        .hold(HoldRequest { event_id: elsewhere, user_id: UserId::new(), seats: Some(1), seat_numbers: None, ttl_ms: 60_000 })
        .await
        .unwrap();
    let with_hold = BookRequest { hold_id: Some(hold.id), ..one_seat(e, o.member) };
    assert!(matches!(en.book_as(o.member, with_hold).await, Err(Error::NotFound(Entity::Hold))));

    let v = en.event(e).await.unwrap();
    assert_eq!((v.booked, v.waiting), (2, 0), "the refusals wrote nothing");
    check(h, e).await;
    check(h, elsewhere).await;
}

pub async fn auth_cache_keeps_grants_until_changed_here_or_stale(h: &Harness) {
    let o = org(h).await;
    let e = h.event_in(o.id, 10, Fifo).await.id;
    let cached = h.engine.clone().with_auth_cache(1_000);
    let other = h.replicas.first().unwrap_or(&h.engine).clone();

    cached.book_as(o.member, one_seat(e, o.member)).await.unwrap();
    // Removed through another engine: this one keeps the grant it read, for up to 1 s.
    other.remove_member(o.admin, o.id, o.member).await.unwrap();
    cached.book_as(o.member, one_seat(e, o.member)).await.expect("the grant read 0 ms ago");
    h.clock.advance_ms(1_000);
    assert!(matches!(cached.book_as(o.member, one_seat(e, o.member)).await, Err(Error::NotFound(Entity::Event))), "stale");
    // Refusals are not kept: back in, the member books at once.
    other.add_member(o.admin, o.id, o.member, Role::User).await.unwrap();
    cached.book_as(o.member, one_seat(e, o.member)).await.expect("a refusal is not kept");
    // Removed through this engine: dropped at once.
    cached.remove_member(o.admin, o.id, o.member).await.unwrap();
    assert!(matches!(cached.book_as(o.member, one_seat(e, o.member)).await, Err(Error::NotFound(Entity::Event))), "forgotten");
    // An event cancelled through this engine is read again at once.
    cached.book_as(o.organizer, one_seat(e, o.organizer)).await.unwrap();
    cached.cancel_event(e).await.unwrap();
    assert!(matches!(
        cached.book_as(o.organizer, one_seat(e, o.organizer)).await,
        Err(Error::Conflict { reason: Conflict::EventCancelled, .. })
    ));
    check(h, e).await;
}
