// Organizers and administrators in the browser: creating and editing an event, cancelling
// it (after a confirmation), its attendees by status with the CSV export, the waitlist,
// members and roles, inviting by email and accepting the invite; and notifications.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { world, tab, clean, signIn, organization, newEvent, call, axe, screenshot, token } from './harness.js';

const w = world('Acme Events', [['kim', 'Kim Lee'], ['sam', 'Sam Roe']]);

test('creating, editing and cancelling an event', async () => {
  const page = await tab(w.browser);
  await signIn(page, w.base, w.admin.tok);
  await page.getByRole('link', { name: 'New event' }).click();
  await page.getByRole('heading', { name: 'New event of Acme Events' }).waitFor();
  await axe(page, 'the new-event form');
  await page.getByLabel('Name', { exact: true }).fill('Summer festival');
  await page.getByLabel('Date and time').fill('2031-07-14T18:30');
  await page.getByLabel('Category').fill('concert');
  await page.getByLabel('Capacity (seats)').fill('40');
  await page.getByLabel('Waitlist policy').selectOption('first_fit');
  await page.getByLabel('Waitlist cap').fill('5');
  await page.getByRole('button', { name: 'Create event' }).click();
  await page.getByRole('heading', { name: 'Summer festival' }).waitFor();
  const id = new URL(page.url()).pathname.split('/').pop();
  let ev = await call(w.base, w.admin.tok, 'GET', `/events/${id}`);
  assert.deepEqual([ev.total_slots, ev.waitlist_policy, ev.waitlist_max, ev.category], [40, 'first_fit', 5, 'concert']);

  // A change the server refuses is told in its words: seat 40 is taken.
  await call(w.base, w.people.sam.tok, 'POST', '/bookings', { event_id: id, seat_numbers: [40] });
  await page.getByRole('link', { name: 'Edit event' }).click();
  await page.getByLabel('Capacity (seats)').fill('10');
  await page.getByRole('button', { name: 'Save changes' }).click();
  await page.getByRole('alert').filter({ hasText: 'The server said: capacity below the highest taken seat (40).' }).waitFor();
  await page.getByLabel('Name', { exact: true }).fill('Summer festival (late)');
  await page.getByLabel('Capacity (seats)').fill('48');
  await page.getByLabel('Waitlist cap').fill('');
  await page.getByRole('button', { name: 'Save changes' }).click();
  await page.getByRole('heading', { name: 'Summer festival (late)' }).waitFor();
  await page.getByRole('button', { name: 'Seat 48, available' }).waitFor();
  ev = await call(w.base, w.admin.tok, 'GET', `/events/${id}`);
  assert.deepEqual([ev.total_slots, ev.waitlist_max], [48, null]);

  await call(w.base, w.people.kim.tok, 'POST', '/bookings', { event_id: id, seats: 2 });
  await page.getByRole('button', { name: 'Cancel event' }).click();
  const dialog = page.getByRole('dialog', { name: 'Cancel “Summer festival (late)”?' });
  await dialog.waitFor();
  await axe(page, 'the cancel-event confirmation');
  await dialog.getByRole('button', { name: 'Keep the event' }).click();
  assert.equal((await call(w.base, w.admin.tok, 'GET', `/events/${id}`)).status, 'upcoming', 'nothing without the confirmation');
  await page.getByRole('button', { name: 'Cancel event' }).click();
  await dialog.getByRole('button', { name: 'Yes, cancel the event' }).click();
  await page.getByText('This event is cancelled: its seats can no longer be booked.').waitFor();
  assert.equal(await page.getByRole('button', { name: 'Book', exact: true }).isDisabled(), true);
  ev = await call(w.base, w.admin.tok, 'GET', `/events/${id}`);
  assert.equal(ev.status, 'cancelled');
  const kims = await call(w.base, w.people.kim.tok, 'GET', `/bookings/user/${w.people.kim.id}`);
  assert.equal(kims.find((b) => b.event_id === id).status, 'cancelled');
  clean(page);
  await page.context().close();
});

