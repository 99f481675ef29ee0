// Notifications: newest first, unread ones marked, each to mark read.
import { api } from '../api.js';
import { h, fill, region, say } from '../dom.js';
import { whenShort } from '../format.js';
import { actionError, titled } from '../layout.js';

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
            h('p', {}, n.read ? null : h('span', { class: 'dot' }, h('span', { class: 'visually-hidden' }, 'Unread: ')), n.message),
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
