/*
 * Contract tests of the Wallet service (openapi/wallet.yaml): the real wallet_service process,
 * driven through its generated client (every operation), with every example of the spec, and
 * with bad input through plain HTTP. With TB_CONTRACT_PRISM=1 all traffic goes through a
 * Stoplight Prism validating proxy, and any response violation fails the test.
 */
#include "harness.h"
#include "events/events.h"
#include "tablium/ids.h"
#include "wallet/wallet.h"

#include "tablium/buf.h"
#include "tablium/client.h"
#include "tablium/ctx.h"
#include "tablium/validate.h"

#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static th_service svc = {.name = "wallet"};
static wallet_client *wc;
static tb_arena *arena;
static tb_ctx ctx;

static const char *const SVC_ENV[] = {"TB_MAX_BODY=16384", NULL};

static void url(char *out, size_t cap, const char *path)
{
    snprintf(out, cap, "%s%s", svc.url, path);
}

static char *new_uuid(char *out)
{
    static unsigned n;
    snprintf(out, 37, "6f1c2a9e-4b3d-4c8e-9a7f-%012x", ++n + (unsigned)getpid() * 4096u);
    return out;
}

static wallet_wallet make_wallet(const char *user, const char *cur)
{
    tb_error err = TB_ERROR_INIT;
    wallet_create_wallet_req req = {.body = {.user_id = (char *)user, .currency = (char *)cur}};
    wallet_create_wallet_resp out;
    int rc = wallet_create_wallet_call(wc, &ctx, &req, &out, &err);
    ck_assert_msg(rc == 0, "createWallet: %s", err.message);
    ck_assert_int_eq(out.status, WALLET_CREATE_WALLET_201);
    tb_error_deinit(&err);
    return out.s201;
}

static wallet_create_transaction_resp post_tx(const char *wallet, wallet_transaction_type type,
                                              int64_t amount, const char *key, int *rc_out)
{
    tb_error err = TB_ERROR_INIT;
    wallet_create_transaction_req req = {
        .wallet_id = (char *)wallet,
        .has_idempotency_key = key != NULL,
        .idempotency_key = (char *)key,
        .body = {.type = type, .amount = amount},
    };
    wallet_create_transaction_resp out;
    int rc = wallet_create_transaction_call(wc, &ctx, &req, &out, &err);
    if (rc_out)
        *rc_out = rc;
    else
        ck_assert_msg(rc == 0, "createTransaction: %s", err.message);
    tb_error_deinit(&err);
    return out;
}

/* ---- every operation through the generated client ---- */

START_TEST(health_answers_ok_through_the_client)
{
    wallet_get_health_req req = {0};
    wallet_get_health_resp out;
    ck_assert_int_eq(wallet_get_health_call(wc, &ctx, &req, &out, NULL), 0);
    ck_assert_int_eq(out.status, 200);
    ck_assert_int_eq(out.s200.status, COMMON_HEALTH_STATUS_OK);
}
END_TEST

/* ---- the runtime's /health/live and /health/ready (not in the spec: straight to the
 * service, never through Prism) ---- */

/* GET base + path into r. */
static void get_health(th_resp *r, const th_service *s, const char *path)
{
    char u[128];
    snprintf(u, sizeof u, "%s%s", s->direct, path);
    th_http(r, "GET", u, NULL, NULL, NULL);
}

/* checks.<name>.status of a /health/ready body, or NULL when that check is not there. */
static const char *check_status(const th_resp *r, const char *name)
{
    json_t *c = json_object_get(json_object_get(r->json, "checks"), name);
    return json_string_value(json_object_get(c, "status"));
}

static const char *check_reason(const th_resp *r, const char *name)
{
    json_t *c = json_object_get(json_object_get(r->json, "checks"), name);
    return json_string_value(json_object_get(c, "reason"));
}

/* Polls /health/ready (timeout_ms at most) until it answers `status` with check `name` in
 * state `state`; r keeps the last answer (the caller frees it). */
static bool ready_until(th_resp *r, const th_service *s, long status, const char *name,
                        const char *state, int timeout_ms)
{
    for (int waited = 0;; waited += 50) {
        get_health(r, s, "/health/ready");
        const char *st = check_status(r, name);
        if (r->status == status && st && strcmp(st, state) == 0)
            return true;
        if (waited >= timeout_ms)
            return false;
        th_resp_free(r);
        usleep(50 * 1000);
    }
}

START_TEST(health_live_is_200_and_ready_checks_the_database_without_brokers)
{
    th_resp r;
    get_health(&r, &svc, "/health/live");
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "status")), "live");
    th_resp_free(&r);
    get_health(&r, &svc, "/health/ready");
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "status")), "ready");
    ck_assert_str_eq(check_status(&r, "database"), "up");
    /* no TB_AMQP_URL nor TB_REDIS_URL here: no broker connection, no broker check */
    if (!getenv("TB_AMQP_URL") && !getenv("TB_REDIS_URL")) {
        ck_assert_ptr_null(check_status(&r, "rabbitmq"));
        ck_assert_ptr_null(check_status(&r, "redis"));
    }
    th_resp_free(&r);
}
END_TEST

START_TEST(ready_is_200_with_database_rabbitmq_and_redis_up)
{
    const char *amqp = getenv("TB_TEST_AMQP_URL"), *redis = getenv("TB_TEST_REDIS_URL");
    ck_assert_msg(amqp && redis, "TB_TEST_AMQP_URL/TB_TEST_REDIS_URL are not set: run under "
                                 "scripts/with-brokers.sh");
    static char amqp_env[300], redis_env[300];
    snprintf(amqp_env, sizeof amqp_env, "TB_AMQP_URL=%s", amqp);
    snprintf(redis_env, sizeof redis_env, "TB_REDIS_URL=%s", redis);
    const char *env[] = {amqp_env, redis_env, NULL};
    th_service ws = {.name = "wallet", .prism_port = -1};
    th_start(&ws, env);
    th_resp r;
    /* the outbox relay's publisher connects in the background */
    ck_assert_msg(ready_until(&r, &ws, 200, "rabbitmq", "up", 5000), "%ld %s", r.status, r.body);
    ck_assert_str_eq(check_status(&r, "database"), "up");
    th_resp_free(&r);
    /* a transaction publishes wallet.balance.updated: the Redis publisher joins the checks */
    tb_client_opts copts = th_client_opts();
    wallet_client *c2 = wallet_client_new(ws.direct, &copts, NULL);
    char user[37];
    wallet_create_wallet_req req = {.body = {.user_id = new_uuid(user), .currency = "GBP"}};
    wallet_create_wallet_resp out;
    ck_assert_int_eq(wallet_create_wallet_call(c2, &ctx, &req, &out, NULL), 0);
    ck_assert_int_eq(out.status, 201);
    wallet_create_transaction_req t = {
        .wallet_id = out.s201.id, .body = {.type = WALLET_TRANSACTION_TYPE_CREDIT, .amount = 5}};
    wallet_create_transaction_resp to;
    ck_assert_int_eq(wallet_create_transaction_call(c2, &ctx, &t, &to, NULL), 0);
    ck_assert_int_eq(to.status, 201);
    ck_assert_msg(ready_until(&r, &ws, 200, "redis", "up", 5000), "%ld %s", r.status, r.body);
    ck_assert_str_eq(check_status(&r, "rabbitmq"), "up");
    ck_assert_str_eq(check_status(&r, "database"), "up");
    th_resp_free(&r);
    wallet_client_free(c2);
    ck_assert_int_eq(th_stop(&ws), 0);
    th_cleanup(&ws);
}
END_TEST

START_TEST(ready_is_503_naming_rabbitmq_while_the_broker_is_unreachable_and_live_stays_200)
{
    static char amqp_env[128];
    snprintf(amqp_env, sizeof amqp_env, "TB_AMQP_URL=amqp://guest:guest@127.0.0.1:%d/",
             th_free_port()); /* nothing listens there */
    const char *env[] = {amqp_env, NULL};
    th_service ws = {.name = "wallet", .prism_port = -1};
    th_start(&ws, env); /* serves: the outbox keeps the events meanwhile */
    th_resp r;
    ck_assert_msg(ready_until(&r, &ws, 503, "rabbitmq", "down", 5000), "%ld %s", r.status, r.body);
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "status")), "not_ready");
    const char *why = check_reason(&r, "rabbitmq");
    ck_assert_ptr_nonnull(why);
    ck_assert_msg(strstr(why, "publisher") && strstr(why, " s: connect to 127.0.0.1:"),
                  "reason: %s", why);
    ck_assert_str_eq(check_status(&r, "database"), "up");
    ck_assert_ptr_null(check_reason(&r, "database"));
    th_resp_free(&r);
    get_health(&r, &ws, "/health/live");
    ck_assert_int_eq(r.status, 200);
    th_resp_free(&r);
    ck_assert_int_eq(th_stop(&ws), 0);
    th_cleanup(&ws);
}
END_TEST

