/*
 * OpenAPI security enforced by the server (tb_http_authorize, issue 13), on a real tb_server
 * with the tables the generator emits for this spec (see tests/generator/test_openapi.py,
 * Security):
 *   security: [{bearer: []}]                        (the default)
 *   GET  /open   security: []
 *   GET  /read   the default: a bearer token; the handler echoes the claims' sub
 *   POST /write  security: [{oauth: [vault.write]}, {key: [], bearer: []}]
 * Tokens are signed here with an ES256 key; the verifier knows its public half only.
 */
#include "tablium/http.h"
#include "tablium/json.h"
#include "tablium/jwt.h"
#include "tablium/log.h"

#include "tb_test_http.h"

#include <check.h>
#include <curl/curl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const tb_security_scheme schemes[] = {
    {"bearer", TB_SEC_HTTP_BEARER, NULL},
    {"key", TB_SEC_API_KEY_HEADER, "X-API-Key"},
    {"oauth", TB_SEC_OAUTH2, NULL},
    {"users", TB_SEC_HTTP_BASIC, NULL},
    {"staff", TB_SEC_HTTP_DIGEST, NULL},
    {"kerberos", TB_SEC_HTTP_OTHER, "Negotiate"}, /* checked by the server's function */
    {"vendor-token", TB_SEC_HTTP_OTHER, "Token"},  /* by TB_HTTP_AUTH_VENDOR_TOKEN */
};
static const tb_security_req other_sec_0[] = {{&schemes[5], NULL, 0}};
static const tb_security_req other_sec_1[] = {{&schemes[6], NULL, 0}};
static const tb_security_alt other_security[] = {{other_sec_0, 1}, {other_sec_1, 1}};
static const tb_security_req digest_sec_0[] = {{&schemes[4], NULL, 0}};
static const tb_security_alt digest_security[] = {{digest_sec_0, 1}};
static const tb_security_req basic_sec_0[] = {{&schemes[3], NULL, 0}};
static const tb_security_alt basic_security[] = {{basic_sec_0, 1}};
static const tb_security_req read_sec_0[] = {{&schemes[0], NULL, 0}};
static const tb_security_alt read_security[] = {{read_sec_0, 1}};
static const char *const write_scopes_0_0[] = {"vault.write"};
static const tb_security_req write_sec_0[] = {{&schemes[2], write_scopes_0_0, 1}};
static const tb_security_req write_sec_1[] = {{&schemes[1], NULL, 0}, {&schemes[0], NULL, 0}};
static const tb_security_alt write_security[] = {{write_sec_0, 1}, {write_sec_1, 2}};

static int answer(tb_ctx *ctx, tb_http_res *res)
{
    const json_t *sub = ctx->claims ? json_object_get(ctx->claims, "sub") : NULL;
    res->status = 200;
    tb_buf_puts(&res->body, "{\"data\":{\"sub\":");
    if (json_is_string(sub))
        tb_buf_json_string(&res->body, json_string_value(sub), json_string_length(sub));
    else
        tb_buf_puts(&res->body, "null");
    tb_buf_puts(&res->body, "}}");
    return 0;
}

static int open_op(tb_ctx *ctx, const tb_http_req *req, tb_http_res *res)
{
    (void)req;
    return answer(ctx, res);
}

static int read_op(tb_ctx *ctx, const tb_http_req *req, tb_http_res *res)
{
    int rc = tb_http_authorize(ctx, req, res, read_security, 1);
    if (rc)
        return rc > 0 ? 0 : rc;
    return answer(ctx, res);
}

static int write_op(tb_ctx *ctx, const tb_http_req *req, tb_http_res *res)
{
    int rc = tb_http_authorize(ctx, req, res, write_security, 2);
    if (rc)
        return rc > 0 ? 0 : rc;
    return answer(ctx, res);
}

static int basic_op(tb_ctx *ctx, const tb_http_req *req, tb_http_res *res)
{
    int rc = tb_http_authorize(ctx, req, res, basic_security, 1);
    if (rc)
        return rc > 0 ? 0 : rc;
    return answer(ctx, res);
}

static int digest_op(tb_ctx *ctx, const tb_http_req *req, tb_http_res *res)
{
    int rc = tb_http_authorize(ctx, req, res, digest_security, 1);
    if (rc)
        return rc > 0 ? 0 : rc;
    return answer(ctx, res);
}

