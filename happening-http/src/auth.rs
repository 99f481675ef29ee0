//! Bearer tokens: HS256 with a shared secret, RS256 against a JWKS file (Keycloak's
//! format), `exp` always checked, `iss`/`aud` when configured. Verified tokens are cached
//! until they expire, so the hot path costs one hash-map lookup.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use happening_core::ids::UserId;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::oidc::Oidc;

/// The claims the server reads. Keycloak's `preferred_username` stands in for `name`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The subject: the caller's stable id at the token's issuer (1 to 255 bytes), which
    /// names their user in the directory (created on first sign-in).
    pub sub: String,
    /// Expiry, Unix seconds; a token past it (30 s leeway) is refused, and a cached
    /// identity is dropped at it.
    pub exp: i64,
    /// Issued at, Unix seconds; set on minted tokens, not checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Stored on the user when first seen, if it looks like an email
    /// ([`Claims::valid_email`]); invitations find people by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The person's display name, stored on the user when first seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Keycloak's user name, the display name when the token has no `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    /// The issuer; required to be `--jwt-issuer` (or the OpenID Connect issuer) when one
    /// is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// The audience, a string or an array of them; required to hold `--jwt-audience` when
    /// one is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<serde_json::Value>,
}

impl Claims {
    /// The name shown for the person: `name`, else `preferred_username`.
    pub fn display_name(&self) -> Option<&str> {
        self.name.as_deref().or(self.preferred_username.as_deref())
    }

    /// The email, if it looks like one (a bad claim must not block sign-in).
    pub fn valid_email(&self) -> Option<&str> {
        self.email.as_deref().filter(|e| e.contains('@') && e.len() <= 320)
    }
}

/// How tokens are verified.
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    /// HS256 shared secret.
    pub secret: Option<String>,
    /// RS256 keys (a JWKS document, as Keycloak serves at `.../protocol/openid-connect/certs`).
    pub jwks: Option<JwkSet>,
    /// The `iss` that HS256 and JWKS tokens must carry (`--jwt-issuer`); `None`: not checked.
    pub issuer: Option<String>,
    /// The `aud` every token must carry (`--jwt-audience`); `None`: not checked.
    pub audience: Option<String>,
    /// An OpenID Connect provider: its RS256 tokens are accepted when their `iss` is its
    /// issuer (and `aud` is `audience`, when set).
    pub oidc: Option<Arc<Oidc>>,
}

impl AuthConfig {
    /// Reads a JWKS file (`--jwks-file`) for [`AuthConfig::jwks`]; `Err` says why it is
    /// unusable: unreadable, not a JWK set, or without keys.
    pub fn load_jwks(path: &Path) -> Result<JwkSet, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read JWKS file {}: {e}", path.display()))?;
        let set: JwkSet = serde_json::from_str(&text).map_err(|e| format!("JWKS file {} is not a JWK set: {e}", path.display()))?;
        if set.keys.is_empty() {
            return Err(format!("JWKS file {} has no keys", path.display()));
        }
        Ok(set)
    }

    /// Whether any way of verifying tokens is set; without one the server makes up a secret
    /// and prints a development token on start.
    pub fn is_configured(&self) -> bool {
        self.secret.is_some() || self.jwks.is_some() || self.oidc.is_some()
    }
}

/// A fresh random secret (256 bits from the OS RNG via v4 UUIDs), base64url.
pub fn generate_secret() -> String {
    let mut bytes = Vec::with_capacity(32);
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The current time, Unix seconds, as token claims count it (0 if the clock reads before 1970).
pub fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// What to put in a minted token.
#[derive(Debug, Clone, Default)]
pub struct MintRequest {
    /// The subject, naming the user the token signs in (1 to 255 bytes to be accepted).
    pub sub: String,
    /// The `email` claim, given to the user when first seen.
    pub email: Option<String>,
    /// The `name` claim, the user's display name when first seen.
    pub name: Option<String>,
    /// How long the token is valid from now, seconds (negative mints an expired one).
    pub ttl_secs: i64,
    /// The `iss` claim; needed when the server checks one (`--jwt-issuer`).
    pub issuer: Option<String>,
    /// The `aud` claim; needed when the server checks one (`--jwt-audience`).
    pub audience: Option<String>,
}

/// Mints an HS256 token (development, tests, the load generator).
pub fn mint(secret: &str, req: &MintRequest) -> String {
    let now = now_secs();
    let claims = Claims {
        sub: req.sub.clone(),
        exp: now + req.ttl_secs,
        iat: Some(now),
        email: req.email.clone(),
        name: req.name.clone(),
        preferred_username: None,
        iss: req.issuer.clone(),
        aud: req.audience.clone().map(serde_json::Value::String),
    };
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret.as_bytes()))
        .expect("HS256 encoding cannot fail")
}