START_TEST(create_wallet_returns_201_location_and_zero_balance)
{
    char user[37];
    tb_error err = TB_ERROR_INIT;
    wallet_create_wallet_req req = {.body = {.user_id = new_uuid(user), .currency = "CHP"}};
    wallet_create_wallet_resp out;
    ck_assert_int_eq(wallet_create_wallet_call(wc, &ctx, &req, &out, &err), 0);
    ck_assert_int_eq(out.status, 201);
    ck_assert_str_eq(out.s201.user_id, user);
    ck_assert_str_eq(out.s201.currency, "CHP");
    ck_assert_int_eq(out.s201.balance, 0); /* 0 is sent, not dropped */
    ck_assert_ptr_nonnull(out.headers.location);
    ck_assert(strstr(out.headers.location, out.s201.id) != NULL);
    /* the same user and currency again: 409, a declared error, decoded */
    ck_assert_int_eq(wallet_create_wallet_call(wc, &ctx, &req, &out, &err), 0);
    ck_assert_int_eq(out.status, 409);
    ck_assert_str_eq(out.s409.code, "wallet_exists");
    ck_assert_ptr_nonnull(out.s409.request_id);
    /* the same user id in upper case is the same user (it opened a second CHP wallet), and
     * the wallet's id in upper case finds it (it was a 404) */
    char upper[37], wid[37];
    for (int i = 0; i < 37; i++)
        upper[i] = (char)(user[i] >= 'a' && user[i] <= 'f' ? user[i] - 32 : user[i]);
    req.body.user_id = upper;
    ck_assert_int_eq(wallet_create_wallet_call(wc, &ctx, &req, &out, &err), 0);
    ck_assert_int_eq(out.status, 409);
    ck_assert_str_eq(out.s409.code, "wallet_exists");
    wallet_get_user_wallets_req ur = {.user_id = upper};
    wallet_get_user_wallets_resp uo;
    ck_assert_int_eq(wallet_get_user_wallets_call(wc, &ctx, &ur, &uo, &err), 0);
    ck_assert_int_eq(uo.status, 200);
    ck_assert_uint_eq(uo.s200.n, 1);
    for (int i = 0; i < 37; i++)
        wid[i] = (char)(uo.s200.items[0].id[i] >= 'a' && uo.s200.items[0].id[i] <= 'f'
                            ? uo.s200.items[0].id[i] - 32
                            : uo.s200.items[0].id[i]);
    wallet_get_wallet_req gr = {.wallet_id = wid};
    wallet_get_wallet_resp go;
    ck_assert_int_eq(wallet_get_wallet_call(wc, &ctx, &gr, &go, &err), 0);
    ck_assert_int_eq(go.status, 200);
    ck_assert_str_eq(go.s200.user_id, user); /* stored in lower case */
    tb_error_deinit(&err);
}
END_TEST

START_TEST(get_wallet_and_unknown_wallet_404)
{
    char user[37], other[37];
    wallet_wallet w = make_wallet(new_uuid(user), "EUR");
    wallet_get_wallet_req req = {.wallet_id = w.id};
    wallet_get_wallet_resp out;
    ck_assert_int_eq(wallet_get_wallet_call(wc, &ctx, &req, &out, NULL), 0);
    ck_assert_int_eq(out.status, 200);
    ck_assert_str_eq(out.s200.id, w.id);
    ck_assert_str_eq(out.s200.created_at, w.created_at);
    req.wallet_id = new_uuid(other);
    ck_assert_int_eq(wallet_get_wallet_call(wc, &ctx, &req, &out, NULL), 0);
    ck_assert_int_eq(out.status, 404);
    ck_assert_str_eq(out.s404.code, "not_found");
}
END_TEST

START_TEST(user_wallets_lists_all_filters_by_currency_and_is_empty_for_strangers)
{
    char user[37], stranger[37];
    new_uuid(user);
    make_wallet(user, "CHP");
    make_wallet(user, "EUR");
    make_wallet(user, "USD");
    wallet_get_user_wallets_req req = {.user_id = user};
    wallet_get_user_wallets_resp out;
    ck_assert_int_eq(wallet_get_user_wallets_call(wc, &ctx, &req, &out, NULL), 0);
    ck_assert_int_eq(out.status, 200);
    ck_assert_uint_eq(out.s200.n, 3);
    ck_assert_str_eq(out.s200.items[0].currency, "CHP"); /* oldest first */
    char *curs[] = {"USD", "CHP"};
    req.has_currency = true;
    req.currency = curs;
    req.n_currency = 2;
    ck_assert_int_eq(wallet_get_user_wallets_call(wc, &ctx, &req, &out, NULL), 0);
    ck_assert_uint_eq(out.s200.n, 2);
    wallet_get_user_wallets_req none = {.user_id = new_uuid(stranger)};
    ck_assert_int_eq(wallet_get_user_wallets_call(wc, &ctx, &none, &out, NULL), 0);
    ck_assert_int_eq(out.status, 200);
    ck_assert_uint_eq(out.s200.n, 0);
}
END_TEST

START_TEST(credit_debit_and_never_below_zero)
{
    char user[37];
    wallet_wallet w = make_wallet(new_uuid(user), "CHP");
    wallet_create_transaction_resp r = post_tx(w.id, WALLET_TRANSACTION_TYPE_CREDIT, 500, NULL, NULL);
    ck_assert_int_eq(r.status, 201);
    ck_assert_int_eq(r.s201.balance_after, 500);
    ck_assert(!r.s201.has_reference);
    r = post_tx(w.id, WALLET_TRANSACTION_TYPE_DEBIT, 200, NULL, NULL);
    ck_assert_int_eq(r.status, 201);
    ck_assert_int_eq(r.s201.balance_after, 300);
    r = post_tx(w.id, WALLET_TRANSACTION_TYPE_DEBIT, 301, NULL, NULL);
    ck_assert_int_eq(r.status, 409);
    ck_assert_str_eq(r.s409.code, "insufficient_funds");
    r = post_tx(w.id, WALLET_TRANSACTION_TYPE_DEBIT, 300, NULL, NULL);
    ck_assert_int_eq(r.status, 201);
    ck_assert_int_eq(r.s201.balance_after, 0);
    wallet_get_wallet_req g = {.wallet_id = w.id};
    wallet_get_wallet_resp gw;
    ck_assert_int_eq(wallet_get_wallet_call(wc, &ctx, &g, &gw, NULL), 0);
    ck_assert_int_eq(gw.s200.balance, 0);
    char unknown[37];
    r = post_tx(new_uuid(unknown), WALLET_TRANSACTION_TYPE_CREDIT, 1, NULL, NULL);
    ck_assert_int_eq(r.status, 404);
}
END_TEST

START_TEST(empty_reference_is_sent_and_kept)
{
    char user[37];
    wallet_wallet w = make_wallet(new_uuid(user), "CHP");
    wallet_create_transaction_req req = {
        .wallet_id = w.id,
        .body = {.type = WALLET_TRANSACTION_TYPE_CREDIT, .amount = 1, .has_reference = true, .reference = ""},
    };
    wallet_create_transaction_resp out;
    ck_assert_int_eq(wallet_create_transaction_call(wc, &ctx, &req, &out, NULL), 0);
    ck_assert_int_eq(out.status, 201);
    ck_assert(out.s201.has_reference);
    ck_assert_str_eq(out.s201.reference, "");
}
END_TEST

