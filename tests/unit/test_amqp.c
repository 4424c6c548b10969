/*
 * The RabbitMQ transport (runtime/events/amqp.c) against a real broker:
 *
 *   scripts/rabbitmq.sh start /tmp/rmq      # prints the URL
 *   TB_TEST_AMQP_URL=amqp://guest:guest@127.0.0.1:PORT/ TB_TEST_RABBITMQ_DIR=/tmp/rmq test_amqp
 *
 * Both variables are required (the suite fails without them). Every test uses its own queue and
 * routing keys, so the tests can share one broker; one of them restarts it.
 */
#include "../../runtime/events/tb_amqp.h"

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>

#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *URL;
static const char *RMQ_DIR;
static char RUN[48];
static char EXCHANGE[96];
static int name_seq;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A name unique to this run and call: "tbt.<run>.<n>.<what>". */
static void uname_(char *buf, size_t cap, const char *what)
{
    snprintf(buf, cap, "tbt.%s.%d.%s", RUN, ++name_seq, what);
}

static void setup(void)
{
    ck_assert_msg(
        URL != NULL && *URL,
        "TB_TEST_AMQP_URL is not set: start a broker with `scripts/rabbitmq.sh start DIR` "
        "and export TB_TEST_AMQP_URL=<the URL it prints> TB_TEST_RABBITMQ_DIR=DIR");
    ck_assert_msg(RMQ_DIR != NULL && *RMQ_DIR,
                  "TB_TEST_RABBITMQ_DIR is not set (the DIR given to scripts/rabbitmq.sh start)");
}

static tb_amqp_opts conn_opts(void)
{
    tb_amqp_opts o = {.url = URL,
                      .exchange = EXCHANGE,
                      .reconnect_min_ms = 50,
                      .reconnect_max_ms = 1000,
                      .heartbeat_s = 10};
    return o;
}

/* ------------------------------------------------------------ recorder ---- */

#define MAXREC 4096
#define MAXDETAIL 16
#define MAXHELD 64

typedef struct detail {
    char rk[128], type[64], version[16], cid[64], trace[80], body[64];
    bool has_type, has_version, has_cid, has_trace, has_id;
    size_t len;
} detail;

typedef struct recorder {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int n;
    char id[MAXREC][24];
    int attempt[MAXREC];
    bool redelivered[MAXREC];
    uint64_t at[MAXREC];
    detail det[MAXDETAIL];
    atomic_int action; /* tb_amqp_action, or -1: hold (never settle) */
    const char *reason;
    tb_amqp_delivery *held[MAXHELD];
    int n_held;
    /* dedupe for the restart test: ids "p<i>" */
    unsigned char seen[4096];
    int unique;
} recorder;

static recorder *rec_new(int action, const char *reason)
{
    recorder *r = calloc(1, sizeof *r);
    ck_assert_ptr_nonnull(r);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    atomic_init(&r->action, action);
    r->reason = reason;
    return r;
}

static void rec_free(recorder *r)
{
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}

static void copy_str(char *dst, size_t cap, const char *src, bool *has)
{
    if (has)
        *has = src != NULL;
    snprintf(dst, cap, "%s", src ? src : "");
}

static void on_delivery(void *user, tb_amqp_delivery *d)
{
    recorder *r = user;
    pthread_mutex_lock(&r->mu);
    int i = r->n;
    if (i < MAXREC) {
        snprintf(r->id[i], sizeof r->id[i], "%s", d->message_id ? d->message_id : "");
        r->attempt[i] = d->attempt;
        r->redelivered[i] = d->redelivered;
        r->at[i] = now_ms();
        if (i < MAXDETAIL) {
            detail *x = &r->det[i];
            copy_str(x->rk, sizeof x->rk, d->routing_key, NULL);
            copy_str(x->type, sizeof x->type, d->type, &x->has_type);
            copy_str(x->version, sizeof x->version, d->version, &x->has_version);
            copy_str(x->cid, sizeof x->cid, d->correlation_id, &x->has_cid);
            copy_str(x->trace, sizeof x->trace, d->traceparent, &x->has_trace);
            x->has_id = d->message_id != NULL;
            x->len = d->len;
            memcpy(x->body, d->body, d->len < sizeof x->body ? d->len : sizeof x->body);
        }
    }
    if (d->message_id && d->message_id[0] == 'p') {
        int k = atoi(d->message_id + 1);
        if (k >= 0 && k < (int)sizeof r->seen && !r->seen[k]) {
            r->seen[k] = 1;
            r->unique++;
        }
    }
    r->n++;
    int action = atomic_load(&r->action);
    bool hold = action < 0 && r->n_held < MAXHELD;
    if (hold)
        r->held[r->n_held++] = d;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    if (!hold) /* NULL consumer: the delivery knows its own */
        tb_amqp_settle(NULL, d, action < 0 ? TB_AMQP_ACK : (tb_amqp_action)action, r->reason);
}

/* Waits until at least n deliveries (or n unique "p" ids) arrived; false on timeout. */
static bool rec_wait(recorder *r, int n, bool unique, int timeout_ms)
{
    uint64_t end = now_ms() + (uint64_t)timeout_ms;
    pthread_mutex_lock(&r->mu);
    while ((unique ? r->unique : r->n) < n && now_ms() < end) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&r->cv, &r->mu, &ts);
    }
    bool ok = (unique ? r->unique : r->n) >= n;
    pthread_mutex_unlock(&r->mu);
    return ok;
}

