/*
 * Observability of the HTTP runtime (issue 14): W3C trace context carried from a request
 * through a generated-style client call to the next service; the runtime's /health/live,
 * /health/ready (checks, draining on shutdown) and /metrics (per operation, promtool-clean);
 * upstream discovery order.
 */
#include "tablium/client.h"
#include "tablium/http.h"
#include "tablium/log.h"
#include "tablium/metrics.h"
#include "tablium/trace.h"

#include "tb_test_http.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

typedef tht_reply reply;

/* ---- two services: "front" (GET /hop calls back's /leaf through tb_client) and "back" ---- */

static tb_client *to_back;

/* what /leaf saw */
static pthread_mutex_t seen_mu = PTHREAD_MUTEX_INITIALIZER;
static char seen_tp[128], seen_ts[600], seen_ctx_tp[64];
static char front_ctx_tp[64];

static void copy_str(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

static int leaf(tb_ctx *ctx, const tb_http_req *req, tb_http_res *res)
{
    pthread_mutex_lock(&seen_mu);
    copy_str(seen_tp, sizeof seen_tp, tb_http_req_header(req, "traceparent"));
    copy_str(seen_ts, sizeof seen_ts, tb_http_req_header(req, "tracestate"));
    copy_str(seen_ctx_tp, sizeof seen_ctx_tp, ctx->traceparent);
    pthread_mutex_unlock(&seen_mu);
    res->status = 200;
    tb_buf_puts(&res->body, "{\"data\":{}}");
    return 0;
}

static int hop(tb_ctx *ctx, const tb_http_req *req, tb_http_res *res)
{
    (void)req;
    pthread_mutex_lock(&seen_mu);
    copy_str(front_ctx_tp, sizeof front_ctx_tp, ctx->traceparent);
    pthread_mutex_unlock(&seen_mu);
    tb_client_call call;
    memset(&call, 0, sizeof call);
    call.method = "GET";
    call.path = "/leaf";
    call.operation_id = "leaf";
    call.route = "/leaf";
    tb_client_res r;
    tb_error err = TB_ERROR_INIT;
    int rc = tb_client_send(to_back, ctx, &call, &r, &err);
    tb_error_deinit(&err);
    res->status = rc == 0 && r.status == 200 ? 200 : 502;
    tb_buf_puts(&res->body, "{\"data\":{}}");
    return 0;
}

static int ping(tb_ctx *ctx, const tb_http_req *req, tb_http_res *res)
{
    (void)ctx, (void)req;
    res->status = 200;
    tb_buf_puts(&res->body, "{\"data\":{\"pong\":true}}");
    return 0;
}

static int boom(tb_ctx *ctx, const tb_http_req *req, tb_http_res *res)
{
    (void)ctx, (void)req;
    res->status = 503;
    tb_buf_puts(&res->body, "{\"error\":{\"code\":\"down\",\"message\":\"down\"}}");
    return 0;
}

static const tb_http_op ops[] = {
    {"hop", TB_HTTP_GET, "/hop", 0, hop, NULL},
    {"leaf", TB_HTTP_GET, "/leaf", 0, leaf, NULL},
    {"ping", TB_HTTP_GET, "/ping", 0, ping, NULL},
    {"boom", TB_HTTP_GET, "/boom", 0, boom, NULL},
};

/* GET PUT POST DELETE OPTIONS HEAD PATCH TRACE */
static const int16_t routes[][TB_HTTP_N_METHODS] = {
    {0, -1, -1, -1, -1, -1, -1, -1},
    {1, -1, -1, -1, -1, -1, -1, -1},
    {2, -1, -1, -1, -1, -1, -1, -1},
    {3, -1, -1, -1, -1, -1, -1, -1},
};

static int match(const char *path, size_t len, int method, tb_str *params, size_t *n_params)
{
    (void)method; /* one operation per path here */
    (void)params;
    *n_params = 0;
    static const char *const paths[] = {"/hop", "/leaf", "/ping", "/boom"};
    return tht_match(paths, 4, path, len);
}

static const tb_http_api front_api = {"front", "Front", "1.0", ops, 4, match, routes, 4, NULL, NULL, 0, NULL, 0, NULL, 0};
static const tb_http_api back_api = {"back", "Back", "1.0", ops, 4, match, routes, 4, NULL, NULL, 0, NULL, 0, NULL, 0};
static const tb_http_api obs_api = {"obs", "Obs", "1.0", ops, 4, match, routes, 4, NULL, NULL, 0, NULL, 0, NULL, 0};
static const tb_http_api met_api = {"met", "Met", "1.0", ops, 4, match, routes, 4, NULL, NULL, 0, NULL, 0, NULL, 0};

static tb_server *start(const tb_http_api *api, tb_server_opts *o)
{
    o->threads = 2;
    o->access_log = false;
    tb_error err = TB_ERROR_INIT;
    tb_server *s = tb_server_new(api, o, &err);
    ck_assert_msg(s != NULL, "%s", err.message);
    ck_assert_msg(tb_server_start(s, &err) == 0, "%s", err.message);
    tb_error_deinit(&err);
    return s;
}

static long get(const tb_server *s, const char *path, struct curl_slist *hl, reply *r)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", (unsigned)tb_server_port(s), path);
    return tht_request(NULL, "GET", url, 0, hl, r);
}

