/* Unit tests of runtime/events/redis.c, the Redis Pub/Sub transport, against a real
 * redis-server started by scripts/redis.sh:
 *
 *   scripts/redis.sh start /tmp/tb-redis
 *   TB_TEST_REDIS_URL=redis://127.0.0.1:PORT TB_TEST_REDIS_DIR=/tmp/tb-redis ./test_redis
 *
 * Without TB_TEST_REDIS_URL the URL is read from $TB_TEST_REDIS_DIR/env; with neither, the tests
 * fail. The restart tests run `scripts/redis.sh kill|restart $TB_TEST_REDIS_DIR`
 * (TB_TEST_REDIS_SCRIPT overrides the script's path), so that Redis must not be shared with
 * suites running at the same time. Each test leaves Redis running. A fake server covers the
 * replies a real Redis never sends. */
#include "../../runtime/events/tb_redis.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- environment ---- */

static const char *redis_dir(void)
{
    const char *d = getenv("TB_TEST_REDIS_DIR");
    ck_assert_msg(d && *d, "TB_TEST_REDIS_DIR is not set: set it to the DIR given to "
                           "`scripts/redis.sh start DIR` (the restart tests need it)");
    return d;
}

/* TB_TEST_REDIS_URL, else TB_REDIS_URL from $TB_TEST_REDIS_DIR/env (what redis.sh wrote). */
static const char *redis_url(void)
{
    static char from_file[512];
    const char *u = getenv("TB_TEST_REDIS_URL");
    if (u && *u)
        return u;
    const char *d = getenv("TB_TEST_REDIS_DIR");
    if (d && *d) {
        char path[4096], line[512];
        snprintf(path, sizeof path, "%s/env", d);
        FILE *f = fopen(path, "r");
        while (f && fgets(line, sizeof line, f)) {
            if (strncmp(line, "TB_REDIS_URL=", 13) == 0) {
                line[strcspn(line, "\r\n")] = '\0';
                snprintf(from_file, sizeof from_file, "%s", line + 13);
            }
        }
        if (f)
            fclose(f);
        if (from_file[0])
            return from_file;
    }
    ck_abort_msg("TB_TEST_REDIS_URL is not set: start a server with `scripts/redis.sh start DIR`, "
                 "then set TB_TEST_REDIS_DIR=DIR (and TB_TEST_REDIS_URL to the URL it prints, or "
                 "let the test read DIR/env)");
    return NULL;
}

static const char *script_path(void)
{
    static char path[4096];
    const char *env = getenv("TB_TEST_REDIS_SCRIPT");
    if (env && *env)
        return env;
    if (access("scripts/redis.sh", X_OK) == 0)
        return "scripts/redis.sh";
    /* tests/unit/test_redis.c -> scripts/redis.sh */
    snprintf(path, sizeof path, "%s", __FILE__);
    char *slash = strrchr(path, '/');
    if (slash)
        snprintf(slash + 1, sizeof path - (size_t)(slash + 1 - path), "../../scripts/redis.sh");
    return path;
}

static void redis_ctl(const char *verb)
{
    char cmd[8192];
    ck_assert_msg(access(script_path(), X_OK) == 0,
                  "%s not found: run from the source tree or set TB_TEST_REDIS_SCRIPT",
                  script_path());
    snprintf(cmd, sizeof cmd, "'%s' %s '%s' >/dev/null", script_path(), verb, redis_dir());
    int rc = system(cmd);
    ck_assert_msg(rc == 0, "`%s` failed (status %d)", cmd, rc);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Channel names unique to this process, so concurrent runs do not see each other. */
static const char *chan(const char *name)
{
    static char bufs[8][128];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof bufs[0], "tb-test-%ld-%s", (long)getpid(), name);
    return b;
}

static tb_redis_opts test_opts(void)
{
    tb_redis_opts o = {
        .url = redis_url(), .reconnect_min_ms = 20, .reconnect_max_ms = 200, .timeout_ms = 1000};
    return o;
}

/* ---- a recording subscriber callback ---- */

#define REC_MAX 64

typedef struct rec_msg {
    char channel[128];
    char *body;
    size_t len;
} rec_msg;

typedef struct rec {
    pthread_mutex_t mu;
    int magic;
    size_t n;
    rec_msg m[REC_MAX];
} rec;

static void rec_init(rec *r, int magic)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    r->magic = magic;
}

static void rec_deinit(rec *r)
{
    for (size_t i = 0; i < r->n && i < REC_MAX; i++)
        free(r->m[i].body);
    pthread_mutex_destroy(&r->mu);
}

static void rec_deliver(void *user, const char *channel, const void *body, size_t len)
{
    rec *r = user;
    pthread_mutex_lock(&r->mu);
    if (r->n < REC_MAX) {
        rec_msg *m = &r->m[r->n];
        snprintf(m->channel, sizeof m->channel, "%s", channel);
        m->body = malloc(len + 1);
        memcpy(m->body, body, len);
        m->len = len;
    }
    r->n++;
    pthread_mutex_unlock(&r->mu);
}

