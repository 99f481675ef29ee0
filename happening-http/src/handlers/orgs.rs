use bytes::Bytes;
use happening_core::domain::Role;
use happening_core::ids::{OrgId, UserId};
use warp::http::StatusCode;
use warp::reply::Response;

use super::*;
use crate::models::*;

/// `POST /organizations {name}`: the caller becomes its orgAdmin.
pub async fn create(ctx: Ctx, body: Bytes) -> Result<Response, ApiError> {
    let req: CreateOrg = crate::models::parse(&body)?;
    let org = ctx.engine().create_org(ctx.user(), &req.name).await?;
    Ok(json(StatusCode::CREATED, &OrgDto::new(org, Role::OrgAdmin)))
}

/// `GET /organizations`: the caller's.
pub async fn list(ctx: Ctx) -> Result<Response, ApiError> {
    let list: Vec<OrgDto> = ctx.engine().orgs_of(ctx.user()).await?.into_iter().map(|(o, r)| OrgDto::new(o, r)).collect();
    ok(&list)
}

/// `GET /organizations/user/:userId` (the original API's path): the caller's own organizations.
pub async fn of_user(user: UserId, ctx: Ctx) -> Result<Response, ApiError> {
    if user != ctx.user() {
        // A user of no organization of the caller's does not exist to the caller (404, as in
        // `GET /bookings/user/:id`); a co-member's list is still not the caller's to read.
        let theirs: Vec<_> = ctx.engine().orgs_of(user).await?.into_iter().map(|(o, _)| o.id).collect();
        let shares_an_org = ctx.engine().orgs_of(ctx.user()).await?.iter().any(|(o, _)| theirs.contains(&o.id));
        if !shares_an_org {
            return Err(ApiError::not_found(happening_core::error::Entity::User));
        }
        return Err(ApiError::Forbidden("forbidden: only your own organizations".into()));
    }
    list(ctx).await
}

/// `GET /organizations/:id`
pub async fn get(id: OrgId, ctx: Ctx) -> Result<Response, ApiError> {
    let (org, role) = ctx.engine().org(ctx.user(), id).await?;
    ok(&OrgDto::new(org, role))
}

/// `GET /organizations/:id/members`
pub async fn members(id: OrgId, ctx: Ctx) -> Result<Response, ApiError> {
    let members = ctx.engine().members(ctx.user(), id).await?;
    let mut out = Vec::with_capacity(members.len());
    for m in members {
        let user = ctx.engine().user(m.user_id).await.ok();
        out.push(MemberDto::new(m, user));
    }
    ok(&out)
}

/// `POST /organizations/:id/members {user_id, role}` (orgAdmin)
pub async fn add_member(id: OrgId, ctx: Ctx, body: Bytes) -> Result<Response, ApiError> {
    let req: AddMember = crate::models::parse(&body)?;
    // Authorize before looking the user up, so that outsiders cannot probe user ids.
    ctx.engine().authorize(ctx.user(), id, Role::OrgAdmin).await?;
    let user = ctx.engine().user(req.user_id).await?;
    let m = ctx.engine().add_member(ctx.user(), id, req.user_id, req.role).await?;
    Ok(json(StatusCode::CREATED, &MemberDto::new(m, Some(user))))
}

/// `PUT /organizations/:id/members/:user_id {role}` (orgAdmin)
pub async fn set_role(id: OrgId, user: UserId, ctx: Ctx, body: Bytes) -> Result<Response, ApiError> {
    let req: SetRole = crate::models::parse(&body)?;
    let m = ctx.engine().set_role(ctx.user(), id, user, req.role).await?;
    let u = ctx.engine().user(user).await.ok();
    ok(&MemberDto::new(m, u))
}

/// `DELETE /organizations/:id/members/:user_id` (orgAdmin, or the member leaving)
pub async fn remove_member(id: OrgId, user: UserId, ctx: Ctx) -> Result<Response, ApiError> {
    ctx.engine().remove_member(ctx.user(), id, user).await?;
    no_content()
}

/// `POST /org-invites {organization_id, email, role, ttl_hours?}` (orgAdmin)
pub async fn invite(ctx: Ctx, body: Bytes) -> Result<Response, ApiError> {
    let req: CreateInvite = crate::models::parse(&body)?;
    let inv = ctx.engine().invite(ctx.user(), req.organization_id, &req.email, req.role, req.ttl_hours.unwrap_or(168)).await?;
    Ok(json(StatusCode::CREATED, &InviteDto::from(inv)))
}

/// `GET /org-invites/:token`: to whoever has the token.
pub async fn get_invite(token: String, ctx: Ctx) -> Result<Response, ApiError> {
    ok(&InviteDto::from(ctx.engine().invite_by_token(&token).await?))
}

/// `POST /org-invites/:token/accept`: the token's `email` claim must be the invited one
/// (the stored profile's is not asked: it may predate the claim, or have been changed).
pub async fn accept_invite(token: String, ctx: Ctx) -> Result<Response, ApiError> {
    let m = ctx.engine().accept_invite(ctx.user(), ctx.id.claims.valid_email(), &token).await?;
    let u = ctx.engine().user(ctx.user()).await.ok();
    Ok(json(StatusCode::OK, &MemberDto::new(m, u)))
}
