// Booking in the browser: the live seat map shared by two people, booking chosen seats, any
// N seats and the waitlist, cancelling on "My bookings", booking with the keyboard only, and
// the API's refusals in its own words.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { world, tab, clean, signIn, newEvent, call, axe, screenshot } from './harness.js';

const w = world('Acme Events', [['kim', 'Kim Lee'], ['sam', 'Sam Roe']]);

const seat = (page, n, state) => page.getByRole('button', { name: `Seat ${n}, ${state}`, exact: true });
const outcome = (page) => page.locator('.book-form [role=status]').last();

test('two people on one event page see each other’s bookings within 2 s', async () => {
  const ev = await newEvent(w.base, w.admin.tok, w.org, { name: 'Shared gig', category: 'concert', description: 'An evening of new music.', total_slots: 60 });
  await call(w.base, w.admin.tok, 'POST', `/events/${ev.id}/holds`, { seat_numbers: [31, 32, 33, 34], ttl_seconds: 3600 });
  const a = await tab(w.browser);
  const b = await tab(w.browser);
  await signIn(a, w.base, w.people.kim.tok, `/app/events/${ev.id}`);
  await signIn(b, w.base, w.people.sam.tok, `/app/events/${ev.id}`);
  for (const p of [a, b]) await p.getByRole('status').filter({ hasText: /^live$/ }).waitFor();

  await seat(a, 5, 'available').click();
  await seat(a, 6, 'available').click();
  await a.getByRole('button', { name: 'Book', exact: true }).click();
  await outcome(a).filter({ hasText: 'Booked: seats 5 and 6.' }).waitFor();
  await seat(a, 5, 'yours').waitFor();
  // The other person's map follows within 2 s, with no reload.
  await seat(b, 5, 'taken').waitFor({ timeout: 2000 });
  await seat(b, 6, 'taken').waitFor({ timeout: 2000 });
  assert.equal(await seat(b, 6, 'taken').getAttribute('aria-disabled'), 'true');

  // And the other way round.
  await seat(b, 12, 'available').click();
  await b.getByRole('button', { name: 'Book', exact: true }).click();
  await seat(a, 12, 'taken').waitFor({ timeout: 2000 });
  await a.getByText('53 seats').first().waitFor();
  await seat(a, 31, 'held').waitFor();
  for (const n of [25, 26]) await seat(a, n, 'available').click();
  await screenshot(a, 'event');
  clean(a);
  clean(b);
  await a.context().close();
  await b.context().close();
});

test('booking chosen seats, then any number, then a place on the waitlist', async () => {
  const ev = await newEvent(w.base, w.admin.tok, w.org, { name: 'Small room', total_slots: 12 });
  const page = await tab(w.browser);
  await signIn(page, w.base, w.people.kim.tok, `/app/events/${ev.id}`);
  for (const n of [3, 4, 5]) await seat(page, n, 'available').click();
  assert.equal(await seat(page, 4, 'available').getAttribute('aria-pressed'), 'true');
  await page.getByText('Selected: seats 3, 4 and 5.').waitFor();
  // A seat clicked twice leaves the selection.
  await seat(page, 5, 'available').click();
  assert.equal(await seat(page, 5, 'available').getAttribute('aria-pressed'), 'false');
  await page.getByRole('button', { name: 'Book', exact: true }).click();
  await outcome(page).filter({ hasText: 'Booked: seats 3 and 4.' }).waitFor();

  await page.getByLabel('Seats', { exact: true }).fill('6');
  await page.getByRole('button', { name: 'Book', exact: true }).click();
  await outcome(page).filter({ hasText: 'Booked: seats 1, 2 and 5–8.' }).waitFor();

  await page.getByLabel('Seats', { exact: true }).fill('9');
  await page.getByRole('button', { name: 'Book', exact: true }).click();
  await outcome(page).filter({ hasText: 'Too few seats are free: you are on the waitlist, number 1, for 9 seats.' }).waitFor();
  await page.getByText('number 1 on the waitlist, for 9 seats').waitFor();
  await axe(page, 'the event page');
  clean(page);
  await page.context().close();
});

test('cancelling some seats, then the whole booking, on My bookings', async () => {
  const ev = await newEvent(w.base, w.admin.tok, w.org, { name: 'Lecture', total_slots: 10 });
  await call(w.base, w.people.sam.tok, 'POST', '/bookings', { event_id: ev.id, seat_numbers: [2, 3, 4] });
  const page = await tab(w.browser);
  await signIn(page, w.base, w.people.sam.tok, '/app/bookings');
  const card = page.getByRole('listitem').filter({ has: page.getByRole('link', { name: 'Lecture' }) });
  await card.getByText('seats 2, 3 and 4').waitFor();
  await card.getByRole('checkbox', { name: 'Seat 3' }).check();
  await card.getByRole('button', { name: 'Cancel chosen seats' }).click();
  await card.getByText('Cancelled seat 3; you keep seats 2 and 4.').waitFor();
  // The list reads the booking again.
  await page.getByRole('listitem').filter({ has: page.getByRole('link', { name: 'Lecture' }) }).getByText(/^seats 2 and 4/).waitFor();
  const fresh = page.getByRole('listitem').filter({ has: page.getByRole('link', { name: 'Lecture' }) });
  await fresh.getByText('History').click();
  await fresh.getByText(/Booked: seats 2, 3 and 4/).waitFor();
  await fresh.getByText(/Seats cancelled: seat 3/).waitFor();
  await screenshot(page, 'bookings');
  await axe(page, 'My bookings');
  await fresh.getByRole('button', { name: 'Cancel booking' }).click();
  await fresh.getByText('Booking cancelled.').waitFor();
  const after = await call(w.base, w.people.sam.tok, 'GET', `/bookings/user/${w.people.sam.id}`);
  assert.equal(after.find((b) => b.event_id === ev.id).status, 'cancelled');
  clean(page);
  await page.context().close();
});

