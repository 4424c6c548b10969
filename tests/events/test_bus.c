/*
 * The event bus against real brokers: typed publish/subscribe over RabbitMQ and Redis, the
 * envelope, validation on both ends, versions side by side, retries and the DLQ with replay,
 * ordering by key, idempotent consumers, the outbox, and broker restarts.
 *
 * Needs TB_TEST_AMQP_URL, TB_TEST_REDIS_URL, TB_TEST_RABBITMQ_DIR and TB_TEST_REDIS_DIR
 * (scripts/with-brokers.sh sets them). Each test uses its own exchange and service names.
 */
#include "events/events.h"
#include "tb_amqp.h"
#include "tb_redis.h"
#include "tablium/evstore.h"
#include "tablium/ids.h"
#include "tablium/metrics.h"
#include "tablium/store.h"

#include <arpa/inet.h>
#include <check.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define UID1 "7c9e6679-7425-40de-944b-e07fc1f90ae7"
#define TS "2026-11-24T10:00:00Z"

static const char *need(const char *name)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0') {
        fprintf(stderr, "test_bus: %s is not set; run under scripts/with-brokers.sh\n", name);
        ck_abort_msg("%s is not set", name);
    }
    return v;
}

static void uniq(char *out, size_t cap, const char *prefix)
{
    char id[33];
    tb_request_id_new(id);
    snprintf(out, cap, "%s-%.10s", prefix, id);
}

static void sleep_ms(int ms) { usleep((useconds_t)ms * 1000); }

/* Waits until *v >= want (5 s per 1000 wanted, at least 10 s). */
static bool wait_count(atomic_int *v, int want)
{
    int limit_ms = want * 5 > 10000 ? want * 5 : 10000;
    for (int t = 0; t < limit_ms; t += 10) {
        if (atomic_load(v) >= want)
            return true;
        sleep_ms(10);
    }
    return atomic_load(v) >= want;
}

/* Polls the bus's counters until `cond` holds (5 s at most): counters move after the handler
 * returned, when the batch has committed. */
#define WAIT_STATS(bus, st, cond)                                                           \
    do {                                                                                    \
        for (int t_ = 0; t_ < 500; t_++) {                                                  \
            tb_bus_stats_get((bus), &(st));                                                 \
            if (cond)                                                                       \
                break;                                                                      \
            sleep_ms(10);                                                                   \
        }                                                                                   \
    } while (0)

static char DATA_DIR[256];

static void data_dir(void)
{
    snprintf(DATA_DIR, sizeof DATA_DIR, "/tmp/tb-bus-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(DATA_DIR));
    setenv("TB_DATA_DIR", DATA_DIR, 1);
}

static tb_bus *new_bus(const char *service, const char *exchange, tb_bus_opts *extra)
{
    tb_bus_opts o = extra ? *extra : (tb_bus_opts){0};
    o.service = service;
    o.exchange = exchange;
    o.amqp_url = need("TB_TEST_AMQP_URL");
    o.redis_url = need("TB_TEST_REDIS_URL");
    if (o.retry_base_ms == 0)
        o.retry_base_ms = 50;
    tb_error err = TB_ERROR_INIT;
    tb_bus *b = tb_bus_new(&o, &err);
    ck_assert_msg(b != NULL, "tb_bus_new: %s", err.message);
    tb_error_deinit(&err);
    return b;
}

static void start(tb_bus *b)
{
    tb_error err = TB_ERROR_INIT;
    int rc = tb_bus_start(b, &err);
    ck_assert_msg(rc == 0, "tb_bus_start: %s", err.message);
    tb_error_deinit(&err);
}

static user_registered_v1 registered(const char *id, const char *name)
{
    return (user_registered_v1){.user_id = (char *)id, .email = "ada@example.com",
                                .username = (char *)name, .registered_at = TS};
}

/* ---------------------------------------------------------------- typed round trip ---- */

typedef struct seen {
    atomic_int n;
    pthread_mutex_t mu;
    char id[64], type[64], version[16], producer[64], corr[130], traceparent[64], username[64];
    char display[64];
    bool has_display;
    int attempt;
} seen;

static int on_registered_v1(tb_ctx *ctx, const tb_event *ev, const user_registered_v1 *d,
                            void *user)
{
    seen *s = user;
    pthread_mutex_lock(&s->mu);
    snprintf(s->id, sizeof s->id, "%s", ev->id);
    snprintf(s->type, sizeof s->type, "%s", ev->type);
    snprintf(s->version, sizeof s->version, "%s", ev->version);
    snprintf(s->producer, sizeof s->producer, "%s", ev->producer);
    snprintf(s->corr, sizeof s->corr, "%s", ctx->request_id ? ctx->request_id : "");
    snprintf(s->traceparent, sizeof s->traceparent, "%s", ev->traceparent ? ev->traceparent : "");
    snprintf(s->username, sizeof s->username, "%s", d->username);
    s->has_display = d->has_display_name;
    if (d->has_display_name)
        snprintf(s->display, sizeof s->display, "%s", d->display_name);
    s->attempt = ev->attempt;
    pthread_mutex_unlock(&s->mu);
    atomic_fetch_add(&s->n, 1);
    return TB_EVENT_ACK;
}

/* A started bus for `svc` whose handler of user.registered 1.0 records into s. */
static tb_bus *registered_consumer(const char *svc, const char *ex, seen *s)
{
    tb_error err = TB_ERROR_INIT;
    tb_bus *b = new_bus(svc, ex, NULL);
    ck_assert_int_eq(user_registered_v1_subscribe(b, on_registered_v1, s, &err), 0);
    start(b);
    tb_error_deinit(&err);
    return b;
}

static void round_trip(tb_event_transport tr)
{
    char ex[64], svc[64];
    uniq(ex, sizeof ex, "ex");
    uniq(svc, sizeof svc, "consumer");
    data_dir();
    seen s = {.mu = PTHREAD_MUTEX_INITIALIZER};
    tb_bus *cons = new_bus(svc, ex, NULL);
    tb_error err = TB_ERROR_INIT;
    if (tr == TB_TRANSPORT_RABBITMQ)
        ck_assert_int_eq(user_registered_v1_subscribe(cons, on_registered_v1, &s, &err), 0);
    start(cons);
    tb_bus_opts po = {.producer = "auth-service"};
    tb_bus *prod = new_bus("producer", ex, &po);

    tb_arena *a = tb_arena_new(0);
    tb_ctx ctx;
    tb_ctx_init(&ctx, a, "req-42");
    ctx.traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    user_registered_v1 d = registered(UID1, "ada_l");
    d.has_display_name = true;
    d.display_name = "Ada";
    ck_assert_int_eq(user_registered_v1_publish(prod, &ctx, &d, &err), 0);
    ck_assert(wait_count(&s.n, 1));
    ck_assert_str_eq(s.type, "user.registered");
    ck_assert_str_eq(s.version, "1.0");
    ck_assert_str_eq(s.producer, "auth-service");
    ck_assert_str_eq(s.corr, "req-42");
    ck_assert_str_eq(s.username, "ada_l");
    ck_assert(s.has_display);
    ck_assert_str_eq(s.display, "Ada");
    ck_assert_int_eq(s.attempt, 1);
    ck_assert_int_eq((int)strlen(s.id), 36);
    /* the consumer's trace continues the producer's: same trace id, a new span */
    char trace[33], span[17];
    ck_assert(tb_traceparent_parse(s.traceparent, trace, span));
    ck_assert_str_eq(trace, "0af7651916cd43dd8448eb211c80319c");
    ck_assert_str_ne(span, "b7ad6b7169203331");
    tb_bus_stats st;
    WAIT_STATS(cons, st, st.handled == 1);
    ck_assert_int_eq((int)st.handled, 1);
    tb_bus_free(prod);
    tb_bus_free(cons);
    tb_arena_free(a);
    tb_error_deinit(&err);
}

START_TEST(rabbitmq_typed_round_trip_carries_the_envelope)
{
    round_trip(TB_TRANSPORT_RABBITMQ);
}
END_TEST

/* game.move.made travels on Redis (declared in its schema) */
typedef struct moves {
    atomic_int n;
    atomic_int bad_order;
    int64_t last[8];
    pthread_mutex_t mu;
} moves;

static int on_move(tb_ctx *ctx, const tb_event *ev, const game_move_made_v1 *d, void *user)
{
    (void)ctx;
    moves *m = user;
    int g = d->game_id[35] - '0';
    pthread_mutex_lock(&m->mu);
    if (g >= 0 && g < 8) {
        if (d->move_number <= m->last[g])
            atomic_fetch_add(&m->bad_order, 1);
        m->last[g] = d->move_number;
    }
    pthread_mutex_unlock(&m->mu);
    ck_assert_str_eq(ev->type, "game.move.made");
    atomic_fetch_add(&m->n, 1);
    return TB_EVENT_ACK;
}

static game_move_made_v1 a_move(char *game_id, int64_t n)
{
    game_move_made_v1 mv = {.game_id = game_id, .player_id = UID1, .move_number = n,
                            .made_at = TS};
    mv.move.notation = "e2e4";
    return mv;
}

static void redis_in_order(bool parallel)
{
    char ex[64], svc[64];
    uniq(ex, sizeof ex, "ex");
    uniq(svc, sizeof svc, "moves");
    data_dir();
    moves m = {.mu = PTHREAD_MUTEX_INITIALIZER};
    tb_bus_opts bo = {.light_parallel = parallel, .workers = 4};
    tb_bus *cons = new_bus(svc, ex, &bo);
    tb_error err = TB_ERROR_INIT;
    ck_assert_int_eq(game_move_made_v1_subscribe(cons, on_move, &m, &err), 0);
    start(cons);
    tb_bus *prod = new_bus("game-engine", ex, NULL);
    char games[8][37];
    for (int g = 0; g < 8; g++)
        snprintf(games[g], sizeof games[g], "7c9e6679-7425-40de-944b-e07fc1f90ae%d", g);
    const int per_game = 500;
    for (int i = 1; i <= per_game; i++)
        for (int g = 0; g < 8; g++) {
            game_move_made_v1 mv = a_move(games[g], i);
            ck_assert_int_eq(game_move_made_v1_publish_async(prod, NULL, &mv, NULL, NULL, &err),
                             0);
        }
    tb_bus_flush(prod, 5000);
    ck_assert_msg(wait_count(&m.n, 8 * per_game), "%d of %d arrived", atomic_load(&m.n),
                  8 * per_game);
    ck_assert_int_eq(atomic_load(&m.bad_order), 0);
    tb_bus_free(prod);
    tb_bus_free(cons);
    tb_error_deinit(&err);
}

START_TEST(redis_typed_events_arrive_in_order)
{
    redis_in_order(false); /* on the subscriber's thread */
}
END_TEST

START_TEST(redis_typed_events_spread_over_workers_keep_order_per_key)
{
    redis_in_order(true);
}
END_TEST

/* The bus refills a handled envelope's tree in place with the next one of the same shape; a
 * handler that keeps a part of an envelope (json_incref) must find it unchanged later. */
typedef struct kept_env {
    atomic_int n;
    pthread_mutex_t mu;
    json_t *held[400];
    char want[400][64];
    int n_held;
    atomic_int wrong; /* typed data that disagreed with its own envelope */
} kept_env;

static void keep_some(kept_env *k, const tb_event *ev, const char *member, const char *typed)
{
    const char *in_env = json_string_value(json_object_get(ev->data, member));
    if (in_env == NULL || strcmp(in_env, typed) != 0)
        atomic_fetch_add(&k->wrong, 1);
    pthread_mutex_lock(&k->mu);
    if (atomic_load(&k->n) % 3 == 0 && k->n_held < 400) {
        /* every third: the data object itself, or its envelope */
        k->held[k->n_held] = json_incref((json_t *)(k->n_held % 2 ? ev->data : ev->envelope));
        snprintf(k->want[k->n_held], sizeof k->want[0], "%s", typed);
        k->n_held++;
    }
    pthread_mutex_unlock(&k->mu);
    atomic_fetch_add(&k->n, 1);
}

static int on_move_keep(tb_ctx *ctx, const tb_event *ev, const game_move_made_v1 *d, void *user)
{
    (void)ctx;
    keep_some(user, ev, "gameId", d->game_id);
    return TB_EVENT_ACK;
}

static int on_registered_keep(tb_ctx *ctx, const tb_event *ev, const user_registered_v1 *d,
                              void *user)
{
    (void)ctx;
    keep_some(user, ev, "username", d->username);
    return TB_EVENT_ACK;
}

static void check_kept(kept_env *k, const char *member)
{
    ck_assert_int_gt(k->n_held, 10);
    ck_assert_int_eq(atomic_load(&k->wrong), 0);
    for (int i = 0; i < k->n_held; i++) {
        json_t *data = json_object_get(k->held[i], "data");
        if (data == NULL) /* a held data object */
            data = k->held[i];
        const char *v = json_string_value(json_object_get(data, member));
        ck_assert_msg(v && strcmp(v, k->want[i]) == 0, "kept %d: %s is %s, was %s", i, member,
                      v ? v : "(gone)", k->want[i]);
        json_decref(k->held[i]);
    }
}

START_TEST(a_handler_keeping_an_envelope_finds_it_unchanged)
{
    char ex[64], svc[64];
    uniq(ex, sizeof ex, "ex");
    data_dir();
    tb_error err = TB_ERROR_INIT;
    enum { n = 300 };

    /* Redis: on the subscriber's thread */
    uniq(svc, sizeof svc, "keep-light");
    kept_env kl = {.mu = PTHREAD_MUTEX_INITIALIZER};
    tb_bus *cons = new_bus(svc, ex, NULL);
    ck_assert_int_eq(game_move_made_v1_subscribe(cons, on_move_keep, &kl, &err), 0);
    start(cons);
    tb_bus *prod = new_bus("game-engine", ex, NULL);
    char games[n][37];
    for (int i = 0; i < n; i++) {
        snprintf(games[i], sizeof games[i], "7c9e6679-7425-40de-944b-%012d", i);
        game_move_made_v1 mv = a_move(games[i], i + 1);
        ck_assert_int_eq(game_move_made_v1_publish_async(prod, NULL, &mv, NULL, NULL, &err), 0);
    }
    tb_bus_flush(prod, 5000);
    ck_assert(wait_count(&kl.n, n));
    tb_bus_free(prod);
    tb_bus_free(cons);
    check_kept(&kl, "gameId");

    /* RabbitMQ: on the workers, in batches */
    uniq(svc, sizeof svc, "keep-durable");
    kept_env kd = {.mu = PTHREAD_MUTEX_INITIALIZER};
    tb_bus_opts bo = {.workers = 2};
    cons = new_bus(svc, ex, &bo);
    ck_assert_int_eq(user_registered_v1_subscribe(cons, on_registered_keep, &kd, &err), 0);
    start(cons);
    prod = new_bus("auth", ex, NULL);
    char names[n][32], ids[n][37];
    for (int i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], "user_%d", i);
        snprintf(ids[i], sizeof ids[i], "0b6f3b7e-93a1-4f1e-9a55-%012d", i % 7);
        user_registered_v1 d = registered(ids[i], names[i]);
        ck_assert_int_eq(user_registered_v1_publish_async(prod, NULL, &d, NULL, NULL, &err), 0);
    }
    ck_assert_int_eq(tb_bus_flush(prod, 10000), 0);
    ck_assert(wait_count(&kd.n, n));
    tb_bus_free(prod);
    tb_bus_free(cons);
    check_kept(&kd, "username");
    tb_error_deinit(&err);
}
END_TEST

