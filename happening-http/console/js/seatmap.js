// The seat map: one button per seat, named "Seat N, available" (taken, held, yours), taken
// and held seats aria-disabled, the selection aria-pressed. Arrow keys move through the
// grid (one seat in the tab order at a time: a roving tabindex), Home/End to a row's ends,
// Page Up/Down ten rows, Ctrl+Home/End to the first and last seat.
//
// Large venues: every seat is a real button (findable by assistive technology and by the
// browser's find), built in chunks so that the first rows show at once and the rest follow
// frame by frame; rows off screen are skipped by layout and paint (`content-visibility`),
// and a change touches only the seats that changed. See ARCHITECTURE.md, "The console".
import { h, uid } from './dom.js';

const AVAILABLE = 0;
const TAKEN = 1;
const HELD = 2;
const MINE = 3;
const WORDS = ['available', 'taken', 'held', 'yours'];
const CODES = ['a', 't', 'h', 'm'];

/** Seats a booking may ask for at most (the engine's limit). */
export const SELECTION_MAX = 50;
/** Rows built before the first paint, and per frame after it. */
const FIRST_ROWS = 40;
const ROWS_PER_FRAME = 120;

const afterPaint = (fn) => requestAnimationFrame(() => setTimeout(fn, 0));

export class SeatMap {
  /** `onSelect(selected, note)` after every change of the selection; `note` says why
   * when the map changed it (a selected seat taken by someone else). */
  constructor({ total, onSelect, onNote }) {
    this.onSelect = onSelect;
    this.onNote = onNote;
    this.selected = new Set();
    const help = h('p', { class: 'hint', id: uid('map-help') },
      'Arrow keys move between seats; Enter or Space selects. Home and End go to the ends of a row, Page Up and Page Down ten rows.');
    this.grid = h('div', { class: 'seatmap', role: 'group', 'aria-describedby': help.id });
    this.grid.addEventListener('click', (e) => this.click(e));
    this.grid.addEventListener('keydown', (e) => this.key(e));
    this.el = h('div', { class: 'seatmap-wrap' }, help, this.grid);
    this.reset(total);
  }

  /** Builds the map for `total` seats (again, when the capacity changed). */
  reset(total) {
    this.total = total;
    this.cols = total <= 12 ? total : total <= 200 ? 10 : 20;
    this.state = new Uint8Array(total + 1);
    this.buttons = new Array(total + 1);
    this.built = 0;
    this.focus = 1;
    this.generation = (this.generation || 0) + 1;
    for (const n of [...this.selected]) if (n > total) this.selected.delete(n);
    this.grid.setAttribute('aria-label', `Seat map, ${total.toLocaleString()} seats`);
    this.grid.classList.toggle('small', total <= 200);
    this.grid.replaceChildren();
    if (total === 0) return;
    this.buildRows(FIRST_ROWS);
    const gen = this.generation;
    afterPaint(() => {
      if (gen !== this.generation) return;
      performance.mark('happening:seatmap-first-seats', { detail: { total } });
      this.buildRest(gen);
    });
  }

  buildRest(gen) {
    if (gen !== this.generation) return;
    if (this.built >= this.total) {
      performance.mark('happening:seatmap-all-seats', { detail: { total: this.total } });
      this.grid.dataset.ready = 'true';
      return;
    }
    this.buildRows(ROWS_PER_FRAME);
    requestAnimationFrame(() => this.buildRest(gen));
  }

  label(n, s) {
    return `Seat ${n}, ${WORDS[s]}`;
  }

  /** Appends up to `rows` rows. The markup is made of numbers and fixed words only. */
  buildRows(rows) {
    const parts = [];
    const first = this.built + 1;
    const last = Math.min(this.total, this.built + rows * this.cols);
    for (let start = first; start <= last; start += this.cols) {
      const end = Math.min(last, start + this.cols - 1);
      parts.push(`<div class="seat-row"><span class="row-label" aria-hidden="true">${start}</span>`);
      for (let n = start; n <= end; n += 1) {
        const s = this.state[n];
        const pressed = this.selected.has(n);
        parts.push(
          `<button type="button" class="seat" data-n="${n}" data-s="${CODES[s]}" aria-label="${this.label(n, s)}" aria-pressed="${pressed}"` +
            `${s === AVAILABLE ? '' : ' aria-disabled="true"'} tabindex="${n === this.focus ? 0 : -1}">${n}</button>`,
        );
      }
      parts.push('</div>');
    }
    const tpl = document.createElement('template');
    tpl.innerHTML = parts.join('');
    for (const b of tpl.content.querySelectorAll('button')) this.buttons[Number(b.dataset.n)] = b;
    this.grid.append(tpl.content);
    this.built = last;
  }