test('attendees by status, the CSV export and the waitlist', async () => {
  const ev = await newEvent(w.base, w.admin.tok, w.org, { name: 'Workshop', total_slots: 4 });
  await call(w.base, w.people.kim.tok, 'POST', '/bookings', { event_id: ev.id, seat_numbers: [1, 2, 3] });
  await call(w.base, w.people.sam.tok, 'POST', '/bookings', { event_id: ev.id, seats: 2 });
  await call(w.base, w.admin.tok, 'POST', '/bookings', { event_id: ev.id, seats: 3 });
  const page = await tab(w.browser, { acceptDownloads: true });
  await signIn(page, w.base, w.admin.tok, `/app/events/${ev.id}`);
  await page.getByRole('link', { name: 'Attendees and waitlist' }).click();
  await page.getByRole('heading', { name: 'Attendees of “Workshop”' }).waitFor();
  const rows = page.getByRole('table').getByRole('row');
  await rows.filter({ hasText: 'Kim Lee' }).filter({ hasText: 'seats 1, 2 and 3' }).waitFor();
  assert.equal(await rows.count(), 4, 'a header and three bookings');
  await page.getByLabel('Status').selectOption('waiting');
  await page.getByRole('table').getByText('Waiting bookings, 1–2').waitFor();
  assert.equal(await rows.filter({ hasText: 'Kim Lee' }).count(), 0);
  await rows.filter({ hasText: 'Sam Roe' }).waitFor();
  assert.match(page.url(), /status=waiting$/);

  const waitlist = page.getByRole('region', { name: 'Waitlist' }).or(page.locator('section[aria-labelledby=wait-heading]'));
  const order = await waitlist.getByRole('listitem').allInnerTexts();
  assert.match(order[0], /^Sam Roe — 2 seats/);
  assert.match(order[1], /^Ada Admin — 3 seats/);
  await screenshot(page, 'attendees');
  await axe(page, 'the attendees page');

  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download CSV' }).click()]);
  const csv = readFileSync(await download.path(), 'utf8');
  const lines = csv.trim().split('\r\n');
  assert.equal(lines[0], 'booking_id,status,seats,seat_numbers,user_id,user_email,user_name,created_at,updated_at');
  assert.equal(lines.length, 3, 'the waiting ones, as filtered');
  assert.ok(lines[1].includes(',waiting,2,,') && lines[1].includes('sam@example.com,Sam Roe'), lines[1]);
  assert.match(download.suggestedFilename(), /^attendees-Workshop-waiting\.csv$/);
  clean(page);
  await page.context().close();
});

