//! Users, organizations, members and invites, with the role rules: an orgAdmin manages the
//! organization, its members and invites; an organizer manages events; a user books. To
//! someone outside an organization it does not exist (`NotFound`), so tenants cannot probe
//! each other's ids.

use chrono::Duration;

use crate::domain::*;
use crate::effects;
use crate::error::{Entity, Error, Result};
use crate::ids::{EventId, OrgId, UserId};

use super::validate;
use super::Engine;

impl Engine {
    /// The caller's role in `org`, which must be at least `needed`. Non-members get
    /// `NotFound(Organization)`, members with too small a role `Forbidden`.
    pub async fn authorize(&self, user: UserId, org: OrgId, needed: Role) -> Result<Role> {
        check_role(self.store.role(org, user).await?, needed, Entity::Organization)
    }

    /// The event `id` and `user`'s role in its organization, which must be at least
    /// `needed`, in one store read ([`SeatStore::event_for`](crate::ports::SeatStore::event_for)).
    /// To a non-member the event does not exist (`NotFound(Event)`); a member with too
    /// small a role gets `Forbidden`. With [`Engine::with_auth_cache`], a grant read lately
    /// is used again without a read.
    pub async fn event_as(&self, user: UserId, id: EventId, needed: Role) -> Result<(Event, Role)> {
        let now = self.clock.now();
        if let Some((event, role)) = self.grants.as_ref().and_then(|g| g.get(id, user, now)) {
            if role >= needed {
                return Ok((event, role));
            }
        }
        let (event, role) = self.store.event_for(id, user).await?;
        let role = check_role(role, needed, Entity::Event)?;
        if let Some(g) = &self.grants {
            g.put(&event, user, role, now);
        }
        Ok((event, role))
    }

    /// Drops what [`Engine::event_as`] kept of `event`'s row: it changed.
    pub(super) fn forget_event_grants(&self, event: EventId) {
        if let Some(g) = &self.grants {
            g.forget_event(event);
        }
    }

    /// Drops what [`Engine::event_as`] kept of `user`'s role in `org`: it changed.
    fn forget_role_grant(&self, org: OrgId, user: UserId) {
        if let Some(g) = &self.grants {
            g.forget_role(org, user);
        }
    }

    /// Creates or refreshes the user of an identity-provider subject.
    pub async fn upsert_user(&self, subject: &str, email: Option<&str>, name: Option<&str>) -> Result<User> {
        let subject = validate::text("sub", subject, 255)?;
        let email = validate::optional_text("email", email, 320)?;
        if email.as_deref().is_some_and(|e| !e.contains('@')) {
            return Err(Error::invalid("email", "is not an email address"));
        }
        let name = validate::optional_text("name", name, self.limits.name_bytes_max)?;
        Ok(self.store.upsert_user(&subject, email.as_deref(), name.as_deref(), self.clock.now()).await?)
    }

    /// The user with this id; `NotFound(User)` if none.
    pub async fn user(&self, id: UserId) -> Result<User> {
        Ok(self.store.user(id).await?)
    }

    /// The users of `ids` that exist, at most a page's worth
    /// ([`Limits::page_size_max`](crate::limits::Limits)) of ids, in no particular order.
    pub async fn users(&self, ids: &[UserId]) -> Result<Vec<User>> {
        let max = self.limits.page_size_max as usize;
        if ids.len() > max {
            return Err(Error::invalid("user_ids", format!("at most {max} users at once")));
        }
        Ok(self.store.users(ids).await?)
    }

    /// The user of an identity-provider subject (a token's `sub`); `NotFound(User)` until
    /// [`Engine::upsert_user`] made one.
    pub async fn user_by_subject(&self, subject: &str) -> Result<User> {
        Ok(self.store.user_by_subject(subject).await?)
    }

    /// Creates an organization with the caller as its orgAdmin.
    pub async fn create_org(&self, caller: UserId, name: &str) -> Result<Organization> {
        let org = Organization {
            id: OrgId::new(),
            name: validate::text("name", name, self.limits.name_bytes_max)?,
            created_at: self.clock.now(),
        };
        Ok(self.store.create_org(&org, caller).await?)
    }

    /// The caller's organizations with their role in each.
    pub async fn orgs_of(&self, caller: UserId) -> Result<Vec<(Organization, Role)>> {
        Ok(self.store.user_orgs(caller).await?)
    }

    /// The organization and the caller's role in it; to a non-member it does not exist
    /// (`NotFound(Organization)`).
    pub async fn org(&self, caller: UserId, org: OrgId) -> Result<(Organization, Role)> {
        let role = self.authorize(caller, org, Role::User).await?;
        Ok((self.store.org(org).await?, role))
    }

