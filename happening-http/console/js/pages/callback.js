// /app/callback: the identity provider sends the browser back here with a code.
import { h, fill } from '../dom.js';
import { titled, focusHeading } from '../layout.js';
import { finish, loadConfig } from '../oidc.js';
import { navigate } from '../router.js';

export async function render(main) {
  fill(main, titled(main, 'Signing in…'));
  const { oidc } = await loadConfig();
  try {
    if (!oidc) throw new Error('this server has no identity provider configured');
    const next = await finish(oidc, location.search);
    navigate(next, { replace: true });
  } catch (e) {
    fill(main,
      titled(main, 'Sign-in failed'),
      h('div', { class: 'message alert', role: 'alert', 'data-tone': 'error' }, h('p', {}, `${e.message}.`)),
      h('p', {}, h('a', { class: 'button', href: '/app' }, 'Back to sign-in')));
    focusHeading(main);
  }
}