static int other_op(tb_ctx *ctx, const tb_http_req *req, tb_http_res *res)
{
    int rc = tb_http_authorize(ctx, req, res, other_security, 2);
    if (rc)
        return rc > 0 ? 0 : rc;
    return answer(ctx, res);
}

/* tb_server_set_http_auth's function: Negotiate accepts one ticket and names its user; Token is
 * left to TB_HTTP_AUTH_VENDOR_TOKEN */
static int check_other(void *ud, tb_ctx *ctx, const tb_security_scheme *scheme,
                       const char *credentials, size_t len)
{
    ck_assert_ptr_eq(ud, &schemes);
    if (strcmp(scheme->param, "Token") == 0)
        return -1;
    ck_assert_str_eq(scheme->name, "kerberos");
    ck_assert_uint_eq(len, strlen(credentials));
    if (strcmp(credentials, "YIIGhgYJKoZIhvcSAQICAQBuggZ1") != 0)
        return 1;
    json_t *c = json_pack("{s:s}", "sub", "alice@EXAMPLE.ORG");
    ck_assert_int_eq(tb_arena_hold_json(ctx->arena, c), 0);
    json_decref(c);
    ctx->claims = c;
    return 0;
}

static const tb_http_op ops[] = {
    {"open", TB_HTTP_GET, "/open", 0, open_op, NULL},
    {"read", TB_HTTP_GET, "/read", 0, read_op, NULL},
    {"write", TB_HTTP_POST, "/write", 0, write_op, NULL},
    {"basic", TB_HTTP_GET, "/basic", 0, basic_op, NULL},
    {"digest", TB_HTTP_GET, "/digest", 0, digest_op, NULL},
    {"other", TB_HTTP_GET, "/other", 0, other_op, NULL},
};

/* GET PUT POST DELETE OPTIONS HEAD PATCH TRACE */
static const int16_t routes[][TB_HTTP_N_METHODS] = {
    {0, -1, -1, -1, -1, -1, -1, -1},
    {1, -1, -1, -1, -1, -1, -1, -1},
    {-1, -1, 2, -1, -1, -1, -1, -1},
    {3, -1, -1, -1, -1, -1, -1, -1},
    {4, -1, -1, -1, -1, -1, -1, -1},
    {5, -1, -1, -1, -1, -1, -1, -1},
};

static int match(const char *path, size_t len, int method, tb_str *params, size_t *n_params)
{
    (void)method; /* one operation per path here */
    (void)params;
    *n_params = 0;
    static const char *const paths[] = {"/open", "/read", "/write", "/basic", "/digest", "/other"};
    return tht_match(paths, 6, path, len);
}

static const tb_http_api api = {"vault", "Vault", "1.0", ops, 6, match, routes, 6, NULL, NULL, 0, NULL, 0, NULL, 0};

/* ---- fixture: the server, a signing key and another ---- */

static tb_server *srv;
static tb_jwt_verifier *ver;
static tb_jwt_key *key, *stranger;

static void setup(void)
{
    tb_error err = TB_ERROR_INIT;
    ck_assert_int_eq(tb_jwt_key_generate(TB_JWT_ES256, "k1", &key, &err), 0);
    ck_assert_int_eq(tb_jwt_key_generate(TB_JWT_ES256, "k1", &stranger, &err), 0);
    json_t *jwk = tb_jwt_key_to_jwk(key); /* the public half only */
    json_t *set = json_pack("{s:[o]}", "keys", jwk);
    char *text = json_dumps(set, JSON_COMPACT);
    tb_jwt_verifier_opts o = TB_JWT_VERIFIER_OPTS_INIT;
    o.jwks_json = text;
    o.issuer = "tablium-auth";
    o.audience = "vault";
    ck_assert_msg(tb_jwt_verifier_new(&o, &ver, &err) == 0, "%s", err.message);
    free(text);
    json_decref(set);
    tb_server_opts so = TB_SERVER_OPTS_INIT;
    so.threads = 2;
    so.access_log = false;
    srv = tb_server_new(&api, &so, &err);
    ck_assert_ptr_nonnull(srv);
    tb_server_set_jwt_verifier(srv, ver);
    tb_server_set_http_auth(srv, check_other, (void *)&schemes);
    ck_assert_int_eq(tb_server_start(srv, &err), 0);
    tb_error_deinit(&err);
    setenv("TB_API_KEYS_KEY", "k-one,k-two", 1);
    setenv("TB_HTTP_AUTH_VENDOR_TOKEN", "tok-1,tok-2", 1);
    /* users of the Basic scheme "users": name and hex(SHA-256(password)), no password in clear */
    setenv("TB_BASIC_USERS_USERS",
           "bob:0000000000000000000000000000000000000000000000000000000000000000,"
           "alice:d8870cdbda1852c5fc5201eb96b2617da49ed730239f6ec5c26a446d2e5d1532", 1);
    /* users of the Digest scheme "staff": name and hex(SHA-256(user:realm:password)), the
     * realm being the service's name */
    setenv("TB_DIGEST_USERS_STAFF",
           "carol:bb39adaa6aa49ec7a9faca6d1b3469ab10e5b7fad8632f0e65b7f1c36001d14a", 1);
}

