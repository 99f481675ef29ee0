// An organization's members and roles; for its administrators, changing roles, removing
// members and inviting people by email (the invite link is shown to pass on).
import { api } from '../api.js';
import { h, field, fill, region, say } from '../dom.js';
import { aRole, roleName, whenShort } from '../format.js';
import { actionError, titled } from '../layout.js';

const ROLES = ['user', 'organizer', 'orgAdmin'];

export async function render(main, [orgId], ctx) {
  const org = await api('GET', `/organizations/${orgId}`);
  const admin = org.role === 'orgAdmin';
  const status = region('status');
  const body = h('tbody');

  const load = async () => {
    const members = await api('GET', `/organizations/${orgId}/members`);
    fill(body, members.map((m) => {
      const who = m.name || m.email || m.user_id;
      let roleCell = roleName(m.role);
      const actions = [];
      if (admin) {
        const select = h('select', { 'aria-label': `Role of ${who}` }, ROLES.map((r) => h('option', { value: r, selected: r === m.role }, roleName(r))));
        select.addEventListener('change', async () => {
          try {
            await api('PUT', `/organizations/${orgId}/members/${m.user_id}`, { body: { role: select.value } });
            say(status, `${who} is now ${aRole(select.value)}.`, 'ok');
            if (m.user_id === ctx.me.id) await ctx.refreshOrgs();
            await load();
          } catch (err) {
            select.value = m.role;
            say(status, actionError(err), 'error');
          }
        });
        roleCell = select;
      }
      if (admin || m.user_id === ctx.me.id) {
        const remove = h('button', { type: 'button', class: 'quiet danger' }, m.user_id === ctx.me.id ? 'Leave' : `Remove ${who}`);
        remove.addEventListener('click', async () => {
          try {
            await api('DELETE', `/organizations/${orgId}/members/${m.user_id}`);
            if (m.user_id === ctx.me.id) {
              await ctx.refreshOrgs();
              ctx.navigate('/app');
              return;
            }
            say(status, `${who} was removed.`, 'ok');
            await load();
          } catch (err) {
            say(status, actionError(err), 'error');
          }
        });
        actions.push(remove);
      }
      return h('tr', {},
        h('td', {}, m.name || '—', m.user_id === ctx.me.id ? h('span', { class: 'meta' }, ' (you)') : null),
        h('td', {}, m.email || '—'),
        h('td', {}, roleCell),
        h('td', {}, whenShort(m.created_at)),
        h('td', {}, actions));
    }));
  };

  let inviteSection = null;
  if (admin) {
    const email = h('input', { type: 'email', name: 'email', required: true, autocomplete: 'off' });
    const role = h('select', { name: 'role' }, ROLES.map((r) => h('option', { value: r }, roleName(r))));
    const result = region('status');
    const form = h('form', { class: 'inline-form' }, field('Email', email), field('Role', role), h('button', { type: 'submit' }, 'Send invite'));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      try {
        const inv = await api('POST', '/org-invites', { body: { organization_id: orgId, email: email.value, role: role.value } });
        const link = `${location.origin}/app/invites/${encodeURIComponent(inv.token)}`;
        const out = h('input', { type: 'text', readonly: true, value: link, class: 'link-out' });
        const copy = h('button', { type: 'button', class: 'quiet' }, 'Copy link');
        copy.addEventListener('click', async () => {
          out.select();
          try {
            await navigator.clipboard.writeText(link);
            copy.textContent = 'Copied';
          } catch {
            copy.textContent = 'Select and copy the link';
          }
        });
        say(result, `Invite for ${inv.email} as ${aRole(inv.role)}, valid until ${whenShort(inv.expires_at)}. Send them this link:`, 'ok',
          h('div', { class: 'copy-row' }, field('Invite link', out), copy));
        email.value = '';
      } catch (err) {
        say(result, actionError(err), 'error');
      }
    });
    inviteSection = h('section', { class: 'card', 'aria-labelledby': 'invite-heading' }, h('h2', { id: 'invite-heading' }, 'Invite someone'), form, result);
  }

  await load();
  fill(main,
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '/app' }, 'Dashboard'), ' › ', h('span', { 'aria-current': 'page' }, org.name)),
    titled(main, `Members of ${org.name}`),
    h('p', {}, 'Your role: ', h('strong', {}, roleName(org.role))),
    status,
    h('div', { class: 'table-wrap' },
      h('table', { class: 'data' },
        h('caption', { class: 'visually-hidden' }, 'Members and roles'),
        h('thead', {}, h('tr', {}, ['Name', 'Email', 'Role', 'Member since', h('span', { class: 'visually-hidden' }, 'Actions')].map((c) => h('th', { scope: 'col' }, c)))),
        body)),
    inviteSection);
}
