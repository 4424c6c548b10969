/*
 * tablium: the service's own token, attached to every call its generated clients make.
 *
 * A service that calls others authenticates with a service token (a JWT from the Auth
 * service, or from any OAuth2 server: Keycloak, Okta, Auth0...). tb_service_token_init reads,
 * in this order:
 *   SERVICE_AUTH_TOKEN          a token to use as is (the seed's way; never renewed), or
 *   TB_SERVICE_CLIENT_ID + TB_SERVICE_CLIENT_SECRET with TB_SERVICE_TOKEN_URL (the token
 *   endpoint, any path) or AUTH_SERVICE_URL (then AUTH_SERVICE_URL/oauth/token)
 *                               OAuth2 client credentials (RFC 6749 4.4): a form-urlencoded
 *                               POST of grant_type=client_credentials [+ scope from
 *                               TB_SERVICE_SCOPE, audience from TB_SERVICE_TOKEN_AUDIENCE],
 *                               the client authenticated as TB_SERVICE_TOKEN_AUTH says:
 *                               client_secret_basic (the default: HTTP Basic of the
 *                               form-encoded id and secret, RFC 6749 2.3.1) or
 *                               client_secret_post (both in the body). The token is renewed
 *                               before it expires (at 80% of its lifetime), in the calling
 *                               thread of the call that finds it due, within that call's
 *                               deadline (5 s at most); a failed renewal keeps the current
 *                               token while it is valid and is retried at most once a second.
 *                               With no valid token a call fails closed (TB_ESTATE, never sent
 *                               without it); calls wait for a first token another call is
 *                               fetching (5 s or their deadline); a 401 to the current token
 *                               has the next call fetch another.
 * Neither set: no token (calls go out without Authorization).
 */
#ifndef TABLIUM_TOKEN_H
#define TABLIUM_TOKEN_H

#include "tablium/client.h"
#include "tablium/error.h"

/** Configures the process's service token from the environment (above); `service` names it in
 *  logs. Fetches a first token now when it comes from Auth (a failure is logged, not fatal: the
 *  next call tries again). 0, or TB_EINVAL when the variables are half set or
 *  TB_SERVICE_TOKEN_AUTH names another method. Call once, from
 *  main, before clients are made. */
int tb_service_token_init(const char *service, tb_error *err);

/** The client hook that adds "Authorization: Bearer <token>" to calls without one, or NULL
 *  when no token is configured. Generated clients install it. */
const tb_client_hook *tb_service_token_hook(void);

/** Forgets the token and its configuration (tests; the end of main). */
void tb_service_token_shutdown(void);

#endif
