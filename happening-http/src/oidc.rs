//! Sign-in through an OpenID Connect provider (Keycloak, or any other): the server reads the
//! issuer's discovery document and its signing keys (JWKS), accepts the RS256 tokens whose
//! `iss` is the issuer, and tells the web console where to send people to sign in
//! (`GET /app/config.json`).
//!
//! Keys rotate: a token signed with a key id the server does not know makes it read the JWKS
//! again, at most once per [`JWKS_REFRESH_MIN_MS`] (so that tokens with made-up key ids
//! cannot make it hammer the provider), one read at a time, each bounded in time and size.

use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::DecodingKey;
use serde::{Deserialize, Serialize};

/// Least time between two reads of the JWKS prompted by unknown key ids.
pub const JWKS_REFRESH_MIN_MS: u64 = 10_000;
/// How long one read of the discovery document or the JWKS may take.
const FETCH_TIMEOUT_MS: u64 = 5_000;
/// Largest discovery document or JWKS read.
const DOCUMENT_BYTES_MAX: usize = 256 * 1024;
/// Signing keys kept at most (providers publish a handful).
const KEYS_MAX: usize = 64;

/// The parts of the issuer's `/.well-known/openid-configuration` the server and the console
/// use.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Discovery {
    /// The issuer as its tokens name it in `iss`; must be the configured issuer exactly.
    pub issuer: String,
    /// Where the console sends people to sign in (the authorization-code flow with PKCE).
    pub authorization_endpoint: String,
    /// Where the console trades the authorization code for tokens.
    pub token_endpoint: String,
    /// Where the server reads the signing keys, on start and when a token names an
    /// unknown key.
    pub jwks_uri: String,
    /// Where the console signs people out at the provider, if it has such an endpoint.
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
}

/// What the console needs to run the authorization-code flow (all public).
#[derive(Debug, Clone, Serialize)]
pub struct PublicConfig {
    /// The provider's issuer.
    pub issuer: String,
    /// The console's (public) client id at the provider (`--oidc-client-id`).
    pub client_id: String,
    /// Where to send people to sign in.
    pub authorization_endpoint: String,
    /// Where to trade the authorization code for tokens.
    pub token_endpoint: String,
    /// Where to sign people out, if the provider has it.
    pub end_session_endpoint: Option<String>,
    /// The scopes to ask for: `openid profile email`.
    pub scope: &'static str,
}

/// The scopes the console asks for: the email names the person to invites, the profile
/// their name.
const SCOPE: &str = "openid profile email";

/// The issuer, its endpoints, and its current signing keys.
pub struct Oidc {
    /// The web console's client id at the provider (`--oidc-client-id`).
    pub client_id: String,
    /// The provider's endpoints, as read on start.
    pub discovery: Discovery,
    keys: RwLock<Vec<(Option<String>, DecodingKey)>>,
    /// When the JWKS was last read (a refresh waits [`JWKS_REFRESH_MIN_MS`] after it); held
    /// while a read runs, so that reads never overlap.
    fetched: tokio::sync::Mutex<Instant>,
    /// Key reads that failed since the last good one (for the log).
    failures: Mutex<u32>,
    /// Least time between two reads of the keys ([`JWKS_REFRESH_MIN_MS`]).
    refresh_min: Duration,
    http: reqwest::Client,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc").field("client_id", &self.client_id).field("discovery", &self.discovery).finish_non_exhaustive()
    }
}

impl Oidc {
    /// Reads the issuer's discovery document and its JWKS. The document's `issuer` must be
    /// `issuer` exactly (OpenID Connect Discovery 1.0, 4.3).
    pub async fn discover(issuer: &str, client_id: &str) -> Result<Self, String> {
        if client_id.is_empty() {
            return Err("an OpenID Connect issuer needs a client id (--oidc-client-id)".into());
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(FETCH_TIMEOUT_MS))
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
        let body = fetch(&http, &url).await.map_err(|e| format!("cannot read the OpenID configuration at {url}: {e}"))?;
        let discovery: Discovery =
            serde_json::from_slice(&body).map_err(|e| format!("the OpenID configuration at {url} is not one: {e}"))?;
        if discovery.issuer != issuer {
            return Err(format!("the OpenID configuration at {url} names the issuer {:?}, not {issuer:?}", discovery.issuer));
        }
        let keys = read_keys(&http, &discovery.jwks_uri).await?;
        if keys.is_empty() {
            return Err(format!("the JWKS at {} has no RS256 signing key", discovery.jwks_uri));
        }
        Ok(Self {
            client_id: client_id.to_string(),
            discovery,
            keys: RwLock::new(keys),
            fetched: tokio::sync::Mutex::new(Instant::now()),
            failures: Mutex::new(0),
            refresh_min: Duration::from_millis(JWKS_REFRESH_MIN_MS),
            http,
        })
    }

    /// Another least time between two reads of the keys (tests of key rotation).
    pub fn with_refresh_min_ms(mut self, ms: u64) -> Self {
        self.refresh_min = Duration::from_millis(ms);
        self
    }

    /// The issuer its tokens must name in `iss`.
    pub fn issuer(&self) -> &str {
        &self.discovery.issuer
    }

    /// What `GET /app/config.json` gives the console to sign people in.
    pub fn public_config(&self) -> PublicConfig {
        let d = &self.discovery;
        PublicConfig {
            issuer: d.issuer.clone(),
            client_id: self.client_id.clone(),
            authorization_endpoint: d.authorization_endpoint.clone(),
            token_endpoint: d.token_endpoint.clone(),
            end_session_endpoint: d.end_session_endpoint.clone(),
            scope: SCOPE,
        }
    }