static size_t rec_count(rec *r)
{
    pthread_mutex_lock(&r->mu);
    size_t n = r->n;
    pthread_mutex_unlock(&r->mu);
    return n;
}

static bool rec_wait(rec *r, size_t n, int ms)
{
    int64_t until = now_ms() + ms;
    while (rec_count(r) < n && now_ms() < until)
        sleep_ms(2);
    return rec_count(r) >= n;
}

/* Index of the first message whose body starts with prefix, or -1. */
static int rec_find(rec *r, const char *prefix)
{
    int found = -1;
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->n && i < REC_MAX; i++) {
        if (r->m[i].len >= strlen(prefix) && memcmp(r->m[i].body, prefix, strlen(prefix)) == 0) {
            found = (int)i;
            break;
        }
    }
    pthread_mutex_unlock(&r->mu);
    return found;
}

static void assert_msg(rec *r, size_t i, const char *channel, const void *body, size_t len)
{
    ck_assert_uint_gt(r->n, i);
    ck_assert_str_eq(r->m[i].channel, channel);
    ck_assert_uint_eq(r->m[i].len, len);
    ck_assert_msg(memcmp(r->m[i].body, body, len) == 0, "message %zu on %s: wrong bytes", i,
                  channel);
}

/* ---- options ---- */

START_TEST(bad_urls_and_options_are_einval_with_a_message)
{
    static const char *bad[] = {
        "",
        "http://127.0.0.1:6379",
        "redis://",
        "redis://:6379",
        "redis://h:0",
        "redis://h:65536",
        "redis://h:99999999999",
        "redis://h:12a",
        "redis://h:",
        "redis://user:hunter2@h:6379",
        "rediss://h:6379",
        "redis://h:6379?db=1",
        "redis://h:6379/abc",
        "redis://[::1",
        "redis://[::1]x",
        "redis://h h:1",
    };
    tb_error e = TB_ERROR_INIT;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tb_redis_opts o = {.url = bad[i]};
        ck_assert_msg(tb_redis_pub_new(&o, &e) == NULL, "accepted %s", bad[i]);
        ck_assert_int_eq(e.code, TB_EINVAL);
        ck_assert_msg(strlen(e.message) > 10, "no message for %s", bad[i]);
        ck_assert_msg(strstr(e.message, "hunter2") == NULL, "password echoed: %s", e.message);
    }
    tb_redis_opts none = {.url = NULL};
    ck_assert_ptr_null(tb_redis_pub_new(&none, &e));
    ck_assert_int_eq(e.code, TB_EINVAL);
    ck_assert_ptr_null(tb_redis_pub_new(NULL, &e));
    ck_assert_int_eq(e.code, TB_EINVAL);
    tb_redis_opts neg = {.url = "redis://127.0.0.1:6379", .timeout_ms = -1};
    ck_assert_ptr_null(tb_redis_pub_new(&neg, &e));
    ck_assert_int_eq(e.code, TB_EINVAL);

    /* Valid: the publisher connects lazily, so nothing needs to listen there. */
    static const char *good[] = {"redis://127.0.0.1", "redis://localhost:1/0", "redis://[::1]:6379",
                                 "redis://my-host.example_1:6380/15"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        tb_redis_opts o = {.url = good[i]};
        tb_redis_pub *p = tb_redis_pub_new(&o, &e);
        ck_assert_msg(p != NULL, "rejected %s: %s", good[i], e.message);
        tb_redis_pub_free(p);
    }

    rec r;
    rec_init(&r, 1);
    const char *chs[] = {"a"};
    tb_redis_opts o = {.url = "redis://127.0.0.1:6379"};
    ck_assert_ptr_null(tb_redis_sub_new(&o, chs, 1, NULL, &r, &e));
    ck_assert_int_eq(e.code, TB_EINVAL);
    ck_assert_ptr_null(tb_redis_sub_new(&o, chs, 0, rec_deliver, &r, &e));
    ck_assert_int_eq(e.code, TB_EINVAL);
    tb_redis_opts bad_sub = {.url = "redis://h:x"};
    ck_assert_ptr_null(tb_redis_sub_new(&bad_sub, chs, 1, rec_deliver, &r, &e));
    ck_assert_int_eq(e.code, TB_EINVAL);
    rec_deinit(&r);
    tb_redis_pub_free(NULL);
    tb_redis_sub_free(NULL);
    ck_assert_int_eq(tb_redis_publish(NULL, "c", "x", 1), TB_EINVAL);
    tb_error_deinit(&e);
}
END_TEST

/* ---- ordering, volume, binary payloads ---- */

#define ORDER_THREADS 2
#define ORDER_PER_THREAD 10000

