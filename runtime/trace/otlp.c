/*
 * tablium: the OTLP/HTTP span exporter (trace.h, "the export pipeline"): http/protobuf (the
 * default, as the OpenTelemetry spec says) or http/json (OTEL_EXPORTER_OTLP_PROTOCOL).
 *
 * tb_span_end hands a sampled span to tb__otlp_enqueue, which encodes it at once (OTLP protobuf
 * or JSON, while the span is still in its thread's cache: the span itself goes straight back to
 * its thread) and puts the encoded bytes into its thread's bounded ring ("the queues") and
 * returns: the span's thread never waits for the exporter or for I/O, and a span that finds
 * its ring full is dropped and counted. One background thread, started at the first span, takes batches out
 * (OTEL_BSP_MAX_EXPORT_BATCH_SIZE when that many wait, else whatever waits after
 * OTEL_BSP_SCHEDULE_DELAY, at once on tb_trace_flush), joins them into one request with the
 * resource and scope in front and POSTs it (not with tb_client, which makes spans itself), then
 * frees them. An http:// collector gets the request from the built-in HTTP/1.1 client (h1.c):
 * one sendmsg of the head and the encoded spans where they lie, then one read of the answer;
 * https, a proxy from the environment, a redirect or TB_OTLP_HTTP_CLIENT=libcurl take a curl
 * handle of the exporter's own, the body joined first (OTEL_EXPORTER_OTLP_COMPRESSION=gzip:
 * compressed first, either way). Encoding at the end costs the span's thread a little and
 * saves the exporter most of its cost: reading a span another core wrote, long enough ago to be
 * out of its caches, was most of the export's CPU (1.1 us of a server span's; the encoded bytes
 * are one contiguous read).
 *
 * Retries: connection errors, timeouts, 429, 502, 503 and 504, with exponential backoff and
 * jitter or the server's Retry-After, within the export timeout and at most TB__TRIES tries;
 * then the batch is dropped and counted. Any other status drops the batch at once. A 2xx with
 * partialSuccess.rejectedSpans counts those as dropped.
 */
#include "internal.h"

#include "../json/tb_utf8.h"

#include "tablium/buf.h"
#include "tablium/client.h"
#include "tablium/error.h"
#include "tablium/log.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define TB__SDK_NAME "tablium"
#define TB__SDK_VERSION "0.1.0"
#define TB__USER_AGENT "tablium-otlp/" TB__SDK_VERSION
#define TB__TRIES 5        /* POSTs of one batch at most */
#define TB__BACKOFF_MS 500 /* first retry after 250..500 ms, then doubling */
#define TB__BACKOFF_MAX_MS 5000
#define TB__WARN_EVERY_NS (60 * 1000000000ull) /* one warning a minute per kind of failure */
#define TB__RESPONSE_MAX (64 * 1024) /* response body kept for partialSuccess and warnings */
#define TB__QUEUE_LIMIT (1u << 24)   /* ring slots we are willing to allocate */

/* ---- configuration (the OTEL_* variables, read once) ---- */

typedef struct kv {
    char *key, *val;
} kv;

static struct {
    bool enabled;  /* an endpoint, OTEL_TRACES_EXPORTER otlp, OTEL_SDK_DISABLED not true */
    bool protobuf; /* OTEL_EXPORTER_OTLP_PROTOCOL: http/protobuf (the default) or http/json */
    char *url;
    struct curl_slist *headers;
    long timeout_ms; /* one batch, all its tries; 0 = no limit */
    long delay_ms;
    size_t queue_max, batch_max;
    char *ca_file, *client_cert, *client_key;
    bool libcurl; /* TB_OTLP_HTTP_CLIENT=libcurl: never the built-in HTTP/1.1 client */
    bool gzip;    /* OTEL_EXPORTER_OTLP_COMPRESSION=gzip */
    char *service_name;     /* OTEL_SERVICE_NAME */
    char *res_service_name; /* service.name in OTEL_RESOURCE_ATTRIBUTES */
    char *unknown_service;  /* "unknown_service:<executable>" */
    kv *res;                /* OTEL_RESOURCE_ATTRIBUTES, first-seen order, later value wins */
    size_t n_res;
} cfg;
static pthread_once_t cfg_once = PTHREAD_ONCE_INIT;

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL; /* the spec: empty is the same as unset */
}

/* The signal's own variable wins over the generic one; *used names the one taken. */
static const char *env_sig(const char *generic, const char *traces, const char **used)
{
    const char *v = env(traces);
    *used = traces;
    if (!v) {
        v = env(generic);
        *used = generic;
    }
    return v;
}

/* A non-negative decimal integer up to INT32_MAX; anything else: a warning and def. */
static long env_int(const char *name, const char *v, long def, long min)
{
    if (!v)
        return def;
    const char *p = v;
    while (*p == ' ' || *p == '\t')
        p++;
    long long n = 0;
    const char *digits = p;
    while (*p >= '0' && *p <= '9' && n <= INT32_MAX)
        n = n * 10 + (*p++ - '0');
    while (*p == ' ' || *p == '\t')
        p++;
    if (p == digits || *p || n > INT32_MAX || n < min) {
        tb_log_warn(NULL, "%s=%s is not %s integer up to 2147483647: using %ld", name, v,
                    min > 0 ? "a positive" : "a non-negative", def);
        return def;
    }
    return (long)n;
}

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static bool tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void kv_free(kv *l, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(l[i].key);
        free(l[i].val);
    }
    free(l);
}

/* "k=v,k2=v2" as W3C Baggage without properties, the format of OTEL_RESOURCE_ATTRIBUTES and
 * OTEL_EXPORTER_OTLP_HEADERS: members and their key and value trimmed of spaces, keys tokens,
 * values percent-decoded, no control characters. A key seen twice keeps the later value. false
 * (and a warning naming `name`) when a member breaks that: the spec has the whole list ignored. */
static bool parse_kv_list(const char *name, const char *s, kv **out, size_t *n_out)
{
    kv *l = NULL;
    size_t n = 0;
    char *key = NULL, *val = NULL;
    const char *why = "no memory";
    *out = NULL;
    *n_out = 0;
    for (const char *p = s; *p;) {
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        const char *a = p, *b = end;
        p = *end ? end + 1 : end;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        if (a == b)
            continue; /* an empty member */
        const char *eq = memchr(a, '=', (size_t)(b - a));
        if (!eq) {
            why = "a member without '='";
            goto fail;
        }
        const char *ke = eq, *vs = eq + 1;
        while (ke > a && (ke[-1] == ' ' || ke[-1] == '\t'))
            ke--;
        while (vs < b && (*vs == ' ' || *vs == '\t'))
            vs++;
        if (ke == a) {
            why = "an empty key";
            goto fail;
        }
        for (const char *k = a; k < ke; k++)
            if (!tchar((unsigned char)*k)) {
                why = "a key with a character outside the HTTP token set";
                goto fail;
            }
        if (!(key = strndup(a, (size_t)(ke - a))) || !(val = malloc((size_t)(b - vs) + 1)))
            goto fail;
        char *o = val;
        for (const char *v = vs; v < b; v++) {
            unsigned char c = (unsigned char)*v;
            if (c == '%') {
                int hi = v + 2 < b ? hexval(v[1]) : -1, lo = v + 2 < b ? hexval(v[2]) : -1;
                if (hi < 0 || lo < 0) {
                    why = "a '%' not followed by two hex digits";
                    goto fail;
                }
                c = (unsigned char)(hi << 4 | lo);
                v += 2;
            }
            if (c < 0x20 || c == 0x7f) {
                why = "a control character in a value";
                goto fail;
            }
            *o++ = (char)c;
        }
        *o = '\0';
        size_t i;
        for (i = 0; i < n && strcmp(l[i].key, key) != 0; i++)
            ;
        if (i == n) {
            kv *nl = realloc(l, (n + 1) * sizeof *l);
            if (!nl)
                goto fail;
            l = nl;
            l[n++] = (kv){key, NULL};
            key = NULL;
        }
        free(l[i].val);
        l[i].val = val;
        val = NULL;
        free(key);
        key = NULL;
    }
    *out = l;
    *n_out = n;
    return true;
fail:
    tb_log_warn(NULL, "%s ignored: %s (the format is k=v,k2=v2 with percent-encoded values)", name,
                why);
    free(val);
    free(key);
    kv_free(l, n);
    return false;
}

static void add_header(const kv *h)
{
    if (strcasecmp(h->key, "Content-Type") == 0 || strcasecmp(h->key, "Content-Encoding") == 0)
        return; /* the body is what the protocol and compression variables say */
    size_t len = strlen(h->key) + strlen(h->val) + 3;
    char *line = malloc(len);
    if (!line)
        return;
    snprintf(line, len, "%s: %s", h->key, h->val);
    struct curl_slist *l = curl_slist_append(cfg.headers, line);
    if (l)
        cfg.headers = l;
    free(line);
}

/* OTEL_EXPORTER_OTLP_HEADERS, then OTEL_EXPORTER_OTLP_TRACES_HEADERS, whose headers replace
 * the generic ones of the same name. */
static void read_headers(void)
{
    kv *g = NULL, *t = NULL;
    size_t ng = 0, nt = 0;
    const char *gv = env("OTEL_EXPORTER_OTLP_HEADERS"),
               *tv = env("OTEL_EXPORTER_OTLP_TRACES_HEADERS");
    if (gv)
        parse_kv_list("OTEL_EXPORTER_OTLP_HEADERS", gv, &g, &ng);
    if (tv)
        parse_kv_list("OTEL_EXPORTER_OTLP_TRACES_HEADERS", tv, &t, &nt);
    for (size_t i = 0; i < ng; i++) {
        size_t j = 0;
        while (j < nt && strcasecmp(g[i].key, t[j].key) != 0)
            j++;
        if (j == nt)
            add_header(&g[i]);
    }
    for (size_t j = 0; j < nt; j++)
        add_header(&t[j]);
    kv_free(g, ng);
    kv_free(t, nt);
}

static bool url_ok(const char *u)
{
    size_t skip = strncasecmp(u, "http://", 7) == 0    ? 7
                  : strncasecmp(u, "https://", 8) == 0 ? 8
                                                       : 0;
    return skip && u[skip] && u[skip] != '/';
}

static void warn_if_unsupported(void)
{
    const char *name;
    const char *p =
        env_sig("OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", &name);
    cfg.protobuf = !(p && strcasecmp(p, "http/json") == 0);
    if (p && strcasecmp(p, "http/json") != 0 && strcasecmp(p, "http/protobuf") != 0)
        tb_log_warn(NULL,
                    "%s=%s: tablium exports OTLP over HTTP only (http/protobuf or http/json): "
                    "using http/protobuf",
                    name, p);
    const char *c =
        env_sig("OTEL_EXPORTER_OTLP_COMPRESSION", "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", &name);
    cfg.gzip = c && strcasecmp(c, "gzip") == 0;
    if (c && !cfg.gzip && strcasecmp(c, "none") != 0)
        tb_log_warn(NULL, "%s=%s: tablium compresses with gzip or not at all (none): "
                    "spans are sent uncompressed", name, c);
}