    /// The organization's members with their roles; any member may list them.
    pub async fn members(&self, caller: UserId, org: OrgId) -> Result<Vec<Membership>> {
        self.authorize(caller, org, Role::User).await?;
        Ok(self.store.members(org).await?)
    }

    /// Adds `user` to the organization with `role` (orgAdmin only); `Conflict(AlreadyMember)`
    /// if they are one.
    pub async fn add_member(&self, caller: UserId, org: OrgId, user: UserId, role: Role) -> Result<Membership> {
        self.authorize(caller, org, Role::OrgAdmin).await?;
        let m = Membership { org_id: org, user_id: user, role, created_at: self.clock.now() };
        let added = self.store.add_member(&m).await?;
        self.forget_role_grant(org, user);
        Ok(added)
    }

    /// Changes a member's role (orgAdmin only); the last orgAdmin keeps theirs
    /// (`Conflict(LastOrgAdmin)`).
    pub async fn set_role(&self, caller: UserId, org: OrgId, user: UserId, role: Role) -> Result<Membership> {
        self.authorize(caller, org, Role::OrgAdmin).await?;
        let set = self.store.set_role(org, user, role).await;
        // Dropped whatever the answer: a failed write may still have been made.
        self.forget_role_grant(org, user);
        Ok(set?)
    }

    /// Removes a member: an orgAdmin may remove anyone, anyone may leave.
    pub async fn remove_member(&self, caller: UserId, org: OrgId, user: UserId) -> Result<()> {
        let needed = if caller == user { Role::User } else { Role::OrgAdmin };
        self.authorize(caller, org, needed).await?;
        let removed = self.store.remove_member(org, user).await;
        self.forget_role_grant(org, user);
        Ok(removed?)
    }

    /// Invites `email` to `org` with `role`; the token is what the invitee redeems. A user
    /// who already has an account with that email is notified.
    pub async fn invite(&self, caller: UserId, org: OrgId, email: &str, role: Role, ttl_hours: u32) -> Result<Invite> {
        self.authorize(caller, org, Role::OrgAdmin).await?;
        let email = validate::text("email", email, 320)?;
        if !email.contains('@') {
            return Err(Error::invalid("email", "is not an email address"));
        }
        if ttl_hours == 0 || ttl_hours > 24 * 30 {
            return Err(Error::invalid("ttl_hours", "must be between 1 and 720"));
        }
        let now = self.clock.now();
        let invite = Invite {
            token: format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple()),
            org_id: org,
            email: email.clone(),
            role,
            invited_by: caller,
            status: InviteStatus::Pending,
            expires_at: now + Duration::hours(ttl_hours as i64),
            created_at: now,
        };
        let notify = self.store.user_by_email(&email).await?.map(|u| effects::invited(u.id, org, now));
        Ok(self.store.create_invite(&invite, notify.as_ref()).await?)
    }

    /// An invite, to whoever has its token.
    pub async fn invite_by_token(&self, token: &str) -> Result<Invite> {
        if token.is_empty() || token.len() > 128 {
            return Err(Error::NotFound(Entity::Invite));
        }
        Ok(self.store.invite(token).await?)
    }

    /// Accepts an invite: `verified_email`, the caller's address as the identity provider
    /// vouches for it (the token's claim, not the stored profile, which a client could have
    /// set), must be the invited one; without one, nobody's invite can be taken.
    pub async fn accept_invite(&self, caller: UserId, verified_email: Option<&str>, token: &str) -> Result<Membership> {
        let invite = self.invite_by_token(token).await?;
        if !verified_email.is_some_and(|e| e.trim().eq_ignore_ascii_case(&invite.email)) {
            return Err(Error::Forbidden("the invite is for another email address"));
        }
        let accepted = self.store.accept_invite(token, caller, self.clock.now()).await?;
        self.forget_role_grant(accepted.org_id, caller);
        Ok(accepted)
    }
}

/// `role` (`None`: not a member) if it is at least `needed`; to a non-member, `hidden` does
/// not exist.
fn check_role(role: Option<Role>, needed: Role, hidden: Entity) -> Result<Role> {
    match role {
        None => Err(Error::NotFound(hidden)),
        Some(role) if role >= needed => Ok(role),
        Some(_) => Err(Error::Forbidden(match needed {
            Role::OrgAdmin => "needs the orgAdmin role",
            Role::Organizer => "needs the organizer role",
            Role::User => "needs membership",
        })),
    }
}
