/*
 * Contract tests of the User service (openapi/user.yaml, OpenAPI 3.0): the real user_service
 * process calling the real wallet_service through the generated Wallet client.
 */
#include "harness.h"
#include "user/user.h"

#include "tablium/client.h"
#include "tablium/ctx.h"

#include <check.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static th_service wallet_svc = {.name = "wallet"};
static th_service user_svc = {.name = "user"};
static user_client *uc;
static tb_arena *arena;
static tb_ctx ctx;
static char wallet_env[96];

static void url(char *out, size_t cap, const char *path)
{
    snprintf(out, cap, "%s%s", user_svc.url, path);
}

static user_user make_user(const char *name)
{
    char uname[40];
    snprintf(uname, sizeof uname, "%s_%d", name, (int)getpid() % 100000);
    char email[80];
    snprintf(email, sizeof email, "%s@example.com", uname);
    user_create_user_req req = {.body = {.username = uname, .email = email}};
    user_create_user_resp out;
    tb_error err = TB_ERROR_INIT;
    ck_assert_msg(user_create_user_call(uc, &ctx, &req, &out, &err) == 0, "%s", err.message);
    ck_assert_int_eq(out.status, 201);
    tb_error_deinit(&err);
    return out.s201;
}

START_TEST(create_and_get_user_and_taken_username_409)
{
    user_user u = make_user("ada");
    user_get_user_req g = {.user_id = u.id};
    user_get_user_resp out;
    ck_assert_int_eq(user_get_user_call(uc, &ctx, &g, &out, NULL), 0);
    ck_assert_int_eq(out.status, 200);
    ck_assert_str_eq(out.s200.username, u.username);
    user_create_user_req again = {.body = {.username = u.username, .email = "x@example.com"}};
    user_create_user_resp o2;
    ck_assert_int_eq(user_create_user_call(uc, &ctx, &again, &o2, NULL), 0);
    ck_assert_int_eq(o2.status, 409);
    ck_assert_str_eq(o2.s409.code, "username_taken");
    /* the same name in other case is taken too, as Auth has it */
    char cased[128];
    snprintf(cased, sizeof cased, "%s", u.username);
    for (char *p = cased; *p; p++)
        if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 32);
    again.body.username = cased;
    ck_assert_int_eq(user_create_user_call(uc, &ctx, &again, &o2, NULL), 0);
    ck_assert_int_eq(o2.status, 409);
    ck_assert_str_eq(o2.s409.code, "username_taken");
}
END_TEST

START_TEST(profile_update_sets_and_clears_nullable_fields)
{
    user_user u = make_user("grace");
    user_get_profile_req g = {.user_id = u.id};
    user_get_profile_resp p;
    ck_assert_int_eq(user_get_profile_call(uc, &ctx, &g, &p, NULL), 0);
    ck_assert_int_eq(p.status, 200);
    ck_assert_str_eq(p.s200.display_name, u.username);
    ck_assert(p.s200.bio_is_null);
    ck_assert_int_eq(p.s200.games_played, 0);
    user_update_profile_req up = {.user_id = u.id,
                                  .body = {.has_bio = true, .bio = "", .has_country = true, .country = "GB"}};
    user_update_profile_resp o;
    ck_assert_int_eq(user_update_profile_call(uc, &ctx, &up, &o, NULL), 0);
    ck_assert_int_eq(o.status, 200);
    ck_assert(!o.s200.bio_is_null);
    ck_assert_str_eq(o.s200.bio, ""); /* "" is a value, not "unset" */
    ck_assert_str_eq(o.s200.country, "GB");
    user_update_profile_req clear = {.user_id = u.id,
                                     .body = {.has_country = true, .country_is_null = true}};
    ck_assert_int_eq(user_update_profile_call(uc, &ctx, &clear, &o, NULL), 0);
    ck_assert_int_eq(o.status, 200);
    ck_assert(o.s200.country_is_null);
    ck_assert_str_eq(o.s200.bio, ""); /* untouched */
}
END_TEST

START_TEST(empty_profile_update_is_400)
{
    user_user u = make_user("linus");
    char path[128], u2[256];
    snprintf(path, sizeof path, "/users/%s/profile", u.id);
    url(u2, sizeof u2, path);
    th_resp r;
    th_http(&r, "PATCH", u2, "{}", NULL, NULL);
    th_assert_error(&r, 400, "validation_failed", "/body", "minProperties");
    th_resp_free(&r);
    th_http(&r, "PATCH", u2, "{\"country\":\"gb\",\"bio\":5}", NULL, NULL);
    th_assert_error(&r, 400, "validation_failed", "/body/country", "pattern");
    th_assert_error(&r, 400, "validation_failed", "/body/bio", "type");
    th_resp_free(&r);
}
END_TEST