START_TEST(idempotency_key_replays_the_first_result_and_refuses_a_different_request)
{
    char user[37];
    wallet_wallet w = make_wallet(new_uuid(user), "CHP");
    wallet_create_transaction_resp a = post_tx(w.id, WALLET_TRANSACTION_TYPE_CREDIT, 70, "key-1", NULL);
    ck_assert_int_eq(a.status, 201);
    ck_assert_ptr_null(a.headers.idempotent_replayed);
    wallet_create_transaction_resp b = post_tx(w.id, WALLET_TRANSACTION_TYPE_CREDIT, 70, "key-1", NULL);
    ck_assert_int_eq(b.status, 201);
    ck_assert_str_eq(b.s201.id, a.s201.id);
    ck_assert_str_eq(b.headers.idempotent_replayed, "true");
    wallet_create_transaction_resp c = post_tx(w.id, WALLET_TRANSACTION_TYPE_CREDIT, 71, "key-1", NULL);
    ck_assert_int_eq(c.status, 422);
    ck_assert_str_eq(c.s422.code, "idempotency_key_reused");
    wallet_get_wallet_req g = {.wallet_id = w.id};
    wallet_get_wallet_resp gw;
    ck_assert_int_eq(wallet_get_wallet_call(wc, &ctx, &g, &gw, NULL), 0);
    ck_assert_int_eq(gw.s200.balance, 70); /* applied once */
}
END_TEST

/* A refusal is a first result too: a debit declined for lack of funds stays declined under its
 * key, replayed, even once the funds are there (it was applied: "applies nothing twice" and
 * "returns the first result" both broken); a new attempt takes a new key. */
START_TEST(idempotency_key_replays_a_refusal)
{
    char user[37];
    wallet_wallet w = make_wallet(new_uuid(user), "CHP");
    wallet_create_transaction_resp a = post_tx(w.id, WALLET_TRANSACTION_TYPE_DEBIT, 50, "k-dec", NULL);
    ck_assert_int_eq(a.status, 409);
    ck_assert_str_eq(a.s409.code, "insufficient_funds");
    ck_assert_ptr_null(a.headers.idempotent_replayed);
    ck_assert_int_eq(post_tx(w.id, WALLET_TRANSACTION_TYPE_CREDIT, 100, NULL, NULL).status, 201);
    wallet_create_transaction_resp b = post_tx(w.id, WALLET_TRANSACTION_TYPE_DEBIT, 50, "k-dec", NULL);
    ck_assert_int_eq(b.status, 409);
    ck_assert_str_eq(b.s409.code, "insufficient_funds");
    ck_assert_str_eq(b.s409.message, a.s409.message);
    ck_assert_str_eq(b.headers.idempotent_replayed, "true");
    wallet_create_transaction_resp c = post_tx(w.id, WALLET_TRANSACTION_TYPE_DEBIT, 60, "k-dec", NULL);
    ck_assert_int_eq(c.status, 422);
    ck_assert_str_eq(c.s422.code, "idempotency_key_reused");
    ck_assert_int_eq(post_tx(w.id, WALLET_TRANSACTION_TYPE_DEBIT, 50, "k-new", NULL).status, 201);
    wallet_get_wallet_req g = {.wallet_id = w.id};
    wallet_get_wallet_resp gw;
    ck_assert_int_eq(wallet_get_wallet_call(wc, &ctx, &g, &gw, NULL), 0);
    ck_assert_int_eq(gw.s200.balance, 50);
}
END_TEST

START_TEST(transactions_page_newest_first_with_cursor_and_type_filter)
{
    char user[37];
    wallet_wallet w = make_wallet(new_uuid(user), "CHP");
    for (int i = 1; i <= 5; i++)
        post_tx(w.id, WALLET_TRANSACTION_TYPE_CREDIT, i * 10, NULL, NULL);
    post_tx(w.id, WALLET_TRANSACTION_TYPE_DEBIT, 5, NULL, NULL);
    wallet_list_transactions_req req = {.wallet_id = w.id, .has_limit = true, .limit = 4};
    wallet_list_transactions_resp out;
    ck_assert_int_eq(wallet_list_transactions_call(wc, &ctx, &req, &out, NULL), 0);
    ck_assert_int_eq(out.status, 200);
    ck_assert_uint_eq(out.s200.n_items, 4);
    ck_assert_int_eq(out.s200.items[0].type, WALLET_TRANSACTION_TYPE_DEBIT);
    ck_assert_int_eq(out.s200.items[1].amount, 50);
    ck_assert(!out.s200.next_cursor_is_null);
    req.has_cursor = true;
    req.cursor = out.s200.next_cursor;
    ck_assert_int_eq(wallet_list_transactions_call(wc, &ctx, &req, &out, NULL), 0);
    ck_assert_uint_eq(out.s200.n_items, 2);
    ck_assert_int_eq(out.s200.items[1].amount, 10);
    ck_assert(out.s200.next_cursor_is_null);
    wallet_list_transactions_req deb = {.wallet_id = w.id, .has_type = true,
                                        .type = WALLET_TRANSACTION_TYPE_DEBIT};
    ck_assert_int_eq(wallet_list_transactions_call(wc, &ctx, &deb, &out, NULL), 0);
    ck_assert_uint_eq(out.s200.n_items, 1); /* the default limit applies */
}
END_TEST

START_TEST(request_id_is_propagated_by_the_client)
{
    tb_ctx c2;
    tb_ctx_init(&c2, arena, "contract-req-0001");
    char user[37];
    tb_error err = TB_ERROR_INIT;
    wallet_get_wallet_req req = {.wallet_id = new_uuid(user)};
    wallet_get_wallet_resp out;
    ck_assert_int_eq(wallet_get_wallet_call(wc, &c2, &req, &out, &err), 0);
    ck_assert_int_eq(out.status, 404);
    ck_assert_str_eq(out.s404.request_id, "contract-req-0001");
    tb_error_deinit(&err);
}
END_TEST