static int rec_count(recorder *r)
{
    pthread_mutex_lock(&r->mu);
    int n = r->n;
    pthread_mutex_unlock(&r->mu);
    return n;
}

static long depth(const char *q)
{
    tb_amqp_opts o = conn_opts();
    tb_error e = TB_ERROR_INIT;
    long n = tb_amqp_queue_depth(&o, q, &e);
    tb_error_deinit(&e);
    return n;
}

static bool wait_depth(const char *q, long want, int timeout_ms)
{
    uint64_t end = now_ms() + (uint64_t)timeout_ms;
    do {
        if (depth(q) == want)
            return true;
        sleep_ms(50);
    } while (now_ms() < end);
    return depth(q) == want;
}

static tb_amqp_consumer_opts consumer_opts(const char *queue, const char *const *keys, size_t nk)
{
    tb_amqp_consumer_opts co = {
        .conn = conn_opts(), .queue = queue, .bindings = keys, .n_bindings = nk};
    return co;
}

static tb_amqp_consumer *consumer(const tb_amqp_consumer_opts *co, recorder *r)
{
    tb_error e = TB_ERROR_INIT;
    tb_amqp_consumer *c = tb_amqp_consumer_new(co, on_delivery, r, &e);
    ck_assert_msg(c != NULL, "consumer: %s", e.message);
    tb_error_deinit(&e);
    return c;
}

static void declare(const tb_amqp_consumer_opts *co)
{
    tb_error e = TB_ERROR_INIT;
    int rc = tb_amqp_declare(co, &e);
    ck_assert_msg(rc == 0, "declare: %s", e.message);
    tb_error_deinit(&e);
}

static void purge(const char *q, int max_attempts)
{
    tb_amqp_opts o = conn_opts();
    tb_error e = TB_ERROR_INIT;
    ck_assert_int_eq(tb_amqp_queue_purge_all(&o, q, max_attempts, &e), 0);
    tb_error_deinit(&e);
}

/* ------------------------------------------------------------ publisher helpers ---- */

typedef struct confirms {
    atomic_int ok, failed, total;
    atomic_int rc[8192];
} confirms;

typedef struct ticket {
    confirms *c;
    int i;
} ticket;

static void on_confirm(void *user, int rc)
{
    ticket *t = user;
    atomic_store(&t->c->rc[t->i], rc == 0 ? 1 : rc);
    atomic_fetch_add(rc == 0 ? &t->c->ok : &t->c->failed, 1);
    atomic_fetch_add(&t->c->total, 1);
}

static tb_amqp_pub *publisher(unsigned window, int timeout_ms)
{
    tb_amqp_opts o = conn_opts();
    o.window = window;
    o.publish_timeout_ms = timeout_ms;
    tb_error e = TB_ERROR_INIT;
    tb_amqp_pub *p = tb_amqp_pub_new(&o, &e);
    ck_assert_msg(p != NULL, "publisher: %s", e.message);
    tb_error_deinit(&e);
    return p;
}

/* Publishes n messages "<prefix><i>" with a small body and waits for all confirms. */
static void publish_n(const char *ex, const char *rk, const char *prefix, int n,
                      const tb_amqp_props *base)
{
    tb_amqp_pub *p = publisher(0, 20000);
    confirms *cf = calloc(1, sizeof *cf);
    ticket *tk = calloc((size_t)n, sizeof *tk);
    for (int i = 0; i < n; i++) {
        char id[24], body[16];
        snprintf(id, sizeof id, "%s%d", prefix, i);
        snprintf(body, sizeof body, "%d", i);
        tb_amqp_props pr = base ? *base : (tb_amqp_props){0};
        pr.message_id = id;
        tk[i] = (ticket){cf, i};
        ck_assert_int_eq(tb_amqp_publish(p, ex, rk, &pr, body, strlen(body), on_confirm, &tk[i]),
                         0);
    }
    ck_assert_int_eq(tb_amqp_pub_flush(p, 20000), 0);
    ck_assert_int_eq(atomic_load(&cf->ok), n);
    tb_amqp_pub_free(p);
    free(tk);
    free(cf);
}

/* ============================================================ tests ==== */

START_TEST(publish_5000_confirmed_through_the_window)
{
    char q[128];
    uname_(q, sizeof q, "pub");
    const char *keys[] = {q}; /* routing key = queue name: unique */
    tb_amqp_consumer_opts co = consumer_opts(q, keys, 1);
    declare(&co);
    tb_amqp_pub *p = publisher(1000, 30000);
    confirms *cf = calloc(1, sizeof *cf);
    ticket *tk = calloc(5000, sizeof *tk);
    char body[200];
    memset(body, 'b', sizeof body);
    uint64_t t0 = now_ms();
    for (int i = 0; i < 5000; i++) {
        char id[24];
        snprintf(id, sizeof id, "w%d", i);
        tb_amqp_props pr = {.message_id = id, .type = "test.pub"};
        tk[i] = (ticket){cf, i};
        ck_assert_int_eq(tb_amqp_publish(p, NULL, q, &pr, body, sizeof body, on_confirm, &tk[i]),
                         0);
    }
    ck_assert_int_eq(tb_amqp_pub_flush(p, 30000), 0);
    uint64_t ms = now_ms() - t0;
    ck_assert_int_eq(atomic_load(&cf->ok), 5000);
    ck_assert_int_eq(atomic_load(&cf->failed), 0);
    for (int i = 0; i < 5000; i++)
        ck_assert_int_eq(atomic_load(&cf->rc[i]), 1);
    ck_assert_uint_eq(tb_amqp_pub_connects(p), 1);
    ck_assert_int_eq(depth(q), 5000);
    fprintf(stderr, "test_amqp: 5000 confirmed publishes in %llu ms\n", (unsigned long long)ms);
    tb_amqp_pub_free(p);
    free(tk);
    free(cf);
    purge(q, 5);
}
END_TEST

