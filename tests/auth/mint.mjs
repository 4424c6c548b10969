// Mints JWTs with the npm `jose` library (an implementation independent of runtime/auth) for
// tests/unit/test_jwt.c. Prints one JSON document on stdout:
//   { now, issuer, audience, jwks: {keys: [...]}, rsa_pem,
//     valid:   [{name, alg, token}],            every algorithm, must be accepted
//     invalid: [{name, token, code}] }          the negative corpus, each refused with `code`
// Keys are generated afresh on every run. Times are fixed around `now` (the C test pins its
// clock there). Tokens jose refuses to build (duplicate keys, crit, DER signatures, ...) are
// assembled here by hand and signed with node:crypto.
import * as jose from 'jose';
import crypto from 'node:crypto';
import fs from 'node:fs';

const NOW = 1700000000;

// `node mint.mjs verify`: reads {jwks, tokens: [token...]} on stdin, verifies each token with
// jose against the JWKS (signature only, clock at NOW) and prints [{ok, alg, sub}|{ok, error}].
if (process.argv[2] === 'verify') {
  const input = JSON.parse(fs.readFileSync(0, 'utf8'));
  const set = jose.createLocalJWKSet(input.jwks);
  const out = [];
  for (const t of input.tokens) {
    try {
      const { payload, protectedHeader } = await jose.jwtVerify(t, set, {
        currentDate: new Date(NOW * 1000),
      });
      out.push({ ok: true, alg: protectedHeader.alg, sub: payload.sub });
    } catch (e) {
      out.push({ ok: false, error: String(e.code || e.message) });
    }
  }
  process.stdout.write(JSON.stringify(out));
  process.exit(0);
}
const ISS = 'https://auth.tablium.test';
const AUD = 'tablium-tests';
const enc = new TextEncoder();
const b64u = (buf) => Buffer.from(buf).toString('base64url');
const b64uStr = (s) => b64u(Buffer.from(s, 'utf8'));

const claims = (over = {}) => ({
  iss: ISS, aud: AUD, sub: 'user-1', scope: 'wallet:read wallet:write',
  iat: NOW - 10, nbf: NOW - 10, exp: NOW + 3600, ...over,
});

async function mint(alg, key, kid, payload = claims(), hdr = {}) {
  return new jose.SignJWT(payload)
    .setProtectedHeader({ alg, kid, typ: 'JWT', ...hdr })
    .sign(key);
}

// Hand-made JWS: header and payload as raw JSON text, signed with node:crypto.
function rawSign(alg, key, headerText, payloadText, opts = {}) {
  const input = `${b64uStr(headerText)}.${b64uStr(payloadText)}`;
  let sig;
  const hash = { 256: 'sha256', 384: 'sha384', 512: 'sha512' }[alg.slice(2)];
  if (alg.startsWith('HS')) {
    sig = crypto.createHmac(hash, key).update(input).digest();
  } else if (alg.startsWith('RS')) {
    sig = crypto.sign(hash, Buffer.from(input), key);
  } else if (alg.startsWith('PS')) {
    sig = crypto.sign(hash, Buffer.from(input), {
      key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING,
      saltLength: crypto.constants.RSA_PSS_SALTLEN_DIGEST,
    });
  } else if (alg.startsWith('ES')) {
    const dsaEncoding = opts.der ? 'der' : 'ieee-p1363';
    sig = crypto.sign(hash, Buffer.from(input), { key, dsaEncoding });
  } else if (alg === 'EdDSA') {
    sig = crypto.sign(null, Buffer.from(input), key);
  } else {
    sig = Buffer.alloc(0);
  }
  return `${input}.${b64u(sig)}`;
}

const keys = {};
const jwks = [];
async function asym(alg, kid, genAlg = alg, genOpts = {}) {
  const { publicKey, privateKey } =
    await jose.generateKeyPair(genAlg, { extractable: true, ...genOpts });
  const jwk = await jose.exportJWK(publicKey);
  jwks.push({ ...jwk, kid, alg, use: 'sig' });
  keys[kid] = { alg, publicKey, privateKey, privKO: crypto.KeyObject.from(privateKey),
    pubKO: crypto.KeyObject.from(publicKey) };
}
function secret(alg, kid, bytes) {
  const k = crypto.randomBytes(bytes);
  jwks.push({ kty: 'oct', kid, alg, k: b64u(k) });
  keys[kid] = { alg, privateKey: k, publicKey: k, privKO: k };
}

