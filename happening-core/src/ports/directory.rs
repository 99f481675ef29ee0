use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::*;
use crate::ids::{OrgId, UserId};
use crate::ports::StoreError;

/// Users, organizations, memberships and invites: the tenancy the engine checks roles
/// against. Part of the durable store.
///
/// Contract: every method is atomic; an organization always keeps at least one orgAdmin
/// (`Conflict(LastOrgAdmin)`).
#[async_trait]
pub trait Directory: Send + Sync + 'static {
    /// Creates the user of `subject` or updates its email and name.
    async fn upsert_user(&self, subject: &str, email: Option<&str>, name: Option<&str>, now: DateTime<Utc>) -> Result<User, StoreError>;

    /// The user with this id; `NotFound(User)` if none.
    async fn user(&self, id: UserId) -> Result<User, StoreError>;

    /// The users of `ids` that exist, in no particular order (one read for a page of rows
    /// that name users, such as an event's attendees).
    async fn users(&self, ids: &[UserId]) -> Result<Vec<User>, StoreError>;

    /// The user of an identity-provider subject (exact match); `NotFound(User)` if none.
    async fn user_by_subject(&self, subject: &str) -> Result<User, StoreError>;

    /// The user whose email is `email`, ignoring case, if any: who an invite to that
    /// address notifies. Not an error when there is none.
    async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError>;

    /// Creates the organization with `admin` as its orgAdmin, in one step.
    async fn create_org(&self, org: &Organization, admin: UserId) -> Result<Organization, StoreError>;

    /// The organization; `NotFound(Organization)` if none.
    async fn org(&self, id: OrgId) -> Result<Organization, StoreError>;

    /// The organizations `user` belongs to, with the role there.
    async fn user_orgs(&self, user: UserId) -> Result<Vec<(Organization, Role)>, StoreError>;

    /// `user`'s role in `org`; `None` if they are not a member (or either does not exist).
    async fn role(&self, org: OrgId, user: UserId) -> Result<Option<Role>, StoreError>;

    /// Every membership of `org`, in no particular order; `NotFound(Organization)` if none.
    async fn members(&self, org: OrgId) -> Result<Vec<Membership>, StoreError>;

    /// Writes the membership as given. `NotFound(Organization)` or `NotFound(User)` if
    /// either does not exist; `Conflict(AlreadyMember)` if the user is a member.
    async fn add_member(&self, member: &Membership) -> Result<Membership, StoreError>;

    /// Changes a member's role and answers the membership. `NotFound(Membership)` if the
    /// user is not a member; `Conflict(LastOrgAdmin)` to demote the only orgAdmin.
    async fn set_role(&self, org: OrgId, user: UserId, role: Role) -> Result<Membership, StoreError>;

    /// Ends a membership. `NotFound(Membership)` if the user is not a member;
    /// `Conflict(LastOrgAdmin)` to remove the only orgAdmin.
    async fn remove_member(&self, org: OrgId, user: UserId) -> Result<(), StoreError>;

    /// Stores the invite, and `notify` (if any) in the outbox, in one step.
    async fn create_invite(&self, invite: &Invite, notify: Option<&Notification>) -> Result<Invite, StoreError>;

    /// The invite of `token`, any status; `NotFound(Invite)` if none.
    async fn invite(&self, token: &str) -> Result<Invite, StoreError>;

    /// Marks a pending, unexpired invite accepted and makes `user` a member with its role,
    /// in one step.
    async fn accept_invite(&self, token: &str, user: UserId, now: DateTime<Utc>) -> Result<Membership, StoreError>;
}
