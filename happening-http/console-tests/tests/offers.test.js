// Waitlist offers in the browser: an organizer gives an event an offer time on its form; a
// freed seat is offered to the next in line with a countdown, accepted with the keyboard,
// declined (the seats pass to the next, whom an organizer can decline for too), and left to
// run out, which the server's background step ends by itself. axe-core on every page that
// shows an offer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { world, tab, clean, signIn, newEvent, call, axe, screenshot } from './harness.js';

const w = world('Acme Events', [['kim', 'Kim Lee'], ['sam', 'Sam Roe'], ['cat', 'Cat Moe']]);

const card = (page, name) => page.getByRole('listitem').filter({ has: page.getByRole('link', { name, exact: true }) });
/** Checks each tab stayed clean, then closes it. */
const done = async (...pages) => {
  for (const p of pages) {
    clean(p);
    await p.context().close();
  }
};
const bookingOf = async (p, eventId) => (await call(w.base, p.tok, 'GET', `/bookings/user/${p.id}`)).find((b) => b.event_id === eventId);

test('an offer time set on the form; an offer with a countdown, accepted with the keyboard', async () => {
  const admin = await tab(w.browser);
  await signIn(admin, w.base, w.admin.tok);
  await admin.getByRole('link', { name: 'New event' }).click();
  await admin.getByLabel('Name', { exact: true }).fill('Encore');
  await admin.getByLabel('Date and time').fill('2031-03-01T20:00');
  await admin.getByLabel('Capacity (seats)').fill('2');
  // Out of the server's bounds: refused in its own words, the field marked.
  const offerTime = admin.getByLabel('Offer time (seconds)');
  await offerTime.fill('0');
  await admin.getByRole('button', { name: 'Create event' }).click();
  await admin.getByRole('alert').filter({ hasText: 'The server said: invalid offer_ttl_seconds: must be between 1 and 2592000, or null.' }).waitFor();
  assert.equal(await offerTime.getAttribute('aria-invalid'), 'true');
  await offerTime.fill('600');
  await admin.getByRole('button', { name: 'Create event' }).click();
  await admin.getByRole('heading', { name: 'Encore' }).waitFor();
  await admin.getByText('When seats free up, they are offered to the next in line for 10 minutes, to accept or decline.').waitFor();
  const id = new URL(admin.url()).pathname.split('/').pop();
  assert.equal((await call(w.base, w.admin.tok, 'GET', `/events/${id}`)).offer_ttl_seconds, 600);
  await admin.getByRole('link', { name: 'Edit event' }).click();
  assert.equal(await admin.getByLabel('Offer time (seconds)').inputValue(), '600');

  // Kim takes every seat; Sam books in the browser and waits.
  const kims = await call(w.base, w.people.kim.tok, 'POST', '/bookings', { event_id: id, seats: 2 });
  const page = await tab(w.browser);
  await signIn(page, w.base, w.people.sam.tok, `/app/events/${id}`);
  await page.getByRole('status').filter({ hasText: /^live$/ }).waitFor();
  await page.getByLabel('Seats', { exact: true }).fill('2');
  await page.getByRole('button', { name: 'Book', exact: true }).click();
  await page.locator('.book-form [role=status]').last()
    .filter({ hasText: 'Too few seats are free: you are on the waitlist, number 1, for 2 seats. When seats free up, they are offered to the next in line for 10 minutes' })
    .waitFor();

  // Kim cancels: Sam's event page, live, shows the offer.
  await call(w.base, w.people.kim.tok, 'POST', `/bookings/${kims.id}/cancel`);
  const mine = page.getByRole('region', { name: 'Your bookings for this event' });
  await mine.getByRole('button', { name: 'Accept offer' }).waitFor();
  await mine.getByText(/^You are offered seats 1 and 2 until .+: \d+:\d\d left\.$/).waitFor();
  await page.getByRole('button', { name: 'Seat 1, held' }).waitFor();
  await axe(page, 'the event page with an offer');

  // And so does My bookings, counting down.
  await page.getByRole('link', { name: 'My bookings' }).click();
  const offer = card(page, 'Encore');
  const timer = offer.getByRole('timer');
  await timer.waitFor();
  const first = await timer.innerText();
  assert.match(first, /^\d+:\d\d left$/);
  await offer.getByText('Offered', { exact: true }).waitFor();
  await screenshot(page, 'offer');
  await axe(page, 'My bookings with an offer');
  // It counts down, a second at a time.
  await page.waitForFunction((before) => document.querySelector('[role=timer]')?.textContent !== before, first);

  await offer.getByRole('button', { name: 'Accept offer' }).focus();
  await page.keyboard.press('Enter');
  await offer.getByText('Offer accepted: seats 1 and 2 are yours.').waitFor();
  const accepted = card(page, 'Encore');
  await accepted.getByText('Confirmed', { exact: true }).waitFor();
  await accepted.getByText(/^seats 1 and 2/).waitFor();
  await accepted.getByText('History').click();
  await accepted.getByText(/Offered from the waitlist: seats 1 and 2/).waitFor();
  await accepted.getByText(/Offer accepted: seats 1 and 2/).waitFor();
  const sams = await bookingOf(w.people.sam, id);
  assert.deepEqual([sams.status, sams.seat_numbers], ['confirmed', [1, 2]]);
  await done(admin, page);
});