START_TEST(client_reports_transport_failure_apart_from_answers)
{
    char base[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%d", th_free_port());
    tb_client_opts o = TB_CLIENT_OPTS_INIT;
    o.connect_timeout_ms = 1000;
    wallet_client *dead = wallet_client_new(base, &o, NULL);
    ck_assert_ptr_nonnull(dead);
    tb_error err = TB_ERROR_INIT;
    wallet_get_health_req req = {0};
    wallet_get_health_resp out;
    ck_assert_int_eq(wallet_get_health_call(dead, &ctx, &req, &out, &err), TB_ECONN);
    ck_assert(strstr(err.message, base) != NULL);
    tb_error_deinit(&err);
    wallet_client_free(dead);
}
END_TEST

/* ---- the spec's examples ---- */

START_TEST(every_example_matches_its_schema)
{
    ck_assert_uint_ge(wallet_n_examples, 5);
    for (size_t i = 0; i < wallet_n_examples; i++) {
        const tb_api_example *ex = &wallet_examples[i];
        json_t *j = json_loads(ex->json, JSON_DECODE_ANY, NULL);
        ck_assert_ptr_nonnull(j);
        tb_error err = TB_ERROR_INIT;
        int rc = tb_api_example_validate(ex, j, &err);
        ck_assert_msg(rc == 0, "%s %s %s: %s", ex->operation_id, ex->where, ex->name,
                      err.n_details ? err.details[0].message : err.message);
        tb_error_deinit(&err);
        json_decref(j);
    }
}
END_TEST

START_TEST(every_request_body_example_is_accepted_by_the_service)
{
    char user[37], path[128], u[256];
    wallet_wallet w = make_wallet(new_uuid(user), "CHP");
    post_tx(w.id, WALLET_TRANSACTION_TYPE_CREDIT, 1000, NULL, NULL);
    int sent = 0;
    for (size_t i = 0; i < wallet_n_examples; i++) {
        const tb_api_example *ex = &wallet_examples[i];
        if (strcmp(ex->where, "request body") != 0)
            continue;
        if (strcmp(ex->operation_id, "createTransaction") == 0)
            snprintf(path, sizeof path, "/wallets/%s/transactions", w.id);
        else if (strcmp(ex->operation_id, "createWallet") == 0)
            snprintf(path, sizeof path, "/wallets");
        else
            ck_abort_msg("no route for the example of %s", ex->operation_id);
        url(u, sizeof u, path);
        th_resp r;
        th_http(&r, "POST", u, ex->json, NULL, NULL);
        ck_assert_msg(r.status == 201 || r.status == 409, "%s example %s: %ld %s",
                      ex->operation_id, ex->name, r.status, r.body);
        th_assert_no_response_violation(&r);
        th_resp_free(&r);
        sent++;
    }
    ck_assert_int_ge(sent, 3);
}
END_TEST

/* ---- bad input through plain HTTP ---- */

START_TEST(malformed_json_is_400_with_position)
{
    char user[37], u[256], path[128];
    wallet_wallet w = make_wallet(new_uuid(user), "CHP");
    snprintf(path, sizeof path, "/wallets/%s/transactions", w.id);
    url(u, sizeof u, path);
    th_resp r;
    th_http(&r, "POST", u, "{\"type\": \"credit\",\n \"amount\": 12,,}", NULL, NULL);
    th_assert_error(&r, 400, "malformed_json", NULL, NULL);
    const char *msg = json_string_value(json_object_get(json_object_get(r.json, "error"), "message"));
    ck_assert_msg(strstr(msg, "line 2") != NULL, "no line in %s", msg);
    ck_assert_msg(strstr(msg, "column") != NULL, "no column in %s", msg);
    th_assert_no_response_violation(&r);
    th_resp_free(&r);
}
END_TEST

START_TEST(schema_violations_are_400_naming_each_path_and_rule)
{
    char user[37], u[256], path[128];
    wallet_wallet w = make_wallet(new_uuid(user), "CHP");
    snprintf(path, sizeof path, "/wallets/%s/transactions", w.id);
    url(u, sizeof u, path);
    th_resp r;
    th_http(&r, "POST", u, "{\"type\":\"gift\",\"amount\":0,\"memo\":1}", NULL, NULL);
    th_assert_error(&r, 400, "validation_failed", "/body/type", "enum");
    th_assert_error(&r, 400, "validation_failed", "/body/amount", "minimum");
    th_assert_error(&r, 400, "validation_failed", "/body/memo", "additionalProperties");
    th_assert_no_response_violation(&r);
    th_resp_free(&r);
    th_http(&r, "POST", u, "{\"amount\":1.5}", NULL, NULL);
    th_assert_error(&r, 400, "validation_failed", "/body/type", "required");
    th_assert_error(&r, 400, "validation_failed", "/body/amount", "type");
    th_resp_free(&r);
    th_http(&r, "POST", u, "[]", NULL, NULL);
    th_assert_error(&r, 400, "validation_failed", "/body", "type");
    th_resp_free(&r);
}
END_TEST

/* Regression (issue 12): "a\u0000b" was decoded into the C string "a", stored and published as
 * "a". A string that becomes a char * refuses U+0000. */
START_TEST(nul_in_a_reference_is_400_naming_body_reference)
{
    char user[37], u[256], path[128];
    wallet_wallet w = make_wallet(new_uuid(user), "CHP");
    snprintf(path, sizeof path, "/wallets/%s/transactions", w.id);
    url(u, sizeof u, path);
    th_resp r;
    th_http(&r, "POST", u, "{\"type\":\"credit\",\"amount\":1,\"reference\":\"a\\u0000b\"}",
            NULL, NULL);
    th_assert_error(&r, 400, "validation_failed", "/body/reference", "nul");
    json_t *d = json_array_get(json_object_get(json_object_get(r.json, "error"), "details"), 0);
    const char *msg = json_string_value(json_object_get(d, "message"));
    ck_assert_msg(msg && strstr(msg, "NUL"), "message: %s", r.body);
    th_assert_no_response_violation(&r);
    th_resp_free(&r);
    wallet_get_wallet_req g = {.wallet_id = w.id};
    wallet_get_wallet_resp gw;
    ck_assert_int_eq(wallet_get_wallet_call(wc, &ctx, &g, &gw, NULL), 0);
    ck_assert_int_eq(gw.s200.balance, 0); /* nothing stored */
}
END_TEST

/* Regression (issue 12): with the reference cut at its NUL, "a\u0000c" under the key of
 * "a\u0000b" looked like the same request and was replayed instead of refused. */
START_TEST(idempotency_key_is_not_replayed_for_a_request_that_differs_after_a_nul)
{
    char user[37], u[256], path[128], replayed[16];
    wallet_wallet w = make_wallet(new_uuid(user), "CHP");
    snprintf(path, sizeof path, "/wallets/%s/transactions", w.id);
    url(u, sizeof u, path);
    const char *key[] = {"Idempotency-Key: nul-1", NULL};
    th_resp r;
    th_http(&r, "POST", u, "{\"type\":\"credit\",\"amount\":1,\"reference\":\"a\\u0000b\"}",
            NULL, key);
    th_assert_error(&r, 400, "validation_failed", "/body/reference", "nul");
    th_resp_free(&r);
    th_http(&r, "POST", u, "{\"type\":\"credit\",\"amount\":1,\"reference\":\"a\\u0000c\"}",
            NULL, key);
    th_assert_error(&r, 400, "validation_failed", "/body/reference", "nul");
    ck_assert(!th_header(&r, "Idempotent-Replayed", replayed, sizeof replayed));
    th_resp_free(&r);
    /* the key is still free: the first valid request under it is applied, not replayed */
    th_http(&r, "POST", u, "{\"type\":\"credit\",\"amount\":1,\"reference\":\"a\"}", NULL, key);
    ck_assert_msg(r.status == 201, "status %ld: %s", r.status, r.body);
    ck_assert(!th_header(&r, "Idempotent-Replayed", replayed, sizeof replayed));
    th_assert_no_response_violation(&r);
    th_resp_free(&r);
    th_http(&r, "POST", u, "{\"type\":\"credit\",\"amount\":1,\"reference\":\"ab\"}", NULL, key);
    th_assert_error(&r, 422, "idempotency_key_reused", NULL, NULL);
    th_resp_free(&r);
    wallet_get_wallet_req g = {.wallet_id = w.id};
    wallet_get_wallet_resp gw;
    ck_assert_int_eq(wallet_get_wallet_call(wc, &ctx, &g, &gw, NULL), 0);
    ck_assert_int_eq(gw.s200.balance, 1);
}
END_TEST

/* JSON Schema: an integer is a number without a fractional part. 0.99999999999999999999 has
 * one, though its nearest double is 1.0 (it was accepted as 1); 1.0 and 1e0 have none. */
START_TEST(integer_amount_with_a_fraction_is_400_even_when_it_rounds_to_a_whole_double)
{
    char user[37], u[256];
    wallet_wallet w = make_wallet(new_uuid(user), "CHP");
    /* Straight to the service: Prism reads numbers as JavaScript doubles and would pass the
     * rounded amount on. */
    snprintf(u, sizeof u, "%s/wallets/%s/transactions", svc.direct, w.id);
    th_resp r;
    th_http(&r, "POST", u, "{\"type\":\"credit\",\"amount\":0.99999999999999999999}", NULL,
            NULL);
    th_assert_error(&r, 400, "validation_failed", "/body/amount", "type");
    th_resp_free(&r);
    th_http(&r, "POST", u, "{\"type\":\"credit\",\"amount\":1.00000000000000000001}", NULL,
            NULL);
    th_assert_error(&r, 400, "validation_failed", "/body/amount", "type");
    th_resp_free(&r);
    th_http(&r, "POST", u, "{\"type\":\"credit\",\"amount\":1.0}", NULL, NULL);
    ck_assert_msg(r.status == 201, "status %ld: %s", r.status, r.body);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(r.json, "data"), "amount")),
                     1);
    th_resp_free(&r);
    th_http(&r, "POST", u, "{\"type\":\"credit\",\"amount\":2e0}", NULL, NULL);
    ck_assert_msg(r.status == 201, "status %ld: %s", r.status, r.body);
    th_resp_free(&r);
    wallet_get_wallet_req g = {.wallet_id = w.id};
    wallet_get_wallet_resp gw;
    ck_assert_int_eq(wallet_get_wallet_call(wc, &ctx, &g, &gw, NULL), 0);
    ck_assert_int_eq(gw.s200.balance, 3);
}
END_TEST

/* A body of n unknown keys (plus a valid type and amount), malloc'd. */
static char *unknown_keys_body(int n)
{
    tb_buf b = TB_BUF_INIT;
    tb_buf_puts(&b, "{\"type\":\"credit\",\"amount\":1");
    for (int i = 0; i < n; i++)
        tb_buf_printf(&b, ",\"k%d\":0", i);
    tb_buf_putc(&b, '}');
    ck_assert(!b.oom);
    return b.data;
}

/* The 400 of a body with n_keys unknown keys: 100 details, the rest counted, a small body that
 * matches the spec's ErrorResponse. */
