// Notifications: newest first, unread ones marked, each to mark read. Each is the server's
// `message`, but an offer from the waitlist, which says when it ends in local time and where
// to answer it.
import { api } from '../api.js';
import { h, fill, region, say } from '../dom.js';
import { plural, whenShort } from '../format.js';
import { actionError, titled } from '../layout.js';

/** The words of a notification (the server's, which give an offer's end in UTC). */
function text(n) {
  if (n.type !== 'waitlist_offer' || !n.expires_at) return n.message;
  return [`${plural(n.seats, 'seat')} offered to you from the waitlist until ${whenShort(n.expires_at)}: accept or decline on `,
    h('a', { href: '/app/bookings' }, 'My bookings'), '.'];
}

export async function render(main, _params, ctx) {
  const status = region('status');
  const list = h('ul', { class: 'notifications' });
  const markAll = h('button', { type: 'button' }, 'Mark all read');
  const summary = h('p', {});
  const load = async () => {
    const rows = await api('GET', '/notifications?limit=100');
    const unread = rows.filter((n) => !n.read);
    markAll.hidden = unread.length === 0;
    fill(summary, `${unread.length} unread.`);
    fill(list, rows.length
      ? rows.map((n) => {
          const read = h('button', { type: 'button', class: 'quiet' }, 'Mark read');
          read.addEventListener('click', async () => {
            try {
              await api('POST', `/notifications/${n.id}/read`);
              await load();
              ctx.refreshHeader();
            } catch (err) {
              say(status, actionError(err), 'error');
            }
          });
          return h('li', { class: n.read ? 'read' : 'unread' },
            h('p', {}, n.read ? null : h('span', { class: 'dot' }, h('span', { class: 'visually-hidden' }, 'Unread: ')), text(n)),
            h('p', { class: 'meta' }, whenShort(n.created_at), n.event_id ? [' · ', h('a', { href: `/app/events/${n.event_id}` }, 'the event')] : null),
            n.read ? null : read);
        })
      : h('li', { class: 'empty' }, 'No notifications.'));
  };
  markAll.addEventListener('click', async () => {
    try {
      const rows = await api('GET', '/notifications?limit=100');
      for (const n of rows.filter((x) => !x.read)) await api('POST', `/notifications/${n.id}/read`);
      await load();
      ctx.refreshHeader();
      say(status, 'Every notification is read.', 'ok');
    } catch (err) {
      say(status, actionError(err), 'error');
    }
  });
  await load();
  fill(main, titled(main, 'Notifications'), summary, markAll, status, list);
}
