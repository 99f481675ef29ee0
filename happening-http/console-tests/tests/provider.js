// A real OpenID Connect provider on the loopback (the `oidc-provider` package, as Keycloak
// stands in production): one public client for the console (PKCE required), JWT access
// tokens signed RS256 with a key made for the run and carrying the email and name (as
// Keycloak's do), and its built-in login and consent pages.
import { generateKeyPairSync } from 'node:crypto';
import http from 'node:http';
import Provider from 'oidc-provider';

export const CLIENT_ID = 'happening-console';

/** Listens on a free port. `people`: account id -> { email, name }; any password logs in. */
export async function startProvider(people) {
  const server = http.createServer();
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'test-run-key', use: 'sig', alg: 'RS256' };
  const account = (id) => people[id] && { accountId: id, claims: () => ({ sub: id, email: people[id].email, email_verified: true, name: people[id].name }) };
  const make = (base) =>
    new Provider(issuer, {
      clients: [{
        client_id: CLIENT_ID,
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code'],
        response_types: ['code'],
        redirect_uris: [`${base}/app/callback`],
        post_logout_redirect_uris: [`${base}/app`],
      }],
      jwks: { keys: [jwk] },
      pkce: { required: () => true },
      cookies: { keys: ['console-test-cookies'] },
      claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
      findAccount: (_ctx, id) => account(id),
      features: {
        devInteractions: { enabled: true },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => 'urn:happening:api',
          useGrantedResource: () => true,
          getResourceServerInfo: () => ({ scope: 'openid profile email', accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } }),
        },
        rpInitiatedLogout: { enabled: true },
      },
      // Like Keycloak's access tokens, these carry who the person is.
      extraTokenClaims: (_ctx, token) => {
        const p = people[token.accountId];
        return p ? { email: p.email, name: p.name } : undefined;
      },
      clientBasedCORS: () => true,
    });
  // The discovery document and keys do not depend on the client: a provider for a
  // placeholder console answers them until the console's address is known.
  let provider = make('http://127.0.0.1:9');
  server.on('request', (req, res) => provider.callback()(req, res));
  return {
    issuer,
    /** The console at `base` becomes the client's redirect (and post-logout) target. */
    allow(base) {
      provider = make(base);
    },
    stop: () => new Promise((r) => server.close(r)),
  };
}