test('members and roles, an invite by email, and accepting it', async () => {
  const page = await tab(w.browser);
  await signIn(page, w.base, w.admin.tok);
  await page.getByRole('link', { name: 'Members and invites' }).click();
  await page.getByRole('heading', { name: 'Members of Acme Events' }).waitFor();
  await page.getByLabel('Role of Kim Lee').selectOption('organizer');
  await page.getByText('Kim Lee is now an organizer.').waitFor();
  const members = await call(w.base, w.admin.tok, 'GET', `/organizations/${w.org.id}/members`);
  assert.equal(members.find((m) => m.user_id === w.people.kim.id).role, 'organizer');
  // The last orgAdmin cannot step down: the server's words.
  await page.getByLabel('Role of Ada Admin').selectOption('user');
  await page.getByRole('status').filter({ hasText: /The server said: .*orgAdmin/ }).waitFor();

  await page.getByLabel('Email').fill('nina@example.com');
  await page.getByLabel('Role', { exact: true }).selectOption('organizer');
  await page.getByRole('button', { name: 'Send invite' }).click();
  const link = await page.getByLabel('Invite link').inputValue();
  assert.match(link, new RegExp(`^${w.base}/app/invites/[^/]+$`));
  await screenshot(page, 'members');
  await axe(page, 'the members page');

  // Someone else's account cannot take it…
  const other = await tab(w.browser);
  await signIn(other, w.base, w.people.sam.tok, new URL(link).pathname);
  await other.getByText('You are signed in as sam@example.com: only nina@example.com can accept it.').waitFor();
  await other.getByRole('button', { name: 'Accept invite' }).click();
  await other.getByText(/The server said: .*another email/).waitFor();
  // …the invited person can.
  const nina = await tab(w.browser);
  await signIn(nina, w.base, token('nina', { email: 'nina@example.com', name: 'Nina New' }), new URL(link).pathname);
  await nina.getByRole('heading', { name: 'Invitation' }).waitFor();
  await axe(nina, 'the invite page');
  await nina.getByRole('button', { name: 'Accept invite' }).click();
  await nina.getByText('You are now an organizer of Acme Events.').waitFor();
  await nina.getByRole('link', { name: 'Go to the dashboard' }).click();
  await nina.getByText('Your role:').waitFor();
  await nina.getByRole('link', { name: 'New event' }).waitFor();
  await page.reload();
  await page.getByRole('row').filter({ hasText: 'Nina New' }).waitFor();
  for (const p of [page, other, nina]) {
    clean(p);
    await p.context().close();
  }
});

test('notifications with an unread count, marked read', async () => {
  const ev = await newEvent(w.base, w.admin.tok, w.org, { name: 'Talk', total_slots: 5 });
  const b = await call(w.base, w.people.sam.tok, 'POST', '/bookings', { event_id: ev.id, seats: 1 });
  await call(w.base, w.people.sam.tok, 'POST', `/bookings/${b.id}/cancel`);
  const page = await tab(w.browser);
  await signIn(page, w.base, w.people.sam.tok);
  const unread = (await call(w.base, w.people.sam.tok, 'GET', '/notifications?limit=100')).filter((n) => !n.read).length;
  assert.ok(unread >= 2);
  await page.getByRole('link', { name: `Notifications ${unread} unread` }).click();
  await page.getByRole('heading', { name: 'Notifications' }).waitFor();
  await page.getByText(`${unread} unread.`).waitFor();
  await axe(page, 'the notifications page');
  await page.getByRole('button', { name: 'Mark read' }).first().click();
  await page.getByRole('link', { name: `Notifications ${unread - 1} unread` }).waitFor();
  await page.getByRole('button', { name: 'Mark all read' }).click();
  await page.getByText('Every notification is read.').waitFor();
  await page.getByRole('link', { name: 'Notifications', exact: true }).waitFor();
  clean(page);
  await page.context().close();
});

test('the dashboard: organizations with my role, a switcher, upcoming events, my bookings', async () => {
  const second = await organization(w.base, w.people.kim, 'Kim’s Club');
  await newEvent(w.base, w.people.kim.tok, second, { name: 'Club night', total_slots: 8 });
  await newEvent(w.base, w.admin.tok, w.org, { name: 'Autumn gala', total_slots: 120, event_date: '2031-10-01T19:00:00Z' });
  const page = await tab(w.browser);
  await signIn(page, w.base, w.people.kim.tok);
  await page.getByLabel('Organization', { exact: true }).selectOption({ label: 'Acme Events (organizer)' });
  await page.getByRole('heading', { name: 'Upcoming events of Acme Events' }).waitFor();
  await page.getByRole('link', { name: 'Autumn gala' }).waitFor();
  await screenshot(page, 'dashboard');
  await axe(page, 'the dashboard');
  await page.getByLabel('Organization', { exact: true }).selectOption({ label: 'Kim’s Club (administrator)' });
  await page.getByRole('link', { name: 'Club night' }).waitFor();
  assert.equal(await page.getByRole('link', { name: 'Autumn gala' }).count(), 0);
  clean(page);
  await page.context().close();
});