static void teardown(void)
{
    tb_server_free(srv);
    tb_jwt_verifier_free(ver);
    tb_jwt_key_free(key);
    tb_jwt_key_free(stranger);
}

/* A token signed by k (iss, aud, sub, exp from now + ttl, scope). malloc'd. */
static char *token(const tb_jwt_key *k, const char *aud, long ttl, const char *scope)
{
    long now = (long)time(NULL);
    json_t *c = json_pack("{s:s, s:s, s:s, s:I, s:I}", "iss", "tablium-auth", "aud", aud, "sub",
                          "svc-user", "iat", (json_int_t)now, "exp", (json_int_t)(now + ttl));
    if (scope)
        json_object_set_new(c, "scope", json_string(scope));
    char *t = NULL;
    tb_error err = TB_ERROR_INIT;
    ck_assert_msg(tb_jwt_sign(k, c, NULL, &t, &err) == 0, "%s", err.message);
    tb_error_deinit(&err);
    json_decref(c);
    return t;
}

typedef tht_reply reply;

/* method on path with an optional bearer token and API key. */
static long call(const char *method, const char *path, const char *tok, const char *api_key,
                 reply *r)
{
    char url[128], auth[4096], kh[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", (unsigned)tb_server_port(srv), path);
    struct curl_slist *hl = NULL;
    if (tok) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", tok);
        hl = curl_slist_append(hl, auth);
    }
    if (api_key) {
        snprintf(kh, sizeof kh, "X-API-Key: %s", api_key);
        hl = curl_slist_append(hl, kh);
    }
    tht_request(NULL, method, url, 0, hl, r);
    curl_slist_free_all(hl);
    return r->status;
}

static void expect_error(reply *r, long status, const char *code, const char *challenge)
{
    ck_assert_msg(r->status == status, "status %ld, want %ld: %s", r->status, status, r->body);
    json_t *j = json_loads(r->body, 0, NULL);
    const char *c = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
    ck_assert_msg(c && strcmp(c, code) == 0, "code %s, want %s", c ? c : "(none)", code);
    json_decref(j);
    if (challenge)
        ck_assert_msg(strcasestr(r->headers, challenge) != NULL, "want %s in\n%s", challenge,
                      r->headers);
}

static void expect_sub(reply *r, const char *sub)
{
    ck_assert_msg(r->status == 200, "status %ld: %s", r->status, r->body);
    json_t *j = json_loads(r->body, 0, NULL);
    const json_t *s = json_object_get(json_object_get(j, "data"), "sub");
    if (sub)
        ck_assert_str_eq(json_string_value(s), sub);
    else
        ck_assert(json_is_null(s));
    json_decref(j);
}

