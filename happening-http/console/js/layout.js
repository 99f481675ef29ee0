// What every page shares: the header (navigation, unread notifications, sign-out), page
// titles and focus, and the answer to a failed load in the API's own words.
import { api, ApiError } from './api.js';
import { claims, idToken, signOut, token } from './auth.js';
import { h, fill } from './dom.js';
import { loadConfig, logoutUrl } from './oidc.js';

const top = () => document.getElementById('top');

/** Sets the title and moves focus to the page's heading (screen readers hear the new page). */
export function titled(main, heading, ...rest) {
  document.title = `${heading} · Happening`;
  const h1 = h('h1', { tabindex: '-1' }, heading, ...rest);
  return h1;
}

export function focusHeading(main) {
  const h1 = main.querySelector('h1');
  if (h1 && document.activeElement !== h1 && !main.contains(document.activeElement)) h1.focus({ preventScroll: true });
}

export async function signOutEverywhere() {
  const { oidc } = await loadConfig();
  const url = logoutUrl(oidc, idToken());
  signOut('You are signed out.');
  if (url) location.assign(url);
}

/** The header for a signed-in tab. */
export function header(me, unread) {
  const path = location.pathname;
  const link = (href, text, extra, match) =>
    h('a', { href, 'aria-current': match(path) ? 'page' : false }, text, extra);
  const badge = unread > 0 ? h('span', { class: 'badge' }, String(unread), h('span', { class: 'visually-hidden' }, ' unread')) : null;
  const name = me?.name || me?.email || claims()?.name || claims()?.sub || 'you';
  fill(top(),
    h('a', { class: 'brand', href: '/app' }, h('img', { src: '/app/icon.svg', alt: '', width: 28, height: 28 }), 'Happening'),
    h('nav', { 'aria-label': 'Main' },
      link('/app', 'Dashboard', null, (p) => p === '/app' || p === '/app/' || p.startsWith('/app/orgs')),
      link('/app/bookings', 'My bookings', null, (p) => p.startsWith('/app/bookings')),
      link('/app/notifications', 'Notifications', badge, (p) => p.startsWith('/app/notifications'))),
    h('div', { class: 'who' },
      h('span', { class: 'who-name' }, 'Signed in as ', h('strong', {}, name)),
      h('button', { type: 'button', class: 'quiet', onclick: signOutEverywhere }, 'Sign out')));
}

export function bareHeader() {
  fill(top(), h('a', { class: 'brand', href: '/app' }, h('img', { src: '/app/icon.svg', alt: '', width: 28, height: 28 }), 'Happening'));
}

/** Unread notifications among the latest 100. */
export async function unreadCount() {
  if (!token()) return 0;
  try {
    const list = await api('GET', '/notifications?limit=100');
    return list.filter((n) => !n.read).length;
  } catch {
    return 0;
  }
}

/** A page that could not load: the API's words, and a way on for each kind of failure. */
export function failure(main, err, retry) {
  if (!(err instanceof ApiError)) throw err;
  const back = h('a', { href: '/app', class: 'button' }, 'Back to the dashboard');
  const again = h('button', { type: 'button', onclick: retry }, 'Try again');
  const kinds = {
    0: ['Cannot reach the server', [again, back]],
    403: ['Not allowed', [back]],
    404: ['Not found', [back]],
    409: ['Conflict', [again, back]],
    429: ['Too many requests', [again, back]],
    503: ['Service unavailable', [again, back]],
  };
  const [heading, ways] = kinds[err.status] || [`Something went wrong (${err.status})`, [again, back]];
  const wait = err.status === 429 && err.retryAfter ? ` Try again in ${err.retryAfter} s.` : '';
  fill(main,
    titled(main, heading),
    h('div', { class: 'message alert', role: 'alert', 'data-tone': 'error' }, h('p', {}, `The server said: ${err.message}.${wait}`)),
    h('p', { class: 'actions' }, ways));
  focusHeading(main);
}

/** An inline failure of an action (the page stays usable). */
export function actionError(err) {
  if (!(err instanceof ApiError)) return `Something went wrong: ${err.message}`;
  if (err.status === 401) return `Your sign-in ended: ${err.message}.`;
  if (err.status === 429) return `Too many requests: ${err.message}.${err.retryAfter ? ` Try again in ${err.retryAfter} s.` : ''}`;
  if (err.status === 503) return `The service is unavailable right now: ${err.message}. Try again shortly.`;
  if (err.status === 0) return `Cannot reach the server: ${err.message}.`;
  return `The server said: ${err.message}.`;
}