/* trace id (32 hex) and parent id (16 hex) of a traceparent, "" when it is not one */
static void tp_parts(const char *tp, char trace[33], char parent[17])
{
    tb_span_context sc;
    trace[0] = parent[0] = '\0';
    if (tp && tb_traceparent_decode(tp, strlen(tp), &sc)) {
        tb_trace_hex(sc.trace_id, 16, trace);
        tb_trace_hex(sc.span_id, 8, parent);
    }
}

START_TEST(the_callers_trace_goes_through_a_client_call_to_the_next_service)
{
    tb_server_opts o = TB_SERVER_OPTS_INIT;
    tb_server *back = start(&back_api, &o);
    tb_server_opts o2 = TB_SERVER_OPTS_INIT;
    tb_server *front = start(&front_api, &o2);
    char base[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%u", (unsigned)tb_server_port(back));
    tb_client_opts co = TB_CLIENT_OPTS_INIT;
    co.name = "back";
    tb_error err = TB_ERROR_INIT;
    to_back = tb_client_new(base, &co, &err);
    ck_assert_msg(to_back != NULL, "%s", err.message);

    const char *in_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    const char *in_parent = "00f067aa0ba902b7";
    struct curl_slist *hl = curl_slist_append(
        NULL, "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    hl = curl_slist_append(hl, "tracestate: congo=t61rcWkgMzE");
    hl = curl_slist_append(hl, "tracestate: rojo=00f067aa0ba902b7");
    reply r;
    ck_assert_int_eq(get(front, "/hop", hl, &r), 200);
    curl_slist_free_all(hl);

    char t_front[33], p_front[17], t_wire[33], p_wire[17], t_back[33], p_back[17];
    pthread_mutex_lock(&seen_mu);
    tp_parts(front_ctx_tp, t_front, p_front);
    tp_parts(seen_tp, t_wire, p_wire);
    tp_parts(seen_ctx_tp, t_back, p_back);
    printf("trace: in 00-%s-%s-01 -> front's server span %s -> on the wire %s -> back's server "
           "span %s; tracestate on the wire \"%s\"\n",
           in_trace, in_parent, front_ctx_tp, seen_tp, seen_ctx_tp, seen_ts);
    /* one trace id all along; every hop a new span id */
    ck_assert_str_eq(t_front, in_trace);
    ck_assert_str_eq(t_wire, in_trace);
    ck_assert_str_eq(t_back, in_trace);
    ck_assert_str_ne(p_front, in_parent);
    ck_assert_str_ne(p_wire, p_front); /* the client span sits between the two server spans */
    ck_assert_str_ne(p_back, p_wire);
    ck_assert_str_eq(seen_tp + 53, "01"); /* sampled, as the caller asked */
    ck_assert_str_eq(seen_ts, "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
    pthread_mutex_unlock(&seen_mu);

    /* invalid (uppercase hex): a new trace, and its tracestate is not carried */
    hl = curl_slist_append(
        NULL, "traceparent: 00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01");
    hl = curl_slist_append(hl, "tracestate: congo=t61rcWkgMzE");
    ck_assert_int_eq(get(front, "/hop", hl, &r), 200);
    curl_slist_free_all(hl);
    pthread_mutex_lock(&seen_mu);
    tp_parts(seen_tp, t_wire, p_wire);
    ck_assert_int_eq((int)strlen(t_wire), 32);
    ck_assert_str_ne(t_wire, "4bf92f3577b34da6a3ce929d0e0e4736");
    ck_assert_str_eq(seen_ts, "");
    pthread_mutex_unlock(&seen_mu);

    /* no header at all: a new trace that still propagates */
    ck_assert_int_eq(get(front, "/hop", NULL, &r), 200);
    pthread_mutex_lock(&seen_mu);
    tp_parts(seen_tp, t_wire, p_wire);
    tp_parts(front_ctx_tp, t_front, p_front);
    ck_assert_int_eq((int)strlen(t_wire), 32);
    ck_assert_str_eq(t_wire, t_front);
    pthread_mutex_unlock(&seen_mu);

    /* two traceparent headers: invalid, a new trace */
    hl = curl_slist_append(
        NULL, "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    hl = curl_slist_append(
        hl, "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4737-00f067aa0ba902b7-01");
    ck_assert_int_eq(get(front, "/hop", hl, &r), 200);
    curl_slist_free_all(hl);
    pthread_mutex_lock(&seen_mu);
    tp_parts(seen_tp, t_wire, p_wire);
    ck_assert_str_ne(t_wire, "4bf92f3577b34da6a3ce929d0e0e4736");
    ck_assert_str_ne(t_wire, "4bf92f3577b34da6a3ce929d0e0e4737");
    pthread_mutex_unlock(&seen_mu);

    tb_client_free(to_back);
    to_back = NULL;
    tb_error_deinit(&err);
    tb_server_free(front);
    tb_server_free(back);
}
END_TEST

/* ---- health ---- */

static atomic_int db_up = 1;

static int db_check(void *user, char *why, size_t cap)
{
    (void)user;
    if (atomic_load(&db_up))
        return 0;
    snprintf(why, cap, "database is locked");
    return 1;
}

static int broker_check(void *user, char *why, size_t cap)
{
    (void)user, (void)why, (void)cap;
    return 0;
}

typedef struct runner {
    tb_server *s;
    int rc;
} runner;

static void *run_thread(void *arg)
{
    runner *r = arg;
    tb_error err = TB_ERROR_INIT;
    r->rc = tb_server_run(r->s, &err);
    tb_error_deinit(&err);
    return NULL;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

START_TEST(health_live_and_ready_with_checks_and_draining_on_shutdown)
{
    tb_server_opts o = TB_SERVER_OPTS_INIT;
    o.threads = 2;
    o.access_log = false;
    o.drain_delay_ms = 800;
    tb_error err = TB_ERROR_INIT;
    tb_server *s = tb_server_new(&obs_api, &o, &err);
    ck_assert_msg(s != NULL, "%s", err.message);
    ck_assert_int_eq(tb_server_add_ready_check(s, "database", db_check, NULL), 0);
    ck_assert_int_eq(tb_server_add_ready_check(s, "rabbitmq", broker_check, NULL), 0);
    runner rn = {s, -1};
    pthread_t th;
    pthread_create(&th, NULL, run_thread, &rn);
    for (int i = 0; i < 200 && tb_server_port(s) == 0; i++)
        usleep(10000);
    ck_assert_uint_ne(tb_server_port(s), 0);

    reply r;
    ck_assert_int_eq(get(s, "/health/live", NULL, &r), 200);
    ck_assert_str_eq(r.body, "{\"status\":\"live\"}");
    ck_assert_int_eq(get(s, "/health/ready", NULL, &r), 200);
    ck_assert_str_eq(r.body, "{\"checks\":{\"database\":{\"status\":\"up\"},\"rabbitmq\":"
                             "{\"status\":\"up\"}},\"status\":\"ready\"}");
    atomic_store(&db_up, 0);
    ck_assert_int_eq(get(s, "/health/ready", NULL, &r), 503);
    ck_assert_str_eq(r.body, "{\"checks\":{\"database\":{\"status\":\"down\",\"reason\":"
                             "\"database is locked\"},\"rabbitmq\":{\"status\":\"up\"}},"
                             "\"status\":\"not_ready\"}");
    atomic_store(&db_up, 1);
    ck_assert_int_eq(get(s, "/health/ready", NULL, &r), 200);
    /* HEAD works too; POST is the spec's business (no such route: 404) */
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/health/live", (unsigned)tb_server_port(s));
    ck_assert_int_eq(tht_request(NULL, "POST", url, 0, NULL, &r), 404);

    /* shutdown: not ready at once, still serving during the drain delay, then stopped */
    double t0 = now_s();
    tb_server_shutdown(s);
    int ready_503 = 0, served = 0;
    while (now_s() - t0 < 0.5) {
        if (get(s, "/health/ready", NULL, &r) == 503 && strstr(r.body, "\"draining\""))
            ready_503++;
        if (get(s, "/ping", NULL, &r) == 200)
            served++;
        usleep(20000);
    }
    printf("health: during the 800 ms drain /health/ready answered 503 draining %d times and "
           "/ping was served %d times\n", ready_503, served);
    ck_assert_int_gt(ready_503, 3);
    ck_assert_int_gt(served, 3);
    pthread_join(th, NULL);
    ck_assert_int_eq(rn.rc, 0);
    ck_assert_int_eq(get(s, "/health/live", NULL, &r), 0); /* gone */
    tb_server_free(s);
    tb_error_deinit(&err);
}
END_TEST

/* ---- /metrics ---- */

/* The value of the first sample line starting with `prefix` and containing every fragment of
 * `has` (NULL-terminated); -1 when none. */
static double sample(const char *text, const char *prefix, const char *const *has)
{
    const char *line = text;
    while (line && *line) {
        const char *eol = strchr(line, '\n');
        size_t n = eol ? (size_t)(eol - line) : strlen(line);
        char buf[1024];
        if (n < sizeof buf && strncmp(line, prefix, strlen(prefix)) == 0) {
            memcpy(buf, line, n);
            buf[n] = '\0';
            bool all = true;
            for (size_t i = 0; has && has[i]; i++)
                all = all && strstr(buf, has[i]) != NULL;
            if (all) {
                const char *sp = strrchr(buf, ' ');
                return sp ? strtod(sp + 1, NULL) : -1;
            }
        }
        line = eol ? eol + 1 : NULL;
    }
    return -1;
}

/* GET /metrics into a malloc'd string (the body can pass the reply's 4 KiB). */
static char *scrape(const tb_server *s, const char *path, long *status, char *ctype, size_t cap)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", (unsigned)tb_server_port(s), path);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    *status = 0;
    if (curl_easy_perform(c) == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
        char *ct = NULL;
        curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
        snprintf(ctype, cap, "%s", ct ? ct : "");
    }
    curl_easy_cleanup(c);
    fclose(f);
    return buf;
}

START_TEST(metrics_count_requests_per_operation_and_pass_promtool)
{
    tb_server_opts o = TB_SERVER_OPTS_INIT;
    tb_server *s = start(&met_api, &o);
    reply r;
    for (int i = 0; i < 7; i++)
        ck_assert_int_eq(get(s, "/ping", NULL, &r), 200);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(get(s, "/boom", NULL, &r), 503);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(get(s, "/no/such/path", NULL, &r), 404);
    ck_assert_int_eq(get(s, "/health/live", NULL, &r), 200); /* not counted */

    long status;
    char ctype[128];
    char *text = scrape(s, "/metrics", &status, ctype, sizeof ctype);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(ctype, TB_METRICS_CONTENT_TYPE);
    const char *ping_ok[] = {"service=\"met\"", "operation=\"ping\"", "=\"200\"", NULL};
    const char *boom_5xx[] = {"service=\"met\"", "operation=\"boom\"", "=\"503\"", NULL};
    const char *unmatched[] = {"service=\"met\"", "operation=\"_unmatched\"", "=\"404\"", NULL};
    const char *ping_hist[] = {"service=\"met\"", "operation=\"ping\"", NULL};
    const char *live[] = {"service=\"met\"", "health", NULL};
    double n_ping = sample(text, "http_server_requests_total{", ping_ok);
    double n_boom = sample(text, "http_server_requests_total{", boom_5xx);
    double n_404 = sample(text, "http_server_requests_total{", unmatched);
    double n_hist = sample(text, "http_server_request_duration_seconds_count{", ping_hist);
    printf("metrics: /metrics of a test service: ping %g, boom (503) %g, unmatched (404) %g, "
           "ping histogram count %g; %zu bytes\n", n_ping, n_boom, n_404, n_hist, strlen(text));
    ck_assert_double_eq(n_ping, 7);
    ck_assert_double_eq(n_boom, 2);
    ck_assert_double_eq(n_404, 3);
    ck_assert_double_eq(n_hist, 7);
    ck_assert_double_eq(sample(text, "http_server_requests_total{", live), -1);
    ck_assert_ptr_nonnull(strstr(text, "\nprocess_resident_memory_bytes "));
    ck_assert_ptr_nonnull(strstr(text, "\nprocess_open_fds "));
    ck_assert_ptr_null(strstr(text, "/no/such/path")); /* never the raw path */

    /* promtool, the Prometheus project's own linter, on the whole exposition */
    char path[] = "/tmp/tb-metrics-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq((int)write(fd, text, strlen(text)), (int)strlen(text));
    close(fd);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "promtool check metrics < %s 2>&1", path);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    char out[4096];
    size_t on = fread(out, 1, sizeof out - 1, p);
    out[on] = '\0';
    int prc = pclose(p);
    unlink(path);
    ck_assert_msg(prc == 0, "promtool check metrics failed (%d):\n%s", prc, out);
    free(text);

    /* another path, and off */
    tb_server_free(s);
    o = (tb_server_opts)TB_SERVER_OPTS_INIT;
    o.metrics_path = "/internal/metrics";
    s = start(&met_api, &o);
    text = scrape(s, "/internal/metrics", &status, ctype, sizeof ctype);
    ck_assert_int_eq(status, 200);
    free(text);
    ck_assert_int_eq(get(s, "/metrics", NULL, &r), 404);
    tb_server_free(s);
    o = (tb_server_opts)TB_SERVER_OPTS_INIT;
    o.metrics_path = "off";
    s = start(&met_api, &o);
    ck_assert_int_eq(get(s, "/metrics", NULL, &r), 404);
    tb_server_free(s);
    tb_error err = TB_ERROR_INIT;
    o.metrics_path = "metrics";
    ck_assert_ptr_null(tb_server_new(&met_api, &o, &err));
    ck_assert_ptr_nonnull(strstr(err.message, "TB_METRICS_PATH"));
    tb_error_deinit(&err);
}
END_TEST

/* ---- discovery ---- */

START_TEST(service_urls_resolve_in_the_documented_order)
{
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("GAME_STATE_SERVICE_URL");
    unsetenv("GAME_STATE_SERVICE_HOST");
    unsetenv("GAME_STATE_SERVICE_PORT");
    char *u = tb_service_url("game-state", "http://localhost:8085/");
    ck_assert_str_eq(u, "http://localhost:8085"); /* the spec's servers */
    free(u);
    u = tb_service_url("game-state", NULL);
    ck_assert_str_eq(u, "http://127.0.0.1:8080");
    free(u);
    setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1", 1);
    u = tb_service_url("game-state", "http://localhost:8085");
    ck_assert_str_eq(u, "http://game-state:8085"); /* the service's DNS name in a pod */
    free(u);
    setenv("TB_K8S_NAMESPACE", "tablium", 1);
    u = tb_service_url("game-state", "http://localhost:8085");
    ck_assert_str_eq(u, "http://game-state.tablium.svc.cluster.local:8085");
    free(u);
    setenv("GAME_STATE_SERVICE_HOST", "10.96.0.12", 1);
    setenv("GAME_STATE_SERVICE_PORT", "8085", 1);
    u = tb_service_url("game-state", "http://localhost:8085");
    ck_assert_str_eq(u, "http://10.96.0.12:8085"); /* Kubernetes' own variables */
    free(u);
    setenv("GAME_STATE_SERVICE_URL", "https://state.example:9443/", 1);
    u = tb_service_url("game-state", "http://localhost:8085");
    ck_assert_str_eq(u, "https://state.example:9443"); /* the explicit URL wins */
    free(u);
    setenv("GAME_STATE_SERVICE_URL", "", 1); /* empty = unset */
    u = tb_service_url("game-state", "http://localhost:8085");
    ck_assert_str_eq(u, "http://10.96.0.12:8085");
    free(u);
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("TB_K8S_NAMESPACE");
    unsetenv("GAME_STATE_SERVICE_URL");
    unsetenv("GAME_STATE_SERVICE_HOST");
    unsetenv("GAME_STATE_SERVICE_PORT");
}
END_TEST

/* ---- a collector that accepts and never answers ---- */

static int hole_fd = -1;

/* Listens on a loopback port and never accepts or reads: the exporter's connections complete
 * in the backlog, its requests are never answered. Returns the port. */
static int black_hole(void)
{
    hole_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (hole_fd < 0 || bind(hole_fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(hole_fd, 64) != 0)
        return 0;
    socklen_t len = sizeof sa;
    getsockname(hole_fd, (struct sockaddr *)&sa, &len);
    return ntohs(sa.sin_port);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The collector hangs (this binary exports every span to the black hole, a queue of 64): the
 * requests keep their latency, and the drop counter says what was lost. */
START_TEST(a_hanging_collector_costs_requests_nothing_and_drops_are_counted)
{
    tb_server_opts o = TB_SERVER_OPTS_INIT;
    tb_server *s = start(&obs_api, &o);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/ping", (unsigned)tb_server_port(s));
    CURL *h = curl_easy_init();
    enum { N = 2000 };
    static double ms[N];
    reply r;
    for (int i = 0; i < N; i++) {
        double t0 = now_s();
        ck_assert_int_eq(tht_request(h, "GET", url, 0, NULL, &r), 200);
        ms[i] = (now_s() - t0) * 1e3;
    }
    curl_easy_cleanup(h);
    qsort(ms, N, sizeof ms[0], cmp_double);
    tb_trace_stats st;
    tb_trace_stats_get(&st);
    printf("trace-export: collector hanging: %d requests, p50 %.3f ms, p99 %.3f ms, max %.3f ms; "
           "spans sampled %llu, exported %llu, dropped %llu (queue of 64 full), queued now %zu\n",
           N, ms[N / 2], ms[N * 99 / 100], ms[N - 1], (unsigned long long)st.spans_sampled,
           (unsigned long long)st.spans_exported, (unsigned long long)st.spans_dropped,
           st.queue_len);
    ck_assert_uint_eq(st.spans_exported, 0);
    ck_assert_uint_ge(st.spans_dropped, N - 64 - 2 * 64); /* all but what the queue and the
                                                             stuck batch hold */
    ck_assert_uint_ge(st.spans_sampled, N);
    tb_server_free(s);
}
END_TEST

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    /* before the first span: every span of this binary goes to a collector that hangs */
    int hole = black_hole();
    if (hole > 0) {
        char ep[64];
        snprintf(ep, sizeof ep, "http://127.0.0.1:%d", hole);
        setenv("OTEL_EXPORTER_OTLP_ENDPOINT", ep, 1);
        setenv("OTEL_BSP_MAX_QUEUE_SIZE", "64", 1);
        setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "64", 1);
        setenv("OTEL_BSP_SCHEDULE_DELAY", "50", 1);
        setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "60000", 1);
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    tb_log_set_level(TB_LOG_ERROR);
    Suite *suite = suite_create("http_observability");
    TCase *tc = tcase_create("observability");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, the_callers_trace_goes_through_a_client_call_to_the_next_service);
    tcase_add_test(tc, health_live_and_ready_with_checks_and_draining_on_shutdown);
    tcase_add_test(tc, metrics_count_requests_per_operation_and_pass_promtool);
    tcase_add_test(tc, service_urls_resolve_in_the_documented_order);
    tcase_add_test(tc, a_hanging_collector_costs_requests_nothing_and_drops_are_counted);
    suite_add_tcase(suite, tc);
    SRunner *sr = srunner_create(suite);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    tb_trace_shutdown(200); /* the collector never answers: cut it short */
    if (hole_fd >= 0)
        close(hole_fd);
    curl_global_cleanup();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
