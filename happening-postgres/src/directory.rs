//! [`Directory`] on PostgreSQL: users, organizations, memberships, invites.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use happening_core::domain::*;
use happening_core::error::{Conflict, Entity};
use happening_core::ids::{OrgId, UserId};
use happening_core::ports::{Directory, StoreError};
use sqlx::{PgConnection, Row};

use crate::error::{db, found};
use crate::rows;
use crate::store::{insert_notification, PgStore};

const USER_COLS: &str = "id, keycloak_id, email, name, created_at";
const MEMBER_COLS: &str = "organization_id, user_id, role, created_at";
const INVITE_COLS: &str = "token, organization_id, email, role, invited_by, status, expires_at, created_at";

/// Locks the organization's memberships (the org row) so that "keep one orgAdmin" holds
/// under concurrent role changes.
async fn lock_org(conn: &mut PgConnection, org: OrgId) -> Result<(), StoreError> {
    found(sqlx::query("SELECT 1 FROM organizations WHERE id = $1 FOR UPDATE").bind(org.0), conn, Entity::Organization).await?;
    Ok(())
}

async fn member_role(conn: &mut PgConnection, org: OrgId, user: UserId) -> Result<Role, StoreError> {
    let query = sqlx::query("SELECT role FROM organization_users WHERE organization_id = $1 AND user_id = $2").bind(org.0).bind(user.0);
    let role: String = found(query, conn, Entity::Membership).await?.try_get("role").map_err(db)?;
    rows::role(&role)
}

async fn admins(conn: &mut PgConnection, org: OrgId) -> Result<i64, StoreError> {
    sqlx::query_scalar("SELECT count(*) FROM organization_users WHERE organization_id = $1 AND role = 'orgAdmin'")
        .bind(org.0)
        .fetch_one(conn)
        .await
        .map_err(db)
}

#[async_trait]
impl Directory for PgStore {
    async fn upsert_user(&self, subject: &str, email: Option<&str>, name: Option<&str>, now: DateTime<Utc>) -> Result<User, StoreError> {
        let row = sqlx::query(&format!(
            "INSERT INTO users (id, keycloak_id, email, name, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (keycloak_id) DO UPDATE SET email = EXCLUDED.email, name = EXCLUDED.name RETURNING {USER_COLS}"
        ))
        .bind(UserId::new().0)
        .bind(subject)
        .bind(email)
        .bind(name)
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        rows::user(&row)
    }

    async fn user(&self, id: UserId) -> Result<User, StoreError> {
        let sql = format!("SELECT {USER_COLS} FROM users WHERE id = $1");
        rows::user(&found(sqlx::query(&sql).bind(id.0), &self.pool, Entity::User).await?)
    }

    async fn users(&self, ids: &[UserId]) -> Result<Vec<User>, StoreError> {
        let ids: Vec<uuid::Uuid> = ids.iter().map(|id| id.0).collect();
        sqlx::query(&format!("SELECT {USER_COLS} FROM users WHERE id = ANY($1)"))
            .bind(ids)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .iter()
            .map(rows::user)
            .collect()
    }

    async fn user_by_subject(&self, subject: &str) -> Result<User, StoreError> {
        let sql = format!("SELECT {USER_COLS} FROM users WHERE keycloak_id = $1");
        rows::user(&found(sqlx::query(&sql).bind(subject), &self.pool, Entity::User).await?)
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(&format!("SELECT {USER_COLS} FROM users WHERE lower(email) = lower($1) ORDER BY created_at LIMIT 1"))
            .bind(email)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(rows::user).transpose()
    }

    async fn create_org(&self, org: &Organization, admin: UserId) -> Result<Organization, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("INSERT INTO organizations (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(org.id.0)
            .bind(&org.name)
            .bind(org.created_at)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query("INSERT INTO organization_users (organization_id, user_id, role, created_at) VALUES ($1, $2, 'orgAdmin', $3)")
            .bind(org.id.0)
            .bind(admin.0)
            .bind(org.created_at)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(org.clone())
    }

    async fn org(&self, id: OrgId) -> Result<Organization, StoreError> {
        let query = sqlx::query("SELECT id, name, created_at FROM organizations WHERE id = $1").bind(id.0);
        rows::org(&found(query, &self.pool, Entity::Organization).await?)
    }