static void fork_prepare(void);
static void fork_parent(void);
static void fork_child(void);
static void queue_init_sync(void);

static void read_config(void)
{
    queue_init_sync();
    const char *sn = env("OTEL_SERVICE_NAME");
    cfg.service_name = xstrdup(sn);
    const char *ra = env("OTEL_RESOURCE_ATTRIBUTES");
    if (ra && parse_kv_list("OTEL_RESOURCE_ATTRIBUTES", ra, &cfg.res, &cfg.n_res))
        for (size_t i = 0; i < cfg.n_res; i++)
            if (strcmp(cfg.res[i].key, "service.name") == 0 && cfg.res[i].val[0])
                cfg.res_service_name = cfg.res[i].val;
    /* The spec's fallback: unknown_service:<process.executable.name>. */
    const char *exe = program_invocation_short_name;
    size_t ul = sizeof "unknown_service:" + (exe ? strlen(exe) : 0);
    if ((cfg.unknown_service = malloc(ul)))
        snprintf(cfg.unknown_service, ul, exe && *exe ? "unknown_service:%s" : "unknown_service",
                 exe);

    /* A list; values other than otlp and none are warned about and ignored (the setting as a
     * whole when nothing in it is known: the default, otlp). */
    bool otlp = true;
    const char *ex = env("OTEL_TRACES_EXPORTER");
    if (ex) {
        bool known = false, has_otlp = false;
        for (const char *p = ex; *p;) {
            size_t n = strcspn(p, ",");
            const char *a = p, *b = p + n;
            p = *b ? b + 1 : b;
            while (a < b && *a == ' ')
                a++;
            while (b > a && b[-1] == ' ')
                b--;
            bool is_otlp = b - a == 4 && strncasecmp(a, "otlp", 4) == 0;
            bool is_none = b - a == 4 && strncasecmp(a, "none", 4) == 0;
            known |= is_otlp || is_none;
            has_otlp |= is_otlp;
            if (b > a && !is_otlp && !is_none)
                tb_log_warn(NULL,
                            "OTEL_TRACES_EXPORTER: \"%.*s\" is not an exporter tablium "
                            "has (otlp, none): ignored",
                            (int)(b - a), a);
        }
        otlp = known ? has_otlp : true;
    }

    const char *name;
    const char *ep = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    if (ep) {
        if (url_ok(ep))
            cfg.url = strdup(ep);
        else
            tb_log_warn(NULL,
                        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=%s is not an http(s) URL: "
                        "spans are not exported",
                        ep);
    } else if ((ep = env("OTEL_EXPORTER_OTLP_ENDPOINT"))) {
        if (url_ok(ep)) {
            size_t n = strlen(ep);
            bool slash = ep[n - 1] == '/';
            if ((cfg.url = malloc(n + sizeof "/v1/traces")))
                snprintf(cfg.url, n + sizeof "/v1/traces", "%s%s", ep,
                         slash ? "v1/traces" : "/v1/traces");
        } else {
            tb_log_warn(NULL,
                        "OTEL_EXPORTER_OTLP_ENDPOINT=%s is not an http(s) URL: spans are "
                        "not exported",
                        ep);
        }
    }
    cfg.enabled = otlp && cfg.url && !tb__trace_disabled();
    if (!cfg.enabled)
        return;

    warn_if_unsupported();
    read_headers();
    const char *t =
        env_sig("OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", &name);
    cfg.timeout_ms = env_int(name, t, 10000, 0);
    cfg.delay_ms = env_int("OTEL_BSP_SCHEDULE_DELAY", env("OTEL_BSP_SCHEDULE_DELAY"), 5000, 0);
    long qmax = env_int("OTEL_BSP_MAX_QUEUE_SIZE", env("OTEL_BSP_MAX_QUEUE_SIZE"), 2048, 1);
    if (qmax > (long)TB__QUEUE_LIMIT) {
        tb_log_warn(NULL, "OTEL_BSP_MAX_QUEUE_SIZE=%ld is more than tablium keeps: using %u", qmax,
                    TB__QUEUE_LIMIT);
        qmax = TB__QUEUE_LIMIT;
    }
    long bmax =
        env_int("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", env("OTEL_BSP_MAX_EXPORT_BATCH_SIZE"), 512, 1);
    if (bmax > qmax) {
        tb_log_warn(NULL,
                    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE=%ld is more than OTEL_BSP_MAX_QUEUE_SIZE: "
                    "using %ld",
                    bmax, qmax);
        bmax = qmax;
    }
    cfg.queue_max = (size_t)qmax;
    cfg.batch_max = (size_t)bmax;
    cfg.ca_file = xstrdup(
        env_sig("OTEL_EXPORTER_OTLP_CERTIFICATE", "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", &name));
    cfg.client_cert = xstrdup(env_sig("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
                                      "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE", &name));
    cfg.client_key = xstrdup(
        env_sig("OTEL_EXPORTER_OTLP_CLIENT_KEY", "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", &name));
    const char *hc = env("TB_OTLP_HTTP_CLIENT");
    cfg.libcurl = hc && strcasecmp(hc, "libcurl") == 0;
    if (hc && !cfg.libcurl && strcasecmp(hc, "builtin") != 0)
        tb_log_warn(NULL, "TB_OTLP_HTTP_CLIENT=%s is neither builtin nor libcurl: builtin", hc);
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* ---- service name ---- */

static char default_service[128];
static atomic_int default_state; /* 0 unset, 1 being written, 2 set */

void tb_trace_set_default_service(const char *name)
{
    int expect = 0;
    if (!name || !*name || !atomic_compare_exchange_strong(&default_state, &expect, 1))
        return;
    snprintf(default_service, sizeof default_service, "%s", name);
    atomic_store(&default_state, 2);
}

const char *tb__trace_service_name(void)
{
    pthread_once(&cfg_once, read_config);
    if (cfg.service_name)
        return cfg.service_name;
    if (cfg.res_service_name)
        return cfg.res_service_name;
    if (atomic_load(&default_state) == 2)
        return default_service;
    return cfg.unknown_service ? cfg.unknown_service : "unknown_service";
}

/* ---- the queues ----
 *
 * Each thread that ends sampled spans has a bounded ring of its own (tring) that only it fills
 * and only the exporter empties: a span's thread writes its span pointer and moves its own
 * tail, it never takes a lock and never writes a cache line another thread writes, so it
 * cannot wait behind the exporter or behind another thread. (One ring shared by all threads
 * cost a request 0.3 us in the bench/rest server: its tail's cache line went back and forth
 * between the two request threads at every span.) Each ring holds OTEL_BSP_MAX_QUEUE_SIZE
 * spans; a span ended while its thread's ring is full is dropped and counted.
 *
 * The mutex is the exporter's: it sleeps under it, and a span's thread takes it only to wake
 * it (when a span arrives and it waits for one, or when its ring holds a batch), to make its
 * ring, and when it ends. The rings are a list (newest first): a thread adds its ring under the
 * mutex; the exporter walks the list without it (it is the only one that removes a ring: an
 * ended thread's, once empty, under the mutex); everything else that walks it holds the mutex.
 *
 * A span's thread publishes a span with a plain store of its tail: no locked instruction,
 * which would wait for the span's bytes to reach its cache first (they are written into lines
 * the exporter read last). The price is a race it can lose, rarely, both ways:
 * - the wake-up: a span's thread may miss that the exporter just went to sleep wanting what
 *   it now has; the next span wakes it, and the exporter never sleeps longer than
 *   OTEL_BSP_SCHEDULE_DELAY, so a batch is late at worst, never lost;
 * - shutdown: a span ended at the very moment of tb_trace_shutdown may land in its ring after
 *   the final drain; it is counted dropped when its thread ends (the ring is kept until then).
 * Spans queued = the tails (plus those of freed rings, plus what a fork's parent had
 * queued). */

/* An ended span in the export's encoding: a Span message with its key and length (protobuf),
 * or a JSON object. Written into a chunk its thread fills span after span (ch), or for a very
 * large span into a block of its own (ch NULL). */
typedef struct chunk chunk;
typedef struct enc_span {
    size_t len;
    chunk *ch;
    char data[];
} enc_span;
static void enc_free(enc_span *e);

/* Chunks all of whose spans are out wait here for a thread's next (a fresh malloc of 64 KB
 * would be fresh pages, a page fault each, after free gave them back). */
#define CHUNKS_KEPT 32
static struct {
    pthread_mutex_t mu;
    chunk *v[CHUNKS_KEPT];
    size_t n;
} spare = {.mu = PTHREAD_MUTEX_INITIALIZER};

typedef struct tring tring;
struct tring {
    _Alignas(64) _Atomic uint64_t tail; /* its thread's: spans put in */
    uint64_t head_seen;                 /* its thread's last look at head */
    _Alignas(64) _Atomic uint64_t head; /* the exporter's: spans taken */
    _Alignas(64) tring *next;           /* set before the ring is in the list, then constant */
    bool ended;      /* under q.mu: its thread ended; the exporter frees it once empty */
    uint64_t mark;   /* under q.mu: the tail a flush waits for */
    enc_span *slot[]; /* cfg.queue_max */
};

/* The span threads read the first line of fields (seldom written); the rest is under mu. */
static struct {
    _Atomic(tring *) rings;
    atomic_bool started, closed; /* closed: shut down, nothing more is taken */
    _Atomic uint64_t wake_at; /* the exporter sleeps until a ring holds this many; max: awake */
    /* under mu */
    _Alignas(64) pthread_mutex_t mu;
    pthread_cond_t wake; /* the exporter sleeps here */
    pthread_cond_t idle; /* flushes wait here for finished batches */
    bool asleep, shutting, stopping, stopped;
    pthread_t thread;
    uint64_t retired;              /* the tails of the rings freed */
    uint64_t flush_req, flush_done; /* flushes asked for / done: all marks reached */
} q = {.mu = PTHREAD_MUTEX_INITIALIZER, .wake_at = UINT64_MAX};
static atomic_bool q_abort; /* stop: the transfer under way gives up */

static _Atomic uint64_t n_dropped, n_exported, n_requests, n_failures;
static uint64_t queued_before_fork; /* spans the parent had queued, in a fork's child */

static uint64_t ring_tail(tring *r)
{
    return atomic_load_explicit(&r->tail, memory_order_acquire);
}

/* Spans waiting in a ring (the exporter's view: its own head). */
static uint64_t ring_len(tring *r)
{
    return ring_tail(r) - atomic_load_explicit(&r->head, memory_order_relaxed);
}

static void queue_init_sync(void)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q.wake, &ca);
    pthread_cond_init(&q.idle, &ca);
    pthread_condattr_destroy(&ca);
}

