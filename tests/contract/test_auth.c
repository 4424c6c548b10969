/*
 * Contract tests of the Auth service (openapi/auth.yaml), and the seed's event flow: Auth
 * registers an account and publishes user.registered through its outbox over RabbitMQ; the User
 * service consumes it and creates the profile. Needs TB_TEST_AMQP_URL (scripts/with-brokers.sh).
 *
 * Auth as the token issuer: its JWK Set, user tokens (login) and service tokens (client
 * credentials) verified by a tb_jwt_verifier that fetches the JWK Set from the running service,
 * key rotation without restarts, keys kept across a restart, periodic rotation and retirement.
 */
#include "harness.h"
#include "auth/auth.h"

#include "tablium/client.h"
#include "tablium/ctx.h"
#include "tablium/jwt.h"

#include <check.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static th_service auth_svc = {.name = "auth"};
static th_service user_svc = {.name = "user"};
static auth_client *ac;
static tb_arena *arena;
static tb_ctx ctx;
static char amqp_env[300];
/* (no Wallet runs with this User: no welcome wallet) */
static const char *env_list[] = {amqp_env, "AUTH_PBKDF2_ITERATIONS=1000", "TB_LOG_LEVEL=info",
                                 "USER_WELCOME_CURRENCY=", NULL};
static int serial;
/* the Auth under test also verifies the tokens of its own secured operation (key rotation):
 * it writes its JWK Set to a file the runtime's verifier reads */
static char jwks_file_env[400], runtime_jwks_env[400];
static const char *auth_env[] = {amqp_env,
                                 "AUTH_PBKDF2_ITERATIONS=1000",
                                 "TB_LOG_LEVEL=info",
                                 "AUTH_CLIENTS=user:s3cret-user:wallet.read wallet.write,"
                                 "ops:s3cret-ops:auth.keys.rotate,gw:s3cret-gw:*",
                                 "AUTH_KEY_PUBLISH_AHEAD_S=1",
                                 jwks_file_env,
                                 runtime_jwks_env,
                                 "TB_JWT_ISSUER=tablium-auth",
                                 "TB_JWT_AUDIENCE=tablium",
                                 /* the spec's limits have their own tests */
                                 "TB_RATE_LIMIT_AUTH_LOGIN=off",
                                 "TB_RATE_LIMIT_AUTH_REGISTER_ACCOUNT=off",
                                 "TB_RATE_LIMIT_AUTH_ISSUE_TOKEN=off",
                                 NULL};

static void sleep_ms(int ms) { usleep((useconds_t)ms * 1000); }

/* Wall-clock seconds: the services stamp keys and tokens with time(). */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void names(char *uname, size_t ucap, char *email, size_t ecap, const char *base)
{
    snprintf(uname, ucap, "%s_%d_%d", base, (int)getpid() % 100000, ++serial);
    snprintf(email, ecap, "%s@example.com", uname);
}

static auth_account do_register(const char *base, const char *display)
{
    char uname[64], email[96];
    names(uname, sizeof uname, email, sizeof email, base);
    auth_register_account_req req = {.body = {.email = email, .username = uname,
                                              .password = "correct horse battery"}};
    if (display) {
        req.body.has_display_name = true;
        req.body.display_name = (char *)display;
    }
    auth_register_account_resp out;
    tb_error err = TB_ERROR_INIT;
    ck_assert_msg(auth_register_account_call(ac, &ctx, &req, &out, &err) == 0, "%s",
                  err.message);
    ck_assert_int_eq(out.status, 201);
    tb_error_deinit(&err);
    return out.s201;
}

/* GET /users/{id}/profile on the User service until it is 200 (10 s at most). */
static json_t *wait_profile(const char *user_id)
{
    char u[256];
    snprintf(u, sizeof u, "%s/users/%s/profile", user_svc.direct, user_id);
    for (int t = 0; t < 200; t++) {
        th_resp r;
        th_http(&r, "GET", u, NULL, NULL, NULL);
        if (r.status == 200) {
            json_t *data = json_incref(json_object_get(r.json, "data"));
            th_resp_free(&r);
            return data;
        }
        ck_assert_msg(r.status == 404, "profile: %ld %s", r.status, r.body);
        th_resp_free(&r);
        sleep_ms(50);
    }
    return NULL;
}

/* Lines of a log file that contain `needle`. */
static int count_in_log(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[8192];
    int n = 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

START_TEST(register_then_get_account_and_conflicts_are_409)
{
    auth_account a = do_register("ada", NULL);
    ck_assert_int_eq((int)strlen(a.user_id), 36);
    ck_assert(a.has_event_id);
    auth_get_account_req g = {.user_id = a.user_id};
    auth_get_account_resp out;
    ck_assert_int_eq(auth_get_account_call(ac, &ctx, &g, &out, NULL), 0);
    ck_assert_int_eq(out.status, 200);
    ck_assert_str_eq(out.s200.username, a.username);
    ck_assert(!out.s200.has_event_id);
    /* same email (any case), other username */
    char upper[128];
    snprintf(upper, sizeof upper, "%s", a.email);
    upper[0] = (char)(upper[0] - 32);
    auth_register_account_req again = {.body = {.email = upper, .username = "someone_else",
                                                .password = "12345678"}};
    auth_register_account_resp o2;
    ck_assert_int_eq(auth_register_account_call(ac, &ctx, &again, &o2, NULL), 0);
    ck_assert_int_eq(o2.status, 409);
    ck_assert_str_eq(o2.s409.code, "email_taken");
    again.body.email = "other@example.com";
    again.body.username = a.username;
    ck_assert_int_eq(auth_register_account_call(ac, &ctx, &again, &o2, NULL), 0);
    ck_assert_int_eq(o2.status, 409);
    ck_assert_str_eq(o2.s409.code, "username_taken");
    /* a username in another case is the same name (ada_x, Ada_X and ADA_X were three accounts) */
    char cased[128];
    snprintf(cased, sizeof cased, "%s", a.username);
    for (char *p = cased; *p; p++)
        if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 32);
    again.body.username = cased;
    ck_assert_int_eq(auth_register_account_call(ac, &ctx, &again, &o2, NULL), 0);
    ck_assert_int_eq(o2.status, 409);
    ck_assert_str_eq(o2.s409.code, "username_taken");
    /* and the account logs in by it */
    auth_login_req lr = {.body = {.username = cased, .password = "correct horse battery"}};
    auth_login_resp lo;
    ck_assert_int_eq(auth_login_call(ac, &ctx, &lr, &lo, NULL), 0);
    ck_assert_int_eq(lo.status, 200);
    g.user_id = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
    ck_assert_int_eq(auth_get_account_call(ac, &ctx, &g, &out, NULL), 0);
    ck_assert_int_eq(out.status, 404);
}
END_TEST

