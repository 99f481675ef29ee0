// The dashboard: my organizations (with my role, and a switcher), the chosen
// organization's upcoming events, my latest bookings.
import { api } from '../api.js';
import { h, field, fill, region, say } from '../dom.js';
import { canOrganize, roleName, whenShort } from '../format.js';
import { actionError, titled } from '../layout.js';
import { bookingSummary, eventCard, statusBadge } from '../ui.js';

const CURRENT = 'happening.org';

export function currentOrg(orgs) {
  const saved = localStorage.getItem(CURRENT);
  return orgs.find((o) => o.id === saved) || orgs[0] || null;
}

function createOrgForm(ctx, heading) {
  const name = h('input', { type: 'text', name: 'name', required: true, maxlength: 200, autocomplete: 'organization' });
  const status = region('alert');
  const form = h('form', { class: 'inline-form' },
    field('Organization name', name),
    h('button', { type: 'submit' }, 'Create organization'),
    status);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      const org = await api('POST', '/organizations', { body: { name: name.value } });
      localStorage.setItem(CURRENT, org.id);
      await ctx.refreshOrgs();
      ctx.navigate('/app', { replace: true });
    } catch (err) {
      say(status, actionError(err), 'error');
    }
  });
  return h('section', { class: 'card', 'aria-labelledby': 'new-org' }, h('h2', { id: 'new-org' }, heading), form);
}

async function eventsOf(org) {
  const list = await api('GET', `/events?org_id=${org.id}&limit=500`);
  const now = Date.now();
  return list
    .filter((ev) => ev.status !== 'cancelled' && new Date(ev.event_date).getTime() >= now)
    .sort((a, b) => new Date(a.event_date) - new Date(b.event_date));
}

export async function render(main, _params, ctx) {
  const orgs = ctx.orgs || [];
  const org = currentOrg(orgs);
  const name = ctx.me?.name || ctx.me?.email;
  const [events, bookings] = await Promise.all([org ? eventsOf(org) : [], api('GET', `/bookings/user/${ctx.me.id}?limit=5`)]);

  let orgSection;
  if (!org) {
    orgSection = h('div', {},
      h('p', { class: 'lead' }, 'You are not a member of any organization yet. Open an invite link you were sent, or create an organization.'),
      createOrgForm(ctx, 'Create an organization'));
  } else {
    const select = h('select', { name: 'org' }, orgs.map((o) => h('option', { value: o.id, selected: o.id === org.id }, `${o.name} (${roleName(o.role)})`)));
    select.addEventListener('change', () => {
      localStorage.setItem(CURRENT, select.value);
      ctx.navigate('/app', { replace: true });
    });
    orgSection = h('section', { class: 'org-bar', 'aria-label': 'Your organization' },
      field('Organization', select),
      h('p', { class: 'role' }, 'Your role: ', h('strong', {}, roleName(org.role))),
      h('p', { class: 'actions' },
        canOrganize(org.role) ? h('a', { class: 'button primary', href: `/app/events/new?org=${org.id}` }, 'New event') : null,
        h('a', { class: 'button', href: `/app/orgs/${org.id}` }, org.role === 'orgAdmin' ? 'Members and invites' : 'Members')));
  }

  const eventsSection = org
    ? h('section', { 'aria-labelledby': 'upcoming' },
        h('h2', { id: 'upcoming' }, `Upcoming events of ${org.name}`),
        events.length
          ? h('ul', { class: 'event-grid' }, events.map(eventCard))
          : h('p', { class: 'empty' }, canOrganize(org.role) ? 'No upcoming events. Create one with “New event”.' : 'No upcoming events yet.'))
    : null;

  const bookingsSection = h('section', { 'aria-labelledby': 'mine' },
    h('h2', { id: 'mine' }, 'My latest bookings'),
    bookings.length
      ? h('ul', { class: 'plain-list' }, bookings.map((b) =>
          h('li', {},
            statusBadge(b.status), ' ',
            h('a', { href: `/app/events/${b.event_id}` }, b.event_name || 'Event'),
            ` — ${bookingSummary(b)}`,
            b.event_date ? h('span', { class: 'meta' }, ` · ${whenShort(b.event_date)}`) : null)))
      : h('p', { class: 'empty' }, 'No bookings yet.'),
    h('p', {}, h('a', { href: '/app/bookings' }, 'All my bookings')));

  fill(main,
    titled(main, name ? `Hello, ${name}` : 'Dashboard'),
    orgSection,
    h('div', { class: 'columns' }, eventsSection, bookingsSection),
    org ? h('details', { class: 'more' }, h('summary', {}, 'Create another organization'), createOrgForm(ctx, 'New organization')) : null);
}
