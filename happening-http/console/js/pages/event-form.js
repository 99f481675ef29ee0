// Creating an event (/app/events/new?org=…) or editing one (/app/events/<id>/edit):
// organizers and administrators of its organization.
import { api } from '../api.js';
import { h, field, fill, region, say } from '../dom.js';
import { canOrganize, fromLocalInput, toLocalInput } from '../format.js';
import { actionError, titled } from '../layout.js';

const POLICIES = [
  ['fifo', 'First come, first served: freed seats go to the first in line, when they fit'],
  ['first_fit', 'First that fits: freed seats go to everyone in line they fit, in order'],
  ['partial', 'Partial: the first in line takes what is free'],
];

export async function render(main, [id], ctx) {
  const editing = Boolean(id);
  const event = editing ? await api('GET', `/events/${id}`) : null;
  const orgId = editing ? event.org_id : new URLSearchParams(location.search).get('org');
  const org = ctx.orgs.find((o) => o.id === orgId);
  if (!org || !canOrganize(org.role)) {
    fill(main,
      titled(main, editing ? 'Edit event' : 'New event'),
      h('div', { class: 'message', role: 'alert', 'data-tone': 'error' }, h('p', {}, 'Only organizers and administrators of the event’s organization can do this.')),
      h('p', {}, h('a', { class: 'button', href: '/app' }, 'Back to the dashboard')));
    return;
  }

  const name = h('input', { type: 'text', name: 'name', required: true, maxlength: 200, value: event?.name || '' });
  const date = h('input', { type: 'datetime-local', name: 'event_date', required: true, value: event ? toLocalInput(event.event_date) : '' });
  const description = h('textarea', { name: 'description', rows: 3, maxlength: 5000 }, event?.description || '');
  const category = h('input', { type: 'text', name: 'category', maxlength: 50, value: event?.category || '' });
  const capacity = h('input', { type: 'number', name: 'total_slots', required: true, min: 1, max: 1000000, value: event?.total_slots ?? 100, inputmode: 'numeric' });
  const policy = h('select', { name: 'waitlist_policy' }, POLICIES.map(([v, text]) => h('option', { value: v, selected: (event?.waitlist_policy || 'fifo') === v }, text)));
  const cap = h('input', { type: 'number', name: 'waitlist_max', min: 0, max: 10000000, value: event?.waitlist_max ?? '', inputmode: 'numeric' });
  // No min or max here: the server's bounds (1 s to 30 days) and its words when refused.
  const offer = h('input', { type: 'number', name: 'offer_ttl_seconds', step: 1, value: event?.offer_ttl_seconds ?? '', inputmode: 'numeric' });
  const status = region('alert');
  const submit = h('button', { type: 'submit', class: 'primary' }, editing ? 'Save changes' : 'Create event');
  const form = h('form', { class: 'card form-grid' },
    field('Name', name),
    field('Date and time', date, 'In your time zone.'),
    field('Description', description),
    field('Category', category, 'For example concert, webinar, hackathon.'),
    field('Capacity (seats)', capacity, editing ? 'May grow (the waitlist is promoted) or shrink down to the highest taken seat.' : null),
    field('Waitlist policy', policy),
    field('Waitlist cap', cap, 'How many bookings may wait at most; empty for no cap, 0 for no waitlist.'),
    field('Offer time (seconds)', offer, 'How long freed seats are held for the next in line to accept (600 is 10 minutes); empty: they are booked for them at once.'),
    status,
    h('p', { class: 'actions' }, submit, h('a', { class: 'button', href: editing ? `/app/events/${id}` : '/app' }, 'Back')));

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = {
      name: name.value,
      event_date: fromLocalInput(date.value),
      description: description.value.trim() ? description.value : null,
      category: category.value.trim() ? category.value : null,
      total_slots: Number(capacity.value),
      waitlist_policy: policy.value,
      waitlist_max: cap.value === '' ? null : Number(cap.value),
      offer_ttl_seconds: offer.value === '' ? null : Number(offer.value),
    };
    if (!editing) body.org_id = orgId;
    submit.disabled = true;
    for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
    try {
      const saved = await api(editing ? 'PUT' : 'POST', editing ? `/events/${id}` : '/events', { body });
      ctx.navigate(`/app/events/${saved.id}`);
    } catch (err) {
      say(status, actionError(err), 'error');
      const bad = err.body?.field && form.querySelector(`[name="${err.body.field}"]`);
      if (bad) {
        bad.setAttribute('aria-invalid', 'true');
        bad.focus();
      }
    } finally {
      submit.disabled = false;
    }
  });

  fill(main,
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '/app' }, org.name), ' › ',
      editing ? [h('a', { href: `/app/events/${id}` }, event.name), ' › '] : null, h('span', { 'aria-current': 'page' }, editing ? 'Edit' : 'New event')),
    titled(main, editing ? `Edit “${event.name}”` : `New event of ${org.name}`),
    form);
}
