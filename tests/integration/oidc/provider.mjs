// provider.mjs — a real OpenID provider (panva's oidc-provider v9) on 127.0.0.1
// for hoopctl's identity tests: device flow, JWT access tokens via resource
// indicators, refresh-token rotation, revocation, client credentials.
//
//   node provider.mjs            (configured by the environment, see below)
//   OIDC_PORT         port on 127.0.0.1 (required)
//   OIDC_STATE_DIR    where it writes private-jwks.json (its signing keys, for
//                     the forging test) and ready (written once listening)
//   OIDC_AUDIENCE     default resource (access-token audience), default https://hoopctl.test
//   OIDC_ACCESS_TTL   access-token lifetime in seconds (default 3600)
//   OIDC_DEVICE_TTL   device-code lifetime in seconds (default 600)
//   OIDC_INTERVAL     the `interval` put into device authorization responses (default 1)
//   OIDC_SLOW_DOWN    when 1: answer the second device-code poll with slow_down and then
//                     enforce the raised interval like RFC 8628 says (violations are counted)
//   OIDC_CI_SECRET    secret of the confidential client "hoopctl-ci" (client credentials)
//   OIDC_EXTRA_ACCOUNTS  JSON object of more accounts (login -> {email, name, groups})
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { parse as parseQuery } from 'node:querystring';
import Provider from 'oidc-provider';

const env = process.env;
const port = Number(env.OIDC_PORT);
const stateDir = env.OIDC_STATE_DIR || '.';
const issuer = `http://127.0.0.1:${port}`;
const audience = env.OIDC_AUDIENCE || 'https://hoopctl.test';
const accessTtl = Number(env.OIDC_ACCESS_TTL || 3600);
const deviceTtl = Number(env.OIDC_DEVICE_TTL || 600);
const interval = Number(env.OIDC_INTERVAL || 1);

// Each step of the start goes to stderr with the time since the process
// began, so that a start that does not come up shows where it stopped.
const step = (what) => console.error(`oidc provider: ${what} (+${Math.round(performance.now())} ms)`);
step('modules loaded');

// The account table: login name -> claims.
const accounts = {
  alice: { email: 'alice@example.test', name: 'Alice Example', groups: ['dba', 'eng'] },
  bob: { email: 'bob@example.test', name: 'Bob Example', groups: ['eng'] },
};
// More accounts, or other groups for these, from the test: a JSON object of
// login -> {email, name, groups} in OIDC_EXTRA_ACCOUNTS.
Object.assign(accounts, JSON.parse(env.OIDC_EXTRA_ACCOUNTS || '{}'));

// Fresh signing keys each run: RS256 first (the default), then ES256, ES384, EdDSA.
function jwk(type, options, alg) {
  const { privateKey } = generateKeyPairSync(type, options);
  return { ...privateKey.export({ format: 'jwk' }), kid: `${alg}-${randomUUID().slice(0, 8)}`, alg, use: 'sig' };
}
const keys = [
  jwk('rsa', { modulusLength: 2048 }, 'RS256'),
  jwk('ec', { namedCurve: 'P-256' }, 'ES256'),
  jwk('ec', { namedCurve: 'P-384' }, 'ES384'),
  jwk('ed25519', {}, 'EdDSA'),
];
writeFileSync(`${stateDir}/private-jwks.json`, JSON.stringify({ keys }), { mode: 0o600 });
step('signing keys made');

// Resource servers: the audience by itself signs with RS256; "<audience>/<alg>" with alg.
function resourceAlg(indicator) {
  const m = /\/(RS384|RS512|ES256|ES384|EdDSA)$/.exec(indicator);
  return m ? m[1] : 'RS256';
}

const configuration = {
  clients: [
    {
      client_id: 'hoopctl',
      token_endpoint_auth_method: 'none',
      grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'],
      response_types: [],
      redirect_uris: [],
    },
    {
      client_id: 'hoopctl-ci',
      client_secret: env.OIDC_CI_SECRET || 'ci-secret-not-set',
      token_endpoint_auth_method: 'client_secret_post',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
    },
  ],
  jwks: { keys },
  findAccount: async (ctx, id) => {
    const a = accounts[id];
    if (!a) return undefined;
    return {
      accountId: id,
      claims: async () => ({ sub: id, email: a.email, email_verified: true, name: a.name, groups: a.groups }),
    };
  },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups'],
  },
  scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
  conformIdTokenClaims: false,
  features: {
    devInteractions: { enabled: true },
    deviceFlow: { enabled: true },
    revocation: { enabled: true },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => audience,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, indicator) => ({
        scope: 'hoopctl',
        audience: indicator,
        accessTokenTTL: accessTtl,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: resourceAlg(indicator) } },
      }),
    },
  },
  // Groups and email ride in the JWT access tokens (the server verifies those).
  extraTokenClaims: async (ctx, token) => {
    const a = token.accountId && accounts[token.accountId];
    if (a) return { groups: a.groups, email: a.email };
    if (token.clientId === 'hoopctl-ci') return { groups: ['ci'] };
    return undefined;
  },
  ttl: {
    AccessToken: accessTtl,
    ClientCredentials: accessTtl,
    DeviceCode: deviceTtl,
    IdToken: 3600,
    Grant: 3600,
    Interaction: 600,
    Session: 3600,
    RefreshToken: 86400,
  },
  cookies: { keys: [randomUUID()] },
};

const provider = new Provider(issuer, configuration);
step('provider configured');

// Test hooks, outside the OpenID surface: device polling record and slow_down.
const polls = [];
let required = interval * 1000;
let violations = 0;
let slowDownSent = 0;
provider.use(async (ctx, next) => {
  if (ctx.method === 'GET' && ctx.path === '/test/polls') {
    ctx.body = { polls, violations, slowDownSent };
    return;
  }
  if (ctx.method === 'POST' && ctx.path === '/token') {
    const chunks = [];
    for await (const c of ctx.req) chunks.push(c);
    const raw = Buffer.concat(chunks).toString();
    ctx.req.body = raw;
    const form = parseQuery(raw);
    if (form.grant_type === 'urn:ietf:params:oauth:grant-type:device_code') {
      const now = Date.now();
      const last = polls.length ? polls[polls.length - 1] : undefined;
      polls.push(now);
      if (env.OIDC_SLOW_DOWN === '1') {
        const tooSoon = last !== undefined && now - last < required;
        if (polls.length === 2 || tooSoon) {
          if (tooSoon && polls.length !== 2) violations += 1;
          slowDownSent += 1;
          required += 5000;
          ctx.status = 400;
          ctx.body = { error: 'slow_down', error_description: 'poll less often' };
          return;
        }
      }
    }
  }
  await next();
  if (ctx.method === 'POST' && ctx.path === '/device/auth' && ctx.status === 200 && ctx.body) {
    ctx.body = { ...ctx.body, interval };
  }
});

const server = provider.listen(port, '127.0.0.1', () => {
  writeFileSync(`${stateDir}/ready`, issuer);
  console.log(`oidc provider listening at ${issuer}`);
});
server.on('error', (e) => {
  console.error(`oidc provider: cannot listen on 127.0.0.1:${port}: ${e.message}`);
  process.exit(1);
});