static struct timespec ts_of(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    return ts;
}

/* Frees what a ring holds (the exporter stopped, or not there); the count. */
static uint64_t ring_drain(tring *r)
{
    uint64_t tail = ring_tail(r), head = atomic_load(&r->head);
    for (uint64_t pos = head; pos < tail; pos++)
        enc_free(r->slot[pos % cfg.queue_max]);
    atomic_store(&r->head, tail);
    return tail - head;
}

/* Under q.mu, with the exporter not running or from the exporter: frees the rings whose
 * threads ended and that are empty. */
static void rings_reap(void)
{
    tring *prev = NULL;
    for (tring *r = atomic_load(&q.rings), *next; r; r = next) {
        next = r->next;
        if (r->ended && ring_len(r) == 0) {
            if (prev)
                prev->next = next;
            else
                atomic_store(&q.rings, next);
            q.retired += ring_tail(r);
            free(r);
        } else {
            prev = r;
        }
    }
}

/* This thread's ring; made at its first span when `make` (NULL when shut down or no memory). */
static tring *ring_mine(bool make);

/* A fork copies the rings but not the threads: the child drops what they hold and keeps only
 * its own thread's ring (emptied); it starts its own exporter at its first span. */
static void fork_prepare(void)
{
    pthread_mutex_lock(&q.mu);
    pthread_mutex_lock(&spare.mu);
}

static void fork_parent(void)
{
    pthread_mutex_unlock(&spare.mu);
    pthread_mutex_unlock(&q.mu);
}

static void fork_child(void)
{
    pthread_mutex_init(&spare.mu, NULL);
    pthread_mutex_init(&q.mu, NULL);
    queue_init_sync();
    tring *mine = ring_mine(false);
    uint64_t queued = q.retired;
    for (tring *r = atomic_load(&q.rings), *next; r; r = next) {
        next = r->next;
        queued += ring_tail(r);
        if (!q.stopped)
            ring_drain(r); /* a span another thread was storing is lost with that thread */
        if (r != mine)
            free(r);
    }
    queued_before_fork += queued;
    if (mine) {
        mine->next = NULL;
        atomic_store(&mine->tail, 0);
        atomic_store(&mine->head, 0);
        mine->head_seen = 0;
    }
    atomic_store(&q.rings, mine);
    q.retired = 0;
    atomic_store(&q.started, false);
    atomic_store(&q.closed, false);
    atomic_store(&q.wake_at, UINT64_MAX);
    q.asleep = q.shutting = q.stopping = q.stopped = false;
    q.flush_req = q.flush_done = 0;
    atomic_store(&q_abort, false);
}

static void *exporter_main(void *arg);

/* Starts the exporter, once (per process). */
static bool start_exporter(void)
{
    bool ok = true;
    pthread_mutex_lock(&q.mu);
    if (!atomic_load_explicit(&q.started, memory_order_acquire) && !q.shutting) {
        ok = false;
        enc_span **batch = malloc(cfg.batch_max * sizeof *batch);
        if (batch) {
            int rc = pthread_create(&q.thread, NULL, exporter_main, batch);
            if (rc == 0) {
                atomic_store_explicit(&q.started, true, memory_order_release);
                ok = true;
                batch = NULL;
            } else {
                tb_log_warn(NULL, "trace export: cannot start the exporter thread (%s)",
                            strerror(rc));
            }
        }
        free(batch);
    }
    pthread_mutex_unlock(&q.mu);
    return ok && atomic_load(&q.started);
}

enum { W_DOWN, W_REJECTED, W_PARTIAL, W_OOM, W__N };
static void warn_limited(int kind, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A new ring in the list, or NULL (shut down, or no memory: the span is counted dropped). */
static tring *ring_new(void)
{
    size_t size = (sizeof(tring) + cfg.queue_max * sizeof(enc_span *) + 63) & ~(size_t)63;
    tring *r = aligned_alloc(64, size);
    if (!r) {
        atomic_fetch_add_explicit(&n_dropped, 1, memory_order_relaxed);
        warn_limited(W_OOM, "trace export: a span dropped (no memory for its thread's queue)");
        return NULL;
    }
    memset(r, 0, sizeof *r);
    pthread_mutex_lock(&q.mu);
    if (q.shutting) {
        pthread_mutex_unlock(&q.mu);
        free(r);
        return NULL;
    }
    r->next = atomic_load(&q.rings);
    atomic_store_explicit(&q.rings, r, memory_order_release);
    pthread_mutex_unlock(&q.mu);
    return r;
}

/* Its thread ended: the ring goes now when nothing can take from it any more, else the
 * exporter frees it once empty. */
static void ring_end(tring *r)
{
    pthread_mutex_lock(&q.mu);
    r->ended = true;
    if (q.stopped || !atomic_load(&q.started)) {
        uint64_t late = ring_drain(r); /* ended while tb_trace_shutdown drained: see above */
        atomic_fetch_add_explicit(&n_dropped, late, memory_order_relaxed);
        rings_reap();
    }
    pthread_mutex_unlock(&q.mu);
}

bool tb__otlp_enabled(void)
{
    pthread_once(&cfg_once, read_config);
    return cfg.enabled;
}

static enc_span *encode_span(const tb_span *s);
static void enc_thread_done(void);

bool tb__otlp_enqueue(const tb_span *span)
{
    if (!span)
        return false;
    pthread_once(&cfg_once, read_config);
    if (!cfg.enabled)
        return false;
    if (!atomic_load_explicit(&q.started, memory_order_acquire) && !start_exporter())
        return false;
    tring *r = ring_mine(true);
    if (!r)
        return false; /* shut down, or no memory for a ring (counted there) */
    if (atomic_load_explicit(&q.closed, memory_order_relaxed))
        return false; /* shut down: not worth encoding */
    uint64_t pos = atomic_load_explicit(&r->tail, memory_order_relaxed); /* ours */
    if (pos - r->head_seen >= cfg.queue_max) {
        r->head_seen = atomic_load_explicit(&r->head, memory_order_acquire);
        if (pos - r->head_seen >= cfg.queue_max) { /* full */
            atomic_fetch_add_explicit(&n_dropped, 1, memory_order_relaxed);
            return false;
        }
    }
    enc_span *s = encode_span(span);
    if (!s) {
        atomic_fetch_add_explicit(&n_dropped, 1, memory_order_relaxed);
        warn_limited(W_OOM, "trace export: a span dropped (no memory to encode it)");
        return false;
    }
    r->slot[pos % cfg.queue_max] = s;
    atomic_store_explicit(&r->tail, pos + 1, memory_order_release);
    /* Wake the exporter when it sleeps and now has what it waits for (see "the queues" for
     * the race). The head seen may be old (the ring then looks fuller): it is looked at again
     * before taking the lock. */
    uint64_t want = atomic_load_explicit(&q.wake_at, memory_order_relaxed);
    if (pos + 1 - r->head_seen >= want) {
        r->head_seen = atomic_load_explicit(&r->head, memory_order_acquire);
        if (pos + 1 - r->head_seen >= want) {
            pthread_mutex_lock(&q.mu);
            if (q.asleep) {
                q.asleep = false;
                atomic_store_explicit(&q.wake_at, UINT64_MAX, memory_order_relaxed);
                pthread_cond_signal(&q.wake);
            }
            pthread_mutex_unlock(&q.mu);
        }
    }
    return true;
}

void tb_trace_stats_get(tb_trace_stats *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    tb__trace_counts(&out->spans_started, &out->spans_sampled);
    out->spans_dropped = atomic_load_explicit(&n_dropped, memory_order_relaxed);
    out->spans_exported = atomic_load_explicit(&n_exported, memory_order_relaxed);
    out->export_requests = atomic_load_explicit(&n_requests, memory_order_relaxed);
    out->export_failures = atomic_load_explicit(&n_failures, memory_order_relaxed);
    pthread_mutex_lock(&q.mu);
    uint64_t queued = queued_before_fork + q.retired, len = 0;
    for (tring *r = atomic_load(&q.rings); r; r = r->next) {
        queued += ring_tail(r);
        len += ring_len(r);
    }
    pthread_mutex_unlock(&q.mu);
    out->spans_queued = queued;
    out->queue_len = (size_t)len;
}

/* Under q.mu: has the exporter take, at once, every span in the rings now, and waits (until
 * the deadline) for it to finish with them. */
static bool wait_finished(uint64_t deadline)
{
    for (tring *r = atomic_load(&q.rings); r; r = r->next)
        r->mark = ring_tail(r);
    uint64_t gen = ++q.flush_req;
    if (q.asleep) {
        q.asleep = false;
        atomic_store(&q.wake_at, UINT64_MAX);
        pthread_cond_signal(&q.wake);
    }
    struct timespec ts = ts_of(deadline);
    while (q.flush_done < gen && !q.stopped)
        if (pthread_cond_timedwait(&q.idle, &q.mu, &ts) == ETIMEDOUT)
            break;
    return q.flush_done >= gen || q.stopped;
}

int tb_trace_flush(long timeout_ms)
{
    pthread_once(&cfg_once, read_config);
    if (!cfg.enabled || !atomic_load(&q.started))
        return 0;
    uint64_t deadline = tb__mono_ns() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000u;
    pthread_mutex_lock(&q.mu);
    bool done = wait_finished(deadline);
    pthread_mutex_unlock(&q.mu);
    return done ? 0 : TB_ETIMEDOUT;
}

void tb_trace_shutdown(long timeout_ms)
{
    pthread_once(&cfg_once, read_config);
    uint64_t deadline = tb__mono_ns() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000u;
    pthread_mutex_lock(&q.mu);
    if (q.shutting) {
        pthread_mutex_unlock(&q.mu);
        return;
    }
    q.shutting = true;
    atomic_store(&q.closed, true); /* spans ended from now on are not taken */
    if (!atomic_load(&q.started)) {
        q.stopped = true;
        pthread_mutex_unlock(&q.mu);
        return;
    }
    wait_finished(deadline);
    q.stopping = true;
    atomic_store(&q_abort, true);
    pthread_cond_signal(&q.wake);
    pthread_mutex_unlock(&q.mu);
    pthread_join(q.thread, NULL);

    pthread_mutex_lock(&q.mu);
    uint64_t left = 0;
    for (tring *r = atomic_load(&q.rings); r; r = r->next)
        left += ring_drain(r); /* the rings stay: see "the queues" */
    rings_reap();
    q.stopped = true;
    pthread_cond_broadcast(&q.idle);
    pthread_mutex_unlock(&q.mu);
    enc_thread_done(); /* every span is out: this thread's chunk goes, and the spare ones */
    pthread_mutex_lock(&spare.mu);
    while (spare.n)
        free(spare.v[--spare.n]);
    pthread_mutex_unlock(&spare.mu);
    if (left) {
        atomic_fetch_add_explicit(&n_dropped, left, memory_order_relaxed);
        tb_log_warn(NULL, "trace export: shut down with %" PRIu64 " spans not sent (dropped)",
                    left);
    }
}

/* ---- OTLP JSON ---- */

#define PUTL(b, lit) tb_buf_append((b), (lit), sizeof(lit) - 1)

static void put_hex(tb_buf *b, const uint8_t *id, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (tb_buf_reserve(b, 2 * n + 2))
        return;
    char *o = b->data + b->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        *o++ = hex[id[i] >> 4];
        *o++ = hex[id[i] & 15];
    }
    *o++ = '"';
    *o = '\0';
    b->len += 2 * n + 2;
}

