#!/usr/bin/python3
"""RS256 and ES256 service tokens for bench/rest/run.sh: makes an RSA 2048 and a P-256 key with
`openssl` (kept in DIR, made once), writes DIR/jwks.json (their public keys, each with its `kid`
and its `alg` pinned, what TB_JWT_JWKS_FILE reads) and prints one token per algorithm, signed
with `openssl dgst -sha256 -sign` (ES256: the DER ECDSA signature rewritten as the 64-byte r||s
of RFC 7518 section 3.4). Python's standard library and the openssl command only.

usage: bench/rest/mint.py DIR [--sub SUB] [--scope "a b"] [--ttl SECONDS] [--iss ISS] [--aud AUD]
prints:
  RS256 <token>
  ES256 <token>
"""
import argparse
import base64
import json
import os
import subprocess
import sys
import time

KEYS = {
    # alg: (file, kid, openssl genpkey arguments)
    "RS256": ("rs256.pem", "bench-rs256", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
    "ES256": ("es256.pem", "bench-es256", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]),
}


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def openssl(*args, data=None):
    r = subprocess.run(["openssl", *args], input=data, capture_output=True)
    if r.returncode != 0:
        sys.exit("mint.py: openssl %s failed: %s" % (" ".join(args), r.stderr.decode(errors="replace")))
    return r.stdout


def der_item(buf, pos):
    """(tag, content start, content end) of the DER item at pos."""
    tag, n = buf[pos], buf[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(buf[pos:pos + k], "big")
        pos += k
    return tag, pos, pos + n


def fixed(i, size):
    """A DER INTEGER's content (a leading 0 when the top bit is set) as exactly size bytes."""
    i = i.lstrip(b"\0")
    if len(i) > size:
        sys.exit("mint.py: ECDSA integer longer than %d bytes" % size)
    return b"\0" * (size - len(i)) + i


def ecdsa_raw(der, size=32):
    """DER Ecdsa-Sig-Value SEQUENCE { r INTEGER, s INTEGER } -> r || s (JWS form)."""
    tag, start, end = der_item(der, 0)
    assert tag == 0x30 and end == len(der), "not a DER SEQUENCE"
    tag, rs, re_ = der_item(der, start)
    assert tag == 0x02
    tag, ss, se = der_item(der, re_)
    assert tag == 0x02 and se == end
    return fixed(der[rs:re_], size) + fixed(der[ss:se], size)


def rsa_jwk(pem):
    """n and e of an RSA key, from `openssl pkey -text` (no third-party parser needed)."""
    mod = openssl("rsa", "-in", pem, "-noout", "-modulus").decode().strip()
    assert mod.startswith("Modulus=")
    n = bytes.fromhex(mod[len("Modulus="):])
    text = openssl("pkey", "-in", pem, "-noout", "-text").decode()
    e = None
    for line in text.splitlines():
        if line.startswith("publicExponent:"):
            e = int(line.split()[1])
    assert e, "no public exponent"
    return {"kty": "RSA", "n": b64(n), "e": b64(e.to_bytes((e.bit_length() + 7) // 8, "big"))}


def ec_jwk(pem):
    """x and y of a P-256 key: the SubjectPublicKeyInfo's BIT STRING ends in 04 || x || y."""
    spki = openssl("pkey", "-in", pem, "-pubout", "-outform", "DER")
    point = spki[-65:]
    assert point[0] == 4, "not an uncompressed P-256 point"
    return {"kty": "EC", "crv": "P-256", "x": b64(point[1:33]), "y": b64(point[33:65])}


def sign(alg, pem, signing_input):
    sig = openssl("dgst", "-sha256", "-sign", pem, data=signing_input)
    return ecdsa_raw(sig) if alg == "ES256" else sig


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir")
    ap.add_argument("--sub", default="bench")
    ap.add_argument("--scope", default="wallet.read wallet.write")
    ap.add_argument("--ttl", type=int, default=86400)
    ap.add_argument("--iss", default="tablium-auth")
    ap.add_argument("--aud", default="tablium")
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    keys = []
    for alg, (name, kid, gen) in KEYS.items():
        pem = os.path.join(a.dir, name)
        if not os.path.exists(pem):
            openssl("genpkey", *gen, "-out", pem)
        jwk = rsa_jwk(pem) if alg == "RS256" else ec_jwk(pem)
        jwk.update({"kid": kid, "alg": alg, "use": "sig"})
        keys.append(jwk)
    with open(os.path.join(a.dir, "jwks.json"), "w") as f:
        json.dump({"keys": keys}, f, indent=1)
        f.write("\n")
    now = int(time.time())
    claims = {"iss": a.iss, "aud": a.aud, "sub": a.sub, "iat": now, "exp": now + a.ttl,
              "scope": a.scope}
    body = b64(json.dumps(claims, separators=(",", ":")).encode())
    for alg, (name, kid, _) in KEYS.items():
        head = b64(json.dumps({"alg": alg, "typ": "JWT", "kid": kid}, separators=(",", ":")).encode())
        signing_input = ("%s.%s" % (head, body)).encode()
        sig = sign(alg, os.path.join(a.dir, name), signing_input)
        print("%s %s.%s" % (alg, signing_input.decode(), b64(sig)))


if __name__ == "__main__":
    main()
