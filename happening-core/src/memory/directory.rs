use std::collections::{BTreeMap, HashMap};
use std::sync::MutexGuard;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::*;
use crate::error::{Conflict, Entity};
use crate::ids::{OrgId, UserId};
use crate::ports::{Directory, StoreError};

use super::store::MemoryStore;

#[derive(Default)]
pub(super) struct DirectoryData {
    users: HashMap<UserId, User>,
    by_subject: HashMap<String, UserId>,
    by_email: HashMap<String, UserId>,
    orgs: HashMap<OrgId, Organization>,
    members: BTreeMap<(OrgId, UserId), Membership>,
    invites: HashMap<String, Invite>,
}

impl DirectoryData {
    fn admins(&self, org: OrgId) -> usize {
        self.members
            .range((org, UserId(uuid::Uuid::nil()))..)
            .take_while(|((o, _), _)| *o == org)
            .filter(|(_, m)| m.role == Role::OrgAdmin)
            .count()
    }

    fn member_mut(&mut self, org: OrgId, user: UserId) -> Result<&mut Membership, StoreError> {
        self.members.get_mut(&(org, user)).ok_or(StoreError::NotFound(Entity::Membership))
    }
}

impl MemoryStore {
    fn dir(&self) -> MutexGuard<'_, DirectoryData> {
        self.inner.directory.lock().expect("directory lock poisoned")
    }
}

#[async_trait]
impl Directory for MemoryStore {
    async fn upsert_user(&self, subject: &str, email: Option<&str>, name: Option<&str>, now: DateTime<Utc>) -> Result<User, StoreError> {
        let mut d = self.dir();
        let id = d.by_subject.get(subject).copied().unwrap_or_default();
        let old_email = d.users.get(&id).and_then(|u| u.email.clone());
        let user = d.users.entry(id).or_insert_with(|| User { id, subject: subject.to_string(), email: None, name: None, created_at: now });
        user.email = email.map(str::to_string);
        user.name = name.map(str::to_string);
        let user = user.clone();
        d.by_subject.insert(subject.to_string(), id);
        if let Some(old) = old_email {
            d.by_email.remove(&old.to_lowercase());
        }
        if let Some(email) = &user.email {
            d.by_email.insert(email.to_lowercase(), id);
        }
        Ok(user)
    }

    async fn user(&self, id: UserId) -> Result<User, StoreError> {
        self.dir().users.get(&id).cloned().ok_or(StoreError::NotFound(Entity::User))
    }

    async fn users(&self, ids: &[UserId]) -> Result<Vec<User>, StoreError> {
        let d = self.dir();
        Ok(ids.iter().filter_map(|id| d.users.get(id)).cloned().collect())
    }

    async fn user_by_subject(&self, subject: &str) -> Result<User, StoreError> {
        let d = self.dir();
        d.by_subject.get(subject).and_then(|id| d.users.get(id)).cloned().ok_or(StoreError::NotFound(Entity::User))
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        let d = self.dir();
        Ok(d.by_email.get(&email.to_lowercase()).and_then(|id| d.users.get(id)).cloned())
    }

    async fn create_org(&self, org: &Organization, admin: UserId) -> Result<Organization, StoreError> {
        let mut d = self.dir();
        if !d.users.contains_key(&admin) {
            return Err(StoreError::NotFound(Entity::User));
        }
        d.orgs.insert(org.id, org.clone());
        d.members.insert((org.id, admin), Membership { org_id: org.id, user_id: admin, role: Role::OrgAdmin, created_at: org.created_at });
        Ok(org.clone())
    }

    async fn org(&self, id: OrgId) -> Result<Organization, StoreError> {
        self.dir().orgs.get(&id).cloned().ok_or(StoreError::NotFound(Entity::Organization))
    }