/* int64 and fixed64 are JSON strings in proto3's mapping. */
static void put_u64_str(tb_buf *b, uint64_t v, bool neg)
{
    char tmp[24], *p = tmp + sizeof tmp;
    *--p = '"';
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    if (neg)
        *--p = '-';
    *--p = '"';
    tb_buf_append(b, p, (size_t)(tmp + sizeof tmp - p));
}

/* A small unsigned JSON number (counts, enums, flags), without printf's cost. */
static void put_uint(tb_buf *b, uint64_t v)
{
    char tmp[24], *p = tmp + sizeof tmp;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    tb_buf_append(b, p, (size_t)(tmp + sizeof tmp - p));
}

static void put_i64_str(tb_buf *b, int64_t v)
{
    put_u64_str(b, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v, v < 0);
}

static void put_str(tb_buf *b, const char *s)
{
    tb_buf_json_string(b, s ? s : "", s ? strlen(s) : 0);
}

static void put_kv_str(tb_buf *b, const char *key, const char *val)
{
    PUTL(b, "{\"key\":");
    put_str(b, key);
    PUTL(b, ",\"value\":{\"stringValue\":");
    put_str(b, val);
    PUTL(b, "}}");
}

static void put_attr(tb_buf *b, const tb_span_attr *a)
{
    PUTL(b, "{\"key\":");
    put_str(b, a->key);
    switch (a->type) {
    case TB_ATTR_INT:
        PUTL(b, ",\"value\":{\"intValue\":");
        put_i64_str(b, a->v.i);
        break;
    case TB_ATTR_DOUBLE:
        PUTL(b, ",\"value\":{\"doubleValue\":");
        if (isnan(a->v.d))
            PUTL(b, "\"NaN\""); /* proto3 JSON's names for what JSON numbers cannot say */
        else if (isinf(a->v.d))
            tb_buf_puts(b, a->v.d > 0 ? "\"Infinity\"" : "\"-Infinity\"");
        else
            tb_buf_json_double(b, a->v.d);
        break;
    case TB_ATTR_BOOL:
        PUTL(b, ",\"value\":{\"boolValue\":");
        tb_buf_puts(b, a->v.b ? "true" : "false");
        break;
    case TB_ATTR_STRING:
    default:
        PUTL(b, ",\"value\":{\"stringValue\":");
        tb_buf_json_string(b, a->v.s ? a->v.s : "", a->type == TB_ATTR_STRING && a->v.s ? a->len : 0);
        break;
    }
    PUTL(b, "}}");
}

static void put_span(tb_buf *b, const tb_span *s)
{
    PUTL(b, "{\"traceId\":");
    put_hex(b, s->sc.trace_id, 16);
    PUTL(b, ",\"spanId\":");
    put_hex(b, s->sc.span_id, 8);
    if (s->tracestate[0]) {
        PUTL(b, ",\"traceState\":");
        put_str(b, s->tracestate);
    }
    if (s->has_parent) {
        PUTL(b, ",\"parentSpanId\":");
        put_hex(b, s->parent_span_id, 8);
    }
    /* flags: the W3C trace flags in bits 0-7; whether the parent is remote (bits 8-9) is not
     * known here, so those stay 0 ("unknown"), as the proto says. */
    PUTL(b, ",\"flags\":");
    put_uint(b, s->sc.flags);
    PUTL(b, ",\"name\":");
    put_str(b, s->name);
    int kind = s->kind >= TB_SPAN_INTERNAL && s->kind <= TB_SPAN_CONSUMER ? (int)s->kind : 0;
    PUTL(b, ",\"kind\":");
    put_uint(b, (uint64_t)kind);
    PUTL(b, ",\"startTimeUnixNano\":");
    put_u64_str(b, s->start_unix_nano, false);
    PUTL(b, ",\"endTimeUnixNano\":");
    put_u64_str(b, s->end_unix_nano, false);
    PUTL(b, ",\"attributes\":[");
    size_t n_attrs = s->n_attrs < TB_SPAN_MAX_ATTRS ? s->n_attrs : TB_SPAN_MAX_ATTRS;
    size_t written = 0;
    for (size_t i = 0; i < n_attrs; i++) {
        if (!s->attrs[i].key)
            continue;
        if (written++)
            tb_buf_putc(b, ',');
        put_attr(b, &s->attrs[i]);
    }
    tb_buf_putc(b, ']');
    if (s->dropped_attrs) {
        PUTL(b, ",\"droppedAttributesCount\":");
        put_uint(b, s->dropped_attrs);
    }
    size_t n_events = s->n_events < TB_SPAN_MAX_EVENTS ? s->n_events : TB_SPAN_MAX_EVENTS;
    if (n_events) {
        PUTL(b, ",\"events\":[");
        for (size_t i = 0; i < n_events; i++) {
            const tb_span_event *e = &s->events[i];
            if (i)
                tb_buf_putc(b, ',');
            PUTL(b, "{\"timeUnixNano\":");
            put_u64_str(b, e->time_unix_nano, false);
            PUTL(b, ",\"name\":");
            put_str(b, e->name);
            PUTL(b, ",\"attributes\":[");
            if (e->type)
                put_kv_str(b, "exception.type", e->type);
            if (e->message) {
                if (e->type)
                    tb_buf_putc(b, ',');
                put_kv_str(b, "exception.message", e->message);
            }
            PUTL(b, "]}");
        }
        tb_buf_putc(b, ']');
    }
    size_t n_links = s->n_links < TB_SPAN_MAX_LINKS ? s->n_links : TB_SPAN_MAX_LINKS;
    if (n_links) {
        PUTL(b, ",\"links\":[");
        for (size_t i = 0; i < n_links; i++) {
            if (i)
                tb_buf_putc(b, ',');
            PUTL(b, "{\"traceId\":");
            put_hex(b, s->links[i].trace_id, 16);
            PUTL(b, ",\"spanId\":");
            put_hex(b, s->links[i].span_id, 8);
            PUTL(b, ",\"flags\":");
            put_uint(b, s->links[i].flags);
            tb_buf_putc(b, '}');
        }
        tb_buf_putc(b, ']');
    }
    int code = s->status == TB_STATUS_OK ? 1 : s->status == TB_STATUS_ERROR ? 2 : 0;
    PUTL(b, ",\"status\":{\"code\":");
    put_uint(b, (uint64_t)code);
    if (code == 2 && s->status_message && *s->status_message) {
        PUTL(b, ",\"message\":");
        put_str(b, s->status_message);
    }
    PUTL(b, "}}");
}

/* The resource's attributes, in order: service.name, the SDK's own (unless OTEL_RESOURCE_ATTRIBUTES
 * sets them) and OTEL_RESOURCE_ATTRIBUTES's (but service.name, which OTEL_SERVICE_NAME or the
 * attribute itself already gave). The one list both encodings write. */
typedef void (*attr_fn)(void *ud, const char *key, const char *val);
static void resource_attrs(attr_fn fn, void *ud)
{
    fn(ud, "service.name", tb__trace_service_name());
    static const char *const sdk[][2] = {
        {"telemetry.sdk.name", TB__SDK_NAME},
        /* semconv's list of languages has no C; a custom value is what it allows then */
        {"telemetry.sdk.language", "c"},
        {"telemetry.sdk.version", TB__SDK_VERSION},
    };
    for (size_t i = 0; i < sizeof sdk / sizeof sdk[0]; i++) {
        bool overridden = false;
        for (size_t j = 0; j < cfg.n_res && !overridden; j++)
            overridden = strcmp(cfg.res[j].key, sdk[i][0]) == 0;
        if (!overridden)
            fn(ud, sdk[i][0], sdk[i][1]);
    }
    for (size_t j = 0; j < cfg.n_res; j++)
        if (strcmp(cfg.res[j].key, "service.name") != 0)
            fn(ud, cfg.res[j].key, cfg.res[j].val);
}

static void json_attr(void *ud, const char *key, const char *val)
{
    tb_buf *b = ud;
    if (b->len && b->data[b->len - 1] != '[')
        tb_buf_putc(b, ',');
    put_kv_str(b, key, val);
}

/* Everything before the first span: the resource and the scope. Made at the first export, so
 * the service's default name (set before its first span) is in. */
