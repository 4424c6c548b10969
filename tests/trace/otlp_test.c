/*
 * The OTLP/HTTP exporter (runtime/trace/otlp.c) against an independent receiver:
 * tests/trace/otlp-decoder/receiver.js decodes each request with the protobufjs code that
 * @opentelemetry/otlp-transformer generated from the official opentelemetry-proto, strictly
 * (unknown fields, mistyped values and bad ids are errors), and records what it understood.
 * Spans are made with the public API (tb_span_start_with ... tb_span_end), exported by the real
 * exporter thread, and every assertion is on what the receiver decoded or on tb_trace_stats.
 *
 * `otlp_test [PROTOCOL]`: every test with PROTOCOL, http/protobuf (the default: no
 * OTEL_EXPORTER_OTLP_PROTOCOL set) or http/json (OTEL_EXPORTER_OTLP_PROTOCOL=http/json); ctest
 * runs both.
 *
 * Each test runs in its own forked process (the exporter reads its OTEL_* configuration once
 * per process), against the one receiver main() starts. Figures (enqueue times, exporter CPU)
 * are printed, never asserted.
 */
#include "tablium/client.h"
#include "tablium/trace.h"

#include "../../runtime/trace/tb_span_put.h"

#include <check.h>
#include <curl/curl.h>
#include <dirent.h>
#include <inttypes.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef OTLP_DECODER_DIR
#define OTLP_DECODER_DIR "tests/trace/otlp-decoder"
#endif

static int recv_port;
static const char *protocol = "http/protobuf"; /* argv[1] */
static bool protobuf;
static char decoder_name[160];
static char figures_path[64];

/* ---- helpers ---- */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void figure(const char *key, double v)
{
    FILE *f = fopen(figures_path, "a");
    if (f) {
        fprintf(f, "%s %.0f\n", key, v);
        fclose(f);
    }
}

static double figure_get(const char *key)
{
    double v = -1;
    char k[64];
    double x;
    FILE *f = fopen(figures_path, "r");
    if (!f)
        return v;
    while (fscanf(f, "%63s %lf", k, &x) == 2)
        if (strcmp(k, key) == 0)
            v = x;
    fclose(f);
    return v;
}

static size_t on_write(char *p, size_t size, size_t n, void *ud)
{
    tb_buf *b = ud;
    tb_buf_append(b, p, size * n);
    return size * n;
}

/* A request to the receiver; its JSON answer (caller owns; json_decref). */
static json_t *receiver(const char *path, const char *post)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", recv_port, path);
    tb_buf b = TB_BUF_INIT;
    CURL *c = curl_easy_init();
    ck_assert_ptr_nonnull(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (post)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, post);
    CURLcode cc = curl_easy_perform(c);
    curl_easy_cleanup(c);
    ck_assert_msg(cc == CURLE_OK, "receiver %s: %s", path, curl_easy_strerror(cc));
    json_error_t err;
    json_t *j = json_loadb(b.data, b.len, 0, &err);
    ck_assert_msg(j != NULL, "receiver %s: not JSON: %s", path, err.text);
    tb_buf_deinit(&b);
    return j;
}

static void control(const char *json)
{
    json_decref(receiver("/control", json));
}

/* What the receiver decoded so far; fails the test on any decode error. */
static json_t *received(void)
{
    json_t *r = receiver("/received", NULL);
    json_t *errs = json_object_get(r, "errors");
    if (json_array_size(errs)) {
        char *dump = json_dumps(json_array_get(errs, 0), JSON_COMPACT);
        ck_abort_msg("the receiver could not decode %zu request(s); first: %s",
                     json_array_size(errs), dump);
    }
    return r;
}

static size_t n_spans(json_t *r)
{
    return json_array_size(json_object_get(r, "spans"));
}

/* Polls the receiver until it holds n spans (or `held` requests when n < 0), 20 s at most. */
static json_t *wait_received(long n, long held)
{
    for (int i = 0;; i++) {
        json_t *r = received();
        if ((n >= 0 && n_spans(r) >= (size_t)n) ||
            (held >= 0 && json_integer_value(json_object_get(r, "held")) >= held) || i == 400)
            return r;
        json_decref(r);
        usleep(50000);
    }
}

static void hex(const uint8_t *id, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", id[i]);
}

static json_t *span_by_id(json_t *r, const uint8_t id[8])
{
    char h[17];
    hex(id, 8, h);
    json_t *spans = json_object_get(r, "spans"), *e;
    size_t i;
    json_array_foreach(spans, i, e)
    {
        json_t *s = json_object_get(e, "span");
        if (strcmp(json_string_value(json_object_get(s, "spanId")), h) == 0)
            return e;
    }
    ck_abort_msg("span %s was not received", h);
    return NULL;
}

/* The AnyValue of attribute `key` in an attributes array; NULL when absent. */
static json_t *attr(json_t *attrs, const char *key)
{
    json_t *a;
    size_t i;
    json_array_foreach(attrs, i, a) if (strcmp(json_string_value(json_object_get(a, "key")), key) ==
                                        0) return json_object_get(a, "value");
    return NULL;
}

static const char *attr_str(json_t *attrs, const char *key, const char *type)
{
    json_t *v = attr(attrs, key);
    ck_assert_msg(v != NULL, "attribute %s missing", key);
    json_t *x = json_object_get(v, type);
    ck_assert_msg(x != NULL, "attribute %s is not a %s: %s", key, type,
                  json_dumps(v, JSON_COMPACT));
    return json_is_string(x) ? json_string_value(x) : NULL;
}

static const char *jstr(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static const char *OTEL_VARS[] = {
    "OTEL_SDK_DISABLED",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
    "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
    "OTEL_BSP_SCHEDULE_DELAY",
    "OTEL_BSP_MAX_QUEUE_SIZE",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
};

/* A clean OTEL_* environment exporting to the receiver (which forgets what it had). */
static void setup_env(void)
{
    for (size_t i = 0; i < sizeof OTEL_VARS / sizeof OTEL_VARS[0]; i++)
        unsetenv(OTEL_VARS[i]);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", recv_port);
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url, 1);
    setenv("OTEL_BSP_SCHEDULE_DELAY", "60000", 1); /* exports on full batches and flushes only */
    if (!protobuf) /* http/protobuf is the default: the protobuf run sets nothing */
        setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", 1);
    control("{\"reset\":true}");
}

