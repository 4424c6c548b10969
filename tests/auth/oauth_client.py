#!/usr/bin/python3
"""An independent OAuth2 client against the Auth service's token endpoint: requests-oauthlib
(Debian python3-requests-oauthlib) fetches a client-credentials token the way Python services
do, with client_secret_basic (its default) and with client_secret_post, and oauthlib reads an
RFC 6749 error answer. Prints one JSON line per case; exits 1 on the first case that fails.

usage: oauth_client.py TOKEN_URL CLIENT_ID SECRET SCOPE
"""
import json
import os
import sys

os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the test's loopback http

from oauthlib.oauth2 import BackendApplicationClient, InvalidClientError, InvalidScopeError
from requests.auth import HTTPBasicAuth
from requests_oauthlib import OAuth2Session


def main():
    url, cid, secret, scope = sys.argv[1:5]
    out = []

    # client_secret_basic: the credentials in Authorization: Basic, form body
    s = OAuth2Session(client=BackendApplicationClient(client_id=cid))
    tok = s.fetch_token(token_url=url, auth=HTTPBasicAuth(cid, secret), scope=scope.split(),
                        include_client_id=False, timeout=10)
    out.append({"case": "basic", "token_type": tok.get("token_type"),
                "scope": tok.get("scope"), "expires_in": tok.get("expires_in"),
                "access_token": tok.get("access_token")})

    # client_secret_post: client_id and client_secret in the form body
    s = OAuth2Session(client=BackendApplicationClient(client_id=cid))
    tok = s.fetch_token(token_url=url, client_id=cid, client_secret=secret,
                        include_client_id=True, timeout=10)
    out.append({"case": "post", "token_type": tok.get("token_type"),
                "scope": tok.get("scope"), "access_token": tok.get("access_token")})

    # RFC 6749 5.2 errors, as oauthlib parses them
    for case, kw, want in (
            ("wrong-secret", {"auth": HTTPBasicAuth(cid, secret + "x")}, InvalidClientError),
            ("bad-scope", {"auth": HTTPBasicAuth(cid, secret), "scope": ["not.allowed"]},
             InvalidScopeError)):
        s = OAuth2Session(client=BackendApplicationClient(client_id=cid))
        try:
            s.fetch_token(token_url=url, include_client_id=False, timeout=10, **kw)
            out.append({"case": case, "error": None})
        except want as e:
            out.append({"case": case, "error": e.error, "description": e.description,
                        "status": e.status_code})
    for o in out:
        print(json.dumps(o))


if __name__ == "__main__":
    main()
