/*
 * Unit tests of the client's resilience (runtime/client/resilience.c and the policy loop in
 * client.c): deadlines, retries, the retry budget, the circuit breaker, the bulkhead, fault
 * injection, fallbacks, stats and the environment knobs, against a real libmicrohttpd server
 * that can be told to fail, delay or drop, and that counts what reaches it.
 *
 * Timing assertions are bounds with wide margins (2 loaded cores, ASan, valgrind).
 */
#include "tablium/client.h"

#include <arpa/inet.h>
#include <check.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- the test server ----
 * Any path: 200 {"ok":true}, unless told otherwise through `cfg`:
 *   fail_next > 0 (or < 0: always) / fail_pct: answer fail_status (with Retry-After when set),
 *   or close the connection without answering when drop is set;
 *   delay_next > 0 (or < 0: always): wait delay_ms first.
 * It counts requests by method and keeps arrival times and the last X-Request-Timeout-Ms.
 */

#define MAX_ARRIVALS 4096

static struct MHD_Daemon *srv;
static unsigned short srv_port;
static char srv_url[64];
static atomic_int srv_stopping;

static pthread_mutex_t cfg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    int fail_status;
    int fail_next;
    int fail_pct;
    bool drop;
    char retry_after[64];
    int delay_ms;
    int delay_next;
    unsigned seed;
    /* observed */
    int requests, gets, posts, others;
    int64_t arrival[MAX_ARRIVALS];
    char timeout_hdr[32];
    int with_timeout_hdr;
} cfg;
static atomic_int srv_in_handler;

static void cfg_reset(void)
{
    pthread_mutex_lock(&cfg_mu);
    memset(&cfg, 0, sizeof cfg);
    cfg.fail_status = 503;
    cfg.seed = 12345;
    pthread_mutex_unlock(&cfg_mu);
}

static int srv_count(void)
{
    pthread_mutex_lock(&cfg_mu);
    int n = cfg.requests;
    pthread_mutex_unlock(&cfg_mu);
    return n;
}

typedef struct req_state {
    int seen;
} req_state;

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    free(*con_cls);
    *con_cls = NULL;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)cls;
    (void)url;
    (void)version;
    (void)upload_data;
    if (!*con_cls) {
        req_state *st = calloc(1, sizeof *st);
        if (!st)
            return MHD_NO;
        *con_cls = st;
        pthread_mutex_lock(&cfg_mu);
        if (cfg.requests < MAX_ARRIVALS)
            cfg.arrival[cfg.requests] = tb_clock_ms();
        cfg.requests++;
        if (strcmp(method, "GET") == 0)
            cfg.gets++;
        else if (strcmp(method, "POST") == 0)
            cfg.posts++;
        else
            cfg.others++;
        const char *t = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Timeout-Ms");
        if (t) {
            snprintf(cfg.timeout_hdr, sizeof cfg.timeout_hdr, "%s", t);
            cfg.with_timeout_hdr++;
        }
        pthread_mutex_unlock(&cfg_mu);
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&cfg_mu);
    bool delay = cfg.delay_next != 0;
    if (cfg.delay_next > 0)
        cfg.delay_next--;
    int delay_ms = cfg.delay_ms;
    bool fail =
        cfg.fail_next != 0 || (cfg.fail_pct > 0 && (int)(rand_r(&cfg.seed) % 100) < cfg.fail_pct);
    if (cfg.fail_next > 0)
        cfg.fail_next--;
    int status = fail ? cfg.fail_status : 200;
    bool drop = fail && cfg.drop;
    char retry_after[64];
    snprintf(retry_after, sizeof retry_after, "%s", cfg.retry_after);
    pthread_mutex_unlock(&cfg_mu);

    if (delay) {
        atomic_fetch_add(&srv_in_handler, 1);
        for (int waited = 0; waited < delay_ms && !atomic_load(&srv_stopping); waited += 20)
            sleep_ms(20);
        atomic_fetch_sub(&srv_in_handler, 1);
    }
    if (drop)
        return MHD_NO; /* closes the connection without an answer */
    static const char ok[] = "{\"ok\":true}";
    static const char bad[] = "{\"error\":{\"code\":\"unavailable\"}}";
    struct MHD_Response *r =
        status == 200
            ? MHD_create_response_from_buffer(sizeof ok - 1, (void *)ok, MHD_RESPMEM_PERSISTENT)
            : MHD_create_response_from_buffer(sizeof bad - 1, (void *)bad, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Content-Type", "application/json");
    if (fail && retry_after[0])
        MHD_add_response_header(r, "Retry-After", retry_after);
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

/* port 0: any free port. */
static void server_listen(unsigned short port)
{
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    atomic_store(&srv_stopping, 0);
    for (int i = 0; i < 50 && !srv; i++) {
        srv = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0,
                               NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, &addr,
                               MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u, MHD_OPTION_NOTIFY_COMPLETED,
                               on_completed, NULL, MHD_OPTION_END);
        if (!srv)
            sleep_ms(100); /* the old socket of a restart may linger a moment */
    }
    ck_assert_ptr_nonnull(srv);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv, MHD_DAEMON_INFO_BIND_PORT);
    ck_assert_ptr_nonnull(info);
    srv_port = info->port;
    snprintf(srv_url, sizeof srv_url, "http://127.0.0.1:%u", (unsigned)srv_port);
}