/* Ends a root span; its span id in id (when not NULL); the time tb_span_end took in ns. */
static uint64_t end_root(const char *name, uint8_t id[8])
{
    tb_span *s = tb_span_start_with(name, TB_SPAN_INTERNAL, NULL, NULL);
    if (id)
        memcpy(id, s->sc.span_id, 8);
    uint64_t t = now_ns();
    tb_span_end(s);
    return now_ns() - t;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* CPU time of the exporter thread ("tb-otlp") in ns, from /proc; -1 when not found. */
static double exporter_cpu_ns(void)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    double ns = -1;
    while (d && (e = readdir(d))) {
        char p[300], comm[32] = "";
        snprintf(p, sizeof p, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(p, "r");
        if (!f)
            continue;
        if (!fgets(comm, sizeof comm, f))
            comm[0] = '\0';
        fclose(f);
        if (strncmp(comm, "tb-otlp", 7) != 0)
            continue;
        snprintf(p, sizeof p, "/proc/self/task/%s/schedstat", e->d_name);
        if ((f = fopen(p, "r"))) {
            unsigned long long v;
            if (fscanf(f, "%llu", &v) == 1)
                ns = (double)v;
            fclose(f);
        }
    }
    if (d)
        closedir(d);
    return ns;
}

/* ---- what one request carries ---- */

START_TEST(exported_spans_decode_with_ids_kinds_attributes_status_events_links)
{
    setup_env();
    setenv("OTEL_SERVICE_NAME", "otlp-test-svc", 1);
    setenv("OTEL_RESOURCE_ATTRIBUTES",
           "service.name=ignored, deployment.environment.name=test%20env ,team=a%2Cb%3Dc", 1);
    setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=secret%3D1,x-tenant=generic", 1);
    setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "X-Tenant=t1", 1);

    /* a server span continuing a remote parent, with tracestate */
    tb_span_context remote = {.flags = TB_TRACE_FLAG_SAMPLED};
    tb_trace_id_new(remote.trace_id);
    tb_span_id_new(remote.span_id);
    tb_span *srv = tb_span_start_with("GET /rooms/{id}", TB_SPAN_SERVER, &remote,
                                      "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
    tb_span_context srv_sc = srv->sc;
    tb_span_set_str(srv, "http.request.method", "GET");
    tb_span_set_int(srv, "http.response.status_code", 503);
    tb_span_set_int(srv, "big.negative", -9007199254740993LL); /* past 2^53: int64 as a string */
    tb_span_set_int(srv, "int64.max", INT64_MAX);
    tb_span_set_double(srv, "ratio", 0.25);
    tb_span_set_double(srv, "whole", 2.0);
    tb_span_set_double(srv, "not.a.number", 0.0 / 0.0);
    tb_span_set_bool(srv, "cache.hit", true);
    tb_span_set_bool(srv, "cache.stale", false);
    tb_span_set_str(srv, "quoted", "a\"b\\c\nd\te \xc3\xa9 \xf0\x9f\x98\x80 \x01");
    tb_span_set_str(srv, "not.utf8", "bad \xff\xc3( end"); /* each bad byte: U+FFFD */
    tb_span_set_status(srv, TB_STATUS_ERROR, "upstream said \"no\"");
    tb_span_record_error(srv, "TimeoutError", "wallet took 2s");
    tb_span_context linked = {.flags = TB_TRACE_FLAG_SAMPLED | TB_TRACE_FLAG_RANDOM};
    tb_trace_id_new(linked.trace_id);
    tb_span_id_new(linked.span_id);
    tb_span_add_link(srv, &linked);

    /* children of it: a client (status Ok), a producer, a consumer, an internal one */
    static const tb_span_kind kinds[] = {TB_SPAN_CLIENT, TB_SPAN_PRODUCER, TB_SPAN_CONSUMER,
                                         TB_SPAN_INTERNAL};
    tb_span_context child_sc[4];
    for (int i = 0; i < 4; i++) {
        tb_span *c = tb_span_start_with(i == 0 ? "GET wallet" : "child", kinds[i], &srv_sc, NULL);
        child_sc[i] = c->sc;
        if (i == 0)
            tb_span_set_status(c, TB_STATUS_OK, "ignored for Ok");
        tb_span_end(c);
    }
    tb_span_end(srv);

    /* a root span with more attributes than a span keeps */
    tb_span *many = tb_span_start_with("many attributes", TB_SPAN_INTERNAL, NULL, NULL);
    tb_span_context many_sc = many->sc;
    static const char *keys[30] = {"k00", "k01", "k02", "k03", "k04", "k05", "k06", "k07",
                                   "k08", "k09", "k10", "k11", "k12", "k13", "k14", "k15",
                                   "k16", "k17", "k18", "k19", "k20", "k21", "k22", "k23",
                                   "k24", "k25", "k26", "k27", "k28", "k29"};
    for (int i = 0; i < 30; i++)
        tb_span_set_int(many, keys[i], i);
    tb_span_end(many);

    ck_assert_int_eq(tb_trace_flush(15000), 0);
    json_t *r = received();
    ck_assert_int_eq(n_spans(r), 6);

    /* the request */
    json_t *req = json_array_get(json_object_get(r, "requests"), 0);
    ck_assert_str_eq(jstr(req, "contentType"),
                     protobuf ? "application/x-protobuf" : "application/json");
    ck_assert_msg(strncmp(jstr(req, "userAgent"), "tablium-otlp/", 13) == 0, "%s",
                  jstr(req, "userAgent"));
    json_t *hdrs = json_object_get(req, "headers");
    ck_assert_str_eq(jstr(hdrs, "x-api-key"), "secret=1");
    ck_assert_str_eq(jstr(hdrs, "x-tenant"), "t1"); /* the traces variable wins */

    /* the server span */
    json_t *e = span_by_id(r, srv_sc.span_id);
    json_t *s = json_object_get(e, "span");
    char h[33];
    hex(srv_sc.trace_id, 16, h);
    ck_assert_str_eq(jstr(s, "traceId"), h);
    hex(remote.span_id, 8, h);
    ck_assert_str_eq(jstr(s, "parentSpanId"), h);
    ck_assert_str_eq(jstr(s, "name"), "GET /rooms/{id}");
    ck_assert_int_eq(json_integer_value(json_object_get(s, "kind")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(s, "flags")), srv_sc.flags);
    ck_assert_str_eq(jstr(s, "traceState"), "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
    uint64_t t0 = strtoull(jstr(s, "startTimeUnixNano"), NULL, 10);
    uint64_t t1 = strtoull(jstr(s, "endTimeUnixNano"), NULL, 10);
    uint64_t wall = tb_unix_nano();
    ck_assert_msg(t0 <= t1 && t1 <= wall && wall - t0 < 60000000000ull,
                  "times %" PRIu64 " .. %" PRIu64 " (now %" PRIu64 ")", t0, t1, wall);
    json_t *at = json_object_get(s, "attributes");
    ck_assert_str_eq(attr_str(at, "http.request.method", "stringValue"), "GET");
    ck_assert_str_eq(attr_str(at, "http.response.status_code", "intValue"), "503");
    ck_assert_str_eq(attr_str(at, "big.negative", "intValue"), "-9007199254740993");
    ck_assert_str_eq(attr_str(at, "int64.max", "intValue"), "9223372036854775807");
    attr_str(at, "ratio", "doubleValue");
    ck_assert(json_real_value(json_object_get(attr(at, "ratio"), "doubleValue")) == 0.25);
    ck_assert(json_number_value(json_object_get(attr(at, "whole"), "doubleValue")) == 2.0);
    ck_assert_str_eq(attr_str(at, "not.a.number", "doubleValue"), "NaN");
    ck_assert(json_is_true(json_object_get(attr(at, "cache.hit"), "boolValue")));
    ck_assert(json_is_false(json_object_get(attr(at, "cache.stale"), "boolValue")));
    ck_assert_str_eq(attr_str(at, "quoted", "stringValue"),
                     "a\"b\\c\nd\te \xc3\xa9 \xf0\x9f\x98\x80 \x01");
    ck_assert_str_eq(attr_str(at, "not.utf8", "stringValue"), "bad \xef\xbf\xbd\xef\xbf\xbd( end");
    json_t *st = json_object_get(s, "status");
    ck_assert_int_eq(json_integer_value(json_object_get(st, "code")), 2);
    ck_assert_str_eq(jstr(st, "message"), "upstream said \"no\"");
    json_t *ev = json_array_get(json_object_get(s, "events"), 0);
    ck_assert_int_eq(json_array_size(json_object_get(s, "events")), 1);
    ck_assert_str_eq(jstr(ev, "name"), "exception");
    uint64_t te = strtoull(jstr(ev, "timeUnixNano"), NULL, 10);
    ck_assert(te >= t0 && te <= t1);
    ck_assert_str_eq(attr_str(json_object_get(ev, "attributes"), "exception.type", "stringValue"),
                     "TimeoutError");
    ck_assert_str_eq(
        attr_str(json_object_get(ev, "attributes"), "exception.message", "stringValue"),
        "wallet took 2s");
    ck_assert_int_eq(json_array_size(json_object_get(s, "links")), 1);
    json_t *ln = json_array_get(json_object_get(s, "links"), 0);
    hex(linked.trace_id, 16, h);
    ck_assert_str_eq(jstr(ln, "traceId"), h);
    hex(linked.span_id, 8, h);
    ck_assert_str_eq(jstr(ln, "spanId"), h);
    ck_assert_int_eq(json_integer_value(json_object_get(ln, "flags")), 3);

    /* resource and scope */
    json_t *res = json_object_get(json_object_get(e, "resource"), "attributes");
    ck_assert_str_eq(attr_str(res, "service.name", "stringValue"), "otlp-test-svc");
    ck_assert_str_eq(attr_str(res, "telemetry.sdk.name", "stringValue"), "tablium");
    ck_assert_str_eq(attr_str(res, "telemetry.sdk.language", "stringValue"), "c");
    attr_str(res, "telemetry.sdk.version", "stringValue");
    ck_assert_str_eq(attr_str(res, "deployment.environment.name", "stringValue"), "test env");
    ck_assert_str_eq(attr_str(res, "team", "stringValue"), "a,b=c");
    size_t n_service_name = 0;
    json_t *a;
    size_t i;
    json_array_foreach(res, i, a) n_service_name += strcmp(jstr(a, "key"), "service.name") == 0;
    ck_assert_int_eq(n_service_name, 1);
    ck_assert_str_eq(jstr(json_object_get(e, "scope"), "name"), "tablium");

    /* the children */
    for (int k = 0; k < 4; k++) {
        json_t *c = json_object_get(span_by_id(r, child_sc[k].span_id), "span");
        hex(srv_sc.span_id, 8, h);
        ck_assert_str_eq(jstr(c, "parentSpanId"), h);
        hex(srv_sc.trace_id, 16, h);
        ck_assert_str_eq(jstr(c, "traceId"), h);
        ck_assert_int_eq(json_integer_value(json_object_get(c, "kind")), kinds[k]);
        json_t *cst = json_object_get(c, "status");
        ck_assert_int_eq(json_integer_value(json_object_get(cst, "code")), k == 0 ? 1 : 0);
        ck_assert_ptr_null(json_object_get(cst, "message"));
    }

    /* a root span has no parent; past TB_SPAN_MAX_ATTRS attributes are counted, not sent */
    json_t *m = json_object_get(span_by_id(r, many_sc.span_id), "span");
    ck_assert_ptr_null(json_object_get(m, "parentSpanId"));
    ck_assert_int_eq(json_array_size(json_object_get(m, "attributes")), TB_SPAN_MAX_ATTRS);
    ck_assert_int_eq(json_integer_value(json_object_get(m, "droppedAttributesCount")),
                     30 - TB_SPAN_MAX_ATTRS);

    tb_trace_stats st2;
    tb_trace_stats_get(&st2);
    ck_assert_uint_eq(st2.spans_queued, 6);
    ck_assert_uint_eq(st2.spans_exported, 6);
    ck_assert_uint_eq(st2.spans_dropped, 0);
    ck_assert_uint_eq(st2.export_failures, 0);
    ck_assert_uint_eq(st2.queue_len, 0);
    ck_assert_uint_ge(st2.spans_started, 6);
    json_decref(r);
    tb_trace_shutdown(5000);
}
END_TEST

/* ---- batching, the schedule, flush and shutdown ---- */

START_TEST(a_thousand_spans_go_in_requests_of_at_most_the_batch_size)
{
    setup_env();
    setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "100", 1);
    uint8_t ids[1000][8];
    uint64_t took[1000];
    for (int i = 0; i < 1000; i++)
        took[i] = end_root("batched", ids[i]);
    ck_assert_int_eq(tb_trace_flush(30000), 0);
    double cpu = exporter_cpu_ns();
    json_t *r = received();
    ck_assert_int_eq(n_spans(r), 1000);
    json_t *reqs = json_object_get(r, "requests"), *q;
    size_t i, total = 0;
    ck_assert_uint_ge(json_array_size(reqs), 10);
    json_array_foreach(reqs, i, q)
    {
        json_int_t n = json_integer_value(json_object_get(q, "spans"));
        ck_assert_msg(n >= 1 && n <= 100, "request %zu carried %lld spans", i, (long long)n);
        total += (size_t)n;
    }
    ck_assert_uint_eq(total, 1000);
    for (int k = 0; k < 1000; k += 97)
        span_by_id(r, ids[k]);
    tb_trace_stats st;
    tb_trace_stats_get(&st);
    ck_assert_uint_eq(st.spans_exported, 1000);
    ck_assert_uint_eq(st.export_requests, json_array_size(reqs));
    qsort(took + 1, 999, sizeof took[0], cmp_u64); /* took[0] started the exporter */
    printf("otlp batching: 1000 spans in %zu requests (batch size 100); tb_span_end median %" PRIu64
           " ns, p99 %" PRIu64 " ns, max %" PRIu64 " ns\n",
           json_array_size(reqs), took[500], took[990], took[999]);
    if (cpu > 0)
        figure("cpu_per_span_b100", cpu / 1000.0);
    json_decref(r);
    tb_trace_shutdown(5000);
}
END_TEST

/* Spans are encoded where they end into chunks of 64 KB their thread fills one after another;
 * a span too large for a chunk gets a block of its own. Small spans across several chunks and
 * two large ones among them all arrive whole. */
START_TEST(large_spans_and_spans_across_chunks_arrive_whole)
{
    setup_env();
    enum { N = 600, BIG = 100000, MID = 20000 };
    char *big = malloc(BIG + 1), *mid = malloc(MID + 1);
    ck_assert_ptr_nonnull(big);
    ck_assert_ptr_nonnull(mid);
    for (int i = 0; i < BIG; i++)
        big[i] = (char)('a' + i % 26);
    big[BIG] = '\0';
    for (int i = 0; i < MID; i++)
        mid[i] = (char)('0' + i % 10);
    mid[MID] = '\0';
    uint8_t ids[N][8], big_id[8], mid_id[8];
    for (int i = 0; i < N; i++) {
        if (i == N / 3 || i == 2 * N / 3) {
            tb_span *s = tb_span_start_with("large", TB_SPAN_INTERNAL, NULL, NULL);
            tb_span_set_str(s, "large.value", i == N / 3 ? big : mid);
            memcpy(i == N / 3 ? big_id : mid_id, s->sc.span_id, 8);
            tb_span_end(s);
        }
        tb_span *s = tb_span_start_with("small", TB_SPAN_INTERNAL, NULL, NULL);
        tb_span_set_int(s, "small.index", i);
        tb_span_set_str(s, "small.note", "a few bytes so that a span takes about 150");
        memcpy(ids[i], s->sc.span_id, 8);
        tb_span_end(s);
    }
    ck_assert_int_eq(tb_trace_flush(30000), 0);
    json_t *r = received();
    ck_assert_int_eq(n_spans(r), N + 2);
    for (int i = 0; i < N; i++) {
        json_t *sp = json_object_get(span_by_id(r, ids[i]), "span");
        ck_assert_str_eq(jstr(sp, "name"), "small");
        json_t *at = json_object_get(sp, "attributes");
        char want[16];
        snprintf(want, sizeof want, "%d", i);
        ck_assert_str_eq(attr_str(at, "small.index", "intValue"), want);
    }
    json_t *at = json_object_get(json_object_get(span_by_id(r, big_id), "span"), "attributes");
    ck_assert_str_eq(attr_str(at, "large.value", "stringValue"), big);
    at = json_object_get(json_object_get(span_by_id(r, mid_id), "span"), "attributes");
    ck_assert_str_eq(attr_str(at, "large.value", "stringValue"), mid);
    tb_trace_stats st;
    tb_trace_stats_get(&st);
    ck_assert_uint_eq(st.spans_exported, N + 2);
    ck_assert_uint_eq(st.spans_dropped, 0);
    json_decref(r);
    free(big);
    free(mid);
    tb_trace_shutdown(5000);
}
END_TEST

/* The runtime's own attributes (tb__span_put, as a server span ends): by reference, a key a
 * handler set before takes the runtime's value once (no duplicate key on the wire), the
 * handler's other attributes stay, and those past the limit are dropped and counted. */
START_TEST(runtime_attributes_replace_a_handlers_key_once_and_overflow_is_counted)
{
    setup_env();
    tb_span *s = tb_span_start_with("put", TB_SPAN_SERVER, NULL, NULL);
    tb_span_set_str(s, "url.scheme", "set-by-the-handler");
    tb_span_set_int(s, "app.items", 3);
    uint8_t id[8];
    memcpy(id, s->sc.span_id, 8);
    char path[] = "/rooms/7", keys[TB_SPAN_MAX_ATTRS][16];
    tb_span_attr at[TB_SPAN_MAX_ATTRS + 2];
    size_t n = 0;
    at[n++] = (tb_span_attr){.key = "url.scheme", .type = TB_ATTR_STRING, .len = 4, .v.s = "http"};
    at[n++] = (tb_span_attr){.key = "url.path", .type = TB_ATTR_STRING, .len = 8, .v.s = path};
    at[n++] = (tb_span_attr){.key = "http.response.status_code", .type = TB_ATTR_INT, .v.i = 404};
    while (n < sizeof at / sizeof at[0]) { /* 26 for 24 places, 2 taken, 1 replacing: 3 over */
        char *k = keys[n - 3];
        snprintf(k, sizeof keys[0], "fill.%zu", n);
        at[n++] = (tb_span_attr){.key = k, .type = TB_ATTR_BOOL, .v.b = true};
    }
    tb__span_put(s, at, n);
    ck_assert_uint_eq(s->n_attrs, TB_SPAN_MAX_ATTRS);
    ck_assert_uint_eq(s->dropped_attrs, n + 1 - TB_SPAN_MAX_ATTRS); /* url.scheme replaced */
    tb_span_end(s);
    ck_assert_int_eq(tb_trace_flush(10000), 0);
    json_t *r = received();
    json_t *sp = json_object_get(span_by_id(r, id), "span");
    json_t *ats = json_object_get(sp, "attributes");
    ck_assert_str_eq(attr_str(ats, "url.scheme", "stringValue"), "http");
    ck_assert_str_eq(attr_str(ats, "url.path", "stringValue"), "/rooms/7");
    ck_assert_str_eq(attr_str(ats, "http.response.status_code", "intValue"), "404");
    ck_assert_str_eq(attr_str(ats, "app.items", "intValue"), "3");
    size_t schemes = 0, i;
    json_t *a;
    json_array_foreach(ats, i, a) schemes += strcmp(jstr(a, "key"), "url.scheme") == 0;
    ck_assert_uint_eq(schemes, 1);
    ck_assert_uint_eq(json_array_size(ats), TB_SPAN_MAX_ATTRS);
    ck_assert_int_eq(json_integer_value(json_object_get(sp, "droppedAttributesCount")),
                     (json_int_t)(n + 1 - TB_SPAN_MAX_ATTRS));
    json_decref(r);
    tb_trace_shutdown(5000);
}
END_TEST

START_TEST(the_schedule_delay_exports_without_a_flush)
{
    setup_env();
    setenv("OTEL_BSP_SCHEDULE_DELAY", "200", 1);
    for (int i = 0; i < 3; i++)
        end_root("scheduled", NULL);
    json_t *r = wait_received(3, -1);
    ck_assert_int_eq(n_spans(r), 3);
    json_decref(r);
    tb_trace_shutdown(5000);
}
END_TEST

START_TEST(shutdown_delivers_everything_queued_then_takes_no_more)
{
    setup_env();
    for (int i = 0; i < 300; i++)
        end_root("at shutdown", NULL);
    tb_trace_shutdown(15000);
    json_t *r = received();
    ck_assert_int_eq(n_spans(r), 300);
    json_decref(r);
    end_root("after shutdown", NULL);
    ck_assert_int_eq(tb_trace_flush(1000), 0);
    tb_trace_stats st;
    tb_trace_stats_get(&st);
    ck_assert_uint_eq(st.spans_queued, 300);
    ck_assert_uint_eq(st.spans_exported, 300);
    ck_assert_uint_eq(st.spans_sampled, 301);
    tb_trace_shutdown(1000); /* a second call does nothing */
}
END_TEST

/* The exporter's cost: typical server spans (the attributes server.c sets), default batches.
 * Spans are encoded where they end, so the cost is in two places: the exporter thread's, and
 * the span's own thread's for starting, recording and ending (encoding included). */
static double thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

START_TEST(exporter_cpu_per_span_with_server_spans)
{
    setup_env();
    enum { ROUNDS = 20, PER = 1000 };
    double cpu0 = -1, mine = 0;
    for (int k = 0; k < ROUNDS; k++) {
        double t0 = thread_cpu_ns();
        for (int i = 0; i < PER; i++) {
            tb_span *s = tb_span_start_with("GET /wallets/{id}", TB_SPAN_SERVER, NULL, NULL);
            tb_span_set_str(s, "http.request.method", "GET");
            tb_span_set_str(s, "url.path", "/wallets/6f1c2a9e-21b8-4f5e-9d51-0c1c3d9b7a10");
            tb_span_set_str(s, "url.scheme", "http");
            tb_span_set_str(s, "network.protocol.version", "1.1");
            tb_span_set_int(s, "http.response.status_code", 200);
            tb_span_set_str(s, "http.route", "/wallets/{id}");
            tb_span_set_str(s, "tablium.operation_id", "getWallet");
            tb_span_set_str(s, "server.address", "127.0.0.1");
            tb_span_set_int(s, "server.port", 8080);
            tb_span_end(s);
        }
        if (k > 0)
            mine += thread_cpu_ns() - t0;
        ck_assert_int_eq(tb_trace_flush(30000), 0);
        if (k == 0)
            cpu0 =
                exporter_cpu_ns(); /* the first round pays for the thread, curl, the connection */
    }
    double cpu = exporter_cpu_ns();
    tb_trace_stats st;
    tb_trace_stats_get(&st);
    ck_assert_uint_eq(st.spans_exported, ROUNDS * PER);
    ck_assert_uint_eq(st.spans_dropped, 0);
    json_t *r = received();
    ck_assert_int_eq(n_spans(r), ROUNDS * PER);
    json_int_t bytes = 0;
    json_t *q;
    size_t i;
    json_array_foreach(json_object_get(r, "requests"), i, q) bytes +=
        json_integer_value(json_object_get(q, "bytes"));
    printf("otlp cost (%s): %d server spans in %zu requests, %.0f bytes a span, exporter "
           "thread CPU %.0f ns a span (%.0f ns in the first round), the span's thread %.0f ns "
           "(start, 9 attributes, end with encoding)\n",
           protocol, ROUNDS * PER, json_array_size(json_object_get(r, "requests")),
           (double)bytes / (ROUNDS * PER), (cpu - cpu0) / ((ROUNDS - 1) * PER), cpu0 / PER,
           mine / ((ROUNDS - 1) * PER));
    if (cpu > 0 && cpu0 > 0)
        figure("cpu_per_span", (cpu - cpu0) / ((ROUNDS - 1) * PER));
    figure("span_thread_ns", mine / ((ROUNDS - 1) * PER));
    json_decref(r);
    tb_trace_shutdown(5000);
}
END_TEST

/* Threads ending spans at once: every span is either exported once or counted dropped. */
static void *end_many(void *arg)
{
    uint64_t *max = arg;
    for (int i = 0; i < 2500; i++) {
        uint64_t t = end_root("concurrent", NULL);
        if (t > *max)
            *max = t;
    }
    return NULL;
}

START_TEST(concurrent_spans_are_each_exported_once_or_counted_dropped)
{
    setup_env();
    setenv("OTEL_BSP_SCHEDULE_DELAY", "0", 1);
    setenv("OTEL_BSP_MAX_QUEUE_SIZE", "1000", 1);
    setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "200", 1);
    pthread_t th[4];
    uint64_t max[4] = {0};
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, end_many, &max[i]), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    ck_assert_int_eq(tb_trace_flush(30000), 0);
    tb_trace_stats st;
    tb_trace_stats_get(&st);
    ck_assert_uint_eq(st.spans_sampled, 10000);
    ck_assert_uint_eq(st.spans_queued + st.spans_dropped, 10000);
    ck_assert_uint_eq(st.spans_exported, st.spans_queued);
    json_t *r = received();
    ck_assert_uint_eq(n_spans(r), st.spans_exported);
    /* no span twice */
    json_t *seen = json_object(), *e;
    size_t i;
    json_array_foreach(json_object_get(r, "spans"), i, e)
    {
        const char *id = jstr(json_object_get(e, "span"), "spanId");
        ck_assert_msg(!json_object_get(seen, id), "span %s received twice", id);
        json_object_set_new(seen, id, json_true());
    }
    json_decref(seen);
    json_decref(r);
    uint64_t m = 0;
    for (int k = 0; k < 4; k++)
        m = max[k] > m ? max[k] : m;
    printf("otlp concurrency: 4 threads x 2500 spans, %" PRIu64 " exported, %" PRIu64
           " dropped (queue 1000), max tb_span_end %" PRIu64 " ns\n",
           st.spans_exported, st.spans_dropped, m);
    tb_trace_shutdown(5000);
}
END_TEST