START_TEST(invalid_data_is_refused_on_publish_with_every_error)
{
    char ex[64];
    uniq(ex, sizeof ex, "ex");
    tb_bus *prod = new_bus("auth", ex, NULL);
    tb_error err = TB_ERROR_INIT;
    user_registered_v1 d = registered("not-a-uuid", "x"); /* bad id, username too short */
    d.email = "not an email";
    ck_assert_int_eq(user_registered_v1_publish(prod, NULL, &d, &err), TB_EVALIDATION);
    bool id = false, email = false, name = false;
    for (size_t i = 0; i < err.n_details; i++) {
        id = id || strcmp(err.details[i].path, "/userId") == 0;
        email = email || (strcmp(err.details[i].path, "/email") == 0 &&
                          strcmp(err.details[i].rule, "format") == 0);
        name = name || (strcmp(err.details[i].path, "/username") == 0 &&
                        strcmp(err.details[i].rule, "minLength") == 0);
    }
    ck_assert_msg(id && email && name, "details: %zu (%s)", err.n_details, err.message);
    tb_bus_stats st;
    tb_bus_stats_get(prod, &st);
    ck_assert_int_eq((int)st.published, 0);
    /* Redis events are checked the same way */
    game_move_made_v1 mv = a_move("nope", 0);
    ck_assert_int_eq(game_move_made_v1_publish(prod, NULL, &mv, &err), TB_EVALIDATION);
    tb_bus_free(prod);
    /* a transport that is not configured is a clear error at once, for either kind */
    tb_bus *bare = tb_bus_new(&(tb_bus_opts){.service = "nowhere", .amqp_url = "", .redis_url = ""},
                              &err);
    ck_assert_ptr_nonnull(bare);
    game_move_made_v1 ok = a_move(UID1, 1);
    ck_assert_int_eq(game_move_made_v1_publish(bare, NULL, &ok, &err), TB_ESTATE);
    ck_assert_msg(strstr(err.message, "TB_REDIS_URL") != NULL, "%s", err.message);
    user_registered_v1 d2 = registered(UID1, "ada_l");
    ck_assert_int_eq(user_registered_v1_publish(bare, NULL, &d2, &err), TB_ESTATE);
    ck_assert_msg(strstr(err.message, "TB_AMQP_URL") != NULL, "%s", err.message);
    tb_bus_free(bare);
    tb_error_deinit(&err);
}
END_TEST

/* ---------------------------------------------------------------- versions ---- */

static int on_registered_v2(tb_ctx *ctx, const tb_event *ev, const user_registered_v2 *d,
                            void *user)
{
    (void)ctx;
    (void)ev;
    seen *s = user;
    ck_assert_str_eq(d->locale, "en-GB");
    atomic_fetch_add(&s->n, 1);
    return TB_EVENT_ACK;
}

START_TEST(versions_coexist_and_consumers_read_what_they_declare)
{
    char ex[64], svc1[64], svc2[64];
    uniq(ex, sizeof ex, "ex");
    uniq(svc1, sizeof svc1, "v1-only");
    uniq(svc2, sizeof svc2, "both");
    data_dir();
    seen only1 = {.mu = PTHREAD_MUTEX_INITIALIZER}, both1 = {.mu = PTHREAD_MUTEX_INITIALIZER},
         both2 = {.mu = PTHREAD_MUTEX_INITIALIZER};
    tb_error err = TB_ERROR_INIT;
    tb_bus *c1 = new_bus(svc1, ex, NULL);
    ck_assert_int_eq(user_registered_v1_subscribe(c1, on_registered_v1, &only1, &err), 0);
    start(c1);
    tb_bus *c2 = new_bus(svc2, ex, NULL);
    ck_assert_int_eq(user_registered_v1_subscribe(c2, on_registered_v1, &both1, &err), 0);
    ck_assert_int_eq(user_registered_v2_subscribe(c2, on_registered_v2, &both2, &err), 0);
    start(c2);
    tb_bus *prod = new_bus("auth", ex, NULL);
    user_registered_v1 d1 = registered(UID1, "ada_l");
    user_registered_v2 d2 = {.user_id = UID1, .email = "ada@example.com", .username = "ada_l",
                             .display_name = "Ada", .locale = "en-GB",
                             .marketing_opt_in = false, .registered_at = TS};
    ck_assert_int_eq(user_registered_v2_publish(prod, NULL, &d2, &err), 0);
    ck_assert_int_eq(user_registered_v1_publish(prod, NULL, &d1, &err), 0);
    ck_assert(wait_count(&only1.n, 1));
    ck_assert(wait_count(&both1.n, 1));
    ck_assert(wait_count(&both2.n, 1));
    tb_bus_stats st;
    for (int t = 0; t < 500; t++) { /* the v2 one reaches c1 too: acked and skipped */
        tb_bus_stats_get(c1, &st);
        if (st.skipped == 1)
            break;
        sleep_ms(10);
    }
    ck_assert_int_eq((int)st.skipped, 1);
    ck_assert_int_eq(atomic_load(&only1.n), 1);
    tb_bus_free(prod);
    tb_bus_free(c1);
    tb_bus_free(c2);
    tb_error_deinit(&err);
}
END_TEST