START_TEST(user_wallets_come_from_the_wallet_service)
{
    user_user u = make_user("barbara");
    user_open_wallet_req ow = {.user_id = u.id, .body = {.currency = "CHP"}};
    user_open_wallet_resp oo;
    ck_assert_int_eq(user_open_wallet_call(uc, &ctx, &ow, &oo, NULL), 0);
    ck_assert_int_eq(oo.status, 201);
    ck_assert_int_eq(oo.s201.balance, 0);
    ck_assert_str_eq(oo.s201.currency, "CHP");
    ck_assert_int_eq(user_open_wallet_call(uc, &ctx, &ow, &oo, NULL), 0);
    ck_assert_int_eq(oo.status, 409); /* the Wallet service's 409, passed on */
    ck_assert_str_eq(oo.s409.code, "wallet_exists");
    ow.body.currency = "EUR";
    ck_assert_int_eq(user_open_wallet_call(uc, &ctx, &ow, &oo, NULL), 0);
    user_get_user_wallets_req g = {.user_id = u.id};
    user_get_user_wallets_resp out;
    ck_assert_int_eq(user_get_user_wallets_call(uc, &ctx, &g, &out, NULL), 0);
    ck_assert_int_eq(out.status, 200);
    ck_assert_uint_eq(out.s200.n, 2);
    ck_assert_str_eq(out.s200.items[1].currency, "EUR");
}
END_TEST

START_TEST(request_id_travels_user_to_wallet_and_back)
{
    user_user u = make_user("margaret");
    char path[128], u2[256], rid[64];
    snprintf(path, sizeof path, "/users/%s/wallets", u.id);
    url(u2, sizeof u2, path);
    th_resp r;
    const char *hdr[] = {"X-Request-ID: trace-me-42", NULL};
    th_http(&r, "GET", u2, NULL, NULL, hdr);
    ck_assert_int_eq(r.status, 200);
    ck_assert(th_header(&r, "X-Request-ID", rid, sizeof rid));
    ck_assert_str_eq(rid, "trace-me-42");
    th_resp_free(&r);
    /* the wallet service logged the same id: it came through the generated client */
    FILE *f = fopen(wallet_svc.log, "r");
    ck_assert_ptr_nonnull(f);
    char line[2048];
    bool seen = false;
    while (fgets(line, sizeof line, f))
        if (strstr(line, "\"requestId\":\"trace-me-42\""))
            seen = true;
    fclose(f);
    ck_assert_msg(seen, "wallet log has no line with requestId trace-me-42");
}
END_TEST

START_TEST(unknown_user_is_404_before_any_wallet_call)
{
    user_get_user_wallets_req g = {.user_id = "6f1c2a9e-4b3d-4c8e-9a7f-000000000000"};
    user_get_user_wallets_resp out;
    ck_assert_int_eq(user_get_user_wallets_call(uc, &ctx, &g, &out, NULL), 0);
    ck_assert_int_eq(out.status, 404);
}
END_TEST

START_TEST(wallet_down_is_502_without_internals)
{
    user_user u = make_user("dennis");
    th_stop(&wallet_svc);
    user_get_user_wallets_req g = {.user_id = u.id};
    user_get_user_wallets_resp out;
    ck_assert_int_eq(user_get_user_wallets_call(uc, &ctx, &g, &out, NULL), 0);
    ck_assert_int_eq(out.status, 502);
    /* upstream_unavailable when the breaker an earlier test opened has not closed yet */
    ck_assert_msg(strcmp(out.s502.code, "upstream_failed") == 0 ||
                      strcmp(out.s502.code, "upstream_unavailable") == 0,
                  "%s", out.s502.code);
    ck_assert(strstr(out.s502.message, "127.0.0.1") == NULL); /* no URL leaked */
    th_start(&wallet_svc, NULL); /* same port, same data */
    /* User's breaker on Wallet opened while it was down, and so may the test's own breaker
     * on User (its 502s count as failures): calls fail fast until the wait in open (5 s)
     * ends, then half-open probes close them again. */
    int status = 0;
    for (int i = 0; i < 150 && status != 200; i++) {
        int rc = user_get_user_wallets_call(uc, &ctx, &g, &out, NULL);
        ck_assert_msg(rc == 0 || rc == TB_EOPEN, "rc %d", rc);
        status = rc == 0 ? out.status : 0;
        if (status != 200) {
            ck_assert(status == 0 || status == 502);
            usleep(100 * 1000);
        }
    }
    ck_assert_int_eq(status, 200);
}
END_TEST