test('a declined offer passes the seats to the next in line, whom an organizer can decline for', async () => {
  const ev = await newEvent(w.base, w.admin.tok, w.org, { name: 'Small hall', total_slots: 1, offer_ttl_seconds: 600 });
  const kims = await call(w.base, w.people.kim.tok, 'POST', '/bookings', { event_id: ev.id, seats: 1 });
  await call(w.base, w.people.sam.tok, 'POST', '/bookings', { event_id: ev.id, seats: 1 });
  await call(w.base, w.people.cat.tok, 'POST', '/bookings', { event_id: ev.id, seats: 1 });
  await call(w.base, w.people.kim.tok, 'POST', `/bookings/${kims.id}/cancel`);

  const sam = await tab(w.browser);
  await signIn(sam, w.base, w.people.sam.tok, '/app/bookings');
  await card(sam, 'Small hall').getByRole('button', { name: 'Decline offer' }).click();
  await card(sam, 'Small hall').getByText('Offer declined: the seats go to the next person waiting.').waitFor();
  await card(sam, 'Small hall').getByText('Declined', { exact: true }).waitFor();
  await card(sam, 'Small hall').getByText('seat 1 offered, declined').waitFor();
  for (const name of ['Accept offer', 'Decline offer', 'Cancel booking']) {
    assert.equal(await card(sam, 'Small hall').getByRole('button', { name }).count(), 0, `no ${name} on a declined offer`);
  }

  // Cat, next in line, is offered seat 1: told in a notification, answered on My bookings.
  const cat = await tab(w.browser);
  await signIn(cat, w.base, w.people.cat.tok, '/app/notifications');
  const told = cat.getByRole('listitem').filter({ hasText: /Unread: 1 seat offered to you from the waitlist until .+: accept or decline on My bookings\./ });
  await told.waitFor();
  await axe(cat, 'the notifications page with an offer');
  await told.getByRole('link', { name: 'My bookings' }).click();
  await card(cat, 'Small hall').getByRole('button', { name: 'Accept offer' }).waitFor();
  await card(cat, 'Small hall').getByText(/^You are offered seat 1 until .+: \d+:\d\d left\.$/).waitFor();
  assert.equal((await bookingOf(w.people.cat, ev.id)).status, 'offered');

  // The organizer sees the open offer among the attendees and declines it for Cat.
  const admin = await tab(w.browser);
  await signIn(admin, w.base, w.admin.tok, `/app/events/${ev.id}/attendees`);
  await admin.getByLabel('Status').selectOption('offered');
  await admin.getByRole('table').getByText('Offered bookings, 1–1').waitFor();
  const row = admin.getByRole('row').filter({ hasText: 'Cat Moe' });
  await row.filter({ hasText: /Offered until .+ Decline offer/ }).waitFor();
  await axe(admin, 'the attendees page with an offer');
  await row.getByRole('button', { name: 'Decline offer for Cat Moe' }).click();
  await admin.getByText('The offer to Cat Moe is declined: its seats go to the next in line.').waitFor();
  await admin.getByRole('table').getByText('Offered bookings, none').waitFor();
  await admin.getByLabel('Status').selectOption('declined');
  await admin.getByRole('row').filter({ hasText: 'Sam Roe' }).getByText('Declined', { exact: true }).waitFor();
  await admin.getByRole('row').filter({ hasText: 'Cat Moe' }).getByText('Declined', { exact: true }).waitFor();
  assert.equal((await bookingOf(w.people.cat, ev.id)).status, 'declined');
  assert.deepEqual((await call(w.base, w.admin.tok, 'GET', `/events/${ev.id}/seats`)).held, [], 'nobody else waits: the seat is free');
  await done(sam, cat, admin);
});

test('an offer nobody answers expires by itself, and the page says so', async () => {
  const ev = await newEvent(w.base, w.admin.tok, w.org, { name: 'Last call', total_slots: 1, offer_ttl_seconds: 2 });
  const kims = await call(w.base, w.people.kim.tok, 'POST', '/bookings', { event_id: ev.id, seats: 1 });
  await call(w.base, w.people.sam.tok, 'POST', '/bookings', { event_id: ev.id, seats: 1 });
  const page = await tab(w.browser);
  await signIn(page, w.base, w.people.sam.tok, `/app/events/${ev.id}`);
  await page.getByRole('status').filter({ hasText: /^live$/ }).waitFor();
  await page.getByText('offered to the next in line for 2 seconds').waitFor();
  await call(w.base, w.people.kim.tok, 'POST', `/bookings/${kims.id}/cancel`);
  // My bookings, opened at once, has no live stream: it reads the booking again once the
  // countdown is over.
  const list = await tab(w.browser);
  await signIn(list, w.base, w.people.sam.tok, '/app/bookings');

  // Nobody touches the pages: the server's background step ends the offer, they follow.
  const mine = page.getByRole('region', { name: 'Your bookings for this event' });
  await mine.getByText('Expired', { exact: true }).waitFor({ timeout: 20000 });
  await card(list, 'Last call').getByText('Expired', { exact: true }).waitFor({ timeout: 20000 });
  await card(list, 'Last call').getByText('seat 1 offered, not accepted in time').waitFor();
  await mine.getByText('seat 1 offered, not accepted in time').waitFor();
  assert.equal(await mine.getByRole('button', { name: 'Accept offer' }).count(), 0);
  await page.getByRole('button', { name: 'Seat 1, available' }).waitFor();
  const sams = await bookingOf(w.people.sam, ev.id);
  assert.equal(sams.status, 'expired');
  const history = await call(w.base, w.people.sam.tok, 'GET', `/bookings/${sams.id}/history`);
  assert.deepEqual(history.map((e) => e.action), ['created', 'offered', 'expired']);
  await axe(page, 'the event page with an expired offer');
  await done(page, list);
});