static void put_head(tb_buf *b)
{
    PUTL(b, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[");
    resource_attrs(json_attr, b);
    PUTL(b, "]},\"scopeSpans\":[{\"scope\":{\"name\":\"" TB__SDK_NAME
            "\",\"version\":\"" TB__SDK_VERSION "\"},\"spans\":[");
}

/* ---- OTLP/HTTP protobuf (OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf) ----
 *
 * The same ExportTraceServiceRequest in the binary encoding of opentelemetry-proto: ids as raw
 * bytes, times as fixed64, default values left out. About a third of the JSON's size and cheaper
 * to write (no hex, no decimal strings, no escaping). A nested message is written in place
 * behind a one-byte length slot, moved over only when its length needs more; the batch's two
 * outer lengths and the resource go in a gap left before the first span. Strings are UTF-8 as proto3 wants:
 * a byte that starts no valid sequence becomes U+FFFD, as in the JSON. */

enum { PB_VARINT = 0, PB_I64 = 1, PB_LEN = 2, PB_I32 = 5 };

/* One Span message, as field 2 of ScopeSpans. The hot part of the export, so written with a
 * plain pointer into room reserved once for the span's largest possible encoding (every
 * string as if each byte became U+FFFD), and each nested message's length put in one byte
 * first and moved over in the rare case it needs more. */

static inline uint8_t *w_varint(uint8_t *o, uint64_t v)
{
    while (v >= 0x80) {
        *o++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *o++ = (uint8_t)v;
    return o;
}

static inline uint8_t *w_key(uint8_t *o, unsigned field, unsigned wt)
{
    return w_varint(o, (uint64_t)field << 3 | wt);
}

static inline uint8_t *w_bytes(uint8_t *o, unsigned field, const void *p, size_t n)
{
    o = w_varint(w_key(o, field, PB_LEN), n);
    memcpy(o, p, n);
    return o + n;
}

static inline uint8_t *w_fixed(uint8_t *o, unsigned field, uint64_t v, unsigned bytes)
{
    o = w_key(o, field, bytes == 8 ? PB_I64 : PB_I32);
    for (unsigned i = 0; i < bytes; i++)
        *o++ = (uint8_t)(v >> (8 * i));
    return o;
}

/* A string field of n bytes: as is when valid UTF-8, else each bad byte as U+FFFD. */
static uint8_t *w_str(uint8_t *o, unsigned field, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    size_t i = 0;
    for (uint64_t w; i + 8 <= n; i += 8) { /* ASCII, 8 bytes at a time */
        memcpy(&w, p + i, 8);
        if (w & 0x8080808080808080ull)
            break;
    }
    while (i < n && p[i] < 0x80)
        i++;
    if (i == n)
        return w_bytes(o, field, s, n);
    size_t clean = i;
    for (const unsigned char *c = p + i; c < end;) {
        size_t k = tb__utf8_seq(c, end);
        clean += k ? k : 3;
        c += k ? k : 1;
    }
    o = w_varint(w_key(o, field, PB_LEN), clean);
    memcpy(o, p, i);
    o += i;
    for (const unsigned char *c = p + i; c < end;) {
        size_t k = tb__utf8_seq(c, end);
        if (k) {
            memcpy(o, c, k);
            o += k;
            c += k;
        } else {
            memcpy(o, "\xEF\xBF\xBD", 3);
            o += 3;
            c++;
        }
    }
    return o;
}

/* A nested message: its key and a one-byte length slot; returns where its body starts. */
static inline uint8_t *w_open(uint8_t *o, unsigned field)
{
    return w_key(o, field, PB_LEN) + 1;
}

/* Ends the message whose body started at body, after a length slot of `slot` bytes, and ends
 * at o; returns the new end. The body moves when its length takes other than `slot` bytes. */
static inline uint8_t *w_close_slot(uint8_t *body, uint8_t *o, size_t slot)
{
    size_t len = (size_t)(o - body);
    uint8_t hdr[10];
    size_t k = (size_t)(w_varint(hdr, len) - hdr);
    if (k != slot)
        memmove(body + k - slot, body, len);
    memcpy(body - slot, hdr, k);
    return o + k - slot;
}

static inline uint8_t *w_close(uint8_t *body, uint8_t *o)
{
    size_t len = (size_t)(o - body);
    if (len < 0x80) {
        body[-1] = (uint8_t)len;
        return o;
    }
    return w_close_slot(body, o, 1);
}

static uint8_t *w_kv_str(uint8_t *o, unsigned field, const char *key, const char *val,
                         size_t val_len)
{
    uint8_t *pair = w_open(o, field);
    o = w_str(pair, 1, key, strlen(key));
    uint8_t *any = w_open(o, 2);
    o = w_str(any, 1, val, val_len);
    return w_close(pair, w_close(any, o));
}

/* The largest encoding of n string bytes: 3 bytes each (U+FFFD), a key and a length. */
#define W_STR_MAX(n) (3 * (n) + 16)
#define W_MSG_MAX 16 /* a nested message's key, length and what its move may add */

static void pb_span(tb_buf *b, const tb_span *s)
{
    size_t n_attrs = s->n_attrs < TB_SPAN_MAX_ATTRS ? s->n_attrs : TB_SPAN_MAX_ATTRS;
    size_t n_events = s->n_events < TB_SPAN_MAX_EVENTS ? s->n_events : TB_SPAN_MAX_EVENTS;
    size_t n_links = s->n_links < TB_SPAN_MAX_LINKS ? s->n_links : TB_SPAN_MAX_LINKS;
    size_t name_len = strnlen(s->name, sizeof s->name);
    size_t ts_len = strnlen(s->tracestate, sizeof s->tracestate);
    size_t key_len[TB_SPAN_MAX_ATTRS], sv_len[TB_SPAN_MAX_ATTRS];
    size_t max = W_MSG_MAX + 18 + 10 + 10 + W_STR_MAX(ts_len) + W_STR_MAX(name_len) + 11 + 18 + 11 +
                 W_MSG_MAX + 11 + 6;
    for (size_t i = 0; i < n_attrs; i++) {
        const tb_span_attr *a = &s->attrs[i];
        if (!a->key)
            continue;
        sv_len[i] = a->type == TB_ATTR_STRING && a->v.s ? a->len : 0;
        key_len[i] = strlen(a->key);
        max += 2 * W_MSG_MAX + W_STR_MAX(key_len[i]) + W_STR_MAX(sv_len[i]) + 11;
    }
    for (size_t i = 0; i < n_events; i++) {
        const tb_span_event *e = &s->events[i];
        max += W_MSG_MAX + 9 + W_STR_MAX(strlen(e->name ? e->name : ""));
        if (e->type)
            max += 2 * W_MSG_MAX + W_STR_MAX(sizeof "exception.type") + W_STR_MAX(strlen(e->type));
        if (e->message)
            max += 2 * W_MSG_MAX + W_STR_MAX(sizeof "exception.message") +
                   W_STR_MAX(strlen(e->message));
    }
    max += n_links * (W_MSG_MAX + 18 + 10 + 5);
    size_t status_len = s->status_message ? strlen(s->status_message) : 0;
    max += W_STR_MAX(status_len);
    if (tb_buf_reserve(b, max))
        return;

    uint8_t *o0 = (uint8_t *)b->data + b->len;
    /* a span takes 128 to 16383 bytes but for the smallest: a two-byte length slot */
    uint8_t *span = w_key(o0, 2, PB_LEN) + 2, *o = span;
    o = w_bytes(o, 1, s->sc.trace_id, 16);
    o = w_bytes(o, 2, s->sc.span_id, 8);
    if (ts_len)
        o = w_str(o, 3, s->tracestate, ts_len);
    if (s->has_parent)
        o = w_bytes(o, 4, s->parent_span_id, 8);
    o = w_str(o, 5, s->name, name_len);
    int kind = s->kind >= TB_SPAN_INTERNAL && s->kind <= TB_SPAN_CONSUMER ? (int)s->kind : 0;
    if (kind)
        o = w_varint(w_key(o, 6, PB_VARINT), (uint64_t)kind);
    o = w_fixed(o, 7, s->start_unix_nano, 8);
    o = w_fixed(o, 8, s->end_unix_nano, 8);
    for (size_t i = 0; i < n_attrs; i++) {
        const tb_span_attr *a = &s->attrs[i];
        if (!a->key)
            continue;
        uint8_t *pair = w_open(o, 9);
        o = w_str(pair, 1, a->key, key_len[i]);
        uint8_t *any = w_open(o, 2);
        switch (a->type) { /* AnyValue: a oneof, so set even when 0 / false */
        case TB_ATTR_INT:
            /* int64: two's complement, 10 bytes when negative */
            o = w_varint(w_key(any, 3, PB_VARINT), (uint64_t)a->v.i);
            break;
        case TB_ATTR_DOUBLE: {
            uint64_t bits;
            memcpy(&bits, &a->v.d, sizeof bits);
            o = w_fixed(any, 4, bits, 8);
            break;
        }
        case TB_ATTR_BOOL: o = w_varint(w_key(any, 2, PB_VARINT), a->v.b ? 1 : 0); break;
        case TB_ATTR_STRING:
        default: o = w_str(any, 1, a->v.s ? a->v.s : "", sv_len[i]); break;
        }
        o = w_close(pair, w_close(any, o));
    }
    if (s->dropped_attrs)
        o = w_varint(w_key(o, 10, PB_VARINT), s->dropped_attrs);
    for (size_t i = 0; i < n_events; i++) {
        const tb_span_event *e = &s->events[i];
        uint8_t *ev = w_open(o, 11);
        o = w_fixed(ev, 1, e->time_unix_nano, 8);
        o = w_str(o, 2, e->name ? e->name : "", e->name ? strlen(e->name) : 0);
        if (e->type)
            o = w_kv_str(o, 3, "exception.type", e->type, strlen(e->type));
        if (e->message)
            o = w_kv_str(o, 3, "exception.message", e->message, strlen(e->message));
        o = w_close(ev, o);
    }
    for (size_t i = 0; i < n_links; i++) {
        uint8_t *ln = w_open(o, 13);
        o = w_bytes(ln, 1, s->links[i].trace_id, 16);
        o = w_bytes(o, 2, s->links[i].span_id, 8);
        o = w_fixed(o, 6, s->links[i].flags, 4);
        o = w_close(ln, o);
    }
    int code = s->status == TB_STATUS_OK ? 1 : s->status == TB_STATUS_ERROR ? 2 : 0;
    uint8_t *st = w_open(o, 15);
    o = st;
    if (code == 2 && status_len)
        o = w_str(o, 2, s->status_message, status_len);
    if (code)
        o = w_varint(w_key(o, 3, PB_VARINT), (uint64_t)code);
    o = w_close(st, o);
    o = w_fixed(o, 16, s->sc.flags, 4);
    o = w_close_slot(span, o, 2);
    b->len += (size_t)(o - o0);
}

/* The Resource (field 1 of ResourceSpans) and the InstrumentationScope (field 1 of ScopeSpans),
 * made once: what put_head says in JSON. */
static void attr_bound(void *ud, const char *key, const char *val)
{
    *(size_t *)ud += 2 * W_MSG_MAX + W_STR_MAX(strlen(key)) + W_STR_MAX(strlen(val));
}

static void pb_attr(void *ud, const char *key, const char *val)
{
    uint8_t **o = ud;
    *o = w_kv_str(*o, 1, key, val, strlen(val));
}

static void pb_head(tb_buf *res, tb_buf *scope)
{
    size_t max = W_MSG_MAX;
    resource_attrs(attr_bound, &max);
    if (tb_buf_reserve(res, max) ||
        tb_buf_reserve(scope, W_MSG_MAX + W_STR_MAX(sizeof TB__SDK_NAME TB__SDK_VERSION)))
        return;
    uint8_t *o0 = (uint8_t *)res->data, *body = w_open(o0, 1), *o = body;
    resource_attrs(pb_attr, &o);
    res->len = (size_t)(w_close(body, o) - o0);
    o0 = (uint8_t *)scope->data;
    body = w_open(o0, 1);
    o = w_str(body, 1, TB__SDK_NAME, strlen(TB__SDK_NAME));
    o = w_str(o, 2, TB__SDK_VERSION, strlen(TB__SDK_VERSION));
    scope->len = (size_t)(w_close(body, o) - o0);
}

/* A field of a protobuf message in p[0..n): a varint's value or a length-delimited field's
 * bytes (the first such field of that number). false when absent or the message is broken. */
/* Reads a varint at *p (before end) into *v and moves *p past it; false when it is cut short or
 * longer than ten bytes. */
static bool pb_varint_read(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned sh = 0;; sh += 7) {
        if (*p >= end || sh > 63)
            return false;
        x |= (uint64_t)(**p & 0x7F) << sh;
        if (!(*(*p)++ & 0x80))
            break;
    }
    *v = x;
    return true;
}

static bool pb_find(const uint8_t *p, size_t n, unsigned field, uint64_t *v, const uint8_t **data,
                    size_t *len)
{
    const uint8_t *end = p + n;
    while (p < end) {
        uint64_t key, x;
        if (!pb_varint_read(&p, end, &key))
            return false;
        unsigned wt = (unsigned)(key & 7);
        if (wt == PB_I64 || wt == PB_I32) {
            size_t k = wt == PB_I64 ? 8 : 4;
            if ((size_t)(end - p) < k)
                return false;
            p += k;
            continue;
        }
        if (wt != PB_VARINT && wt != PB_LEN)
            return false;
        if (!pb_varint_read(&p, end, &x))
            return false;
        if (wt == PB_LEN && x > (uint64_t)(end - p))
            return false;
        if ((key >> 3) == field) {
            if (wt == PB_VARINT && v)
                *v = x;
            if (wt == PB_LEN && data) {
                *data = p;
                *len = (size_t)x;
            }
            return true;
        }
        if (wt == PB_LEN)
            p += x;
    }
    return false;
}

/* ---- encoding at the span's end ---- */

/* Each thread encodes into a buffer of its own, then copies the bytes into its current chunk:
 * no allocation per span, and the exporter reads the spans of a thread one after another.
 * A chunk is freed by whoever takes its last reference: its thread holds one, as a bias that
 * it turns into the count of spans it wrote when it moves on; each exported (or dropped) span
 * gives one back. So the hot path has no atomic operation on a line the exporter writes. */
#define CHUNK_SIZE (64 * 1024)
#define CHUNK_BIAS ((size_t)1 << 40)

/* refs has a cache line of its own: the exporter takes one back per span, and the owning
 * thread's counters (in its enc_thread) must not share that line. */
struct chunk {
    _Alignas(64) _Atomic size_t refs;
    _Alignas(64) char data[];
};

typedef struct enc_thread {
    tb_buf scratch;
    chunk *cur;
    size_t used, spans; /* in cur */
    tring *ring;
} enc_thread;

static pthread_key_t enc_key;
static pthread_once_t enc_once = PTHREAD_ONCE_INIT;
static __thread enc_thread *enc_mine;

static void chunk_unref(chunk *c, size_t n)
{
    if (atomic_fetch_sub_explicit(&c->refs, n, memory_order_acq_rel) != n)
        return;
    pthread_mutex_lock(&spare.mu);
    if (spare.n < CHUNKS_KEPT) {
        spare.v[spare.n++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&spare.mu);
    free(c);
}

static chunk *chunk_new(void)
{
    chunk *c = NULL;
    pthread_mutex_lock(&spare.mu);
    if (spare.n)
        c = spare.v[--spare.n];
    pthread_mutex_unlock(&spare.mu);
    if (!c && !(c = aligned_alloc(64, CHUNK_SIZE)))
        return NULL;
    atomic_init(&c->refs, CHUNK_BIAS);
    return c;
}

/* The thread moves on from its chunk: its bias becomes the count of spans still out. */
static void chunk_release(enc_thread *t)
{
    if (t->cur)
        chunk_unref(t->cur, CHUNK_BIAS - t->spans);
    t->cur = NULL;
}

static void enc_free(enc_span *e)
{
    if (e->ch)
        chunk_unref(e->ch, 1);
    else
        free(e);
}

static void enc_thread_free(void *p)
{
    enc_thread *t = p;
    tb_buf_deinit(&t->scratch);
    chunk_release(t);
    if (t->ring)
        ring_end(t->ring);
    free(t);
}

static void enc_key_make(void)
{
    (void)pthread_key_create(&enc_key, enc_thread_free);
}

/* This thread's encoding state, given back at shutdown (the main thread runs no key
 * destructor). */
static void enc_thread_done(void)
{
    if (enc_mine) {
        (void)pthread_setspecific(enc_key, NULL);
        enc_thread_free(enc_mine);
        enc_mine = NULL;
    }
}

static enc_thread *enc_thread_get(void)
{
    enc_thread *t = enc_mine;
    if (!t) {
        pthread_once(&enc_once, enc_key_make);
        if (!(t = calloc(1, sizeof *t)))
            return NULL;
        t->scratch = (tb_buf)TB_BUF_INIT;
        (void)pthread_setspecific(enc_key, t);
        enc_mine = t;
    }
    return t;
}

static tring *ring_mine(bool make)
{
    if (!make)
        return enc_mine ? enc_mine->ring : NULL;
    enc_thread *t = enc_mine ? enc_mine : enc_thread_get();
    if (!t) {
        atomic_fetch_add_explicit(&n_dropped, 1, memory_order_relaxed);
        return NULL;
    }
    if (!t->ring)
        t->ring = ring_new();
    return t->ring;
}

static enc_span *encode_span(const tb_span *s)
{
    enc_thread *t = enc_thread_get();
    if (!t)
        return NULL;
    tb_buf *b = &t->scratch;
    tb_buf_reset(b);
    if (cfg.protobuf)
        pb_span(b, s);
    else
        put_span(b, s);
    if (b->oom)
        return NULL;
    size_t need = (sizeof(enc_span) + b->len + 15) & ~(size_t)15;
    enc_span *e;
    if (need > CHUNK_SIZE / 4) { /* a very large span: a block of its own */
        if (!(e = malloc(sizeof *e + b->len)))
            return NULL;
        e->ch = NULL;
    } else {
        chunk *c = t->cur;
        if (!c || t->used + need > CHUNK_SIZE - sizeof *c) {
            chunk_release(t);
            if (!(c = chunk_new()))
                return NULL;
            t->cur = c;
            t->used = t->spans = 0;
        }
        e = (enc_span *)(c->data + t->used);
        t->used += need;
        t->spans++;
        e->ch = c;
    }
    e->len = b->len;
    memcpy(e->data, b->data, b->len);
    if (b->cap > 65536) { /* a huge span: its room is not kept */
        tb_buf_deinit(b);
        *b = (tb_buf)TB_BUF_INIT;
    }
    return e;
}

/* ---- the exporter thread ---- */

typedef struct exporter {
    CURL *curl;
    tb__h1 h1;          /* the built-in client, while direct */
    bool direct;        /* http:// without a proxy: h1, not curl (until a redirect) */
    tb_buf req_head;    /* direct: the request's head up to "Content-Length: " */
    size_t req_head_fixed;
    struct iovec *iov;  /* the body's pieces, where they lie (make_iov) */
    int n_iov;
    uint8_t pb_hdr[2][11]; /* protobuf: the ResourceSpans' and ScopeSpans' key+length */
    z_stream zs;           /* gzip: made at the first batch, reset for each */
    bool zs_ready;
    tb_buf gz;             /* gzip: the compressed body */
    tb_buf head;                     /* put_head's text, made once */
    tb_buf body;                     /* libcurl: the pieces joined */
    tb_buf resp;                     /* the response body, up to TB__RESPONSE_MAX */
    tb_buf pb_res, pb_scope;         /* protobuf: the Resource and the scope, made once */
    const char *send;                /* libcurl: what is POSTed (body, or the one piece) */
    size_t send_len;
    long retry_after_ms; /* -1: none in the last response */
    char errbuf[CURL_ERROR_SIZE];
    uint64_t rng;
    enc_span **batch;
} exporter;

/* One warning per kind and minute: a collector that is down must not flood the logs. Any
 * thread may call it. */
static void warn_limited(int kind, const char *fmt, ...)
{
    static _Atomic uint64_t last[W__N];
    static _Atomic uint64_t quiet[W__N];
    uint64_t now = tb__mono_ns(), prev = atomic_load(&last[kind]);
    if (prev && now - prev < TB__WARN_EVERY_NS) {
        atomic_fetch_add(&quiet[kind], 1);
        return;
    }
    atomic_store(&last[kind], now);
    char msg[640];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    uint64_t q_n = atomic_exchange(&quiet[kind], 0);
    if (q_n)
        tb_log_warn(NULL, "%s (and %" PRIu64 " more like it in the last minute)", msg, q_n);
    else
        tb_log_warn(NULL, "%s", msg);
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    exporter *x = ud;
    size_t len = size * n;
    if (x->resp.len + len <= TB__RESPONSE_MAX)
        tb_buf_append(&x->resp, p, len);
    return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    exporter *x = ud;
    size_t len = size * n;
    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) { /* a new response (after a redirect) */
        x->retry_after_ms = -1;
        x->resp.len = 0;
    } else if (len > 12 && strncasecmp(p, "Retry-After:", 12) == 0) {
        char v[64];
        size_t vl = len - 12 < sizeof v - 1 ? len - 12 : sizeof v - 1;
        memcpy(v, p + 12, vl);
        v[vl] = '\0';
        char *sv = v + strspn(v, " \t");
        sv[strcspn(sv, "\r\n")] = '\0';
        long ms = tb__h1_retry_after(sv);
        if (ms >= 0)
            x->retry_after_ms = ms;
    }
    return len;
}

static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)ud, (void)a, (void)b, (void)c, (void)d;
    return atomic_load_explicit(&q_abort, memory_order_relaxed) ? 1 : 0;
}

