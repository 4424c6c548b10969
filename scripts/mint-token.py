#!/usr/bin/python3
"""Prints an HS256 JWT for local runs and tests (the services verify it when they run with the
same TB_JWT_SECRET, TB_JWT_ISSUER and TB_JWT_AUDIENCE). Python's standard library only.

usage: scripts/mint-token.py SECRET [--sub SUB] [--scope "a b"] [--ttl SECONDS]
                             [--iss ISS] [--aud AUD]
"""
import argparse
import base64
import hashlib
import hmac
import json
import time


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def mint(secret, sub, scope, ttl, iss, aud):
    now = int(time.time())
    claims = {"iss": iss, "aud": aud, "sub": sub, "iat": now, "exp": now + ttl}
    if scope:
        claims["scope"] = scope
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = b64(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(secret.encode(), ("%s.%s" % (head, body)).encode(), hashlib.sha256).digest()
    return "%s.%s.%s" % (head, body, b64(sig))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("secret")
    ap.add_argument("--sub", default="local")
    ap.add_argument("--scope", default="wallet.read wallet.write user.read user.write")
    ap.add_argument("--ttl", type=int, default=3600)
    ap.add_argument("--iss", default="tablium-auth")
    ap.add_argument("--aud", default="tablium")
    a = ap.parse_args()
    print(mint(a.secret, a.sub, a.scope, a.ttl, a.iss, a.aud))


if __name__ == "__main__":
    main()
