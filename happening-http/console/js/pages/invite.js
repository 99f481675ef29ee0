// /app/invites/<token>: an invite to an organization, to accept (as the invited email).
import { api } from '../api.js';
import { h, fill, region, say } from '../dom.js';
import { aRole, whenShort } from '../format.js';
import { actionError, titled } from '../layout.js';

export async function render(main, [token], ctx) {
  const inv = await api('GET', `/org-invites/${encodeURIComponent(token)}`);
  const status = region('status');
  const accept = h('button', { type: 'button', class: 'primary' }, 'Accept invite');
  const pending = inv.status === 'pending' && new Date(inv.expires_at) > new Date();
  accept.addEventListener('click', async () => {
    accept.disabled = true;
    try {
      const m = await api('POST', `/org-invites/${encodeURIComponent(token)}/accept`);
      localStorage.setItem('happening.org', m.organization_id);
      await ctx.refreshOrgs();
      const org = ctx.orgs.find((o) => o.id === m.organization_id);
      say(status, `You are now ${aRole(m.role)} of ${org ? org.name : 'the organization'}.`, 'ok',
        h('p', {}, h('a', { class: 'button primary', href: '/app' }, 'Go to the dashboard')));
      accept.hidden = true;
    } catch (err) {
      say(status, actionError(err), 'error');
      accept.disabled = false;
    }
  });
  fill(main,
    h('div', { class: 'narrow' },
      titled(main, 'Invitation'),
      h('p', { class: 'lead' }, `${inv.email} is invited to join an organization as ${aRole(inv.role)}.`),
      h('p', { class: 'meta' }, pending ? `Valid until ${whenShort(inv.expires_at)}.` : `This invite is ${inv.status === 'pending' ? 'expired' : inv.status}.`),
      ctx.me?.email && ctx.me.email.toLowerCase() !== inv.email.toLowerCase()
        ? h('p', { class: 'message', 'data-tone': 'warn' }, `You are signed in as ${ctx.me.email}: only ${inv.email} can accept it.`)
        : null,
      pending ? accept : null,
      status));
}