START_TEST(bad_registrations_are_400_naming_the_field)
{
    char u[256];
    snprintf(u, sizeof u, "%s/auth/register", auth_svc.url);
    th_resp r;
    th_http(&r, "POST", u, "{\"email\":\"nope\",\"username\":\"ada_x\",\"password\":\"12345678\"}",
            NULL, NULL);
    th_assert_error(&r, 400, "validation_failed", "/body/email", "format");
    th_resp_free(&r);
    th_http(&r, "POST", u, "{\"email\":\"a@example.com\",\"username\":\"ada_x\",\"password\":\"1\"}",
            NULL, NULL);
    th_assert_error(&r, 400, "validation_failed", "/body/password", "minLength");
    th_resp_free(&r);
    th_http(&r, "POST", u, "{\"email\":\"a@example.com\",\"username\":\"ada_x\"}", NULL, NULL);
    th_assert_error(&r, 400, "validation_failed", "/body/password", "required");
    th_resp_free(&r);
    snprintf(u, sizeof u, "%s/auth/accounts/not-a-uuid", auth_svc.url);
    th_http(&r, "GET", u, NULL, NULL, NULL);
    th_assert_error(&r, 400, "validation_failed", "/path/userId", "pattern");
    th_resp_free(&r);
}
END_TEST

START_TEST(every_example_matches_its_schema)
{
    ck_assert_uint_ge(auth_n_examples, 3);
    for (size_t i = 0; i < auth_n_examples; i++) {
        const tb_api_example *ex = &auth_examples[i];
        json_t *j = json_loads(ex->json, JSON_DECODE_ANY, NULL);
        ck_assert_ptr_nonnull(j);
        tb_error err = TB_ERROR_INIT;
        ck_assert_msg(tb_api_example_validate(ex, j, &err) == 0, "%s %s %s: %s", ex->operation_id, ex->where,
                      ex->name, err.message);
        tb_error_deinit(&err);
        json_decref(j);
    }
}
END_TEST

START_TEST(a_registration_becomes_a_profile_in_the_user_service)
{
    auth_account a = do_register("grace", "Grace H");
    json_t *p = wait_profile(a.user_id);
    ck_assert_msg(p != NULL, "no profile for %s; user log %s", a.user_id, user_svc.log);
    ck_assert_str_eq(json_string_value(json_object_get(p, "displayName")), "Grace H");
    json_decref(p);
    /* the User service logged the event id the Auth service answered with */
    ck_assert_int_eq(count_in_log(user_svc.log, a.event_id), 1);
}
END_TEST

START_TEST(killed_between_commit_and_publish_the_outbox_relays_on_restart)
{
    /* a second Auth with the fault hook: it dies (SIGKILL) right after the commit, before the
     * broker publish */
    th_service faulty = {.name = "auth", .prism_port = -1}; /* not a contract check */
    static char fault_amqp[300];
    snprintf(fault_amqp, sizeof fault_amqp, "%s", amqp_env);
    const char *fenv[] = {fault_amqp, "AUTH_PBKDF2_ITERATIONS=1000",
                          "TB_FAULT=outbox-crash-before-publish", NULL};
    th_start(&faulty, fenv);
    char uname[64], email[96], body[300], u[256];
    names(uname, sizeof uname, email, sizeof email, "crash");
    snprintf(body, sizeof body, "{\"email\":\"%s\",\"username\":\"%s\",\"password\":\"12345678\"}",
             email, uname);
    snprintf(u, sizeof u, "%s/auth/register", faulty.direct);
    th_resp r;
    th_http(&r, "POST", u, body, NULL, NULL); /* 201, or the connection drops: both are fine */
    th_resp_free(&r);
    int st = 0;
    ck_assert_msg(th_wait_exit(&faulty, 10000, &st) && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
                  "the fault hook did not kill auth (log %s)", faulty.log);
    ck_assert_int_eq(count_in_log(faulty.log, "outbox-crash-before-publish"), 1);
    /* nothing was published: the user does not exist yet */
    ck_assert_int_eq(count_in_log(user_svc.log, uname), 0);

    /* restarted without the fault: the outbox still holds the event and relays it */
    th_start(&faulty, env_list);
    /* the profile appears (the User service logs each one it creates, with the username) */
    for (int t = 0; t < 200 && count_in_log(user_svc.log, uname) == 0; t++)
        sleep_ms(50);
    ck_assert_msg(count_in_log(user_svc.log, uname) == 1, "profile of %s created %d times",
                  uname, count_in_log(user_svc.log, uname));
    sleep_ms(500); /* no second delivery shows up */
    ck_assert_int_eq(count_in_log(user_svc.log, uname), 1);
    ck_assert_int_eq(th_stop(&faulty), 0);
    th_cleanup(&faulty);
}
END_TEST


/* ---- the token issuer ---- */

static const char PASSWORD[] = "correct horse battery";

/* POST body to svc's path; asserts 200 and returns the access_token (caller frees). */
static char *token_from(const th_service *svc, const char *path, const char *body,
                        const char *want_scope)
{
    char u[256];
    snprintf(u, sizeof u, "%s%s", svc->url, path);
    th_resp r;
    th_http(&r, "POST", u, body, NULL, NULL);
    ck_assert_msg(r.status == 200, "%s: %ld %s", path, r.status, r.body);
    th_assert_no_response_violation(&r);
    char cc[64];
    ck_assert(th_header(&r, "Cache-Control", cc, sizeof cc));
    ck_assert_str_eq(cc, "no-store");
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "token_type")), "Bearer");
    ck_assert_int_gt(json_integer_value(json_object_get(r.json, "expires_in")), 0);
    if (want_scope)
        ck_assert_str_eq(json_string_value(json_object_get(r.json, "scope")), want_scope);
    char *tok = strdup(json_string_value(json_object_get(r.json, "access_token")));
    th_resp_free(&r);
    return tok;
}

static char *login_token(const th_service *svc, const char *who)
{
    char body[300];
    snprintf(body, sizeof body, "{\"username\":\"%s\",\"password\":\"%s\"}", who, PASSWORD);
    return token_from(svc, "/auth/login", body, "user");
}

static char *client_token(const th_service *svc, const char *id, const char *secret,
                          const char *scope, const char *want_scope)
{
    char body[400];
    snprintf(body, sizeof body,
             "{\"grant_type\":\"client_credentials\",\"client_id\":\"%s\",\"client_secret\":"
             "\"%s\"%s%s%s}",
             id, secret, scope ? ",\"scope\":\"" : "", scope ? scope : "", scope ? "\"" : "");
    return token_from(svc, "/oauth/token", body, want_scope);
}

/* The kid of a token's header into out. */
static void token_kid(const char *tok, char *out, size_t cap)
{
    const char *dot = strchr(tok, '.');
    ck_assert_ptr_nonnull(dot);
    size_t n = (size_t)(dot - tok);
    char b64[1024];
    unsigned char raw[1024];
    ck_assert_uint_lt(n + 4, sizeof b64);
    for (size_t i = 0; i < n; i++)
        b64[i] = tok[i] == '-' ? '+' : tok[i] == '_' ? '/' : tok[i];
    int pad = 0;
    for (; n % 4; pad++)
        b64[n++] = '=';
    int len = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)n);
    ck_assert_int_gt(len, pad);
    json_t *h = json_loadb((const char *)raw, (size_t)(len - pad), 0, NULL);
    ck_assert_ptr_nonnull(h);
    const char *kid = json_string_value(json_object_get(h, "kid"));
    ck_assert_msg(kid != NULL, "no kid in the token's header");
    snprintf(out, cap, "%s", kid);
    json_decref(h);
}

