// Client-side routes under /app: the server answers index.html for each, and this picks
// the page from the path. Links inside the console navigate without reloading.
import { api } from './api.js';
import { onChange, takeNotice, token } from './auth.js';
import { h, fill } from './dom.js';
import { bareHeader, failure, focusHeading, header, unreadCount } from './layout.js';
import * as attendees from './pages/attendees.js';
import * as bookings from './pages/bookings.js';
import * as callback from './pages/callback.js';
import * as dashboard from './pages/dashboard.js';
import * as eventForm from './pages/event-form.js';
import * as event from './pages/event.js';
import * as invite from './pages/invite.js';
import * as members from './pages/members.js';
import * as notfound from './pages/notfound.js';
import * as notifications from './pages/notifications.js';
import * as signin from './pages/signin.js';

const ROUTES = [
  [/^\/app\/?$/, dashboard],
  [/^\/app\/callback$/, callback, { open: true }],
  [/^\/app\/events\/new$/, eventForm],
  [/^\/app\/events\/([^/]+)\/edit$/, eventForm],
  [/^\/app\/events\/([^/]+)\/attendees$/, attendees],
  [/^\/app\/events\/([^/]+)$/, event],
  [/^\/app\/bookings$/, bookings],
  [/^\/app\/notifications$/, notifications],
  [/^\/app\/orgs\/([^/]+)$/, members],
  [/^\/app\/invites\/([^/]+)$/, invite],
];

let cleanup = null;
let seq = 0;
let me = null;
let orgs = null;

/** What pages share: the caller, their organizations, navigation. */
const ctx = {
  get me() {
    return me;
  },
  get orgs() {
    return orgs;
  },
  async refreshOrgs() {
    orgs = await api('GET', '/organizations');
    return orgs;
  },
  roleIn(orgId) {
    return orgs?.find((o) => o.id === orgId)?.role || null;
  },
  navigate,
  async refreshHeader() {
    header(me, await unreadCount());
  },
};

export function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  render();
}

async function render() {
  const mine = ++seq;
  if (cleanup) {
    const c = cleanup;
    cleanup = null;
    c();
  }
  const main = document.getElementById('main');
  const path = location.pathname;
  let page = notfound;
  let params = [];
  let open = false;
  for (const [re, mod, opts] of ROUTES) {
    const m = path.match(re);
    if (m) {
      page = mod;
      params = m.slice(1).map(decodeURIComponent);
      open = Boolean(opts?.open);
      break;
    }
  }
  if (!open && !token()) {
    me = null;
    orgs = null;
    bareHeader();
    await signin.render(main, { notice: takeNotice() });
    focusHeading(main);
    return;
  }
  if (open) {
    bareHeader();
    cleanup = (await page.render(main, params, ctx)) || null;
    return;
  }
  try {
    if (!me) {
      me = await api('GET', '/users/me');
      orgs = await api('GET', '/organizations');
    }
  } catch (err) {
    if (!token()) return; // a 401: the sign-in page is on its way
    bareHeader();
    failure(main, err, render);
    return;
  }
  if (mine !== seq) return;
  header(me, 0);
  unreadCount().then((n) => mine === seq && header(me, n));
  fill(main, h('p', { class: 'loading' }, 'Loading…'));
  try {
    const c = await page.render(main, params, ctx);
    if (mine !== seq) {
      if (c) c();
      return;
    }
    cleanup = c || null;
    focusHeading(main);
  } catch (err) {
    if (mine !== seq || !token()) return;
    failure(main, err, render);
  }
}

export function start() {
  document.addEventListener('click', (e) => {
    const a = e.target.closest('a[href]');
    if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    if (a.target || a.hasAttribute('download')) return;
    const url = new URL(a.href, location.href);
    if (url.origin !== location.origin || !(url.pathname === '/app' || url.pathname.startsWith('/app/'))) return;
    e.preventDefault();
    navigate(url.pathname + url.search);
  });
  window.addEventListener('popstate', render);
  onChange(() => {
    me = null;
    orgs = null;
    render();
  });
  render();
}