/* Body of message seq from thread tid: [tid][seq, 4 bytes LE][filler], 5..260 bytes, with NUL
 * bytes, CR LF and 0xff in the filler. */
static size_t order_body(unsigned char *b, int tid, uint32_t seq)
{
    size_t len = 5 + (seq * 7u + (unsigned)tid * 13u) % 256;
    b[0] = (unsigned char)tid;
    memcpy(b + 1, &seq, 4);
    for (size_t i = 5; i < len; i++)
        b[i] = (i % 3 == 0) ? 0 : (unsigned char)(seq * 31u + i * 17u + (unsigned)tid);
    if (len > 8) {
        b[6] = '\r';
        b[7] = '\n';
        b[8] = 0xff;
    }
    return len;
}

typedef struct order_state {
    pthread_mutex_t mu;
    uint32_t next[ORDER_THREADS];
    size_t received, out_of_order, corrupt, wrong_channel;
    const char *channel;
} order_state;

static void order_deliver(void *user, const char *channel, const void *body, size_t len)
{
    order_state *st = user;
    unsigned char want[300];
    const unsigned char *b = body;
    pthread_mutex_lock(&st->mu);
    st->received++;
    if (strcmp(channel, st->channel) != 0)
        st->wrong_channel++;
    if (len < 5 || b[0] >= ORDER_THREADS) {
        st->corrupt++;
    } else {
        uint32_t seq;
        memcpy(&seq, b + 1, 4);
        if (seq != st->next[b[0]])
            st->out_of_order++;
        st->next[b[0]] = seq + 1;
        size_t wl = order_body(want, b[0], seq);
        if (wl != len || memcmp(want, b, len) != 0)
            st->corrupt++;
    }
    pthread_mutex_unlock(&st->mu);
}

typedef struct order_pub {
    tb_redis_pub *p;
    const char *channel;
    int tid;
    int failures;
} order_pub;

static void *order_publisher(void *arg)
{
    order_pub *op = arg;
    unsigned char b[300];
    for (uint32_t seq = 0; seq < ORDER_PER_THREAD; seq++) {
        size_t len = order_body(b, op->tid, seq);
        if (tb_redis_publish(op->p, op->channel, b, len) != 0)
            op->failures++;
    }
    return NULL;
}

START_TEST(twenty_thousand_from_two_threads_arrive_complete_in_order_and_intact)
{
    tb_error e = TB_ERROR_INIT;
    tb_redis_opts o = test_opts();
    order_state st = {.channel = chan("order")};
    pthread_mutex_init(&st.mu, NULL);
    const char *chs[] = {st.channel};
    tb_redis_sub *s = tb_redis_sub_new(&o, chs, 1, order_deliver, &st, &e);
    ck_assert_msg(s != NULL, "subscribe: %s", e.message);
    tb_redis_pub *p = tb_redis_pub_new(&o, &e);
    ck_assert_ptr_nonnull(p);

    pthread_t th[ORDER_THREADS];
    order_pub op[ORDER_THREADS];
    for (int i = 0; i < ORDER_THREADS; i++) {
        op[i] = (order_pub){.p = p, .channel = st.channel, .tid = i};
        ck_assert_int_eq(pthread_create(&th[i], NULL, order_publisher, &op[i]), 0);
    }
    for (int i = 0; i < ORDER_THREADS; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(op[i].failures, 0);
    }
    ck_assert_int_eq(tb_redis_pub_flush(p), 0);

    const size_t total = ORDER_THREADS * ORDER_PER_THREAD;
    int64_t until = now_ms() + 10000;
    tb_redis_sub_stats ss;
    do {
        tb_redis_sub_stats_get(s, &ss);
        if (ss.messages >= total)
            break;
        sleep_ms(5);
    } while (now_ms() < until);
    sleep_ms(50); /* anything extra would show up now */
    tb_redis_sub_stats_get(s, &ss);
    pthread_mutex_lock(&st.mu);
    ck_assert_uint_eq(st.received, total);
    ck_assert_uint_eq(st.out_of_order, 0);
    ck_assert_uint_eq(st.corrupt, 0);
    ck_assert_uint_eq(st.wrong_channel, 0);
    for (int i = 0; i < ORDER_THREADS; i++)
        ck_assert_uint_eq(st.next[i], ORDER_PER_THREAD);
    pthread_mutex_unlock(&st.mu);
    ck_assert_uint_eq(ss.messages, total);
    ck_assert_int_eq(ss.connected, 1);
    ck_assert_uint_eq(ss.reconnects, 0);
    ck_assert_int_eq(ss.last_gap_ms, 0);

    /* A lone publish is written by the background flusher, without any flush call. */
    unsigned char b[300];
    size_t len = order_body(b, 0, ORDER_PER_THREAD);
    ck_assert_int_eq(tb_redis_publish(p, st.channel, b, len), 0);
    until = now_ms() + 2000;
    do {
        tb_redis_sub_stats_get(s, &ss);
        if (ss.messages > total)
            break;
        sleep_ms(1);
    } while (now_ms() < until);
    ck_assert_uint_eq(ss.messages, total + 1);

    tb_redis_pub_free(p);
    tb_redis_sub_free(s);
    pthread_mutex_destroy(&st.mu);
    tb_error_deinit(&e);
}
END_TEST