/* GET the JWK Set: asserts 200, the Cache-Control and that tb_jwks_parse takes all of it. */
static tb_jwks *fetch_jwks(const th_service *svc)
{
    char u[256];
    snprintf(u, sizeof u, "%s/.well-known/jwks.json", svc->url);
    th_resp r;
    th_http(&r, "GET", u, NULL, NULL, NULL);
    ck_assert_msg(r.status == 200, "jwks: %ld %s", r.status, r.body);
    th_assert_no_response_violation(&r);
    ck_assert_ptr_null(json_object_get(r.json, "data")); /* a bare RFC 7517 document */
    char cc[64];
    ck_assert(th_header(&r, "Cache-Control", cc, sizeof cc));
    ck_assert_ptr_nonnull(strstr(cc, "max-age=60"));
    tb_jwks *ks = NULL;
    size_t skipped = 9;
    tb_error err = TB_ERROR_INIT;
    ck_assert_msg(tb_jwks_parse(r.body, r.len, TB_JWT_ALG_UNKNOWN, &ks, &skipped, &err) == 0,
                  "%s", err.message);
    ck_assert_uint_eq(skipped, 0);
    ck_assert_uint_ge(tb_jwks_count(ks), 1);
    tb_error_deinit(&err);
    th_resp_free(&r);
    return ks;
}

static bool jwks_has(const th_service *svc, const char *kid)
{
    tb_jwks *ks = fetch_jwks(svc);
    bool has = tb_jwks_find(ks, kid) != NULL;
    tb_jwks_free(ks);
    return has;
}

/* A verifier of svc's tokens that fetches its JWK Set by URL, issuer and audience checked. */
static tb_jwt_verifier *verifier_of(const th_service *svc, int refetch_interval_s)
{
    char u[256];
    snprintf(u, sizeof u, "%s/.well-known/jwks.json", svc->url);
    tb_jwt_verifier_opts o = TB_JWT_VERIFIER_OPTS_INIT;
    o.jwks_url = u;
    o.issuer = "tablium-auth";
    o.audience = "tablium";
    o.refetch_interval_s = refetch_interval_s;
    o.alg_mask = 1u << TB_JWT_ES256;
    tb_jwt_verifier *v = NULL;
    tb_error err = TB_ERROR_INIT;
    ck_assert_msg(tb_jwt_verifier_new(&o, &v, &err) == 0, "%s", err.message);
    tb_error_deinit(&err);
    return v;
}

/* Verifies tok with v; returns the claims (caller frees). */
static tb_jwt_claims *verify_ok(tb_jwt_verifier *v, const char *tok)
{
    tb_jwt_claims *c = NULL;
    tb_error err = TB_ERROR_INIT;
    int rc = tb_jwt_verify(v, tok, strlen(tok), &c, &err);
    ck_assert_msg(rc == 0, "%s: %s", tb_jwt_err_name(rc), err.message);
    tb_error_deinit(&err);
    return c;
}

START_TEST(jwks_is_served_bare_and_parses)
{
    tb_jwks *ks = fetch_jwks(&auth_svc);
    for (size_t i = 0; i < tb_jwks_count(ks); i++) {
        ck_assert_ptr_nonnull(tb_jwt_key_kid(tb_jwks_get(ks, i)));
        ck_assert_int_eq(tb_jwt_key_alg(tb_jwks_get(ks, i)), TB_JWT_ES256); /* the default */
        ck_assert(!tb_jwt_key_can_sign(tb_jwks_get(ks, i)));
    }
    tb_jwks_free(ks);
}
END_TEST

START_TEST(a_login_token_verifies_over_the_jwks_url_with_sub_and_scope)
{
    auth_account a = do_register("lin", NULL);
    tb_jwt_verifier *v = verifier_of(&auth_svc, 10);
    const char *logins[] = {a.username, a.email};
    for (int i = 0; i < 2; i++) { /* by username and by email */
        char *tok = login_token(&auth_svc, logins[i]);
        char kid[64];
        token_kid(tok, kid, sizeof kid);
        ck_assert(jwks_has(&auth_svc, kid));
        tb_jwt_claims *c = verify_ok(v, tok);
        ck_assert_str_eq(tb_jwt_claims_sub(c), a.user_id);
        ck_assert(tb_jwt_claims_has_scope(c, "user"));
        ck_assert_str_eq(tb_jwt_claims_string(c, "iss"), "tablium-auth");
        ck_assert_ptr_nonnull(tb_jwt_claims_string(c, "jti"));
        int64_t exp = tb_jwt_claims_exp(c);
        int64_t iat = (int64_t)json_integer_value(tb_jwt_claims_get(c, "iat"));
        ck_assert_int_eq(exp - iat, 900);
        tb_jwt_claims_free(c);
        free(tok);
    }
    tb_jwt_verifier_free(v);
}
END_TEST

/* x-tablium-rate-limit on login (30/1m, bursts of 10), compiled into the server from the spec:
 * the 11th quick attempt from one address is 429 with Retry-After, before any password work. */
START_TEST(login_attempts_are_rate_limited_as_the_spec_declares)
{
    th_service s = {.name = "auth", .prism_port = -1};
    /* a misspelt override (no such operation) leaves the spec's limit, and says so */
    const char *env[] = {amqp_env, "AUTH_PBKDF2_ITERATIONS=1000", "TB_RATE_LIMIT_AUTH_LOGINN=off",
                         NULL};
    th_start(&s, env);
    char u[256];
    snprintf(u, sizeof u, "%s/auth/login", s.direct);
    int refused = 0, other = 0;
    th_resp r;
    for (int i = 0; i < 11; i++) {
        th_http(&r, "POST", u, "{\"username\":\"nobody_here\",\"password\":\"x-x-x-x-x\"}",
                NULL, NULL);
        if (r.status == 429) {
            refused++;
            char ra[32];
            ck_assert(th_header(&r, "Retry-After", ra, sizeof ra));
            ck_assert_int_ge(atoi(ra), 1);
            th_assert_error(&r, 429, "rate_limited", NULL, NULL);
        } else {
            other += r.status != 401;
        }
        th_resp_free(&r);
    }
    ck_assert_int_eq(other, 0);
    ck_assert_int_eq(refused, 1); /* 10 in the burst, the 11th refused */
    ck_assert_int_eq(th_stop(&s), 0);
    ck_assert_int_eq(count_in_log(s.log, "TB_RATE_LIMIT_AUTH_LOGINN names no operation"), 1);
    th_cleanup(&s);
}
END_TEST

