// My bookings: every booking of mine, newest first, with what I can do with each.
import { api } from '../api.js';
import { bookingItem } from '../booking.js';
import { h, fill } from '../dom.js';
import { titled } from '../layout.js';

const PAGE = 50;

export async function render(main, _params, ctx) {
  let stops = [];
  let shown = PAGE;
  const list = h('ul', { class: 'bookings' });
  const more = h('button', { type: 'button' }, 'Show more');
  const load = async () => {
    const rows = await api('GET', `/bookings/user/${ctx.me.id}?limit=${shown}`);
    stops.forEach((s) => s());
    stops = [];
    fill(list, rows.length
      ? rows.map((b) => {
          const item = bookingItem(b, { onChanged: () => setTimeout(() => load().catch(() => {}), 1500) });
          stops.push(item.stop);
          return item.el;
        })
      : h('li', { class: 'empty' }, 'You have no bookings yet: open an event from the dashboard to book.'));
    more.hidden = rows.length < shown;
  };
  more.addEventListener('click', () => {
    shown += PAGE;
    load().catch(() => {});
  });
  await load();
  fill(main, titled(main, 'My bookings'), list, more);
  return () => stops.forEach((s) => s());
}
