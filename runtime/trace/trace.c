/*
 * tablium: spans (runtime/include/tablium/trace.h): start, attributes, end, the sampler.
 *
 * A span is one malloc'd block (a freed one is kept per thread for the next start, so a request's
 * server span costs no allocation once warm). Strings the span owns (attribute values, status
 * and event messages) go into its inline area, then into a heap spill. Ended sampled spans go to
 * the exporter (otlp.c); the rest are freed at once.
 */
#include "internal.h"
#include "tb_span_put.h"

#include "tablium/ctx.h"
#include "tablium/log.h"
#include "tablium/metrics.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* spans of exited threads and of threads without a cache (see span_cache) */
static _Atomic uint64_t gone_started, gone_sampled;

/* ---- configuration: OTEL_SDK_DISABLED, OTEL_TRACES_SAMPLER(_ARG) ---- */

enum sampler { S_ALWAYS_ON, S_ALWAYS_OFF, S_RATIO };

static struct {
    bool disabled;
    bool parent_based;
    enum sampler root;
    double ratio;
    uint64_t bound; /* a trace id whose low 8 bytes (big endian) are below it is sampled */
} cfg;
static pthread_once_t cfg_once = PTHREAD_ONCE_INIT;

static bool env_true(const char *name)
{
    const char *v = getenv(name);
    return v && strcasecmp(v, "true") == 0;
}

static void register_metrics(void);

static void read_config(void)
{
    register_metrics();
    cfg.disabled = env_true("OTEL_SDK_DISABLED");
    cfg.parent_based = true;
    cfg.root = S_ALWAYS_ON;
    cfg.ratio = 1.0;
    const char *s = getenv("OTEL_TRACES_SAMPLER");
    if (s && *s) {
        static const struct {
            const char *name;
            bool parent;
            enum sampler root;
        } names[] = {
            {"always_on", false, S_ALWAYS_ON},
            {"always_off", false, S_ALWAYS_OFF},
            {"traceidratio", false, S_RATIO},
            {"parentbased_always_on", true, S_ALWAYS_ON},
            {"parentbased_always_off", true, S_ALWAYS_OFF},
            {"parentbased_traceidratio", true, S_RATIO},
        };
        size_t i;
        for (i = 0; i < sizeof names / sizeof names[0]; i++)
            if (strcasecmp(s, names[i].name) == 0)
                break;
        if (i < sizeof names / sizeof names[0]) {
            cfg.parent_based = names[i].parent;
            cfg.root = names[i].root;
        } else {
            tb_log_warn(NULL, "OTEL_TRACES_SAMPLER=%s is not a sampler this SDK knows "
                              "(always_on, always_off, traceidratio, parentbased_*): using "
                              "parentbased_always_on", s);
        }
    }
    if (cfg.root == S_RATIO) {
        const char *a = getenv("OTEL_TRACES_SAMPLER_ARG");
        if (a && *a) {
            char *end;
            double r = strtod(a, &end);
            if (end == a || *end || !(r >= 0.0 && r <= 1.0))
                tb_log_warn(NULL, "OTEL_TRACES_SAMPLER_ARG=%s is not a ratio in [0, 1]: using 1.0",
                            a);
            else
                cfg.ratio = r;
        }
        /* The OpenTelemetry rule: sampled when the trace id's low 8 bytes (as an unsigned
         * number) are below ratio * 2^64; the boundaries exact. */
        if (cfg.ratio >= 1.0)
            cfg.bound = UINT64_MAX;
        else
            cfg.bound = (uint64_t)ldexp(cfg.ratio, 64);
    }
}

/* The exporter's counters on /metrics (tablium/metrics.h), read at scrape. */
static double stat_of(void *user)
{
    tb_trace_stats st;
    tb_trace_stats_get(&st);
    switch ((int)(intptr_t)user) {
    case 0: return (double)st.spans_exported;
    case 1: return (double)st.spans_dropped;
    case 2: return (double)st.export_failures;
    default: return (double)st.queue_len;
    }
}