/* A forked child has no exporter thread: it starts its own and exports its own spans. */
START_TEST(a_forked_child_exports_its_spans_with_its_own_thread)
{
    setup_env();
    end_root("parent before fork", NULL);
    ck_assert_int_eq(tb_trace_flush(10000), 0);
    for (int i = 0; i < 5; i++)
        end_root("parent queued at fork", NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        for (int i = 0; i < 3; i++)
            end_root("child", NULL);
        int rc = tb_trace_flush(10000);
        tb_trace_shutdown(5000);
        _exit(rc == 0 ? 0 : 1);
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    ck_assert_int_eq(tb_trace_flush(10000), 0);
    json_t *r = received();
    size_t child = 0, parent = 0;
    json_t *e;
    size_t i;
    json_array_foreach(json_object_get(r, "spans"), i, e)
    {
        const char *name = jstr(json_object_get(e, "span"), "name");
        child += strcmp(name, "child") == 0;
        parent += strcmp(name, "child") != 0;
    }
    ck_assert_uint_eq(child, 3);
    ck_assert_uint_eq(parent, 6); /* the queued ones once: the child dropped its copies */
    json_decref(r);
    tb_trace_shutdown(5000);
}
END_TEST

/* ---- failures ---- */

START_TEST(retryable_answers_are_retried_with_backoff_and_retry_after)
{
    setup_env();
    control("{\"plan\":[{\"status\":503},{\"status\":429},{\"status\":502},"
            "{\"status\":504,\"retryAfter\":\"1\"}]}");
    uint8_t ids[5][8];
    for (int i = 0; i < 5; i++)
        end_root("retried", ids[i]);
    ck_assert_int_eq(tb_trace_flush(20000), 0);
    json_t *r = received();
    json_t *reqs = json_object_get(r, "requests");
    ck_assert_int_eq(json_array_size(reqs), 5);
    static const int want[] = {503, 429, 502, 504, 200};
    for (size_t i = 0; i < 5; i++)
        ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(reqs, i), "status")),
                         want[i]);
    json_int_t gap = json_integer_value(json_object_get(json_array_get(reqs, 4), "t_ms")) -
                     json_integer_value(json_object_get(json_array_get(reqs, 3), "t_ms"));
    ck_assert_msg(gap >= 900, "Retry-After: 1 honoured? the retry came after %lld ms",
                  (long long)gap);
    ck_assert_int_eq(n_spans(r), 5); /* each once: only the 200 is recorded */
    for (int i = 0; i < 5; i++)
        span_by_id(r, ids[i]);
    tb_trace_stats st;
    tb_trace_stats_get(&st);
    ck_assert_uint_eq(st.export_requests, 5);
    ck_assert_uint_eq(st.export_failures, 4);
    ck_assert_uint_eq(st.spans_exported, 5);
    ck_assert_uint_eq(st.spans_dropped, 0);
    json_decref(r);
    tb_trace_shutdown(5000);
}
END_TEST

