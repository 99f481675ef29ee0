// Building the page: elements from data, never HTML from data (names and emails come from
// tokens and forms), so nothing a person typed can run as markup.

/** An element: `h('button', { type: 'button', onclick: f }, 'Book')`. Attributes named
 * `on…` are listeners; `class`, `for`, `aria-*`, `data-*` and the rest are attributes;
 * `false`, `null` and `undefined` leave an attribute out. Children are nodes or text. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      el.addEventListener(name.slice(2), value);
    } else if (name === 'value' && 'value' in el) {
      el.value = value;
    } else {
      el.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let ids = 0;
/** A fresh id for `for`/`aria-describedby` pairs. */
export function uid(prefix = 'id') {
  ids += 1;
  return `${prefix}-${ids}`;
}

/** A labelled form field: `field('Seats', input)`, with an optional hint. */
export function field(label, input, hint) {
  if (!input.id) input.id = uid('f');
  const hintEl = hint ? h('p', { class: 'hint', id: uid('hint') }, hint) : null;
  if (hintEl) input.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: input.id }, label), input, hintEl);
}

/** A message region: `role="status"` (polite) or `role="alert"`. */
export function region(kind = 'status') {
  return h('div', { class: `message ${kind}`, role: kind, 'aria-live': kind === 'alert' ? 'assertive' : 'polite' });
}

/** Shows `text` in a message region with a tone (`ok`, `warn`, `error`, `info`), or empties it. */
export function say(el, text, tone = 'info', ...extra) {
  el.dataset.tone = tone;
  fill(el, text ? h('p', {}, text) : null, ...extra);
}