/* The value of User's tablium_client_breaker_state{upstream="wallet",state=...} gauge that is
 * 1 (the breaker's state), from its /metrics; "?" when it cannot be read. */
static const char *breaker_state_of(const th_service *user)
{
    char u[120];
    snprintf(u, sizeof u, "%s/metrics", user->direct);
    th_resp r;
    th_http(&r, "GET", u, NULL, NULL, NULL);
    static const char *const states[] = {"closed", "open", "half_open"};
    const char *st = "?";
    for (int i = 0; i < 3 && r.status == 200; i++) {
        char line[160];
        snprintf(line, sizeof line,
                 "tablium_client_breaker_state{upstream=\"wallet\",state=\"%s\"} 1\n", states[i]);
        if (strstr(r.body, line))
            st = states[i];
    }
    th_resp_free(&r);
    return st;
}

/* Wallet SIGKILLed under User's calls (issue 13): User's breaker on Wallet opens within its
 * window, calls fail fast while it is open, then half-open probes close it once Wallet is back.
 * Printed as a timeline. */
START_TEST(wallet_killed_under_calls_the_breaker_opens_fails_fast_and_closes)
{
    th_service wallet = {.name = "wallet", .prism_port = -1};
    th_service user = {.name = "user", .prism_port = -1};
    th_start(&wallet, NULL);
    static char wurl[120];
    snprintf(wurl, sizeof wurl, "WALLET_SERVICE_URL=%s", wallet.direct);
    const char *uenv[] = {wurl,
                          "TB_WALLET_RETRY_MAX_ATTEMPTS=1", /* one attempt, one breaker call */
                          "TB_WALLET_BREAKER_SLIDING_WINDOW_SIZE=10",
                          "TB_WALLET_BREAKER_MINIMUM_NUMBER_OF_CALLS=5",
                          "TB_WALLET_BREAKER_FAILURE_RATE_THRESHOLD=50",
                          "TB_WALLET_BREAKER_WAIT_DURATION_IN_OPEN_STATE_MS=1500",
                          "TB_WALLET_BREAKER_PERMITTED_NUMBER_OF_CALLS_IN_HALF_OPEN_STATE=2",
                          NULL};
    th_start(&user, uenv);
    char url[200], body[160];
    snprintf(url, sizeof url, "%s/users", user.direct);
    snprintf(body, sizeof body, "{\"username\":\"breaker_%d\",\"email\":\"b%d@example.com\"}",
             (int)getpid() % 100000, (int)getpid() % 100000);
    th_resp r;
    th_http(&r, "POST", url, body, "application/json", NULL);
    ck_assert_msg(r.status == 201, "%ld %s", r.status, r.body);
    snprintf(url, sizeof url, "%s/users/%s/wallets", user.direct,
             json_string_value(json_object_get(json_object_get(r.json, "data"), "id")));
    th_resp_free(&r);

    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int n = 0, failed_before_open = 0, fast = 0, after_back = 0;
    bool opened = false, closed_again = false, killed = false, back = false;
    char code[64];
    while (n < 200 && !closed_again) {
        if (n == 5) { /* five good calls, then Wallet dies */
            th_kill(&wallet);
            killed = true;
        }
        if (opened && !back && fast >= 5) { /* Wallet returns, same port and data */
            th_start(&wallet, NULL);
            back = true;
        }
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        th_http(&r, "GET", url, NULL, NULL, NULL);
        clock_gettime(CLOCK_MONOTONIC, &b);
        double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
        double at = (double)(a.tv_sec - t0.tv_sec) * 1e3 + (double)(a.tv_nsec - t0.tv_nsec) / 1e6;
        const char *c = json_string_value(json_object_get(json_object_get(r.json, "error"),
                                                          "code"));
        snprintf(code, sizeof code, "%s", c ? c : "-");
        long status = r.status;
        th_resp_free(&r);
        n++;
        const char *state = breaker_state_of(&user);
        printf("breaker-timeline: +%6.0f ms call %3d: %ld %-20s %7.2f ms  breaker %s%s\n", at, n,
               status, code, ms, state,
               n == 5 ? "  (wallet killed now)" : back && after_back == 0 ? "  (wallet is back)"
                                                                           : "");
        if (killed && !opened) {
            if (strcmp(code, "upstream_unavailable") == 0) {
                opened = true;
                fast++;
            } else {
                ck_assert_msg(status == 502, "call %d: %ld %s", n, status, code);
                failed_before_open++;
            }
        } else if (opened && !back) {
            ck_assert_msg(strcmp(code, "upstream_unavailable") == 0, "call %d: %ld %s", n,
                          status, code);
            fast++;
        } else if (back) {
            after_back++;
            closed_again = status == 200 && strcmp(state, "closed") == 0;
            if (!closed_again)
                usleep(100 * 1000);
        }
    }
    fflush(stdout);
    printf("breaker: opened after %d failed calls (window 10, at least 5 calls, 50%%), %d calls "
           "failed fast while open, closed again %d calls after Wallet came back\n",
           failed_before_open, fast, after_back);
    ck_assert(opened);
    ck_assert_int_le(failed_before_open, 10);
    ck_assert_int_ge(fast, 5);
    ck_assert(closed_again);
    ck_assert_int_eq(th_stop(&user), 0);
    ck_assert_int_eq(th_stop(&wallet), 0);
    th_cleanup(&user);
    th_cleanup(&wallet);
}
END_TEST