static CURL *make_curl(exporter *x)
{
    if (tb_global_init() != 0)
        return NULL;
    CURL *c = curl_easy_init();
    if (!c)
        return NULL;
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_URL, cfg.url);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#endif
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L); /* OTLP/HTTP: follow redirects */
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(c, CURLOPT_POSTREDIR, (long)CURL_REDIR_POST_ALL);
    curl_easy_setopt(c, CURLOPT_USERAGENT, TB__USER_AGENT);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    if (cfg.ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, cfg.ca_file);
    if (cfg.client_cert)
        curl_easy_setopt(c, CURLOPT_SSLCERT, cfg.client_cert);
    if (cfg.client_key)
        curl_easy_setopt(c, CURLOPT_SSLKEY, cfg.client_key);
    return c;
}

/* One POST of x->send with libcurl. The HTTP status, or 0 with *cc set when there was none. */
static long post_curl(exporter *x, struct curl_slist *headers, long timeout_ms, CURLcode *cc)
{
    tb_buf_reset(&x->resp);
    x->retry_after_ms = -1;
    x->errbuf[0] = '\0';
    curl_easy_setopt(x->curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(x->curl, CURLOPT_POSTFIELDS, x->send);
    curl_easy_setopt(x->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->send_len);
    curl_easy_setopt(x->curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    *cc = curl_easy_perform(x->curl);
    atomic_fetch_add_explicit(&n_requests, 1, memory_order_relaxed);
    if (*cc != CURLE_OK)
        return 0;
    long status = 0;
    curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status);
    return status;
}

/* Direct: the request's head up to the Content-Length value, made once. The user's headers
 * (OTEL_EXPORTER_OTLP_HEADERS) replace ours of the same name, as with libcurl; none may
 * change the framing or break a line. */
static void make_req_head(exporter *x)
{
    tb_buf *b = &x->req_head;
    bool user_host = false, user_agent = false;
    for (struct curl_slist *h = cfg.headers; h; h = h->next) {
        user_host |= strncasecmp(h->data, "Host:", 5) == 0;
        user_agent |= strncasecmp(h->data, "User-Agent:", 11) == 0;
    }
    tb_buf_printf(b, "POST %s HTTP/1.1\r\n", x->h1.target);
    if (!user_host)
        tb_buf_printf(b, "Host: %s\r\n", x->h1.authority);
    if (!user_agent)
        PUTL(b, "User-Agent: " TB__USER_AGENT "\r\n");
    PUTL(b, "Accept: */*\r\n");
    if (cfg.protobuf)
        PUTL(b, "Content-Type: application/x-protobuf\r\n");
    else
        PUTL(b, "Content-Type: application/json\r\n");
    for (struct curl_slist *h = cfg.headers; h; h = h->next) {
        const char *l = h->data;
        bool framing = strncasecmp(l, "Content-Length:", 15) == 0 ||
                       strncasecmp(l, "Transfer-Encoding:", 18) == 0 ||
                       strncasecmp(l, "Connection:", 11) == 0 ||
                       strncasecmp(l, "Expect:", 7) == 0;
        bool bad = false;
        for (const char *c = l; *c; c++)
            bad |= *c == '\r' || *c == '\n';
        if (!framing && !bad) {
            tb_buf_puts(b, l);
            PUTL(b, "\r\n");
        }
    }
    if (cfg.gzip)
        PUTL(b, "Content-Encoding: gzip\r\n");
    PUTL(b, "Content-Length: ");
    x->req_head_fixed = b->len;
}

/* The body as pieces pointing at the encoded spans (no copy); its length. */
static size_t make_iov(exporter *x, enc_span **spans, size_t n)
{
    static const char comma = ',', tail[] = "]}]}]}";
    struct iovec *v = x->iov;
    int k = 0;
    size_t len = 0;
    if (cfg.protobuf) {
        if (!x->pb_res.len)
            pb_head(&x->pb_res, &x->pb_scope);
        for (size_t i = 0; i < n; i++)
            len += spans[i]->len;
        uint64_t ss_len = x->pb_scope.len + len;
        size_t ss_h = (size_t)(w_varint(w_key(x->pb_hdr[1], 2, PB_LEN), ss_len) - x->pb_hdr[1]);
        uint64_t rs_len = x->pb_res.len + ss_h + ss_len;
        size_t rs_h = (size_t)(w_varint(w_key(x->pb_hdr[0], 1, PB_LEN), rs_len) - x->pb_hdr[0]);
        v[k++] = (struct iovec){x->pb_hdr[0], rs_h};
        v[k++] = (struct iovec){x->pb_res.data, x->pb_res.len};
        v[k++] = (struct iovec){x->pb_hdr[1], ss_h};
        v[k++] = (struct iovec){x->pb_scope.data, x->pb_scope.len};
        for (size_t i = 0; i < n; i++)
            v[k++] = (struct iovec){spans[i]->data, spans[i]->len};
        x->n_iov = k;
        return rs_h + (size_t)rs_len;
    }
    if (!x->head.len)
        put_head(&x->head);
    v[k++] = (struct iovec){x->head.data, x->head.len};
    len = x->head.len;
    for (size_t i = 0; i < n; i++) {
        if (i) {
            v[k++] = (struct iovec){(void *)&comma, 1};
            len++;
        }
        v[k++] = (struct iovec){spans[i]->data, spans[i]->len};
        len += spans[i]->len;
    }
    v[k++] = (struct iovec){(void *)tail, sizeof tail - 1};
    x->n_iov = k;
    return len + sizeof tail - 1;
}

/* One POST with the built-in client. The status, or 0 with x->errbuf set. */
static long post_direct(exporter *x, size_t body_len, uint64_t deadline, bool *aborted)
{
    x->req_head.len = x->req_head_fixed;
    tb_buf_printf(&x->req_head, "%zu\r\n\r\n", body_len);
    long status = 0;
    if (x->req_head.oom) {
        snprintf(x->errbuf, sizeof x->errbuf, "no memory for the request");
        x->h1.retry_after_ms = -1;
        x->h1.aborted = false;
    } else {
        status = tb__h1_post(&x->h1, x->req_head.data, x->req_head.len, x->iov, x->n_iov,
                             &x->resp, TB__RESPONSE_MAX, deadline, &q_abort);
        atomic_fetch_add_explicit(&n_requests, 1, memory_order_relaxed);
        snprintf(x->errbuf, sizeof x->errbuf, "%s", status ? "" : x->h1.err);
    }
    x->retry_after_ms = x->h1.retry_after_ms;
    *aborted = x->h1.aborted;
    return status;
}

/* Waits ms, or less when the exporter is stopped. true when it was stopped. */
static bool pause_ms(long ms)
{
    uint64_t until = tb__mono_ns() + (uint64_t)ms * 1000000u;
    struct timespec ts = ts_of(until);
    pthread_mutex_lock(&q.mu);
    while (!q.stopping && tb__mono_ns() < until)
        if (pthread_cond_timedwait(&q.wake, &q.mu, &ts) == ETIMEDOUT)
            break;
    bool stop = q.stopping;
    pthread_mutex_unlock(&q.mu);
    return stop;
}

static uint64_t rng_next(exporter *x)
{
    x->rng ^= x->rng << 13;
    x->rng ^= x->rng >> 7;
    x->rng ^= x->rng << 17;
    return x->rng;
}

/* What a 2xx says: partialSuccess.rejectedSpans (an int64, a string in JSON) are dropped. The
 * answer is in the request's encoding (a collector may still answer JSON "{}" to protobuf). */
static void on_success(exporter *x, size_t n)
{
    uint64_t rejected = 0;
    const char *msg = NULL;
    char pb_msg[256];
    json_t *j = NULL;
    if (cfg.protobuf && x->resp.len && x->resp.data[0] != '{') {
        const uint8_t *ps, *m;
        size_t ps_len, m_len;
        if (pb_find((const uint8_t *)x->resp.data, x->resp.len, 1, NULL, &ps, &ps_len)) {
            pb_find(ps, ps_len, 1, &rejected, NULL, NULL);
            if (pb_find(ps, ps_len, 2, NULL, &m, &m_len)) {
                snprintf(pb_msg, sizeof pb_msg, "%.*s", (int)(m_len < 255 ? m_len : 255),
                         (const char *)m);
                msg = pb_msg;
            }
        }
    } else {
        j = x->resp.len ? json_loadb(x->resp.data, x->resp.len, 0, NULL) : NULL;
        json_t *ps = j ? json_object_get(j, "partialSuccess") : NULL;
        if (ps) {
            json_t *r = json_object_get(ps, "rejectedSpans");
            if (json_is_string(r))
                rejected = strtoull(json_string_value(r), NULL, 10);
            else if (json_is_integer(r) && json_integer_value(r) > 0)
                rejected = (uint64_t)json_integer_value(r);
            msg = json_string_value(json_object_get(ps, "errorMessage"));
        }
    }
    if (rejected > n)
        rejected = n;
    atomic_fetch_add_explicit(&n_exported, n - rejected, memory_order_relaxed);
    if (rejected)
        atomic_fetch_add_explicit(&n_dropped, rejected, memory_order_relaxed);
    if (rejected || (msg && *msg))
        warn_limited(W_PARTIAL, "trace export: the collector rejected %" PRIu64 " of %zu spans: %s",
                     rejected, n, msg && *msg ? msg : "(no message)");
    json_decref(j);
}

/* OTEL_EXPORTER_OTLP_COMPRESSION=gzip: the n pieces of a body into x->gz, one gzip member.
 * Level 1: spans are repetitive (the same keys, ids of one alphabet), so it takes most of what
 * a higher level would, at a fraction of the CPU. false: no memory. */
static bool gzip_body(exporter *x, const struct iovec *v, int n)
{
    if (!x->zs_ready) {
        memset(&x->zs, 0, sizeof x->zs);
        if (deflateInit2(&x->zs, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            return false;
        x->zs_ready = true;
    } else if (deflateReset(&x->zs) != Z_OK) {
        return false;
    }
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += v[i].iov_len;
    tb_buf_reset(&x->gz);
    if (tb_buf_reserve(&x->gz, deflateBound(&x->zs, total)))
        return false;
    x->zs.next_out = (Bytef *)x->gz.data;
    x->zs.avail_out = (uInt)x->gz.cap;
    for (int i = 0; i < n; i++) {
        x->zs.next_in = (Bytef *)v[i].iov_base;
        x->zs.avail_in = (uInt)v[i].iov_len;
        if (deflate(&x->zs, i + 1 == n ? Z_FINISH : Z_NO_FLUSH) == Z_STREAM_ERROR)
            return false;
    }
    if (n == 0 && deflate(&x->zs, Z_FINISH) == Z_STREAM_ERROR)
        return false;
    if (x->zs.avail_in) /* deflateBound said it fits */
        return false;
    x->gz.len = x->gz.cap - x->zs.avail_out;
    return true;
}

/* libcurl's request: the body's pieces joined (libcurl takes one buffer; a compressed body is
 * one piece already), the handle made. false: the n spans are dropped. */
static bool prepare_curl(exporter *x, size_t n)
{
    tb_buf_reset(&x->body);
    if (x->n_iov == 1) {
        x->send = x->iov[0].iov_base;
        x->send_len = x->iov[0].iov_len;
    } else {
        for (int i = 0; i < x->n_iov; i++)
            tb_buf_append(&x->body, x->iov[i].iov_base, x->iov[i].iov_len);
        x->send = x->body.data;
        x->send_len = x->body.len;
    }
    if (x->body.oom || (!x->curl && !(x->curl = make_curl(x)))) {
        atomic_fetch_add_explicit(&n_dropped, n, memory_order_relaxed);
        warn_limited(W_OOM, "trace export: %zu spans dropped (%s)", n,
                     x->curl ? "no memory for the request" : "no curl handle");
        return false;
    }
    return true;
}

static void export_batch(exporter *x, enc_span **spans, size_t n)
{
    /* the body as pieces where they lie: sent as they are, or compressed, or joined for
     * libcurl */
    size_t body_len = x->iov ? make_iov(x, spans, n) : 0;
    if (!x->iov || x->head.oom || x->pb_res.oom || x->pb_scope.oom) {
        atomic_fetch_add_explicit(&n_dropped, n, memory_order_relaxed);
        warn_limited(W_OOM, "trace export: %zu spans dropped (no memory for the request)", n);
        tb_buf_reset(&x->head);
        tb_buf_reset(&x->pb_res);
        tb_buf_reset(&x->pb_scope);
        return;
    }
    if (cfg.gzip) {
        if (!gzip_body(x, x->iov, x->n_iov)) {
            atomic_fetch_add_explicit(&n_dropped, n, memory_order_relaxed);
            warn_limited(W_OOM, "trace export: %zu spans dropped (no memory to compress them)", n);
            return;
        }
        x->iov[0] = (struct iovec){x->gz.data, x->gz.len};
        x->n_iov = 1;
        body_len = x->gz.len;
    }
    if (!x->direct && !prepare_curl(x, n))
        return;
    /* Content-Type, no "Expect: 100-continue" (a wasted round trip), the encoding, then the
     * user's. */
    struct curl_slist ct[3] = {{cfg.protobuf ? (char *)"Content-Type: application/x-protobuf"
                                             : (char *)"Content-Type: application/json",
                                &ct[1]},
                               {(char *)"Expect:", cfg.gzip ? &ct[2] : cfg.headers},
                               {(char *)"Content-Encoding: gzip", cfg.headers}};

    uint64_t t0 = tb__mono_ns();
    uint64_t deadline = cfg.timeout_ms ? t0 + (uint64_t)cfg.timeout_ms * 1000000u : UINT64_MAX;
    long status = 0;
    CURLcode cc = CURLE_OK;
    int tries = 0;
    for (;;) {
        uint64_t now = tb__mono_ns();
        /* signed: a pause that overshot the deadline must not wrap into "no timeout" */
        long left = deadline == UINT64_MAX ? 0
                    : now >= deadline      ? 1
                                           : (long)((deadline - now) / 1000000u);
        if (deadline != UINT64_MAX && left < 1)
            left = 1;
        bool aborted = false;
        if (x->direct) {
            status = post_direct(x, body_len, deadline, &aborted);
            if (status >= 300 && status < 400 && x->h1.location) {
                /* a redirect: libcurl follows it, for this batch and the ones after */
                tb_log_info(NULL,
                            "trace export: %s answered %ld with a Location: following it with "
                            "libcurl from now on",
                            cfg.url, status);
                x->direct = false;
                tb__h1_close(&x->h1);
                if (!prepare_curl(x, n))
                    return;
                continue;
            }
        } else {
            status = post_curl(x, ct, left, &cc);
            aborted = cc == CURLE_ABORTED_BY_CALLBACK;
        }
        tries++;
        if (status >= 200 && status < 300) {
            on_success(x, n);
            return;
        }
        atomic_fetch_add_explicit(&n_failures, 1, memory_order_relaxed);
        if (aborted)
            break; /* shutting down */
        bool retry =
            status == 0 || status == 429 || status == 502 || status == 503 || status == 504;
        if (!retry) {
            size_t rl = x->resp.len;
            tb_buf_putc(&x->resp, '\0');
            const char *why = x->resp.len ? x->resp.data : "";
            char pb_msg[256];
            const uint8_t *m;
            size_t m_len;
            /* a protobuf answer is a google.rpc.Status: its message is field 2 */
            if (cfg.protobuf && rl && x->resp.data[0] != '{' &&
                pb_find((const uint8_t *)x->resp.data, rl, 2, NULL, &m, &m_len)) {
                snprintf(pb_msg, sizeof pb_msg, "%.*s", (int)(m_len < 255 ? m_len : 255),
                         (const char *)m);
                why = pb_msg;
            }
            warn_limited(W_REJECTED, "trace export: %s answered %ld, %zu spans dropped: %.200s",
                         cfg.url, status, n, why);
            atomic_fetch_add_explicit(&n_dropped, n, memory_order_relaxed);
            return;
        }
        if (tries >= TB__TRIES)
            break;
        long wait;
        if (x->retry_after_ms >= 0) {
            wait = x->retry_after_ms;
        } else {
            long base = TB__BACKOFF_MS << (tries - 1);
            if (base > TB__BACKOFF_MAX_MS)
                base = TB__BACKOFF_MAX_MS;
            wait = base / 2 + (long)(rng_next(x) % (uint64_t)(base / 2 + 1));
        }
        if (deadline != UINT64_MAX && tb__mono_ns() + (uint64_t)wait * 1000000u >= deadline)
            break;
        if (pause_ms(wait))
            break;
    }
    atomic_fetch_add_explicit(&n_dropped, n, memory_order_relaxed);
    if (status)
        warn_limited(W_DOWN, "trace export: %s answered %ld after %d tries, %zu spans dropped",
                     cfg.url, status, tries, n);
    else
        warn_limited(W_DOWN, /* down, refusing, or too slow: the reason says which */
                     "trace export: %s gave no answer in %d tries (%s), %zu spans dropped",
                     cfg.url, tries, x->errbuf[0] ? x->errbuf : curl_easy_strerror(cc), n);
}

static void *exporter_main(void *arg)
{
    exporter x = {.head = TB_BUF_INIT,
                  .body = TB_BUF_INIT,
                  .resp = TB_BUF_INIT,
                  .pb_res = TB_BUF_INIT,
                  .pb_scope = TB_BUF_INIT,
                  .req_head = TB_BUF_INIT,
                  .gz = TB_BUF_INIT,
                  .batch = arg};
    pthread_setname_np(pthread_self(), "tb-otlp");
    x.rng = tb__mono_ns() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15ull;
    uint64_t delay = (uint64_t)cfg.delay_ms * 1000000u;
    /* a body's pieces (a JSON one has at most 2n + 2); the built-in client for http:// */
    x.iov = malloc((2 * cfg.batch_max + 8) * sizeof *x.iov);
    x.direct = !cfg.libcurl && tb__h1_init(&x.h1, cfg.url);
    if (x.direct)
        make_req_head(&x);
    else
        x.h1.fd = -1;

    pthread_mutex_lock(&q.mu);
    uint64_t t0 = tb__mono_ns(); /* the schedule delay runs from here */
    for (;;) {
        size_t nrings;
        for (;;) {
            if (q.stopping)
                goto out;
            rings_reap();
            uint64_t len = 0, most = 0;
            bool reached = true; /* every ring's head at its flush mark */
            nrings = 0;
            for (tring *r = atomic_load(&q.rings); r; r = r->next) {
                uint64_t l = ring_len(r);
                len += l;
                most = l > most ? l : most;
                reached = reached && atomic_load_explicit(&r->head, memory_order_relaxed) >= r->mark;
                nrings++;
            }
            /* a ring's share of a batch: the exporter takes one when a ring holds its share
             * (what a ring's thread can see) or all of them hold a batch */
            uint64_t share = (cfg.batch_max + nrings - 1) / (nrings ? nrings : 1);
            bool flushing = q.flush_done < q.flush_req;
            if (flushing && reached) {
                q.flush_done = q.flush_req;
                pthread_cond_broadcast(&q.idle);
                flushing = false;
            }
            if (len >= cfg.batch_max || most >= share || (len && flushing) ||
                (len && tb__mono_ns() >= t0 + delay))
                break;
            /* Sleep until a span arrives (empty), or a ring holds its share of a batch, or the
             * delay passes: never longer, since a span's thread can miss, rarely, that we went
             * to sleep (see "the queues"). */
            uint64_t want = len ? share : 1;
            q.asleep = true;
            atomic_store_explicit(&q.wake_at, want, memory_order_seq_cst);
            bool ready = false;
            for (tring *r = atomic_load(&q.rings); r && !ready; r = r->next)
                ready = ring_len(r) >= want;
            if (!ready) {
                uint64_t idle = delay > 1000000000u ? delay : 1000000000u; /* empty: >= 1 s */
                struct timespec ts = ts_of(len ? t0 + delay : tb__mono_ns() + idle);
                pthread_cond_timedwait(&q.wake, &q.mu, &ts);
            }
            q.asleep = false;
            atomic_store_explicit(&q.wake_at, UINT64_MAX, memory_order_relaxed);
            if (!len)
                t0 = tb__mono_ns();
        }
        pthread_mutex_unlock(&q.mu);
        /* A share of the batch from each ring first, then the rest from whichever has more:
         * a busy thread cannot keep a quiet one's spans waiting. */
        size_t n = 0;
        uint64_t share = (cfg.batch_max + nrings - 1) / (nrings ? nrings : 1);
        for (int pass = 0; pass < 2; pass++) {
            for (tring *r = atomic_load_explicit(&q.rings, memory_order_acquire);
                 r && n < cfg.batch_max; r = r->next) {
                uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed); /* ours */
                uint64_t k = ring_tail(r) - head;
                if (k > cfg.batch_max - n)
                    k = cfg.batch_max - n;
                if (pass == 0 && k > share)
                    k = share;
                for (uint64_t i = 0; i < k; i++)
                    x.batch[n++] = r->slot[(head + i) % cfg.queue_max];
                atomic_store_explicit(&r->head, head + k, memory_order_release);
            }
        }
        if (n) {
            export_batch(&x, x.batch, n);
            for (size_t i = 0; i < n; i++)
                enc_free(x.batch[i]);
        }
        pthread_mutex_lock(&q.mu);
        if (n)
            t0 = tb__mono_ns();
    }
out:
    pthread_mutex_unlock(&q.mu);
    if (x.curl)
        curl_easy_cleanup(x.curl);
    tb__h1_free(&x.h1);
    free(x.iov);
    tb_buf_deinit(&x.req_head);
    tb_buf_deinit(&x.gz);
    if (x.zs_ready)
        deflateEnd(&x.zs);
    tb_buf_deinit(&x.head);
    tb_buf_deinit(&x.body);
    tb_buf_deinit(&x.resp);
    tb_buf_deinit(&x.pb_res);
    tb_buf_deinit(&x.pb_scope);
    free(x.batch);
    return NULL;
}
