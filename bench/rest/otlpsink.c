/*
 * bench_otlp_sink: a stand-in for an OpenTelemetry collector, for the traced rows of
 * bench/rest/run.sh (rest-post-observed). It only has to take what the exporter sends and never
 * be the bottleneck, so it does no more than count:
 *
 *   POST /v1/traces   (OTLP/HTTP JSON)   -> 200 {}  ; counts the spans: occurrences of "spanId"
 *                                          (a span's own id; parentSpanId does not match; links
 *                                          also carry one, and the benchmarked server spans have
 *                                          none)
 *   POST /v1/traces   (OTLP/HTTP protobuf) -> 200 (an empty ExportTraceServiceResponse); counts
 *                                          the spans by walking the message (resource_spans ->
 *                                          scope_spans -> spans); a body that is not protobuf
 *                                          counts in bad
 *   GET  /stats                          -> 200 "requests R spans S bytes B bad X\n"
 *   anything else                        -> 404 (counted in bad)
 *
 * The first POST's body is also parsed with jansson and its span count checked against the
 * resourceSpans[].scopeSpans[].spans[] arrays, so that counting by "spanId" is known to count
 * spans; a mismatch, a body that does not parse or a Content-Type other than application/json
 * counts in bad (the script fails the run when bad is not 0).
 *
 * libmicrohttpd, one epoll thread (the exporter posts one batch at a time on one keep-alive
 * connection). Binds 127.0.0.1:PORT (argv[1]; 0 = ephemeral), prints "listening on PORT", stops
 * on SIGTERM or SIGINT.
 */
#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_BODY (64u << 20)

static _Atomic uint64_t n_requests, n_spans, n_bytes, n_bad;
static atomic_bool verified; /* the first body was checked with jansson */
static int get_marker;       /* con_cls of a request without a body */

struct upload {
    char *data;
    size_t len, cap;
    bool too_large;
};

static uint64_t count_span_ids(const char *p, size_t n)
{
    static const char key[] = "\"spanId\"";
    const size_t k = sizeof key - 1;
    uint64_t c = 0;
    const char *end = p + n;
    while ((size_t)(end - p) >= k) {
        const char *hit = memmem(p, (size_t)(end - p), key, k);
        if (!hit)
            break;
        c++;
        p = hit + k;
    }
    return c;
}

/* The spans of an OTLP JSON body by its structure, or -1 when it is not one. */
static long long count_spans_parsed(const char *p, size_t n)
{
    json_t *j = json_loadb(p, n, 0, NULL);
    json_t *rs = json_object_get(j, "resourceSpans");
    long long c = json_is_array(rs) ? 0 : -1;
    size_t i, k;
    json_t *r, *ss;
    json_array_foreach(rs, i, r)
    {
        json_array_foreach(json_object_get(r, "scopeSpans"), k, ss)
        {
            json_t *spans = json_object_get(ss, "spans");
            c += json_is_array(spans) ? (long long)json_array_size(spans) : 0;
        }
    }
    json_decref(j);
    return c;
}

static bool rd_varint(const uint8_t *p, size_t n, size_t *i, uint64_t *v)
{
    *v = 0;
    for (unsigned sh = 0; *i < n && sh <= 63; sh += 7) {
        uint8_t c = p[(*i)++];
        *v |= (uint64_t)(c & 0x7F) << sh;
        if (!(c & 0x80))
            return true;
    }
    return false;
}

/* Protobuf: the next field of p[*i..n): its key (number << 3 | wire type), and for a
 * length-delimited one its bytes' offset and length. false at the end, or when broken (*bad). */
static bool pb_next(const uint8_t *p, size_t n, size_t *i, uint64_t *key, size_t *off, size_t *len,
                    bool *bad)
{
    uint64_t x;
    if (*i >= n)
        return false;
    if (!rd_varint(p, n, i, key))
        goto broken;
    switch (*key & 7) {
    case 0:
        if (!rd_varint(p, n, i, &x))
            goto broken;
        return true;
    case 1:
    case 5: {
        size_t w = (*key & 7) == 1 ? 8 : 4;
        if (n - *i < w)
            goto broken;
        *i += w;
        return true;
    }
    case 2:
        if (!rd_varint(p, n, i, &x) || x > n - *i)
            goto broken;
        *off = *i;
        *len = (size_t)x;
        *i += (size_t)x;
        return true;
    default: break;
    }
broken:
    *bad = true;
    return false;
}

/* Spans in an ExportTraceServiceRequest, or -1 when the body is not one. */
static long long count_spans_protobuf(const uint8_t *p, size_t n)
{
    long long c = 0;
    bool bad = false;
    uint64_t f;
    size_t i = 0, off, len;
    while (pb_next(p, n, &i, &f, &off, &len, &bad)) {
        if (f != (1u << 3 | 2)) /* resource_spans */
            continue;
        const uint8_t *rs = p + off;
        size_t rn = len, j = 0, off2, len2;
        while (pb_next(rs, rn, &j, &f, &off2, &len2, &bad)) {
            if (f != (2u << 3 | 2)) /* scope_spans */
                continue;
            const uint8_t *ss = rs + off2;
            size_t k = 0, off3, len3;
            while (pb_next(ss, len2, &k, &f, &off3, &len3, &bad))
                c += f == (2u << 3 | 2); /* spans */
        }
    }
    return bad ? -1 : c;
}