/* ---- routing ---- */

START_TEST(channels_route_to_the_subscribers_and_callback_args_that_asked)
{
    tb_error e = TB_ERROR_INIT;
    tb_redis_opts o = test_opts();
    char c1[128], c2[128], c3[128], c4[128];
    snprintf(c1, sizeof c1, "%s", chan("route one"));
    snprintf(c2, sizeof c2, "%s", chan("route:two"));
    snprintf(c3, sizeof c3, "%s", chan("route-3"));
    snprintf(c4, sizeof c4, "%s", chan("route-4"));
    rec ra, rb;
    rec_init(&ra, 0xA);
    rec_init(&rb, 0xB);
    const char *cha[] = {c1, c2};
    const char *chb[] = {c2, c3};
    tb_redis_sub *sa = tb_redis_sub_new(&o, cha, 2, rec_deliver, &ra, &e);
    ck_assert_msg(sa != NULL, "%s", e.message);
    tb_redis_sub *sb = tb_redis_sub_new(&o, chb, 2, rec_deliver, &rb, &e);
    ck_assert_msg(sb != NULL, "%s", e.message);
    tb_redis_pub *p = tb_redis_pub_new(&o, &e);
    ck_assert_ptr_nonnull(p);

    size_t big_len = 1 << 20;
    char *big = malloc(big_len);
    for (size_t i = 0; i < big_len; i++)
        big[i] = (char)(i * 7 + (i >> 11));
    ck_assert_int_eq(tb_redis_publish(p, c1, "to-1", 4), 0);
    ck_assert_int_eq(tb_redis_publish(p, c2, "to-2", 4), 0);
    ck_assert_int_eq(tb_redis_publish(p, c3, "to-3", 4), 0);
    ck_assert_int_eq(tb_redis_publish(p, c4, "to-4", 4), 0);
    ck_assert_int_eq(tb_redis_publish(p, c1, NULL, 0), 0); /* empty body */
    ck_assert_int_eq(tb_redis_publish(p, c3, big, big_len), 0);
    ck_assert_int_eq(tb_redis_pub_flush(p), 0);

    ck_assert(rec_wait(&ra, 3, 5000));
    ck_assert(rec_wait(&rb, 3, 5000));
    sleep_ms(50);
    ck_assert_int_eq(ra.magic, 0xA);
    ck_assert_int_eq(rb.magic, 0xB);
    ck_assert_uint_eq(rec_count(&ra), 3);
    ck_assert_uint_eq(rec_count(&rb), 3);
    assert_msg(&ra, 0, c1, "to-1", 4);
    assert_msg(&ra, 1, c2, "to-2", 4);
    assert_msg(&ra, 2, c1, "", 0);
    assert_msg(&rb, 0, c2, "to-2", 4);
    assert_msg(&rb, 1, c3, "to-3", 4);
    assert_msg(&rb, 2, c3, big, big_len);

    tb_redis_sub_stats ss;
    tb_redis_sub_stats_get(sa, &ss);
    ck_assert_uint_eq(ss.messages, 3);
    tb_redis_pub_free(p);
    tb_redis_sub_free(sa);
    tb_redis_sub_free(sb);
    free(big);
    rec_deinit(&ra);
    rec_deinit(&rb);
    tb_error_deinit(&e);
}
END_TEST

/* ---- Redis down ---- */