START_TEST(a_400_drops_the_batch_without_retrying)
{
    setup_env();
    control("{\"plan\":[{\"status\":400}]}");
    for (int i = 0; i < 3; i++)
        end_root("rejected", NULL);
    ck_assert_int_eq(tb_trace_flush(10000), 0);
    tb_trace_stats st;
    tb_trace_stats_get(&st);
    ck_assert_uint_eq(st.export_requests, 1);
    ck_assert_uint_eq(st.export_failures, 1);
    ck_assert_uint_eq(st.spans_dropped, 3);
    ck_assert_uint_eq(st.spans_exported, 0);
    json_t *r = received();
    ck_assert_int_eq(json_array_size(json_object_get(r, "requests")), 1);
    json_decref(r);
    tb_trace_shutdown(5000);
}
END_TEST

START_TEST(partial_success_counts_the_rejected_spans_as_dropped)
{
    setup_env();
    control("{\"default\":{\"partial\":{\"rejectedSpans\":\"2\",\"errorMessage\":\"too old\"}}}");
    for (int i = 0; i < 5; i++)
        end_root("partly", NULL);
    ck_assert_int_eq(tb_trace_flush(10000), 0);
    tb_trace_stats st;
    tb_trace_stats_get(&st);
    ck_assert_uint_eq(st.spans_exported, 3);
    ck_assert_uint_eq(st.spans_dropped, 2);
    ck_assert_uint_eq(st.export_failures, 0);
    tb_trace_shutdown(5000);
}
END_TEST