    async fn user_orgs(&self, user: UserId) -> Result<Vec<(Organization, Role)>, StoreError> {
        let d = self.dir();
        let mut out: Vec<(Organization, Role)> =
            d.members.values().filter(|m| m.user_id == user).filter_map(|m| d.orgs.get(&m.org_id).map(|o| (o.clone(), m.role))).collect();
        out.sort_by(|a, b| a.0.created_at.cmp(&b.0.created_at).then(a.0.id.cmp(&b.0.id)));
        Ok(out)
    }

    async fn role(&self, org: OrgId, user: UserId) -> Result<Option<Role>, StoreError> {
        Ok(self.dir().members.get(&(org, user)).map(|m| m.role))
    }

    async fn members(&self, org: OrgId) -> Result<Vec<Membership>, StoreError> {
        let d = self.dir();
        if !d.orgs.contains_key(&org) {
            return Err(StoreError::NotFound(Entity::Organization));
        }
        Ok(d.members.values().filter(|m| m.org_id == org).cloned().collect())
    }

    async fn add_member(&self, member: &Membership) -> Result<Membership, StoreError> {
        let mut d = self.dir();
        if !d.orgs.contains_key(&member.org_id) {
            return Err(StoreError::NotFound(Entity::Organization));
        }
        if !d.users.contains_key(&member.user_id) {
            return Err(StoreError::NotFound(Entity::User));
        }
        if d.members.contains_key(&(member.org_id, member.user_id)) {
            return Err(StoreError::conflict(Conflict::AlreadyMember));
        }
        d.members.insert((member.org_id, member.user_id), member.clone());
        Ok(member.clone())
    }

    async fn set_role(&self, org: OrgId, user: UserId, role: Role) -> Result<Membership, StoreError> {
        let mut d = self.dir();
        let current = d.member_mut(org, user)?.role;
        if current == Role::OrgAdmin && role != Role::OrgAdmin && d.admins(org) == 1 {
            return Err(StoreError::conflict(Conflict::LastOrgAdmin));
        }
        let m = d.member_mut(org, user)?;
        m.role = role;
        Ok(m.clone())
    }

    async fn remove_member(&self, org: OrgId, user: UserId) -> Result<(), StoreError> {
        let mut d = self.dir();
        let current = d.member_mut(org, user)?.role;
        if current == Role::OrgAdmin && d.admins(org) == 1 {
            return Err(StoreError::conflict(Conflict::LastOrgAdmin));
        }
        d.members.remove(&(org, user));
        Ok(())
    }

    async fn create_invite(&self, invite: &Invite, notify: Option<&Notification>) -> Result<Invite, StoreError> {
        let mut d = self.dir();
        if !d.orgs.contains_key(&invite.org_id) {
            return Err(StoreError::NotFound(Entity::Organization));
        }
        d.invites.insert(invite.token.clone(), invite.clone());
        if let Some(n) = notify {
            self.inner.outbox.lock().expect("outbox lock poisoned").push(n.clone());
        }
        Ok(invite.clone())
    }

    async fn invite(&self, token: &str) -> Result<Invite, StoreError> {
        self.dir().invites.get(token).cloned().ok_or(StoreError::NotFound(Entity::Invite))
    }

    async fn accept_invite(&self, token: &str, user: UserId, now: DateTime<Utc>) -> Result<Membership, StoreError> {
        let mut d = self.dir();
        let invite = d.invites.get(token).cloned().ok_or(StoreError::NotFound(Entity::Invite))?;
        if invite.status != InviteStatus::Pending {
            return Err(StoreError::conflict(Conflict::InviteNotPending));
        }
        if invite.expires_at <= now {
            return Err(StoreError::conflict(Conflict::InviteExpired));
        }
        if d.members.contains_key(&(invite.org_id, user)) {
            return Err(StoreError::conflict(Conflict::AlreadyMember));
        }
        let m = Membership { org_id: invite.org_id, user_id: user, role: invite.role, created_at: now };
        d.members.insert((invite.org_id, user), m.clone());
        d.invites.get_mut(token).expect("checked above").status = InviteStatus::Accepted;
        Ok(m)
    }
}