/// The caller, once the token is verified and the user resolved.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The caller's user in the directory, whose roles authorize the request.
    pub user_id: UserId,
    /// The verified token's claims, shared by every request that presents the same token.
    pub claims: std::sync::Arc<Claims>,
}

/// Verifies tokens and caches what it verified.
pub struct Verifier {
    hs: Option<DecodingKey>,
    rs: Vec<(Option<String>, DecodingKey)>,
    validation_hs: Validation,
    validation_rs: Validation,
    /// The provider, and how its tokens are checked (its issuer in place of `issuer`).
    oidc: Option<(Arc<Oidc>, Validation)>,
    cache: RwLock<HashMap<String, Identity>>,
}

/// Why a token was not verified.
enum Unverified {
    /// No key of this `kid`: the provider may have rotated its keys.
    UnknownKey,
    Refused(ApiError),
}

const CACHE_MAX: usize = 50_000;

impl Verifier {
    /// A verifier for what `cfg` accepts; `Err` when a JWKS key cannot be used. Every token
    /// must have `exp` and `sub`, and `nbf` is honoured, with 30 s leeway for clock skew.
    pub fn new(cfg: &AuthConfig) -> Result<Self, String> {
        let hs = cfg.secret.as_ref().map(|s| DecodingKey::from_secret(s.as_bytes()));
        let mut rs = Vec::new();
        for jwk in cfg.jwks.iter().flat_map(|s| s.keys.iter()) {
            let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("unusable key in JWKS: {e}"))?;
            rs.push((jwk.common.key_id.clone(), key));
        }
        let validation = |alg, issuer: Option<&String>| {
            let mut v = Validation::new(alg);
            v.leeway = 30;
            // A token whose `nbf` is still ahead (past the leeway) is not valid yet.
            v.validate_nbf = true;
            let mut required = vec!["exp", "sub"];
            if issuer.is_some() {
                required.push("iss");
            }
            if cfg.audience.is_some() {
                required.push("aud");
            }
            v.set_required_spec_claims(&required);
            if let Some(iss) = issuer {
                v.set_issuer(&[iss]);
            }
            match &cfg.audience {
                Some(aud) => v.set_audience(&[aud]),
                None => v.validate_aud = false,
            }
            v
        };
        Ok(Self {
            hs,
            rs,
            validation_hs: validation(Algorithm::HS256, cfg.issuer.as_ref()),
            validation_rs: validation(Algorithm::RS256, cfg.issuer.as_ref()),
            oidc: cfg.oidc.as_ref().map(|o| {
                let issuer = o.issuer().to_string();
                (o.clone(), validation(Algorithm::RS256, Some(&issuer)))
            }),
            cache: RwLock::new(HashMap::new()),
        })
    }

    /// A cached identity for this exact token, if it has not expired.
    pub fn cached(&self, token: &str) -> Option<Identity> {
        let cache = self.cache.read().expect("token cache poisoned");
        let id = cache.get(token)?;
        (id.claims.exp > now_secs()).then(|| id.clone())
    }

    /// Caches the identity of a verified token until its `exp`, for [`Verifier::cached`]. At
    /// 50,000 tokens the expired ones are dropped, and all of them if that is not enough.
    pub(crate) fn remember(&self, token: &str, id: Identity) {
        let mut cache = self.cache.write().expect("token cache poisoned");
        if cache.len() >= CACHE_MAX {
            let now = now_secs();
            cache.retain(|_, v| v.claims.exp > now);
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
        }
        cache.insert(token.to_string(), id);
    }

    /// The OpenID Connect provider, if one is configured.
    pub fn oidc(&self) -> Option<&Arc<Oidc>> {
        self.oidc.as_ref().map(|(o, _)| o)
    }

    /// Verifies signature, `exp`, and `iss`/`aud` when configured.
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        self.check(token).map_err(|e| match e {
            Unverified::UnknownKey => unauthorized("no key for this token"),
            Unverified::Refused(e) => e,
        })
    }

    /// As [`Verifier::verify`], and when the token names a key nobody knows while an OpenID
    /// Connect provider is configured, reads the provider's keys again (rate-limited, see
    /// [`Oidc::refresh`]) and tries once more.
    pub async fn verify_fresh(&self, token: &str) -> Result<Claims, ApiError> {
        let asked = Instant::now();
        match self.check(token) {
            Ok(claims) => Ok(claims),
            Err(Unverified::Refused(e)) => Err(e),
            Err(Unverified::UnknownKey) => match &self.oidc {
                Some((oidc, _)) if oidc.refresh(asked).await => self.verify(token),
                _ => Err(unauthorized("no key for this token")),
            },
        }
    }

    fn check(&self, token: &str) -> Result<Claims, Unverified> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| Unverified::Refused(ApiError::Unauthorized("malformed bearer token".into())))?;
        let refused = |m: &str| Unverified::Refused(unauthorized(m));
        let oidc_key;
        let (key, validation) = match header.alg {
            Algorithm::HS256 => (self.hs.as_ref().ok_or_else(|| refused("HS256 tokens are not accepted"))?, &self.validation_hs),
            Algorithm::RS256 => {
                let key = match &header.kid {
                    Some(kid) => self.rs.iter().find(|(k, _)| k.as_deref() == Some(kid.as_str())),
                    None if self.rs.len() == 1 && self.oidc.is_none() => self.rs.first(),
                    None => None,
                };
                match (key, &self.oidc) {
                    (Some((_, key)), _) => (key, &self.validation_rs),
                    (None, Some((oidc, validation))) => {
                        oidc_key = oidc.key(header.kid.as_deref()).ok_or(Unverified::UnknownKey)?;
                        (&oidc_key, validation)
                    }
                    (None, None) => return Err(Unverified::UnknownKey),
                }
            }
            _ => return Err(refused("unsupported token algorithm")),
        };
        let data = jsonwebtoken::decode::<Claims>(token, key, validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind::*;
            unauthorized(match e.kind() {
                ExpiredSignature => "token expired",
                ImmatureSignature => "token not valid yet",
                InvalidIssuer => "token issuer not accepted",
                InvalidAudience => "token audience not accepted",
                InvalidSignature => "token signature does not verify",
                MissingRequiredClaim(_) => "token lacks a required claim",
                _ => "invalid bearer token",
            })
        });
        let data = data.map_err(Unverified::Refused)?;
        if data.claims.sub.is_empty() || data.claims.sub.len() > 255 {
            return Err(refused("token subject is empty or too long"));
        }
        Ok(data.claims)
    }
}