/* The answers a collector may give on HTTP/1.1: read whole however they are framed, the
 * connection kept while the collector keeps it. */
static json_int_t req_int(json_t *r, size_t i, const char *key)
{
    return json_integer_value(json_object_get(json_array_get(json_object_get(r, "requests"), i), key));
}

static void export_one_batch(const char *name)
{
    end_root(name, NULL);
    ck_assert_int_eq(tb_trace_flush(10000), 0);
}

START_TEST(chunked_and_closing_answers_are_read_whole_and_a_kept_connection_is_reused)
{
    setup_env();
    /* a chunked partialSuccess (its count only arrives if the pieces are joined), a
     * Connection: close, then two plain answers */
    control("{\"plan\":[{\"chunked\":true,\"partial\":{\"rejectedSpans\":\"1\","
            "\"errorMessage\":\"in pieces\"}},{\"close\":true},{\"ok\":true}]}");
    for (int i = 0; i < 4; i++)
        export_one_batch("framing");
    tb_trace_stats st;
    tb_trace_stats_get(&st);
    ck_assert_uint_eq(st.export_requests, 4);
    ck_assert_uint_eq(st.export_failures, 0);
    ck_assert_uint_eq(st.spans_dropped, 1); /* the chunked answer's rejectedSpans */
    ck_assert_uint_eq(st.spans_exported, 3);
    json_t *r = received();
    ck_assert_int_eq(json_array_size(json_object_get(r, "requests")), 4);
    /* the first two on one connection; the close asks for a new one, which then stays */
    ck_assert_int_eq(req_int(r, 1, "conn"), req_int(r, 0, "conn"));
    ck_assert_int_ne(req_int(r, 2, "conn"), req_int(r, 1, "conn"));
    ck_assert_int_eq(req_int(r, 3, "conn"), req_int(r, 2, "conn"));
    json_decref(r);
    tb_trace_shutdown(5000);
}
END_TEST