secret('HS256', 'hs256', 32);
secret('HS384', 'hs384', 48);
secret('HS512', 'hs512', 64);
await asym('RS256', 'rs256', 'RS256', { modulusLength: 2048 });
await asym('RS384', 'rs384', 'RS384', { modulusLength: 2048 });
await asym('RS512', 'rs512', 'RS512', { modulusLength: 2048 });
await asym('PS256', 'ps256', 'PS256', { modulusLength: 2048 });
await asym('PS384', 'ps384', 'PS384', { modulusLength: 2048 });
await asym('ES256', 'es256');
await asym('ES384', 'es384');
await asym('EdDSA', 'ed25519', 'Ed25519');

const valid = [];
for (const kid of Object.keys(keys)) {
  const { alg, privateKey } = keys[kid];
  valid.push({ name: alg, alg, token: await mint(alg, privateKey, kid) });
}
// RFC 9864's fully specified name for the same Ed25519 key.
valid.push({ name: 'Ed25519', alg: 'Ed25519',
  token: await mint('Ed25519', keys.ed25519.privateKey, 'ed25519') });
// aud as an array holding ours; fractional NumericDates; typ with its media-type prefix.
valid.push({ name: 'RS256 aud array', alg: 'RS256', token: await mint('RS256',
  keys.rs256.privateKey,
  'rs256', claims({ aud: ['other', AUD] })) });
valid.push({ name: 'ES256 fractional exp', alg: 'ES256', token: await mint('ES256',
  keys.es256.privateKey, 'es256', claims({ exp: NOW + 100.5 })) });
valid.push({ name: 'HS256 typ application/jwt', alg: 'HS256', token: rawSign('HS256',
  keys.hs256.privKO, `{"alg":"HS256","kid":"hs256","typ":"application/JWT"}`,
  JSON.stringify(claims())) });
valid.push({ name: 'RS256 expired within leeway', alg: 'RS256', token: await mint('RS256',
  keys.rs256.privateKey, 'rs256', claims({ exp: NOW - 30 })) });

const invalid = [];
const bad = (name, token, code) => invalid.push({ name, token, code });
const P = JSON.stringify(claims());
const rs = keys.rs256.privKO, es = keys.es256.privKO;

bad('alg none', new jose.UnsecuredJWT(claims()).encode(), 'alg_not_allowed');
bad('alg none with kid', rawSign('none', null, '{"alg":"none","kid":"rs256","typ":"JWT"}', P),
  'alg_not_allowed');
bad('alg None mixed case', rawSign('none', null, '{"alg":"None","kid":"hs256"}', P),
  'alg_not_allowed');
const rsaPem = keys.rs256.pubKO.export({ type: 'spki', format: 'pem' });
bad('HS256 signed with the RSA public key (confusion)', rawSign('HS256', Buffer.from(rsaPem),
  '{"alg":"HS256","kid":"rs256","typ":"JWT"}', P), 'alg_not_allowed');
bad('HS256 signed with the RSA public key, no kid', rawSign('HS256', Buffer.from(rsaPem),
  '{"alg":"HS256","typ":"JWT"}', P), 'bad_signature');
const other = await jose.generateKeyPair('RS256', { extractable: true });
bad('unknown kid', await mint('RS256', other.privateKey, 'nope'), 'unknown_kid');
bad('signature of another key', await mint('RS256', other.privateKey, 'rs256'), 'bad_signature');
const otherEd = await jose.generateKeyPair('Ed25519');
bad('EdDSA signature of another key', await mint('EdDSA', otherEd.privateKey, 'ed25519'),
  'bad_signature');
bad('HS256 wrong secret', await mint('HS256', crypto.randomBytes(32), 'hs256'), 'bad_signature');
bad('expired', await mint('RS256', rs, 'rs256', claims({ exp: NOW - 3600 })), 'token_expired');
bad('expired just past leeway', await mint('ES256', es, 'es256', claims({ exp: NOW - 61 })),
  'token_expired');
bad('nbf in the future', await mint('RS256', rs, 'rs256', claims({ nbf: NOW + 3600 })),
  'token_not_yet_valid');
bad('iat in the future', await mint('RS256', rs, 'rs256', claims({ iat: NOW + 3600 })),
  'token_issued_in_future');
bad('wrong iss', await mint('RS256', rs, 'rs256', claims({ iss: 'https://evil.test' })),
  'wrong_issuer');
bad('wrong aud', await mint('RS256', rs, 'rs256', claims({ aud: 'other-service' })),
  'wrong_audience');
bad('aud array without ours', await mint('RS256', rs, 'rs256', claims({ aud: ['a', 'b'] })),
  'wrong_audience');