/* Registrations (20/1m, bursts of 10) and the token endpoint (60/1m, bursts of 20) are limited
 * per address too: 60 guesses of a client secret in a few seconds all got their 401 and 60
 * registrations all went through. The token endpoint's 429 is an RFC 6749 error. */
START_TEST(registrations_and_client_secret_guesses_are_rate_limited)
{
    th_service s = {.name = "auth", .prism_port = -1};
    const char *env[] = {amqp_env, "AUTH_PBKDF2_ITERATIONS=1000", "AUTH_CLIENTS=gw:s3cret-gw:*",
                         NULL};
    th_start(&s, env);
    char u[256], body[256];
    snprintf(u, sizeof u, "%s/oauth/token", s.direct);
    int refused = 0, other = 0;
    th_resp r;
    for (int i = 0; i < 21; i++) {
        th_http(&r, "POST", u, "grant_type=client_credentials&client_id=gw&client_secret=guess",
                "application/x-www-form-urlencoded", NULL);
        if (r.status == 429) {
            refused++;
            char ra[32];
            ck_assert(th_header(&r, "Retry-After", ra, sizeof ra));
            ck_assert_str_eq(json_string_value(json_object_get(r.json, "error")),
                             "temporarily_unavailable");
        } else {
            other += r.status != 401;
        }
        th_resp_free(&r);
    }
    ck_assert_int_eq(other, 0);
    ck_assert_int_eq(refused, 1); /* 20 in the burst, the 21st refused */
    snprintf(u, sizeof u, "%s/auth/register", s.direct);
    refused = other = 0;
    for (int i = 0; i < 11; i++) {
        snprintf(body, sizeof body,
                 "{\"email\":\"flood%d.%d@example.com\",\"username\":\"flood_%d_%d\","
                 "\"password\":\"correct horse battery\"}",
                 i, (int)getpid(), i, (int)getpid());
        th_http(&r, "POST", u, body, NULL, NULL);
        if (r.status == 429)
            th_assert_error(&r, 429, "rate_limited", NULL, NULL), refused++;
        else
            other += r.status != 201;
        th_resp_free(&r);
    }
    ck_assert_int_eq(other, 0);
    ck_assert_int_eq(refused, 1); /* 10 in the burst, the 11th refused */
    ck_assert_int_eq(th_stop(&s), 0);
    th_cleanup(&s);
}
END_TEST

START_TEST(wrong_password_and_unknown_account_are_the_same_401)
{
    auth_account a = do_register("pat", NULL);
    char u[256], body[300];
    snprintf(u, sizeof u, "%s/auth/login", auth_svc.url);
    const char *bodies[][2] = {{a.username, "not the password"},
                               {"nobody_here_at_all", PASSWORD}};
    char first[200] = "";
    for (int i = 0; i < 2; i++) {
        snprintf(body, sizeof body, "{\"username\":\"%s\",\"password\":\"%s\"}", bodies[i][0],
                 bodies[i][1]);
        th_resp r;
        th_http(&r, "POST", u, body, NULL, NULL);
        th_assert_error(&r, 401, "invalid_credentials", NULL, NULL);
        const char *msg = json_string_value(json_object_get(json_object_get(r.json, "error"),
                                                            "message"));
        if (i == 0)
            snprintf(first, sizeof first, "%s", msg);
        else
            ck_assert_str_eq(msg, first);
        th_resp_free(&r);
    }
}
END_TEST

START_TEST(client_credentials_give_a_service_token_with_the_granted_scopes)
{
    tb_jwt_verifier *v = verifier_of(&auth_svc, 10);
    struct {
        const char *id, *secret, *scope, *granted;
    } cases[] = {
        {"user", "s3cret-user", "wallet.read", "wallet.read"},
        {"user", "s3cret-user", NULL, "wallet.read wallet.write"}, /* all it is allowed */
        {"user", "s3cret-user", "wallet.write wallet.read wallet.write",
         "wallet.write wallet.read"},
        {"gw", "s3cret-gw", "anything.at all", "anything.at all"}, /* "*" */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *tok = client_token(&auth_svc, cases[i].id, cases[i].secret, cases[i].scope,
                                 cases[i].granted);
        tb_jwt_claims *c = verify_ok(v, tok);
        ck_assert_str_eq(tb_jwt_claims_sub(c), cases[i].id);
        ck_assert_str_eq(tb_jwt_claims_string(c, "scope"), cases[i].granted);
        tb_jwt_claims_free(c);
        free(tok);
    }
    tb_jwt_verifier_free(v);
}
END_TEST

/* r is an RFC 6749 5.2 error: status, {"error": code, "error_description": ... containing
 * `says` (may be NULL)}, Cache-Control: no-store when the handler answered (not the runtime). */
static void assert_oauth_error(const th_resp *r, long status, const char *code, const char *says)
{
    ck_assert_msg(r->status == status, "status %ld, want %ld: %s", r->status, status, r->body);
    const char *e = json_string_value(json_object_get(r->json, "error"));
    const char *d = json_string_value(json_object_get(r->json, "error_description"));
    ck_assert_msg(e && strcmp(e, code) == 0, "want error %s: %s", code, r->body);
    ck_assert_msg(d && (!says || strstr(d, says)), "want a description with '%s': %s",
                  says ? says : "", r->body);
    char cc[64];
    if (strcmp(code, "invalid_request") != 0 || !says || !strstr(says, "validation_failed")) {
        ck_assert_msg(th_header(r, "Cache-Control", cc, sizeof cc), "no Cache-Control: %s",
                      r->headers);
        ck_assert_str_eq(cc, "no-store");
    }
}

START_TEST(bad_clients_are_401_and_scopes_beyond_the_client_400_invalid_scope)
{
    char u[256];
    snprintf(u, sizeof u, "%s/oauth/token", auth_svc.url);
    struct {
        const char *body, *code;
        long status;
    } cases[] = {
        {"{\"grant_type\":\"client_credentials\",\"client_id\":\"user\","
         "\"client_secret\":\"s3cret-user\",\"scope\":\"wallet.read wallet.admin\"}",
         "invalid_scope", 400},
        {"{\"grant_type\":\"client_credentials\",\"client_id\":\"user\","
         "\"client_secret\":\"s3cret-ops\"}",
         "invalid_client", 401},
        {"{\"grant_type\":\"client_credentials\",\"client_id\":\"nobody\","
         "\"client_secret\":\"s3cret-user\"}",
         "invalid_client", 401},
        {"{\"grant_type\":\"password\",\"client_id\":\"user\",\"client_secret\":\"s3cret-user\"}",
         "unsupported_grant_type", 400},
        {"{\"grant_type\":\"client_credentials\",\"client_id\":\"user\"}", "invalid_client", 401},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        th_resp r;
        th_http(&r, "POST", u, cases[i].body, NULL, NULL);
        assert_oauth_error(&r, cases[i].status, cases[i].code, NULL);
        th_resp_free(&r);
    }
    /* the runtime's own refusals take the same shape, and still name the field and the rule */
    th_resp r;
    th_http(&r, "POST", u, "{\"client_id\":\"user\",\"client_secret\":\"s3cret-user\"}", NULL,
            NULL);
    assert_oauth_error(&r, 400, "invalid_request",
                       "validation_failed: the request does not match its schema: "
                       "/body/grant_type: ");
    ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(r.json, "error_description")),
                                 "(required)"));
    th_resp_free(&r);
    th_http(&r, "POST", u, "grant_type=client_credentials", "text/plain", NULL);
    ck_assert_int_eq(r.status, 415);
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "error")), "invalid_request");
    th_resp_free(&r);
}
END_TEST

