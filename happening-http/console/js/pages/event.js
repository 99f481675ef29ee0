// An event: its seat map, live; booking chosen seats (or any N); my bookings of it; for its
// organizers, editing, the attendees, and cancelling it.
import { api, ApiError, newKey } from '../api.js';
import { bookingItem } from '../booking.js';
import { h, field, fill, region, say } from '../dom.js';
import { canOrganize, duration, plural, seatList, when } from '../format.js';
import { actionError, titled } from '../layout.js';
import { follow } from '../live.js';
import { legend, SeatMap, SELECTION_MAX } from '../seatmap.js';

export async function render(main, [id], ctx) {
  const [event, seats, mine] = await Promise.all([
    api('GET', `/events/${id}`),
    api('GET', `/events/${id}/seats`),
    api('GET', `/bookings/user/${ctx.me.id}?limit=500`).then((l) => l.filter((b) => b.event_id === id)),
  ]);
  const role = ctx.roleIn(event.org_id);
  const org = ctx.orgs?.find((o) => o.id === event.org_id);
  let bookings = mine;
  let snapshot = { ...seats, status: event.status, waiting: null };
  const stops = [];
  const offerTerms = event.offer_ttl_seconds
    ? `When seats free up, they are offered to the next in line for ${duration(event.offer_ttl_seconds)}, to accept or decline.`
    : null;

  // ---- counts and status ----
  const counts = h('p', { class: 'counts' });
  const liveBadge = h('span', { class: 'live', role: 'status', 'data-state': 'connecting' }, 'connecting…');
  const cancelledNote = h('div', { class: 'message', role: 'status', 'data-tone': 'warn', hidden: true }, h('p', {}, 'This event is cancelled: its seats can no longer be booked.'));
  const showCounts = () => {
    const waiting = snapshot.waiting ? snapshot.waiting.length : event.waiting_count;
    fill(counts,
      h('strong', {}, plural(snapshot.available_slots, 'seat')), ` available of ${snapshot.total.toLocaleString()}`,
      ` · ${snapshot.taken.length.toLocaleString()} booked · ${snapshot.held.length.toLocaleString()} held · ${waiting.toLocaleString()} waiting`);
    const cancelled = snapshot.status === 'cancelled';
    cancelledNote.hidden = !cancelled;
    book.disabled = cancelled;
  };

  // ---- booking panel ----
  const note = region('status');
  const outcome = region('status');
  const selection = h('p', { class: 'selection' });
  const count = h('input', { type: 'number', name: 'seats', min: 1, max: SELECTION_MAX, value: 1, inputmode: 'numeric' });
  const clear = h('button', { type: 'button', class: 'quiet', hidden: true }, 'Clear selection');
  const book = h('button', { type: 'submit', class: 'primary' }, 'Book');
  const showSelection = (sel) => {
    if (sel.size) {
      fill(selection, 'Selected: ', h('strong', {}, seatList(sel)), '.');
      count.disabled = true;
    } else {
      fill(selection, 'No seat selected: choose seats on the map, or book any number of seats.');
      count.disabled = false;
    }
    clear.hidden = sel.size === 0;
  };

  const map = new SeatMap({
    total: seats.total,
    onSelect: (sel, lost) => {
      showSelection(sel);
      // (Seats a booking of mine in flight takes are not news: its outcome says so.)
      if (lost.length && !pending) say(note, `${seatList(lost)} ${lost.length === 1 ? 'was' : 'were'} just taken, and left your selection.`, 'warn');
    },
    onNote: (text) => say(note, text, 'info'),
  });
  const mySeats = () => bookings.filter((b) => b.status === 'confirmed').flatMap((b) => b.seat_numbers);
  const paintMap = () => map.update({ taken: snapshot.taken, held: snapshot.held, mine: mySeats() });
  clear.addEventListener('click', () => map.clearSelection());

  // One key per intent: a retry after no answer (a dropped connection, a 503) reuses it, so
  // the booking is made at most once.
  let pending = null;
  const form = h('form', { class: 'book-form', 'aria-labelledby': 'book-heading' },
    h('h2', { id: 'book-heading' }, 'Book'),
    selection,
    clear,
    field('Seats', count, 'Used when no seat is selected: the lowest free seats, or a place on the waitlist when too few are free.'),
    book,
    note,
    outcome);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = map.selected.size
      ? { event_id: id, seat_numbers: [...map.selected].sort((a, b) => a - b) }
      : { event_id: id, seats: Number(count.value) };
    if (!body.seat_numbers && !(body.seats >= 1 && body.seats <= SELECTION_MAX)) {
      say(outcome, `Ask for 1 to ${SELECTION_MAX} seats.`, 'error');
      count.focus();
      return;
    }
    const fingerprint = JSON.stringify(body);
    if (!pending || pending.fingerprint !== fingerprint) pending = { fingerprint, key: newKey() };
    book.disabled = true;
    say(outcome, 'Booking…', 'info');
    try {
      const b = await api('POST', '/bookings', { body, key: pending.key });
      pending = null;
      bookings = [b, ...bookings.filter((x) => x.id !== b.id)];
      map.clearSelection();
      if (b.status === 'confirmed') {
        say(outcome, `Booked: ${seatList(b.seat_numbers)}${b.seats_requested > b.seats ? ` (of ${b.seats_requested} asked for)` : ''}.`, 'ok');
      } else {
        // A new booking is confirmed or waits; promotions come later.
        say(outcome, `Too few seats are free: you are on the waitlist${b.waiting_number ? `, number ${b.waiting_number}` : ''}, for ${plural(b.seats, 'seat')}.${offerTerms ? ` ${offerTerms}` : ''}`, 'warn');
      }
      snapshot.taken = [...new Set([...snapshot.taken, ...(b.status === 'confirmed' ? b.seat_numbers : [])])];
      paintMap();
      showMine();
    } catch (err) {
      if (err instanceof ApiError && err.status !== 0 && err.status !== 503) pending = null;
      say(outcome, actionError(err), 'error');
    } finally {
      book.disabled = snapshot.status === 'cancelled';
    }
  });

  // ---- my bookings of this event ----
  const mineList = h('ul', { class: 'bookings' });
  let mineStops = [];
  const refreshMine = async () => {
    bookings = (await api('GET', `/bookings/user/${ctx.me.id}?limit=500`)).filter((b) => b.event_id === id);
    paintMap();
    showMine();
  };
  const showMine = () => {
    mineStops.forEach((s) => s());
    mineStops = [];
    const live = bookings.filter((b) => b.status !== 'cancelled');
    if (!live.length) {
      fill(mineList, h('li', { class: 'empty' }, 'You have no booking for this event.'));
      return;
    }
    fill(mineList, live.map((b) => {
      const waiting = snapshot.waiting?.find((w) => w.booking_id === b.id);
      const item = bookingItem(waiting ? { ...b, waiting_number: waiting.waiting_number } : b, { showEvent: false, onChanged: () => refreshMine().catch(() => {}) });
      mineStops.push(item.stop);
      return item.el;
    }));
  };
  stops.push(() => mineStops.forEach((s) => s()));

  // ---- organizers ----
  let tools = null;
  if (canOrganize(role)) {
    const dialogStatus = region('alert');
    const confirm = h('button', { type: 'button', class: 'danger' }, 'Yes, cancel the event');
    const keep = h('button', { type: 'button' }, 'Keep the event');
    const dialog = h('dialog', { 'aria-labelledby': 'cancel-title', 'aria-describedby': 'cancel-text' },
      h('h2', { id: 'cancel-title' }, `Cancel “${event.name}”?`),
      h('p', { id: 'cancel-text' }, 'Every booking is cancelled and its holder notified, and nobody can book any more. This cannot be undone.'),
      dialogStatus,
      h('p', { class: 'actions' }, keep, confirm));
    keep.addEventListener('click', () => dialog.close());
    confirm.addEventListener('click', async () => {
      confirm.disabled = true;
      try {
        await api('POST', `/events/${id}/cancel`);
        dialog.close();
        snapshot.status = 'cancelled';
        showCounts();
        await refreshMine();
        say(note, 'The event is cancelled; every booking was cancelled and notified.', 'ok');
      } catch (err) {
        say(dialogStatus, actionError(err), 'error');
      } finally {
        confirm.disabled = false;
      }
    });
    const cancelEvent = h('button', { type: 'button', class: 'danger', disabled: event.status === 'cancelled' }, 'Cancel event');
    cancelEvent.addEventListener('click', () => {
      say(dialogStatus, '');
      dialog.showModal();
    });
    tools = h('div', { class: 'toolbar', role: 'group', 'aria-label': 'Organizer tools' },
      h('a', { class: 'button', href: `/app/events/${id}/edit` }, 'Edit event'),
      h('a', { class: 'button', href: `/app/events/${id}/attendees` }, 'Attendees and waitlist'),
      cancelEvent,
      dialog);
  }

  fill(main,
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '/app' }, org ? org.name : 'Dashboard'), ' › ', h('span', { 'aria-current': 'page' }, event.name)),
    titled(main, event.name),
    h('p', { class: 'meta' }, when(event.event_date), event.category ? ` · ${event.category}` : ''),
    event.description ? h('p', { class: 'description' }, event.description) : null,
    offerTerms ? h('p', { class: 'meta' }, offerTerms) : null,
    h('div', { class: 'status-line' }, counts, liveBadge),
    cancelledNote,
    tools,
    h('div', { class: 'event-layout' },
      h('div', { class: 'main-column' },
        h('section', { class: 'map-panel', 'aria-labelledby': 'map-heading' },
          h('h2', { id: 'map-heading' }, 'Seat map'),
          legend(),
          map.el),
        h('section', { class: 'mine', 'aria-labelledby': 'mine-heading' }, h('h2', { id: 'mine-heading' }, 'Your bookings for this event'), mineList)),
      h('div', { class: 'side' }, form)));

  showSelection(map.selected);
  showCounts();
  paintMap();
  showMine();

  // ---- live ----
  let refreshTimer = null;
  stops.push(follow(id, {
    onSeats: (s) => {
      const before = snapshot;
      snapshot = s;
      if (s.total !== map.total) map.reset(s.total);
      paintMap();
      showCounts();
      // A waiting booking of mine that left the queue was promoted, offered seats or
      // cancelled; an open offer of mine may have been answered or run out: read them.
      const left = (b) => b.status === 'waiting' && (before.waiting || []).some((w) => w.booking_id === b.id) && !s.waiting.some((w) => w.booking_id === b.id);
      clearTimeout(refreshTimer);
      if (bookings.some((b) => left(b) || b.status === 'offered')) refreshTimer = setTimeout(() => refreshMine().catch(() => {}), 150);
      else showMine();
    },
    onStatus: (state) => {
      liveBadge.dataset.state = state;
      liveBadge.textContent = state === 'live' ? 'live' : 'reconnecting…';
    },
    onGone: (message) => {
      liveBadge.dataset.state = 'gone';
      liveBadge.textContent = 'not live';
      say(note, message, 'warn');
      book.disabled = true;
    },
  }));
  stops.push(() => clearTimeout(refreshTimer));
  return () => stops.forEach((s) => s());
}