/* ---------------------------------------------------------------- bad input on consume ---- */

typedef struct deads {
    pthread_mutex_t mu;
    char reasons[8][1024];
    int n;
} deads;

static void collect_dead(void *user, const tb_amqp_dead *d)
{
    deads *x = user;
    pthread_mutex_lock(&x->mu);
    if (x->n < 8)
        snprintf(x->reasons[x->n++], sizeof x->reasons[0], "%s", d->reason ? d->reason : "");
    pthread_mutex_unlock(&x->mu);
}

static long dlq_depth(const char *queue)
{
    tb_amqp_opts o = {.url = need("TB_TEST_AMQP_URL")};
    char q[128];
    snprintf(q, sizeof q, "%s.dlq", queue);
    tb_error err = TB_ERROR_INIT;
    long n = tb_amqp_queue_depth(&o, q, &err);
    tb_error_deinit(&err);
    return n;
}

static bool wait_dlq(const char *queue, long want)
{
    for (int t = 0; t < 1000; t++) {
        if (dlq_depth(queue) >= want)
            return true;
        sleep_ms(20);
    }
    return false;
}

/* `tablium-dlq list SVC --exchange EX [more]`'s output into out (it must exit 0). */
static void dlq_list(const char *svc, const char *ex, const char *more, char *out, size_t cap)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "TB_AMQP_URL='%s' %s/tablium-dlq list %s --exchange %s %s",
             need("TB_TEST_AMQP_URL"), TB_BUILD_DIR, svc, ex, more);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t got = fread(out, 1, cap - 1, p);
    out[got] = '\0';
    ck_assert_int_eq(pclose(p), 0);
}

static void raw_publish(tb_amqp_pub *p, const char *key, const char *body)
{
    char id[37];
    tb_uuid_new(id);
    bool bare = key[0] == '!'; /* "!key": a producer that sets no message_id */
    key += bare;
    tb_amqp_props props = {.message_id = bare ? NULL : id, .type = key};
    ck_assert_int_eq(tb_amqp_publish(p, NULL, key, &props, body, strlen(body), NULL, NULL), 0);
}

START_TEST(foreign_and_garbage_messages_go_to_the_dlq_never_to_a_handler)
{
    char ex[64], svc[64];
    uniq(ex, sizeof ex, "ex");
    uniq(svc, sizeof svc, "strict");
    data_dir();
    seen s = {.mu = PTHREAD_MUTEX_INITIALIZER};
    tb_error err = TB_ERROR_INIT;
    tb_bus *cons = registered_consumer(svc, ex, &s);
    tb_amqp_opts o = {.url = need("TB_TEST_AMQP_URL"), .exchange = ex};
    tb_amqp_pub *p = tb_amqp_pub_new(&o, &err);
    ck_assert_ptr_nonnull(p);
    raw_publish(p, "user.registered", "\x01\x02 not json at all \xff");
    raw_publish(p, "user.registered", "{\"id\": 5}");
    raw_publish(p, "user.registered",
                "{\"id\":\"" UID1 "\",\"type\":\"user.registered\",\"version\":\"1.0\","
                "\"timestamp\":\"" TS "\",\"producer\":\"rogue\",\"data\":{\"userId\":\"" UID1
                "\",\"email\":\"nope\",\"username\":\"ada_l\",\"registeredAt\":\"" TS "\"},"
                "\"metadata\":{\"correlationId\":\"c1\"}}");
    /* a valid envelope of a type this service does not read, under a key it binds (it was
     * acked and counted as skipped, so lost without a word) */
    raw_publish(p, "!user.registered",
                "{\"id\":\"1b4e28ba-2fa1-41d2-883f-0016d3cca499\","
                "\"type\":\"shop.order.placed\",\"version\":\"1.0\","
                "\"timestamp\":\"" TS "\",\"producer\":\"rogue\",\"data\":{},"
                "\"metadata\":{\"correlationId\":\"c2\"}}");
    ck_assert_int_eq(tb_amqp_pub_flush(p, 10000), 0);
    ck_assert(wait_dlq(svc, 4));
    deads x = {.mu = PTHREAD_MUTEX_INITIALIZER};
    tb_amqp_opts co = {.url = need("TB_TEST_AMQP_URL"), .exchange = ex};
    ck_assert_int_eq(tb_amqp_dlq_list(&co, svc, collect_dead, &x, &err), 4);
    /* in any order: different keys are handled in parallel */
    bool garbage = false, envelope = false, data = false, type = false;
    for (int i = 0; i < 4; i++) {
        type = type || strstr(x.reasons[i],
                              "invalid envelope: /type \"shop.order.placed\" is not an event "
                              "type") != NULL;
        garbage = garbage || strstr(x.reasons[i], "malformed JSON") != NULL;
        envelope = envelope || (strstr(x.reasons[i], "invalid envelope") != NULL &&
                                strstr(x.reasons[i], "/id (type)") != NULL);
        data = data || (strstr(x.reasons[i], "/data/email") != NULL &&
                        strstr(x.reasons[i], "(format)") != NULL);
    }
    ck_assert_msg(garbage && envelope && data && type, "reasons: [%s] [%s] [%s] [%s]",
                  x.reasons[0], x.reasons[1], x.reasons[2], x.reasons[3]);
    ck_assert_int_eq(atomic_load(&s.n), 0);
    /* tablium-dlq list --json: a line for each, the body that is not UTF-8 as base64 (it was
     * left out, the others printed) */
    char out[8192];
    dlq_list(svc, ex, "--json", out, sizeof out);
    int lines = 0;
    for (const char *c = out; (c = strchr(c, '\n')) != NULL; c++)
        lines++;
    ck_assert_msg(lines == 4, "tablium-dlq list --json printed: %s", out);
    ck_assert_msg(strstr(out, "\"bodyBase64\":\"AQIgbm90IGpzb24gYXQgYWxsIP8=\""),
                  "tablium-dlq list --json printed: %s", out);
    /* without a message_id, the envelope's id names the dead letter (it was null: no replay
     * by id could pick it) */
    ck_assert_msg(strstr(out, "\"id\":\"1b4e28ba-2fa1-41d2-883f-0016d3cca499\""),
                  "tablium-dlq list --json printed: %s", out);
    tb_bus_stats st;
    WAIT_STATS(cons, st, st.invalid == 4);
    ck_assert_int_eq((int)st.invalid, 4);
    ck_assert_int_eq((int)st.dead, 4);
    ck_assert_int_eq((int)st.skipped, 0);
    /* /metrics: the dead letters are counted, and the poller (TB_EVENTS_LAG_POLL_MS, 200 ms
     * here) sees them waiting in <service>.dlq */
    char want[300], dead[300];
    snprintf(want, sizeof want,
             "tablium_events_consumer_lag_messages{service=\"%s\",transport=\"rabbitmq\","
             "queue=\"%s.dlq\"} 4\n", svc, svc);
    snprintf(dead, sizeof dead, "tablium_events_dead_lettered_total{service=\"%s\",", svc);
    bool lag_seen = false;
    tb_buf m = TB_BUF_INIT;
    for (int i = 0; i < 100 && !lag_seen; i++) {
        tb_buf_reset(&m);
        ck_assert_int_eq(tb_metrics_render(&m), 0);
        lag_seen = strstr(m.data, want) != NULL;
        if (!lag_seen)
            usleep(50 * 1000);
    }
    ck_assert_msg(lag_seen, "no %s in\n%s", want, m.data);
    /* all four dead letters counted, over their event_type labels (user.registered when the
     * envelope named a type this service reads, else _invalid) */
    double n_dead = 0;
    for (const char *at = m.data; (at = strstr(at, dead)) != NULL; at++)
        n_dead += strtod(strchr(at, '}') + 2, NULL);
    ck_assert_msg(n_dead == 4, "%g dead letters in\n%s", n_dead, m.data);
    tb_buf_deinit(&m);
    tb_amqp_pub_free(p);
    tb_bus_free(cons);
    tb_error_deinit(&err);
}
END_TEST

START_TEST(garbage_on_a_redis_channel_is_dropped_with_a_log_line)
{
    char ex[64], svc[64], chan[128];
    uniq(ex, sizeof ex, "ex");
    uniq(svc, sizeof svc, "moves");
    data_dir();
    moves m = {.mu = PTHREAD_MUTEX_INITIALIZER};
    tb_error err = TB_ERROR_INIT;
    tb_bus *cons = new_bus(svc, ex, NULL);
    ck_assert_int_eq(game_move_made_v1_subscribe(cons, on_move, &m, &err), 0);
    start(cons);
    tb_redis_opts ro = {.url = need("TB_TEST_REDIS_URL")};
    tb_redis_pub *rp = tb_redis_pub_new(&ro, &err);
    ck_assert_ptr_nonnull(rp);
    snprintf(chan, sizeof chan, "%s:game.move.made", ex);
    ck_assert_int_eq(tb_redis_publish(rp, chan, "\0\1garbage", 9), 0);
    ck_assert_int_eq(tb_redis_publish(rp, chan, "{\"type\":\"game.move.made\"}", 25), 0);
    ck_assert_int_eq(tb_redis_pub_flush(rp), 0);
    /* a valid one after them still arrives */
    tb_bus *prod = new_bus("game-engine", ex, NULL);
    game_move_made_v1 mv = a_move(UID1, 1);
    ck_assert_int_eq(game_move_made_v1_publish(prod, NULL, &mv, &err), 0);
    ck_assert(wait_count(&m.n, 1));
    tb_bus_stats st;
    WAIT_STATS(cons, st, st.invalid == 2);
    ck_assert_int_eq((int)st.invalid, 2);
    ck_assert_int_eq((int)st.dead, 2); /* dropped: there is no DLQ on Redis */
    ck_assert_int_eq(atomic_load(&m.n), 1);
    tb_redis_pub_free(rp);
    tb_bus_free(prod);
    tb_bus_free(cons);
    tb_error_deinit(&err);
}
END_TEST

