// A 20,000-seat venue: how soon its first seats show, how long the whole map takes to build,
// and how soon a click shows as a selection; measured inside the page (performance marks the
// map sets itself, from the navigation's start and from the click's event time), beside a
// 100-seat event in the same run. The figures go to results/seatmap.md (and the test's
// output); the test asserts that every seat is there and works, not a time (shared machines).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { world, tab, clean, person, newEvent, call, screenshot, RESULTS } from './harness.js';

const w = world('Stadium');

/** Opens the event page in a fresh tab and reads the map's own marks. */
async function measure(eventId, total, clicks) {
  const page = await tab(w.browser);
  await page.goto(`${w.base}/app/events/${eventId}#access_token=${w.admin.tok}`);
  await page.locator('.seatmap[data-ready=true]').waitFor({ timeout: 60000 });
  const marks = await page.evaluate(() => {
    const one = (name) => performance.getEntriesByName(name)[0]?.startTime;
    return { first: one('happening:seatmap-first-seats'), all: one('happening:seatmap-all-seats') };
  });
  const buttons = await page.evaluate(() => document.querySelectorAll('.seatmap button.seat').length);
  assert.equal(buttons, total, 'one button per seat');
  for (const n of clicks) {
    const seat = page.locator(`button.seat[data-n="${n}"]`);
    // Scrolled to as a person would: its row comes into view, and renders.
    await seat.evaluate((el) => el.parentElement.scrollIntoView({ block: 'center' }));
    await seat.click();
    assert.equal(await seat.getAttribute('aria-pressed'), 'true', `seat ${n} selected`);
  }
  await page.waitForFunction((k) => performance.getEntriesByName('happening:seat-select').length >= k, clicks.length);
  if (total >= 20000) await screenshotTop(page);
  const selects = await page.evaluate(() => performance.getEntriesByName('happening:seat-select').map((m) => m.duration));
  clean(page);
  await page.context().close();
  return { total, first: marks.first, all: marks.all, selects };
}

/** The page as one sees it first (the map scrolled back to its start), not the whole page. */
async function screenshotTop(page) {
  await page.locator('.seatmap').evaluate((el) => el.scrollTo(0, 0));
  await page.evaluate(() => window.scrollTo(0, 0));
  await screenshot(page, 'event-20000-seats', { fullPage: false });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (x) => `${Math.round(x)} ms`;

test('a 20,000-seat map: first seats, the whole map, and a selection, timed in the page', async () => {
  const big = await newEvent(w.base, w.admin.tok, w.org, { name: 'Stadium final', total_slots: 20000 });
  const small = await newEvent(w.base, w.admin.tok, w.org, { name: 'Club gig', total_slots: 100 });
  // A busy venue: 2,000 seats booked by others in blocks of 50 across the hall, 20 held,
  // 4 of the viewer's own.
  const fan = await person(w.base, 'fan', 'Fan');
  await call(w.base, w.admin.tok, 'POST', `/organizations/${w.org.id}/members`, { user_id: fan.id, role: 'user' });
  for (let i = 0; i < 40; i += 1) {
    const seats = Array.from({ length: 50 }, (_, k) => i * 500 + 1 + k);
    await call(w.base, fan.tok, 'POST', '/bookings', { event_id: big.id, seat_numbers: seats });
  }
  await call(w.base, fan.tok, 'POST', `/events/${big.id}/holds`, { seats: 20, ttl_seconds: 3600 });
  await call(w.base, w.admin.tok, 'POST', '/bookings', { event_id: big.id, seat_numbers: [95, 96, 97, 98] });

  const runs = { small: [], big: [] };
  // Alternated, three each: the first load of a run warms the w.browser's caches.
  for (let i = 0; i < 3; i += 1) {
    runs.small.push(await measure(small.id, 100, [40 + i, 60 + i, 80 + i]));
    runs.big.push(await measure(big.id, 20000, [2400 + i, 10201 + i, 19990 + i]));
  }
  const row = (label, rs) => {
    const selects = rs.flatMap((r) => r.selects);
    return `| ${label} | ${ms(median(rs.map((r) => r.first)))} | ${ms(median(rs.map((r) => r.all)))} | ${ms(median(selects))} | ${ms(Math.max(...selects))} |`;
  };
  const report = [
    '# Seat map timings (Chromium, headless)',
    '',
    `${new Date().toISOString()}; three page loads each, medians; times in the page (performance.now()):`,
    'first seats and whole map from the navigation\'s start, selection from the click\'s event time to the next frame painted.',
    '',
    '| event | first seats shown | whole map built | selection shown (median) | selection shown (max) |',
    '|---|---|---|---|---|',
    row('100 seats', runs.small),
    row('20,000 seats (2,004 booked, 20 held)', runs.big),
    '',
  ].join('\n');
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(path.join(RESULTS, 'seatmap.md'), report);
  writeFileSync(path.join(RESULTS, 'seatmap.json'), JSON.stringify(runs, null, 1));
  console.log(report);
  for (const r of [...runs.small, ...runs.big]) {
    assert.ok(r.first > 0 && r.all >= r.first, 'the map marked its first seats, then the whole map');
    assert.equal(r.selects.length, 3, 'each click measured');
  }
});