START_TEST(publish_while_redis_is_down_fails_fast_and_recovers_after_restart)
{
    tb_error e = TB_ERROR_INIT;
    tb_redis_opts o = test_opts();
    const char *c = chan("down");
    tb_redis_pub *p = tb_redis_pub_new(&o, &e);
    tb_redis_pub *idle = tb_redis_pub_new(&o, &e);
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_nonnull(idle);
    ck_assert_int_eq(tb_redis_publish(p, c, "up", 2), 0);
    ck_assert_int_eq(tb_redis_pub_flush(p), 0);
    ck_assert_int_eq(tb_redis_publish(idle, c, "up", 2), 0);
    ck_assert_int_eq(tb_redis_pub_flush(idle), 0);

    redis_ctl("kill");

    /* The loss shows within a few calls (the flusher writes within 1 ms), and no call hangs. */
    int rc = 0, calls = 0;
    int64_t slowest = 0, start = now_ms();
    while (now_ms() - start < 2000) {
        int64_t t0 = now_ms();
        rc = tb_redis_publish(p, c, "while-down", 10);
        int64_t dt = now_ms() - t0;
        slowest = dt > slowest ? dt : slowest;
        calls++;
        if (rc == TB_ECONN)
            break;
        ck_assert_int_eq(rc, 0);
        sleep_ms(1);
    }
    ck_assert_msg(rc == TB_ECONN, "publish still returns %d after %d calls with Redis down", rc,
                  calls);
    ck_assert_msg(now_ms() - start < 500, "took %lld ms to notice", (long long)(now_ms() - start));
    ck_assert_int_lt(slowest, 200);

    /* While down: every call fails at once (no connect attempt per call); flush reports it. */
    int64_t t0 = now_ms();
    for (int i = 0; i < 2000; i++)
        ck_assert_int_eq(tb_redis_publish(p, c, "x", 1), TB_ECONN);
    ck_assert_int_eq(tb_redis_pub_flush(p), TB_ECONN);
    ck_assert_int_lt(now_ms() - t0, 500);

    /* A subscriber cannot start while Redis is down: NULL and TB_ECONN, quickly. */
    rec r;
    rec_init(&r, 1);
    const char *chs[] = {c};
    t0 = now_ms();
    ck_assert_ptr_null(tb_redis_sub_new(&o, chs, 1, rec_deliver, &r, &e));
    ck_assert_int_eq(e.code, TB_ECONN);
    ck_assert_int_lt(now_ms() - t0, 1500);

    /* Freeing a publisher that has not noticed the loss yet, with Redis down, does not hang. */
    t0 = now_ms();
    tb_redis_pub_free(idle);
    ck_assert_int_lt(now_ms() - t0, 1500);

    redis_ctl("restart");

    tb_redis_sub *s = tb_redis_sub_new(&o, chs, 1, rec_deliver, &r, &e);
    ck_assert_msg(s != NULL, "%s", e.message);
    /* The publisher reconnects by itself on a later call (backoff is at most 200 ms here). */
    rc = TB_ECONN;
    int64_t until = now_ms() + 3000;
    while (now_ms() < until) {
        rc = tb_redis_publish(p, c, "back", 4);
        if (rc == 0 && (rc = tb_redis_pub_flush(p)) == 0)
            break;
        sleep_ms(20);
    }
    ck_assert_int_eq(rc, 0);
    ck_assert(rec_wait(&r, 1, 3000));
    ck_assert_int_ge(rec_find(&r, "back"), 0);
    tb_redis_pub_free(p);
    tb_redis_sub_free(s);
    rec_deinit(&r);
    tb_error_deinit(&e);
}
END_TEST

/* Reads what was written to a file since offset. */
static char *read_from(const char *path, long offset)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long end = ftell(f);
    if (end < offset)
        offset = 0;
    fseek(f, offset, SEEK_SET);
    char *s = calloc(1, (size_t)(end - offset) + 1);
    size_t n = fread(s, 1, (size_t)(end - offset), f);
    s[n] = '\0';
    fclose(f);
    return s;
}

START_TEST(subscriber_comes_back_by_itself_after_a_restart_and_counts_the_gap)
{
    tb_error e = TB_ERROR_INIT;
    tb_redis_opts o = test_opts();
    const char *c = chan("restart");
    rec r;
    rec_init(&r, 1);
    const char *chs[] = {c};
    tb_redis_sub *s = tb_redis_sub_new(&o, chs, 1, rec_deliver, &r, &e);
    ck_assert_msg(s != NULL, "%s", e.message);
    tb_redis_pub *p = tb_redis_pub_new(&o, &e);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(tb_redis_publish(p, c, "before", 6), 0);
    ck_assert_int_eq(tb_redis_pub_flush(p), 0);
    ck_assert(rec_wait(&r, 1, 3000));

    /* Capture our stderr (the JSON log lines) in a file for the duration. */
    char logpath[4096];
    snprintf(logpath, sizeof logpath, "%s/test_redis.log", redis_dir());
    int saved = dup(2);
    int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    dup2(fd, 2);
    close(fd);

    int64_t t0 = now_ms();
    redis_ctl("restart");
    tb_redis_sub_stats ss;
    int64_t until = now_ms() + 5000;
    do {
        tb_redis_sub_stats_get(s, &ss);
        if (ss.connected && ss.reconnects >= 1)
            break;
        sleep_ms(5);
    } while (now_ms() < until);
    int64_t elapsed = now_ms() - t0;

    /* The publisher reconnects as well; publish until the subscriber hears it (a message sent
     * before the subscriber resubscribed is lost: at-most-once). */
    int got = -1;
    until = now_ms() + 5000;
    for (int i = 0; got < 0 && now_ms() < until; i++) {
        char body[32];
        int n = snprintf(body, sizeof body, "after-%d", i);
        if (tb_redis_publish(p, c, body, (size_t)n) == 0)
            (void)tb_redis_pub_flush(p);
        sleep_ms(20);
        got = rec_find(&r, "after-");
    }

    dup2(saved, 2);
    close(saved);
    char *log = read_from(logpath, 0);

    ck_assert_int_eq(ss.connected, 1);
    ck_assert_uint_eq(ss.reconnects, 1);
    ck_assert_int_gt(ss.last_gap_ms, 0);
    ck_assert_msg(ss.last_gap_ms <= elapsed + 20, "gap %lld ms > %lld ms observed",
                  (long long)ss.last_gap_ms, (long long)elapsed);
    ck_assert_int_eq(ss.total_gap_ms, ss.last_gap_ms);
    ck_assert_msg(got >= 0, "no message received after the restart");
    ck_assert_ptr_nonnull(log);
    ck_assert_msg(strstr(log, "redis subscriber back") != NULL, "log: %s", log);
    ck_assert_msg(strstr(log, "\"gapMs\":") != NULL, "log: %s", log);
    ck_assert_msg(strstr(log, "\"reconnects\":1") != NULL, "log: %s", log);
    ck_assert_msg(strstr(log, "\"level\":\"warn\"") != NULL, "log: %s", log);
    free(log);

    tb_redis_sub_stats_get(s, &ss);
    ck_assert_uint_eq(ss.messages, rec_count(&r));
    tb_redis_pub_free(p);
    tb_redis_sub_free(s);
    rec_deinit(&r);
    tb_error_deinit(&e);
}
END_TEST