START_TEST(consumer_gets_messages_in_order_with_their_properties)
{
    char q[128];
    uname_(q, sizeof q, "order");
    const char *keys[] = {q};
    tb_amqp_consumer_opts co = consumer_opts(q, keys, 1);
    co.prefetch = 50;
    declare(&co);
    tb_amqp_props base = {.type = "user.registered",
                          .version = "2",
                          .correlation_id = "corr-1",
                          .traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"};
    publish_n(NULL, q, "m", 200, &base);
    recorder *r = rec_new(TB_AMQP_ACK, NULL);
    tb_amqp_consumer *c = consumer(&co, r);
    ck_assert_msg(rec_wait(r, 200, false, 10000), "got %d of 200", rec_count(r));
    for (int i = 0; i < 200; i++) {
        char id[24];
        snprintf(id, sizeof id, "m%d", i);
        ck_assert_str_eq(r->id[i], id);
        ck_assert_int_eq(r->attempt[i], 1);
        ck_assert(!r->redelivered[i]);
    }
    detail *x = &r->det[7];
    ck_assert_str_eq(x->rk, q);
    ck_assert_str_eq(x->type, "user.registered");
    ck_assert_str_eq(x->version, "2");
    ck_assert_str_eq(x->cid, "corr-1");
    ck_assert_str_eq(x->trace, base.traceparent);
    ck_assert_uint_eq(x->len, 1);
    ck_assert_int_eq(x->body[0], '7');
    ck_assert_uint_eq(tb_amqp_consumer_connects(c), 1);
    tb_amqp_consumer_free(c);
    ck_assert_int_eq(depth(q), 0); /* all acked */
    ck_assert_int_eq(r->n, 200);   /* and nothing delivered twice */
    rec_free(r);
    purge(q, 5);
}
END_TEST

static long n_dead;
static tb_amqp_dead dead_seen[8];
static char dead_reason[8][64], dead_rk[8][128], dead_at[8][40], dead_id[8][24];
static int dead_attempt[8];

static void on_dead(void *user, const tb_amqp_dead *d)
{
    (void)user;
    if (n_dead < 8) {
        dead_seen[n_dead] = *d;
        snprintf(dead_reason[n_dead], sizeof dead_reason[0], "%s", d->reason ? d->reason : "");
        snprintf(dead_rk[n_dead], sizeof dead_rk[0], "%s", d->routing_key ? d->routing_key : "");
        snprintf(dead_at[n_dead], sizeof dead_at[0], "%s", d->dead_at ? d->dead_at : "");
        snprintf(dead_id[n_dead], sizeof dead_id[0], "%s",
                 d->msg->message_id ? d->msg->message_id : "");
        dead_attempt[n_dead] = d->msg->attempt;
    }
    n_dead++;
}

static long dlq_list(const char *q)
{
    tb_amqp_opts o = conn_opts();
    tb_error e = TB_ERROR_INIT;
    n_dead = 0;
    long n = tb_amqp_dlq_list(&o, q, on_dead, NULL, &e);
    ck_assert_msg(n >= 0, "dlq list: %s", e.message);
    tb_error_deinit(&e);
    return n;
}

START_TEST(retry_backs_off_then_dead_letters_then_replays)
{
    char q[128], dlq[160];
    uname_(q, sizeof q, "retry");
    snprintf(dlq, sizeof dlq, "%s.dlq", q);
    const char *keys[] = {"test.retry.key"};
    tb_amqp_consumer_opts co = consumer_opts(q, keys, 1);
    co.max_attempts = 3;
    co.retry_base_ms = 100;
    co.retry_max_ms = 1000;
    co.dlq = true;
    char ex[128];
    uname_(ex, sizeof ex, "x"); /* its own exchange: the key is not unique */
    co.conn.exchange = ex;
    recorder *r = rec_new(TB_AMQP_RETRY, "boom");
    tb_amqp_consumer *c = consumer(&co, r);
    publish_n(ex, "test.retry.key", "r", 1, NULL);
    ck_assert_msg(rec_wait(r, 3, false, 10000), "got %d of 3 attempts", rec_count(r));
    ck_assert_msg(wait_depth(dlq, 1, 5000), "dlq depth %ld", depth(dlq));
    sleep_ms(300);
    ck_assert_int_eq(rec_count(r), 3); /* no 4th attempt */
    for (int i = 0; i < 3; i++) {
        ck_assert_str_eq(r->id[i], "r0");
        ck_assert_int_eq(r->attempt[i], i + 1);
        ck_assert_str_eq(r->det[i].rk, "test.retry.key"); /* original key, also after a retry */
    }
    uint64_t d1 = r->at[1] - r->at[0], d2 = r->at[2] - r->at[1];
    ck_assert_msg(d1 >= 90 && d1 < 3000, "delay before attempt 2: %llu ms", (unsigned long long)d1);
    ck_assert_msg(d2 >= 190 && d2 < 3000, "delay before attempt 3: %llu ms",
                  (unsigned long long)d2);
    ck_assert_int_eq(depth(q), 0);
    /* listing does not consume */
    ck_assert_int_eq(dlq_list(q), 1);
    ck_assert_int_eq(dlq_list(q), 1);
    ck_assert_uint_eq(dead_seen[0].index, 1);
    ck_assert_str_eq(dead_reason[0], "boom");
    ck_assert_str_eq(dead_rk[0], "test.retry.key");
    ck_assert_str_eq(dead_id[0], "r0");
    ck_assert_int_eq(dead_attempt[0], 3);
    ck_assert_msg(strlen(dead_at[0]) >= 20 && dead_at[0][4] == '-' && dead_at[0][10] == 'T',
                  "dead_at %s", dead_at[0]);
    ck_assert_int_eq(depth(dlq), 1);
    /* replay: back to the queue with attempt 1 */
    atomic_store(&r->action, TB_AMQP_ACK);
    tb_amqp_opts o = conn_opts();
    o.exchange = ex;
    tb_error e = TB_ERROR_INIT;
    ck_assert_int_eq(tb_amqp_dlq_replay(&o, q, NULL, NULL, &e), 1);
    ck_assert_msg(rec_wait(r, 4, false, 5000), "replayed message not consumed");
    ck_assert_str_eq(r->id[3], "r0");
    ck_assert_int_eq(r->attempt[3], 1);
    ck_assert_str_eq(r->det[3].rk, "test.retry.key");
    ck_assert_int_eq(depth(dlq), 0);
    tb_amqp_consumer_free(c);
    ck_assert_int_eq(depth(q), 0);
    tb_error_deinit(&e);
    rec_free(r);
    purge(q, 3);
}
END_TEST

static bool pick_d1(void *user, const tb_amqp_dead *d)
{
    (void)user;
    return d->msg->message_id && strcmp(d->msg->message_id, "d1") == 0;
}

START_TEST(dead_goes_straight_to_the_dlq_and_replay_picks)
{
    char q[128], dlq[160];
    uname_(q, sizeof q, "dead");
    snprintf(dlq, sizeof dlq, "%s.dlq", q);
    const char *keys[] = {q};
    tb_amqp_consumer_opts co = consumer_opts(q, keys, 1);
    co.dlq = true;
    recorder *r = rec_new(TB_AMQP_DEAD, "bad input");
    tb_amqp_consumer *c = consumer(&co, r);
    publish_n(NULL, q, "d", 3, NULL);
    ck_assert(rec_wait(r, 3, false, 5000));
    ck_assert_msg(wait_depth(dlq, 3, 5000), "dlq depth %ld", depth(dlq));
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(r->attempt[i], 1); /* no retries */
    ck_assert_int_eq(dlq_list(q), 3);
    for (int i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof id, "d%d", i);
        ck_assert_str_eq(dead_id[i], id); /* in order */
        ck_assert_uint_eq(dead_seen[i].index, (uint64_t)i + 1);
        ck_assert_str_eq(dead_reason[i], "bad input");
        ck_assert_int_eq(dead_attempt[i], 1);
        ck_assert_str_eq(dead_rk[i], q);
    }
    atomic_store(&r->action, TB_AMQP_ACK);
    tb_amqp_opts o = conn_opts();
    tb_error e = TB_ERROR_INIT;
    ck_assert_int_eq(tb_amqp_dlq_replay(&o, q, pick_d1, NULL, &e), 1);
    ck_assert(rec_wait(r, 4, false, 5000));
    ck_assert_str_eq(r->id[3], "d1");
    ck_assert_int_eq(r->attempt[3], 1);
    ck_assert_int_eq(dlq_list(q), 2); /* the others stay, in order */
    ck_assert_str_eq(dead_id[0], "d0");
    ck_assert_str_eq(dead_id[1], "d2");
    tb_amqp_consumer_free(c);
    tb_error_deinit(&e);
    rec_free(r);
    purge(q, 5);
}
END_TEST

