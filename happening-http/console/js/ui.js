// Pieces several pages show: an event's summary, a booking's status.
import { h } from './dom.js';
import { plural, seatList, statusName, when } from './format.js';

export function eventCard(ev) {
  const cancelled = ev.status === 'cancelled';
  return h('li', { class: 'event-card' },
    h('h3', {}, h('a', { href: `/app/events/${ev.id}` }, ev.name)),
    h('p', { class: 'meta' }, when(ev.event_date), ev.category ? ` · ${ev.category}` : ''),
    cancelled
      ? h('p', {}, h('span', { class: 'badge-status', 'data-status': 'cancelled' }, 'Cancelled'))
      : h('p', { class: 'counts' },
          `${plural(ev.available_slots, 'seat')} available of ${ev.total_slots.toLocaleString()}`,
          ev.waiting_count ? ` · ${ev.waiting_count.toLocaleString()} waiting` : ''));
}

export const statusBadge = (status) => h('span', { class: 'badge-status', 'data-status': status }, statusName(status));

/** "seats 3 and 4", "number 2 on the waitlist, for 3 seats", "seat 5 offered", … (the
 * status badge beside it says the rest). */
export function bookingSummary(b) {
  if (b.status === 'confirmed') return `${seatList(b.seat_numbers)}`;
  if (b.status === 'waiting') {
    const n = b.waiting_number ? `number ${b.waiting_number} on the waitlist` : 'on the waitlist';
    return `${n}, for ${plural(b.seats, 'seat')}`;
  }
  if (b.status === 'offered') return `${seatList(b.seat_numbers)} offered`;
  if (b.status === 'declined') return `${seatList(b.seat_numbers)} offered, declined`;
  if (b.status === 'expired') return `${seatList(b.seat_numbers)} offered, not accepted in time`;
  return `${plural(b.seats_requested || b.seats, 'seat')} asked for`;
}