static void assert_capped_details(const th_resp *r, int n_keys)
{
    th_assert_error(r, 400, "validation_failed", "/body/k0", "additionalProperties");
    ck_assert_msg(r->len < 64 * 1024, "error body of %zu bytes", r->len);
    json_t *e = json_object_get(r->json, "error");
    ck_assert_uint_eq(json_array_size(json_object_get(e, "details")), 100);
    ck_assert_int_eq(json_integer_value(json_object_get(e, "detailsOmitted")), n_keys - 100);
    tb_error verr = TB_ERROR_INIT;
    ck_assert_msg(common_error_response_validate(r->json, TB_VALIDATE_ALL_ERRORS, &verr) == 0,
                  "the error body fails the spec: %s", verr.message);
    tb_error_deinit(&verr);
}

/* Regression (issue 12): 110,000 unknown keys (877 KB) answered 110,002 details, 8.6 MB. */
START_TEST(a_body_of_110000_unknown_keys_gets_100_details_and_the_count_of_the_rest)
{
    th_service s = {.name = "wallet", .prism_port = -1};
    const char *env[] = {"TB_MAX_BODY=2097152", NULL};
    th_start(&s, env);
    wallet_client *cl = wallet_client_new(s.direct, NULL, NULL);
    char user[37], u[256];
    wallet_create_wallet_req wr = {.body = {.user_id = new_uuid(user), .currency = "CHP"}};
    wallet_create_wallet_resp wo;
    ck_assert_int_eq(wallet_create_wallet_call(cl, &ctx, &wr, &wo, NULL), 0);
    snprintf(u, sizeof u, "%s/wallets/%s/transactions", s.direct, wo.s201.id);
    char *body = unknown_keys_body(110000);
    th_resp r;
    th_http(&r, "POST", u, body, NULL, NULL);
    assert_capped_details(&r, 110000);
    th_resp_free(&r);
    free(body);
    wallet_client_free(cl);
    ck_assert_int_eq(th_stop(&s), 0);
    th_cleanup(&s);
}
END_TEST

/* The same cap on the shared service, through Prism when it runs: the answer with
 * "detailsOmitted" matches the spec. */
START_TEST(many_unknown_keys_get_100_details_and_a_count_the_spec_allows)
{
    char user[37], u[256], path[128];
    wallet_wallet w = make_wallet(new_uuid(user), "CHP");
    snprintf(path, sizeof path, "/wallets/%s/transactions", w.id);
    url(u, sizeof u, path);
    char *body = unknown_keys_body(1200); /* under the suite's TB_MAX_BODY */
    th_resp r;
    th_http(&r, "POST", u, body, NULL, NULL);
    assert_capped_details(&r, 1200);
    th_assert_no_response_violation(&r);
    th_resp_free(&r);
    free(body);
}
END_TEST

START_TEST(bad_parameters_are_400_naming_the_parameter)
{
    char u[256], user[37], path[160];
    th_resp r;
    url(u, sizeof u, "/wallets/not-a-uuid");
    th_http(&r, "GET", u, NULL, NULL, NULL);
    th_assert_error(&r, 400, "validation_failed", "/path/walletId", "pattern");
    th_assert_no_response_violation(&r);
    th_resp_free(&r);
    wallet_wallet w = make_wallet(new_uuid(user), "CHP");
    snprintf(path, sizeof path, "/wallets/%s/transactions?limit=abc&type=gift", w.id);
    url(u, sizeof u, path);
    th_http(&r, "GET", u, NULL, NULL, NULL);
    th_assert_error(&r, 400, "validation_failed", "/query/limit", "type");
    th_assert_error(&r, 400, "validation_failed", "/query/type", "enum");
    th_resp_free(&r);
    snprintf(path, sizeof path, "/wallets/%s/transactions?limit=1000", w.id);
    url(u, sizeof u, path);
    th_http(&r, "GET", u, NULL, NULL, NULL);
    th_assert_error(&r, 400, "validation_failed", "/query/limit", "maximum");
    th_resp_free(&r);
    /* a parameter of one value given twice: refused, not the first taken silently (HTTP
     * parameter pollution: a proxy that checks the last and a server that uses the first) */
    snprintf(path, sizeof path, "/wallets/%s/transactions?limit=5&limit=100", w.id);
    url(u, sizeof u, path);
    th_http(&r, "GET", u, NULL, NULL, NULL);
    th_assert_error(&r, 400, "validation_failed", "/query/limit", "repeated");
    th_resp_free(&r);
    snprintf(path, sizeof path, "/wallets/%s/transactions", w.id);
    url(u, sizeof u, path);
    const char *hdr[] = {"Idempotency-Key: has spaces", NULL};
    th_http(&r, "POST", u, "{\"type\":\"credit\",\"amount\":1}", NULL, hdr);
    th_assert_error(&r, 400, "validation_failed", "/header/Idempotency-Key", "pattern");
    th_resp_free(&r);
    url(u, sizeof u, "/wallets/6f1c2a9e-4b3d-4c8e-9a7f-0d2e5b8c%2F34");
    th_http(&r, "GET", u, NULL, NULL, NULL);
    th_assert_error(&r, 400, "validation_failed", "/path/walletId", "pattern");
    th_resp_free(&r);
}
END_TEST

START_TEST(wrong_content_type_is_415)
{
    char u[256];
    url(u, sizeof u, "/wallets");
    th_resp r;
    th_http(&r, "POST", u, "userId=1", "application/x-www-form-urlencoded", NULL);
    th_assert_error(&r, 415, "unsupported_media_type", NULL, NULL);
    th_assert_no_response_violation(&r);
    th_resp_free(&r);
}
END_TEST

START_TEST(missing_body_is_400)
{
    char u[256];
    url(u, sizeof u, "/wallets");
    th_resp r;
    th_http(&r, "POST", u, NULL, NULL, NULL);
    th_assert_error(&r, 400, "validation_failed", "/body", "required");
    th_resp_free(&r);
}
END_TEST

START_TEST(body_over_the_limit_is_413)
{
    char u[256];
    url(u, sizeof u, "/wallets");
    size_t n = 64 * 1024;
    char *big = malloc(n + 64);
    snprintf(big, 64, "{\"userId\":\"");
    size_t o = strlen(big);
    memset(big + o, 'a', n);
    strcpy(big + o + n, "\"}");
    th_resp r;
    th_http(&r, "POST", u, big, NULL, NULL);
    th_assert_error(&r, 413, "payload_too_large", NULL, NULL);
    th_assert_no_response_violation(&r);
    th_resp_free(&r);
    free(big);
}
END_TEST

START_TEST(unknown_path_is_404_and_wrong_method_is_405_with_allow)
{
    char u[256], allow[128];
    th_resp r;
    url(u, sizeof u, "/nothing/here");
    th_http(&r, "GET", u, NULL, NULL, NULL);
    th_assert_error(&r, 404, "not_found", NULL, NULL);
    th_resp_free(&r);
    url(u, sizeof u, "/wallets/");
    th_http(&r, "GET", u, NULL, NULL, NULL);
    th_assert_error(&r, 404, "not_found", NULL, NULL);
    th_resp_free(&r);
    url(u, sizeof u, "/wallets");
    th_http(&r, "DELETE", u, NULL, NULL, NULL);
    th_assert_error(&r, 405, "method_not_allowed", NULL, NULL);
    ck_assert(th_header(&r, "Allow", allow, sizeof allow));
    ck_assert_str_eq(allow, "POST");
    th_resp_free(&r);
    url(u, sizeof u, "/wallets/6f1c2a9e-4b3d-4c8e-9a7f-0d2e5b8c1a34/transactions");
    th_http(&r, "PUT", u, "{}", NULL, NULL);
    ck_assert_int_eq(r.status, 405);
    ck_assert(th_header(&r, "Allow", allow, sizeof allow));
    ck_assert(strstr(allow, "GET") && strstr(allow, "POST"));
    th_resp_free(&r);
}
END_TEST

START_TEST(x_request_id_is_echoed_or_generated)
{
    char u[256], rid[128];
    url(u, sizeof u, "/health");
    th_resp r;
    const char *hdr[] = {"X-Request-ID: abc-123", NULL};
    th_http(&r, "GET", u, NULL, NULL, hdr);
    ck_assert_int_eq(r.status, 200);
    ck_assert(th_header(&r, "X-Request-ID", rid, sizeof rid));
    ck_assert_str_eq(rid, "abc-123");
    ck_assert_ptr_nonnull(json_object_get(r.json, "data"));
    th_resp_free(&r);
    th_http(&r, "GET", u, NULL, NULL, NULL);
    ck_assert(th_header(&r, "X-Request-ID", rid, sizeof rid));
    ck_assert_uint_eq(strlen(rid), 32);
    th_resp_free(&r);
}
END_TEST

