use std::collections::HashMap;

use bytes::Bytes;
use happening_core::ids::NotificationId;
use warp::reply::Response;

use super::*;
use crate::models::*;

/// `POST /users`: creates or refreshes the caller's user from the token.
///
/// The email is the token's `email` claim, which the identity provider vouches for, never
/// the body's: invites are accepted by email, so a self-set address would let anyone holding
/// an invite token take it. A body `email` (the original API's client sends the profile's) must be
/// the token's, else 403, as for `keycloak_id`: a well-formed claim to someone else's
/// identity (one that is no address at all is a 400); a token without one leaves the user
/// without an email.
pub async fn upsert(ctx: Ctx, body: Bytes) -> Result<Response, ApiError> {
    let req: UpsertUser = parse_or_default(&body)?;
    let claims = &ctx.id.claims;
    if req.keycloak_id.as_deref().is_some_and(|k| k != claims.sub) {
        return Err(ApiError::Forbidden("forbidden: keycloak_id must be the token's subject".into()));
    }
    let email = claims.valid_email();
    if let Some(given) = req.email.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
        if !given.contains('@') || given.len() > 320 {
            return Err(ApiError::bad("email", "invalid email: not an address"));
        }
        if !email.is_some_and(|e| e.trim().eq_ignore_ascii_case(given)) {
            return Err(ApiError::Forbidden("forbidden: email must be the token's email claim (set by the identity provider)".into()));
        }
    }
    let name = req.name.as_deref().or(claims.display_name());
    let user = ctx.engine().upsert_user(&claims.sub, email, name).await?;
    ok(&UserDto::from(user))
}

/// `GET /users/me`
pub async fn me(ctx: Ctx) -> Result<Response, ApiError> {
    ok(&UserDto::from(ctx.engine().user(ctx.user()).await?))
}

/// `GET /notifications?limit=&offset=`: the caller's, newest first.
pub async fn notifications(ctx: Ctx, q: HashMap<String, String>) -> Result<Response, ApiError> {
    let (limit, offset) = paging(&q)?;
    let list: Vec<NotificationDto> = ctx.engine().notifications(ctx.user(), limit, offset).await?.into_iter().map(Into::into).collect();
    ok(&list)
}

/// `POST /notifications/:id/read`
pub async fn mark_read(id: NotificationId, ctx: Ctx) -> Result<Response, ApiError> {
    ctx.engine().mark_read(ctx.user(), id).await?;
    no_content()
}

/// `GET /users?keycloak_id=:sub` (the original API's lookup): the caller's own row only.
pub async fn by_subject(ctx: Ctx, q: HashMap<String, String>) -> Result<Response, ApiError> {
    match q.get("keycloak_id") {
        None => Err(ApiError::bad("keycloak_id", "missing keycloak_id query parameter")),
        Some(sub) if *sub == ctx.id.claims.sub => ok(&UserDto::from(ctx.engine().user(ctx.user()).await?)),
        Some(_) => Err(ApiError::not_found(happening_core::error::Entity::User)),
    }
}