START_TEST(a_connection_the_collector_closed_while_idle_is_replaced_without_a_failure)
{
    setup_env();
    export_one_batch("before");
    control("{\"closeIdle\":true}"); /* the exporter's connection waits for its next request */
    usleep(200 * 1000);
    export_one_batch("after");
    tb_trace_stats st;
    tb_trace_stats_get(&st);
    ck_assert_uint_eq(st.export_requests, 2);
    ck_assert_uint_eq(st.export_failures, 0);
    ck_assert_uint_eq(st.spans_exported, 2);
    json_t *r = received();
    ck_assert_int_eq(n_spans(r), 2);
    ck_assert_int_ne(req_int(r, 1, "conn"), req_int(r, 0, "conn"));
    json_decref(r);
    tb_trace_shutdown(5000);
}
END_TEST

START_TEST(a_connection_dropped_without_an_answer_is_retried)
{
    setup_env();
    control("{\"plan\":[{\"drop\":true}]}");
    uint8_t id[8];
    end_root("dropped-once", id);
    ck_assert_int_eq(tb_trace_flush(10000), 0);
    tb_trace_stats st;
    tb_trace_stats_get(&st);
    ck_assert_uint_eq(st.export_requests, 2);
    ck_assert_uint_eq(st.export_failures, 1);
    ck_assert_uint_eq(st.spans_exported, 1);
    ck_assert_uint_eq(st.spans_dropped, 0);
    json_t *r = received();
    ck_assert_int_eq(n_spans(r), 1);
    span_by_id(r, id);
    json_decref(r);
    tb_trace_shutdown(5000);
}
END_TEST

START_TEST(a_redirect_is_followed_with_the_same_body)
{
    setup_env();
    control("{\"default\":{\"redirect\":\"/moved/v1/traces\"}}");
    uint8_t ids[3][8];
    for (int i = 0; i < 3; i++)
        end_root("redirected", ids[i]);
    ck_assert_int_eq(tb_trace_flush(10000), 0);
    export_one_batch("after-the-redirect");
    tb_trace_stats st;
    tb_trace_stats_get(&st);
    ck_assert_uint_eq(st.export_failures, 0);
    ck_assert_uint_eq(st.spans_exported, 4);
    ck_assert_uint_eq(st.spans_dropped, 0);
    json_t *r = received();
    json_t *reqs = json_object_get(r, "requests"), *q;
    size_t i, moved = 0;
    json_array_foreach(reqs, i, q)
    {
        bool at_moved = strcmp(jstr(q, "path"), "/moved/v1/traces") == 0;
        ck_assert_int_eq(json_integer_value(json_object_get(q, "status")), at_moved ? 200 : 307);
        moved += at_moved;
    }
    ck_assert_int_eq(moved, 2); /* each batch once, where the redirect pointed */
    ck_assert_int_eq(n_spans(r), 4);
    for (int k = 0; k < 3; k++)
        span_by_id(r, ids[k]);
    json_decref(r);
    tb_trace_shutdown(5000);
}
END_TEST

START_TEST(gzip_compression_sends_a_smaller_body_that_decodes_the_same)
{
    setup_env();
    setenv("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "gzip", 1);
    enum { N = 300 };
    static uint8_t ids[N][8];
    for (int i = 0; i < N; i++)
        end_root("compressed", ids[i]);
    ck_assert_int_eq(tb_trace_flush(10000), 0);
    tb_trace_stats st;
    tb_trace_stats_get(&st);
    ck_assert_uint_eq(st.spans_exported, N);
    ck_assert_uint_eq(st.export_failures, 0);
    json_t *r = received();
    ck_assert_int_eq(n_spans(r), N);
    for (int i = 0; i < N; i++)
        span_by_id(r, ids[i]);
    json_t *reqs = json_object_get(r, "requests"), *q;
    size_t i;
    json_int_t wire = 0, bytes = 0;
    json_array_foreach(reqs, i, q)
    {
        ck_assert_str_eq(jstr(q, "encoding"), "gzip");
        wire += json_integer_value(json_object_get(q, "wireBytes"));
        bytes += json_integer_value(json_object_get(q, "bytes"));
    }
    /* bare spans are mostly random ids: about 2x in protobuf, 4-5x in JSON */
    ck_assert_msg(wire * 4 < bytes * 3, "gzip: %lld bytes sent for %lld", (long long)wire,
                  (long long)bytes);
    figure("gzip_wire", (double)wire);
    figure("gzip_bytes", (double)bytes);
    json_decref(r);
    tb_trace_shutdown(5000);
}
END_TEST

START_TEST(an_unknown_compression_sends_uncompressed)
{
    setup_env();
    setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd", 1);
    export_one_batch("plain");
    json_t *r = received();
    ck_assert_int_eq(n_spans(r), 1);
    ck_assert_str_eq(jstr(json_array_get(json_object_get(r, "requests"), 0), "encoding"), "");
    json_decref(r);
    tb_trace_shutdown(5000);
}
END_TEST

START_TEST(collector_down_drops_and_counts_and_never_blocks_the_span)
{
    setup_env();
    /* a port nobody listens on */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    close(fd);
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/traces", ntohs(sa.sin_port));
    setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", url, 1);
    setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1500", 1);
    setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "10", 1);
    uint64_t took[40];
    for (int i = 0; i < 40; i++) {
        took[i] = end_root("lost", NULL);
        if (i % 10 == 9)
            usleep(100000); /* while the exporter is retrying */
    }
    uint64_t first = took[0]; /* it started the exporter */
    qsort(took + 1, 39, sizeof took[0], cmp_u64);
    uint64_t max_end = took[39];
    printf("otlp collector down: tb_span_end median %" PRIu64 " ns, max %" PRIu64
           " ns (the first, which started the exporter: %" PRIu64 " ns)\n",
           took[20], max_end, first);
    ck_assert_int_eq(tb_trace_flush(30000), 0);
    tb_trace_stats st;
    tb_trace_stats_get(&st);
    ck_assert_uint_eq(st.spans_queued, 40);
    ck_assert_uint_eq(st.spans_dropped, 40);
    ck_assert_uint_eq(st.spans_exported, 0);
    ck_assert_uint_ge(st.export_failures, 8); /* 4 batches, each tried more than once */
    ck_assert_uint_eq(st.export_failures, st.export_requests);
    figure("down_dropped", (double)st.spans_dropped);
    figure("down_max_end_ns", (double)max_end);
    figure("first_end_ns", (double)first);
    tb_trace_shutdown(5000);
}
END_TEST

START_TEST(a_hanging_collector_fills_the_queue_then_drops_exactly_the_overflow)
{
    setup_env();
    setenv("OTEL_BSP_MAX_QUEUE_SIZE", "50", 1);
    setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "10", 1);
    setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "60000", 1);
    control("{\"default\":{\"hang\":true}}");
    for (int i = 0; i < 10; i++)
        end_root("first batch", NULL);
    json_t *r = wait_received(-1, 1); /* the exporter is stuck in that request */
    ck_assert_int_eq(json_integer_value(json_object_get(r, "held")), 1);
    json_decref(r);
    uint64_t took[200];
    for (int i = 0; i < 200; i++)
        took[i] = end_root("queued or dropped", NULL);
    qsort(took, 200, sizeof took[0], cmp_u64);
    uint64_t max_end = took[199];
    printf("otlp collector hanging, queue full: tb_span_end median %" PRIu64 " ns, max %" PRIu64
           " ns\n",
           took[100], max_end);
    tb_trace_stats st;
    tb_trace_stats_get(&st);
    ck_assert_uint_eq(st.queue_len, 50);
    ck_assert_uint_eq(st.spans_dropped, 150);
    ck_assert_uint_eq(st.spans_queued, 60);
    figure("hang_max_end_ns", (double)max_end);

    control("{\"default\":{\"ok\":true},\"release\":true}");
    ck_assert_int_eq(tb_trace_flush(20000), 0);
    r = received();
    ck_assert_int_eq(n_spans(r), 60);
    json_decref(r);
    tb_trace_stats_get(&st);
    ck_assert_uint_eq(st.spans_exported, 60);
    ck_assert_uint_eq(st.spans_dropped, 150);
    tb_trace_shutdown(5000);
}
END_TEST