/* ---------------------------------------------------------------- spans at the end ---- */

/* The requests one connection to a minimal OTLP/HTTP receiver carries, bodies appended to got:
 * answered 200 {} each, until the peer closes. */
typedef struct otlp_sink {
    int lfd;
    char got[1 << 16];
    size_t len;
    int posts;
} otlp_sink;

static void *otlp_sink_main(void *arg)
{
    otlp_sink *k = arg;
    struct pollfd pf = {.fd = k->lfd, .events = POLLIN};
    if (poll(&pf, 1, 20000) != 1) /* none came: the test says so */
        return NULL;
    int fd = accept(k->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    char buf[1 << 16];
    size_t have = 0;
    for (;;) {
        char *end = have ? memmem(buf, have, "\r\n\r\n", 4) : NULL;
        if (end) {
            const char *cl = memmem(buf, (size_t)(end - buf), "Content-Length:", 15);
            if (cl == NULL)
                cl = memmem(buf, (size_t)(end - buf), "content-length:", 15);
            size_t n = cl ? strtoul(cl + 15, NULL, 10) : 0, head = (size_t)(end - buf) + 4;
            if (head + n > sizeof buf)
                break;
            if (have >= head + n) {
                size_t room = sizeof k->got - 1 - k->len;
                memcpy(k->got + k->len, buf + head, n < room ? n : room);
                k->len += n < room ? n : room;
                k->posts++;
                static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                         "Content-Length: 2\r\n\r\n{}";
                if (write(fd, ok, sizeof ok - 1) != (ssize_t)(sizeof ok - 1))
                    break;
                memmove(buf, buf + head + n, have - head - n);
                have -= head + n;
                continue;
            }
        }
        ssize_t r = read(fd, buf + have, sizeof buf - have);
        if (r <= 0)
            break;
        have += (size_t)r;
    }
    close(fd);
    return NULL;
}

START_TEST(a_publisher_without_a_server_exports_its_spans_when_the_bus_is_freed)
{
    char ex[64];
    uniq(ex, sizeof ex, "ex");
    data_dir();
    otlp_sink *k = calloc(1, sizeof *k);
    ck_assert_ptr_nonnull(k);
    k->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    ck_assert_int_eq(bind(k->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(listen(k->lfd, 4), 0);
    ck_assert_int_eq(getsockname(k->lfd, (struct sockaddr *)&sa, &sl), 0);
    pid_t pid = fork(); /* the exporter reads OTEL_* once per process: a new program */
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char url[64];
        snprintf(url, sizeof url, "http://127.0.0.1:%d", ntohs(sa.sin_port));
        setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url, 1);
        setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", 1);
        setenv("OTEL_BSP_SCHEDULE_DELAY", "600000", 1); /* only a flush sends */
        execl("/proc/self/exe", "events_test_bus", "publish-and-free", ex, (char *)NULL);
        _exit(4);
    }
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, otlp_sink_main, k), 0);
    int st = 0;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "publisher: status %d", st);
    pthread_join(th, NULL);
    close(k->lfd);
    k->got[k->len] = '\0';
    ck_assert_msg(k->posts >= 1 && strstr(k->got, "\"send game.move.made\"") != NULL,
                  "%d requests: %s", k->posts, k->got);
    free(k);
}
END_TEST

/* ---------------------------------------------------------------- retries, DLQ, replay ---- */

typedef struct flaky {
    atomic_int calls;
    atomic_int healed; /* once set, the handler acks */
    atomic_int acked;
    int attempts[16];
    bool use_error_code;
} flaky;

static int on_flaky(tb_ctx *ctx, const tb_event *ev, const user_registered_v1 *d, void *user)
{
    (void)ctx;
    (void)d;
    flaky *f = user;
    int c = atomic_fetch_add(&f->calls, 1);
    if (c < 16)
        f->attempts[c] = ev->attempt;
    if (atomic_load(&f->healed)) {
        atomic_fetch_add(&f->acked, 1);
        return TB_EVENT_ACK;
    }
    if (f->use_error_code)
        return TB_EIO; /* an error counts as a retry */
    tb_event_set_reason(ev, "profile store is read-only");
    return TB_EVENT_RETRY;
}

static bool pick_all(void *user, const tb_amqp_dead *d)
{
    (void)user;
    (void)d;
    return true;
}

static void poison(bool use_error_code)
{
    char ex[64], svc[64];
    uniq(ex, sizeof ex, "ex");
    uniq(svc, sizeof svc, "flaky");
    data_dir();
    flaky f = {.use_error_code = use_error_code};
    tb_error err = TB_ERROR_INIT;
    tb_bus_opts bo = {.max_attempts = 3, .retry_base_ms = 100};
    tb_bus *cons = new_bus(svc, ex, &bo);
    ck_assert_int_eq(user_registered_v1_subscribe(cons, on_flaky, &f, &err), 0);
    start(cons);
    tb_bus *prod = new_bus("auth", ex, NULL);
    user_registered_v1 d = registered(UID1, "ada_l");
    ck_assert_int_eq(user_registered_v1_publish(prod, NULL, &d, &err), 0);
    ck_assert(wait_dlq(svc, 1));
    ck_assert_int_eq(atomic_load(&f.calls), 3);
    ck_assert_int_eq(f.attempts[0], 1);
    ck_assert_int_eq(f.attempts[1], 2);
    ck_assert_int_eq(f.attempts[2], 3);
    deads x = {.mu = PTHREAD_MUTEX_INITIALIZER};
    tb_amqp_opts co = {.url = need("TB_TEST_AMQP_URL"), .exchange = ex};
    ck_assert_int_eq(tb_amqp_dlq_list(&co, svc, collect_dead, &x, &err), 1);
    ck_assert_msg(strstr(x.reasons[0], "gave up after 3 attempts") != NULL, "%s", x.reasons[0]);
    ck_assert_msg(strstr(x.reasons[0], use_error_code ? "input/output error"
                                                      : "profile store is read-only") != NULL,
                  "%s", x.reasons[0]);
    /* fixed: replay it from the DLQ, and it is handled (attempt 1 again) */
    atomic_store(&f.healed, 1);
    if (use_error_code) {
        ck_assert_int_eq(tb_amqp_dlq_replay(&co, svc, pick_all, NULL, &err), 1);
    } else { /* through the command-line tool, by event id */
        char cmd[1024], out[4096];
        dlq_list(svc, ex, "", out, sizeof out);
        ck_assert_msg(strstr(out, "user.registered") && strstr(out, "attempt 3") &&
                          strstr(out, "profile store is read-only"),
                      "tablium-dlq list printed: %s", out);
        char id[37];
        ck_assert_int_eq(sscanf(out, "%*s %36s", id), 1);
        snprintf(cmd, sizeof cmd,
                 "TB_AMQP_URL='%s' %s/tablium-dlq replay %s --exchange %s %s >/dev/null",
                 need("TB_TEST_AMQP_URL"), TB_BUILD_DIR, svc, ex, id);
        ck_assert_int_eq(system(cmd), 0);
        /* an id that is not there: exit status 3, and nothing else moves */
        snprintf(cmd, sizeof cmd,
                 "TB_AMQP_URL='%s' %s/tablium-dlq replay %s %s 2>/dev/null >/dev/null",
                 need("TB_TEST_AMQP_URL"), TB_BUILD_DIR, svc, UID1);
        int st = system(cmd);
        ck_assert_int_eq(WEXITSTATUS(st), 3);
    }
    ck_assert(wait_count(&f.acked, 1));
    ck_assert_int_eq(f.attempts[3], 1);
    ck_assert_int_eq(dlq_depth(svc), 0);
    tb_bus_stats st;
    WAIT_STATS(cons, st, st.retried == 2 && st.handled == 1);
    ck_assert_int_eq((int)st.retried, 2);
    ck_assert_int_eq((int)st.handled, 1);
    tb_bus_free(prod);
    tb_bus_free(cons);
    tb_error_deinit(&err);
}

START_TEST(a_poison_message_reaches_the_dlq_after_max_attempts_and_replays)
{
    poison(false);
}
END_TEST

START_TEST(a_handler_error_counts_as_a_retry)
{
    poison(true);
}
END_TEST

static int on_dead(tb_ctx *ctx, const tb_event *ev, const user_registered_v1 *d, void *user)
{
    (void)ctx;
    (void)d;
    atomic_fetch_add((atomic_int *)user, 1);
    tb_event_set_reason(ev, "user %s is banned", d->user_id);
    return TB_EVENT_DEAD;
}

