// The tab's sign-in: a bearer token kept in sessionStorage (this tab only, gone when it
// closes), dropped when it expires, when the server refuses it, or on sign-out.

const TOKEN = 'happening.token';
const ID_TOKEN = 'happening.id_token';
const listeners = new Set();
let timer = null;
let notice = null;

export const token = () => sessionStorage.getItem(TOKEN);
export const idToken = () => sessionStorage.getItem(ID_TOKEN);

/** The claims of a JWT (unverified: the server verifies; the console only reads `exp`,
 * `name` and `nonce`), or null. */
export function claims(jwt = token()) {
  try {
    const part = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const bytes = Uint8Array.from(atob(part), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
}

/** Why the last sign-in ended (shown once on the sign-in page). */
export function takeNotice() {
  const n = notice;
  notice = null;
  return n;
}

export const onChange = (fn) => listeners.add(fn);
const changed = () => listeners.forEach((fn) => fn());

function schedule() {
  clearTimeout(timer);
  const exp = claims()?.exp;
  if (!exp) return;
  const ms = exp * 1000 - Date.now();
  if (ms <= 0) {
    expire('Your sign-in has expired. Sign in again to continue.');
    return;
  }
  // setTimeout holds at most 2^31-1 ms; a later expiry is checked again then.
  timer = setTimeout(schedule, Math.min(ms, 2 ** 31 - 1));
}

/** Signs this tab in with `jwt` (and the OpenID Connect id token, for sign-out). */
export function signIn(jwt, id = null) {
  sessionStorage.setItem(TOKEN, jwt.trim());
  if (id) sessionStorage.setItem(ID_TOKEN, id);
  else sessionStorage.removeItem(ID_TOKEN);
  notice = null;
  schedule();
  changed();
}

/** Signs out, with the reason to show on the sign-in page. */
export function signOut(reason = null) {
  const had = token();
  sessionStorage.removeItem(TOKEN);
  sessionStorage.removeItem(ID_TOKEN);
  clearTimeout(timer);
  notice = reason;
  if (had) changed();
}

/** The token no longer works (expired, or refused by the server). */
export function expire(reason) {
  if (token()) signOut(reason);
}

/** A console link `…/app#access_token=…` signs this tab in; the token then leaves the
 * address bar (and the history) at once. */
export function takeTokenFromHash() {
  if (!location.hash.includes('access_token=')) return;
  const params = new URLSearchParams(location.hash.slice(1));
  const jwt = params.get('access_token');
  history.replaceState(history.state, '', location.pathname + location.search);
  if (jwt) signIn(jwt);
}

export function start() {
  takeTokenFromHash();
  schedule();
}