START_TEST(free_while_disconnected_does_not_hang)
{
    tb_error e = TB_ERROR_INIT;
    tb_redis_opts o = test_opts();
    o.reconnect_min_ms = 500; /* it is asleep in its backoff when freed */
    o.reconnect_max_ms = 5000;
    rec r;
    rec_init(&r, 1);
    const char *chs[] = {chan("free")};
    tb_redis_sub *s = tb_redis_sub_new(&o, chs, 1, rec_deliver, &r, &e);
    ck_assert_msg(s != NULL, "%s", e.message);
    tb_redis_pub *p = tb_redis_pub_new(&o, &e);
    ck_assert_int_eq(tb_redis_publish(p, chs[0], "x", 1), 0);

    redis_ctl("kill");
    tb_redis_sub_stats ss;
    int64_t until = now_ms() + 3000;
    do {
        tb_redis_sub_stats_get(s, &ss);
        if (!ss.connected)
            break;
        sleep_ms(5);
    } while (now_ms() < until);
    ck_assert_int_eq(ss.connected, 0);
    (void)tb_redis_publish(p, chs[0], "y", 1); /* queued or refused: either way, then freed */

    int64_t t0 = now_ms();
    tb_redis_sub_free(s);
    tb_redis_pub_free(p);
    ck_assert_int_lt(now_ms() - t0, 1000);
    redis_ctl("restart");
    rec_deinit(&r);
    tb_error_deinit(&e);
}
END_TEST

/* ---- replies a real Redis does not send ---- */

typedef struct fake_server {
    int lfd, port;
    atomic_bool stop;
    const char *const *scripts; /* what to send on the n-th connection, after its first read */
    size_t n_scripts;
    atomic_int accepted;
    pthread_t th;
} fake_server;

static void *fake_main(void *arg)
{
    fake_server *f = arg;
    int conns[8];
    int nc = 0;
    while (!atomic_load(&f->stop)) {
        struct pollfd pfd = {.fd = f->lfd, .events = POLLIN};
        if (poll(&pfd, 1, 20) <= 0)
            continue;
        int c = accept(f->lfd, NULL, NULL);
        if (c < 0)
            continue;
        int k = atomic_fetch_add(&f->accepted, 1);
        char buf[4096];
        struct pollfd cp = {.fd = c, .events = POLLIN};
        if (poll(&cp, 1, 2000) > 0 && read(c, buf, sizeof buf) > 0 && (size_t)k < f->n_scripts) {
            const char *s = f->scripts[k];
            ssize_t w = write(c, s, strlen(s));
            (void)w;
        }
        if (nc < 8)
            conns[nc++] = c; /* kept open until the end: the client decides to leave */
        else
            close(c);
    }
    for (int i = 0; i < nc; i++)
        close(conns[i]);
    return NULL;
}

