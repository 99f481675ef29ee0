// Calls to the Happening API with the tab's token. A refused request throws ApiError with
// the server's own words (its `error` field); a 401 also signs the tab out with them.
import { expire, token } from './auth.js';

export class ApiError extends Error {
  constructor(status, body, retryAfter = null) {
    super(body?.error || `the server answered ${status}`);
    this.status = status;
    this.body = body || {};
    this.retryAfter = retryAfter;
  }
}

/** A key for `Idempotency-Key` (random; also where crypto.randomUUID is missing, on plain
 * HTTP away from localhost). */
export function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/** `api('POST', '/bookings', { body, key })`: the JSON answer (null for 204), or throws. */
export async function api(method, path, { body, key, raw = false, signal } = {}) {
  const headers = { authorization: `Bearer ${token()}`, accept: raw ? '*/*' : 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (key) headers['idempotency-key'] = key;
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal, cache: 'no-store' });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, { error: 'cannot reach the server; check the connection and try again' });
  }
  if (raw && res.ok) return res;
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    const err = new ApiError(res.status, data && data.error ? data : { error: `the server answered ${res.status}` }, res.headers.get('retry-after'));
    if (res.status === 401) expire(`The server did not accept your sign-in (${err.message}). Sign in again to continue.`);
    throw err;
  }
  return data;
}

/** Every page of a list route, up to `max` rows. */
export async function all(path, max = 2000) {
  const out = [];
  const sep = path.includes('?') ? '&' : '?';
  for (let offset = 0; offset < max; offset += 500) {
    const page = await api('GET', `${path}${sep}limit=500&offset=${offset}`);
    out.push(...page);
    if (page.length < 500) break;
  }
  return out;
}