static enum MHD_Result answer(struct MHD_Connection *mc, unsigned status, const char *type,
                              const char *body)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    enum MHD_Result q = MHD_queue_response(mc, status, r);
    MHD_destroy_response(r);
    return q;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)cls, (void)version;
    bool post = strcmp(method, "POST") == 0;
    if (!*con_cls) { /* headers only: answer on a later call, or keep-alive is lost */
        if (!post) {
            *con_cls = &get_marker;
            return MHD_YES;
        }
        struct upload *u = calloc(1, sizeof *u);
        if (!u)
            return MHD_NO;
        *con_cls = u;
        return MHD_YES;
    }
    if (!post) {
        if (strcmp(method, "GET") == 0 && strcmp(url, "/stats") == 0) {
            char buf[160];
            snprintf(buf, sizeof buf, "requests %llu spans %llu bytes %llu bad %llu\n",
                     (unsigned long long)atomic_load(&n_requests),
                     (unsigned long long)atomic_load(&n_spans),
                     (unsigned long long)atomic_load(&n_bytes),
                     (unsigned long long)atomic_load(&n_bad));
            return answer(mc, 200, "text/plain", buf);
        }
        atomic_fetch_add(&n_bad, 1);
        return answer(mc, 404, "text/plain", "not found\n");
    }
    struct upload *u = *con_cls;
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (u->too_large || u->len + n > MAX_BODY) {
            u->too_large = true;
            return MHD_YES;
        }
        if (u->len + n > u->cap) {
            size_t cap = u->cap ? u->cap : 64 * 1024;
            while (cap < u->len + n)
                cap *= 2;
            char *d = realloc(u->data, cap);
            if (!d)
                return MHD_NO;
            u->data = d;
            u->cap = cap;
        }
        memcpy(u->data + u->len, upload_data, n);
        u->len += n;
        return MHD_YES;
    }
    /* the whole body is in */
    const char *ct = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (strcmp(url, "/v1/traces") != 0) {
        atomic_fetch_add(&n_bad, 1);
        return answer(mc, 404, "text/plain", "not found\n");
    }
    if (u->too_large) {
        atomic_fetch_add(&n_bad, 1);
        return answer(mc, 413, "text/plain", "too large\n");
    }
    if (ct && strncasecmp(ct, "application/x-protobuf", 22) == 0) {
        long long c = count_spans_protobuf((const uint8_t *)u->data, u->data ? u->len : 0);
        if (c < 0) {
            atomic_fetch_add(&n_bad, 1);
            return answer(mc, 400, "text/plain", "not an ExportTraceServiceRequest\n");
        }
        atomic_fetch_add(&n_requests, 1);
        atomic_fetch_add(&n_spans, (uint64_t)c);
        atomic_fetch_add(&n_bytes, u->len);
        return answer(mc, 200, "application/x-protobuf", "");
    }
    if (!ct || strncasecmp(ct, "application/json", 16) != 0) {
        atomic_fetch_add(&n_bad, 1);
        return answer(mc, 415, "text/plain", "OTLP/HTTP JSON or protobuf only\n");
    }
    uint64_t spans = count_span_ids(u->data ? u->data : "", u->len);
    bool expect = false;
    if (atomic_compare_exchange_strong(&verified, &expect, true)) {
        long long parsed = count_spans_parsed(u->data ? u->data : "", u->len);
        if (parsed < 0 || (uint64_t)parsed != spans) {
            fprintf(stderr, "bench_otlp_sink: first body: %llu \"spanId\" but %lld spans parsed\n",
                    (unsigned long long)spans, parsed);
            atomic_fetch_add(&n_bad, 1);
        }
    }
    atomic_fetch_add(&n_requests, 1);
    atomic_fetch_add(&n_spans, spans);
    atomic_fetch_add(&n_bytes, u->len);
    return answer(mc, 200, "application/json", "{}");
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)mc, (void)toe;
    struct upload *u = *con_cls; /* a struct upload for a POST, &get_marker otherwise */
    if (u && (void *)u != (void *)&get_marker) {
        free(u->data);
        free(u);
    }
    *con_cls = NULL;
}

int main(int argc, char **argv)
{
    long port = argc > 1 ? strtol(argv[1], NULL, 10) : 0;
    if (port < 0 || port > 65535) {
        fprintf(stderr, "usage: bench_otlp_sink [PORT]\n");
        return 2;
    }
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL); /* MHD's thread inherits the mask */
    signal(SIGPIPE, SIG_IGN);

    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct MHD_Daemon *d =
        MHD_start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_TURBO | MHD_USE_ERROR_LOG,
                         (uint16_t)port, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR,
                         (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_TIMEOUT, 60u,
                         /* a batch (~180 KB) in a few reads, not 14 of 13 KB: every read is a
                          * system call and a wake-up on the CPUs the server is measured on */
                         MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(1u << 20),
                         MHD_OPTION_CONNECTION_MEMORY_INCREMENT, (size_t)(256u << 10),
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "bench_otlp_sink: cannot listen on 127.0.0.1:%ld\n", port);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("listening on %u\n", info ? (unsigned)info->port : (unsigned)port);
    fflush(stdout);
    int sig;
    while (sigwait(&stop, &sig) != 0)
        ;
    MHD_stop_daemon(d);
    fprintf(stderr, "bench_otlp_sink: requests %llu spans %llu bytes %llu bad %llu\n",
            (unsigned long long)n_requests, (unsigned long long)n_spans,
            (unsigned long long)n_bytes, (unsigned long long)n_bad);
    return 0;
}