/* GET path with an Authorization header (NULL: none) */
static long auth_call(const char *path, const char *authorization, reply *r)
{
    char url[128], h[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", (unsigned)tb_server_port(srv), path);
    struct curl_slist *hl = NULL;
    if (authorization) {
        snprintf(h, sizeof h, "Authorization: %s", authorization);
        hl = curl_slist_append(hl, h);
    }
    tht_request(NULL, "GET", url, 0, hl, r);
    curl_slist_free_all(hl);
    return r->status;
}

/* HTTP Basic (RFC 7617) against TB_BASIC_USERS_USERS: "user:hex(SHA-256(password))" */
static long basic_call(const char *authorization, reply *r)
{
    return auth_call("/basic", authorization, r);
}

/* HTTP Digest (RFC 7616) as libcurl does it: the challenge, then the answer (SHA-256) */
static long digest_call(const char *userpwd, char *www, size_t wcap, reply *r)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/digest", (unsigned)tb_server_port(srv));
    CURL *c = curl_easy_init();
    if (userpwd) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_DIGEST);
        curl_easy_setopt(c, CURLOPT_USERPWD, userpwd);
    }
    tht_request(c, "GET", url, 0, NULL, r);
    if (www) {
        struct curl_header *h = NULL;
        www[0] = '\0';
        if (curl_easy_header(c, "WWW-Authenticate", 0, CURLH_HEADER, -1, &h) == CURLHE_OK)
            snprintf(www, wcap, "%s", h->value);
    }
    curl_easy_cleanup(c);
    return r->status;
}

START_TEST(http_digest_as_libcurl_answers_it)
{
    reply r = {0};
    char www[600];
    digest_call("carol:pa55 word", NULL, 0, &r);
    expect_sub(&r, "carol");
    digest_call("carol:wrong", www, sizeof www, &r);
    expect_error(&r, 401, "unauthorized", "Digest realm=\"vault\"");
    digest_call("mallory:pa55 word", NULL, 0, &r);
    ck_assert_int_eq(r.status, 401);
    digest_call(NULL, www, sizeof www, &r);
    expect_error(&r, 401, "unauthorized", NULL);
    ck_assert_msg(strstr(www, "Digest realm=\"vault\"") && strstr(www, "algorithm=SHA-256") &&
                      strstr(www, "qop=\"auth\"") && strstr(www, "nonce=\""),
                  "%s", www);
    /* a nonce that is not ours, and a replayed answer for another path */
    reply q = {0};
    char url[128], h[600];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/digest", (unsigned)tb_server_port(srv));
    snprintf(h, sizeof h, "Authorization: Digest username=\"carol\", realm=\"vault\", "
                          "nonce=\"1.00\", uri=\"/digest\", algorithm=SHA-256, qop=auth, "
                          "nc=00000001, cnonce=\"x\", response=\"%064d\"", 0);
    struct curl_slist *hl = curl_slist_append(NULL, h);
    tht_request(NULL, "GET", url, 0, hl, &q);
    curl_slist_free_all(hl);
    ck_assert_int_eq(q.status, 401);
}
END_TEST

START_TEST(http_basic_checks_the_password_digest_and_names_the_user)
{
    /* TB_BASIC_USERS_USERS (setup): alice's password is "s3cret: pass" (a colon in it) */
    reply r = {0};
    basic_call("Basic YWxpY2U6czNjcmV0OiBwYXNz", &r); /* alice:s3cret: pass */
    expect_sub(&r, "alice");
    basic_call("basic   YWxpY2U6czNjcmV0OiBwYXNz", &r); /* the scheme is case-insensitive */
    expect_sub(&r, "alice");
    basic_call("Basic YWxpY2U6d3Jvbmc=", &r); /* alice:wrong */
    expect_error(&r, 401, "unauthorized", "Basic realm=");
    basic_call("Basic bWFsbG9yeTpzM2NyZXQ6IHBhc3M=", &r); /* an unknown user, right password */
    expect_error(&r, 401, "unauthorized", "Basic realm=");
    basic_call("Basic !!!!", &r); /* not base64 */
    expect_error(&r, 401, "unauthorized", NULL);
    basic_call(NULL, &r);
    expect_error(&r, 401, "unauthorized", "Basic realm=");
    ck_assert_msg(strstr(r.body, "credentials are required"), "%s", r.body);
}
END_TEST