/* ---- concurrency: many clients on one wallet ---- */

#define CONC_THREADS 8
#define CONC_EACH 150

typedef struct conc {
    const char *wallet;
    int ok, other;
} conc;

static void *conc_loop(void *arg)
{
    conc *c = arg;
    tb_arena *a = tb_arena_new(0);
    tb_ctx cx;
    tb_ctx_init(&cx, a, NULL);
    tb_client_opts o = th_client_opts();
    wallet_client *cl = wallet_client_new(svc.url, &o, NULL);
    for (int i = 0; i < CONC_EACH; i++) {
        wallet_create_transaction_req req = {
            .wallet_id = (char *)c->wallet,
            .body = {.type = i % 2 ? WALLET_TRANSACTION_TYPE_DEBIT : WALLET_TRANSACTION_TYPE_CREDIT,
                     .amount = 5},
        };
        wallet_create_transaction_resp out;
        if (wallet_create_transaction_call(cl, &cx, &req, &out, NULL) == 0 && out.status == 201)
            c->ok++;
        else
            c->other++;
        tb_arena_reset(a);
    }
    wallet_client_free(cl);
    tb_arena_free(a);
    return NULL;
}

START_TEST(concurrent_transactions_on_one_wallet_all_apply_and_balance_adds_up)
{
    char user[37];
    wallet_wallet w = make_wallet(new_uuid(user), "CHP");
    post_tx(w.id, WALLET_TRANSACTION_TYPE_CREDIT, 1000, NULL, NULL);
    pthread_t t[CONC_THREADS];
    conc c[CONC_THREADS];
    for (int i = 0; i < CONC_THREADS; i++) {
        c[i] = (conc){.wallet = w.id};
        pthread_create(&t[i], NULL, conc_loop, &c[i]);
    }
    int ok = 0, other = 0;
    for (int i = 0; i < CONC_THREADS; i++) {
        pthread_join(t[i], NULL);
        ok += c[i].ok;
        other += c[i].other;
    }
    ck_assert_int_eq(other, 0); /* no 500 from requests interleaving on the database */
    ck_assert_int_eq(ok, CONC_THREADS * CONC_EACH);
    wallet_get_wallet_req g = {.wallet_id = w.id};
    wallet_get_wallet_resp gw;
    ck_assert_int_eq(wallet_get_wallet_call(wc, &ctx, &g, &gw, NULL), 0);
    ck_assert_int_eq(gw.s200.balance, 1000); /* as many credits as debits of 5 */
}
END_TEST

/* ---- restart: SIGKILL mid-stream loses no acknowledged transaction, applies none twice ---- */

#define RESTART_N 300

typedef struct poster {
    th_service *s;
    const char *wallet;
    int acked[RESTART_N]; /* 1 when a 201 came back */
    volatile int done;
} poster;

static void *post_loop(void *arg)
{
    poster *p = arg;
    tb_arena *a = tb_arena_new(0);
    tb_ctx c;
    tb_ctx_init(&c, a, NULL);
    wallet_client *cl = wallet_client_new(p->s->direct, NULL, NULL);
    for (int i = 0; i < RESTART_N; i++) {
        char key[32];
        snprintf(key, sizeof key, "restart-%d", i);
        wallet_create_transaction_req req = {
            .wallet_id = (char *)p->wallet, .has_idempotency_key = true, .idempotency_key = key,
            .body = {.type = WALLET_TRANSACTION_TYPE_CREDIT, .amount = i + 1},
        };
        wallet_create_transaction_resp out;
        if (wallet_create_transaction_call(cl, &c, &req, &out, NULL) == 0 && out.status == 201)
            p->acked[i] = 1;
        tb_arena_reset(a);
    }
    wallet_client_free(cl);
    tb_arena_free(a);
    p->done = 1;
    return NULL;
}

START_TEST(sigkill_mid_stream_keeps_every_acknowledged_transaction_once)
{
    th_service s = {.name = "wallet"};
    th_start(&s, NULL);
    wallet_client *cl = wallet_client_new(s.direct, NULL, NULL);
    char user[37];
    wallet_create_wallet_req wr = {.body = {.user_id = new_uuid(user), .currency = "CHP"}};
    wallet_create_wallet_resp wo;
    ck_assert_int_eq(wallet_create_wallet_call(cl, &ctx, &wr, &wo, NULL), 0);
    poster p = {.s = &s, .wallet = wo.s201.id};
    pthread_t t;
    pthread_create(&t, NULL, post_loop, &p);
    int acked_before = 0;
    while (acked_before < RESTART_N / 3 && !p.done) {
        usleep(2000);
        acked_before = 0;
        for (int i = 0; i < RESTART_N; i++)
            acked_before += p.acked[i];
    }
    th_kill(&s); /* mid-stream */
    pthread_join(t, NULL);
    th_start(&s, NULL); /* same folder, same port */
    /* retry everything with the same keys: acknowledged ones must replay, not apply twice */
    int64_t want = 0;
    for (int i = 0; i < RESTART_N; i++) {
        char key[32];
        snprintf(key, sizeof key, "restart-%d", i);
        wallet_create_transaction_req req = {
            .wallet_id = wo.s201.id, .has_idempotency_key = true, .idempotency_key = key,
            .body = {.type = WALLET_TRANSACTION_TYPE_CREDIT, .amount = i + 1},
        };
        wallet_create_transaction_resp out;
        ck_assert_int_eq(wallet_create_transaction_call(cl, &ctx, &req, &out, NULL), 0);
        ck_assert_int_eq(out.status, 201);
        if (p.acked[i])
            ck_assert_msg(out.headers.idempotent_replayed != NULL,
                          "acknowledged transaction %d was lost", i);
        want += i + 1;
    }
    wallet_get_wallet_req g = {.wallet_id = wo.s201.id};
    wallet_get_wallet_resp gw;
    ck_assert_int_eq(wallet_get_wallet_call(cl, &ctx, &g, &gw, NULL), 0);
    ck_assert_int_eq(gw.s200.balance, want);
    /* every transaction exactly once */
    int seen = 0;
    wallet_list_transactions_req lr = {.wallet_id = wo.s201.id, .has_limit = true, .limit = 100};
    for (;;) {
        wallet_list_transactions_resp lo;
        ck_assert_int_eq(wallet_list_transactions_call(cl, &ctx, &lr, &lo, NULL), 0);
        seen += (int)lo.s200.n_items;
        if (lo.s200.next_cursor_is_null)
            break;
        lr.has_cursor = true;
        lr.cursor = lo.s200.next_cursor;
    }
    ck_assert_int_eq(seen, RESTART_N);
    fprintf(stderr, "restart: %d acknowledged before SIGKILL, %d after retry, balance %lld\n",
            acked_before, seen, (long long)gw.s200.balance);
    wallet_client_free(cl);
    ck_assert_int_eq(th_stop(&s), 0);
    th_cleanup(&s);
}
END_TEST

START_TEST(sigterm_stops_gracefully_with_exit_0)
{
    th_service s = {.name = "wallet"};
    th_start(&s, NULL);
    ck_assert_int_eq(th_stop(&s), 0);
    th_cleanup(&s);
}
END_TEST

/* Security from the spec (issue 13): every operation but /health needs a service token with
 * its scope. Straight to the service: Prism would answer a missing token itself. */
