// A path under /app that is no page of the console.
import { h, fill } from '../dom.js';
import { titled } from '../layout.js';

export async function render(main) {
  fill(main,
    titled(main, 'Page not found'),
    h('p', {}, `There is no page at ${location.pathname}.`),
    h('p', {}, h('a', { class: 'button', href: '/app' }, 'Back to the dashboard')));
}
