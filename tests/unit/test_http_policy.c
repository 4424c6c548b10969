/*
 * Server policies (issue 13): the IP allowlist with X-Forwarded-For from trusted proxies, the
 * in-flight cap, deadlines (504 before the handler), rate limits per identity and operation
 * (GCRA, in process and shared by two replicas through the real Redis of
 * scripts/with-brokers.sh), and fault injection. Clients bind 127.0.0.x source addresses.
 *
 * Prints for make test:
 *   rate-limit: local N allowed in 10 s (expected N, off by X%); shared by 2 replicas N ...
 */
#include "tablium/http.h"
#include "tablium/log.h"

#include "tb_test_http.h"

#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- the service: GET /ping, GET /left (ms left to the deadline) ---- */

static atomic_int handled;

static int ping(tb_ctx *ctx, const tb_http_req *req, tb_http_res *res)
{
    (void)ctx, (void)req;
    atomic_fetch_add(&handled, 1);
    res->status = 200;
    tb_buf_puts(&res->body, "{\"data\":{\"pong\":true}}");
    return 0;
}

static int left(tb_ctx *ctx, const tb_http_req *req, tb_http_res *res)
{
    (void)req;
    atomic_fetch_add(&handled, 1);
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    int64_t now = (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
    res->status = 200;
    tb_buf_printf(&res->body, "{\"data\":{\"left\":%lld}}",
                  ctx->deadline_ms ? (long long)(ctx->deadline_ms - now) : -1LL);
    return 0;
}

static const tb_http_op ops[] = {
    {"ping", TB_HTTP_GET, "/ping", 0, ping, NULL},
    {"left", TB_HTTP_GET, "/left", 0, left, NULL},
};

/* GET PUT POST DELETE OPTIONS HEAD PATCH TRACE */
static const int16_t routes[][TB_HTTP_N_METHODS] = {
    {0, -1, -1, -1, -1, -1, -1, -1},
    {1, -1, -1, -1, -1, -1, -1, -1},
};

static int match(const char *path, size_t len, int method, tb_str *params, size_t *n_params)
{
    (void)method; /* one operation per path here */
    (void)params;
    *n_params = 0;
    static const char *const paths[] = {"/ping", "/left"};
    return tht_match(paths, 2, path, len);
}

static const tb_http_api api = {"policy", "Policy", "1.0", ops, 2, match, routes, 2, NULL, NULL, 0, NULL, 0, NULL, 0};

static tb_server *start(tb_server_opts *o)
{
    o->threads = 2;
    o->access_log = false;
    tb_error err = TB_ERROR_INIT;
    tb_server *s = tb_server_new(&api, o, &err);
    ck_assert_msg(s != NULL, "%s", err.message);
    tb_error_deinit(&err);
    return s;
}

static void run(tb_server *s)
{
    tb_error err = TB_ERROR_INIT;
    ck_assert_msg(tb_server_start(s, &err) == 0, "%s", err.message);
    tb_error_deinit(&err);
}

/* ---- a client ---- */

typedef tht_reply reply;

/* GET path from 127.0.0.<host> on curl handle h (NULL: a one-off), extra header or NULL. */
static long get(CURL *h, const tb_server *s, int host, const char *path, const char *hdr,
                reply *r)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", (unsigned)tb_server_port(s), path);
    struct curl_slist *hl = hdr ? curl_slist_append(NULL, hdr) : NULL;
    tht_request(h, "GET", url, host, hl, r);
    curl_slist_free_all(hl);
    return r->status;
}

static const char *error_code(reply *r, char *out, size_t cap)
{
    json_t *j = json_loads(r->body, 0, NULL);
    const char *c = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
    snprintf(out, cap, "%s", c ? c : "");
    json_decref(j);
    return out;
}

static bool has_header(const reply *r, const char *line)
{
    return strcasestr(r->headers, line) != NULL;
}

/* ---- allowlist ---- */