START_TEST(without_dlq_exhausted_messages_are_dropped)
{
    char q[128], dlq[160], retry1[160];
    uname_(q, sizeof q, "nodlq");
    snprintf(dlq, sizeof dlq, "%s.dlq", q);
    snprintf(retry1, sizeof retry1, "%s.retry.1", q);
    const char *keys[] = {q};
    tb_amqp_consumer_opts co = consumer_opts(q, keys, 1);
    co.max_attempts = 2;
    co.retry_base_ms = 50;
    co.dlq = false;
    recorder *r = rec_new(TB_AMQP_RETRY, "still failing");
    tb_amqp_consumer *c = consumer(&co, r);
    publish_n(NULL, q, "n", 1, NULL);
    ck_assert(rec_wait(r, 2, false, 5000));
    sleep_ms(400);
    ck_assert_int_eq(rec_count(r), 2);
    ck_assert_int_eq(r->attempt[0], 1);
    ck_assert_int_eq(r->attempt[1], 2);
    ck_assert_int_eq(depth(q), 0);
    ck_assert_int_eq(depth(retry1), 0);
    ck_assert_int_eq(depth(dlq), TB_ENOTFOUND); /* never declared */
    tb_amqp_consumer_free(c);
    rec_free(r);
    purge(q, 2);
}
END_TEST