static void server_kill(void)
{
    if (!srv)
        return;
    atomic_store(&srv_stopping, 1);
    MHD_stop_daemon(srv);
    srv = NULL;
}

static void server_start(void)
{
    cfg_reset();
    server_listen(0);
}

/* ---- helpers ---- */

/* Options that make timing tests quick and deterministic: tiny backoff, no budget limit, no
 * breaker; each test turns on what it checks. */
static tb_client_opts quick_opts(void)
{
    tb_client_opts o = TB_CLIENT_OPTS_INIT;
    o.retry.initial_backoff_ms = 1;
    o.retry.max_backoff_ms = 5;
    o.retry_budget.budget_percent = 100;
    o.retry_budget.min_retries_per_sec = 1000;
    o.breaker.enabled = false;
    return o;
}

static tb_client *client_new(const tb_client_opts *opts)
{
    tb_error err = TB_ERROR_INIT;
    tb_client *c = tb_client_new(srv_url, opts, &err);
    ck_assert_msg(c != NULL, "tb_client_new: %s", err.message);
    tb_error_deinit(&err);
    return c;
}

typedef struct call_out {
    int rc;
    int status;
    int attempts;
    int64_t ms;
    char message[256];
} call_out;

/* The retry policy of the calls do_call makes (a generated client's x-tablium-retry); NULL:
 * the client's. */
static const tb_retry_policy *call_retry;

/* One call with a fresh arena; headers: NULL-terminated name, value pairs. */
static call_out do_call(tb_client *c, const char *method, const char *const *headers,
                        int64_t deadline)
{
    tb_arena *a = tb_arena_new(0);
    tb_ctx ctx;
    tb_ctx_init(&ctx, a, NULL);
    ctx.deadline_ms = deadline;
    tb_client_call call = {0};
    call.method = method;
    call.path = "/thing";
    call.retry = call_retry;
    if (strcmp(method, "POST") == 0 || strcmp(method, "PATCH") == 0) {
        call.body = "{}";
        call.body_len = 2;
    }
    for (size_t i = 0; headers && headers[i]; i += 2)
        ck_assert_int_eq(tb_client_call_header(&call, a, headers[i], headers[i + 1]), 0);
    tb_client_res res;
    tb_error err = TB_ERROR_INIT;
    int64_t t0 = tb_clock_ms();
    call_out out = {0};
    out.rc = tb_client_send(c, &ctx, &call, &res, &err);
    out.ms = tb_clock_ms() - t0;
    out.status = res.status;
    out.attempts = res.attempts;
    snprintf(out.message, sizeof out.message, "%s", err.message);
    tb_error_deinit(&err);
    tb_arena_free(a);
    return out;
}

static tb_client_stats stats_of(tb_client *c)
{
    tb_client_stats s;
    tb_client_stats_get(c, &s);
    return s;
}

/* ---- retries ---- */