START_TEST(allowlist_answers_403_and_believes_forwarded_for_only_from_trusted_proxies)
{
    tb_server_opts o = TB_SERVER_OPTS_INIT;
    o.policy.allow = "127.0.0.2/32, 10.1.0.0/16, ::1";
    o.policy.trusted_proxies = "127.0.0.3";
    tb_server *s = start(&o);
    run(s);
    reply r;
    char code[64];
    ck_assert_int_eq(get(NULL, s, 1, "/ping", NULL, &r), 403);
    ck_assert_str_eq(error_code(&r, code, sizeof code), "forbidden");
    ck_assert_int_eq(get(NULL, s, 2, "/ping", NULL, &r), 200);
    /* an untrusted peer cannot claim an allowed address */
    ck_assert_int_eq(get(NULL, s, 1, "/ping", "X-Forwarded-For: 10.1.2.3", &r), 403);
    /* the proxy can, and a client's own entries to the left do not count */
    ck_assert_int_eq(get(NULL, s, 3, "/ping", "X-Forwarded-For: 10.1.2.3", &r), 200);
    ck_assert_int_eq(get(NULL, s, 3, "/ping", "X-Forwarded-For: 10.1.2.3, 192.0.2.9", &r), 403);
    ck_assert_int_eq(get(NULL, s, 3, "/ping", "X-Forwarded-For: 192.0.2.9, 10.1.2.3", &r), 200);
    ck_assert_int_eq(get(NULL, s, 3, "/ping", NULL, &r), 403); /* the proxy itself is not */
    /* the same list in two lines (a proxy that adds a line of its own): one list, read from
     * the right; the first line alone let the client's forged 10.1.2.3 in */
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/ping", (unsigned)tb_server_port(s));
    struct curl_slist *two = curl_slist_append(NULL, "X-Forwarded-For: 10.1.2.3");
    two = curl_slist_append(two, "X-Forwarded-For: 192.0.2.9");
    tht_request(NULL, "GET", url, 3, two, &r);
    ck_assert_int_eq(r.status, 403);
    curl_slist_free_all(two);
    two = curl_slist_append(NULL, "X-Forwarded-For: 192.0.2.9");
    two = curl_slist_append(two, "X-Forwarded-For: 10.1.2.3");
    tht_request(NULL, "GET", url, 3, two, &r);
    ck_assert_int_eq(r.status, 200);
    curl_slist_free_all(two);
    tb_server_stats st;
    tb_server_stats_get(s, &st);
    ck_assert_uint_eq(st.refused_addr, 5);
    tb_server_free(s);

    tb_error err = TB_ERROR_INIT;
    tb_server_opts bad = TB_SERVER_OPTS_INIT;
    bad.policy.allow = "10.0.0.0/8, not-an-ip";
    ck_assert_ptr_null(tb_server_new(&api, &bad, &err));
    ck_assert_ptr_nonnull(strstr(err.message, "not-an-ip"));
    tb_error_deinit(&err);
}
END_TEST

/* ---- in flight, deadlines ---- */

/* A request that stays in flight without holding a worker: its body never ends. */
static int open_trickle(const tb_server *s)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(tb_server_port(s));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    static const char head[] = "GET /ping HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{";
    ck_assert_int_eq(send(fd, head, sizeof head - 1, MSG_NOSIGNAL), (ssize_t)(sizeof head - 1));
    return fd;
}

START_TEST(in_flight_cap_answers_503_with_retry_after)
{
    tb_server_opts o = TB_SERVER_OPTS_INIT;
    o.max_in_flight = 1;
    tb_server *s = start(&o);
    run(s);
    int fd = open_trickle(s);
    for (int i = 0; i < 2000 && tb_server_in_flight(s) == 0; i++)
        usleep(1000);
    ck_assert_uint_eq(tb_server_in_flight(s), 1);
    reply r;
    char code[64];
    ck_assert_int_eq(get(NULL, s, 1, "/ping", NULL, &r), 503);
    ck_assert_str_eq(error_code(&r, code, sizeof code), "overloaded");
    ck_assert(has_header(&r, "Retry-After: 1"));
    close(fd);
    for (int i = 0; i < 2000 && tb_server_in_flight(s) > 0; i++)
        usleep(1000);
    ck_assert_int_eq(get(NULL, s, 1, "/ping", NULL, &r), 200);
    tb_server_stats st;
    tb_server_stats_get(s, &st);
    ck_assert_uint_eq(st.refused_in_flight, 1);
    tb_server_free(s);
}
END_TEST

