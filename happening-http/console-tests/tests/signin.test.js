// Signing in and out: the link the zero-setup start prints, the "Access token" form, a
// real OpenID Connect provider (authorization code with PKCE), sign-out, an expired token
// and a refused one (the sign-in page comes back with the reason, never a blank page).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, tab, clean, signIn, token, axe, screenshot } from './harness.js';
import { startProvider, CLIENT_ID } from './provider.js';

let browser;
let server;

before(async () => {
  browser = await launch();
  server = await startServer();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const stored = (page) => page.evaluate(() => sessionStorage.getItem('happening.token'));

test('the printed console link signs the tab in and leaves the address bar', async () => {
  // No secret configured: the server makes one and prints a signed-in link.
  const open = await startServer([], { HAPPENING_JWT_SECRET: '' });
  try {
    const line = open.lines.find((l) => l.startsWith('Web console, signed in as dev: '));
    assert.ok(line, open.lines.join('\n'));
    const link = line.split(': ')[1];
    assert.ok(link.startsWith(`${open.base}/app#access_token=`), link);
    assert.match(open.lines.at(-1), /^happening listening on http:\/\/127\.0\.0\.1:\d+$/);
    const page = await tab(browser);
    await page.goto(link);
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
    assert.equal(new URL(page.url()).hash, '', 'the token is gone from the address bar');
    assert.equal(await stored(page), link.split('#access_token=')[1]);
    await page.goBack();
    assert.ok(!page.url().includes('access_token'), 'and from the history');
    await page.goForward();
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
    clean(page);
    await page.context().close();
  } finally {
    await open.stop();
  }
});

test('the Access token form, a refused token, and signing out', async () => {
  const page = await tab(browser);
  await page.goto(`${server.base}/app/bookings`);
  await page.getByRole('heading', { name: 'Sign in to Happening' }).waitFor();
  assert.equal(await page.getByRole('button', { name: 'Sign in', exact: true }).count(), 0, 'no provider configured, no provider button');
  await screenshot(page, 'sign-in');
  await axe(page, 'the sign-in page');

  // A token of another server: refused in the server's words, still on the sign-in page.
  await page.getByLabel('Access token', { exact: true }).fill(token('eve', { secret: 'another-secret' }));
  await page.getByRole('button', { name: 'Use this token' }).click();
  await page.getByRole('alert').filter({ hasText: 'token signature does not verify' }).waitFor();
  await page.getByLabel('Access token', { exact: true }).waitFor();
  assert.equal(await stored(page), null);

  await page.getByLabel('Access token', { exact: true }).fill(token('rita', { name: 'Rita Form' }));
  await page.getByRole('button', { name: 'Use this token' }).click();
  await page.getByRole('heading', { name: 'My bookings' }).waitFor();
  await page.getByText('Signed in as Rita Form').waitFor();

  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in to Happening' }).waitFor();
  await page.getByText('You are signed out.').waitFor();
  assert.equal(await stored(page), null);
  await page.reload();
  await page.getByLabel('Access token', { exact: true }).waitFor();
  clean(page);
  await page.context().close();
});

test('an expired token brings the sign-in back with a message', async () => {
  const page = await tab(browser);
  await signIn(page, server.base, token('brief', { ttl: 3 }), '/app/notifications');
  await page.getByRole('heading', { name: 'Notifications' }).waitFor();
  await page.getByText('Your sign-in has expired. Sign in again to continue.').waitFor({ timeout: 8000 });
  await page.getByLabel('Access token', { exact: true }).waitFor();
  assert.equal(await stored(page), null);
  // A token already expired (the server allows 30 s of clock leeway; the page does not).
  await page.goto(`${server.base}/app#access_token=${token('late', { ttl: -5 })}`);
  await page.getByText('Your sign-in has expired. Sign in again to continue.').waitFor();
  clean(page);
  await page.context().close();
});

test('signing in and out through an OpenID Connect provider', async () => {
  const provider = await startProvider({ olivia: { email: 'olivia@example.com', name: 'Olivia Provider' } });
  const oidc = await startServer(['--oidc-issuer', provider.issuer, '--oidc-client-id', CLIENT_ID], { HAPPENING_JWT_SECRET: '' });
  provider.allow(oidc.base);
  try {
    assert.ok(!oidc.lines.some((l) => l.includes('#access_token=')), 'with a provider, no generated token');
    const config = await (await fetch(`${oidc.base}/app/config.json`)).json();
    assert.equal(config.oidc.issuer, provider.issuer);
    const page = await tab(browser);
    await page.goto(`${oidc.base}/app/bookings`);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    // The provider's own pages: log in, then consent.
    await page.waitForURL((u) => u.origin === provider.issuer);
    await page.locator('input[name=login]').fill('olivia');
    await page.locator('input[name=password]').fill('any password');
    await page.locator('button[type=submit]').click();
    await page.locator('button[type=submit]').filter({ hasText: /continue/i }).click();
    // Back in the console, on the page the sign-in started from.
    await page.getByRole('heading', { name: 'My bookings' }).waitFor();
    assert.equal(new URL(page.url()).pathname, '/app/bookings');
    await page.getByText('Signed in as Olivia Provider').waitFor();
    const jwt = await stored(page);
    const claims = JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());
    assert.equal(claims.iss, provider.issuer);
    assert.equal(claims.email, 'olivia@example.com');

    // Signing out ends the provider's session too, and comes back to the console.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL((u) => u.origin === provider.issuer);
    await page.locator('button[autofocus], button[type=submit]').first().click();
    await page.waitForURL((u) => u.origin === oidc.base);
    await page.getByRole('heading', { name: 'Sign in to Happening' }).waitFor();
    assert.equal(await stored(page), null);

    // A callback that this tab did not start is refused in words.
    await page.goto(`${oidc.base}/app/callback?code=forged&state=forged`);
    await page.getByRole('heading', { name: 'Sign-in failed' }).waitFor();
    await page.getByText(/was not started here/).waitFor();
    clean(page);
    await page.context().close();
  } finally {
    await oidc.stop();
    await provider.stop();
  }
});