START_TEST(unroutable_and_unknown_exchange_report_enotfound)
{
    char q[128], missing[128];
    uname_(q, sizeof q, "unroutable");
    uname_(missing, sizeof missing, "no-such-exchange");
    const char *keys[] = {q};
    tb_amqp_consumer_opts co = consumer_opts(q, keys, 1);
    declare(&co);
    tb_amqp_pub *p = publisher(0, 10000);
    confirms *cf = calloc(1, sizeof *cf);
    ticket tk[5];
    const char *ex[5] = {NULL, NULL, missing, NULL, ""};
    const char *rk[5] = {"nobody.listens.here", q, q, "nobody.either", q};
    for (int i = 0; i < 5; i++) {
        char id[16];
        snprintf(id, sizeof id, "u%d", i);
        tb_amqp_props pr = {.message_id = id};
        tk[i] = (ticket){cf, i};
        ck_assert_int_eq(tb_amqp_publish(p, ex[i], rk[i], &pr, "x", 1, on_confirm, &tk[i]), 0);
    }
    ck_assert_int_eq(tb_amqp_pub_flush(p, 10000), 0);
    ck_assert_int_eq(atomic_load(&cf->rc[0]), TB_ENOTFOUND);
    ck_assert_int_eq(atomic_load(&cf->rc[1]), 1);
    ck_assert_int_eq(atomic_load(&cf->rc[2]), TB_ENOTFOUND);
    ck_assert_int_eq(atomic_load(&cf->rc[3]), TB_ENOTFOUND);
    ck_assert_int_eq(atomic_load(&cf->rc[4]), 1);  /* default exchange straight to the queue */
    ck_assert_uint_eq(tb_amqp_pub_connects(p), 1); /* no channel error, no reconnect */
    ck_assert_int_eq(depth(q), 2);
    tb_amqp_pub_free(p);
    free(cf);
    purge(q, 5);
}
END_TEST

/* Raw publish with hand-made headers (what another producer, or garbage, could send). */
static void raw_publish(amqp_connection_state_t conn, const char *q, const char *id,
                        amqp_table_entry_t *h, int nh, const void *body, size_t len)
{
    amqp_basic_properties_t p;
    memset(&p, 0, sizeof p);
    if (id) {
        p._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
        p.message_id = amqp_cstring_bytes(id);
    }
    if (nh) {
        p._flags |= AMQP_BASIC_HEADERS_FLAG;
        p.headers.num_entries = nh;
        p.headers.entries = h;
    }
    amqp_bytes_t b = {len, (void *)body};
    ck_assert_int_eq(amqp_basic_publish(conn, 1, amqp_empty_bytes, amqp_cstring_bytes(q), 0, 0,
                                        id || nh ? &p : NULL, b),
                     0);
}

static amqp_table_entry_t hdr(const char *key, char kind)
{
    amqp_table_entry_t e;
    memset(&e, 0, sizeof e);
    e.key = amqp_cstring_bytes(key);
    e.value.kind = (uint8_t)kind;
    return e;
}

START_TEST(odd_headers_and_binary_bodies_are_tolerated)
{
    char q[128];
    uname_(q, sizeof q, "odd");
    tb_amqp_consumer_opts co = consumer_opts(q, NULL, 0);
    declare(&co);
    /* publish with plain rabbitmq-c */
    char host[64] = "127.0.0.1";
    int port = 0;
    ck_assert_int_eq(sscanf(strrchr(URL, ':') + 1, "%d", &port), 1);
    amqp_connection_state_t conn = amqp_new_connection();
    amqp_socket_t *s = amqp_tcp_socket_new(conn);
    ck_assert_int_eq(amqp_socket_open(s, host, port), 0);
    ck_assert_int_eq(
        amqp_login(conn, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest").reply_type,
        AMQP_RESPONSE_NORMAL);
    amqp_channel_open(conn, 1);
    ck_assert_int_eq(amqp_get_rpc_reply(conn).reply_type, AMQP_RESPONSE_NORMAL);
    amqp_table_entry_t h[3];
    h[0] = hdr("x-tablium-attempt", AMQP_FIELD_KIND_UTF8);
    h[0].value.value.bytes = amqp_cstring_bytes("7");
    raw_publish(conn, q, "o0", h, 1, "{}", 2);
    h[0] = hdr("x-tablium-attempt", AMQP_FIELD_KIND_U8);
    h[0].value.value.u8 = 3;
    raw_publish(conn, q, "o1", h, 1, "{}", 2);
    h[0] = hdr("x-tablium-attempt", AMQP_FIELD_KIND_I64);
    h[0].value.value.i64 = 4;
    raw_publish(conn, q, "o2", h, 1, "{}", 2);
    h[0] = hdr("x-tablium-attempt", AMQP_FIELD_KIND_I16);
    h[0].value.value.i16 = -5;
    h[1] = hdr("x-tablium-version", AMQP_FIELD_KIND_I32); /* not a string: ignored */
    h[1].value.value.i32 = 2;
    h[2] = hdr("traceparent", AMQP_FIELD_KIND_BYTES); /* byte array: accepted */
    h[2].value.value.bytes = amqp_cstring_bytes("00-abc");
    raw_publish(conn, q, "o3", h, 3, "\0\1\2\0\3", 5);
    raw_publish(conn, q, NULL, NULL, 0, "", 0); /* no properties, empty body */
    h[0] = hdr("x-tablium-attempt", AMQP_FIELD_KIND_U64);
    h[0].value.value.u64 = UINT64_MAX;
    raw_publish(conn, q, "o5", h, 1, "\xff\xfe", 2);
    amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn);

    recorder *r = rec_new(TB_AMQP_ACK, NULL);
    tb_amqp_consumer *c = consumer(&co, r);
    ck_assert_msg(rec_wait(r, 6, false, 5000), "got %d of 6", rec_count(r));
    ck_assert_str_eq(r->id[0], "o0");
    ck_assert_int_eq(r->attempt[0], 1); /* a string is not an attempt count */
    ck_assert_int_eq(r->attempt[1], 3);
    ck_assert_int_eq(r->attempt[2], 4);
    ck_assert_int_eq(r->attempt[3], 1); /* negative */
    ck_assert(!r->det[3].has_version);
    ck_assert_str_eq(r->det[3].trace, "00-abc");
    ck_assert_uint_eq(r->det[3].len, 5);
    ck_assert_int_eq(memcmp(r->det[3].body, "\0\1\2\0\3", 5), 0);
    ck_assert(!r->det[4].has_id);
    ck_assert(!r->det[4].has_type);
    ck_assert_int_eq(r->attempt[4], 1);
    ck_assert_uint_eq(r->det[4].len, 0);
    ck_assert_int_eq(r->attempt[5], 2147483647); /* clamped */
    tb_amqp_consumer_free(c);
    ck_assert_int_eq(depth(q), 0);
    rec_free(r);
    purge(q, 5);
}
END_TEST