START_TEST(max_attempts_holds_without_a_dlq_and_dead_goes_at_once)
{
    char ex[64], svc[64], svc2[64];
    uniq(ex, sizeof ex, "ex");
    uniq(svc, sizeof svc, "nodlq");
    uniq(svc2, sizeof svc2, "dead");
    data_dir();
    flaky f = {0};
    atomic_int dead_calls = 0;
    tb_error err = TB_ERROR_INIT;
    tb_bus_opts bo = {.max_attempts = 2, .retry_base_ms = 50, .no_dlq = true};
    tb_bus *c1 = new_bus(svc, ex, &bo);
    ck_assert_int_eq(user_registered_v1_subscribe(c1, on_flaky, &f, &err), 0);
    start(c1);
    tb_bus *c2 = new_bus(svc2, ex, NULL);
    ck_assert_int_eq(user_registered_v1_subscribe(c2, on_dead, &dead_calls, &err), 0);
    start(c2);
    tb_bus *prod = new_bus("auth", ex, NULL);
    user_registered_v1 d = registered(UID1, "ada_l");
    ck_assert_int_eq(user_registered_v1_publish(prod, NULL, &d, &err), 0);
    ck_assert(wait_dlq(svc2, 1));
    ck_assert_int_eq(atomic_load(&dead_calls), 1); /* no retry for DEAD */
    tb_bus_stats st;
    for (int t = 0; t < 500; t++) {
        tb_bus_stats_get(c1, &st);
        if (st.dead == 1)
            break;
        sleep_ms(10);
    }
    ck_assert_int_eq((int)st.dead, 1);
    sleep_ms(300); /* and nothing more comes */
    ck_assert_int_eq(atomic_load(&f.calls), 2);
    tb_bus_free(prod);
    tb_bus_free(c1);
    tb_bus_free(c2);
    tb_error_deinit(&err);
}
END_TEST

/* ---------------------------------------------------------------- ordering, dedupe ---- */

typedef struct ordered {
    pthread_mutex_t mu;
    int64_t last[10];
    int bad;
    atomic_int n;
    pthread_t threads[16];
    int n_threads;
} ordered;

static int on_ordered_tx(tb_ctx *ctx, const tb_event *ev, const wallet_transaction_created_v1 *d,
                         void *user)
{
    (void)ctx;
    (void)ev;
    ordered *o = user;
    int k = d->wallet_id[35] - '0';
    usleep(50); /* some work, so that parallel keys overlap */
    pthread_mutex_lock(&o->mu);
    if (d->balance_after != o->last[k] + 1)
        o->bad++;
    o->last[k] = d->balance_after;
    bool known = false;
    for (int i = 0; i < o->n_threads; i++)
        known = known || pthread_equal(o->threads[i], pthread_self());
    if (!known && o->n_threads < 16)
        o->threads[o->n_threads++] = pthread_self();
    pthread_mutex_unlock(&o->mu);
    atomic_fetch_add(&o->n, 1);
    return TB_EVENT_ACK;
}

static wallet_transaction_created_v1 a_tx(char *tx_id, char *wallet_id, int64_t seq)
{
    return (wallet_transaction_created_v1){
        .transaction_id = tx_id, .wallet_id = wallet_id, .user_id = UID1,
        .type = WALLET_TRANSACTION_CREATED_V1_TYPE_CREDIT, .amount = 1, .currency = "EUR",
        .balance_after = seq, .created_at = TS};
}

START_TEST(same_key_in_order_different_keys_in_parallel)
{
    char ex[64], svc[64];
    uniq(ex, sizeof ex, "ex");
    uniq(svc, sizeof svc, "ordered");
    data_dir();
    ordered o = {.mu = PTHREAD_MUTEX_INITIALIZER};
    tb_error err = TB_ERROR_INIT;
    tb_bus_opts bo = {.workers = 4};
    tb_bus *cons = new_bus(svc, ex, &bo);
    ck_assert_int_eq(wallet_transaction_created_v1_subscribe(cons, on_ordered_tx, &o, &err), 0);
    start(cons);
    tb_bus *prod = new_bus("wallet", ex, NULL);
    char wallets[10][37], tx[37];
    for (int k = 0; k < 10; k++)
        snprintf(wallets[k], sizeof wallets[k], "0b6f3b7e-93a1-4f1e-9a55-3e0a4c1f2b1%d", k);
    const int per_key = 200;
    for (int i = 1; i <= per_key; i++)
        for (int k = 0; k < 10; k++) {
            tb_uuid_new(tx);
            wallet_transaction_created_v1 t = a_tx(tx, wallets[k], i);
            ck_assert_int_eq(
                wallet_transaction_created_v1_publish_async(prod, NULL, &t, NULL, NULL, &err), 0);
        }
    ck_assert_int_eq(tb_bus_flush(prod, 30000), 0);
    ck_assert_msg(wait_count(&o.n, 10 * per_key), "%d handled", atomic_load(&o.n));
    ck_assert_int_eq(o.bad, 0);
    for (int k = 0; k < 10; k++)
        ck_assert_int_eq((int)o.last[k], per_key);
    ck_assert_msg(o.n_threads >= 2, "all keys on %d thread(s)", o.n_threads);
    tb_bus_free(prod);
    tb_bus_free(cons);
    tb_error_deinit(&err);
}
END_TEST

/* One CPU is left to the consumer's I/O thread: CPUs - 1 workers, at least 1; the option and
 * TB_EVENTS_WORKERS say otherwise (and the option wins). */
START_TEST(the_default_worker_count_leaves_a_cpu_to_the_io_thread)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned want = cpus > 2 ? (unsigned)cpus - 1 : 1;
    tb_error err = TB_ERROR_INIT;
    tb_bus_stats st;
    unsetenv("TB_EVENTS_WORKERS");
    tb_bus *b = tb_bus_new(&(tb_bus_opts){.service = "workers-default", .amqp_url = "",
                                          .redis_url = ""},
                           &err);
    ck_assert_ptr_nonnull(b);
    tb_bus_stats_get(b, &st);
    ck_assert_uint_eq(st.workers, want);
    tb_bus_free(b);

    setenv("TB_EVENTS_WORKERS", "3", 1);
    b = tb_bus_new(&(tb_bus_opts){.service = "workers-env", .amqp_url = "", .redis_url = ""},
                   &err);
    tb_bus_stats_get(b, &st);
    ck_assert_uint_eq(st.workers, 3);
    tb_bus_free(b);
    b = tb_bus_new(&(tb_bus_opts){.service = "workers-opt", .amqp_url = "", .redis_url = "",
                                  .workers = 5},
                   &err);
    tb_bus_stats_get(b, &st);
    ck_assert_uint_eq(st.workers, 5);
    tb_bus_free(b);
    unsetenv("TB_EVENTS_WORKERS");
}
END_TEST

/* A loopback port nothing listens on (bound, then closed). */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t sl = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    close(fd);
    return ntohs(sa.sin_port);
}

/* Polls tb_bus_ready (5 s at most) until its answer is rc with `part` in why. */
static bool ready_says(tb_bus *b, int rc, const char *part, char *why, size_t cap)
{
    for (int t = 0; t < 500; t++) {
        why[0] = '\0';
        if (tb_bus_ready(b, why, cap) == rc && (!part || strstr(why, part)))
            return true;
        sleep_ms(10);
    }
    return false;
}

static void count_done(void *user, int rc)
{
    (void)rc;
    atomic_fetch_add((atomic_int *)user, 1);
}

START_TEST(bus_ready_reports_each_connection_it_holds_and_why_one_is_down)
{
    char why[1024];
    ck_assert_int_eq(tb_bus_ready(NULL, why, sizeof why), TB_EINVAL);
    data_dir();
    /* brokers that are not there: ready while the bus holds no connection, then not */
    char amqp[128], redis[64];
    snprintf(amqp, sizeof amqp, "amqp://guest:guest@127.0.0.1:%d/", closed_port());
    snprintf(redis, sizeof redis, "redis://127.0.0.1:%d", closed_port());
    tb_error err = TB_ERROR_INIT;
    tb_bus *gone = tb_bus_new(&(tb_bus_opts){.service = "ready-gone", .amqp_url = amqp,
                                             .redis_url = redis, .publish_timeout_ms = 300},
                              &err);
    ck_assert_ptr_nonnull(gone);
    ck_assert_int_eq(tb_bus_ready(gone, why, sizeof why), 0);
    game_move_made_v1 mv = a_move(UID1, 1);
    ck_assert_int_eq(game_move_made_v1_publish(gone, NULL, &mv, &err), TB_ECONN);
    ck_assert_msg(ready_says(gone, TB_ECONN, "redis: publisher cannot connect for ", why,
                             sizeof why),
                  "why: %s", why);
    ck_assert_ptr_null(strstr(why, "rabbitmq"));
    atomic_int done = 0;
    user_registered_v1 d = registered(UID1, "ada_r");
    ck_assert_int_eq(user_registered_v1_publish_async(gone, NULL, &d, count_done, &done, &err), 0);
    ck_assert_msg(ready_says(gone, TB_ECONN, "rabbitmq: publisher cannot connect for ", why,
                             sizeof why),
                  "why: %s", why);
    ck_assert_msg(strstr(why, "; redis: publisher cannot connect for "), "why: %s", why);
    tb_bus_free(gone);
    ck_assert_int_eq(atomic_load(&done), 1);

    /* the brokers of the run: a started consumer and a producer that used both are ready */
    char ex[64], svc[64];
    uniq(ex, sizeof ex, "ex");
    uniq(svc, sizeof svc, "ready");
    seen s = {.mu = PTHREAD_MUTEX_INITIALIZER};
    tb_bus *cons = registered_consumer(svc, ex, &s);
    ck_assert_msg(tb_bus_ready(cons, why, sizeof why) == 0, "why: %s", why);
    tb_bus *prod = new_bus("producer", ex, NULL);
    ck_assert_int_eq(user_registered_v1_publish(prod, NULL, &d, &err), 0);
    ck_assert_int_eq(game_move_made_v1_publish(prod, NULL, &mv, &err), 0);
    ck_assert_msg(tb_bus_ready(prod, why, sizeof why) == 0, "why: %s", why);
    ck_assert(wait_count(&s.n, 1));
    tb_bus_free(prod);
    tb_bus_free(cons);
    tb_error_deinit(&err);
}
END_TEST