START_TEST(get_is_retried_with_backoff_until_it_succeeds)
{
    tb_client_opts o = quick_opts();
    o.retry.initial_backoff_ms = 50;
    o.retry.max_backoff_ms = 200;
    tb_client *c = client_new(&o);
    cfg.fail_next = 2;
    call_out r = do_call(c, "GET", NULL, 0);
    ck_assert_int_eq(r.rc, 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(r.attempts, 3);
    ck_assert_int_eq(srv_count(), 3);
    tb_client_stats s = stats_of(c);
    ck_assert_uint_eq(s.calls, 1);
    ck_assert_uint_eq(s.attempts, 3);
    ck_assert_uint_eq(s.retries, 2);
    /* full jitter: each wait is in [0, cap] (50 then 100 ms), plus generous slack */
    int64_t gap1 = cfg.arrival[1] - cfg.arrival[0], gap2 = cfg.arrival[2] - cfg.arrival[1];
    printf("retry: GET 503,503,200: gaps %lld ms (cap 50), %lld ms (cap 100)\n", (long long)gap1,
           (long long)gap2);
    ck_assert_int_le(gap1, 50 + 1500);
    ck_assert_int_le(gap2, 100 + 1500);

    /* gives up after max_attempts with the last answer */
    cfg_reset();
    cfg.fail_next = -1;
    r = do_call(c, "GET", NULL, 0);
    ck_assert_int_eq(r.rc, 0);
    ck_assert_int_eq(r.status, 503);
    ck_assert_int_eq(r.attempts, 3);
    ck_assert_int_eq(srv_count(), 3);

    /* connect failures are retried too, and say how many attempts were made */
    server_kill();
    r = do_call(c, "GET", NULL, 0);
    ck_assert_int_eq(r.rc, TB_ECONN);
    ck_assert_int_eq(r.attempts, 3);
    ck_assert_msg(strstr(r.message, "after 3 attempts") != NULL, "%s", r.message);
    tb_client_free(c);
}
END_TEST

START_TEST(post_is_retried_only_with_an_idempotency_key)
{
    tb_client_opts o = quick_opts(); /* the default 3 attempts, no breaker in the way */
    tb_client *c = client_new(&o);
    cfg.fail_next = -1;
    static const char *const key[] = {"Idempotency-Key", "k-42", NULL};
    static const char *const key_lower[] = {"idempotency-key", "k-43", NULL};

    call_out r = do_call(c, "POST", NULL, 0);
    ck_assert_int_eq(r.status, 503);
    ck_assert_int_eq(r.attempts, 1);
    ck_assert_int_eq(cfg.posts, 1);

    r = do_call(c, "PATCH", NULL, 0);
    ck_assert_int_eq(r.attempts, 1);
    ck_assert_int_eq(cfg.others, 1);

    r = do_call(c, "POST", key, 0);
    ck_assert_int_eq(r.status, 503);
    ck_assert_int_eq(r.attempts, 3);
    ck_assert_int_eq(cfg.posts, 4);
    r = do_call(c, "POST", key_lower, 0);
    ck_assert_int_eq(r.attempts, 3);
    ck_assert_int_eq(cfg.posts, 7);

    /* a connection dropped after the request was sent: still never for a keyless POST */
    cfg.drop = true;
    r = do_call(c, "POST", NULL, 0);
    ck_assert_int_eq(r.rc, TB_ECONN);
    ck_assert_int_eq(cfg.posts, 8);
    r = do_call(c, "PUT", NULL, 0);
    ck_assert_int_eq(r.rc, TB_ECONN);
    ck_assert_int_eq(r.attempts, 3);
    int keyless = 2, keyed = 6;
    printf("retry: server saw %d POSTs: %d keyless (never retried), %d with Idempotency-Key\n",
           cfg.posts, keyless, keyed);
    tb_client_free(c);
}
END_TEST

/* x-tablium-retry compiles to the call's own policy; the environment's knobs still win, field by
 * field. */
START_TEST(a_calls_own_retry_policy_applies_under_the_environments_knobs)
{
    tb_client_opts o = quick_opts(); /* the client's own: 3 attempts */
    tb_client *c = client_new(&o);
    static const tb_retry_policy five = {5, 1, 5, 2.0, 0, TB_RETRY_ON_503};
    static const tb_retry_policy one = {1, 1, 5, 2.0, 0, TB_RETRY_ON_DEFAULT};
    static const tb_retry_policy no_503 = {5, 1, 5, 2.0, 0, TB_RETRY_ON_RESET};
    cfg.fail_next = -1;
    call_retry = &five;
    ck_assert_int_eq(do_call(c, "GET", NULL, 0).attempts, 5);
    call_retry = &one;
    ck_assert_int_eq(do_call(c, "GET", NULL, 0).attempts, 1);
    call_retry = &no_503; /* 503 is not among its conditions */
    ck_assert_int_eq(do_call(c, "GET", NULL, 0).attempts, 1);
    call_retry = NULL;
    ck_assert_int_eq(do_call(c, "GET", NULL, 0).attempts, 3);
    tb_client_free(c);

    /* an operator's TB_<NAME>_RETRY_MAX_ATTEMPTS wins over the spec's 5; retryOn stays the
     * call's */
    setenv("TB_RETRYSPEC_RETRY_MAX_ATTEMPTS", "2", 1);
    o.name = "retryspec";
    c = client_new(&o);
    call_retry = &five;
    ck_assert_int_eq(do_call(c, "GET", NULL, 0).attempts, 2);
    call_retry = &no_503;
    ck_assert_int_eq(do_call(c, "GET", NULL, 0).attempts, 1);
    call_retry = NULL;
    unsetenv("TB_RETRYSPEC_RETRY_MAX_ATTEMPTS");
    tb_client_free(c);
}
END_TEST

START_TEST(other_4xx_are_never_retried_but_429_is)
{
    tb_client_opts o = quick_opts();
    tb_client *c = client_new(&o);
    int codes[] = {400, 401, 403, 404, 409, 422, 501};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        cfg_reset();
        cfg.fail_next = -1;
        cfg.fail_status = codes[i];
        call_out r = do_call(c, "GET", NULL, 0);
        ck_assert_int_eq(r.status, codes[i]);
        ck_assert_msg(srv_count() == 1, "status %d was retried", codes[i]);
    }
    int retried[] = {429, 502, 503, 504};
    for (size_t i = 0; i < sizeof retried / sizeof retried[0]; i++) {
        cfg_reset();
        cfg.fail_next = -1;
        cfg.fail_status = retried[i];
        do_call(c, "GET", NULL, 0);
        ck_assert_msg(srv_count() == 3, "status %d: %d attempts", retried[i], srv_count());
    }
    tb_client_free(c);
}
END_TEST