START_TEST(unsettled_deliveries_are_redelivered_after_consumer_free)
{
    char q[128];
    uname_(q, sizeof q, "requeue");
    const char *keys[] = {q};
    tb_amqp_consumer_opts co = consumer_opts(q, keys, 1);
    declare(&co);
    publish_n(NULL, q, "h", 10, NULL);
    recorder *a = rec_new(-1, NULL); /* holds everything */
    tb_amqp_consumer *ca = consumer(&co, a);
    ck_assert(rec_wait(a, 10, false, 5000));
    sleep_ms(100);
    ck_assert_int_eq(rec_count(a), 10);
    ck_assert_int_eq(a->n_held, 10);
    /* settle two of them: those are gone for good */
    tb_amqp_settle(ca, a->held[0], TB_AMQP_ACK, NULL);
    tb_amqp_settle(ca, a->held[1], TB_AMQP_ACK, NULL);
    tb_amqp_consumer_free(ca); /* the other 8 go back to the queue (and are freed) */
    ck_assert_msg(wait_depth(q, 8, 5000), "depth %ld", depth(q));
    recorder *b = rec_new(TB_AMQP_ACK, NULL);
    tb_amqp_consumer *cb = consumer(&co, b);
    ck_assert(rec_wait(b, 8, false, 5000));
    for (int i = 0; i < 8; i++) {
        char id[16];
        snprintf(id, sizeof id, "h%d", i + 2);
        ck_assert_str_eq(b->id[i], id);
        ck_assert(b->redelivered[i]);
        ck_assert_int_eq(b->attempt[i], 1);
    }
    tb_amqp_consumer_free(cb);
    ck_assert_int_eq(depth(q), 0);
    rec_free(a);
    rec_free(b);
    purge(q, 5);
}
END_TEST

START_TEST(bad_options_and_unreachable_broker)
{
    tb_error e = TB_ERROR_INIT;
    tb_amqp_opts o = {.url = NULL};
    ck_assert_ptr_null(tb_amqp_pub_new(&o, &e));
    ck_assert_int_eq(e.code, TB_EINVAL);
    o.url = "http://nope";
    ck_assert_ptr_null(tb_amqp_pub_new(&o, &e));
    ck_assert_int_eq(e.code, TB_EINVAL);
    tb_amqp_consumer_opts co = {.conn = conn_opts(), .queue = NULL};
    ck_assert_ptr_null(tb_amqp_consumer_new(&co, on_delivery, NULL, &e));
    ck_assert_int_eq(e.code, TB_EINVAL);
    ck_assert_int_eq(depth("tbt.no.such.queue.anywhere"), TB_ENOTFOUND);
    /* nobody listens on port 1: the consumer gives up after publish_timeout_ms */
    co.queue = "tbt.unreachable";
    co.conn.url = "amqp://guest:guest@127.0.0.1:1/";
    co.conn.publish_timeout_ms = 300;
    uint64_t t0 = now_ms();
    ck_assert_ptr_null(tb_amqp_consumer_new(&co, on_delivery, NULL, &e));
    ck_assert_int_eq(e.code, TB_ECONN);
    ck_assert_msg(now_ms() - t0 < 3000, "gave up after %llu ms",
                  (unsigned long long)(now_ms() - t0));
    /* a publisher to a broker that is down: publishes time out, then TB_ESTATE at free */
    o = co.conn;
    o.publish_timeout_ms = 200;
    o.window = 4;
    tb_amqp_pub *p = tb_amqp_pub_new(&o, &e);
    ck_assert_ptr_nonnull(p);
    confirms *cf = calloc(1, sizeof *cf);
    ticket tk[6];
    for (int i = 0; i < 4; i++) {
        tk[i] = (ticket){cf, i};
        ck_assert_int_eq(tb_amqp_publish(p, NULL, "k", NULL, "x", 1, on_confirm, &tk[i]), 0);
    }
    tk[4] = (ticket){cf, 4};
    /* the window is full: this one waits until the first ones time out (its own deadline is
     * the same, so it may time out too) */
    uint64_t t1 = now_ms();
    int rc4 = tb_amqp_publish(p, NULL, "k", NULL, "x", 1, on_confirm, &tk[4]);
    ck_assert_msg(now_ms() - t1 >= 150, "a full window did not block");
    ck_assert_msg(rc4 == 0 || rc4 == TB_ETIMEDOUT, "rc %d", rc4);
    if (rc4 != 0)
        atomic_store(&cf->rc[4], TB_ETIMEDOUT);
    ck_assert_int_eq(tb_amqp_pub_flush(p, 2000), 0);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(atomic_load(&cf->rc[i]), TB_ETIMEDOUT);
    tk[5] = (ticket){cf, 5};
    ck_assert_int_eq(tb_amqp_publish(p, NULL, "k", NULL, "x", 1, on_confirm, &tk[5]), 0);
    ck_assert_int_eq(tb_amqp_pub_flush(p, 0), TB_ETIMEDOUT);
    ck_assert_uint_eq(tb_amqp_pub_connects(p), 0);
    tb_amqp_pub_free(p);
    ck_assert_int_eq(atomic_load(&cf->rc[5]), TB_ESTATE);
    free(cf);
    tb_error_deinit(&e);
}
END_TEST

