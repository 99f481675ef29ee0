//! Roles, invites and who may book: the organization's rules in the engine ([`Engine::book_as`]), and the
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

/// `Engine::book_as`: a member books for themself, an organizer for a member; a stranger, a booking
/// for another by a mere member, or for a non-member, or with another event's hold, is refused and
/// writes nothing.
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

/// `Engine::with_auth_cache`: a grant read lately is used until its time is up or it changes
/// through this engine; refusals are never kept.
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

/// Users, roles and invites: who may see and manage an organization, invites accepted by the
/// invited address only and once, the last orgAdmin kept, and bad user input refused.
pub async fn directory_roles_and_invites(h: &Harness) {
    use crate::domain::Role;
    let en = &h.engine;
    let admin = en.upsert_user("kc-admin", Some("admin@example.org"), Some("Ada")).await.unwrap();
    let again = en.upsert_user("kc-admin", Some("ada@example.org"), Some("Ada L")).await.unwrap();
    assert_eq!((again.id, again.email.as_deref()), (admin.id, Some("ada@example.org")));
    let bob = en.upsert_user("kc-bob", Some("Bob@Example.org"), None).await.unwrap();
    let eve = en.upsert_user("kc-eve", Some("eve@example.org"), None).await.unwrap();
    let org = en.create_org(admin.id, "Acme").await.unwrap();
    assert_eq!(en.authorize(admin.id, org.id, Role::OrgAdmin).await.unwrap(), Role::OrgAdmin);
    assert!(matches!(en.authorize(eve.id, org.id, Role::User).await, Err(Error::NotFound(Entity::Organization))));
    assert!(matches!(en.members(eve.id, org.id).await, Err(Error::NotFound(Entity::Organization))));
    let invite = en.invite(admin.id, org.id, "bob@example.org", Role::Organizer, 24).await.unwrap();
    assert!(matches!(en.accept_invite(eve.id, eve.email.as_deref(), &invite.token).await, Err(Error::Forbidden(_))));
    // Only the vouched-for address counts: none claims nothing.
    assert!(matches!(en.accept_invite(bob.id, None, &invite.token).await, Err(Error::Forbidden(_))));
    let m = en.accept_invite(bob.id, bob.email.as_deref(), &invite.token).await.unwrap();
    assert_eq!(m.role, Role::Organizer);
    assert!(matches!(
        en.accept_invite(bob.id, bob.email.as_deref(), &invite.token).await,
        Err(Error::Conflict { reason: Conflict::InviteNotPending, .. })
    ));
    let kinds: Vec<_> = h.delivered().await.into_iter().filter(|n| n.user_id == bob.id).map(|n| n.kind).collect();
    assert_eq!(kinds, vec![NotificationKind::InvitationReceived]);
    // An organizer manages events but not members.
    assert_eq!(en.authorize(bob.id, org.id, Role::Organizer).await.unwrap(), Role::Organizer);
    assert!(matches!(en.add_member(bob.id, org.id, eve.id, Role::User).await, Err(Error::Forbidden(_))));
    en.add_member(admin.id, org.id, eve.id, Role::User).await.unwrap();
    assert!(matches!(
        en.add_member(admin.id, org.id, eve.id, Role::User).await,
        Err(Error::Conflict { reason: Conflict::AlreadyMember, .. })
    ));
    assert!(matches!(en.authorize(eve.id, org.id, Role::Organizer).await, Err(Error::Forbidden(_))));
    // An event is seen with the role in its organization, read together with it: to an
    // outsider it does not exist; a member with too small a role is forbidden.
    let event = h.event_in(org.id, 3, Fifo).await;
    assert_eq!(en.event_as(eve.id, event.id, Role::User).await.unwrap(), (event.clone(), Role::User));
    assert_eq!(en.event_as(bob.id, event.id, Role::Organizer).await.unwrap().1, Role::Organizer);
    assert!(matches!(en.event_as(eve.id, event.id, Role::Organizer).await, Err(Error::Forbidden(_))));
    let outsider = en.upsert_user("kc-outsider", None, None).await.unwrap();
    assert!(matches!(en.event_as(outsider.id, event.id, Role::User).await, Err(Error::NotFound(Entity::Event))));
    assert!(matches!(en.event_as(admin.id, EventId::new(), Role::User).await, Err(Error::NotFound(Entity::Event))));
    // The last orgAdmin stays.
    assert!(matches!(
        en.set_role(admin.id, org.id, admin.id, Role::User).await,
        Err(Error::Conflict { reason: Conflict::LastOrgAdmin, .. })
    ));
    en.set_role(admin.id, org.id, bob.id, Role::OrgAdmin).await.unwrap();
    en.remove_member(admin.id, org.id, admin.id).await.unwrap();
    assert!(matches!(en.authorize(admin.id, org.id, Role::User).await, Err(Error::NotFound(_))));
    let mut members: Vec<_> = en.members(bob.id, org.id).await.unwrap().into_iter().map(|m| (m.user_id, m.role)).collect();
    members.sort();
    let mut want = vec![(bob.id, Role::OrgAdmin), (eve.id, Role::User)];
    want.sort();
    assert_eq!(members, want);
    assert_eq!(en.orgs_of(eve.id).await.unwrap().len(), 1);
    assert!(matches!(en.upsert_user(" ", None, None).await, Err(Error::Invalid { field: "sub", .. })));
    assert!(matches!(en.upsert_user("x", Some("not-an-email"), None).await, Err(Error::Invalid { field: "email", .. })));
}