/* RFC 6749 4.4 as OAuth2 client libraries speak it: a form body, the client authenticated by
 * HTTP Basic of its form-encoded id and secret (2.3.1) or in the body, not both; parameters the
 * server does not know ignored (3.2); an independent client (requests-oauthlib) gets a token
 * that verifies, and reads the errors. */
START_TEST(the_token_endpoint_speaks_rfc_6749_to_an_independent_client)
{
    tb_jwt_verifier *v = verifier_of(&auth_svc, 10);
    char u[256];
    snprintf(u, sizeof u, "%s/oauth/token", auth_svc.url);
    const char *basic[] = {"Authorization: Basic dXNlcjpzM2NyZXQtdXNlcg==", NULL}; /* user:s3cret-user */
    th_resp r;
    th_http(&r, "POST", u, "grant_type=client_credentials&scope=wallet.read&audience=x",
            "application/x-www-form-urlencoded", basic);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    const char *tok = json_string_value(json_object_get(r.json, "access_token"));
    ck_assert_ptr_nonnull(tok);
    tb_jwt_claims *c = verify_ok(v, tok);
    ck_assert_str_eq(tb_jwt_claims_sub(c), "user");
    ck_assert_str_eq(tb_jwt_claims_string(c, "scope"), "wallet.read");
    tb_jwt_claims_free(c);
    th_resp_free(&r);
    /* client_secret_post in a form */
    th_http(&r, "POST", u,
            "grant_type=client_credentials&client_id=user&client_secret=s3cret-user",
            "application/x-www-form-urlencoded", NULL);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    th_resp_free(&r);
    /* both methods at once: invalid_request; a wrong Basic secret: 401 with a Basic challenge */
    th_http(&r, "POST", u, "grant_type=client_credentials&client_secret=s3cret-user",
            "application/x-www-form-urlencoded", basic);
    assert_oauth_error(&r, 400, "invalid_request", "not both");
    th_resp_free(&r);
    const char *wrong[] = {"Authorization: Basic dXNlcjpub3BlCg==", NULL};
    th_http(&r, "POST", u, "grant_type=client_credentials", "application/x-www-form-urlencoded",
            wrong);
    assert_oauth_error(&r, 401, "invalid_client", "wrong secret");
    char chal[128];
    ck_assert(th_header(&r, "WWW-Authenticate", chal, sizeof chal));
    ck_assert_ptr_nonnull(strstr(chal, "Basic"));
    th_resp_free(&r);

    /* requests-oauthlib, Basic then post, then two errors */
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 tests/auth/oauth_client.py '%s' user s3cret-user wallet.read", u);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof line, p)) {
        json_t *j = json_loads(line, 0, NULL);
        ck_assert_msg(j != NULL, "oauth_client.py: %s", line);
        const char *kase = json_string_value(json_object_get(j, "case"));
        ck_assert_ptr_nonnull(kase);
        if (strcmp(kase, "basic") == 0 || strcmp(kase, "post") == 0) {
            ck_assert_str_eq(json_string_value(json_object_get(j, "token_type")), "Bearer");
            tb_jwt_claims *cl =
                verify_ok(v, json_string_value(json_object_get(j, "access_token")));
            ck_assert_str_eq(tb_jwt_claims_sub(cl), "user");
            ck_assert_str_eq(tb_jwt_claims_string(cl, "scope"),
                             kase[0] == 'b' ? "wallet.read" : "wallet.read wallet.write");
            tb_jwt_claims_free(cl);
        } else {
            const char *want = strcmp(kase, "wrong-secret") == 0 ? "invalid_client"
                                                                  : "invalid_scope";
            const char *got = json_string_value(json_object_get(j, "error"));
            ck_assert_msg(got && strcmp(got, want) == 0, "%s: %s", kase, line);
        }
        n++;
        json_decref(j);
    }
    int st = pclose(p);
    ck_assert_msg(st == 0 && n == 4, "oauth_client.py: exit %d after %d cases", st, n);
    printf("oauth2-interop: requests-oauthlib got and verified 2 tokens (client_secret_basic, "
           "client_secret_post) and read 2 RFC 6749 errors\n");
    fflush(stdout);
    tb_jwt_verifier_free(v);
}
END_TEST

/* POST /auth/keys/rotate with `token` (may be NULL); returns the response (caller frees). */
static void rotate(th_resp *r, const char *token)
{
    char u[256], auth[2048];
    snprintf(u, sizeof u, "%s/auth/keys/rotate", auth_svc.url);
    if (token)
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    else
        snprintf(auth, sizeof auth, "Authorization:"); /* none, not the harness's token */
    const char *hdrs[] = {auth, NULL};
    th_http(r, "POST", u, NULL, NULL, hdrs);
}

START_TEST(rotation_keeps_old_tokens_valid_and_verifiers_refetch_the_new_kid)
{
    auth_account a = do_register("rot", NULL);
    tb_jwt_verifier *v = verifier_of(&auth_svc, 1);
    char *before = login_token(&auth_svc, a.username);
    char kid_before[64], kid_after[64];
    token_kid(before, kid_before, sizeof kid_before);
    tb_jwt_claims_free(verify_ok(v, before));
    tb_jwt_stats st0;
    tb_jwt_verifier_stats(v, &st0);

    /* only a service token with auth.keys.rotate may rotate */
    th_resp r;
    rotate(&r, NULL);
    th_assert_error(&r, 401, "unauthorized", NULL, NULL);
    th_resp_free(&r);
    rotate(&r, before);
    th_assert_error(&r, 403, "insufficient_scope", NULL, NULL);
    th_resp_free(&r);
    char *ops = client_token(&auth_svc, "ops", "s3cret-ops", NULL, "auth.keys.rotate");
    rotate(&r, ops);
    ck_assert_msg(r.status == 200, "rotate: %ld %s", r.status, r.body);
    th_assert_no_response_violation(&r);
    json_t *d = json_object_get(r.json, "data");
    char new_kid[64];
    snprintf(new_kid, sizeof new_kid, "%s", json_string_value(json_object_get(d, "kid")));
    ck_assert_str_ne(new_kid, kid_before);
    ck_assert_ptr_nonnull(json_object_get(d, "previousRetiresAt"));
    th_resp_free(&r);

    /* published at once, next to the old key */
    ck_assert(jwks_has(&auth_svc, new_kid));
    ck_assert(jwks_has(&auth_svc, kid_before));

    /* it signs from activeFrom on (AUTH_KEY_PUBLISH_AHEAD_S=1) */
    char *after = NULL;
    for (int t = 0; t < 50; t++) {
        free(after);
        after = login_token(&auth_svc, a.username);
        token_kid(after, kid_after, sizeof kid_after);
        if (strcmp(kid_after, kid_before) != 0)
            break;
        sleep_ms(100);
    }
    ck_assert_str_eq(kid_after, new_kid);

    /* the verifier meets an unknown kid, refetches the JWK Set and takes the token */
    tb_jwt_claims *c = verify_ok(v, after);
    ck_assert_str_eq(tb_jwt_claims_sub(c), a.user_id);
    tb_jwt_claims_free(c);
    tb_jwt_stats st1;
    tb_jwt_verifier_stats(v, &st1);
    ck_assert_uint_gt(st1.fetches, st0.fetches);
    /* the token signed before the rotation still verifies, also for a new verifier */
    tb_jwt_claims_free(verify_ok(v, before));
    tb_jwt_verifier *fresh = verifier_of(&auth_svc, 10);
    tb_jwt_claims_free(verify_ok(fresh, before));
    tb_jwt_claims_free(verify_ok(fresh, after));
    tb_jwt_verifier_free(fresh);
    tb_jwt_verifier_free(v);
    free(ops);
    free(before);
    free(after);
}
END_TEST