START_TEST(a_redelivered_event_is_handled_once)
{
    char ex[64], svc[64];
    uniq(ex, sizeof ex, "ex");
    uniq(svc, sizeof svc, "dedupe");
    data_dir();
    seen s = {.mu = PTHREAD_MUTEX_INITIALIZER};
    tb_error err = TB_ERROR_INIT;
    tb_bus *cons = registered_consumer(svc, ex, &s);
    /* the same envelope (same event id) three times, as a redelivery would bring it */
    tb_amqp_opts o = {.url = need("TB_TEST_AMQP_URL"), .exchange = ex};
    tb_amqp_pub *p = tb_amqp_pub_new(&o, &err);
    const char *env =
        "{\"id\":\"" UID1 "\",\"type\":\"user.registered\",\"version\":\"1.0\","
        "\"timestamp\":\"" TS "\",\"producer\":\"auth-service\",\"data\":{\"userId\":\"" UID1
        "\",\"email\":\"ada@example.com\",\"username\":\"ada_l\",\"registeredAt\":\"" TS "\"},"
        "\"metadata\":{\"correlationId\":\"c1\"}}";
    for (int i = 0; i < 3; i++)
        raw_publish(p, "user.registered", env);
    ck_assert_int_eq(tb_amqp_pub_flush(p, 10000), 0);
    tb_bus_stats st;
    for (int t = 0; t < 1000; t++) {
        tb_bus_stats_get(cons, &st);
        if (st.duplicates == 2)
            break;
        sleep_ms(10);
    }
    ck_assert_int_eq((int)st.duplicates, 2);
    ck_assert_int_eq(atomic_load(&s.n), 1);
    ck_assert_str_eq(s.id, UID1);
    tb_amqp_pub_free(p);
    tb_bus_free(cons);
    tb_error_deinit(&err);
}
END_TEST

#define UID2 "1b4e28ba-2fa1-41d2-883f-0016d3cca427"
#define UID3 "9a2f1c3e-5b7d-4e8f-a1b2-c3d4e5f60718"

static const char *registered_env(char *out, size_t cap, const char *event_id, const char *user_id)
{
    snprintf(out, cap,
             "{\"id\":\"%s\",\"type\":\"user.registered\",\"version\":\"1.0\","
             "\"timestamp\":\"" TS "\",\"producer\":\"auth-service\",\"data\":{\"userId\":\"%s\","
             "\"email\":\"ada@example.com\",\"username\":\"ada_l\",\"registeredAt\":\"" TS "\"},"
             "\"metadata\":{\"correlationId\":\"c1\"}}",
             event_id, user_id);
    return out;
}

static void keyed_publish(tb_amqp_pub *p, const char *key, const char *body)
{
    char id[37];
    tb_uuid_new(id);
    tb_amqp_props props = {.message_id = id, .type = "user.registered", .key = key};
    ck_assert_int_eq(
        tb_amqp_publish(p, NULL, "user.registered", &props, body, strlen(body), NULL, NULL), 0);
}

/* Deliveries with the ordering key in header x-tablium-key are queued by it and parsed by their
 * worker; a header that names another key than the data's would put the event out of order,
 * so it goes to the DLQ. Without the header (foreign producers, the outbox relay) the consumer
 * parses on its I/O thread and the event is handled as usual. */
START_TEST(a_key_header_that_is_not_the_events_key_goes_to_the_dlq)
{
    char ex[64], svc[64], body[1024];
    uniq(ex, sizeof ex, "ex");
    uniq(svc, sizeof svc, "keyhdr");
    data_dir();
    seen s = {.mu = PTHREAD_MUTEX_INITIALIZER};
    tb_error err = TB_ERROR_INIT;
    tb_bus *cons = registered_consumer(svc, ex, &s);
    tb_amqp_opts o = {.url = need("TB_TEST_AMQP_URL"), .exchange = ex};
    tb_amqp_pub *p = tb_amqp_pub_new(&o, &err);
    ck_assert_ptr_nonnull(p);
    keyed_publish(p, UID3, registered_env(body, sizeof body, UID1, UID2)); /* lies */
    keyed_publish(p, UID2, registered_env(body, sizeof body, UID2, UID2)); /* right */
    keyed_publish(p, UID2, "{\"id\": not json"); /* garbage, parsed by the worker */
    raw_publish(p, "user.registered", registered_env(body, sizeof body, UID3, UID1)); /* none */
    ck_assert_int_eq(tb_amqp_pub_flush(p, 10000), 0);
    ck_assert(wait_dlq(svc, 2));
    tb_bus_stats st;
    WAIT_STATS(cons, st, st.handled == 2);
    ck_assert_int_eq((int)st.handled, 2);
    ck_assert_int_eq(atomic_load(&s.n), 2);
    deads x = {.mu = PTHREAD_MUTEX_INITIALIZER};
    tb_amqp_opts co = {.url = need("TB_TEST_AMQP_URL"), .exchange = ex};
    ck_assert_int_eq(tb_amqp_dlq_list(&co, svc, collect_dead, &x, &err), 2);
    bool mismatch = false, garbage = false;
    for (int i = 0; i < 2; i++) {
        mismatch = mismatch || (strstr(x.reasons[i], "x-tablium-key") != NULL &&
                                strstr(x.reasons[i], UID3) != NULL &&
                                strstr(x.reasons[i], "data.userId") != NULL);
        garbage = garbage || strstr(x.reasons[i], "malformed JSON") != NULL;
    }
    ck_assert_msg(mismatch && garbage, "reasons: [%s] [%s]", x.reasons[0], x.reasons[1]);
    ck_assert_int_eq((int)st.invalid, 2);
    tb_amqp_pub_free(p);
    tb_bus_free(cons);
    tb_error_deinit(&err);
}
END_TEST

/* Publishes event UID1 (already handled by cons) and then UID3 (new), both keyed UID2: the
 * first must be acked as a duplicate without the handler, the second handled. */
static void expect_known_then_new(tb_bus *cons, tb_amqp_pub *p, seen *s)
{
    char body[1024];
    tb_bus_stats before, st;
    tb_bus_stats_get(cons, &before);
    keyed_publish(p, UID2, registered_env(body, sizeof body, UID1, UID2)); /* the same event */
    keyed_publish(p, UID2, registered_env(body, sizeof body, UID3, UID2)); /* a new one */
    ck_assert_int_eq(tb_amqp_pub_flush(p, 10000), 0);
    WAIT_STATS(cons, st, st.handled + st.duplicates == before.handled + before.duplicates + 2);
    ck_assert_int_eq((int)(st.duplicates - before.duplicates), 1);
    ck_assert_int_eq((int)(st.handled - before.handled), 1);
    pthread_mutex_lock(&s->mu);
    ck_assert_str_eq(s->id, UID3);
    pthread_mutex_unlock(&s->mu);
}

/* The bus's own dedupe record (a log file under TB_DATA_DIR) outlives the bus: a consumer
 * started again skips an event it handled before. */
START_TEST(a_restarted_consumer_remembers_what_it_handled)
{
    char ex[64], svc[64], body[1024], path[512];
    uniq(ex, sizeof ex, "ex");
    uniq(svc, sizeof svc, "remember");
    data_dir();
    tb_error err = TB_ERROR_INIT;
    tb_amqp_opts o = {.url = need("TB_TEST_AMQP_URL"), .exchange = ex};
    tb_amqp_pub *p = tb_amqp_pub_new(&o, &err);
    ck_assert_ptr_nonnull(p);
    seen s = {.mu = PTHREAD_MUTEX_INITIALIZER};
    tb_bus *cons = registered_consumer(svc, ex, &s);
    keyed_publish(p, UID2, registered_env(body, sizeof body, UID1, UID2));
    ck_assert_int_eq(tb_amqp_pub_flush(p, 10000), 0);
    tb_bus_stats st;
    WAIT_STATS(cons, st, st.handled == 1);
    ck_assert_int_eq((int)st.handled, 1);
    tb_bus_free(cons);
    snprintf(path, sizeof path, "%s/%s-events.dedupe", DATA_DIR, svc);
    ck_assert_int_eq(access(path, F_OK), 0);

    cons = registered_consumer(svc, ex, &s);
    expect_known_then_new(cons, p, &s);
    ck_assert_int_eq(atomic_load(&s.n), 2);
    tb_amqp_pub_free(p);
    tb_bus_free(cons);
    tb_error_deinit(&err);
}
END_TEST

/* Ids recorded by an earlier version in the SQLite file <service>-events.db are carried over
 * into the new log once, so an upgrade does not handle those events again. */
START_TEST(dedupe_records_of_the_old_sqlite_file_are_carried_over)
{
    char ex[64], svc[64], path[512];
    uniq(ex, sizeof ex, "ex");
    uniq(svc, sizeof svc, "upgrade");
    data_dir();
    tb_error err = TB_ERROR_INIT;
    snprintf(path, sizeof path, "%s/%s-events.db", DATA_DIR, svc);
    sqlite3 *old = tb_store_open(path, NULL, &err);
    ck_assert_ptr_nonnull(old);
    ck_assert_int_eq(tb_dedupe_init(old, &err), 0);
    ck_assert_int_eq(tb_dedupe_mark(old, svc, UID1, 100, &err), 0);
    tb_store_close(old);

    seen s = {.mu = PTHREAD_MUTEX_INITIALIZER};
    tb_bus *cons = registered_consumer(svc, ex, &s);
    tb_amqp_opts o = {.url = need("TB_TEST_AMQP_URL"), .exchange = ex};
    tb_amqp_pub *p = tb_amqp_pub_new(&o, &err);
    ck_assert_ptr_nonnull(p);
    expect_known_then_new(cons, p, &s);
    ck_assert_int_eq(atomic_load(&s.n), 1);
    tb_amqp_pub_free(p);
    tb_bus_free(cons);
    snprintf(path, sizeof path, "%s/%s-events.dedupe", DATA_DIR, svc);
    ck_assert_int_eq(access(path, F_OK), 0);
    tb_error_deinit(&err);
}
END_TEST

/* ---------------------------------------------------------------- outbox ---- */

/* A raw consumer's record of the x-tablium-key headers it saw. */
typedef struct keys_seen {
    pthread_mutex_t mu;
    tb_amqp_consumer *c;
    int n;
    char key[4][64];
} keys_seen;