START_TEST(idle_connections_keep_their_heartbeats)
{
    char q[128];
    uname_(q, sizeof q, "heartbeat");
    const char *keys[] = {q};
    tb_amqp_consumer_opts co = consumer_opts(q, keys, 1);
    co.conn.heartbeat_s = 1; /* the broker closes a connection silent for 2 heartbeats */
    recorder *r = rec_new(TB_AMQP_ACK, NULL);
    tb_amqp_consumer *c = consumer(&co, r);
    tb_amqp_opts o = conn_opts();
    o.heartbeat_s = 1;
    tb_error e = TB_ERROR_INIT;
    tb_amqp_pub *p = tb_amqp_pub_new(&o, &e);
    ck_assert_ptr_nonnull(p);
    confirms *cf = calloc(1, sizeof *cf);
    ticket tk[2] = {{cf, 0}, {cf, 1}};
    ck_assert_int_eq(tb_amqp_publish(p, NULL, q, NULL, "a", 1, on_confirm, &tk[0]), 0);
    ck_assert_int_eq(tb_amqp_pub_flush(p, 5000), 0);
    sleep_ms(3500); /* idle */
    ck_assert_int_eq(tb_amqp_publish(p, NULL, q, NULL, "b", 1, on_confirm, &tk[1]), 0);
    ck_assert_int_eq(tb_amqp_pub_flush(p, 5000), 0);
    ck_assert_int_eq(atomic_load(&cf->ok), 2);
    ck_assert(rec_wait(r, 2, false, 5000));
    ck_assert_uint_eq(tb_amqp_pub_connects(p), 1);
    ck_assert_uint_eq(tb_amqp_consumer_connects(c), 1);
    tb_amqp_pub_free(p);
    tb_amqp_consumer_free(c);
    free(cf);
    rec_free(r);
    tb_error_deinit(&e);
    purge(q, 5);
}
END_TEST

/* ---- broker restart while publishing and consuming ---- */

#define RESTART_N 2000

typedef struct pub_run {
    tb_amqp_pub *p;
    const char *rk;
    confirms *cf;
    ticket *tk;
    int rc_publish;
    uint64_t longest_call_ms;
    atomic_int published;
    atomic_bool restarting; /* set just before the restart begins */
} pub_run;

static void *publish_paced(void *arg)
{
    pub_run *run = arg;
    for (int i = 0; i < RESTART_N; i++) {
        char id[16];
        snprintf(id, sizeof id, "p%d", i);
        tb_amqp_props pr = {.message_id = id};
        run->tk[i] = (ticket){run->cf, i};
        uint64_t t0 = now_ms();
        int rc =
            tb_amqp_publish(run->p, NULL, run->rk, &pr, id, strlen(id), on_confirm, &run->tk[i]);
        uint64_t dt = now_ms() - t0;
        if (dt > run->longest_call_ms)
            run->longest_call_ms = dt;
        if (rc != 0) {
            run->rc_publish = rc;
            break;
        }
        atomic_fetch_add(&run->published, 1);
        /* 300 quickly, then wait until the broker is down (stopped, not only asked to stop:
         * rabbitmqctl alone can take seconds on a loaded machine, and the broker confirms
         * meanwhile) and go on at ~200/s, so that the outage (the broker's start, seconds)
         * fills the window and publishes must wait */
        if (i == 299)
            while (!atomic_load(&run->restarting))
                sleep_ms(1);
        sleep_ms(i < 300 ? 1 : 5);
    }
    return NULL;
}

static const char *script_path(void)
{
    static const char *cands[] = {"scripts/rabbitmq.sh", "../scripts/rabbitmq.sh",
                                  "../../scripts/rabbitmq.sh", "../../../scripts/rabbitmq.sh"};
    const char *env = getenv("TB_TEST_RABBITMQ_SCRIPT");
    if (env && access(env, X_OK) == 0)
        return env;
    for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++)
        if (access(cands[i], X_OK) == 0)
            return cands[i];
    return NULL;
}