START_TEST(operations_need_a_valid_token_with_their_scope)
{
    char u[256];
    snprintf(u, sizeof u, "%s/users/6f1c2a9e-4b3d-4c8e-9a7f-0d2e5b8c1a34/wallets", svc.direct);
    th_resp r;
    const char *none[] = {"Authorization:", NULL};
    th_http(&r, "GET", u, NULL, NULL, none);
    th_assert_error(&r, 401, "unauthorized", NULL, NULL);
    char ch[512];
    ck_assert(th_header(&r, "WWW-Authenticate", ch, sizeof ch));
    ck_assert_str_eq(ch, "Bearer realm=\"wallet\"");
    th_resp_free(&r);

    struct {
        char *token;
        long status;
        const char *code;
    } cases[] = {
        {th_token("svc", "wallet.read", 300, NULL), 200, NULL},
        {th_token("svc", "wallet.write", 300, NULL), 403, "insufficient_scope"},
        {th_token("svc", "wallet.read", -3600, NULL), 401, "token_expired"},
        {th_token("svc", "wallet.read", 300, "another-secret-another-secret-12"), 401,
         "bad_signature"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char h[2048];
        snprintf(h, sizeof h, "Authorization: Bearer %s", cases[i].token);
        const char *hs[] = {h, NULL};
        th_http(&r, "GET", u, NULL, NULL, hs);
        if (cases[i].code) {
            th_assert_error(&r, cases[i].status, cases[i].code, NULL, NULL);
            ck_assert(th_header(&r, "WWW-Authenticate", ch, sizeof ch));
            ck_assert_ptr_nonnull(strstr(ch, cases[i].status == 403 ? "insufficient_scope"
                                                                     : "invalid_token"));
        } else {
            ck_assert_msg(r.status == 200, "status %ld: %s", r.status, r.body);
        }
        th_resp_free(&r);
        free(cases[i].token);
    }
    /* /health stays open */
    snprintf(u, sizeof u, "%s/health", svc.direct);
    th_http(&r, "GET", u, NULL, NULL, none);
    ck_assert_int_eq(r.status, 200);
    th_resp_free(&r);
}
END_TEST

/* Regression (issue 12, item 7): one client trickling a body made SIGTERM exit 1 after the
 * grace period. The stop cuts it at the deadline and exits 0. */
START_TEST(sigterm_with_a_body_still_trickling_exits_0)
{
    th_service s = {.name = "wallet", .prism_port = -1};
    const char *env[] = {"TB_SHUTDOWN_GRACE_MS=1000", NULL};
    th_start(&s, env);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s.port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    /* with an Authorization header (any): without one the head alone is answered, 401 */
    static const char head[] = "POST /wallets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer x\r\n"
                               "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{";
    ck_assert_int_eq(send(fd, head, sizeof head - 1, MSG_NOSIGNAL), (ssize_t)(sizeof head - 1));
    struct timespec nap = {0, 300 * 1000 * 1000};
    nanosleep(&nap, NULL);
    kill(s.pid, SIGTERM);
    /* keep trickling through the grace period and past it */
    int status = -1;
    bool exited = false;
    for (int i = 0; i < 40 && !exited; i++) {
        send(fd, " ", 1, MSG_NOSIGNAL);
        exited = th_wait_exit(&s, 100, &status);
    }
    close(fd);
    ck_assert_msg(exited, "wallet_service did not exit within 4 s of SIGTERM");
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit status %d", status);
    th_cleanup(&s);
}
END_TEST

/* A secured operation's request without an Authorization header is answered 401 as its head
 * arrives: the body is never read nor buffered (it was: up to TB_MAX_BODY from anyone, and a
 * client waiting on Expect: 100-continue got its 100 and sent it all before the 401). */
START_TEST(no_credentials_is_a_401_before_the_body)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)svc.port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    static const char head[] =
        "POST /wallets/6f1c2a9e-4b3d-4c8e-9a7f-0d2e5b8c1a34/transactions HTTP/1.1\r\n"
        "Host: x\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n"
        "Expect: 100-continue\r\n\r\n";
    ck_assert_int_eq(send(fd, head, sizeof head - 1, MSG_NOSIGNAL), (ssize_t)(sizeof head - 1));
    char got[4096];
    size_t n = 0;
    for (int i = 0; i < 30 && n < sizeof got - 1; i++) { /* 3 s at most; no body is sent */
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t k = recv(fd, got + n, sizeof got - 1 - n, 0);
        if (k <= 0)
            break;
        n += (size_t)k;
        got[n] = '\0';
        if (strstr(got, "\r\n\r\n") && strstr(got, "\"error\""))
            break;
    }
    got[n] = '\0';
    close(fd);
    ck_assert_msg(strncmp(got, "HTTP/1.1 401", 12) == 0, "no 401 before the body: %s", got);
    ck_assert_msg(!strstr(got, "100 Continue"), "the body was asked for: %s", got);
    ck_assert_msg(strstr(got, "WWW-Authenticate: Bearer"), "%s", got);
}
END_TEST

/* ---- event sourcing: balances are a projection of the events, rebuilt on start ---- */

static int64_t balance_of(wallet_client *c, const char *wallet_id)
{
    wallet_get_wallet_req g = {.wallet_id = (char *)wallet_id};
    wallet_get_wallet_resp out;
    ck_assert_int_eq(wallet_get_wallet_call(c, &ctx, &g, &out, NULL), 0);
    ck_assert_int_eq(out.status, 200);
    return out.s200.balance;
}

static void tx_on(wallet_client *c, const char *wallet_id, wallet_transaction_type type,
                  int64_t amount)
{
    wallet_create_transaction_req t = {.wallet_id = (char *)wallet_id,
                                       .body = {.type = type, .amount = amount}};
    wallet_create_transaction_resp out;
    ck_assert_int_eq(wallet_create_transaction_call(c, &ctx, &t, &out, NULL), 0);
    ck_assert_int_eq(out.status, 201);
}

static int sql_int(sqlite3 *db, const char *sql, const char *arg)
{
    sqlite3_stmt *st;
    ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (arg)
        sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    int n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return n;
}