test('booking with the keyboard only', async () => {
  const ev = await newEvent(w.base, w.admin.tok, w.org, { name: 'Keyboard night', total_slots: 30 });
  const page = await tab(w.browser);
  await signIn(page, w.base, w.people.kim.tok, `/app/events/${ev.id}`);
  await page.getByRole('status').filter({ hasText: /^live$/ }).waitFor();
  const focused = () => page.evaluate(() => document.activeElement?.getAttribute('aria-label') || document.activeElement?.textContent?.trim());
  // Tab into the map: one stop for the whole grid (a roving tabindex).
  for (let i = 0; i < 40 && !(await focused())?.startsWith('Seat '); i += 1) await page.keyboard.press('Tab');
  assert.equal(await focused(), 'Seat 1, available');
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('ArrowRight');
  assert.equal(await focused(), 'Seat 3, available');
  await page.keyboard.press('Space');
  await page.keyboard.press('ArrowDown');
  assert.equal(await focused(), 'Seat 13, available');
  await page.keyboard.press('Enter');
  await page.keyboard.press('End');
  assert.equal(await focused(), 'Seat 20, available');
  await page.keyboard.press('Home');
  assert.equal(await focused(), 'Seat 11, available');
  await page.getByText('Selected: seats 3 and 13.').waitFor();
  // Tab leaves the map in one step, then on to Book.
  for (let i = 0; i < 10 && (await focused()) !== 'Book'; i += 1) await page.keyboard.press('Tab');
  assert.equal(await focused(), 'Book');
  await page.keyboard.press('Enter');
  await outcome(page).filter({ hasText: 'Booked: seats 3 and 13.' }).waitFor();
  clean(page);
  await page.context().close();
});

test('the API’s refusals in its own words, each page left usable', async () => {
  const page = await tab(w.browser);
  // 409: sold out with no waitlist.
  const full = await newEvent(w.base, w.admin.tok, w.org, { name: 'Sold out', total_slots: 1, waitlist_max: 0 });
  await call(w.base, w.people.sam.tok, 'POST', '/bookings', { event_id: full.id, seats: 1 });
  await signIn(page, w.base, w.people.kim.tok, `/app/events/${full.id}`);
  await page.getByRole('button', { name: 'Book', exact: true }).click();
  await outcome(page).filter({ hasText: 'The server said: sold out and the waitlist is full.' }).waitFor();
  assert.equal(await page.getByRole('button', { name: 'Book', exact: true }).isEnabled(), true, 'the page stays usable');

  // 404: no such event.
  await page.goto(`${w.base}/app/events/0b6e4c1e-0000-4000-8000-000000000000`);
  await page.getByRole('heading', { name: 'Not found' }).waitFor();
  await page.getByText('The server said: event not found.').waitFor();
  await axe(page, 'a failed page');
  await page.getByRole('link', { name: 'Back to the dashboard' }).click();
  await page.getByRole('heading', { name: /Hello/ }).waitFor();

  // 403: a member on the organizers' page.
  await page.goto(`${w.base}/app/events/${full.id}/attendees`);
  await page.getByRole('heading', { name: 'Not allowed' }).waitFor();
  await page.getByText(/The server said: .*organizer/).waitFor();
  await page.getByRole('link', { name: 'Back to the dashboard' }).waitFor();

  // 503 and 429, as a store outage or a rate limit would answer them, then the way on.
  for (const [status, words, heading, extra] of [
    [503, 'postgres unavailable', 'Service unavailable', {}],
    [429, 'rate limit exceeded', 'Too many requests', { 'retry-after': '2' }],
  ]) {
    await page.route('**/events/*/seats', (r) => r.fulfill({ status, contentType: 'application/json', headers: extra, body: JSON.stringify({ error: words }) }));
    await page.goto(`${w.base}/app/events/${full.id}`);
    await page.getByRole('heading', { name: heading }).waitFor();
    await page.getByText(`The server said: ${words}.`).waitFor();
    await page.unroute('**/events/*/seats');
    await page.getByRole('button', { name: 'Try again' }).click();
    await page.getByRole('heading', { name: 'Sold out' }).waitFor();
  }
  clean(page);
  await page.context().close();
});

test('the map says when it is reconnecting, and follows again once the stream is back', async () => {
  const ev = await newEvent(w.base, w.admin.tok, w.org, { name: 'Flaky network', total_slots: 10 });
  const page = await tab(w.browser);
  await page.route('**/events/*/stream', (r) => r.abort('connectionreset'));
  await signIn(page, w.base, w.people.kim.tok, `/app/events/${ev.id}`);
  await page.getByRole('status').filter({ hasText: 'reconnecting…' }).waitFor();
  await call(w.base, w.people.sam.tok, 'POST', '/bookings', { event_id: ev.id, seat_numbers: [7] });
  await page.unroute('**/events/*/stream');
  // The next try (backoff from 1 s) connects, and the first message brings the change.
  await page.getByRole('status').filter({ hasText: /^live$/ }).waitFor();
  await seat(page, 7, 'taken').waitFor();
  clean(page);
  await page.context().close();
});