fn unauthorized(msg: &str) -> ApiError {
    ApiError::Unauthorized(msg.to_string())
}

/// The token of an `Authorization: Bearer ...` header.
pub fn bearer(header: Option<&str>) -> Result<&str, ApiError> {
    let h = header.ok_or_else(|| unauthorized("missing Authorization: Bearer token"))?;
    let (scheme, token) = h.split_once(' ').ok_or_else(|| unauthorized("malformed Authorization header"))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(unauthorized("malformed Authorization header"));
    }
    Ok(token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(secret: &str) -> AuthConfig {
        AuthConfig { secret: Some(secret.into()), ..Default::default() }
    }

    #[test]
    fn minted_tokens_verify_and_others_do_not() {
        let v = Verifier::new(&cfg("s3cret")).unwrap();
        let t = mint("s3cret", &MintRequest { sub: "alice".into(), ttl_secs: 60, ..Default::default() });
        assert_eq!(v.verify(&t).unwrap().sub, "alice");
        let other = mint("other", &MintRequest { sub: "alice".into(), ttl_secs: 60, ..Default::default() });
        assert!(matches!(v.verify(&other), Err(ApiError::Unauthorized(m)) if m.contains("signature")));
        let expired = mint("s3cret", &MintRequest { sub: "alice".into(), ttl_secs: -120, ..Default::default() });
        assert!(matches!(v.verify(&expired), Err(ApiError::Unauthorized(m)) if m.contains("expired")));
        assert!(v.verify("garbage").is_err());
    }

    #[test]
    fn issuer_and_audience_are_checked_when_configured() {
        let c = AuthConfig { issuer: Some("https://kc/realms/h".into()), audience: Some("happening".into()), ..cfg("k") };
        let v = Verifier::new(&c).unwrap();
        let good = MintRequest {
            sub: "a".into(),
            ttl_secs: 60,
            issuer: Some("https://kc/realms/h".into()),
            audience: Some("happening".into()),
            ..Default::default()
        };
        assert!(v.verify(&mint("k", &good)).is_ok());
        let bad_iss = MintRequest { issuer: Some("https://evil".into()), ..good.clone() };
        assert!(v.verify(&mint("k", &bad_iss)).is_err());
        let bad_aud = MintRequest { audience: Some("other".into()), ..good.clone() };
        assert!(v.verify(&mint("k", &bad_aud)).is_err());
        let no_iss = MintRequest { issuer: None, ..good };
        assert!(v.verify(&mint("k", &no_iss)).is_err());
    }

    #[test]
    fn bearer_header_parsing() {
        assert_eq!(bearer(Some("Bearer abc")).unwrap(), "abc");
        assert_eq!(bearer(Some("bearer abc")).unwrap(), "abc");
        assert!(bearer(None).is_err());
        assert!(bearer(Some("Basic abc")).is_err());
        assert!(bearer(Some("Bearer ")).is_err());
    }
}