START_TEST(a_restarted_auth_keeps_its_keys)
{
    auth_account a = do_register("rst", NULL);
    char *before = login_token(&auth_svc, a.username);
    char kid_before[64], kid_after[64];
    token_kid(before, kid_before, sizeof kid_before);
    tb_jwks *ks0 = fetch_jwks(&auth_svc);

    auth_client_free(ac);
    ck_assert_int_eq(th_stop(&auth_svc), 0);
    th_start(&auth_svc, auth_env);
    tb_client_opts copts = th_client_opts();
    ac = auth_client_new(auth_svc.url, &copts, NULL);
    ck_assert_ptr_nonnull(ac);

    tb_jwks *ks1 = fetch_jwks(&auth_svc);
    ck_assert_uint_eq(tb_jwks_count(ks1), tb_jwks_count(ks0));
    for (size_t i = 0; i < tb_jwks_count(ks0); i++)
        ck_assert_ptr_nonnull(tb_jwks_find(ks1, tb_jwt_key_kid(tb_jwks_get(ks0, i))));
    tb_jwt_verifier *v = verifier_of(&auth_svc, 10);
    tb_jwt_claims_free(verify_ok(v, before));
    char *after = login_token(&auth_svc, a.username);
    token_kid(after, kid_after, sizeof kid_after);
    ck_assert_str_eq(kid_after, kid_before); /* the same signing key, not a new one */
    tb_jwt_claims_free(verify_ok(v, after));
    tb_jwt_verifier_free(v);
    tb_jwks_free(ks0);
    tb_jwks_free(ks1);
    free(before);
    free(after);
}
END_TEST

START_TEST(periodic_rotation_and_retired_keys_leave_the_jwks)
{
    /* A second Auth: EdDSA keys rotated every second, 2 s tokens, no grace, no publish-ahead.
     * Keys are stamped in whole seconds, so a key retires at floor(rotation) + 2 > rotation + 1:
     * it is published for at least a second after the token that shows the rotation. Every wait
     * polls with a deadline instead of sleeping a fixed time, so a loaded machine slows the test
     * down without failing it. */
    th_service auth2 = {.name = "auth"};
    static char amqp2[300];
    snprintf(amqp2, sizeof amqp2, "%s", amqp_env);
    const char *env2[] = {amqp2, "AUTH_CLIENTS=gw:s3cret-gw:*", "AUTH_SIGNING_ALG=EdDSA",
                          "AUTH_KEY_ROTATE_S=1", "AUTH_TOKEN_TTL_S=2",
                          "AUTH_KEY_RETIRE_GRACE_S=0", "AUTH_KEY_PUBLISH_AHEAD_S=0", NULL};
    th_start(&auth2, env2);
    double last_k1 = now_s(); /* when the last request that still got a k1 token started */
    char *t1 = client_token(&auth2, "gw", "s3cret-gw", "a", "a");
    char k1[64], k2[64] = "";
    token_kid(t1, k1, sizeof k1);
    /* rotated without being asked: a later token names another key */
    for (double deadline = now_s() + 15; !*k2 && now_s() < deadline;) {
        double started = now_s();
        char *t = client_token(&auth2, "gw", "s3cret-gw", "a", "a");
        char kid[64];
        token_kid(t, kid, sizeof kid);
        free(t);
        if (strcmp(kid, k1) != 0)
            snprintf(k2, sizeof k2, "%s", kid);
        else
            last_k1 = started, sleep_ms(100);
    }
    ck_assert_msg(*k2, "the signing key did not rotate within 15 s");
    tb_jwks *ks = fetch_jwks(&auth2);
    /* k1 signed at or after last_k1, so it retires after last_k1 + 1 s: a JWK Set fetched
     * before then must still hold it (tokens it signed may be valid). Past that, it may be
     * gone already, which the machine's load decides, not the service. */
    if (now_s() < last_k1 + 1)
        ck_assert_ptr_nonnull(tb_jwks_find(ks, k1));
    ck_assert_int_eq(tb_jwt_key_alg(tb_jwks_find(ks, k2)), TB_JWT_EDDSA);
    tb_jwks_free(ks);
    /* every token k1 signed has expired: its key leaves the set */
    bool gone = false;
    for (double deadline = now_s() + 15; !gone && now_s() < deadline;)
        if (!(gone = !jwks_has(&auth2, k1)))
            sleep_ms(100);
    ck_assert_msg(gone, "a retired key is still published after 15 s");
    ck_assert_int_eq(th_stop(&auth2), 0);
    th_cleanup(&auth2);
    free(t1);
}
END_TEST

/* ---- one trace across the seed's chain (issue 14) ---- */

/* The OTLP receiver of tests/trace/otlp-decoder (node; decodes with the protobufjs code that
 * @opentelemetry/otlp-transformer generated from opentelemetry-proto). Its npm packages come
 * from the lock file when missing. Returns its pid; *port its port. */
static pid_t start_receiver(int *port)
{
    struct stat st;
    if (stat("tests/trace/otlp-decoder/node_modules/@opentelemetry/otlp-transformer", &st) != 0)
        ck_assert_int_eq(system("npm ci --prefix tests/trace/otlp-decoder --no-audit --no-fund "
                                "--loglevel=error >/dev/null 2>&1"), 0);
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execlp("node", "node", "tests/trace/otlp-decoder/receiver.js", (char *)NULL);
        _exit(127);
    }
    th_track(pid); /* killed at exit if an assertion fails before the test stops it */
    close(fds[1]);
    char buf[128] = "";
    size_t n = 0;
    while (n < sizeof buf - 1) { /* {"port": N}\n */
        ssize_t r = read(fds[0], buf + n, 1);
        if (r <= 0 || buf[n] == '\n')
            break;
        n++;
    }
    close(fds[0]);
    buf[n] = '\0';
    const char *p = strstr(buf, "\"port\"");
    *port = p ? atoi(strchr(p, ':') + 1) : 0;
    ck_assert_msg(*port > 0, "the OTLP receiver did not start: %s", buf);
    return pid;
}

