// Sign-in through the OpenID Connect provider the server names in /app/config.json: the
// authorization-code flow with PKCE (S256), `state` against forged callbacks and `nonce`
// against replayed id tokens, back to /app/callback. The console is a public client: no
// secret, the code verifier proves the exchange.
import { claims, signIn } from './auth.js';

const PENDING = 'happening.oidc';
let config = null;

/** The server's sign-in configuration (`{ oidc: null }` without a provider). */
export async function loadConfig() {
  if (!config) {
    const res = await fetch('/app/config.json', { cache: 'no-store' });
    config = res.ok ? await res.json() : { oidc: null };
  }
  return config;
}

const b64url = (bytes) => btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
const random = (n = 32) => b64url(crypto.getRandomValues(new Uint8Array(n)));
const redirectUri = () => `${location.origin}/app/callback`;

/** Sends the browser to the provider; it comes back to /app/callback. */
export async function start(oidc, returnTo) {
  if (!crypto.subtle) throw new Error('signing in through the identity provider needs HTTPS (or localhost)');
  const verifier = random(32);
  const challenge = b64url(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier))));
  const state = random(16);
  const nonce = random(16);
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state, nonce, returnTo }));
  const url = new URL(oidc.authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: oidc.client_id,
    redirect_uri: redirectUri(),
    scope: oidc.scope,
    state,
    nonce,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  }).toString();
  location.assign(url.toString());
}

/** Finishes the flow on /app/callback: checks `state`, exchanges the code, checks the id
 * token's `iss`, `aud` and `nonce`, signs the tab in. Returns where to go next. */
export async function finish(oidc, search) {
  const params = new URLSearchParams(search);
  const pending = JSON.parse(sessionStorage.getItem(PENDING) || 'null');
  sessionStorage.removeItem(PENDING);
  if (params.get('error')) throw new Error(`the identity provider said: ${params.get('error_description') || params.get('error')}`);
  if (!pending || params.get('state') !== pending.state) throw new Error('this sign-in was not started here, or was already used; start again');
  const res = await fetch(oidc.token_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: params.get('code') || '',
      redirect_uri: redirectUri(),
      client_id: oidc.client_id,
      code_verifier: pending.verifier,
    }),
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok || !body.access_token) {
    throw new Error(`the identity provider refused the sign-in: ${body.error_description || body.error || res.status}`);
  }
  const id = claims(body.id_token || '');
  const aud = id && (Array.isArray(id.aud) ? id.aud : [id.aud]);
  if (!id || id.iss !== oidc.issuer || !aud.includes(oidc.client_id) || id.nonce !== pending.nonce) {
    throw new Error('the identity provider answered with an id token for another sign-in; start again');
  }
  signIn(body.access_token, body.id_token);
  return pending.returnTo || '/app';
}

/** Where the provider ends its own session, or null (then only this tab signs out). */
export function logoutUrl(oidc, idTokenHint) {
  if (!oidc?.end_session_endpoint) return null;
  const url = new URL(oidc.end_session_endpoint);
  const q = { client_id: oidc.client_id, post_logout_redirect_uri: `${location.origin}/app` };
  if (idTokenHint) q.id_token_hint = idTokenHint;
  url.search = new URLSearchParams(q).toString();
  return url.toString();
}