static void *end_thirty(void *arg)
{
    (void)arg;
    for (int i = 0; i < 30; i++)
        end_root("from a thread that ends", NULL);
    return NULL;
}

/* Each thread has a queue of its own (OTEL_BSP_MAX_QUEUE_SIZE spans): a full one drops only
 * its own thread's spans; a thread that ends with spans queued still has them exported. */
START_TEST(each_thread_queues_its_own_spans_and_an_ended_threads_still_go_out)
{
    setup_env();
    setenv("OTEL_BSP_MAX_QUEUE_SIZE", "20", 1);
    setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "5", 1);
    setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "60000", 1);
    control("{\"default\":{\"hang\":true}}");
    for (int i = 0; i < 5; i++)
        end_root("first batch", NULL);
    json_t *r = wait_received(-1, 1); /* the exporter is stuck in that request */
    json_decref(r);
    pthread_t th[2];
    for (int i = 0; i < 2; i++) /* 30 spans each: 20 queued, 10 dropped, per thread */
        ck_assert_int_eq(pthread_create(&th[i], NULL, end_thirty, NULL), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 3; i++) /* this thread's queue is empty: these go in */
        end_root("main thread", NULL);
    tb_trace_stats st;
    tb_trace_stats_get(&st);
    ck_assert_uint_eq(st.queue_len, 43);
    ck_assert_uint_eq(st.spans_dropped, 20);
    ck_assert_uint_eq(st.spans_queued, 48);

    control("{\"default\":{\"ok\":true},\"release\":true}");
    ck_assert_int_eq(tb_trace_flush(20000), 0);
    r = received();
    ck_assert_int_eq(n_spans(r), 48);
    size_t i, ended = 0;
    json_t *e;
    json_array_foreach(json_object_get(r, "spans"), i, e)
        ended += strcmp(jstr(json_object_get(e, "span"), "name"), "from a thread that ends") == 0;
    ck_assert_uint_eq(ended, 40);
    json_decref(r);
    tb_trace_stats_get(&st);
    ck_assert_uint_eq(st.spans_exported, 48);
    ck_assert_uint_eq(st.queue_len, 0);
    tb_trace_shutdown(5000);
}
END_TEST

START_TEST(shutdown_with_a_hanging_collector_returns_and_counts_the_loss)
{
    setup_env();
    setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "0", 1); /* no limit: only shutdown ends it */
    control("{\"default\":{\"hang\":true}}");
    for (int i = 0; i < 5; i++)
        end_root("never acknowledged", NULL);
    ck_assert_int_eq(tb_trace_flush(300), TB_ETIMEDOUT);
    uint64_t t = now_ns();
    tb_trace_shutdown(300);
    double ms = (double)(now_ns() - t) / 1e6;
    ck_assert_msg(ms < 10000, "shutdown took %.0f ms", ms);
    tb_trace_stats st;
    tb_trace_stats_get(&st);
    ck_assert_uint_eq(st.spans_dropped, 5);
    ck_assert_uint_eq(st.spans_exported, 0);
    control("{\"default\":{\"ok\":true},\"release\":true}");
}
END_TEST

/* ---- configuration ---- */

START_TEST(the_traces_endpoint_is_used_as_is_and_wins)
{
    setup_env();
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1", 1);
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/traces?x=1", recv_port);
    setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", url, 1);
    setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "not a number", 1); /* a warning, then 512 */
    setenv("OTEL_BSP_MAX_QUEUE_SIZE", "-3", 1);                  /* a warning, then 2048 */
    for (int i = 0; i < 600; i++)
        end_root("as is", NULL);
    ck_assert_int_eq(tb_trace_flush(15000), 0);
    json_t *r = received();
    ck_assert_int_eq(n_spans(r), 600);
    json_t *q;
    size_t i;
    json_array_foreach(json_object_get(r, "requests"), i, q)
        ck_assert_int_le(json_integer_value(json_object_get(q, "spans")), 512);
    json_decref(r);
    tb_trace_shutdown(5000);
}
END_TEST

/* The traces variable wins over the generic one; a protocol tablium does not speak (grpc) is
 * warned about and http/protobuf used. */
START_TEST(the_traces_protocol_wins_and_grpc_falls_back_to_http_protobuf)
{
    setup_env();
    if (protobuf) {
        setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", 1);
        setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc", 1);
    } else {
        setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", 1);
        setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "HTTP/JSON", 1);
    }
    end_root("protocol", NULL);
    ck_assert_int_eq(tb_trace_flush(15000), 0);
    json_t *r = received();
    ck_assert_int_eq(n_spans(r), 1);
    ck_assert_str_eq(jstr(json_array_get(json_object_get(r, "requests"), 0), "contentType"),
                     protobuf ? "application/x-protobuf" : "application/json");
    json_decref(r);
    tb_trace_shutdown(5000);
}
END_TEST

START_TEST(a_base_endpoint_with_a_slash_gets_v1_traces_once)
{
    setup_env();
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", recv_port);
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url, 1);
    end_root("slash", NULL);
    ck_assert_int_eq(tb_trace_flush(10000), 0);
    json_t *r = received();
    ck_assert_int_eq(n_spans(r), 1);
    json_decref(r);
    tb_trace_shutdown(5000);
}
END_TEST

START_TEST(service_name_falls_back_to_resource_attributes_then_the_default)
{
    setup_env();
    setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-resource", 1);
    tb_trace_set_default_service("from-api");
    tb_trace_set_default_service("second call loses");
    end_root("named", NULL);
    ck_assert_int_eq(tb_trace_flush(10000), 0);
    json_t *r = received();
    json_t *res = json_object_get(
        json_object_get(json_array_get(json_object_get(r, "spans"), 0), "resource"), "attributes");
    ck_assert_str_eq(attr_str(res, "service.name", "stringValue"), "from-resource");
    json_decref(r);
    tb_trace_shutdown(5000);
}
END_TEST

START_TEST(service_name_is_the_default_service_when_the_environment_names_none)
{
    setup_env();
    setenv("OTEL_RESOURCE_ATTRIBUTES", "broken", 1); /* a warning: the whole list is ignored */
    tb_trace_set_default_service("from-api");
    end_root("named", NULL);
    ck_assert_int_eq(tb_trace_flush(10000), 0);
    json_t *r = received();
    json_t *res = json_object_get(
        json_object_get(json_array_get(json_object_get(r, "spans"), 0), "resource"), "attributes");
    ck_assert_str_eq(attr_str(res, "service.name", "stringValue"), "from-api");
    ck_assert_int_eq(json_array_size(res), 4); /* service.name and telemetry.sdk.* only */
    json_decref(r);
    tb_trace_shutdown(5000);
}
END_TEST

static void nothing_is_exported(void)
{
    for (int i = 0; i < 20; i++)
        end_root("not exported", NULL);
    ck_assert_int_eq(tb_trace_flush(1000), 0);
    tb_trace_stats st;
    tb_trace_stats_get(&st);
    ck_assert_uint_eq(st.spans_queued, 0);
    ck_assert_uint_eq(st.spans_dropped, 0);
    ck_assert_uint_eq(st.export_requests, 0);
    json_t *r = received();
    ck_assert_int_eq(json_array_size(json_object_get(r, "requests")), 0);
    json_decref(r);
    tb_trace_shutdown(1000);
}

START_TEST(otel_traces_exporter_none_exports_nothing)
{
    setup_env();
    setenv("OTEL_TRACES_EXPORTER", "none", 1);
    nothing_is_exported();
}
END_TEST

START_TEST(an_unknown_otel_traces_exporter_is_ignored_for_the_default_otlp)
{
    setup_env();
    setenv("OTEL_TRACES_EXPORTER", "zipkin", 1); /* a warning; the setting is ignored */
    end_root("exported anyway", NULL);
    ck_assert_int_eq(tb_trace_flush(10000), 0);
    json_t *r = received();
    ck_assert_int_eq(n_spans(r), 1);
    json_decref(r);
    tb_trace_shutdown(5000);
}
END_TEST