static void on_raw(void *user, tb_amqp_delivery *d)
{
    keys_seen *k = user;
    pthread_mutex_lock(&k->mu);
    if (k->n < 4)
        snprintf(k->key[k->n], sizeof k->key[0], "%s", d->key ? d->key : "(none)");
    k->n++;
    tb_amqp_consumer *c = k->c;
    pthread_mutex_unlock(&k->mu);
    tb_amqp_settle(c, d, TB_AMQP_ACK, NULL);
}

START_TEST(the_outbox_publishes_what_commits_and_nothing_that_rolls_back)
{
    char ex[64], svc[64], path[300];
    uniq(ex, sizeof ex, "ex");
    uniq(svc, sizeof svc, "profiles");
    data_dir();
    seen s = {.mu = PTHREAD_MUTEX_INITIALIZER};
    tb_error err = TB_ERROR_INIT;
    tb_bus *cons = registered_consumer(svc, ex, &s);
    /* a raw consumer beside it: the relay sends the ordering key in header x-tablium-key */
    char raw_q[80];
    snprintf(raw_q, sizeof raw_q, "%s-raw", svc);
    const char *const raw_keys[] = {"user.registered"};
    tb_amqp_consumer_opts rco = {.conn = {.url = need("TB_TEST_AMQP_URL"), .exchange = ex},
                                 .queue = raw_q, .bindings = raw_keys, .n_bindings = 1};
    keys_seen ks = {.mu = PTHREAD_MUTEX_INITIALIZER};
    pthread_mutex_lock(&ks.mu);
    ks.c = tb_amqp_consumer_new(&rco, on_raw, &ks, &err);
    pthread_mutex_unlock(&ks.mu);
    ck_assert_msg(ks.c != NULL, "raw consumer: %s", err.message);
    ck_assert_int_eq(tb_amqp_declare(&rco, &err), 0);
    snprintf(path, sizeof path, "%s/producer.db", DATA_DIR);
    sqlite3 *db = tb_store_open(path, "CREATE TABLE IF NOT EXISTS t (x);", &err);
    ck_assert_ptr_nonnull(db);
    ck_assert_int_eq(tb_outbox_init(db, &err), 0);
    user_registered_v1 gone = registered(UID1, "rolled_back");
    user_registered_v1 kept = registered(UID1, "committed");
    ck_assert_int_eq(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
    ck_assert_int_eq(user_registered_v1_outbox(db, NULL, &gone, &err), 0);
    ck_assert_int_eq(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "INSERT INTO t VALUES (1)", NULL, NULL, NULL), SQLITE_OK);
    ck_assert_int_eq(user_registered_v1_outbox(db, NULL, &kept, &err), 0);
    ck_assert_int_eq(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    ck_assert_int_eq(tb_outbox_pending(db, &err), 1);
    /* a Redis event cannot go through the outbox */
    game_move_made_v1 mv = a_move(UID1, 1);
    json_t *j = game_move_made_v1_to_json(&mv);
    ck_assert_int_eq(tb_outbox_add_json(db, NULL, &game_move_made_v1_event, j, "x", NULL, &err),
                     TB_EINVAL);
    json_decref(j);

    tb_bus *relay = new_bus("auth", ex, NULL);
    ck_assert_int_eq(tb_bus_relay_outbox(relay, path, &err), 0);
    tb_bus_outbox_kick(relay);
    ck_assert(wait_count(&s.n, 1));
    ck_assert_str_eq(s.username, "committed");
    ck_assert_str_eq(s.producer, "auth-service"); /* the declared producer */
    for (int t = 0; t < 500 && tb_outbox_pending(db, &err) != 0; t++)
        sleep_ms(10);
    ck_assert_int_eq(tb_outbox_pending(db, &err), 0);
    sleep_ms(200);
    ck_assert_int_eq(atomic_load(&s.n), 1);
    for (int t = 0; t < 500; t++) {
        pthread_mutex_lock(&ks.mu);
        int n = ks.n;
        pthread_mutex_unlock(&ks.mu);
        if (n >= 1)
            break;
        sleep_ms(10);
    }
    pthread_mutex_lock(&ks.mu);
    ck_assert_int_eq(ks.n, 1);
    ck_assert_str_eq(ks.key[0], UID1); /* user.registered is keyed by userId */
    pthread_mutex_unlock(&ks.mu);
    tb_amqp_consumer_free(ks.c);
    tb_store_close(db);
    tb_bus_free(relay);
    tb_bus_free(cons);
    tb_error_deinit(&err);
}
END_TEST

/* ---------------------------------------------------------------- broker restarts ---- */

static void broker(const char *script, const char *verb, const char *dir_env)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "bash scripts/%s %s '%s' >/dev/null", script, verb, need(dir_env));
    ck_assert_msg(system(cmd) == 0, "%s failed", cmd);
}

START_TEST(redis_restart_subscribers_come_back_and_say_how_long_they_were_gone)
{
    char ex[64], svc[64];
    uniq(ex, sizeof ex, "ex");
    uniq(svc, sizeof svc, "moves");
    data_dir();
    moves m = {.mu = PTHREAD_MUTEX_INITIALIZER};
    tb_error err = TB_ERROR_INIT;
    tb_bus *cons = new_bus(svc, ex, NULL);
    ck_assert_int_eq(game_move_made_v1_subscribe(cons, on_move, &m, &err), 0);
    start(cons);
    tb_bus *prod = new_bus("game-engine", ex, NULL);
    game_move_made_v1 mv = a_move(UID1, 1);
    ck_assert_int_eq(game_move_made_v1_publish(prod, NULL, &mv, &err), 0);
    ck_assert(wait_count(&m.n, 1));
    broker("redis.sh", "restart", "TB_TEST_REDIS_DIR");
    /* back within seconds: publish until one arrives */
    int64_t t0 = tb_time_ms();
    int sent = 1;
    while (atomic_load(&m.n) < 2 && tb_time_ms() - t0 < 10000) {
        mv.move_number = ++sent;
        game_move_made_v1_publish(prod, NULL, &mv, &err); /* may fail while Redis is away */
        sleep_ms(50);
    }
    ck_assert_msg(atomic_load(&m.n) >= 2, "no event after the Redis restart");
    tb_bus_stats st;
    tb_bus_stats_get(cons, &st);
    ck_assert_int_ge((int)st.redis_reconnects, 1);
    ck_assert_int_gt((int)st.redis_last_gap_ms, 0);
    ck_assert_int_lt((int)st.redis_last_gap_ms, 10000);
    fprintf(stderr, "redis-restart: subscriber back after %lld ms\n",
            (long long)st.redis_last_gap_ms);
    tb_bus_free(prod);
    tb_bus_free(cons);
    tb_error_deinit(&err);
}
END_TEST

typedef struct restart_run {
    sqlite3 *db; /* the consumer's store: its own table + the dedupe record */
    pthread_mutex_t mu;
    atomic_int calls;
    atomic_int confirmed, failed;
} restart_run;

static int on_counted(tb_ctx *ctx, const tb_event *ev, const wallet_transaction_created_v1 *d,
                      void *user)
{
    (void)ctx;
    (void)d;
    restart_run *r = user;
    atomic_fetch_add(&r->calls, 1);
    /* runs inside the bus's transaction on r->db: n > 1 would mean handled twice */
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(r->db,
                           "INSERT INTO handled (id, n) VALUES (?, 1) "
                           "ON CONFLICT (id) DO UPDATE SET n = n + 1",
                           -1, &st, NULL) != SQLITE_OK)
        return TB_EIO;
    sqlite3_bind_text(st, 1, ev->id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st) == SQLITE_DONE ? TB_EVENT_ACK : TB_EIO;
    sqlite3_finalize(st);
    return rc;
}

static void on_confirmed(void *user, int rc)
{
    restart_run *r = user;
    atomic_fetch_add(rc == 0 ? &r->confirmed : &r->failed, 1);
}

static int count_sql(sqlite3 *db, pthread_mutex_t *mu, const char *sql)
{
    pthread_mutex_lock(mu);
    sqlite3_stmt *st;
    int n = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    pthread_mutex_unlock(mu);
    return n;
}

START_TEST(rabbitmq_restart_under_load_loses_and_duplicates_nothing)
{
    char ex[64], svc[64], path[300];
    uniq(ex, sizeof ex, "ex");
    uniq(svc, sizeof svc, "restart");
    data_dir();
    restart_run r = {.mu = PTHREAD_MUTEX_INITIALIZER};
    tb_error err = TB_ERROR_INIT;
    snprintf(path, sizeof path, "%s/consumer.db", DATA_DIR);
    r.db = tb_store_open(path, "CREATE TABLE IF NOT EXISTS handled (id TEXT PRIMARY KEY, n INT);",
                         &err);
    ck_assert_ptr_nonnull(r.db);
    tb_bus_opts bo = {.store = r.db, .store_lock = &r.mu, .publish_timeout_ms = 60000};
    tb_bus *cons = new_bus(svc, ex, &bo);
    ck_assert_int_eq(wallet_transaction_created_v1_subscribe(cons, on_counted, &r, &err), 0);
    start(cons);
    tb_bus_opts po = {.publish_timeout_ms = 60000};
    tb_bus *prod = new_bus("wallet", ex, &po);
    const int N = 10000;
    char tx[37], wallet[37];
    tb_uuid_new(wallet);
    for (int i = 1; i <= N; i++) {
        if (i == N / 3)
            broker("rabbitmq.sh", "restart", "TB_TEST_RABBITMQ_DIR"); /* mid-stream */
        tb_uuid_new(tx);
        wallet_transaction_created_v1 t = a_tx(tx, wallet, i);
        int rc = wallet_transaction_created_v1_publish_async(prod, NULL, &t, on_confirmed, &r,
                                                              &err);
        ck_assert_msg(rc == 0, "publish %d: %s", i, err.message);
    }
    ck_assert_int_eq(tb_bus_flush(prod, 60000), 0);
    int published = atomic_load(&r.confirmed);
    int handled = 0;
    for (int t = 0; t < 1200; t++) { /* 120 s at most */
        handled = count_sql(r.db, &r.mu, "SELECT COUNT(*) FROM handled");
        if (handled >= published)
            break;
        sleep_ms(100);
    }
    sleep_ms(500); /* late duplicates would show now */
    handled = count_sql(r.db, &r.mu, "SELECT COUNT(*) FROM handled");
    int dup = count_sql(r.db, &r.mu, "SELECT COALESCE(SUM(n - 1), 0) FROM handled");
    int lost = published - handled;
    printf("events-restart: %d published, %d handled, %d lost, %d duplicated "
           "(%d failed to publish, %d handler calls)\n",
           published, handled, lost, dup, atomic_load(&r.failed), atomic_load(&r.calls));
    fflush(stdout);
    ck_assert_int_eq(atomic_load(&r.failed), 0);
    ck_assert_int_eq(published, N);
    ck_assert_int_eq(handled, N);
    ck_assert_int_eq(dup, 0);
    tb_bus_stats st;
    tb_bus_stats_get(cons, &st);
    ck_assert_int_ge((int)st.amqp_connects, 2);
    tb_bus_free(prod);
    tb_bus_free(cons);
    tb_store_close(r.db);
    tb_error_deinit(&err);
}
END_TEST

