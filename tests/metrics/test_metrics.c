/* Unit tests of runtime/metrics: the exposition text (golden), escaping, histograms, the
 * cardinality bound, concurrent updates, collect functions, the runtime's families, and
 * `promtool check metrics` on everything the runtime exports. */
#include "tablium/buf.h"
#include "tablium/error.h"
#include "tablium/metrics.h"

#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char *render(tb_metrics_registry *reg)
{
    tb_buf b = TB_BUF_INIT;
    ck_assert_int_eq(tb_metrics_registry_render(reg, &b), 0);
    char *s = tb_buf_steal(&b, NULL);
    return s;
}

START_TEST(a_small_registry_renders_exactly)
{
    tb_metrics_registry *reg = tb_metrics_registry_new();
    static const char *const ml[] = {"method", "code", NULL};
    tb_metric_family *req = tb_metrics_counter(reg, "http_requests_total", "Requests served.", ml);
    tb_metric_family *temp = tb_metrics_gauge(reg, "room_temperature_celsius", "Now.", NULL);
    static const double b[] = {0.1, 1};
    tb_metric_family *rpc = tb_metrics_histogram(reg, "rpc_seconds", "RPC latency.", NULL, b, 2);
    tb_metric_family *empty = tb_metrics_counter(reg, "never_used_total", "No series.", ml);
    ck_assert_ptr_nonnull(req);
    ck_assert_ptr_nonnull(temp);
    ck_assert_ptr_nonnull(rpc);
    ck_assert_ptr_nonnull(empty);

    tb_metric_add(tb_metric_get(req, (const char *[]){"post", "200"}), 1027);
    tb_metric_add(tb_metric_get(req, (const char *[]){"post", "400"}), 3);
    tb_metric_inc(tb_metric_get(req, (const char *[]){"get", "200"}));
    tb_metric *t = tb_metric_get(temp, NULL);
    tb_metric_set(t, 21.5);
    tb_metric_gauge_add(t, -0.25);
    tb_metric *h = tb_metric_get(rpc, NULL);
    tb_metric_observe(h, 0.05);
    tb_metric_observe(h, 0.1); /* le is inclusive */
    tb_metric_observe(h, 0.5);
    tb_metric_observe(h, 2);
    tb_metric_observe(h, NAN); /* ignored */

    char *s = render(reg);
    ck_assert_str_eq(s, "# HELP http_requests_total Requests served.\n"
                        "# TYPE http_requests_total counter\n"
                        "http_requests_total{method=\"get\",code=\"200\"} 1\n"
                        "http_requests_total{method=\"post\",code=\"200\"} 1027\n"
                        "http_requests_total{method=\"post\",code=\"400\"} 3\n"
                        "# HELP room_temperature_celsius Now.\n"
                        "# TYPE room_temperature_celsius gauge\n"
                        "room_temperature_celsius 21.25\n"
                        "# HELP rpc_seconds RPC latency.\n"
                        "# TYPE rpc_seconds histogram\n"
                        "rpc_seconds_bucket{le=\"0.1\"} 2\n"
                        "rpc_seconds_bucket{le=\"1\"} 3\n"
                        "rpc_seconds_bucket{le=\"+Inf\"} 4\n"
                        "rpc_seconds_sum 2.65\n"
                        "rpc_seconds_count 4\n");
    free(s);
    ck_assert_uint_eq(tb_metric_count(h), 4);
    ck_assert(fabs(tb_metric_value(h) - 2.65) < 1e-12);
    tb_metrics_registry_free(reg);
}
END_TEST

