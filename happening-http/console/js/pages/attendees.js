// An event's attendees for its organizers: who holds which seats, filtered by status, a
// page at a time; the CSV export; the waitlist in order.
import { api } from '../api.js';
import { h, field, fill, region, say } from '../dom.js';
import { plural, seatList, statusName, whenShort } from '../format.js';
import { actionError, titled } from '../layout.js';
import { statusBadge } from '../ui.js';

const PAGE = 50;
// The statuses the server filters by: every booking status ('' for all).
const STATUSES = ['', 'confirmed', 'waiting', 'offered', 'declined', 'expired', 'cancelled'];

export async function render(main, [id], ctx) {
  const event = await api('GET', `/events/${id}`);
  const org = ctx.orgs.find((o) => o.id === event.org_id);
  const params = new URLSearchParams(location.search);
  let status = STATUSES.includes(params.get('status') || '') ? params.get('status') || '' : '';
  let offset = 0;

  const select = h('select', { name: 'status' }, STATUSES.map((s) => h('option', { value: s, selected: s === status }, s ? statusName(s) : 'All')));
  const body = h('tbody');
  const caption = h('caption', {});
  const table = h('table', { class: 'data' }, caption,
    h('thead', {}, h('tr', {}, ['Name', 'Email', 'Status', 'Seats', 'Booked at'].map((c) => h('th', { scope: 'col' }, c)))), body);
  const prev = h('button', { type: 'button' }, 'Previous page');
  const next = h('button', { type: 'button' }, 'Next page');
  const csv = h('button', { type: 'button' }, 'Download CSV');
  const note = region('status');

  const load = async () => {
    const q = new URLSearchParams({ limit: PAGE, offset });
    if (status) q.set('status', status);
    const rows = await api('GET', `/events/${id}/bookings?${q}`);
    fill(caption, `${status ? statusName(status) : 'All'} bookings, ${rows.length ? `${offset + 1}–${offset + rows.length}` : 'none'}${rows.length === PAGE ? ' (more on the next page)' : ''}`);
    fill(body, rows.length
      ? rows.map((r) => h('tr', {},
          h('td', {}, r.user_name || '—'),
          h('td', {}, r.user_email || '—'),
          h('td', {}, statusBadge(r.status), r.status === 'waiting' && r.waiting_number ? ` number ${r.waiting_number}` : '',
            r.status === 'offered' ? [` until ${whenShort(r.offer_expires_at)} `, declineButton(r)] : null),
          h('td', {}, r.seat_numbers.length ? seatList(r.seat_numbers) : plural(r.seats, 'seat')),
          h('td', {}, whenShort(r.created_at))))
      : h('tr', {}, h('td', { colspan: 5, class: 'empty' }, 'No bookings with this status.')));
    prev.disabled = offset === 0;
    next.disabled = rows.length < PAGE;
  };
  const reload = () => load().catch((err) => say(note, actionError(err), 'error'));
  // An organizer may decline an open offer for its holder: the seats go to the next in line.
  const declineButton = (r) => {
    const who = r.user_name || r.user_email || 'this attendee';
    const button = h('button', { type: 'button', class: 'quiet' }, 'Decline offer', h('span', { class: 'visually-hidden' }, ` for ${who}`));
    button.addEventListener('click', async () => {
      button.disabled = true;
      try {
        await api('POST', `/bookings/${r.id}/decline`);
        say(note, `The offer to ${who} is declined: its seats go to the next in line.`, 'ok');
        await Promise.all([load(), loadWaitlist()]);
      } catch (err) {
        say(note, actionError(err), 'error');
        button.disabled = false;
      }
    });
    return button;
  };
  select.addEventListener('change', () => {
    status = select.value;
    offset = 0;
    const q = status ? `?status=${status}` : '';
    history.replaceState(null, '', `/app/events/${id}/attendees${q}`);
    reload();
  });
  prev.addEventListener('click', () => {
    offset = Math.max(0, offset - PAGE);
    reload();
  });
  next.addEventListener('click', () => {
    offset += PAGE;
    reload();
  });
  csv.addEventListener('click', async () => {
    // A download needs the Authorization header: fetch it, then hand the file over.
    try {
      const res = await api('GET', `/events/${id}/bookings.csv${status ? `?status=${status}` : ''}`, { raw: true });
      const blob = await res.blob();
      const url = URL.createObjectURL(blob);
      const a = h('a', { href: url, download: `attendees-${event.name.replace(/[^\w-]+/g, '-')}${status ? `-${status}` : ''}.csv`, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      say(note, 'The CSV file is downloading.', 'ok');
    } catch (err) {
      say(note, actionError(err), 'error');
    }
  });

  // The waitlist, in order, with each one's name from the organization's members.
  const members = await api('GET', `/organizations/${event.org_id}/members`);
  const who = new Map(members.map((m) => [m.user_id, m.name || m.email || m.user_id]));
  const waitBody = h('div', {});
  const loadWaitlist = async () => {
    const waitlist = await api('GET', `/events/${id}/waitlist?limit=500`);
    fill(waitBody, waitlist.length
      ? h('ol', { class: 'waitlist' }, waitlist.map((b) => h('li', {}, h('strong', {}, who.get(b.user_id) || 'A former member'), ` — ${plural(b.seats, 'seat')}, waiting since ${whenShort(b.created_at)}`)))
      : h('p', { class: 'empty' }, 'Nobody is waiting.'));
  };
  const waitSection = h('section', { 'aria-labelledby': 'wait-heading' }, h('h2', { id: 'wait-heading' }, 'Waitlist'), waitBody);

  await Promise.all([load(), loadWaitlist()]);
  fill(main,
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '/app' }, org ? org.name : 'Dashboard'), ' › ',
      h('a', { href: `/app/events/${id}` }, event.name), ' › ', h('span', { 'aria-current': 'page' }, 'Attendees')),
    titled(main, `Attendees of “${event.name}”`),
    h('div', { class: 'toolbar' }, field('Status', select), csv),
    note,
    h('div', { class: 'table-wrap' }, table),
    h('p', { class: 'actions' }, prev, next),
    waitSection);
}