const noSub = claims(); delete noSub.sub;
bad('missing required claim sub', await mint('RS256', rs, 'rs256', noSub), 'missing_claim');
const noExp = claims(); delete noExp.exp;
bad('missing exp', await mint('RS256', rs, 'rs256', noExp), 'missing_claim');
bad('exp not a number', rawSign('RS256', rs, '{"alg":"RS256","kid":"rs256","typ":"JWT"}',
  JSON.stringify(claims({ exp: String(NOW + 3600) }))), 'bad_claim');
bad('crit header', rawSign('RS256', rs, '{"alg":"RS256","kid":"rs256","typ":"JWT","crit":["exp"],'
  + '"exp":1}', P), 'crit_unsupported');
bad('crit b64 false', rawSign('HS256', keys.hs256.privKO,
  '{"alg":"HS256","kid":"hs256","b64":false,"crit":["b64"]}', P), 'crit_unsupported');
const good = valid[3].token; // RS256
const [h, p, s] = good.split('.');
bad('truncated', `${h}.${p.slice(0, p.length >> 1)}`, 'token_malformed');
bad('signature cut short', `${h}.${p}.${s.slice(8)}`, 'bad_signature');
bad('signature with a dangling character', `${h}.${p}.${s}${'A'.repeat((5 - s.length % 4) % 4)}`,
  'bad_base64url');
bad('extra segment', `${good}.${s}`, 'token_malformed');
bad('empty signature', `${h}.${p}.`, 'token_malformed');
bad('invalid base64url char', `${h}.${p.slice(0, 10)}*${p.slice(11)}.${s}`, 'bad_base64url');
bad('standard base64 +/ chars', `${h}.${p}.${s.slice(0, 4)}+/${s.slice(6)}`, 'bad_base64url');
bad('padding', `${h}=.${p}.${s}`, 'bad_base64url');
bad('whitespace', `${h}.${p}\n.${s}`, 'bad_base64url');
bad('duplicate keys in header', rawSign('RS256', rs,
  '{"alg":"RS256","kid":"rs256","typ":"JWT","kid":"rs256"}', P), 'duplicate_key');
bad('duplicate keys in payload', rawSign('RS256', rs, '{"alg":"RS256","kid":"rs256","typ":"JWT"}',
  P.replace('"sub":"user-1"', '"sub":"user-1","sub":"admin"')), 'duplicate_key');
const encKey = (await jose.generateKeyPair('RSA-OAEP-256')).publicKey;
const jwe = await new jose.CompactEncrypt(enc.encode(P))
  .setProtectedHeader({ alg: 'RSA-OAEP-256', enc: 'A256GCM' })
  .encrypt(encKey);
bad('JWE (5 segments)', jwe, 'token_is_jwe');
bad('ES256 with a DER signature', rawSign('ES256', es, '{"alg":"ES256","kid":"es256","typ":"JWT"}',
  P, { der: true }), 'bad_signature');
bad('wrong typ', await mint('RS256', rs, 'rs256', claims(), { typ: 'secevent+jwt' }), 'wrong_typ');
bad('non-JSON header', `${b64uStr('not json')}.${p}.${s}`, 'bad_json');
bad('header is an array', `${b64uStr('["alg","RS256"]')}.${p}.${s}`, 'bad_json');
bad('non-JSON payload', rawSign('RS256', rs, '{"alg":"RS256","kid":"rs256","typ":"JWT"}',
  'sub=admin'), 'bad_json');
bad('alg/key type mismatch (ES256 on the RSA kid)', await mint('ES256', es, 'rs256'),
  'alg_not_allowed');
bad('RS256 on the PS256 kid', rawSign('RS256', keys.ps256.privKO,
  '{"alg":"RS256","kid":"ps256","typ":"JWT"}', P),
  'alg_not_allowed');
bad('alg missing', rawSign('RS256', rs, '{"kid":"rs256","typ":"JWT"}', P), 'token_malformed');
bad('unknown alg', rawSign('RS256', rs, '{"alg":"XS256","kid":"rs256","typ":"JWT"}', P),
  'alg_not_allowed');
// Each valid token with its payload swapped for a privilege-raising one.
const evil = b64uStr(JSON.stringify(claims({ sub: 'admin' })));
for (const v of valid.slice(0, Object.keys(keys).length)) {
  const [vh, , vs] = v.token.split('.');
  bad(`tampered payload ${v.alg}`, `${vh}.${evil}.${vs}`, 'bad_signature');
}

process.stdout.write(JSON.stringify({
  now: NOW, issuer: ISS, audience: AUD, jwks: { keys: jwks }, rsa_pem: rsaPem, valid, invalid,
}));