START_TEST(retry_after_seconds_and_http_date_are_honoured_within_the_budget)
{
    tb_client_opts o = quick_opts();
    o.timeout_ms = 8000;
    tb_client *c = client_new(&o);
    cfg.fail_next = 1;
    snprintf(cfg.retry_after, sizeof cfg.retry_after, "1");
    call_out r = do_call(c, "GET", NULL, 0);
    ck_assert_int_eq(r.status, 200);
    int64_t gap = cfg.arrival[1] - cfg.arrival[0];
    printf("retry-after: \"1\" -> next attempt after %lld ms\n", (long long)gap);
    ck_assert_int_ge(gap, 950);
    ck_assert_int_le(gap, 4000);

    /* an HTTP-date 3 s ahead (whole seconds: at least 2 s of it remain) */
    cfg_reset();
    cfg.fail_next = 1;
    time_t at = time(NULL) + 3;
    struct tm tm;
    gmtime_r(&at, &tm);
    strftime(cfg.retry_after, sizeof cfg.retry_after, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    r = do_call(c, "GET", NULL, 0);
    ck_assert_int_eq(r.status, 200);
    gap = cfg.arrival[1] - cfg.arrival[0];
    printf("retry-after: \"%s\" -> next attempt after %lld ms\n", cfg.retry_after, (long long)gap);
    ck_assert_int_ge(gap, 1500);
    ck_assert_int_le(gap, 6000);

    /* more than the call's budget: no retry, the 503 comes back at once */
    cfg_reset();
    cfg.fail_next = -1;
    snprintf(cfg.retry_after, sizeof cfg.retry_after, "30");
    r = do_call(c, "GET", NULL, 0);
    ck_assert_int_eq(r.status, 503);
    ck_assert_int_eq(srv_count(), 1);
    ck_assert_int_lt(r.ms, 3000);
    tb_client_free(c);
}
END_TEST

START_TEST(retry_budget_bounds_retries_under_50pct_errors)
{
    tb_client_opts o = quick_opts();
    o.retry.max_attempts = 5;
    o.retry_budget.budget_percent = 20;
    o.retry_budget.min_retries_per_sec = 1;
    o.retry_budget.ttl_ms = 10000;
    tb_client *c = client_new(&o);
    cfg.fail_pct = 50;
    const int calls = 300;
    int64_t t0 = tb_clock_ms();
    int ok = 0;
    for (int i = 0; i < calls; i++)
        ok += do_call(c, "GET", NULL, 0).status == 200;
    int64_t elapsed = tb_clock_ms() - t0;
    tb_client_stats s = stats_of(c);
    /* Every ttl: 20% of the calls + 1/s * 10 s. Over a longer run, one reserve per window. */
    long windows = 1 + (long)(elapsed / o.retry_budget.ttl_ms);
    long budget = calls * 20 / 100 + 10 * windows;
    int attempts = srv_count();
    printf("retry budget: %d calls, 50%% failing, max_attempts 5: %d attempts on the server "
           "(%llu retries, %llu refused by the budget) vs budget %d + %ld = %ld; %d succeeded; "
           "without a budget ~%d attempts\n",
           calls, attempts, (unsigned long long)s.retries, (unsigned long long)s.budget_refusals,
           calls, budget, calls + budget, ok, (int)(calls * 1.94));
    ck_assert_int_eq((int)s.attempts, attempts);
    ck_assert_int_le((long)s.retries, budget);
    ck_assert_int_le(attempts, calls + budget);
    ck_assert_uint_gt(s.budget_refusals, 0);
    ck_assert_int_ge((long)s.retries, calls * 20 / 100); /* the budget was used, not starved */
    tb_client_free(c);
}
END_TEST

/* ---- deadlines ---- */

START_TEST(deadline_header_carries_the_time_left_and_expired_deadlines_fail_fast)
{
    tb_client *c = client_new(NULL);
    call_out r = do_call(c, "GET", NULL, 0);
    ck_assert_int_eq(r.status, 200);
    long sent = atol(cfg.timeout_hdr);
    printf("deadline: no ctx deadline -> X-Request-Timeout-Ms: %ld (timeout_ms 5000)\n", sent);
    ck_assert_int_le(sent, 5000);
    ck_assert_int_gt(sent, 3000);

    r = do_call(c, "GET", NULL, tb_deadline_in(800));
    sent = atol(cfg.timeout_hdr);
    printf("deadline: ctx deadline in 800 ms -> X-Request-Timeout-Ms: %ld\n", sent);
    ck_assert_int_le(sent, 800);
    ck_assert_int_gt(sent, 0);

    int before = srv_count();
    r = do_call(c, "GET", NULL, tb_clock_ms() - 1);
    ck_assert_int_eq(r.rc, TB_ETIMEDOUT);
    ck_assert_int_eq(r.attempts, 0);
    ck_assert_int_eq(srv_count(), before);
    ck_assert_int_lt(r.ms, 500);
    ck_assert_uint_eq(stats_of(c).deadline_exceeded, 1);

    /* a ctx deadline shorter than the upstream's delay cuts the call (and its retries) */
    cfg.delay_next = -1;
    cfg.delay_ms = 3000;
    r = do_call(c, "GET", NULL, tb_deadline_in(400));
    ck_assert_int_eq(r.rc, TB_ETIMEDOUT);
    ck_assert_int_lt(r.ms, 2500);
    ck_assert_int_eq(r.attempts, 1);

    /* timeout_ms 0 and no ctx deadline: no header */
    tb_client_free(c);
    tb_client_opts o = TB_CLIENT_OPTS_INIT;
    o.timeout_ms = 0;
    c = client_new(&o);
    cfg_reset();
    do_call(c, "GET", NULL, 0);
    ck_assert_int_eq(cfg.with_timeout_hdr, 0);
    tb_client_free(c);
}
END_TEST

START_TEST(per_try_timeout_retries_a_hung_attempt_within_the_total)
{
    tb_client_opts o = quick_opts();
    o.retry.per_try_timeout_ms = 300;
    tb_client *c = client_new(&o);
    cfg.delay_next = 1; /* only the first attempt hangs */
    cfg.delay_ms = 3000;
    call_out r = do_call(c, "GET", NULL, 0);
    ck_assert_int_eq(r.rc, 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(r.attempts, 2);
    ck_assert_int_lt(r.ms, 2500);
    ck_assert_int_eq(atol(cfg.timeout_hdr), 300);
    tb_client_free(c);
}
END_TEST

/* ---- circuit breaker ---- */

static int64_t tl_t0;
static int tl_n;

static void timeline(tb_client *c, const char *what, const call_out *r)
{
    tb_client_stats s = stats_of(c);
    char rate[16] = "-";
    if (s.failure_rate >= 0)
        snprintf(rate, sizeof rate, "%.0f%%", s.failure_rate);
    printf("breaker +%5lld ms  #%-3d %-26s rc=%-10s status=%3d  state=%-9s window=%-2d "
           "failure=%-4s opens=%llu fast_fails=%llu\n",
           (long long)(tb_clock_ms() - tl_t0), ++tl_n, what, r ? tb_err_name(r->rc) : "-",
           r ? r->status : 0, tb_breaker_state_name(s.breaker_state), s.window_calls, rate,
           (unsigned long long)s.breaker_opens, (unsigned long long)s.fast_fails);
}

typedef struct probe {
    tb_client *c;
    call_out r;
} probe;

static void *probe_run(void *p)
{
    probe *pr = p;
    pr->r = do_call(pr->c, "GET", NULL, 0);
    return NULL;
}

START_TEST(breaker_opens_on_a_dead_upstream_fails_fast_probes_and_closes_on_recovery)
{
    tb_client_opts o = quick_opts();
    o.name = "wallet-test";
    o.retry.max_attempts = 1; /* one attempt = one breaker call: an exact timeline */
    o.breaker.enabled = true;
    o.breaker.sliding_window_size = 10;
    o.breaker.minimum_number_of_calls = 5;
    o.breaker.wait_duration_in_open_state_ms = 500;
    o.breaker.permitted_number_of_calls_in_half_open_state = 3;
    o.breaker.slow_call_duration_threshold_ms = 20000;
    tb_client *c = client_new(&o);
    unsigned short port = srv_port;
    tl_t0 = tb_clock_ms();
    tl_n = 0;
    printf("breaker timeline (window 10, min 5 calls, 50%%, wait 500 ms, 3 probes):\n");
    for (int i = 0; i < 5; i++) {
        call_out r = do_call(c, "GET", NULL, 0);
        ck_assert_int_eq(r.status, 200);
        timeline(c, "healthy", &r);
    }

    server_kill();
    int opened_after = 0;
    for (int i = 1; i <= 10 && stats_of(c).breaker_state != TB_BREAKER_OPEN; i++) {
        call_out r = do_call(c, "GET", NULL, 0);
        ck_assert_int_eq(r.rc, TB_ECONN);
        timeline(c, "upstream killed", &r);
        opened_after = i;
    }
    ck_assert_int_eq(stats_of(c).breaker_state, TB_BREAKER_OPEN);
    ck_assert_int_eq(opened_after, 5); /* 5 failures of 10 calls = 50% */
    ck_assert_uint_eq(stats_of(c).breaker_opens, 1);

    for (int i = 0; i < 3; i++) {
        call_out r = do_call(c, "GET", NULL, 0);
        ck_assert_int_eq(r.rc, TB_EOPEN);
        ck_assert_int_eq(r.attempts, 0);
        ck_assert_int_lt(r.ms, 200);
        timeline(c, "open: fail fast", &r);
    }
    ck_assert_uint_eq(stats_of(c).fast_fails, 3);

    /* back, but still failing: the probes reopen it */
    cfg_reset();
    server_listen(port);
    cfg.fail_next = -1;
    sleep_ms(600);
    for (int i = 0; i < 3; i++) {
        call_out r = do_call(c, "GET", NULL, 0);
        ck_assert_int_eq(r.status, 503);
        timeline(c, "half-open probe, 503", &r);
        ck_assert_int_eq(stats_of(c).breaker_state, i < 2 ? TB_BREAKER_HALF_OPEN : TB_BREAKER_OPEN);
    }
    ck_assert_uint_eq(stats_of(c).breaker_opens, 2);
    call_out r = do_call(c, "GET", NULL, 0);
    ck_assert_int_eq(r.rc, TB_EOPEN);
    timeline(c, "open again: fail fast", &r);

    /* healthy but slow: of 5 concurrent calls only 3 probes go through */
    cfg_reset();
    cfg.delay_next = -1;
    cfg.delay_ms = 1500;
    sleep_ms(600);
    probe pr[5];
    pthread_t th[5];
    for (int i = 0; i < 5; i++) {
        pr[i].c = c;
        ck_assert_int_eq(pthread_create(&th[i], NULL, probe_run, &pr[i]), 0);
    }
    int ok = 0, refused = 0;
    for (int i = 0; i < 5; i++) {
        pthread_join(th[i], NULL);
        ok += pr[i].r.status == 200;
        refused += pr[i].r.rc == TB_EOPEN;
    }
    printf("breaker: 5 concurrent calls in half-open: %d probes answered 200, %d refused\n", ok,
           refused);
    timeline(c, "after 3 good probes", NULL);
    ck_assert_int_eq(srv_count(), 3);
    ck_assert_int_eq(ok, 3);
    ck_assert_int_eq(refused, 2);
    ck_assert_int_eq(stats_of(c).breaker_state, TB_BREAKER_CLOSED);

    cfg.delay_next = 0;
    r = do_call(c, "GET", NULL, 0);
    ck_assert_int_eq(r.status, 200);
    timeline(c, "closed: flowing", &r);
    ck_assert_int_eq(stats_of(c).window_calls, 1);
    tb_client_free(c);
}
END_TEST

START_TEST(breaker_counts_slow_calls_and_configurable_failures)
{
    tb_client_opts o = quick_opts();
    o.retry.max_attempts = 1;
    o.breaker.enabled = true;
    o.breaker.sliding_window_size = 4;
    o.breaker.minimum_number_of_calls = 4;
    o.breaker.slow_call_duration_threshold_ms = 150;
    o.breaker.slow_call_rate_threshold = 75;
    tb_client *c = client_new(&o);
    cfg.delay_next = 3;
    cfg.delay_ms = 300;
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(do_call(c, "GET", NULL, 0).status, 200);
    tb_client_stats s = stats_of(c);
    ck_assert_int_eq(s.breaker_state, TB_BREAKER_OPEN); /* 3 slow of 4 = 75% */
    tb_client_free(c);

    /* 5xx not recorded: a failing upstream never opens it */
    o.breaker.record = TB_BREAKER_RECORD_TRANSPORT;
    o.breaker.slow_call_duration_threshold_ms = 20000;
    c = client_new(&o);
    cfg_reset();
    cfg.fail_next = -1;
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(do_call(c, "GET", NULL, 0).status, 503);
    ck_assert_int_eq(stats_of(c).breaker_state, TB_BREAKER_CLOSED);
    ck_assert_double_eq(stats_of(c).failure_rate, 0);
    tb_client_free(c);
}
END_TEST

/* ---- fallback ---- */

static int fallback_cached(void *self, tb_ctx *ctx, const tb_client_call *call, int rc,
                           tb_client_res *res)
{
    (void)call;
    int *seen = self;
    *seen = rc ? rc : res->status;
    res->status = 200;
    res->body = tb_arena_strdup(ctx->arena, "{\"cached\":true}");
    res->body_len = strlen(res->body);
    return 0;
}

static int fallback_refuses(void *self, tb_ctx *ctx, const tb_client_call *call, int rc,
                            tb_client_res *res)
{
    (void)self;
    (void)ctx;
    (void)call;
    (void)res;
    return rc;
}

START_TEST(fallback_answers_for_an_open_breaker_and_a_failed_call)
{
    int seen = 0;
    tb_client_opts o = quick_opts();
    o.retry.max_attempts = 2;
    o.breaker.enabled = true;
    o.breaker.sliding_window_size = 2;
    o.breaker.minimum_number_of_calls = 2;
    o.breaker.wait_duration_in_open_state_ms = 60000;
    o.fallback = (tb_client_fallback){fallback_cached, &seen};
    tb_client *c = client_new(&o);
    cfg.fail_next = -1;
    tb_arena *a = tb_arena_new(0);
    tb_ctx ctx;
    tb_ctx_init(&ctx, a, NULL);
    tb_client_call call = {0};
    call.method = "GET";
    call.path = "/x";
    tb_client_res res;
    tb_error err = TB_ERROR_INIT;
    /* two 503 attempts (which open the breaker), then the fallback's answer */
    ck_assert_int_eq(tb_client_send(c, &ctx, &call, &res, &err), 0);
    ck_assert_int_eq(seen, 503);
    ck_assert_int_eq(res.status, 200);
    ck_assert_str_eq(res.body, "{\"cached\":true}");
    ck_assert_int_eq(res.attempts, 2);
    ck_assert_int_eq(stats_of(c).breaker_state, TB_BREAKER_OPEN);
    /* open: fails fast, the fallback answers */
    ck_assert_int_eq(tb_client_send(c, &ctx, &call, &res, &err), 0);
    ck_assert_int_eq(err.code, 0);
    ck_assert_int_eq(seen, TB_EOPEN);
    ck_assert_int_eq(res.attempts, 0);
    ck_assert_int_eq(srv_count(), 2);
    /* the call's own fallback wins over the client's */
    call.fallback = (tb_client_fallback){fallback_refuses, NULL};
    ck_assert_int_eq(tb_client_send(c, &ctx, &call, &res, &err), TB_EOPEN);
    ck_assert_int_eq(err.code, TB_EOPEN);
    ck_assert_int_eq(res.status, 0);
    ck_assert_uint_eq(stats_of(c).fallbacks, 2);
    tb_error_deinit(&err);
    tb_arena_free(a);
    tb_client_free(c);
}
END_TEST

/* ---- bulkhead ---- */

START_TEST(bulkhead_rejects_calls_beyond_the_cap)
{
    tb_client_opts o = quick_opts();
    o.max_concurrent_calls = 2;
    tb_client *c = client_new(&o);
    cfg.delay_next = -1;
    cfg.delay_ms = 1500;
    probe pr[2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        pr[i].c = c;
        ck_assert_int_eq(pthread_create(&th[i], NULL, probe_run, &pr[i]), 0);
    }
    for (int i = 0; i < 200 && atomic_load(&srv_in_handler) < 2; i++)
        sleep_ms(10);
    ck_assert_int_eq(atomic_load(&srv_in_handler), 2);
    ck_assert_int_eq(stats_of(c).in_flight, 2);
    call_out r = do_call(c, "GET", NULL, 0);
    ck_assert_int_eq(r.rc, TB_EBUSY);
    ck_assert_int_lt(r.ms, 500);
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(pr[i].r.status, 200);
    }
    tb_client_stats s = stats_of(c);
    printf("bulkhead: cap 2, 2 in flight: third call %s in %lld ms; rejections %llu\n",
           tb_err_name(r.rc), (long long)r.ms, (unsigned long long)s.bulkhead_rejections);
    ck_assert_uint_eq(s.bulkhead_rejections, 1);
    ck_assert_int_eq(s.in_flight, 0);
    cfg.delay_next = 0;
    ck_assert_int_eq(do_call(c, "GET", NULL, 0).status, 200);
    tb_client_free(c);
}
END_TEST

/* ---- fault injection ---- */

START_TEST(fault_injection_aborts_drops_and_delays_without_reaching_the_upstream)
{
    tb_client_opts o = quick_opts();
    o.fault = "abort=503";
    tb_client *c = client_new(&o);
    call_out r = do_call(c, "GET", NULL, 0);
    ck_assert_int_eq(r.rc, 0);
    ck_assert_int_eq(r.status, 503);
    ck_assert_int_eq(r.attempts, 3); /* injected errors are retried like real ones */
    ck_assert_int_eq(srv_count(), 0);
    ck_assert_uint_eq(stats_of(c).faults_injected, 3);
    tb_client_free(c);

    o.fault = "drop@100%";
    c = client_new(&o);
    r = do_call(c, "POST", NULL, 0);
    ck_assert_int_eq(r.rc, TB_ECONN);
    ck_assert_int_eq(r.attempts, 1);
    ck_assert_int_eq(srv_count(), 0);
    tb_client_free(c);

    o.fault = "delay=200ms";
    c = client_new(&o);
    r = do_call(c, "GET", NULL, 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_ge(r.ms, 190);
    ck_assert_int_eq(srv_count(), 1);
    tb_client_free(c);

    o.fault = "abort=500@50%,delay=1@10%";
    o.retry.max_attempts = 1;
    c = client_new(&o);
    cfg_reset();
    int n500 = 0;
    for (int i = 0; i < 200; i++)
        n500 += do_call(c, "GET", NULL, 0).status == 500;
    printf("fault: abort=500@50%% over 200 calls: %d aborted, %d reached the server\n", n500,
           srv_count());
    ck_assert_int_ge(n500, 60);
    ck_assert_int_le(n500, 140);
    ck_assert_int_eq(n500 + srv_count(), 200);
    tb_client_free(c);

    const char *bad[] = {"abort=99", "abort=503@101%", "drop@x",
                         "delay=-5", "explode",        "abort=503@60%,drop@50%"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        o.fault = bad[i];
        tb_error err = TB_ERROR_INIT;
        ck_assert_msg(tb_client_new(srv_url, &o, &err) == NULL, "accepted %s", bad[i]);
        ck_assert_int_eq(err.code, TB_EINVAL);
        tb_error_deinit(&err);
    }
}
END_TEST

/* ---- environment ---- */

START_TEST(environment_overrides_options_per_upstream)
{
    tb_client_opts o = TB_CLIENT_OPTS_INIT;
    o.name = "ledger-sync";
    setenv("TB_CLIENT_RETRY_MAX_ATTEMPTS", "1", 1);
    setenv("TB_LEDGER_SYNC_RETRY_MAX_ATTEMPTS", "4", 1);
    setenv("TB_CLIENT_RETRY_ON", "503, reset", 1);
    setenv("TB_LEDGER_SYNC_BREAKER_ENABLED", "false", 1);
    setenv("TB_LEDGER_SYNC_RETRY_BACKOFF_MULTIPLIER", "1.6", 1);
    setenv("TB_LEDGER_SYNC_MAX_CONCURRENT_CALLS", "0", 1);
    setenv("TB_LEDGER_SYNC_FAULT", "abort=418", 1);
    setenv("TB_LEDGER_SYNC_TIMEOUT_MS", "", 1); /* empty: unset */
    tb_client *c = client_new(&o);
    const tb_client_opts *e = tb_client_options(c);
    ck_assert_int_eq(e->retry.max_attempts, 4);
    ck_assert_uint_eq(e->retry.retry_on, TB_RETRY_ON_503 | TB_RETRY_ON_RESET);
    ck_assert(!e->breaker.enabled);
    ck_assert_double_eq_tol(e->retry.backoff_multiplier, 1.6, 1e-9);
    ck_assert_int_eq(e->max_concurrent_calls, 0);
    ck_assert_int_eq(e->timeout_ms, 5000);
    ck_assert_str_eq(e->name, "ledger-sync");
    ck_assert_str_eq(e->fault, "abort=418");
    ck_assert_int_eq(do_call(c, "GET", NULL, 0).status, 418);
    tb_client_free(c);

    /* other upstreams get only TB_CLIENT_* */
    o.name = "other";
    c = client_new(&o);
    ck_assert_int_eq(tb_client_options(c)->retry.max_attempts, 1);
    ck_assert_ptr_null(tb_client_options(c)->fault);
    tb_client_free(c);

    const char *bad[][2] = {{"TB_CLIENT_RETRY_MAX_ATTEMPTS", "0"},
                            {"TB_CLIENT_RETRY_MAX_ATTEMPTS", "3x"},
                            {"TB_CLIENT_RETRY_ON", "5xx,teapot"},
                            {"TB_CLIENT_BREAKER_ENABLED", "maybe"},
                            {"TB_CLIENT_BREAKER_FAILURE_RATE_THRESHOLD", "101"},
                            {"TB_CLIENT_FAULT", "abort=700"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv(bad[i][0], bad[i][1], 1);
        tb_error err = TB_ERROR_INIT;
        ck_assert_msg(tb_client_new(srv_url, &o, &err) == NULL, "%s=%s", bad[i][0], bad[i][1]);
        ck_assert_int_eq(err.code, TB_EINVAL);
        if (strcmp(bad[i][0], "TB_CLIENT_FAULT") != 0)
            ck_assert_msg(strstr(err.message, bad[i][0]) != NULL, "%s", err.message);
        tb_error_deinit(&err);
        unsetenv(bad[i][0]);
    }
    unsetenv("TB_CLIENT_RETRY_MAX_ATTEMPTS");
    unsetenv("TB_LEDGER_SYNC_RETRY_MAX_ATTEMPTS");
    unsetenv("TB_CLIENT_RETRY_ON");
    unsetenv("TB_LEDGER_SYNC_BREAKER_ENABLED");
    unsetenv("TB_LEDGER_SYNC_RETRY_BACKOFF_MULTIPLIER");
    unsetenv("TB_LEDGER_SYNC_MAX_CONCURRENT_CALLS");
    unsetenv("TB_LEDGER_SYNC_FAULT");
    unsetenv("TB_LEDGER_SYNC_TIMEOUT_MS");

    /* options themselves are range-checked */
    o = (tb_client_opts)TB_CLIENT_OPTS_INIT;
    o.retry.max_attempts = 0;
    tb_error err = TB_ERROR_INIT;
    ck_assert_ptr_null(tb_client_new(srv_url, &o, &err));
    ck_assert_int_eq(err.code, TB_EINVAL);
    o.retry.max_attempts = 3;
    o.retry.max_backoff_ms = 10;
    ck_assert_ptr_null(tb_client_new(srv_url, &o, &err));
    tb_error_deinit(&err);
}
END_TEST

START_TEST(stats_of_null_client_are_zero_and_state_names_are_stable)
{
    tb_client_stats s;
    memset(&s, 0xff, sizeof s);
    tb_client_stats_get(NULL, &s);
    ck_assert_uint_eq(s.calls, 0);
    ck_assert_int_eq(s.breaker_state, TB_BREAKER_CLOSED);
    ck_assert_str_eq(tb_breaker_state_name(TB_BREAKER_CLOSED), "closed");
    ck_assert_str_eq(tb_breaker_state_name(TB_BREAKER_OPEN), "open");
    ck_assert_str_eq(tb_breaker_state_name(TB_BREAKER_HALF_OPEN), "half-open");
    ck_assert_str_eq(tb_err_name(TB_EOPEN), "TB_EOPEN");
    ck_assert_str_eq(tb_err_name(TB_EBUSY), "TB_EBUSY");
    tb_ctx ctx;
    tb_ctx_init(&ctx, NULL, NULL);
    ck_assert_int_eq(tb_deadline_left_ms(&ctx), -1);
    ctx.deadline_ms = tb_deadline_in(10000);
    ck_assert_int_gt(tb_deadline_left_ms(&ctx), 5000);
    ctx.deadline_ms = tb_clock_ms() - 5;
    ck_assert_int_eq(tb_deadline_left_ms(&ctx), 0);
}
END_TEST

int main(void)
{
    if (tb_global_init() != 0)
        return 1;
    setvbuf(stdout, NULL, _IOLBF, 0);
    Suite *s = suite_create("client_resilience");
    TCase *t = tcase_create("resilience");
    tcase_add_checked_fixture(t, server_start, server_kill);
    tcase_set_timeout(t, 120);
    tcase_add_test(t, get_is_retried_with_backoff_until_it_succeeds);
    tcase_add_test(t, post_is_retried_only_with_an_idempotency_key);
    tcase_add_test(t, other_4xx_are_never_retried_but_429_is);
    tcase_add_test(t, a_calls_own_retry_policy_applies_under_the_environments_knobs);
    tcase_add_test(t, retry_after_seconds_and_http_date_are_honoured_within_the_budget);
    tcase_add_test(t, retry_budget_bounds_retries_under_50pct_errors);
    tcase_add_test(t, deadline_header_carries_the_time_left_and_expired_deadlines_fail_fast);
    tcase_add_test(t, per_try_timeout_retries_a_hung_attempt_within_the_total);
    tcase_add_test(t, breaker_opens_on_a_dead_upstream_fails_fast_probes_and_closes_on_recovery);
    tcase_add_test(t, breaker_counts_slow_calls_and_configurable_failures);
    tcase_add_test(t, fallback_answers_for_an_open_breaker_and_a_failed_call);
    tcase_add_test(t, bulkhead_rejects_calls_beyond_the_cap);
    tcase_add_test(t, fault_injection_aborts_drops_and_delays_without_reaching_the_upstream);
    tcase_add_test(t, environment_overrides_options_per_upstream);
    tcase_add_test(t, stats_of_null_client_are_zero_and_state_names_are_stable);
    suite_add_tcase(s, t);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
