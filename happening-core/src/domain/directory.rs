use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{OrgId, UserId};

/// A person, mirrored from the identity provider (`subject` is the token's `sub`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub subject: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organization {
    pub id: OrgId,
    pub name: String,
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

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Organizer => "organizer",
            Role::OrgAdmin => "orgAdmin",
        }
    }

    pub fn manages_events(self) -> bool {
        self >= Role::Organizer
    }

    pub fn manages_org(self) -> bool {
        self == Role::OrgAdmin
    }
}

impl std::str::FromStr for Role {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "user" => Ok(Role::User),
            "organizer" => Ok(Role::Organizer),
            "orgAdmin" => Ok(Role::OrgAdmin),
            _ => Err(()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub org_id: OrgId,
    pub user_id: UserId,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InviteStatus {
    Pending,
    Accepted,
    Revoked,
}

/// An invitation to join an organization with a role, redeemed by its token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invite {
    pub token: String,
    pub org_id: OrgId,
    pub email: String,
    pub role: Role,
    pub invited_by: UserId,
    pub status: InviteStatus,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}
