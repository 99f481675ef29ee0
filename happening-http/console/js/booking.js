// One booking with what its holder can do: cancel it, cancel some of its seats, accept or
// decline an offer (a seat offered from the waitlist for a limited time), read its history.
import { api, newKey } from './api.js';
import { h, fill, region, say } from './dom.js';
import { countdown, seatList, statusName, whenShort } from './format.js';
import { actionError } from './layout.js';
import { bookingSummary, statusBadge } from './ui.js';

// Every history action the API has, in words.
const ACTION_NAMES = {
  created: 'Booked',
  promoted: 'Promoted from the waitlist',
  offered: 'Offered from the waitlist',
  accepted: 'Offer accepted',
  declined: 'Offer declined',
  expired: 'Offer expired',
  modified: 'Seats cancelled',
  cancelled: 'Cancelled',
};
// Once an offer's time is up, how often and how long its booking is read again until the
// server's background step has ended it (every 250 ms by default).
const ENDED_POLL_MS = 1000;
const ENDED_POLLS_MAX = 30;

function history(b) {
  const list = h('ol', { class: 'history' });
  const details = h('details', {}, h('summary', {}, 'History'), list);
  details.addEventListener('toggle', async () => {
    if (!details.open || list.childElementCount) return;
    try {
      const entries = await api('GET', `/bookings/${b.id}/history`);
      fill(list, entries.map((e) =>
        h('li', {}, h('span', { class: 'meta' }, whenShort(e.created_at)), ` ${ACTION_NAMES[e.action] || e.action}`,
          e.action === 'created' && e.status !== 'confirmed' ? ` (${statusName(e.status).toLowerCase()})` : '',
          e.seat_numbers.length ? `: ${seatList(e.seat_numbers)}` : '')));
    } catch (err) {
      fill(list, h('li', {}, actionError(err)));
    }
  });
  return details;
}

/** A booking as a list item. `onChanged(booking)` after a change; `stop()` ends its timer. */
export function bookingItem(b, { onChanged, showEvent = true }) {
  const status = region('status');
  const stops = [];
  const act = async (button, method, path, body, done) => {
    const key = newKey();
    button.disabled = true;
    try {
      const updated = await api(method, path, { body, key });
      say(status, done(updated), 'ok');
      onChanged(updated);
    } catch (err) {
      say(status, actionError(err), 'error');
      button.disabled = false;
    }
  };

  const parts = [];
  if (b.status === 'offered' && b.offer_expires_at) {
    const timer = h('span', { role: 'timer', class: 'countdown' });
    const accept = h('button', { type: 'button', class: 'primary' }, 'Accept offer');
    const decline = h('button', { type: 'button' }, 'Decline offer');
    let polls = 0;
    let poll = null;
    // The time is up: accepting is refused from now on; read the booking until the server
    // has ended the offer, then show it as it is.
    const ended = async () => {
      polls += 1;
      try {
        const now = await api('GET', `/bookings/${b.id}`);
        if (now.status !== 'offered') return onChanged(now);
      } catch {
        // Read again below: a failed read changes nothing.
      }
      if (polls < ENDED_POLLS_MAX) poll = setTimeout(ended, ENDED_POLL_MS);
    };
    const tick = () => {
      const left = countdown(b.offer_expires_at);
      timer.textContent = left ? `${left} left` : 'the offer has expired';
      if (left) return;
      clearInterval(handle);
      accept.disabled = true;
      poll = setTimeout(ended, ENDED_POLL_MS);
    };
    const handle = setInterval(tick, 1000);
    stops.push(() => clearInterval(handle), () => clearTimeout(poll));
    tick();
    accept.addEventListener('click', () => act(accept, 'POST', `/bookings/${b.id}/accept`, undefined, (u) => `Offer accepted: ${seatList(u.seat_numbers)} are yours.`));
    decline.addEventListener('click', () => act(decline, 'POST', `/bookings/${b.id}/decline`, undefined, () => 'Offer declined: the seats go to the next person waiting.'));
    parts.push(h('div', { class: 'offer' },
      h('p', {}, `You are offered ${seatList(b.seat_numbers)} until ${whenShort(b.offer_expires_at)}: `, timer, '.'),
      h('p', { class: 'actions' }, accept, decline)));
  }

  if (['confirmed', 'waiting', 'offered'].includes(b.status)) {
    const cancel = h('button', { type: 'button', class: 'danger' }, 'Cancel booking');
    cancel.addEventListener('click', () => act(cancel, 'POST', `/bookings/${b.id}/cancel`, undefined, () => 'Booking cancelled.'));
    parts.push(h('p', { class: 'actions' }, cancel));
  }

  if (b.status === 'confirmed' && b.seat_numbers.length > 1) {
    const boxes = b.seat_numbers.map((n) => h('label', { class: 'check' }, h('input', { type: 'checkbox', value: n }), `Seat ${n}`));
    const go = h('button', { type: 'button' }, 'Cancel chosen seats');
    go.addEventListener('click', () => {
      const seats = boxes.map((l) => l.querySelector('input')).filter((i) => i.checked).map((i) => Number(i.value));
      if (!seats.length) {
        say(status, 'Choose the seats to cancel first.', 'warn');
        return;
      }
      act(go, 'POST', `/bookings/${b.id}/cancel-seats`, { seat_numbers: seats }, (u) =>
        u.status === 'cancelled' ? 'Every seat cancelled: the booking is cancelled.' : `Cancelled ${seatList(seats)}; you keep ${seatList(u.seat_numbers)}.`);
    });
    parts.push(h('fieldset', { class: 'seat-choice' }, h('legend', {}, 'Cancel some seats'), h('div', { class: 'checks' }, boxes), go));
  }

  const title = showEvent
    ? h('h3', {}, h('a', { href: `/app/events/${b.event_id}` }, b.event_name || 'Event'))
    : h('h3', {}, bookingSummary(b));
  const el = h('li', { class: 'booking', 'data-status': b.status },
    h('div', { class: 'booking-head' }, title, statusBadge(b.status)),
    h('p', {}, showEvent ? bookingSummary(b) : null,
      showEvent && b.event_date ? h('span', { class: 'meta' }, ` · event on ${whenShort(b.event_date)}`) : null,
      showEvent ? null : h('span', { class: 'meta' }, `Booked ${whenShort(b.created_at)}`)),
    parts,
    history(b),
    status);
  return { el, stop: () => stops.forEach((s) => s()) };
}