  /** The seats as the server sees them: `taken` and `held` numbers, and `mine` (the
   * caller's confirmed seats, among the taken). */
  update({ taken = [], held = [], mine = [] }) {
    const next = new Uint8Array(this.total + 1);
    for (const n of taken) if (n <= this.total) next[n] = TAKEN;
    for (const n of held) if (n <= this.total) next[n] = HELD;
    for (const n of mine) if (n <= this.total && next[n] === TAKEN) next[n] = MINE;
    const lost = [];
    for (let n = 1; n <= this.total; n += 1) {
      if (next[n] === this.state[n]) continue;
      this.state[n] = next[n];
      const b = this.buttons[n];
      if (b) this.paint(b, n);
      if (next[n] !== AVAILABLE && this.selected.delete(n)) {
        lost.push(n);
        if (b) b.setAttribute('aria-pressed', 'false');
      }
    }
    if (lost.length) this.onSelect(this.selected, lost);
  }

  paint(b, n) {
    const s = this.state[n];
    b.dataset.s = CODES[s];
    b.setAttribute('aria-label', this.label(n, s));
    if (s === AVAILABLE) b.removeAttribute('aria-disabled');
    else b.setAttribute('aria-disabled', 'true');
  }

  isAvailable(n) {
    return this.state[n] === AVAILABLE;
  }

  clearSelection() {
    for (const n of this.selected) this.buttons[n]?.setAttribute('aria-pressed', 'false');
    this.selected.clear();
    this.onSelect(this.selected, []);
  }

  click(e) {
    const b = e.target.closest('button.seat');
    if (!b) return;
    const n = Number(b.dataset.n);
    const t0 = e.timeStamp;
    this.moveFocus(n, false);
    if (!this.isAvailable(n)) {
      this.onNote(`Seat ${n} is ${WORDS[this.state[n]]}: it cannot be chosen.`);
      return;
    }
    if (this.selected.has(n)) {
      this.selected.delete(n);
    } else if (this.selected.size >= SELECTION_MAX) {
      this.onNote(`A booking takes at most ${SELECTION_MAX} seats.`);
      return;
    } else {
      this.selected.add(n);
    }
    b.setAttribute('aria-pressed', String(this.selected.has(n)));
    this.onSelect(this.selected, []);
    // From the click to the next frame painted with the seat's new state.
    afterPaint(() => performance.measure('happening:seat-select', { start: t0, end: performance.now(), detail: { total: this.total } }));
  }

  moveFocus(n, focus = true) {
    const target = this.buttons[n];
    if (!target) return;
    const old = this.buttons[this.focus];
    if (old && old !== target) old.tabIndex = -1;
    target.tabIndex = 0;
    this.focus = n;
    if (focus) target.focus();
  }

  key(e) {
    const n = this.focus;
    const col = (n - 1) % this.cols;
    const moves = {
      ArrowRight: n + 1,
      ArrowLeft: n - 1,
      ArrowDown: n + this.cols,
      ArrowUp: n - this.cols,
      Home: e.ctrlKey ? 1 : n - col,
      End: e.ctrlKey ? this.total : Math.min(this.total, n - col + this.cols - 1),
      PageDown: Math.min(this.total, n + 10 * this.cols),
      PageUp: Math.max(1, n - 10 * this.cols),
    };
    if (!(e.key in moves)) return;
    const to = moves[e.key];
    e.preventDefault();
    if (to >= 1 && to <= this.built) this.moveFocus(to);
  }

  /** Moves the keyboard focus to seat `n` (if it is built). */
  focusSeat(n) {
    this.moveFocus(Math.max(1, Math.min(n, this.built)));
  }
}

/** The legend: what each look of a seat means. */
export function legend() {
  const item = (code, text) => h('li', {}, h('span', { class: `swatch seat-like`, 'data-s': code, 'aria-hidden': 'true' }), text);
  return h('ul', { class: 'legend', 'aria-label': 'Legend' },
    item('a', 'Available'),
    h('li', {}, h('span', { class: 'swatch seat-like', 'data-s': 'a', 'data-pressed': 'true', 'aria-hidden': 'true' }), 'Selected'),
    item('m', 'Yours'),
    item('h', 'Held'),
    item('t', 'Taken'),
  );
}