START_TEST(balances_are_rebuilt_from_the_events_on_start)
{
    th_service s = {.name = "wallet", .prism_port = -1}; /* restarted: not a contract check */
    th_start(&s, NULL);
    wallet_client *c = wallet_client_new(s.url, NULL, NULL);
    char user[37];
    wallet_create_wallet_req req = {.body = {.user_id = new_uuid(user), .currency = "EUR"}};
    wallet_create_wallet_resp w;
    ck_assert_int_eq(wallet_create_wallet_call(c, &ctx, &req, &w, NULL), 0);
    ck_assert_int_eq(w.status, 201);
    const char *id = w.s201.id;
    tx_on(c, id, WALLET_TRANSACTION_TYPE_CREDIT, 100);
    tx_on(c, id, WALLET_TRANSACTION_TYPE_DEBIT, 30);
    ck_assert_int_eq((int)balance_of(c, id), 70);
    ck_assert_int_eq(th_stop(&s), 0);
    /* the stream holds the events; damage the projection while the service is down */
    char path[300], stream[64];
    snprintf(path, sizeof path, "%s/wallet.db", s.dir);
    snprintf(stream, sizeof stream, "wallet-%s", id);
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_int_eq(sql_int(db, "SELECT COUNT(*) FROM tb_events WHERE stream = ?", stream), 3);
    ck_assert_int_eq(sql_int(db, "SELECT MAX(version) FROM tb_events WHERE stream = ?", stream),
                     3);
    ck_assert_int_eq(sql_int(db, "SELECT COUNT(*) FROM tb_events WHERE stream = ? AND type = "
                                 "'wallet.created'",
                             stream),
                     1);
    ck_assert_int_eq(sqlite3_exec(db, "UPDATE wallets SET balance = 999999", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    th_start(&s, NULL); /* same folder, same port */
    ck_assert_int_eq((int)balance_of(c, id), 70);
    tx_on(c, id, WALLET_TRANSACTION_TYPE_CREDIT, 5);
    ck_assert_int_eq((int)balance_of(c, id), 75);
    wallet_client_free(c);
    ck_assert_int_eq(th_stop(&s), 0);
    th_cleanup(&s);
}
END_TEST

/* ---- wallet events reach RabbitMQ (outbox) and Redis ---- */

typedef struct got_events {
    pthread_mutex_t mu;
    int created, tx, balance;
    int64_t last_after, last_balance;
    char user[37]; /* the wallet owner the test creates: set before anything is published */
} got_events;

static int on_wallet_created(tb_ctx *c, const tb_event *ev, const wallet_created_v1 *d, void *u)
{
    (void)c;
    (void)ev;
    got_events *g = u;
    pthread_mutex_lock(&g->mu);
    if (strcmp(d->user_id, g->user) == 0)
        g->created++;
    pthread_mutex_unlock(&g->mu);
    return TB_EVENT_ACK;
}

static int on_wallet_tx(tb_ctx *c, const tb_event *ev, const wallet_transaction_created_v1 *d,
                        void *u)
{
    (void)c;
    (void)ev;
    got_events *g = u;
    pthread_mutex_lock(&g->mu);
    if (strcmp(d->user_id, g->user) == 0) {
        g->tx++;
        g->last_after = d->balance_after;
    }
    pthread_mutex_unlock(&g->mu);
    return TB_EVENT_ACK;
}

static int on_balance(tb_ctx *c, const tb_event *ev, const wallet_balance_updated_v1 *d, void *u)
{
    (void)c;
    (void)ev;
    got_events *g = u;
    pthread_mutex_lock(&g->mu);
    if (strcmp(d->user_id, g->user) == 0) {
        g->balance++;
        g->last_balance = d->balance;
    }
    pthread_mutex_unlock(&g->mu);
    return TB_EVENT_ACK;
}

START_TEST(wallet_changes_are_published_as_events)
{
    const char *amqp = getenv("TB_TEST_AMQP_URL"), *redis = getenv("TB_TEST_REDIS_URL");
    ck_assert_msg(amqp && redis, "TB_TEST_AMQP_URL/TB_TEST_REDIS_URL are not set: run under "
                                 "scripts/with-brokers.sh");
    char data[256], svcname[64], id[33];
    th_tmpdir(data, sizeof data);
    setenv("TB_DATA_DIR", data, 1);
    tb_request_id_new(id);
    snprintf(svcname, sizeof svcname, "wallet-watcher-%.8s", id);
    got_events g = {.mu = PTHREAD_MUTEX_INITIALIZER};
    tb_error err = TB_ERROR_INIT;
    tb_bus_opts bo = {.service = svcname, .amqp_url = amqp, .redis_url = redis};
    tb_bus *bus = tb_bus_new(&bo, &err);
    ck_assert_ptr_nonnull(bus);
    ck_assert_int_eq(wallet_created_v1_subscribe(bus, on_wallet_created, &g, &err), 0);
    ck_assert_int_eq(wallet_transaction_created_v1_subscribe(bus, on_wallet_tx, &g, &err), 0);
    ck_assert_int_eq(wallet_balance_updated_v1_subscribe(bus, on_balance, &g, &err), 0);
    ck_assert_msg(tb_bus_start(bus, &err) == 0, "%s", err.message);

    th_service ws = {.name = "wallet"};
    static char amqp_env[300], redis_env[300];
    snprintf(amqp_env, sizeof amqp_env, "TB_AMQP_URL=%s", amqp);
    snprintf(redis_env, sizeof redis_env, "TB_REDIS_URL=%s", redis);
    const char *env[] = {amqp_env, redis_env, NULL};
    th_start(&ws, env);
    tb_client_opts copts = th_client_opts();
    wallet_client *c2 = wallet_client_new(ws.url, &copts, NULL);
    pthread_mutex_lock(&g.mu);
    new_uuid(g.user);
    pthread_mutex_unlock(&g.mu);
    wallet_create_wallet_req req = {.body = {.user_id = g.user, .currency = "GBP"}};
    wallet_create_wallet_resp out;
    ck_assert_int_eq(wallet_create_wallet_call(c2, &ctx, &req, &out, NULL), 0);
    ck_assert_int_eq(out.status, 201);
    for (int i = 1; i <= 3; i++) {
        wallet_create_transaction_req t = {.wallet_id = out.s201.id,
                                           .body = {.type = WALLET_TRANSACTION_TYPE_CREDIT,
                                                    .amount = 10 * i}};
        wallet_create_transaction_resp to;
        ck_assert_int_eq(wallet_create_transaction_call(c2, &ctx, &t, &to, NULL), 0);
        ck_assert_int_eq(to.status, 201);
    }
    bool done = false;
    for (int t = 0; t < 500 && !done; t++) {
        pthread_mutex_lock(&g.mu);
        done = g.created == 1 && g.tx == 3 && g.balance == 3;
        pthread_mutex_unlock(&g.mu);
        if (!done)
            usleep(20000);
    }
    ck_assert_msg(done, "created %d, transactions %d, balance updates %d", g.created, g.tx,
                  g.balance);
    ck_assert_int_eq((int)g.last_after, 60);
    ck_assert_int_eq((int)g.last_balance, 60);
    wallet_client_free(c2);
    ck_assert_int_eq(th_stop(&ws), 0);
    th_cleanup(&ws);
    tb_bus_free(bus);
    tb_error_deinit(&err);
}
END_TEST

static void setup(void)
{
    th_start(&svc, SVC_ENV);
    arena = tb_arena_new(0);
    tb_ctx_init(&ctx, arena, NULL);
    tb_client_opts copts = th_client_opts();
    wc = wallet_client_new(svc.url, &copts, NULL);
    ck_assert_ptr_nonnull(wc);
}

static void teardown(void)
{
    wallet_client_free(wc);
    tb_arena_free(arena);
    th_stop_in_teardown(&svc, "wallet_service");
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    tb_global_init();
    Suite *s = suite_create("contract-wallet");
    TCase *tc = tcase_create("wallet");
    tcase_set_timeout(tc, 120);
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_add_test(tc, health_answers_ok_through_the_client);
    tcase_add_test(tc, health_live_is_200_and_ready_checks_the_database_without_brokers);
    tcase_add_test(tc, ready_is_200_with_database_rabbitmq_and_redis_up);
    tcase_add_test(tc, ready_is_503_naming_rabbitmq_while_the_broker_is_unreachable_and_live_stays_200);
    tcase_add_test(tc, operations_need_a_valid_token_with_their_scope);
    tcase_add_test(tc, balances_are_rebuilt_from_the_events_on_start);
    tcase_add_test(tc, wallet_changes_are_published_as_events);
    tcase_add_test(tc, create_wallet_returns_201_location_and_zero_balance);
    tcase_add_test(tc, get_wallet_and_unknown_wallet_404);
    tcase_add_test(tc, user_wallets_lists_all_filters_by_currency_and_is_empty_for_strangers);
    tcase_add_test(tc, credit_debit_and_never_below_zero);
    tcase_add_test(tc, empty_reference_is_sent_and_kept);
    tcase_add_test(tc, idempotency_key_replays_the_first_result_and_refuses_a_different_request);
    tcase_add_test(tc, idempotency_key_replays_a_refusal);
    tcase_add_test(tc, no_credentials_is_a_401_before_the_body);
    tcase_add_test(tc, transactions_page_newest_first_with_cursor_and_type_filter);
    tcase_add_test(tc, request_id_is_propagated_by_the_client);
    tcase_add_test(tc, client_reports_transport_failure_apart_from_answers);
    tcase_add_test(tc, every_example_matches_its_schema);
    tcase_add_test(tc, every_request_body_example_is_accepted_by_the_service);
    if (!th_via_prism()) /* Prism answers malformed JSON itself */
        tcase_add_test(tc, malformed_json_is_400_with_position);
    tcase_add_test(tc, schema_violations_are_400_naming_each_path_and_rule);
    tcase_add_test(tc, bad_parameters_are_400_naming_the_parameter);
    tcase_add_test(tc, nul_in_a_reference_is_400_naming_body_reference);
    tcase_add_test(tc, idempotency_key_is_not_replayed_for_a_request_that_differs_after_a_nul);
    tcase_add_test(tc, integer_amount_with_a_fraction_is_400_even_when_it_rounds_to_a_whole_double);
    tcase_add_test(tc, many_unknown_keys_get_100_details_and_a_count_the_spec_allows);
    tcase_add_test(tc, a_body_of_110000_unknown_keys_gets_100_details_and_the_count_of_the_rest);
    tcase_add_test(tc, wrong_content_type_is_415);
    tcase_add_test(tc, missing_body_is_400);
    tcase_add_test(tc, body_over_the_limit_is_413);
    tcase_add_test(tc, unknown_path_is_404_and_wrong_method_is_405_with_allow);
    tcase_add_test(tc, x_request_id_is_echoed_or_generated);
    tcase_add_test(tc, concurrent_transactions_on_one_wallet_all_apply_and_balance_adds_up);
    if (!th_via_prism()) {
        tcase_add_test(tc, sigkill_mid_stream_keeps_every_acknowledged_transaction_once);
        tcase_add_test(tc, sigterm_stops_gracefully_with_exit_0);
        tcase_add_test(tc, sigterm_with_a_body_still_trickling_exits_0);
    }
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed || th_teardown_failures() ? 1 : 0;
}
