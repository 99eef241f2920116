// forge.mjs — makes the bad tokens the verifier must refuse, from a real
// token and the provider's own keys (so only the one defect differs):
//   node forge.mjs KIND REAL_TOKEN PRIVATE_JWKS_FILE [ISSUER AUDIENCE]
// KIND: none | hs256-pubkey | wrong-iss | wrong-aud | expired | nbf-future |
//       iat-future | no-sub | bad-sig | unknown-kid | es256-with-rsa-kid |
//       truncated | good-resigned | rotated-kid (the provider's RSA key under
//       the kid 'rotated-key', as a key rotation would publish it)
import { createHmac, createPrivateKey, createPublicKey, generateKeyPairSync, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';

const [kind, real, jwksFile] = process.argv.slice(2);
const b64 = (x) => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url');
const [h64, p64, s64] = real.split('.');
const header = JSON.parse(Buffer.from(h64, 'base64url'));
const claims = JSON.parse(Buffer.from(p64, 'base64url'));
const keys = JSON.parse(readFileSync(jwksFile)).keys;
const rsa = keys.find((k) => k.kty === 'RSA');
const now = Math.floor(Date.now() / 1000);

function jws(h, c, jwk, alg = h.alg) {
  const input = `${b64(h)}.${b64(c)}`;
  const key = createPrivateKey({ key: jwk, format: 'jwk' });
  const hash = { RS256: 'sha256', ES256: 'sha256', ES384: 'sha384' }[alg];
  const sig = alg === 'EdDSA' ? sign(null, Buffer.from(input), key)
    : sign(hash, Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${sig.toString('base64url')}`;
}

const rsHeader = { ...header, alg: 'RS256', kid: rsa.kid };
let out;
switch (kind) {
  case 'none':
    out = `${b64({ ...header, alg: 'none' })}.${p64}.`;
    break;
  case 'hs256-pubkey': {
    // The classic confusion: HMAC keyed with the issuer's public key (PEM).
    const pem = createPublicKey({ key: rsa, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
    const input = `${b64({ ...rsHeader, alg: 'HS256' })}.${p64}`;
    out = `${input}.${createHmac('sha256', pem).update(input).digest('base64url')}`;
    break;
  }
  case 'good-resigned': out = jws(rsHeader, claims, rsa); break;
  case 'rotated-kid': out = jws({ ...rsHeader, kid: 'rotated-key' }, claims, rsa); break;
  case 'wrong-iss': out = jws(rsHeader, { ...claims, iss: 'http://127.0.0.1:1/evil' }, rsa); break;
  case 'wrong-aud': out = jws(rsHeader, { ...claims, aud: ['https://other.test'] }, rsa); break;
  case 'expired': out = jws(rsHeader, { ...claims, iat: now - 7200, exp: now - 3600 }, rsa); break;
  case 'nbf-future': out = jws(rsHeader, { ...claims, nbf: now + 3600 }, rsa); break;
  case 'iat-future': out = jws(rsHeader, { ...claims, iat: now + 3600, exp: now + 7200 }, rsa); break;
  case 'no-sub': { const c = { ...claims }; delete c.sub; out = jws(rsHeader, c, rsa); break; }
  case 'bad-sig': {
    const sig = Buffer.from(s64, 'base64url');
    sig[sig.length >> 1] ^= 0x01;
    out = `${h64}.${p64}.${sig.toString('base64url')}`;
    break;
  }
  case 'unknown-kid': {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    out = jws({ ...rsHeader, kid: 'not-a-key-of-this-issuer' }, claims, privateKey.export({ format: 'jwk' }));
    break;
  }
  case 'es256-with-rsa-kid': {
    const ec = keys.find((k) => k.crv === 'P-256');
    out = jws({ ...rsHeader, alg: 'ES256' }, claims, ec, 'ES256');
    break;
  }
  // cut inside the payload, as a copy-paste accident would
  case 'truncated': out = real.slice(0, h64.length + 1 + Math.floor(p64.length / 2)); break;
  default:
    console.error(`unknown kind ${kind}`);
    process.exit(2);
}
process.stdout.write(`${out}\n`);