static void register_metrics(void)
{
    tb_metrics_fn(NULL, TB_METRIC_COUNTER, "tablium_trace_spans_exported_total",
                  "Spans the OTLP collector acknowledged.", stat_of, (void *)(intptr_t)0);
    tb_metrics_fn(NULL, TB_METRIC_COUNTER, "tablium_trace_spans_dropped_total",
                  "Sampled spans never exported: the queue was full, or the collector refused "
                  "them or stayed unreachable through the retries.",
                  stat_of, (void *)(intptr_t)1);
    tb_metrics_fn(NULL, TB_METRIC_COUNTER, "tablium_trace_export_failures_total",
                  "OTLP export requests that failed (each retry counts).", stat_of,
                  (void *)(intptr_t)2);
    tb_metrics_fn(NULL, TB_METRIC_GAUGE, "tablium_trace_queue_spans",
                  "Ended spans waiting for export.", stat_of, (void *)(intptr_t)3);
}

bool tb__trace_disabled(void)
{
    pthread_once(&cfg_once, read_config);
    return cfg.disabled;
}

static bool sample_root(const uint8_t trace_id[16])
{
    switch (cfg.root) {
    case S_ALWAYS_ON:
        return true;
    case S_ALWAYS_OFF:
        return false;
    case S_RATIO: {
        if (cfg.bound == UINT64_MAX)
            return true;
        uint64_t x = 0;
        for (int i = 8; i < 16; i++)
            x = (x << 8) | trace_id[i];
        return x < cfg.bound;
    }
    }
    return false;
}

/* ---- time ---- */