START_TEST(an_expired_deadline_answers_504_without_running_the_handler)
{
    tb_server_opts o = TB_SERVER_OPTS_INIT;
    o.request_timeout_ms = 60000;
    tb_server *s = start(&o);
    run(s);
    reply r;
    char code[64];
    int before = atomic_load(&handled);
    ck_assert_int_eq(get(NULL, s, 1, "/left", "X-Request-Timeout-Ms: 0", &r), 504);
    ck_assert_str_eq(error_code(&r, code, sizeof code), "deadline_exceeded");
    ck_assert_int_eq(atomic_load(&handled), before);
    /* the handler sees the caller's budget, or the server's own when smaller or absent */
    ck_assert_int_eq(get(NULL, s, 1, "/left", "X-Request-Timeout-Ms: 2000", &r), 200);
    json_t *j = json_loads(r.body, 0, NULL);
    long long l = json_integer_value(json_object_get(json_object_get(j, "data"), "left"));
    json_decref(j);
    ck_assert_msg(l > 0 && l <= 2000, "left %lld", l);
    ck_assert_int_eq(get(NULL, s, 1, "/left", NULL, &r), 200);
    j = json_loads(r.body, 0, NULL);
    l = json_integer_value(json_object_get(json_object_get(j, "data"), "left"));
    json_decref(j);
    ck_assert_msg(l > 2000 && l <= 60000, "left %lld", l);
    tb_server_stats st;
    tb_server_stats_get(s, &st);
    ck_assert_uint_eq(st.deadline_expired, 1);
    tb_server_free(s);
}
END_TEST

/* ---- rate limits ---- */

START_TEST(rate_limit_answers_429_with_retry_after_and_ratelimit_headers)
{
    tb_server_opts o = TB_SERVER_OPTS_INIT;
    o.policy.rate_limit = "5/10s";
    tb_server *s = start(&o);
    tb_rate_limit per = {2, 60000, 0};
    ck_assert_int_eq(tb_server_set_rate_limit(s, "left", &per), 0);
    ck_assert_int_eq(tb_server_set_rate_limit(s, "nope", &per), TB_EINVAL);
    run(s);
    CURL *h = curl_easy_init();
    reply r;
    char code[64];
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(get(h, s, 1, "/ping", NULL, &r), 200);
        char want[64];
        snprintf(want, sizeof want, "RateLimit: \"ping\";r=%d;", 4 - i);
        ck_assert_msg(has_header(&r, want), "want %s in %s", want, r.headers);
        ck_assert(has_header(&r, "RateLimit-Policy: \"ping\";q=5;w=10"));
    }
    ck_assert_int_eq(get(h, s, 1, "/ping", NULL, &r), 429);
    ck_assert_str_eq(error_code(&r, code, sizeof code), "rate_limited");
    ck_assert(has_header(&r, "Retry-After: 2")); /* one request every 2 s */
    ck_assert(has_header(&r, "RateLimit: \"ping\";r=0;t=2"));
    /* per identity: another address has its own quota; per operation: left has its own */
    ck_assert_int_eq(get(h, s, 2, "/ping", NULL, &r), 200);
    ck_assert_int_eq(get(h, s, 1, "/left", NULL, &r), 200);
    ck_assert_int_eq(get(h, s, 1, "/left", NULL, &r), 200);
    ck_assert_int_eq(get(h, s, 1, "/left", NULL, &r), 429);
    ck_assert(has_header(&r, "Retry-After: 30"));
    curl_easy_cleanup(h);
    tb_server_stats st;
    tb_server_stats_get(s, &st);
    ck_assert_uint_eq(st.rate_limited, 2);
    tb_server_free(s);

    tb_rate_limit l;
    ck_assert(tb_rate_limit_parse("600/1m", &l) && l.limit == 600 && l.period_ms == 60000);
    ck_assert(tb_rate_limit_parse("10/30s", &l) && l.limit == 10 && l.period_ms == 30000);
    ck_assert(!tb_rate_limit_parse("10", &l) && !tb_rate_limit_parse("0/s", &l) &&
              !tb_rate_limit_parse("5/week", &l) && !tb_rate_limit_parse("-1/s", &l));
}
END_TEST

typedef struct hammer {
    tb_server *a, *b; /* b: NULL, or a second replica to alternate with */
    int seconds;
    long allowed, refused, other;
} hammer;

static void *hammer_run(void *arg)
{
    hammer *hm = arg;
    CURL *ha = curl_easy_init(), *hb = curl_easy_init();
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    reply r;
    for (unsigned long i = 0;; i++) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9 >=
            hm->seconds)
            break;
        bool second = hm->b && i % 2;
        long st = get(second ? hb : ha, second ? hm->b : hm->a, 1, "/ping", NULL, &r);
        if (st == 200)
            hm->allowed++;
        else if (st == 429)
            hm->refused++;
        else
            hm->other++;
    }
    curl_easy_cleanup(ha);
    curl_easy_cleanup(hb);
    return NULL;
}