    async fn user_orgs(&self, user: UserId) -> Result<Vec<(Organization, Role)>, StoreError> {
        let rs = sqlx::query(
            "SELECT o.id, o.name, o.created_at, m.role FROM organizations o JOIN organization_users m ON m.organization_id = o.id \
             WHERE m.user_id = $1 ORDER BY o.created_at, o.id",
        )
        .bind(user.0)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rs.iter()
            .map(|r| {
                let role: String = r.try_get("role").map_err(db)?;
                Ok((rows::org(r)?, rows::role(&role)?))
            })
            .collect()
    }

    async fn role(&self, org: OrgId, user: UserId) -> Result<Option<Role>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        match member_role(&mut conn, org, user).await {
            Ok(r) => Ok(Some(r)),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn members(&self, org: OrgId) -> Result<Vec<Membership>, StoreError> {
        self.org(org).await?;
        sqlx::query(&format!("SELECT {MEMBER_COLS} FROM organization_users WHERE organization_id = $1 ORDER BY created_at, user_id"))
            .bind(org.0)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .iter()
            .map(rows::membership)
            .collect()
    }

    async fn add_member(&self, m: &Membership) -> Result<Membership, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        lock_org(&mut tx, m.org_id).await?;
        let n = sqlx::query(
            "INSERT INTO organization_users (organization_id, user_id, role, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(m.org_id.0)
        .bind(m.user_id.0)
        .bind(m.role.as_str())
        .bind(m.created_at)
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::conflict(Conflict::AlreadyMember));
        }
        tx.commit().await.map_err(db)?;
        Ok(m.clone())
    }

    async fn set_role(&self, org: OrgId, user: UserId, role: Role) -> Result<Membership, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        lock_org(&mut tx, org).await?;
        let current = member_role(&mut tx, org, user).await?;
        if current == Role::OrgAdmin && role != Role::OrgAdmin && admins(&mut tx, org).await? == 1 {
            return Err(StoreError::conflict(Conflict::LastOrgAdmin));
        }
        let row = sqlx::query(&format!(
            "UPDATE organization_users SET role = $3 WHERE organization_id = $1 AND user_id = $2 RETURNING {MEMBER_COLS}"
        ))
        .bind(org.0)
        .bind(user.0)
        .bind(role.as_str())
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        rows::membership(&row)
    }

    async fn remove_member(&self, org: OrgId, user: UserId) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        lock_org(&mut tx, org).await?;
        let current = member_role(&mut tx, org, user).await?;
        if current == Role::OrgAdmin && admins(&mut tx, org).await? == 1 {
            return Err(StoreError::conflict(Conflict::LastOrgAdmin));
        }
        sqlx::query("DELETE FROM organization_users WHERE organization_id = $1 AND user_id = $2")
            .bind(org.0)
            .bind(user.0)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn create_invite(&self, invite: &Invite, notify: Option<&Notification>) -> Result<Invite, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        lock_org(&mut tx, invite.org_id).await?;
        sqlx::query(&format!("INSERT INTO organization_invites ({INVITE_COLS}) VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7)"))
            .bind(&invite.token)
            .bind(invite.org_id.0)
            .bind(&invite.email)
            .bind(invite.role.as_str())
            .bind(invite.invited_by.0)
            .bind(invite.expires_at)
            .bind(invite.created_at)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if let Some(n) = notify {
            insert_notification(&mut tx, n).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(invite.clone())
    }

    async fn invite(&self, token: &str) -> Result<Invite, StoreError> {
        let sql = format!("SELECT {INVITE_COLS} FROM organization_invites WHERE token = $1");
        rows::invite(&found(sqlx::query(&sql).bind(token), &self.pool, Entity::Invite).await?)
    }

    async fn accept_invite(&self, token: &str, user: UserId, now: DateTime<Utc>) -> Result<Membership, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let sql = format!("SELECT {INVITE_COLS} FROM organization_invites WHERE token = $1 FOR UPDATE");
        let invite = rows::invite(&found(sqlx::query(&sql).bind(token), &mut *tx, Entity::Invite).await?)?;
        if invite.status != InviteStatus::Pending {
            return Err(StoreError::conflict(Conflict::InviteNotPending));
        }
        if invite.expires_at <= now {
            return Err(StoreError::conflict(Conflict::InviteExpired));
        }
        let n = sqlx::query(
            "INSERT INTO organization_users (organization_id, user_id, role, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(invite.org_id.0)
        .bind(user.0)
        .bind(invite.role.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::conflict(Conflict::AlreadyMember));
        }
        sqlx::query("UPDATE organization_invites SET status = 'accepted' WHERE token = $1")
            .bind(token)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(Membership { org_id: invite.org_id, user_id: user, role: invite.role, created_at: now })
    }
}