uint64_t tb_unix_nano(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- allocation ---- */

static tb_span noop_span; /* handed out when malloc fails: records nothing */

/* Free spans: a small cache per thread, refilled from and spilled to a shared pool a batch at a
 * time. The exporter frees the sampled spans on its own thread; through the pool they come back
 * to the request threads for one lock per CACHE spans instead of a malloc and free each. */
#define CACHE 16
#define POOL_MAX 1024
static struct {
    pthread_mutex_t mu;
    tb_span *v[POOL_MAX];
    size_t n;
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* A thread's spans: its free cache and its counts of spans started and sampled. The counts are
 * written only by their thread (a plain load and store: a shared atomic add on every span had
 * the request threads fight over one cache line) and summed by tb__trace_counts; a thread that
 * exits adds its counts to gone_started/_sampled, which also count the spans of a thread
 * without a cache. */
typedef struct span_cache {
    tb_span *v[CACHE];
    size_t n;
    _Atomic uint64_t started, sampled;
    struct span_cache *prev, *next; /* in `threads` while registered */
    bool registered;
    bool exited; /* its destructor ran: no cache from now on */
} span_cache;
static __thread span_cache cache;
static pthread_key_t cache_key; /* its destructor frees a thread's cache when the thread exits */
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static bool cache_key_ok;
static struct {
    pthread_mutex_t mu;
    span_cache *head;
} threads = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void cache_free(void *p)
{
    span_cache *c = p;
    for (size_t i = 0; i < c->n; i++)
        free(c->v[i]);
    c->n = 0;
    pthread_mutex_lock(&threads.mu);
    atomic_fetch_add_explicit(&gone_started, atomic_load(&c->started), memory_order_relaxed);
    atomic_fetch_add_explicit(&gone_sampled, atomic_load(&c->sampled), memory_order_relaxed);
    atomic_store(&c->started, 0);
    atomic_store(&c->sampled, 0);
    if (c->prev)
        c->prev->next = c->next;
    else
        threads.head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    c->registered = false;
    c->exited = true;
    pthread_mutex_unlock(&threads.mu);
}

static void threads_before_fork(void)
{
    pthread_mutex_lock(&threads.mu);
}

static void threads_after_fork_parent(void)
{
    pthread_mutex_unlock(&threads.mu);
}

static void pool_after_fork(void)
{
    pthread_mutex_init(&pool.mu, NULL); /* a thread of the parent may have held it */
    /* The other threads are gone and their storage may be reused for new threads: keep their
     * counts, drop them from the list. */
    for (span_cache *c = threads.head; c; c = c->next) {
        if (c == &cache)
            continue;
        atomic_fetch_add_explicit(&gone_started, atomic_load(&c->started),
                                  memory_order_relaxed);
        atomic_fetch_add_explicit(&gone_sampled, atomic_load(&c->sampled),
                                  memory_order_relaxed);
    }
    threads.head = cache.registered ? &cache : NULL;
    cache.prev = cache.next = NULL;
    pthread_mutex_init(&threads.mu, NULL);
}

static void cache_key_init(void)
{
    cache_key_ok = pthread_key_create(&cache_key, cache_free) == 0;
    pthread_atfork(threads_before_fork, threads_after_fork_parent, pool_after_fork);
}

static span_cache *cache_register(void)
{
    pthread_once(&cache_once, cache_key_init);
    if (!cache_key_ok || cache.exited || pthread_setspecific(cache_key, &cache) != 0)
        return NULL;
    pthread_mutex_lock(&threads.mu);
    cache.prev = NULL;
    cache.next = threads.head;
    if (threads.head)
        threads.head->prev = &cache;
    threads.head = &cache;
    cache.registered = true;
    pthread_mutex_unlock(&threads.mu);
    return &cache;
}

/* The calling thread's cache, registered for its exit; NULL when that cannot be done. */
static inline span_cache *my_cache(void)
{
    return cache.registered ? &cache : cache_register();
}

/* One more in a counter of the calling thread (c: its cache, or NULL for the shared one). */
static inline void count(span_cache *c, _Atomic uint64_t *mine, _Atomic uint64_t *shared)
{
    if (c)
        atomic_store_explicit(mine, atomic_load_explicit(mine, memory_order_relaxed) + 1,
                              memory_order_relaxed);
    else
        atomic_fetch_add_explicit(shared, 1, memory_order_relaxed);
}

void tb__trace_counts(uint64_t *started, uint64_t *sampled)
{
    pthread_mutex_lock(&threads.mu);
    uint64_t st = atomic_load_explicit(&gone_started, memory_order_relaxed);
    uint64_t sa = atomic_load_explicit(&gone_sampled, memory_order_relaxed);
    for (const span_cache *c = threads.head; c; c = c->next) {
        st += atomic_load_explicit(&c->started, memory_order_relaxed);
        sa += atomic_load_explicit(&c->sampled, memory_order_relaxed);
    }
    pthread_mutex_unlock(&threads.mu);
    *started = st;
    *sampled = sa;
}

static tb_span *span_alloc(span_cache *c)
{
    tb_span *s = NULL;
    if (c && c->n == 0) {
        pthread_mutex_lock(&pool.mu);
        while (c->n < CACHE / 2 && pool.n)
            c->v[c->n++] = pool.v[--pool.n];
        pthread_mutex_unlock(&pool.mu);
    }
    if (c && c->n)
        s = c->v[--c->n];
    else if (!(s = malloc(sizeof *s)))
        return NULL;
    /* The scalars only: the attribute, event and link arrays are read only below their
     * counts, and every entry is written before its count covers it. */
    memset(&s->sc, 0, sizeof s->sc);
    memset(s->parent_span_id, 0, sizeof s->parent_span_id);
    s->has_parent = false;
    s->sampled = false;
    s->kind = 0;
    s->name[0] = '\0';
    s->start_unix_nano = s->end_unix_nano = 0;
    s->status = TB_STATUS_UNSET;
    s->status_message = NULL;
    s->n_attrs = s->dropped_attrs = s->n_events = s->n_links = 0;
    s->tracestate[0] = '\0';
    s->strings_used = 0;
    s->spill = NULL;
    s->spill_used = s->spill_cap = 0;
    return s;
}

void tb__span_free(tb_span *s)
{
    if (!s || s == &noop_span)
        return;
    free(s->spill);
    s->spill = NULL;
    span_cache *c = my_cache();
    if (!c) {
        free(s);
        return;
    }
    if (c->n == CACHE) { /* half of the cache goes to the pool, in one lock */
        tb_span *out[CACHE / 2];
        size_t k = 0;
        pthread_mutex_lock(&pool.mu);
        while (c->n > CACHE / 2) {
            tb_span *x = c->v[--c->n];
            if (pool.n < POOL_MAX)
                pool.v[pool.n++] = x;
            else
                out[k++] = x;
        }
        pthread_mutex_unlock(&pool.mu);
        while (k)
            free(out[--k]);
    }
    c->v[c->n++] = s;
}

/* Keeps a copy of v[0..n) in the span; NULL when it cannot. Past the inline area strings go to
 * one heap block sized at first need (4 KiB, or the string); it never moves (earlier strings
 * point into it), so a string that fits nowhere is dropped. */
static const char *span_strdup(tb_span *s, const char *v, size_t n)
{
    if (n + 1 <= sizeof s->strings - s->strings_used) {
        char *p = s->strings + s->strings_used;
        memcpy(p, v, n);
        p[n] = '\0';
        s->strings_used += n + 1;
        return p;
    }
    if (!s->spill) {
        size_t cap = n + 1 > 4096 ? n + 1 : 4096;
        if (!(s->spill = malloc(cap)))
            return NULL;
        s->spill_cap = cap;
    }
    if (n + 1 > s->spill_cap - s->spill_used)
        return NULL;
    char *p = s->spill + s->spill_used;
    memcpy(p, v, n);
    p[n] = '\0';
    s->spill_used += n + 1;
    return p;
}

/* ---- start / end ---- */

static void set_name(tb_span *s, const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n >= sizeof s->name)
        n = sizeof s->name - 1;
    memcpy(s->name, name ? name : "", n);
    s->name[n] = '\0';
}

/* Whether sampled spans are recorded at all: not when nothing would export them (no endpoint),
 * which saves the attributes, names and clock reads of every request. Decided after
 * read_config (otlp's configuration reads tb__trace_disabled). */
static pthread_once_t rec_once = PTHREAD_ONCE_INIT;
static bool recording;

static void read_recording(void)
{
    recording = tb__otlp_enabled();
}

tb_span *tb_span_start_with(const char *name, tb_span_kind kind, const tb_span_context *parent,
                            const char *tracestate)
{
    pthread_once(&cfg_once, read_config);
    pthread_once(&rec_once, read_recording);
    span_cache *c = my_cache();
    tb_span *s = span_alloc(c);
    if (!s)
        return &noop_span;
    count(c, c ? &c->started : NULL, &gone_started);
    bool remote_ok = parent && tb_span_context_valid(parent);
    if (remote_ok) {
        memcpy(s->sc.trace_id, parent->trace_id, 16);
        memcpy(s->parent_span_id, parent->span_id, 8);
        s->has_parent = true;
        s->sc.flags = parent->flags & TB_TRACE_FLAG_RANDOM;
        if (tracestate && *tracestate) {
            size_t n = strlen(tracestate);
            if (n <= TB_TRACESTATE_MAX) {
                memcpy(s->tracestate, tracestate, n + 1);
            }
        }
    } else {
        tb_trace_id_new(s->sc.trace_id);
        s->sc.flags = TB_TRACE_FLAG_RANDOM;
    }
    tb_span_id_new(s->sc.span_id);

    bool sampled;
    if (cfg.disabled)
        sampled = false;
    else if (cfg.parent_based && remote_ok)
        sampled = (parent->flags & TB_TRACE_FLAG_SAMPLED) != 0;
    else
        sampled = sample_root(s->sc.trace_id);
    /* Disabled: record nothing, but pass the caller's decision on unchanged. */
    bool flag = cfg.disabled ? remote_ok && (parent->flags & TB_TRACE_FLAG_SAMPLED) : sampled;
    if (flag)
        s->sc.flags |= TB_TRACE_FLAG_SAMPLED;
    s->sampled = sampled && recording; /* the flag travels on either way */
    s->kind = kind;
    if (sampled) {
        set_name(s, name);
        s->start_unix_nano = tb_unix_nano();
    }
    return s;
}

tb_span *tb_span_start(const tb_ctx *ctx, const char *name, tb_span_kind kind)
{
    const tb_span *cur = ctx ? ctx->span : NULL;
    if (cur && cur != &noop_span)
        return tb_span_start_with(name, kind, &cur->sc, cur->tracestate);
    return tb_span_start_with(name, kind, NULL, NULL);
}

void tb_span_end(tb_span *s)
{
    if (!s || s == &noop_span)
        return;
    if (!s->sampled) {
        tb__span_free(s);
        return;
    }
    s->end_unix_nano = tb_unix_nano();
    span_cache *c = my_cache();
    count(c, c ? &c->sampled : NULL, &gone_sampled);
    tb__otlp_enqueue(s);
    tb__span_free(s);
}

/* ---- recording ---- */

/* Keys are mostly the same static strings: the pointer first, then the text. */
static inline bool same_key(const char *k, const char *key)
{
    return k == key || (k[0] == key[0] && strcmp(k, key) == 0);
}

static tb_span_attr *attr_slot(tb_span *s, const char *key)
{
    if (!s || s == &noop_span || !s->sampled || !key)
        return NULL;
    for (size_t i = 0; i < s->n_attrs; i++) {
        if (same_key(s->attrs[i].key, key))
            return &s->attrs[i]; /* a key set twice keeps the last value */
    }
    if (s->n_attrs == TB_SPAN_MAX_ATTRS) {
        s->dropped_attrs++;
        return NULL;
    }
    tb_span_attr *a = &s->attrs[s->n_attrs++];
    a->key = key;
    return a;
}

void tb__span_put(tb_span *s, const tb_span_attr *attrs, size_t n)
{
    if (!s || s == &noop_span || !s->sampled)
        return;
    size_t before = s->n_attrs; /* only these can share a key with attrs */
    for (size_t j = 0; j < n; j++) {
        const char *key = attrs[j].key;
        tb_span_attr *a = NULL;
        for (size_t i = 0; i < before && !a; i++)
            if (same_key(s->attrs[i].key, key))
                a = &s->attrs[i];
        if (!a) {
            if (s->n_attrs == TB_SPAN_MAX_ATTRS) {
                s->dropped_attrs++;
                continue;
            }
            a = &s->attrs[s->n_attrs++];
        }
        *a = attrs[j];
    }
}

void tb_span_set_strn(tb_span *s, const char *key, const char *v, size_t n)
{
    size_t before = s ? s->n_attrs : 0;
    if (!v)
        n = 0;
    if (n > UINT32_MAX) { /* far beyond any collector's limit: not recorded */
        if (s && s != &noop_span && s->sampled)
            s->dropped_attrs++;
        return;
    }
    tb_span_attr *a = attr_slot(s, key);
    if (!a)
        return;
    const char *copy = span_strdup(s, v ? v : "", n);
    if (!copy) { /* no room for the value: the attribute keeps its old value or is dropped */
        if (s->n_attrs > before)
            s->n_attrs--;
        s->dropped_attrs++;
        return;
    }
    a->type = TB_ATTR_STRING;
    a->len = (uint32_t)n;
    a->v.s = copy;
}

void tb_span_set_str(tb_span *s, const char *key, const char *v)
{
    tb_span_set_strn(s, key, v, v ? strlen(v) : 0);
}

void tb_span_set_int(tb_span *s, const char *key, int64_t v)
{
    tb_span_attr *a = attr_slot(s, key);
    if (a) {
        a->type = TB_ATTR_INT;
        a->v.i = v;
    }
}

void tb_span_set_double(tb_span *s, const char *key, double v)
{
    tb_span_attr *a = attr_slot(s, key);
    if (a) {
        a->type = TB_ATTR_DOUBLE;
        a->v.d = v;
    }
}

void tb_span_set_bool(tb_span *s, const char *key, bool v)
{
    tb_span_attr *a = attr_slot(s, key);
    if (a) {
        a->type = TB_ATTR_BOOL;
        a->v.b = v;
    }
}

void tb_span_set_name(tb_span *s, const char *name)
{
    if (s && s != &noop_span && s->sampled)
        set_name(s, name);
}

void tb_span_set_status(tb_span *s, tb_span_status st, const char *message)
{
    if (!s || s == &noop_span || !s->sampled)
        return;
    if (s->status == TB_STATUS_OK && st != TB_STATUS_OK)
        return; /* OpenTelemetry: once Ok, a span's status is final */
    s->status = st;
    s->status_message =
        st == TB_STATUS_ERROR && message ? span_strdup(s, message, strlen(message)) : NULL;
}

void tb_span_record_error(tb_span *s, const char *type, const char *message)
{
    if (!s || s == &noop_span || !s->sampled || s->n_events == TB_SPAN_MAX_EVENTS)
        return;
    tb_span_event *e = &s->events[s->n_events++];
    e->name = "exception";
    e->time_unix_nano = tb_unix_nano();
    e->type = type ? span_strdup(s, type, strlen(type)) : NULL;
    e->message = message ? span_strdup(s, message, strlen(message)) : NULL;
}

void tb_span_add_link(tb_span *s, const tb_span_context *linked)
{
    if (!s || s == &noop_span || !s->sampled || !linked || !tb_span_context_valid(linked) ||
        s->n_links == TB_SPAN_MAX_LINKS)
        return;
    s->links[s->n_links++] = *linked;
}