START_TEST(otel_sdk_disabled_exports_nothing)
{
    setup_env();
    setenv("OTEL_SDK_DISABLED", "TRUE", 1);
    nothing_is_exported();
}
END_TEST

START_TEST(no_endpoint_exports_nothing_and_counts_no_drop)
{
    setup_env();
    unsetenv("OTEL_EXPORTER_OTLP_ENDPOINT");
    nothing_is_exported();
}
END_TEST

START_TEST(a_malformed_endpoint_exports_nothing)
{
    setup_env();
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "127.0.0.1:4318", 1); /* no scheme: a warning */
    nothing_is_exported();
}
END_TEST

/* ---- the receiver ---- */

static int ensure_node_modules(void)
{
    struct stat st;
    const char *probe = OTLP_DECODER_DIR "/node_modules/@opentelemetry/otlp-transformer/build/src/"
                                         "generated/root.js";
    if (stat(probe, &st) == 0)
        return 0;
    int rc = system("npm ci --prefix " OTLP_DECODER_DIR " --no-audit --no-fund --loglevel=error "
                    ">/dev/null 2>&1");
    return rc == 0 && stat(probe, &st) == 0 ? 0 : -1;
}

static FILE *start_receiver(void)
{
    FILE *p = popen("exec node " OTLP_DECODER_DIR "/receiver.js", "r");
    char line[512];
    if (!p || !fgets(line, sizeof line, p))
        return NULL;
    json_t *j = json_loads(line, 0, NULL);
    recv_port = (int)json_integer_value(json_object_get(j, "port"));
    snprintf(decoder_name, sizeof decoder_name, "%s",
             json_string_value(json_object_get(j, "decoder")));
    json_decref(j);
    return recv_port > 0 ? p : NULL;
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        protocol = argv[1];
        if (strcmp(protocol, "http/protobuf") == 0) {
            protobuf = true;
        } else if (strcmp(protocol, "http/json") != 0) {
            fprintf(stderr, "usage: otlp_test [http/json|http/protobuf]\n");
            return 2;
        }
    }
    if (ensure_node_modules() != 0) {
        fprintf(stderr, "otlp_test: npm ci --prefix " OTLP_DECODER_DIR " failed\n");
        return 1;
    }
    tb_global_init();
    FILE *recv = start_receiver();
    if (!recv) {
        fprintf(stderr, "otlp_test: the receiver (node " OTLP_DECODER_DIR "/receiver.js) did not "
                        "start\n");
        return 1;
    }
    snprintf(figures_path, sizeof figures_path, "/tmp/otlp_test_figures_XXXXXX");
    int fd = mkstemp(figures_path);
    if (fd >= 0)
        close(fd);

    Suite *s = suite_create("trace_otlp");
    TCase *tc = tcase_create("export");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, exported_spans_decode_with_ids_kinds_attributes_status_events_links);
    tcase_add_test(tc, a_thousand_spans_go_in_requests_of_at_most_the_batch_size);
    tcase_add_test(tc, large_spans_and_spans_across_chunks_arrive_whole);
    tcase_add_test(tc, runtime_attributes_replace_a_handlers_key_once_and_overflow_is_counted);
    tcase_add_test(tc, the_schedule_delay_exports_without_a_flush);
    tcase_add_test(tc, shutdown_delivers_everything_queued_then_takes_no_more);
    tcase_add_test(tc, exporter_cpu_per_span_with_server_spans);
    tcase_add_test(tc, concurrent_spans_are_each_exported_once_or_counted_dropped);
    tcase_add_test(tc, a_forked_child_exports_its_spans_with_its_own_thread);
    tcase_add_test(tc, retryable_answers_are_retried_with_backoff_and_retry_after);
    tcase_add_test(tc, a_400_drops_the_batch_without_retrying);
    tcase_add_test(tc, partial_success_counts_the_rejected_spans_as_dropped);
    tcase_add_test(tc, chunked_and_closing_answers_are_read_whole_and_a_kept_connection_is_reused);
    tcase_add_test(tc, a_connection_the_collector_closed_while_idle_is_replaced_without_a_failure);
    tcase_add_test(tc, a_connection_dropped_without_an_answer_is_retried);
    tcase_add_test(tc, a_redirect_is_followed_with_the_same_body);
    tcase_add_test(tc, gzip_compression_sends_a_smaller_body_that_decodes_the_same);
    tcase_add_test(tc, an_unknown_compression_sends_uncompressed);
    tcase_add_test(tc, collector_down_drops_and_counts_and_never_blocks_the_span);
    tcase_add_test(tc, a_hanging_collector_fills_the_queue_then_drops_exactly_the_overflow);
    tcase_add_test(tc, each_thread_queues_its_own_spans_and_an_ended_threads_still_go_out);
    tcase_add_test(tc, shutdown_with_a_hanging_collector_returns_and_counts_the_loss);
    tcase_add_test(tc, the_traces_endpoint_is_used_as_is_and_wins);
    tcase_add_test(tc, the_traces_protocol_wins_and_grpc_falls_back_to_http_protobuf);
    tcase_add_test(tc, a_base_endpoint_with_a_slash_gets_v1_traces_once);
    tcase_add_test(tc, service_name_falls_back_to_resource_attributes_then_the_default);
    tcase_add_test(tc, service_name_is_the_default_service_when_the_environment_names_none);
    tcase_add_test(tc, otel_traces_exporter_none_exports_nothing);
    tcase_add_test(tc, an_unknown_otel_traces_exporter_is_ignored_for_the_default_otlp);
    tcase_add_test(tc, otel_sdk_disabled_exports_nothing);
    tcase_add_test(tc, no_endpoint_exports_nothing_and_counts_no_drop);
    tcase_add_test(tc, a_malformed_endpoint_exports_nothing);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    /* one process per test: the exporter reads its configuration once per process */
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);

    /* what the receiver decoded in all, then it exits on "quit" */
    char cmd[160];
    snprintf(cmd, sizeof cmd, "curl -s http://127.0.0.1:%d/received", recv_port);
    double total_spans = -1, total_errors = -1;
    FILE *tp = popen(cmd, "r");
    if (tp) {
        json_t *t = json_loadf(tp, 0, NULL);
        pclose(tp);
        json_t *tot = json_object_get(t, "totals");
        total_spans = (double)json_integer_value(json_object_get(tot, "spans"));
        total_errors = (double)json_integer_value(json_object_get(tot, "errors"));
        json_decref(t);
    }
    snprintf(cmd, sizeof cmd,
             "curl -s -o /dev/null -d '{\"quit\":true}' http://127.0.0.1:%d/control", recv_port);
    if (system(cmd) != 0)
        fprintf(stderr, "otlp_test: the receiver did not take quit\n");
    pclose(recv);
    if (figure_get("gzip_wire") > 0)
        printf("otlp-export: %s gzip: %.0f bytes sent for %.0f (%.1fx smaller)\n", protocol,
               figure_get("gzip_wire"), figure_get("gzip_bytes"),
               figure_get("gzip_bytes") / figure_get("gzip_wire"));
    printf("otlp-export: %s: %.0f spans decoded by %s (%.0f decode errors), %.0f dropped when the "
           "collector was down, %.0f ns exporter thread CPU + %.0f ns on the span's thread "
           "(recording, encoding) per span (server spans, batches of 512); "
           "max tb_span_end %.0f ns with the collector down, %.0f ns with it hanging and the "
           "queue full (the first span, which starts the exporter thread: %.0f ns)\n",
           protocol, total_spans, decoder_name, total_errors, figure_get("down_dropped"),
           figure_get("cpu_per_span"), figure_get("span_thread_ns"), figure_get("down_max_end_ns"),
           figure_get("hang_max_end_ns"),
           figure_get("first_end_ns"));
    unlink(figures_path);
    return failed ? 1 : 0;
}