/* ---------------------------------------------------------------- consumer killed ---- */

static int on_counted_slow(tb_ctx *ctx, const tb_event *ev,
                           const wallet_transaction_created_v1 *d, void *user)
{
    usleep(300);
    return on_counted(ctx, ev, d, user);
}

/* Consumer processes still running: killed at exit when a failing test jumps past its kill. */
static pid_t live_sinks[2];

static void kill_sinks(void)
{
    for (int i = 0; i < 2; i++)
        if (live_sinks[i] > 0) {
            kill(live_sinks[i], SIGKILL);
            waitpid(live_sinks[i], NULL, 0);
            live_sinks[i] = 0;
        }
}

/* The consumer process: never returns (killed by the test). */
static void sink_process(const char *svc, const char *ex, const char *path)
{
    static restart_run r = {.mu = PTHREAD_MUTEX_INITIALIZER};
    tb_error err = TB_ERROR_INIT;
    r.db = tb_store_open(path, NULL, &err);
    if (!r.db)
        _exit(10);
    tb_bus_opts o = {.service = svc, .exchange = ex, .amqp_url = getenv("TB_TEST_AMQP_URL"),
                     .redis_url = "", .store = r.db, .store_lock = &r.mu};
    /* (the default retry delay, where the test declared the queues with 50 ms: changing the
     * delays of a service is allowed) */
    tb_bus *b = tb_bus_new(&o, &err);
    if (!b || wallet_transaction_created_v1_subscribe(b, on_counted_slow, &r, &err) != 0 ||
        tb_bus_start(b, &err) != 0) {
        fprintf(stderr, "sink: %s\n", err.message);
        _exit(11);
    }
    for (;;)
        pause();
}

static int handled_in(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    int n = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(db, 2000);
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return n;
}

START_TEST(a_consumer_killed_mid_stream_loses_and_repeats_nothing)
{
    char ex[64], svc[64], path[300];
    uniq(ex, sizeof ex, "ex");
    uniq(svc, sizeof svc, "killed");
    data_dir();
    tb_error err = TB_ERROR_INIT;
    snprintf(path, sizeof path, "%s/sink.db", DATA_DIR);
    sqlite3 *db = tb_store_open(path, "CREATE TABLE IF NOT EXISTS handled (id TEXT PRIMARY KEY, "
                                      "n INT);",
                                &err);
    ck_assert_ptr_nonnull(db);
    tb_store_close(db);
    /* the queue and its binding exist before anything is published */
    restart_run none = {.mu = PTHREAD_MUTEX_INITIALIZER};
    tb_bus *decl = new_bus(svc, ex, NULL);
    ck_assert_int_eq(wallet_transaction_created_v1_subscribe(decl, on_counted, &none, &err), 0);
    start(decl);
    tb_bus_free(decl);
    const int N = 3000;
    tb_bus *prod = new_bus("wallet", ex, NULL);
    char tx[37], wallet[37];
    tb_uuid_new(wallet);
    for (int i = 1; i <= N; i++) {
        tb_uuid_new(tx);
        wallet_transaction_created_v1 t = a_tx(tx, wallet, i);
        ck_assert_int_eq(
            wallet_transaction_created_v1_publish_async(prod, NULL, &t, NULL, NULL, &err), 0);
    }
    ck_assert_int_eq(tb_bus_flush(prod, 30000), 0);
    tb_bus_free(prod); /* no thread left in this process: fork is safe */

    atexit(kill_sinks);
    pid_t c1 = fork();
    ck_assert_int_ge(c1, 0);
    if (c1 == 0)
        sink_process(svc, ex, path);
    live_sinks[0] = c1;
    int n1 = 0;
    for (int t = 0; t < 3000 && n1 < N / 5; t++) {
        n1 = handled_in(path, "SELECT COUNT(*) FROM handled");
        usleep(2000);
    }
    int cst = 0;
    pid_t gone = waitpid(c1, &cst, WNOHANG);
    ck_assert_msg(gone == 0, "the consumer process exited early (status %d)", cst);
    kill(c1, SIGKILL);
    waitpid(c1, NULL, 0);
    live_sinks[0] = 0;
    n1 = handled_in(path, "SELECT COUNT(*) FROM handled");
    ck_assert_msg(n1 > 0 && n1 < N, "killed after %d of %d: not mid-stream", n1, N);

    pid_t c2 = fork();
    ck_assert_int_ge(c2, 0);
    if (c2 == 0)
        sink_process(svc, ex, path);
    live_sinks[1] = c2;
    int n2 = 0;
    for (int t = 0; t < 600 && n2 < N; t++) {
        n2 = handled_in(path, "SELECT COUNT(*) FROM handled");
        if (n2 < N)
            usleep(100000);
    }
    usleep(300000);
    kill(c2, SIGKILL);
    waitpid(c2, NULL, 0);
    live_sinks[1] = 0;
    n2 = handled_in(path, "SELECT COUNT(*) FROM handled");
    int dup = handled_in(path, "SELECT COALESCE(SUM(n - 1), 0) FROM handled");
    printf("events-consumer-kill: %d published, killed after %d, %d handled, %d lost, "
           "%d duplicated\n",
           N, n1, n2, N - n2, dup);
    fflush(stdout);
    ck_assert_int_eq(n2, N);
    ck_assert_int_eq(dup, 0);
    tb_error_deinit(&err);
}
END_TEST

/* `events_test_bus publish-and-free EXCHANGE`: publishes one light event, frees the bus and
 * exits 0, with no tb_trace_shutdown (for the test above). */
static int publish_and_free(const char *ex)
{
    tb_error err = TB_ERROR_INIT;
    tb_bus_opts o = {.service = "game-engine", .exchange = ex,
                     .amqp_url = need("TB_TEST_AMQP_URL"), .redis_url = need("TB_TEST_REDIS_URL")};
    tb_bus *prod = tb_bus_new(&o, &err);
    game_move_made_v1 mv = a_move(UID1, 1);
    int rc = prod ? game_move_made_v1_publish(prod, NULL, &mv, &err) : -1;
    if (rc != 0)
        fprintf(stderr, "publish-and-free: %s\n", err.message);
    tb_bus_free(prod);
    tb_error_deinit(&err);
    return rc == 0 ? 0 : 3;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "publish-and-free") == 0)
        return publish_and_free(argv[2]);
    setenv("TB_EVENTS_LAG_POLL_MS", "200", 1);
    Suite *s = suite_create("bus");
    TCase *tc = tcase_create("bus");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, rabbitmq_typed_round_trip_carries_the_envelope);
    tcase_add_test(tc, redis_typed_events_arrive_in_order);
    tcase_add_test(tc, a_publisher_without_a_server_exports_its_spans_when_the_bus_is_freed);
    tcase_add_test(tc, redis_typed_events_spread_over_workers_keep_order_per_key);
    tcase_add_test(tc, a_handler_keeping_an_envelope_finds_it_unchanged);
    tcase_add_test(tc, invalid_data_is_refused_on_publish_with_every_error);
    tcase_add_test(tc, versions_coexist_and_consumers_read_what_they_declare);
    tcase_add_test(tc, foreign_and_garbage_messages_go_to_the_dlq_never_to_a_handler);
    tcase_add_test(tc, garbage_on_a_redis_channel_is_dropped_with_a_log_line);
    tcase_add_test(tc, a_poison_message_reaches_the_dlq_after_max_attempts_and_replays);
    tcase_add_test(tc, a_handler_error_counts_as_a_retry);
    tcase_add_test(tc, max_attempts_holds_without_a_dlq_and_dead_goes_at_once);
    tcase_add_test(tc, same_key_in_order_different_keys_in_parallel);
    tcase_add_test(tc, the_default_worker_count_leaves_a_cpu_to_the_io_thread);
    tcase_add_test(tc, bus_ready_reports_each_connection_it_holds_and_why_one_is_down);
    tcase_add_test(tc, a_redelivered_event_is_handled_once);
    tcase_add_test(tc, a_key_header_that_is_not_the_events_key_goes_to_the_dlq);
    tcase_add_test(tc, a_restarted_consumer_remembers_what_it_handled);
    tcase_add_test(tc, dedupe_records_of_the_old_sqlite_file_are_carried_over);
    tcase_add_test(tc, the_outbox_publishes_what_commits_and_nothing_that_rolls_back);
    tcase_add_test(tc, redis_restart_subscribers_come_back_and_say_how_long_they_were_gone);
    tcase_add_test(tc, a_consumer_killed_mid_stream_loses_and_repeats_nothing);
    tcase_add_test(tc, rabbitmq_restart_under_load_loses_and_duplicates_nothing);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