/* checks.<name>.status (or .reason) of a /health/ready answer; NULL when absent. */
static const char *check_field(const th_resp *r, const char *name, const char *field)
{
    json_t *c = json_object_get(json_object_get(r->json, "checks"), name);
    return json_string_value(json_object_get(c, field));
}

/* Readiness follows the Wallet client's breaker: up while closed, down while open (without
 * a request of its own to Wallet), and up again once the open wait is over although nothing
 * calls Wallet meanwhile (a load balancer sends no traffic to an instance that is not ready). */
START_TEST(ready_names_upstream_wallet_down_while_its_breaker_is_open_then_up_after_the_wait)
{
    static char wenv[96];
    snprintf(wenv, sizeof wenv, "WALLET_SERVICE_URL=http://127.0.0.1:%d", th_free_port());
    const char *env[] = {wenv,
                         "TB_WALLET_RETRY_MAX_ATTEMPTS=1",
                         "TB_WALLET_BREAKER_SLIDING_WINDOW_SIZE=2",
                         "TB_WALLET_BREAKER_MINIMUM_NUMBER_OF_CALLS=2",
                         "TB_WALLET_BREAKER_WAIT_DURATION_IN_OPEN_STATE_MS=1500",
                         NULL};
    th_service us = {.name = "user", .prism_port = -1};
    th_start(&us, env);
    char u[256];
    th_resp r;
    snprintf(u, sizeof u, "%s/health/ready", us.direct);
    th_http(&r, "GET", u, NULL, NULL, NULL);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert_str_eq(check_field(&r, "upstream:wallet", "status"), "up");
    ck_assert_str_eq(check_field(&r, "database", "status"), "up");
    th_resp_free(&r);

    /* Wallet is not there: two failed calls open the breaker */
    char uname[40], body[160];
    snprintf(uname, sizeof uname, "breaker_%d", (int)getpid() % 100000);
    snprintf(body, sizeof body, "{\"username\":\"%s\",\"email\":\"%s@example.com\"}", uname, uname);
    snprintf(u, sizeof u, "%s/users", us.direct);
    th_http(&r, "POST", u, body, NULL, NULL);
    ck_assert_msg(r.status == 201, "%ld %s", r.status, r.body);
    char wallets[256];
    snprintf(wallets, sizeof wallets, "%s/users/%s/wallets", us.direct,
             json_string_value(json_object_get(json_object_get(r.json, "data"), "id")));
    th_resp_free(&r);
    for (int i = 0; i < 2; i++) {
        th_http(&r, "GET", wallets, NULL, NULL, NULL);
        ck_assert_msg(r.status == 502, "%ld %s", r.status, r.body);
        th_resp_free(&r);
    }
    snprintf(u, sizeof u, "%s/health/ready", us.direct);
    th_http(&r, "GET", u, NULL, NULL, NULL);
    ck_assert_msg(r.status == 503, "%ld %s", r.status, r.body);
    ck_assert_str_eq(check_field(&r, "upstream:wallet", "status"), "down");
    const char *why = check_field(&r, "upstream:wallet", "reason");
    ck_assert_msg(why && strstr(why, "circuit breaker open"), "reason: %s", why ? why : "-");
    ck_assert_str_eq(check_field(&r, "database", "status"), "up");
    th_resp_free(&r);
    snprintf(u, sizeof u, "%s/health/live", us.direct);
    th_http(&r, "GET", u, NULL, NULL, NULL);
    ck_assert_int_eq(r.status, 200);
    th_resp_free(&r);

    /* no call meanwhile: ready again once the 1.5 s wait is over */
    snprintf(u, sizeof u, "%s/health/ready", us.direct);
    long status = 0;
    for (int i = 0; i < 60 && status != 200; i++) {
        usleep(100 * 1000);
        th_http(&r, "GET", u, NULL, NULL, NULL);
        status = r.status;
        th_resp_free(&r);
    }
    ck_assert_int_eq(status, 200);
    ck_assert_int_eq(th_stop(&us), 0);
    th_cleanup(&us);
}
END_TEST