    /// The key of `kid` (or the only key, for a token without `kid`).
    pub fn key(&self, kid: Option<&str>) -> Option<DecodingKey> {
        let keys = self.keys.read().expect("OIDC keys lock poisoned");
        match kid {
            Some(kid) => keys.iter().find(|(k, _)| k.as_deref() == Some(kid)).map(|(_, key)| key.clone()),
            None if keys.len() == 1 => keys.first().map(|(_, key)| key.clone()),
            None => None,
        }
    }

    /// Reads the JWKS again unless it was read less than [`JWKS_REFRESH_MIN_MS`] ago (or the
    /// time set with [`Oidc::with_refresh_min_ms`]);
    /// `true` if the keys may have changed since `asked` (read by this call or by one that
    /// ran while this one waited). A failed read keeps the keys there were.
    pub async fn refresh(&self, asked: Instant) -> bool {
        let mut fetched = self.fetched.lock().await;
        if *fetched > asked {
            return true;
        }
        if fetched.elapsed() < self.refresh_min {
            return false;
        }
        *fetched = Instant::now();
        match read_keys(&self.http, &self.discovery.jwks_uri).await {
            Ok(keys) if !keys.is_empty() => {
                tracing::info!(keys = keys.len(), "read the identity provider's signing keys again");
                *self.keys.write().expect("OIDC keys lock poisoned") = keys;
                *self.failures.lock().expect("OIDC failures lock poisoned") = 0;
                true
            }
            Ok(_) => {
                tracing::warn!(jwks_uri = %self.discovery.jwks_uri, "the identity provider's JWKS has no RS256 signing key; keeping the keys read before");
                false
            }
            Err(e) => {
                let mut failures = self.failures.lock().expect("OIDC failures lock poisoned");
                *failures += 1;
                tracing::warn!(error = %e, failures = *failures, "cannot read the identity provider's signing keys; keeping the keys read before");
                false
            }
        }
    }
}

/// GETs `url`, at most [`DOCUMENT_BYTES_MAX`] bytes of a 200 answer.
async fn fetch(http: &reqwest::Client, url: &str) -> Result<Vec<u8>, String> {
    let mut res = http.get(url).header("accept", "application/json").send().await.map_err(|e| e.to_string())?;
    if !res.status().is_success() {
        return Err(format!("HTTP {}", res.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > DOCUMENT_BYTES_MAX {
            return Err(format!("larger than {DOCUMENT_BYTES_MAX} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The RS256 signing keys of the JWKS at `url` (keys of other kinds or uses skipped).
async fn read_keys(http: &reqwest::Client, url: &str) -> Result<Vec<(Option<String>, DecodingKey)>, String> {
    let body = fetch(http, url).await.map_err(|e| format!("cannot read the JWKS at {url}: {e}"))?;
    signing_keys(&body).map_err(|e| format!("the JWKS at {url} is not one: {e}"))
}

/// The RS256 signing keys of a JWKS document, at most `KEYS_MAX`. A key this server
/// cannot use (another type, an encryption key, an unknown field value) is skipped, not an
/// error: providers publish those beside their signing keys.
pub fn signing_keys(body: &[u8]) -> Result<Vec<(Option<String>, DecodingKey)>, String> {
    #[derive(Deserialize)]
    struct Set {
        keys: Vec<serde_json::Value>,
    }
    let set: Set = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for value in set.keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(value) else { continue };
        let signs = matches!(jwk.common.public_key_use, None | Some(PublicKeyUse::Signature));
        let rs256 = matches!(jwk.common.key_algorithm, None | Some(KeyAlgorithm::RS256));
        if !(signs && rs256 && matches!(jwk.algorithm, AlgorithmParameters::RSA(_))) {
            continue;
        }
        if let Ok(key) = DecodingKey::from_jwk(&jwk) {
            out.push((jwk.common.key_id.clone(), key));
        }
        if out.len() == KEYS_MAX {
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::signing_keys;

    #[test]
    fn only_rs256_signing_keys_are_kept() {
        // n and e of a 2048-bit RSA key (any valid modulus does for parsing).
        let n = "wS9DfEFXoO9DpMgHC91HsJ1_0NRLjO15-1g4rzhSQuG9kMlWxn2EaDSS2llMl68VQ_cSQmNt8m5nqtrAOp79DXBwAVVTMu_7h0FjwgdckvRpE17rCZw3--b5oaaiAdxzN8mZS0qu_bo1_K3q4fV_YEfjhJqsanEyuv_iD572WF_F2cSRweoZCn9jYO1J1L5iaa9XE_9Fsr1EM5lb2QeAG2y9zSLpV5IAJsVSMV9-3ndnn5I1N21utTg7QhM4d9ttH1rq6OOfa7vbEGpqHw_X5ZgC3sA511KSbFKfkt1crrRjERPdksSm7rTd2Fwa5WBSzHwNWkLM-K-nVuTA3akCGQ";
        let rsa = |extra: &str| format!(r#"{{"kty":"RSA","n":"{n}","e":"AQAB"{extra}}}"#);
        let doc = format!(
            r#"{{"keys":[{},{},{},{},{{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","kid":"ec"}},{{"kty":"weird"}}]}}"#,
            rsa(r#","kid":"a","use":"sig","alg":"RS256""#),
            rsa(r#","kid":"b""#),
            rsa(r#","kid":"enc","use":"enc""#),
            rsa(r#","kid":"ps","alg":"PS256""#),
        );
        let kids: Vec<Option<String>> = signing_keys(doc.as_bytes()).unwrap().into_iter().map(|(k, _)| k).collect();
        assert_eq!(kids, vec![Some("a".to_string()), Some("b".to_string())]);
        assert!(signing_keys(b"not json").is_err());
    }
}