START_TEST(broker_restart_loses_no_confirmed_message)
{
    const char *script = script_path();
    ck_assert_msg(script != NULL,
                  "scripts/rabbitmq.sh not found from %s (run from the repo root "
                  "or set TB_TEST_RABBITMQ_SCRIPT)",
                  getcwd((char[512]){0}, 512));
    char q[128];
    uname_(q, sizeof q, "restart");
    const char *keys[] = {q};
    tb_amqp_consumer_opts co = consumer_opts(q, keys, 1);
    co.prefetch = 100;
    recorder *r = rec_new(TB_AMQP_ACK, NULL);
    tb_amqp_consumer *c = consumer(&co, r);
    pub_run run = {.p = publisher(200, 60000),
                   .rk = q,
                   .cf = calloc(1, sizeof(confirms)),
                   .tk = calloc(RESTART_N, sizeof(ticket))};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, publish_paced, &run), 0);
    while (atomic_load(&run.cf->ok) < 300)
        sleep_ms(5);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s stop '%s' >/dev/null", script, RMQ_DIR);
    uint64_t t0 = now_ms();
    int sys = system(cmd);
    ck_assert_msg(sys == 0, "`%s` failed (%d)", cmd, sys);
    atomic_store(&run.restarting, true);
    snprintf(cmd, sizeof cmd, "%s start '%s' >/dev/null", script, RMQ_DIR);
    sys = system(cmd);
    uint64_t outage = now_ms() - t0;
    ck_assert_msg(sys == 0, "`%s` failed (%d)", cmd, sys);
    int during = atomic_load(&run.published);
    pthread_join(th, NULL);
    ck_assert_int_eq(run.rc_publish, 0);
    ck_assert_int_eq(atomic_load(&run.published), RESTART_N);
    ck_assert_int_eq(tb_amqp_pub_flush(run.p, 60000), 0);
    ck_assert_int_eq(atomic_load(&run.cf->total), RESTART_N);
    int confirmed = atomic_load(&run.cf->ok);
    ck_assert_int_eq(confirmed, RESTART_N); /* the outage is shorter than publish_timeout_ms */
    ck_assert_msg(run.longest_call_ms >= 500,
                  "publishes never waited for the broker (longest "
                  "call %llu ms, outage %llu ms)",
                  (unsigned long long)run.longest_call_ms, (unsigned long long)outage);
    ck_assert_msg(during < RESTART_N, "all publishes done before the restart finished");
    ck_assert_uint_eq(tb_amqp_pub_connects(run.p), 2);
    /* every confirmed message arrives (deduplicated by id) */
    bool all = rec_wait(r, confirmed, true, 30000);
    int losses = 0;
    for (int i = 0; i < RESTART_N; i++)
        if (atomic_load(&run.cf->rc[i]) == 1 && !r->seen[i])
            losses++;
    ck_assert_msg(all && losses == 0, "%d confirmed messages lost (%d unique of %d delivered)",
                  losses, r->unique, r->n);
    ck_assert_uint_eq(tb_amqp_consumer_connects(c), 2);
    fprintf(stderr,
            "test_amqp: restart took %llu ms; %d deliveries for %d messages; longest publish "
            "call %llu ms\n",
            (unsigned long long)outage, r->n, RESTART_N, (unsigned long long)run.longest_call_ms);
    tb_amqp_consumer_free(c);
    tb_amqp_pub_free(run.p);
    ck_assert_int_eq(depth(q), 0);
    free(run.cf);
    free(run.tk);
    rec_free(r);
    purge(q, 5);
}
END_TEST

int main(void)
{
    URL = getenv("TB_TEST_AMQP_URL");
    RMQ_DIR = getenv("TB_TEST_RABBITMQ_DIR");
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    snprintf(RUN, sizeof RUN, "%d-%04x", (int)getpid(), rand_r(&seed) & 0xffff);
    snprintf(EXCHANGE, sizeof EXCHANGE, "tbt.%s.events", RUN);
    if (URL == NULL || RMQ_DIR == NULL)
        fprintf(stderr, "test_amqp: TB_TEST_AMQP_URL and TB_TEST_RABBITMQ_DIR must be set "
                        "(scripts/rabbitmq.sh start DIR prints the URL)\n");
    Suite *s = suite_create("amqp");
    TCase *tc = tcase_create("amqp");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, publish_5000_confirmed_through_the_window);
    tcase_add_test(tc, consumer_gets_messages_in_order_with_their_properties);
    tcase_add_test(tc, retry_backs_off_then_dead_letters_then_replays);
    tcase_add_test(tc, dead_goes_straight_to_the_dlq_and_replay_picks);
    tcase_add_test(tc, without_dlq_exhausted_messages_are_dropped);
    tcase_add_test(tc, unroutable_and_unknown_exchange_report_enotfound);
    tcase_add_test(tc, odd_headers_and_binary_bodies_are_tolerated);
    tcase_add_test(tc, unsettled_deliveries_are_redelivered_after_consumer_free);
    tcase_add_test(tc, bad_options_and_unreachable_broker);
    tcase_add_test(tc, idle_connections_keep_their_heartbeats);
    tcase_add_test(tc, broker_restart_loses_no_confirmed_message);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