/* The spans the receiver decoded (the "spans" array of GET /received), or NULL. */
static json_t *received_spans(int port)
{
    char u[96];
    snprintf(u, sizeof u, "http://127.0.0.1:%d/received", port);
    th_resp r;
    th_http(&r, "GET", u, NULL, NULL, NULL);
    json_t *spans = r.status == 200 ? json_incref(json_object_get(r.json, "spans")) : NULL;
    json_t *errors = json_object_get(r.json, "errors");
    ck_assert_msg(json_array_size(errors) == 0, "the OTLP receiver refused requests: %s",
                  r.body);
    th_resp_free(&r);
    return spans;
}

/* A string member ("" when absent); for a received span (the receiver's {resource, scope,
 * span} entries) the member of its span. */
static const char *sstr(const json_t *o, const char *k)
{
    const json_t *in = json_object_get(o, "span") ? json_object_get(o, "span") : o;
    const char *v = json_string_value(json_object_get(in, k));
    return v ? v : "";
}

/* service.name of a received span (its resource's attribute) */
static const char *span_service(const json_t *sp)
{
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(json_object_get(sp, "resource"), "attributes"), i, a) {
        if (strcmp(sstr(a, "key"), "service.name") == 0)
            return sstr(json_object_get(a, "value"), "stringValue");
    }
    return "";
}

/* Attribute `key` of a received span as text (a string value, or an int64's decimal string),
 * "" when absent. */
static const char *span_attr(const json_t *sp, const char *key)
{
    const json_t *in = json_object_get(sp, "span") ? json_object_get(sp, "span") : sp;
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(in, "attributes"), i, a) {
        if (strcmp(sstr(a, "key"), key) != 0)
            continue;
        const json_t *v = json_object_get(a, "value");
        const char *s = json_string_value(json_object_get(v, "stringValue"));
        return s ? s : sstr(v, "intValue");
    }
    return "";
}

/* The span of trace `trace` named `name` (kind k), or NULL. */
static const json_t *find_span(const json_t *spans, const char *trace, const char *name, int k)
{
    size_t i;
    json_t *sp;
    json_array_foreach(spans, i, sp) {
        const json_t *kind = json_object_get(json_object_get(sp, "span"), "kind");
        if (strcmp(sstr(sp, "traceId"), trace) == 0 && strcmp(sstr(sp, "name"), name) == 0 &&
            json_integer_value(kind) == k)
            return sp;
    }
    return NULL;
}

/* Auth (register) -> user.registered over RabbitMQ -> User (profile, then a welcome wallet
 * from Wallet): the spans the three services export reach an independent OTLP receiver as one
 * trace with the right parents, and that trace id is in every service's log lines. */
START_TEST(one_trace_from_a_registration_through_user_to_wallet)
{
    int rport;
    pid_t rpid = start_receiver(&rport);
    static char otel[96];
    snprintf(otel, sizeof otel, "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:%d", rport);
    th_service wallet = {.name = "wallet", .prism_port = -1};
    th_service user = {.name = "user", .prism_port = -1};
    th_service auth = {.name = "auth", .prism_port = -1};
    const char *wenv[] = {otel, "OTEL_BSP_SCHEDULE_DELAY=100", "TB_LOG_LEVEL=info", NULL};
    th_start(&wallet, wenv);
    static char wurl[120];
    snprintf(wurl, sizeof wurl, "WALLET_SERVICE_URL=%s", wallet.direct);
    const char *uenv[] = {otel, "OTEL_BSP_SCHEDULE_DELAY=100", "TB_LOG_LEVEL=info", amqp_env,
                          wurl, NULL};
    th_start(&user, uenv);
    const char *aenv[] = {otel, "OTEL_BSP_SCHEDULE_DELAY=100", "TB_LOG_LEVEL=info", amqp_env,
                          "AUTH_PBKDF2_ITERATIONS=1000", NULL};
    th_start(&auth, aenv);

    char body[256], uname[64], email[96], url[160];
    names(uname, sizeof uname, email, sizeof email, "traced");
    snprintf(body, sizeof body,
             "{\"email\":\"%s\",\"username\":\"%s\",\"password\":\"correct horse battery\"}",
             email, uname);
    snprintf(url, sizeof url, "%s/auth/register", auth.direct);
    th_resp r;
    th_http(&r, "POST", url, body, "application/json", NULL);
    ck_assert_msg(r.status == 201, "register: %ld %s", r.status, r.body);
    char user_id[64];
    snprintf(user_id, sizeof user_id, "%s", json_string_value(json_object_get(
                                                 json_object_get(r.json, "data"), "userId")));
    th_resp_free(&r);

    /* the welcome wallet shows the chain went all the way */
    snprintf(url, sizeof url, "%s/users/%s/wallets", wallet.direct, user_id);
    bool opened = false;
    for (int t = 0; t < 200 && !opened; t++) {
        th_http(&r, "GET", url, NULL, NULL, NULL);
        opened = r.status == 200 && json_array_size(json_object_get(r.json, "data")) == 1;
        th_resp_free(&r);
        if (!opened)
            sleep_ms(50);
    }
    ck_assert_msg(opened, "no welcome wallet for %s; user log %s", user_id, user.log);

    /* the five spans of the chain, within a few export rounds */
    const json_t *srv = NULL, *prod = NULL, *cons = NULL, *cli = NULL, *wsrv = NULL;
    json_t *spans = NULL;
    char trace[40] = "";
    for (int t = 0; t < 100; t++) {
        json_decref(spans);
        spans = received_spans(rport);
        size_t i;
        json_t *sp;
        srv = NULL;
        json_array_foreach(spans, i, sp) {
            if (strcmp(sstr(sp, "name"), "POST /auth/register") == 0 &&
                strcmp(span_service(sp), "auth") == 0)
                srv = sp;
        }
        if (srv) {
            snprintf(trace, sizeof trace, "%s", sstr(srv, "traceId"));
            prod = find_span(spans, trace, "create user.registered", 4);
            cons = find_span(spans, trace, "process user.registered", 5);
            cli = find_span(spans, trace, "POST /wallets", 3);
            wsrv = find_span(spans, trace, "POST /wallets", 2);
            if (prod && cons && cli && wsrv)
                break;
        }
        sleep_ms(100);
    }
    ck_assert_msg(srv && prod && cons && cli && wsrv,
                  "spans missing: server %p producer %p consumer %p client %p wallet %p", srv,
                  prod, cons, cli, wsrv);
    /* the server span's HTTP attributes (semantic conventions) */
    char port[16];
    snprintf(port, sizeof port, "%d", auth.port);
    ck_assert_str_eq(span_attr(srv, "http.route"), "/auth/register");
    ck_assert_str_eq(span_attr(srv, "http.request.method"), "POST");
    ck_assert_str_eq(span_attr(srv, "http.response.status_code"), "201");
    ck_assert_str_eq(span_attr(srv, "url.path"), "/auth/register");
    ck_assert_str_eq(span_attr(srv, "server.address"), "127.0.0.1");
    ck_assert_str_eq(span_attr(srv, "server.port"), port);
    /* parents: server <- producer <- consumer <- client <- wallet's server */
    ck_assert_str_eq(sstr(prod, "parentSpanId"), sstr(srv, "spanId"));
    ck_assert_str_eq(sstr(cons, "parentSpanId"), sstr(prod, "spanId"));
    ck_assert_str_eq(sstr(cli, "parentSpanId"), sstr(cons, "spanId"));
    ck_assert_str_eq(sstr(wsrv, "parentSpanId"), sstr(cli, "spanId"));
    ck_assert_str_eq(span_service(prod), "auth");
    ck_assert_str_eq(span_service(cons), "user");
    ck_assert_str_eq(span_service(cli), "user");
    ck_assert_str_eq(span_service(wsrv), "wallet");
    /* the consumer names the destination as a publisher does: the exchange (the services'
     * default here), and the routing key (it named the event type, which is neither) */
    ck_assert_str_eq(span_attr(cons, "messaging.system"), "rabbitmq");
    ck_assert_str_eq(span_attr(cons, "messaging.destination.name"), "tablium.events");
    ck_assert_str_eq(span_attr(cons, "messaging.rabbitmq.destination.routing_key"),
                     "user.registered");
    ck_assert_str_eq(span_attr(prod, "messaging.rabbitmq.destination.routing_key"),
                     "user.registered");
    /* and the size of what it received: what was sent */
    ck_assert_int_gt(atoi(span_attr(prod, "messaging.message.body.size")), 100);
    ck_assert_str_eq(span_attr(cons, "messaging.message.body.size"),
                     span_attr(prod, "messaging.message.body.size"));
    /* the same trace id in every service's log lines */
    char needle[64];
    snprintf(needle, sizeof needle, "\"traceId\":\"%s\"", trace);
    int la = count_in_log(auth.log, needle), lu = count_in_log(user.log, needle),
        lw = count_in_log(wallet.log, needle);
    size_t in_trace = 0;
    {
        size_t i;
        json_t *sp;
        json_array_foreach(spans, i, sp) in_trace += strcmp(sstr(sp, "traceId"), trace) == 0;
    }
    printf("trace-chain: trace %s: %zu spans across auth, user, wallet (register -> "
           "create user.registered -> process user.registered -> POST /wallets -> wallet), "
           "parents all right; log lines with its id: auth %d, user %d, wallet %d\n",
           trace, in_trace, la, lu, lw);
    fflush(stdout);
    ck_assert_int_gt(la, 0);
    ck_assert_int_gt(lu, 0);
    ck_assert_int_gt(lw, 0);
    json_decref(spans);

    ck_assert_int_eq(th_stop(&auth), 0);
    ck_assert_int_eq(th_stop(&user), 0);
    ck_assert_int_eq(th_stop(&wallet), 0);
    th_cleanup(&auth);
    th_cleanup(&user);
    th_cleanup(&wallet);
    kill(rpid, SIGTERM);
    waitpid(rpid, NULL, 0);
    th_untrack(rpid);
}
END_TEST

