// What every browser test shares: the real `happening` server (the debug binary the cargo
// tests built) on a free loopback port with a fixed HS256 secret, tokens from `happening
// token`, the API for setting up data, Debian's Chromium through Playwright, axe-core.
import { spawn, execFileSync } from 'node:child_process';
import { readFileSync, mkdirSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import assert from 'node:assert/strict';
import { before, after } from 'node:test';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(here, '../../..');
export const BIN = process.env.HAPPENING_BIN || path.join(ROOT, 'target/debug/happening');
export const SECRET = 'console-browser-test-secret';
/** Where screenshots go when asked for (`UPDATE_SCREENSHOTS=1`). */
export const SHOTS = path.join(ROOT, 'docs/screenshots');
export const RESULTS = path.resolve(here, '../results');

/** Starts `happening serve` on a free port; resolves once it prints its listening line. */
export async function startServer(args = [], env = {}) {
  const child = spawn(BIN, ['serve', '--host', '127.0.0.1', '--port', '0', '--log-level', 'warn', ...args], {
    env: { PATH: process.env.PATH, HAPPENING_JWT_SECRET: SECRET, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = [];
  const base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line within 30 s: ${lines.join('\n')}`)), 30000);
    child.once('exit', (code) => reject(new Error(`happening exited with ${code}: ${lines.join('\n')}`)));
    createInterface({ input: child.stdout }).on('line', (line) => {
      lines.push(line);
      const m = line.match(/^happening listening on (http:\/\/\S+)$/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
  });
  return {
    base,
    lines,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', resolve);
        child.kill('SIGTERM');
      }),
  };
}

/** A token minted by the binary itself: `happening token --sub ... --secret ...`. */
export function token(sub, { ttl = 3600, email = `${sub}@example.com`, name = null, secret = SECRET } = {}) {
  const args = ['token', '--sub', sub, '--secret', secret, `--ttl=${ttl}`, '--email', email];
  if (name) args.push('--name', name);
  return execFileSync(BIN, args, { encoding: 'utf8' }).trim();
}

/** Calls the API as `tok`; returns the JSON, or throws with the server's words. */
export async function call(base, tok, method, p, body) {
  const res = await fetch(base + p, {
    method,
    headers: { authorization: `Bearer ${tok}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** A person: a token and their user row. */
export async function person(base, sub, name) {
  const tok = token(sub, { name });
  const me = await call(base, tok, 'GET', '/users/me');
  return { sub, tok, id: me.id, name, email: me.email };
}

/** An organization whose orgAdmin is `admin`, with `members` ([person, role]). */
export async function organization(base, admin, name, members = []) {
  const org = await call(base, admin.tok, 'POST', '/organizations', { name });
  for (const [p, role] of members) await call(base, admin.tok, 'POST', `/organizations/${org.id}/members`, { user_id: p.id, role });
  return org;
}

export async function newEvent(base, tok, org, fields) {
  return call(base, tok, 'POST', '/events', { org_id: org.id, event_date: '2030-05-01T19:00:00Z', ...fields });
}

export const LAUNCH = {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
};

export const launch = () => chromium.launch(LAUNCH);

/** A browser tab that fails its test on a page error or a policy violation. */
export async function tab(browser, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...options });
  context.setDefaultTimeout(20000);
  const page = await context.newPage();
  page.problems = [];
  page.on('pageerror', (e) => page.problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // A refused request is logged by the browser as an error; the page shows it in words.
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) page.problems.push(`console: ${m.text()}`);
  });
  return page;
}

export function clean(page) {
  assert.deepEqual(page.problems, [], 'no script error and no Content-Security-Policy violation');
}

/** Signs a tab in with a console link, as the server prints it. */
export async function signIn(page, base, tok, where = '/app') {
  await page.goto(`${base}${where}#access_token=${tok}`);
  try {
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
  } catch (e) {
    const shown = await page.locator('body').innerText().catch(() => '(nothing)');
    throw new Error(`not signed in at ${page.url()}: ${e.message}\nthe page shows: ${shown}\n${page.problems.join('\n')}`);
  }
}

const AXE = readFileSync(path.resolve(here, '../node_modules/axe-core/axe.min.js'), 'utf8');

/** axe-core on the page as it is: no serious or critical violation. (Injected through the
 * driver, which the page's policy does not cover; the page itself runs no inline script.) */
export async function axe(page, what) {
  await page.evaluate(AXE);
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
  });
  const bad = result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad, [], `axe-core on ${what}: ${JSON.stringify(bad, null, 1)}`);
  return result;
}

export async function screenshot(page, name, { fullPage = true } = {}) {
  if (!process.env.UPDATE_SCREENSHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage });
}

/** Polls `fn` until it returns a truthy value, up to `ms`. */
export async function until(fn, ms = 10000, what = 'condition') {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** What a test file works in, set up before its tests and stopped after them: a server, a
 * browser, and an organization whose orgAdmin is Ada, with `members` ([sub, name], role
 * `user`), each a person in `w.people`. */
export function world(orgName, members = []) {
  const w = { people: {} };
  before(async () => {
    w.server = await startServer();
    w.base = w.server.base;
    w.browser = await launch();
    w.admin = await person(w.base, 'ada', 'Ada Admin');
    for (const [sub, name] of members) w.people[sub] = await person(w.base, sub, name);
    w.org = await organization(w.base, w.admin, orgName, Object.values(w.people).map((p) => [p, 'user']));
  });
  after(async () => {
    await w.browser?.close();
    await w.server?.stop();
  });
  return w;
}