START_TEST(help_and_label_values_are_escaped)
{
    tb_metrics_registry *reg = tb_metrics_registry_new();
    static const char *const l[] = {"path", NULL};
    tb_metric_family *f =
        tb_metrics_counter(reg, "odd_total", "A \\ backslash,\na newline and \"quotes\".", l);
    tb_metric_inc(tb_metric_get(f, (const char *[]){"C:\\dir \"x\"\nnext"}));
    char *s = render(reg);
    ck_assert_str_eq(s, "# HELP odd_total A \\\\ backslash,\\na newline and \"quotes\".\n"
                        "# TYPE odd_total counter\n"
                        "odd_total{path=\"C:\\\\dir \\\"x\\\"\\nnext\"} 1\n");
    free(s);
    tb_metrics_registry_free(reg);
}
END_TEST

START_TEST(label_values_are_cut_and_made_valid_utf8)
{
    tb_metrics_registry *reg = tb_metrics_registry_new();
    static const char *const l[] = {"v", NULL};
    tb_metric_family *f = tb_metrics_counter(reg, "v_total", "v.", l);
    char longv[300];
    memset(longv, 'a', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    longv[127] = '\xc3'; /* a two-byte character straddling the limit is dropped whole */
    longv[128] = '\xa9';
    tb_metric *a = tb_metric_get(f, (const char *[]){longv});
    char cut[128];
    memcpy(cut, longv, 127);
    cut[127] = '\0';
    ck_assert_ptr_eq(tb_metric_get(f, (const char *[]){cut}), a); /* same series */
    tb_metric *bad = tb_metric_get(f, (const char *[]){"x\xff\xc3zy\xc3\xa9"});
    ck_assert_ptr_eq(tb_metric_get(f, (const char *[]){"x?\?zy\xc3\xa9"}), bad);
    ck_assert_ptr_eq(tb_metric_get(f, (const char *[]){NULL}),
                     tb_metric_get(f, (const char *[]){""}));
    tb_metric_inc(bad);
    char *s = render(reg);
    ck_assert_ptr_nonnull(strstr(s, "v_total{v=\"x?\?zy\xc3\xa9\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(s, "v_total{v=\"\"} 0\n"));
    free(s);
    tb_metrics_registry_free(reg);
}
END_TEST

/* Parses the _bucket lines of `name` for one series (all of them here) and checks ascending le,
 * non-decreasing counts, +Inf == _count. */
static void check_cumulative(const char *text, const char *name, uint64_t want_count)
{
    char prefix[128];
    snprintf(prefix, sizeof prefix, "%s_bucket{", name);
    double last_le = -INFINITY;
    unsigned long long last = 0, inf = 0, count = 0;
    bool seen_inf = false;
    int buckets = 0;
    for (const char *p = text; *p;) {
        const char *e = strchr(p, '\n');
        ck_assert_ptr_nonnull(e);
        if (strncmp(p, prefix, strlen(prefix)) == 0) {
            const char *le = strstr(p, "le=\"");
            ck_assert_ptr_nonnull(le);
            le += 4;
            double v = strncmp(le, "+Inf", 4) == 0 ? INFINITY : strtod(le, NULL);
            unsigned long long c = strtoull(strrchr(p, ' ') + 1, NULL, 10);
            ck_assert_msg(v > last_le, "le not ascending at %.*s", (int)(e - p), p);
            ck_assert_msg(c >= last, "bucket count falls at %.*s", (int)(e - p), p);
            last_le = v;
            last = c;
            buckets++;
            if (isinf(v))
                inf = c, seen_inf = true;
        } else if (strncmp(p, name, strlen(name)) == 0 &&
                   strncmp(p + strlen(name), "_count ", 7) == 0) {
            count = strtoull(p + strlen(name) + 7, NULL, 10);
        }
        p = e + 1;
    }
    ck_assert(seen_inf);
    ck_assert_int_gt(buckets, 1);
    ck_assert_uint_eq(inf, count);
    ck_assert_uint_eq(count, want_count);
}

START_TEST(histogram_buckets_are_cumulative_and_inf_equals_count)
{
    tb_metrics_registry *reg = tb_metrics_registry_new();
    tb_metric_family *f = tb_metrics_histogram(reg, "lat_seconds", "Latency.", NULL, NULL, 0);
    tb_metric *m = tb_metric_get(f, NULL);
    static const double http[] = TB_METRICS_BUCKETS_HTTP;
    unsigned seed = 7;
    uint64_t n = 0, in_first = 0;
    double sum = 0;
    for (int i = 0; i < 10000; i++) {
        double v = (double)rand_r(&seed) / RAND_MAX * 12.0 * (i % 3 ? 0.01 : 1);
        tb_metric_observe(m, v);
        n++;
        sum += v;
        in_first += v <= http[0];
    }
    char *s = render(reg);
    check_cumulative(s, "lat_seconds", n);
    char line[64];
    snprintf(line, sizeof line, "lat_seconds_bucket{le=\"0.005\"} %llu\n",
             (unsigned long long)in_first);
    ck_assert_ptr_nonnull(strstr(s, line));
    ck_assert(fabs(tb_metric_value(m) - sum) < 1e-6);
    free(s);
    tb_metrics_registry_free(reg);
}
END_TEST

START_TEST(a_full_family_sends_new_label_sets_to_one_other_series)
{
    tb_metrics_registry *reg = tb_metrics_registry_new();
    static const char *const l[] = {"user", "op", NULL};
    tb_metric_opts o = {.name = "hits_total", .help = "Hits.", .labels = l, .max_series = 3};
    int rc = 1;
    tb_metric_family *f = tb_metrics_register(reg, TB_METRIC_COUNTER, &o, &rc);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(rc, 0);
    char u[16];
    for (int i = 0; i < 6; i++) {
        snprintf(u, sizeof u, "u%d", i);
        tb_metric_inc(tb_metric_get(f, (const char *[]){u, "get"}));
    }
    /* an existing series is still found once the family is full */
    tb_metric_inc(tb_metric_get(f, (const char *[]){"u0", "get"}));
    char *s = render(reg);
    ck_assert_str_eq(s, "# HELP hits_total Hits.\n"
                        "# TYPE hits_total counter\n"
                        "hits_total{user=\"other\",op=\"other\"} 3\n"
                        "hits_total{user=\"u0\",op=\"get\"} 2\n"
                        "hits_total{user=\"u1\",op=\"get\"} 1\n"
                        "hits_total{user=\"u2\",op=\"get\"} 1\n"
                        "# HELP tablium_metrics_overflow_total Lookups of a full metric family "
                        "that went to its overflow series (label values \"other\").\n"
                        "# TYPE tablium_metrics_overflow_total counter\n"
                        "tablium_metrics_overflow_total{family=\"hits_total\"} 3\n");
    free(s);
    tb_metrics_registry_free(reg);
}
END_TEST

START_TEST(registration_is_idempotent_and_checks_names)
{
    tb_metrics_registry *reg = tb_metrics_registry_new();
    static const char *const l[] = {"a", NULL}, *const l2[] = {"b", NULL};
    static const char *const le[] = {"le", NULL}, *const dup[] = {"a", "a", NULL};
    static const char *const under[] = {"__x", NULL}, *const bad[] = {"a-b", NULL};
    tb_metric_family *f = tb_metrics_counter(reg, "x_total", "X.", l);
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_eq(tb_metrics_counter(reg, "x_total", "Other help.", l), f);
    int rc = 0;
    tb_metric_opts o = {.name = "x_total", .labels = l2};
    ck_assert_ptr_null(tb_metrics_register(reg, TB_METRIC_COUNTER, &o, &rc));
    ck_assert_int_eq(rc, TB_EINVAL);
    o.labels = l;
    ck_assert_ptr_null(tb_metrics_register(reg, TB_METRIC_GAUGE, &o, &rc));
    ck_assert_int_eq(rc, TB_EINVAL);
    ck_assert_ptr_null(tb_metrics_counter(reg, "9lives", "", NULL));
    ck_assert_ptr_null(tb_metrics_counter(reg, "a b", "", NULL));
    ck_assert_ptr_null(tb_metrics_counter(reg, "", "", NULL));
    ck_assert_ptr_null(tb_metrics_counter(reg, "tablium_metrics_overflow_total", "", l));
    ck_assert_ptr_nonnull(tb_metrics_counter(reg, "ns:sub_total", "", NULL));
    ck_assert_ptr_null(tb_metrics_histogram(reg, "h_seconds", "", le, NULL, 0));
    ck_assert_ptr_nonnull(tb_metrics_counter(reg, "le_ok_total", "", le)); /* only histograms */
    ck_assert_ptr_null(tb_metrics_counter(reg, "d_total", "", dup));
    ck_assert_ptr_null(tb_metrics_counter(reg, "u_total", "", under));
    ck_assert_ptr_null(tb_metrics_counter(reg, "b_total", "", bad));
    static const double down[] = {1, 0.5}, inf[] = {1, INFINITY};
    ck_assert_ptr_null(tb_metrics_histogram(reg, "h1_seconds", "", NULL, down, 2));
    ck_assert_ptr_null(tb_metrics_histogram(reg, "h2_seconds", "", NULL, inf, 2));
    /* updates of the wrong kind and on NULL are no-ops */
    tb_metric *m = tb_metric_get(f, (const char *[]){"v"});
    tb_metric_set(m, 5);
    tb_metric_observe(m, 5);
    tb_metric_add(NULL, 1);
    tb_metric_observe(NULL, 1);
    ck_assert_ptr_null(tb_metric_get(NULL, NULL));
    ck_assert_uint_eq(tb_metric_count(m), 0);
    tb_metrics_registry_free(reg);
    tb_metrics_registry_free(NULL);
}
END_TEST

enum { THREADS = 12, ROUNDS = 20000, KEYS = 50 }; /* more threads than stripes: some share one */
static tb_metric_family *conc_c, *conc_h, *conc_g;

static void *hammer(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    char k[16];
    for (int i = 0; i < ROUNDS; i++) {
        snprintf(k, sizeof k, "k%d", (i + (int)id) % KEYS); /* series made concurrently */
        tb_metric_inc(tb_metric_get(conc_c, (const char *[]){k}));
        tb_metric_observe(tb_metric_get(conc_h, (const char *[]){k}), 0.25);
        tb_metric_gauge_add(tb_metric_get(conc_g, NULL), 1);
    }
    return NULL;
}

START_TEST(concurrent_updates_add_up_exactly)
{
    tb_metrics_registry *reg = tb_metrics_registry_new();
    static const char *const l[] = {"k", NULL};
    conc_c = tb_metrics_counter(reg, "c_total", "C.", l);
    conc_h = tb_metrics_histogram(reg, "h_seconds", "H.", l, NULL, 0);
    conc_g = tb_metrics_gauge(reg, "g", "G.", NULL);
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, hammer, (void *)(uintptr_t)i), 0);
    /* render while they run: the output stays well-formed */
    for (int i = 0; i < 20; i++) {
        char *s = render(reg);
        free(s);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    uint64_t total = 0, htotal = 0;
    double hsum = 0;
    char k[16];
    for (int i = 0; i < KEYS; i++) {
        snprintf(k, sizeof k, "k%d", i);
        total += tb_metric_count(tb_metric_get(conc_c, (const char *[]){k}));
        tb_metric *h = tb_metric_get(conc_h, (const char *[]){k});
        htotal += tb_metric_count(h);
        hsum += tb_metric_value(h);
    }
    ck_assert_uint_eq(total, (uint64_t)THREADS * ROUNDS);
    ck_assert_uint_eq(htotal, (uint64_t)THREADS * ROUNDS);
    ck_assert(hsum == 0.25 * THREADS * ROUNDS); /* exact: multiples of 0.25 */
    ck_assert(tb_metric_value(tb_metric_get(conc_g, NULL)) == (double)THREADS * ROUNDS);
    char *s = render(reg);
    ck_assert_ptr_null(strstr(s, "other"));
    free(s);
    tb_metrics_registry_free(reg);
}
END_TEST

static double value_fn(void *user)
{
    return *(double *)user;
}

START_TEST(collect_functions_run_at_render_until_removed)
{
    tb_metrics_registry *reg = tb_metrics_registry_new();
    static const char *const l[] = {"queue", NULL};
    double depth = 12, dropped = 3;
    tb_metric_family *q = tb_metrics_gauge(reg, "queue_messages", "Depth.", l);
    ck_assert_int_eq(tb_metric_on_collect(q, (const char *[]){"a"}, value_fn, &depth), 0);
    ck_assert_int_eq(tb_metrics_fn(reg, TB_METRIC_COUNTER, "spans_dropped_total", "Dropped.",
                                   value_fn, &dropped),
                     0);
    ck_assert_int_eq(tb_metrics_fn(reg, TB_METRIC_HISTOGRAM, "nope_seconds", "", value_fn, NULL),
                     TB_EINVAL);
    char *s = render(reg);
    ck_assert_ptr_nonnull(strstr(s, "queue_messages{queue=\"a\"} 12\n"));
    ck_assert_ptr_nonnull(strstr(s, "spans_dropped_total 3\n"));
    free(s);
    depth = 0.5;
    dropped = 4;
    s = render(reg);
    ck_assert_ptr_nonnull(strstr(s, "queue_messages{queue=\"a\"} 0.5\n"));
    ck_assert_ptr_nonnull(strstr(s, "spans_dropped_total 4\n"));
    free(s);
    tb_metrics_fn_remove(reg, &depth);
    s = render(reg);
    ck_assert_ptr_null(strstr(s, "queue_messages"));
    ck_assert_ptr_nonnull(strstr(s, "spans_dropped_total 4\n"));
    free(s);
    tb_metrics_registry_free(reg);
}
END_TEST

static double seven(void *user)
{
    (void)user;
    return 7;
}

/* Every family the runtime exports, with a few series each. */
static void fill_runtime_families(void)
{
    tb_metrics_http_server_active("wallet", 1);
    tb_metrics_http_server("wallet", "getBalance", "GET", 200, 0.003);
    tb_metrics_http_server("wallet", "getBalance", "GET", 404, 0.002);
    tb_metrics_http_server("wallet", "credit", "POST", 201, 0.04);
    tb_metrics_http_server("wallet", "credit", "POST", 503, 1.2);
    tb_metrics_http_server("wallet", "credit", "BREW", 999, 0.1);
    tb_metrics_http_server_active("wallet", -1);
    tb_metrics_http_server_active("wallet", 1);
    tb_metrics_refused("wallet", "rate_limited");
    tb_metrics_refused("wallet", "unauthorized");
    tb_metrics_refused("wallet", "made-up");
    tb_metrics_http_client("user", "getUser", "GET", 200, "ok", 0.01, 0);
    tb_metrics_http_client("user", "getUser", "GET", 503, "error", 0.5, 2);
    tb_metrics_http_client("user", "getUser", "GET", 0, "timeout", 2, 1);
    tb_metrics_http_client("user", "getUser", "GET", 0, "open", 0, 0);
    tb_metrics_http_client("user", "getUser", "GET", 0, "busy", 0, 0);
    tb_metrics_breaker_state("user", 0);
    tb_metrics_breaker_state("user", 1);
    tb_metrics_breaker_state("auth", 2);
    tb_metrics_event_published("wallet", "wallet.credited", "rabbitmq", true);
    tb_metrics_event_published("wallet", "wallet.credited", "rabbitmq", false);
    tb_metrics_event_published("wallet", "presence.changed", "redis", true);
    tb_metrics_event_consumed("user", "wallet.credited", "rabbitmq", "ack");
    tb_metrics_event_consumed("user", "wallet.credited", "rabbitmq", "retry");
    tb_metrics_event_consumed("user", "wallet.credited", "rabbitmq", "invalid");
    tb_metrics_event_retried("user", "wallet.credited", "rabbitmq");
    tb_metrics_event_dead_lettered("user", "wallet.credited", "rabbitmq");
    tb_metrics_event_declare("user", "user.registered", "redis", false, true);
    tb_metrics_consumer_lag_seconds("user", "rabbitmq", 0.042);
    tb_metrics_consumer_lag_messages("user", "rabbitmq", "user", 3);
    ck_assert_int_eq(
        tb_metrics_consumer_lag_messages_fn("user", "rabbitmq", "user.dlq", seven, NULL), 0);
    ck_assert_int_eq(tb_metrics_fn(NULL, TB_METRIC_COUNTER, "tablium_trace_spans_exported_total",
                                   "Spans acknowledged by the OTLP collector.", seven, NULL),
                     0);
    ck_assert_int_eq(tb_metrics_fn(NULL, TB_METRIC_COUNTER, "tablium_trace_spans_dropped_total",
                                   "Spans dropped: export queue full, or given up after retries.",
                                   seven, NULL),
                     0);
    ck_assert_int_eq(tb_metrics_fn(NULL, TB_METRIC_COUNTER, "tablium_trace_export_failures_total",
                                   "OTLP export requests that failed.", seven, NULL),
                     0);
    ck_assert_int_eq(tb_metrics_fn(NULL, TB_METRIC_GAUGE, "tablium_trace_queue_spans",
                                   "Spans waiting for export.", seven, NULL),
                     0);
    /* fill one family past its limit so the overflow counter shows too */
    char u[32];
    for (int i = 0; i <= TB_METRICS_MAX_SERIES; i++) {
        snprintf(u, sizeof u, "upstream%d", i);
        tb_metrics_breaker_state(u, 0);
    }
}

START_TEST(runtime_families_have_their_labels_and_bounded_values)
{
    tb_metrics_reset();
    fill_runtime_families();
    tb_buf b = TB_BUF_INIT;
    ck_assert_int_eq(tb_metrics_render(&b), 0);
    const char *s = b.data;
    static const char *const want[] = {
        "http_server_requests_total{service=\"wallet\",operation=\"credit\","
        "http_request_method=\"_OTHER\",http_response_status_code=\"other\"} 1\n",
        "http_server_requests_total{service=\"wallet\",operation=\"getBalance\","
        "http_request_method=\"GET\",http_response_status_code=\"404\"} 1\n",
        "http_server_request_duration_seconds_count{service=\"wallet\",operation=\"credit\","
        "http_request_method=\"POST\",http_response_status_class=\"5xx\"} 1\n",
        "http_server_request_duration_seconds_bucket{service=\"wallet\",operation=\"credit\","
        "http_request_method=\"POST\",http_response_status_class=\"2xx\",le=\"0.05\"} 1\n",
        "http_server_active_requests{service=\"wallet\"} 1\n",
        "tablium_server_refused_total{service=\"wallet\",reason=\"other\"} 1\n",
        "tablium_server_refused_total{service=\"wallet\",reason=\"rate_limited\"} 1\n",
        "http_client_request_duration_seconds_count{upstream=\"user\",operation=\"getUser\","
        "http_request_method=\"GET\",http_response_status_class=\"none\",outcome=\"timeout\"} 1\n",
        "tablium_client_retries_total{upstream=\"user\",operation=\"getUser\"} 3\n",
        "tablium_client_fail_fast_total{upstream=\"user\",reason=\"busy\"} 1\n",
        "tablium_client_fail_fast_total{upstream=\"user\",reason=\"open\"} 1\n",
        "tablium_client_breaker_state{upstream=\"user\",state=\"open\"} 1\n",
        "tablium_client_breaker_state{upstream=\"user\",state=\"closed\"} 0\n",
        "tablium_client_breaker_state{upstream=\"auth\",state=\"half_open\"} 1\n",
        "tablium_client_breaker_state{upstream=\"other\",state=\"other\"} 0\n",
        "tablium_events_published_total{service=\"wallet\",event_type=\"wallet.credited\","
        "transport=\"rabbitmq\"} 1\n",
        "tablium_events_publish_failed_total{service=\"wallet\",event_type=\"wallet.credited\","
        "transport=\"rabbitmq\"} 1\n",
        "tablium_events_consumed_total{service=\"user\",event_type=\"wallet.credited\","
        "transport=\"rabbitmq\",result=\"invalid\"} 1\n",
        "tablium_events_retried_total{service=\"user\",event_type=\"wallet.credited\","
        "transport=\"rabbitmq\"} 1\n",
        "tablium_events_dead_lettered_total{service=\"user\",event_type=\"wallet.credited\","
        "transport=\"rabbitmq\"} 1\n",
        "tablium_events_consumer_lag_seconds{service=\"user\",transport=\"rabbitmq\"} 0.042\n",
        "tablium_events_dead_lettered_total{service=\"user\",event_type=\"user.registered\","
        "transport=\"redis\"} 0\n",
        "tablium_events_consumed_total{service=\"user\",event_type=\"user.registered\","
        "transport=\"redis\",result=\"ack\"} 0\n",
        "tablium_events_consumer_lag_messages{service=\"user\",transport=\"rabbitmq\","
        "queue=\"user.dlq\"} 7\n",
        "tablium_trace_spans_dropped_total 7\n",
        "tablium_metrics_overflow_total{family=\"tablium_client_breaker_state\"} ",
        "\nprocess_resident_memory_bytes ",
        "\nprocess_open_fds ",
        "\nprocess_max_fds ",
        "\nprocess_threads ",
        "\nprocess_cpu_seconds_total ",
        "\nprocess_start_time_seconds ",
        "\nprocess_virtual_memory_bytes ",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        ck_assert_msg(strstr(s, want[i]) != NULL, "missing: %s", want[i]);
    ck_assert_uint_eq(s[b.len - 1], '\n');
    tb_buf_deinit(&b);
    tb_metrics_reset();
}
END_TEST

/* Runs promtool on the process's whole exposition; exit 0 required, its output shown if not. */
START_TEST(promtool_check_metrics_accepts_every_family)
{
    tb_metrics_reset();
    fill_runtime_families();
    tb_buf b = TB_BUF_INIT;
    ck_assert_int_eq(tb_metrics_render(&b), 0);
    char path[] = "/tmp/tb_metrics_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, b.data, b.len), (ssize_t)b.len);
    close(fd);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "promtool check metrics < %s 2>&1", path);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    char out[8192];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    if (code != 0)
        fprintf(stderr, "promtool check metrics exit %d:\n%s\n--- input (%s) ---\n%s", code, out,
                path, b.data);
    else
        unlink(path);
    ck_assert_msg(code == 0, "promtool check metrics exit %d: %s", code, out);
    tb_buf_deinit(&b);
    tb_metrics_reset();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("metrics");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, a_small_registry_renders_exactly);
    tcase_add_test(tc, help_and_label_values_are_escaped);
    tcase_add_test(tc, label_values_are_cut_and_made_valid_utf8);
    tcase_add_test(tc, histogram_buckets_are_cumulative_and_inf_equals_count);
    tcase_add_test(tc, a_full_family_sends_new_label_sets_to_one_other_series);
    tcase_add_test(tc, registration_is_idempotent_and_checks_names);
    tcase_add_test(tc, concurrent_updates_add_up_exactly);
    tcase_add_test(tc, collect_functions_run_at_render_until_removed);
    tcase_add_test(tc, runtime_families_have_their_labels_and_bounded_values);
    tcase_add_test(tc, promtool_check_metrics_accepts_every_family);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