static void fake_start(fake_server *f, const char *const *scripts, size_t n)
{
    memset(f, 0, sizeof *f);
    f->scripts = scripts;
    f->n_scripts = n;
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(f->lfd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(f->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(listen(f->lfd, 8), 0);
    socklen_t sl = sizeof sa;
    getsockname(f->lfd, (struct sockaddr *)&sa, &sl);
    f->port = ntohs(sa.sin_port);
    ck_assert_int_eq(pthread_create(&f->th, NULL, fake_main, f), 0);
}

static void fake_stop(fake_server *f)
{
    atomic_store(&f->stop, true);
    pthread_join(f->th, NULL);
    close(f->lfd);
}

#define CONFIRM "*3\r\n$9\r\nsubscribe\r\n$3\r\nodd\r\n:1\r\n"

/* A subscriber of channel "odd" recording into r, on a fake server playing scripts (one per
 * connection); o gets quick reconnects. */
static tb_redis_sub *sub_on_fake(fake_server *f, const char *const *scripts, size_t n,
                                 char url[64], tb_redis_opts *o, rec *r, tb_error *e)
{
    fake_start(f, scripts, n);
    snprintf(url, 64, "redis://127.0.0.1:%d", f->port);
    *o = (tb_redis_opts){
        .url = url, .reconnect_min_ms = 10, .reconnect_max_ms = 50, .timeout_ms = 1000};
    rec_init(r, 1);
    const char *chs[] = {"odd"};
    tb_redis_sub *s = tb_redis_sub_new(o, chs, 1, rec_deliver, r, e);
    ck_assert_msg(s != NULL, "%s", e->message);
    return s;
}

START_TEST(odd_replies_are_ignored_or_end_the_connection_without_crashing)
{
    static const char *const scripts[] = {
        CONFIRM "*3\r\n$7\r\nmessage\r\n$3\r\nodd\r\n:5\r\n"                  /* integer payload */
                "*2\r\n*1\r\n$1\r\nx\r\n$1\r\ny\r\n"                          /* nested array */
                "+OK\r\n"                                                     /* status */
                "*3\r\n$7\r\nmessage\r\n$3\r\nodd\r\n$-1\r\n"                 /* nil payload */
                "*0\r\n*-1\r\n$-1\r\n:7\r\n"                                  /* empty, nil, int */
                "*4\r\n$8\r\npmessage\r\n$1\r\n*\r\n$3\r\nodd\r\n$1\r\nq\r\n" /* not ours */
                "*3\r\n$7\r\nmessage\r\n$3\r\nodd\r\n$2\r\nok\r\n" /* the one to deliver */
                "-ERR boom\r\n",                                   /* ends this connection */
        CONFIRM "*3\r\n$7\r\nmessage\r\n$3\r\nodd\r\n$5\r\nagain\r\n"
                "!garbage\r\n", /* protocol error: ends this one too */
        CONFIRM "*3\r\n$7\r\nmessage\r\n$3\r\nodd\r\n$5\r\nthird\r\n",
    };
    fake_server f;
    char url[64];
    tb_redis_opts o;
    tb_error e = TB_ERROR_INIT;
    rec r;
    tb_redis_sub *s = sub_on_fake(&f, scripts, 3, url, &o, &r, &e);
    ck_assert(rec_wait(&r, 3, 5000));
    tb_redis_sub_stats ss;
    int64_t until = now_ms() + 3000;
    do {
        tb_redis_sub_stats_get(s, &ss);
        if (ss.reconnects >= 2 && ss.connected)
            break;
        sleep_ms(5);
    } while (now_ms() < until);
    sleep_ms(30);
    ck_assert_uint_eq(rec_count(&r), 3);
    assert_msg(&r, 0, "odd", "ok", 2);
    assert_msg(&r, 1, "odd", "again", 5);
    assert_msg(&r, 2, "odd", "third", 5);
    tb_redis_sub_stats_get(s, &ss);
    ck_assert_uint_eq(ss.reconnects, 2);
    ck_assert_int_eq(ss.connected, 1);
    ck_assert_uint_eq(ss.messages, 3);
    tb_redis_sub_free(s);
    rec_deinit(&r);
    fake_stop(&f);

    /* A publisher given a reply that cannot answer PUBLISH drops the connection: flush says so. */
    static const char *const pub_scripts[] = {"$5\r\nhello\r\n"};
    fake_start(&f, pub_scripts, 1);
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", f.port);
    tb_redis_pub *p = tb_redis_pub_new(&o, &e);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(tb_redis_publish(p, "odd", "x", 1), 0);
    ck_assert_int_eq(tb_redis_pub_flush(p), TB_ECONN);
    tb_redis_pub_free(p);
    fake_stop(&f);

    /* No SUBSCRIBE confirmation within timeout_ms: NULL and TB_ECONN, bounded. */
    static const char *const silent[] = {"+OK\r\n"};
    fake_start(&f, silent, 1);
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", f.port);
    o.timeout_ms = 300;
    int64_t t0 = now_ms();
    ck_assert_ptr_null(tb_redis_sub_new(&o, (const char *[]){"odd"}, 1, rec_deliver, &r, &e));
    ck_assert_int_eq(e.code, TB_ECONN);
    ck_assert_msg(strstr(e.message, "confirmation") != NULL, "%s", e.message);
    ck_assert_int_lt(now_ms() - t0, 1500);
    fake_stop(&f);
    tb_error_deinit(&e);
}
END_TEST

/* Replies no subscriber can need end the connection at once, before they are buffered whole:
 * an array longer than 1024 elements (a message has 3), a CR without its LF. */
START_TEST(hostile_replies_end_the_connection_before_they_are_buffered)
{
    static const char *const scripts[] = {
        CONFIRM "*99999999\r\n$1\r\nx\r\n",
        CONFIRM "+OK\rX\r\n",
        CONFIRM "*3\r\n$7\r\nmessage\r\n$3\r\nodd\r\n$4\r\nfine\r\n",
    };
    fake_server f;
    char url[64];
    tb_redis_opts o;
    tb_error e = TB_ERROR_INIT;
    rec r;
    tb_redis_sub *s = sub_on_fake(&f, scripts, 3, url, &o, &r, &e);
    ck_assert(rec_wait(&r, 1, 5000));
    tb_redis_sub_stats ss;
    tb_redis_sub_stats_get(s, &ss);
    ck_assert_uint_eq(ss.reconnects, 2);
    ck_assert_uint_eq(ss.messages, 1);
    assert_msg(&r, 0, "odd", "fine", 4);
    tb_redis_sub_free(s);
    rec_deinit(&r);
    fake_stop(&f);
    tb_error_deinit(&e);
}
END_TEST

/* Readiness (tb_redis_pub_up, tb_redis_sub_up): a publisher that has not connected yet counts as
 * up; after Redis goes away both say so and for how long; both come back by themselves when
 * Redis does, the publisher without anything being published. */
START_TEST(up_follows_the_connections_and_comes_back_without_traffic)
{
    tb_error e = TB_ERROR_INIT;
    tb_redis_opts o = test_opts();
    char why[256] = "";
    tb_redis_pub *p = tb_redis_pub_new(&o, &e);
    ck_assert_ptr_nonnull(p);
    ck_assert(tb_redis_pub_up(p, why, sizeof why)); /* lazy: no attempt yet */
    ck_assert(tb_redis_pub_up(NULL, why, sizeof why));
    const char *c = chan("up");
    ck_assert_int_eq(tb_redis_publish(p, c, "x", 1), 0);
    ck_assert_int_eq(tb_redis_pub_flush(p), 0);
    ck_assert(tb_redis_pub_up(p, why, sizeof why));
    rec r;
    rec_init(&r, 1);
    const char *chs[] = {c};
    tb_redis_sub *s = tb_redis_sub_new(&o, chs, 1, rec_deliver, &r, &e);
    ck_assert_msg(s != NULL, "%s", e.message);
    ck_assert(tb_redis_sub_up(s, why, sizeof why));

    redis_ctl("kill");
    int rc = 0;
    for (int64_t t0 = now_ms(); rc == 0 && now_ms() - t0 < 2000; sleep_ms(5))
        if ((rc = tb_redis_publish(p, c, "y", 1)) == 0)
            rc = tb_redis_pub_flush(p);
    ck_assert_int_eq(rc, TB_ECONN);
    why[0] = '\0';
    ck_assert(!tb_redis_pub_up(p, why, sizeof why));
    ck_assert_msg(strstr(why, "publisher disconnected for "), "why: %s", why);
    bool sub_down = false;
    for (int64_t t0 = now_ms(); !sub_down && now_ms() - t0 < 2000; sleep_ms(10))
        sub_down = !tb_redis_sub_up(s, why, sizeof why);
    ck_assert(sub_down);
    ck_assert_msg(strstr(why, "subscriber disconnected for "), "why: %s", why);

    redis_ctl("restart");
    bool pub_up = false, sub_up = false;
    for (int64_t t0 = now_ms(); !(pub_up && sub_up) && now_ms() - t0 < 3000; sleep_ms(10)) {
        pub_up = tb_redis_pub_up(p, why, sizeof why);
        sub_up = tb_redis_sub_up(s, why, sizeof why);
    }
    ck_assert_msg(pub_up && sub_up, "publisher %d, subscriber %d: %s", pub_up, sub_up, why);
    ck_assert_int_eq(tb_redis_publish(p, c, "z", 1), 0); /* no failed call first */
    ck_assert_int_eq(tb_redis_pub_flush(p), 0);
    tb_redis_sub_free(s);
    tb_redis_pub_free(p);
    rec_deinit(&r);
    tb_error_deinit(&e);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("redis");
    TCase *tc = tcase_create("redis");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, bad_urls_and_options_are_einval_with_a_message);
    tcase_add_test(tc, twenty_thousand_from_two_threads_arrive_complete_in_order_and_intact);
    tcase_add_test(tc, channels_route_to_the_subscribers_and_callback_args_that_asked);
    tcase_add_test(tc, odd_replies_are_ignored_or_end_the_connection_without_crashing);
    tcase_add_test(tc, hostile_replies_end_the_connection_before_they_are_buffered);
    tcase_add_test(tc, publish_while_redis_is_down_fails_fast_and_recovers_after_restart);
    tcase_add_test(tc, subscriber_comes_back_by_itself_after_a_restart_and_counts_the_gap);
    tcase_add_test(tc, free_while_disconnected_does_not_hang);
    tcase_add_test(tc, up_follows_the_connections_and_comes_back_without_traffic);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