static void setup(void)
{
    const char *amqp = getenv("TB_TEST_AMQP_URL");
    ck_assert_msg(amqp && *amqp, "TB_TEST_AMQP_URL is not set: run under scripts/with-brokers.sh");
    snprintf(amqp_env, sizeof amqp_env, "TB_AMQP_URL=%s", amqp);
    th_start(&user_svc, env_list);
    th_tmpdir(auth_svc.dir, sizeof auth_svc.dir);
    snprintf(jwks_file_env, sizeof jwks_file_env, "AUTH_JWKS_FILE=%s/jwks.json", auth_svc.dir);
    snprintf(runtime_jwks_env, sizeof runtime_jwks_env, "TB_JWT_JWKS_FILE=%s/jwks.json",
             auth_svc.dir);
    th_start(&auth_svc, auth_env);
    arena = tb_arena_new(0);
    tb_ctx_init(&ctx, arena, NULL);
    tb_client_opts copts = th_client_opts();
    ac = auth_client_new(auth_svc.url, &copts, NULL);
    ck_assert_ptr_nonnull(ac);
}

static void chain_setup(void)
{
    const char *amqp = getenv("TB_TEST_AMQP_URL");
    ck_assert_msg(amqp && *amqp, "TB_TEST_AMQP_URL is not set: run under scripts/with-brokers.sh");
    snprintf(amqp_env, sizeof amqp_env, "TB_AMQP_URL=%s", amqp);
}

static void teardown(void)
{
    auth_client_free(ac);
    tb_arena_free(arena);
    th_stop_in_teardown(&auth_svc, "auth_service");
    th_stop_in_teardown(&user_svc, "user_service");
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    tb_global_init();
    Suite *s = suite_create("contract-auth");
    TCase *tc = tcase_create("auth");
    tcase_set_timeout(tc, 180);
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_add_test(tc, register_then_get_account_and_conflicts_are_409);
    tcase_add_test(tc, bad_registrations_are_400_naming_the_field);
    tcase_add_test(tc, every_example_matches_its_schema);
    tcase_add_test(tc, a_registration_becomes_a_profile_in_the_user_service);
    tcase_add_test(tc, killed_between_commit_and_publish_the_outbox_relays_on_restart);
    tcase_add_test(tc, jwks_is_served_bare_and_parses);
    tcase_add_test(tc, a_login_token_verifies_over_the_jwks_url_with_sub_and_scope);
    tcase_add_test(tc, wrong_password_and_unknown_account_are_the_same_401);
    tcase_add_test(tc, login_attempts_are_rate_limited_as_the_spec_declares);
    tcase_add_test(tc, registrations_and_client_secret_guesses_are_rate_limited);
    tcase_add_test(tc, client_credentials_give_a_service_token_with_the_granted_scopes);
    tcase_add_test(tc, bad_clients_are_401_and_scopes_beyond_the_client_400_invalid_scope);
    tcase_add_test(tc, the_token_endpoint_speaks_rfc_6749_to_an_independent_client);
    tcase_add_test(tc, rotation_keeps_old_tokens_valid_and_verifiers_refetch_the_new_kid);
    tcase_add_test(tc, a_restarted_auth_keeps_its_keys);
    tcase_add_test(tc, periodic_rotation_and_retired_keys_leave_the_jwks);
    suite_add_tcase(s, tc);
    /* its own three services: none of the fixture's may consume its event */
    TCase *chain = tcase_create("chain");
    tcase_set_timeout(chain, 120);
    tcase_add_unchecked_fixture(chain, chain_setup, NULL);
    tcase_add_test(chain, one_trace_from_a_registration_through_user_to_wallet);
    suite_add_tcase(s, chain);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed || th_teardown_failures() ? 1 : 0;
}