START_TEST(other_http_schemes_go_to_the_servers_function_then_the_environment)
{
    reply r = {0};
    static const struct {
        const char *authorization;
        long status;
        const char *what; /* 200: the sub (NULL: none, a token names nobody); 401: the message */
    } cases[] = {
        {"Negotiate YIIGhgYJKoZIhvcSAQICAQBuggZ1", 200, "alice@EXAMPLE.ORG"},
        {"negotiate   YIIGhgYJKoZIhvcSAQICAQBuggZ1", 200, "alice@EXAMPLE.ORG"}, /* any case */
        {"Negotiate forged", 401, "the credentials are not valid"},
        {"Token tok-2", 200, NULL},
        {"TOKEN tok-1", 200, NULL},
        {"Token tok-3", 401, "the credentials are not valid"},
        {"Token", 401, "credentials are required"},        /* no credentials */
        {"Tokenx tok-1", 401, "credentials are required"}, /* another scheme */
        {"Bearer tok-1", 401, "credentials are required"},
        {NULL, 401, "credentials are required"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        auth_call("/other", cases[i].authorization, &r);
        ck_assert_msg(r.status == cases[i].status, "%s: %ld %s",
                      cases[i].authorization ? cases[i].authorization : "(none)", r.status, r.body);
        if (r.status == 200) {
            expect_sub(&r, cases[i].what);
        } else {
            /* both schemes are offered, and never an ApiKey */
            expect_error(&r, 401, "unauthorized", "Negotiate realm=\"vault\", Token realm=");
            ck_assert_ptr_null(strcasestr(r.headers, "ApiKey"));
            ck_assert_msg(strstr(r.body, cases[i].what), "%s: %s", cases[i].authorization,
                          r.body);
        }
    }
}
END_TEST

START_TEST(an_open_operation_needs_nothing)
{
    reply r;
    call("GET", "/open", NULL, NULL, &r);
    expect_sub(&r, NULL);
}
END_TEST

START_TEST(a_bearer_operation_answers_401_with_a_challenge_then_serves_the_claims)
{
    reply r;
    call("GET", "/read", NULL, NULL, &r);
    expect_error(&r, 401, "unauthorized", "WWW-Authenticate: Bearer realm=\"vault\"");
    ck_assert_ptr_null(strstr(r.headers, "error=")); /* RFC 6750 3.1: no error without creds */

    char *good = token(key, "vault", 300, NULL);
    call("GET", "/read", good, NULL, &r);
    expect_sub(&r, "svc-user");
    call("GET", "/read", good, NULL, &r); /* the cached verification */
    expect_sub(&r, "svc-user");

    char *expired = token(key, "vault", -3600, NULL);
    call("GET", "/read", expired, NULL, &r);
    expect_error(&r, 401, "token_expired", "error=\"invalid_token\"");
    char *forged = token(stranger, "vault", 300, NULL);
    call("GET", "/read", forged, NULL, &r);
    expect_error(&r, 401, "bad_signature", "error=\"invalid_token\"");
    char *elsewhere = token(key, "wallet", 300, NULL);
    call("GET", "/read", elsewhere, NULL, &r);
    expect_error(&r, 401, "wrong_audience", "error=\"invalid_token\"");
    call("GET", "/read", "not.a.token", NULL, &r);
    expect_error(&r, 401, "bad_base64url", "WWW-Authenticate: Bearer");
    /* two Authorization lines, a good one first: one credential is allowed (RFC 9110 11.6.2),
     * and which of them a proxy checked is unknown (the first one was taken) */
    char url[128], line[4096];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/read", (unsigned)tb_server_port(srv));
    snprintf(line, sizeof line, "Authorization: Bearer %s", good);
    struct curl_slist *two = curl_slist_append(NULL, line);
    two = curl_slist_append(two, "Authorization: Bearer not.a.token");
    tht_request(NULL, "GET", url, 0, two, &r);
    curl_slist_free_all(two);
    expect_error(&r, 400, "invalid_request", NULL);
    free(good);
    free(expired);
    free(forged);
    free(elsewhere);
}
END_TEST

START_TEST(a_token_without_the_scope_is_403_and_alternatives_are_tried_in_turn)
{
    reply r;
    char *plain = token(key, "vault", 300, "vault.read");
    char *scoped = token(key, "vault", 300, "vault.read vault.write");
    /* a valid token without vault.write, and no key: 403 insufficient_scope */
    call("POST", "/write", plain, NULL, &r);
    expect_error(&r, 403, "insufficient_scope", "error=\"insufficient_scope\"");
    ck_assert_ptr_nonnull(strcasestr(r.headers, "scope=\"vault.write\""));
    /* the first alternative: the scope */
    call("POST", "/write", scoped, NULL, &r);
    expect_sub(&r, "svc-user");
    /* the second: a key and any valid token, both */
    call("POST", "/write", plain, "k-two", &r);
    expect_sub(&r, "svc-user");
    call("POST", "/write", NULL, "k-two", &r);
    expect_error(&r, 401, "unauthorized", "WWW-Authenticate:");
    call("POST", "/write", plain, "k-three", &r);
    expect_error(&r, 403, "insufficient_scope", NULL); /* the most telling failure */
    call("POST", "/write", NULL, NULL, &r);
    expect_error(&r, 401, "unauthorized", "Bearer realm=\"vault\"");
    /* a wrong key and no token: the Bearer challenge names no token error (RFC 6750 3.1; it
     * said error="invalid_token", error_description="invalid argument") */
    call("POST", "/write", NULL, "k-nope", &r);
    expect_error(&r, 401, "unauthorized", "Bearer realm=\"vault\"");
    ck_assert_msg(!strstr(r.headers, "error=") && !strstr(r.headers, "invalid argument"), "%s",
                  r.headers);
    free(plain);
    free(scoped);
}
END_TEST

/* Secured operations (TB_OP_SECURED) are rate limited by the verified token's sub, checked
 * after the credentials: two callers behind one address each get their own budget. */
static const tb_http_op sec_ops[] = {
    {"open", TB_HTTP_GET, "/open", 0, open_op, NULL},
    {"read", TB_HTTP_GET, "/read", TB_OP_SECURED, read_op, NULL},
    {"write", TB_HTTP_POST, "/write", TB_OP_SECURED, write_op, NULL},
};
static const tb_http_api sec_api = {"vault", "Vault", "1.0", sec_ops, 3, match, routes, 3, NULL, NULL, 0, NULL, 0, NULL, 0};

static char *token_for(const tb_jwt_key *k, const char *sub)
{
    long now = (long)time(NULL);
    json_t *c = json_pack("{s:s, s:s, s:s, s:I, s:I, s:s}", "iss", "tablium-auth", "aud", "vault",
                          "sub", sub, "iat", (json_int_t)now, "exp", (json_int_t)(now + 300),
                          "scope", "vault.read");
    char *t = NULL;
    tb_error err = TB_ERROR_INIT;
    ck_assert_msg(tb_jwt_sign(k, c, NULL, &t, &err) == 0, "%s", err.message);
    tb_error_deinit(&err);
    json_decref(c);
    return t;
}

START_TEST(secured_operations_are_rate_limited_by_the_tokens_sub)
{
    tb_server *plain = srv; /* the fixture's; this test runs its own */
    tb_server_opts so = TB_SERVER_OPTS_INIT;
    so.threads = 2;
    so.access_log = false;
    tb_error err = TB_ERROR_INIT;
    srv = tb_server_new(&sec_api, &so, &err);
    ck_assert_ptr_nonnull(srv);
    tb_server_set_jwt_verifier(srv, ver);
    tb_rate_limit l = {3, 60000, 0};
    ck_assert_int_eq(tb_server_set_rate_limit(srv, "read", &l), 0);
    ck_assert_int_eq(tb_server_start(srv, &err), 0);
    char *alice = token_for(key, "alice"), *bob = token_for(key, "bob");
    reply r;
    for (int i = 0; i < 3; i++) {
        call("GET", "/read", alice, NULL, &r);
        expect_sub(&r, "alice");
        ck_assert_msg(strcasestr(r.headers, "RateLimit-Policy:") != NULL, "%s", r.headers);
    }
    call("GET", "/read", alice, NULL, &r);
    expect_error(&r, 429, "rate_limited", "Retry-After:");
    for (int i = 0; i < 3; i++) { /* the same address, another sub: a budget of its own */
        call("GET", "/read", bob, NULL, &r);
        expect_sub(&r, "bob");
    }
    call("GET", "/read", bob, NULL, &r);
    ck_assert_int_eq(r.status, 429);
    /* failed attempts spend the address's budget: 3 answers 401, then 429 (no guessing
     * credentials at full speed); the callers with tokens keep theirs */
    for (int i = 0; i < 3; i++) {
        call("GET", "/read", NULL, NULL, &r);
        expect_error(&r, 401, "unauthorized", NULL);
    }
    call("GET", "/read", "not-a-token", NULL, &r);
    expect_error(&r, 429, "rate_limited", "Retry-After:");
    ck_assert_ptr_null(strcasestr(r.headers, "WWW-Authenticate"));
    free(alice);
    free(bob);
    tb_server_free(srv);
    srv = plain;
    tb_error_deinit(&err);
}
END_TEST

/* A secured operation on a server with no keys to verify tokens with (no TB_JWT_*): the
 * server's fault, so 503 with Retry-After, not a 401 that tells the client its token is bad. */
START_TEST(a_server_without_keys_answers_503_to_a_token)
{
    tb_server *keyed = srv; /* the fixture's; this test runs its own */
    tb_server_opts so = TB_SERVER_OPTS_INIT;
    so.threads = 1;
    so.access_log = false;
    tb_error err = TB_ERROR_INIT;
    srv = tb_server_new(&sec_api, &so, &err); /* TB_JWT_* unset: no verifier */
    ck_assert_msg(srv != NULL, "%s", err.message);
    ck_assert_int_eq(tb_server_start(srv, &err), 0);
    char *alice = token_for(key, "alice");
    reply r;
    call("GET", "/read", alice, NULL, &r);
    expect_error(&r, 503, "no_key", "Retry-After: 5");
    call("GET", "/read", NULL, NULL, &r); /* no token at all: still the client's to give */
    expect_error(&r, 401, "unauthorized", NULL);
    free(alice);
    tb_server_free(srv);
    srv = keyed;
    tb_error_deinit(&err);
}
END_TEST

/* A verifier whose key set is empty (a JWKS URL that did not answer at start): /health/ready
 * says so with 503, so that a load balancer does not send it the requests it would refuse;
 * ready again once keys arrive. */
START_TEST(a_server_whose_key_set_is_empty_is_not_ready)
{
    tb_server *keyed = srv;
    char path[] = "/tmp/tb-jwks-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "{\"keys\":[]}", 11), 11);
    close(fd);
    tb_jwt_verifier_opts vo = TB_JWT_VERIFIER_OPTS_INIT;
    vo.jwks_file = path;
    tb_jwt_verifier *v = NULL;
    tb_error err = TB_ERROR_INIT;
    ck_assert_msg(tb_jwt_verifier_new(&vo, &v, &err) == 0, "%s", err.message);
    tb_server_opts so = TB_SERVER_OPTS_INIT;
    so.threads = 1;
    so.access_log = false;
    srv = tb_server_new(&sec_api, &so, &err);
    ck_assert_msg(srv != NULL, "%s", err.message);
    tb_server_set_jwt_verifier(srv, v);
    ck_assert_int_eq(tb_server_start(srv, &err), 0);
    reply r;
    call("GET", "/health/ready", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 503);
    ck_assert_msg(strstr(r.body, "\"jwt\":{\"status\":\"down\",\"reason\":\"no keys"), "%s",
                  r.body);
    /* the key appears in the set: ready */
    json_t *set = json_pack("{s:[o]}", "keys", tb_jwt_key_to_jwk(key));
    ck_assert_int_eq(json_dump_file(set, path, JSON_COMPACT), 0);
    json_decref(set);
    ck_assert_int_eq(tb_jwt_verifier_reload(v, &err), 0);
    call("GET", "/health/ready", NULL, NULL, &r);
    ck_assert_msg(r.status == 200 && strstr(r.body, "\"jwt\":{\"status\":\"up\"}"), "%s",
                  r.body);
    tb_server_free(srv);
    tb_jwt_verifier_free(v);
    unlink(path);
    srv = keyed;
    tb_error_deinit(&err);
}
END_TEST

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    tb_log_set_level(TB_LOG_OFF);
    Suite *suite = suite_create("http_auth");
    TCase *tc = tcase_create("auth");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_add_test(tc, an_open_operation_needs_nothing);
    tcase_add_test(tc, other_http_schemes_go_to_the_servers_function_then_the_environment);
    tcase_add_test(tc, http_basic_checks_the_password_digest_and_names_the_user);
    tcase_add_test(tc, http_digest_as_libcurl_answers_it);
    tcase_add_test(tc, a_bearer_operation_answers_401_with_a_challenge_then_serves_the_claims);
    tcase_add_test(tc, a_token_without_the_scope_is_403_and_alternatives_are_tried_in_turn);
    tcase_add_test(tc, secured_operations_are_rate_limited_by_the_tokens_sub);
    tcase_add_test(tc, a_server_without_keys_answers_503_to_a_token);
    tcase_add_test(tc, a_server_whose_key_set_is_empty_is_not_ready);
    suite_add_tcase(suite, tc);
    SRunner *sr = srunner_create(suite);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