/* Over 10 s of requests as fast as they go, a limit of 100/s with a burst of 20 lets through
 * 20 + 100 * 10 = 1020: exactly, within 5%, on one replica and on two sharing Redis. */
START_TEST(rate_limit_is_exact_within_5_percent_alone_and_shared_by_two_replicas)
{
    const char *redis = getenv("TB_TEST_REDIS_URL");
    ck_assert_msg(redis && *redis, "TB_TEST_REDIS_URL is not set (run under with-brokers.sh)");
    tb_server_opts o = TB_SERVER_OPTS_INIT;
    o.policy.rate_limit = "100/s";
    o.policy.rate_burst = 20;
    tb_server *local = start(&o);
    run(local);
    o.policy.rate_redis = redis;
    tb_server *r1 = start(&o), *r2 = start(&o);
    run(r1);
    run(r2);
    hammer h1 = {local, NULL, 10, 0, 0, 0}, h2 = {r1, r2, 10, 0, 0, 0};
    pthread_t t1, t2;
    ck_assert_int_eq(pthread_create(&t1, NULL, hammer_run, &h1), 0);
    ck_assert_int_eq(pthread_create(&t2, NULL, hammer_run, &h2), 0);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    double want = 20 + 100 * 10;
    double off1 = fabs((double)h1.allowed - want) / want * 100;
    double off2 = fabs((double)h2.allowed - want) / want * 100;
    printf("rate-limit: local %ld allowed in 10 s (expected %.0f, off by %.1f%%; %ld refused); "
           "shared by 2 replicas %ld (off by %.1f%%; %ld refused)\n",
           h1.allowed, want, off1, h1.refused, h2.allowed, off2, h2.refused);
    fflush(stdout);
    ck_assert_int_eq(h1.other + h2.other, 0);
    ck_assert_msg(h1.refused > 0 && h2.refused > 0, "the load never reached the limit");
    ck_assert_msg(off1 <= 5.0, "local: %ld allowed, want %.0f within 5%%", h1.allowed, want);
    ck_assert_msg(off2 <= 5.0, "shared: %ld allowed, want %.0f within 5%%", h2.allowed, want);
    tb_server_free(local);
    tb_server_free(r1);
    tb_server_free(r2);
}
END_TEST

/* ---- faults ---- */

START_TEST(fault_injection_answers_its_status_on_the_chosen_operations)
{
    tb_server_opts o = TB_SERVER_OPTS_INIT;
    o.policy.fault_status = 503;
    o.policy.fault_ops = "ping";
    tb_server *s = start(&o);
    run(s);
    reply r;
    char code[64];
    int before = atomic_load(&handled);
    ck_assert_int_eq(get(NULL, s, 1, "/ping", NULL, &r), 503);
    ck_assert_str_eq(error_code(&r, code, sizeof code), "fault_injected");
    ck_assert_int_eq(atomic_load(&handled), before);
    ck_assert_int_eq(get(NULL, s, 1, "/left", NULL, &r), 200);
    tb_server_free(s);

    o.policy.fault_status = 500;
    o.policy.fault_percent = 50;
    o.policy.fault_ops = NULL;
    s = start(&o);
    run(s);
    int failed = 0;
    for (int i = 0; i < 200; i++)
        failed += get(NULL, s, 1, "/ping", NULL, &r) == 500;
    ck_assert_msg(failed > 50 && failed < 150, "%d of 200 failed at 50%%", failed);
    tb_server_free(s);

    tb_error err = TB_ERROR_INIT;
    o.policy.fault_status = 200;
    ck_assert_ptr_null(tb_server_new(&api, &o, &err));
    tb_error_deinit(&err);
}
END_TEST

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    tb_log_set_level(TB_LOG_ERROR);
    Suite *suite = suite_create("http_policy");
    TCase *tc = tcase_create("policy");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, allowlist_answers_403_and_believes_forwarded_for_only_from_trusted_proxies);
    tcase_add_test(tc, in_flight_cap_answers_503_with_retry_after);
    tcase_add_test(tc, an_expired_deadline_answers_504_without_running_the_handler);
    tcase_add_test(tc, rate_limit_answers_429_with_retry_after_and_ratelimit_headers);
    tcase_add_test(tc, rate_limit_is_exact_within_5_percent_alone_and_shared_by_two_replicas);
    tcase_add_test(tc, fault_injection_answers_its_status_on_the_chosen_operations);
    suite_add_tcase(suite, tc);
    SRunner *sr = srunner_create(suite);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
