// Sign-in: through the OpenID Connect provider when the server has one ("Sign in"), or
// with a bearer token pasted into the form (the server prints one when it generated its
// secret; `happening token` mints others).
import { api } from '../api.js';
import { signIn, signOut } from '../auth.js';
import { h, field, fill, region, say } from '../dom.js';
import { titled, actionError } from '../layout.js';
import { loadConfig, start } from '../oidc.js';

export async function render(main, { notice }) {
  const { oidc } = await loadConfig();
  const status = region('alert');
  if (notice) say(status, notice, notice.startsWith('You are signed out') ? 'info' : 'warn');

  const provider = oidc
    ? h('section', { class: 'card', 'aria-labelledby': 'signin-oidc' },
        h('h2', { id: 'signin-oidc' }, 'With your organization account'),
        h('p', {}, `You sign in at ${new URL(oidc.issuer).host} and come back here.`),
        h('button', {
          type: 'button',
          class: 'primary',
          onclick: async () => {
            try {
              await start(oidc, location.pathname + location.search);
            } catch (e) {
              say(status, `Cannot start the sign-in: ${e.message}.`, 'error');
            }
          },
        }, 'Sign in'))
    : null;

  const input = h('input', { type: 'password', name: 'token', autocomplete: 'off', spellcheck: 'false', required: true });
  const form = h('form', { class: 'card', 'aria-labelledby': 'signin-token' },
    h('h2', { id: 'signin-token' }, oidc ? 'Or with an access token' : 'With an access token'),
    field('Access token', input, 'A bearer token (a JWT) for this server: the server prints a sign-in link when it generates its secret, and “happening token” mints tokens.'),
    h('button', { type: 'submit', class: oidc ? '' : 'primary' }, 'Use this token'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const value = input.value.trim();
    if (value.split('.').length !== 3) {
      say(status, 'That is not a token: a bearer token has three parts separated by dots.', 'error');
      input.focus();
      return;
    }
    signIn(value);
    try {
      await api('GET', '/users/me');
    } catch (err) {
      signOut(actionError(err));
    }
  });

  fill(main,
    h('div', { class: 'narrow' },
      titled(main, 'Sign in to Happening'),
      status,
      provider,
      form));
}