START_TEST(every_example_matches_its_schema)
{
    ck_assert_uint_ge(user_n_examples, 4);
    for (size_t i = 0; i < user_n_examples; i++) {
        const tb_api_example *ex = &user_examples[i];
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

START_TEST(every_request_body_example_is_accepted_by_the_service)
{
    user_user u = make_user("examples");
    char path[160], u2[256];
    int sent = 0;
    for (size_t i = 0; i < user_n_examples; i++) {
        const tb_api_example *ex = &user_examples[i];
        if (strcmp(ex->where, "request body") != 0)
            continue;
        const char *method = "POST";
        if (strcmp(ex->operation_id, "createUser") == 0) {
            snprintf(path, sizeof path, "/users");
        } else if (strcmp(ex->operation_id, "updateProfile") == 0) {
            snprintf(path, sizeof path, "/users/%s/profile", u.id);
            method = "PATCH";
        } else if (strcmp(ex->operation_id, "openWallet") == 0) {
            snprintf(path, sizeof path, "/users/%s/wallets", u.id);
        } else {
            ck_abort_msg("no route for the example of %s", ex->operation_id);
        }
        url(u2, sizeof u2, path);
        th_resp r;
        th_http(&r, method, u2, ex->json, NULL, NULL);
        ck_assert_msg(r.status == 200 || r.status == 201 || r.status == 409, "%s example %s: %ld %s",
                      ex->operation_id, ex->name, r.status, r.body);
        th_assert_no_response_violation(&r);
        th_resp_free(&r);
        sent++;
    }
    ck_assert_int_ge(sent, 4);
}
END_TEST

/* Key rotation while clients keep calling (issue 13): Auth issues the service tokens (ES256,
 * a new key every 2 s, tokens of 3 s), User gets its own from Auth with client credentials and
 * renews it, Wallet verifies over Auth's JWKS URL and refetches it on an unknown kid. For 10 s
 * the test calls User, which calls Wallet; no call may fail. */
START_TEST(key_rotation_under_calls_fails_none)
{
    th_service auth = {.name = "auth", .prism_port = -1};
    th_service wallet = {.name = "wallet", .prism_port = -1};
    th_service user = {.name = "user", .prism_port = -1};
    const char *aenv[] = {"AUTH_PBKDF2_ITERATIONS=1000", "AUTH_CLIENTS=user:user-pw:wallet.read "
                          "wallet.write", "AUTH_KEY_ROTATE_S=2", "AUTH_TOKEN_TTL_S=3",
                          "AUTH_KEY_PUBLISH_AHEAD_S=1", "AUTH_KEY_RETIRE_GRACE_S=2", NULL};
    th_start(&auth, aenv);
    char jwks[160], auth_url[120], wurl[120];
    snprintf(jwks, sizeof jwks, "TB_JWT_JWKS_URL=%s/.well-known/jwks.json", auth.direct);
    const char *wenv[] = {jwks, "TB_JWT_REFETCH_S=1", NULL};
    th_start(&wallet, wenv);
    snprintf(auth_url, sizeof auth_url, "AUTH_SERVICE_URL=%s", auth.direct);
    snprintf(wurl, sizeof wurl, "WALLET_SERVICE_URL=%s", wallet.direct);
    const char *uenv[] = {auth_url, wurl, "SERVICE_AUTH_TOKEN=", "TB_SERVICE_CLIENT_ID=user",
                          "TB_SERVICE_CLIENT_SECRET=user-pw", NULL};
    th_start(&user, uenv);

    char upath[200], jpath[200], kids[16][64];
    size_t n_kids = 0;
    user_client *cl = user_client_new(user.direct, NULL, NULL);
    user_create_user_req cu = {.body = {.username = "rota_tion", .email = "rota@example.com"}};
    user_create_user_resp co;
    ck_assert_int_eq(user_create_user_call(cl, &ctx, &cu, &co, NULL), 0);
    ck_assert_int_eq(co.status, 201);
    snprintf(upath, sizeof upath, "%s/users/%s/wallets", user.direct, co.s201.id);
    snprintf(jpath, sizeof jpath, "%s/.well-known/jwks.json", auth.direct);
    int calls = 0, failed = 0;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        double el = (double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9;
        if (el >= 10)
            break;
        th_resp r;
        th_http(&r, calls % 2 ? "GET" : "POST", upath, calls % 2 ? NULL : "{\"currency\":\"CHP\"}",
                NULL, NULL);
        calls++;
        if (r.status != 200 && r.status != 201 && !(calls % 2 == 1 && r.status == 409)) {
            failed++;
            fprintf(stderr, "key rotation: call %d at %.1f s: %ld %s\n", calls, el, r.status,
                    r.body);
        }
        th_resp_free(&r);
        if (calls % 10 == 0) { /* the signing keys published meanwhile */
            th_http(&r, "GET", jpath, NULL, NULL, NULL);
            size_t i;
            json_t *k;
            json_array_foreach(json_object_get(r.json, "keys"), i, k) {
                const char *kid = json_string_value(json_object_get(k, "kid"));
                bool seen = false;
                for (size_t j = 0; kid && j < n_kids; j++)
                    seen |= strcmp(kids[j], kid) == 0;
                if (kid && !seen && n_kids < 16)
                    snprintf(kids[n_kids++], sizeof kids[0], "%s", kid);
            }
            th_resp_free(&r);
        }
        usleep(20 * 1000);
    }
    printf("key-rotation: %d calls through User to Wallet in 10 s, %d failed, %zu signing keys "
           "seen\n", calls, failed, n_kids);
    fflush(stdout);
    user_client_free(cl);
    ck_assert_int_eq(failed, 0);
    ck_assert_uint_ge(n_kids, 3); /* at least two rotations happened */
    ck_assert_int_eq(th_stop(&user), 0);
    ck_assert_int_eq(th_stop(&wallet), 0);
    ck_assert_int_eq(th_stop(&auth), 0);
    th_cleanup(&user);
    th_cleanup(&wallet);
    th_cleanup(&auth);
}
END_TEST

static void setup(void)
{
    th_start(&wallet_svc, NULL);
    snprintf(wallet_env, sizeof wallet_env, "WALLET_SERVICE_URL=%s", wallet_svc.direct);
    const char *env[] = {wallet_env, NULL};
    th_start(&user_svc, env);
    arena = tb_arena_new(0);
    tb_ctx_init(&ctx, arena, NULL);
    tb_client_opts copts = th_client_opts();
    uc = user_client_new(user_svc.url, &copts, NULL);
    ck_assert_ptr_nonnull(uc);
}

static void teardown(void)
{
    user_client_free(uc);
    tb_arena_free(arena);
    th_stop_in_teardown(&user_svc, "user_service");
    th_stop_in_teardown(&wallet_svc, "wallet_service");
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    tb_global_init();
    Suite *s = suite_create("contract-user");
    TCase *tc = tcase_create("user");
    tcase_set_timeout(tc, 120);
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_add_test(tc, create_and_get_user_and_taken_username_409);
    tcase_add_test(tc, profile_update_sets_and_clears_nullable_fields);
    tcase_add_test(tc, empty_profile_update_is_400);
    tcase_add_test(tc, user_wallets_come_from_the_wallet_service);
    tcase_add_test(tc, request_id_travels_user_to_wallet_and_back);
    tcase_add_test(tc, unknown_user_is_404_before_any_wallet_call);
    tcase_add_test(tc, ready_names_upstream_wallet_down_while_its_breaker_is_open_then_up_after_the_wait);
    tcase_add_test(tc, every_example_matches_its_schema);
    tcase_add_test(tc, every_request_body_example_is_accepted_by_the_service);
    if (!th_via_prism())
        tcase_add_test(tc, wallet_down_is_502_without_internals);
    tcase_add_test(tc, key_rotation_under_calls_fails_none);
    tcase_add_test(tc, wallet_killed_under_calls_the_breaker_opens_fails_fast_and_closes);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed || th_teardown_failures() ? 1 : 0;
}
