use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{OrgId, UserId};

/// A person, mirrored from the identity provider (`subject` is the token's `sub`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The engine's id of the person: what bookings, holds, memberships and
    /// notifications refer to.
    pub id: UserId,
    /// Who the identity provider says this is (the token's `sub`, at most 255 bytes);
    /// unique, and how a request finds its user.
    pub subject: String,
    /// The address the identity provider last gave (at most 320 bytes); an invite to it
    /// notifies this user.
    pub email: Option<String>,
    /// A display name, at most `Limits::name_bytes_max` bytes.
    pub name: Option<String>,
    /// When the user was first seen, on the engine's clock.
    pub created_at: DateTime<Utc>,
}

/// A tenant: it owns events, and its members' roles say who manages them and who may book.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organization {
    /// Identifies the organization in events, memberships and invites.
    pub id: OrgId,
    /// Shown to people; trimmed, 1 to `Limits::name_bytes_max` bytes.
    pub name: String,
    /// When it was created, on the engine's clock.
    pub created_at: DateTime<Utc>,
}

/// A member's role in one organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Role {
    /// Books and cancels their own bookings.
    #[serde(rename = "user")]
    User,
    /// Also manages the organization's events and books for others.
    #[serde(rename = "organizer")]
    Organizer,
    /// Also manages the organization, its members and invites.
    #[serde(rename = "orgAdmin")]
    OrgAdmin,
}

names!(Role {
    User => "user",
    Organizer => "organizer",
    OrgAdmin => "orgAdmin",
});

impl Role {
    /// Whether the role may create, change and cancel the organization's events, see every
    /// booking of them and book for others (organizer and above).
    pub fn manages_events(self) -> bool {
        self >= Role::Organizer
    }

    /// Whether the role may manage the organization itself: its members, their roles, and
    /// invites (orgAdmin only).
    pub fn manages_org(self) -> bool {
        self == Role::OrgAdmin
    }
}

/// A user's place in one organization: one role per (organization, user).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// The organization.
    pub org_id: OrgId,
    /// The member.
    pub user_id: UserId,
    /// What the member may do there.
    pub role: Role,
    /// When the user joined, on the engine's clock.
    pub created_at: DateTime<Utc>,
}

/// Where an invite stands. Only a pending one can be accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InviteStatus {
    /// Waiting for the invitee, until `expires_at`.
    Pending,
    /// Redeemed: the invitee is a member with the invite's role. Final.
    Accepted,
    /// Withdrawn: it can no longer be accepted. Final. The stores keep the status; the
    /// engine has no call that sets it.
    Revoked,
}

names!(InviteStatus {
    Pending => "pending",
    Accepted => "accepted",
    Revoked => "revoked",
});

/// An invitation to join an organization with a role, redeemed by its token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invite {
    /// The secret that redeems the invite (64 hex characters from two v4 UUIDs): whoever
    /// holds it may read the invite, and the invited address may accept it.
    pub token: String,
    /// The organization to join.
    pub org_id: OrgId,
    /// The invited address; only a caller whose verified email matches it (ignoring ASCII
    /// case) may accept.
    pub email: String,
    /// The role the invitee gets on accepting.
    pub role: Role,
    /// The orgAdmin who sent it.
    pub invited_by: UserId,
    /// Pending, accepted or revoked.
    pub status: InviteStatus,
    /// When it can no longer be accepted: 1 to 720 hours after it was made.
    pub expires_at: DateTime<Utc>,
    /// When it was made, on the engine's clock.
    pub created_at: DateTime<Utc>,
}
