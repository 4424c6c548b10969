#include "tablium/metrics.h"

#include "tablium/error.h"

#include <dirent.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>

#define MAX_SERIES_LIMIT 100000
#define OVERFLOW_VALUE "other"

/* Counters and histograms are striped: each thread adds to its own stripe of cells (a cache
 * line or more apart), a read sums the stripes. Two server threads adding to one shared
 * counter took 330 ns a request each, bouncing its cache line; 28 ns alone. */
#define STRIPES 8
#define LINE_WORDS 8 /* 64-byte cache lines */

struct tb_metric {
    /* gauge: a double's bits (counters and histograms: cells) */
    _Atomic uint64_t v;
    /* counter: cells[s * stride] the count of stripe s; histogram: cells[s * stride + i] the
     * count of bucket i (n_bounds + 1, the last is +Inf, not cumulative), then the sum's bits */
    _Atomic uint64_t *cells;
    uint32_t stride;
    uint8_t type;
    bool hidden; /* collect function removed: left out of the output (reg->mu) */
    uint32_t key_len;
    uint64_t hash;
    tb_metric_family *fam;
    tb_metric_fn fn; /* reg->mu */
    void *user;
    char *key; /* the label values, each NUL-terminated, back to back */
};

struct tb_metric_family {
    tb_metrics_registry *reg;
    char *name;
    char *help;
    tb_metric_type type;
    size_t n_labels;
    char *labels[TB_METRICS_MAX_LABELS];
    size_t n_bounds;
    double bounds[TB_METRICS_MAX_BUCKETS];
    size_t max_series;
    pthread_mutex_t mu; /* creating series */
    size_t n_series;    /* mu */
    size_t mask;        /* table size - 1; the table never gets more than half full */
    _Atomic(tb_metric *) *table;
    _Atomic(tb_metric *) overflow;
    _Atomic(tb_metric *) overflow_count; /* its series in reg->overflow_fam */
};

struct tb_metrics_registry {
    pthread_mutex_t mu;      /* the family list, collect functions, render */
    tb_metric_family **fams; /* sorted by name */
    size_t n_fams, cap_fams;
    tb_metric_family *overflow_fam;
};

/* ---- helpers ---- */

static bool valid_name(const char *s, bool colon)
{
    if (!s || !*s)
        return false;
    for (size_t i = 0; s[i]; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  (colon && c == ':') || (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 1099511628211ull;
    return h;
}

/* Length of the longest valid UTF-8 sequence at s (0 if invalid), n bytes available. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, min = 0x10000;
    else
        return 0;
    if (n < len)
        return 0;
    unsigned cp = c & (0xff >> (len + 1));
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* Normalizes one label value into out (TB_METRICS_MAX_LABEL_VALUE + 1 bytes): cut at a UTF-8
 * boundary, invalid bytes as '?'. Returns its length. */
static size_t normalize(const char *v, char *out)
{
    const unsigned char *s = (const unsigned char *)v;
    size_t n = strlen(v), o = 0;
    for (size_t i = 0; i < n;) {
        size_t l = utf8_seq(s + i, n - i);
        if (o + (l ? l : 1) > TB_METRICS_MAX_LABEL_VALUE)
            break;
        if (l == 0) {
            out[o++] = '?';
            i++;
        } else {
            memcpy(out + o, s + i, l);
            o += l;
            i += l;
        }
    }
    out[o] = '\0';
    return o;
}

/* The lookup key of `values`: plain ASCII values within the length limit are used as they are
 * (the common case); others are normalized into scratch. */
typedef struct key_view {
    const char *v[TB_METRICS_MAX_LABELS];
    size_t len[TB_METRICS_MAX_LABELS];
    uint64_t hash;
    size_t total; /* bytes of the stored key, NULs included */
} key_view;

static void key_make(const tb_metric_family *f, const char *const *values, key_view *k,
                     char scratch[][TB_METRICS_MAX_LABEL_VALUE + 1])
{
    uint64_t h = 1469598103934665603ull;
    k->total = 0;
    for (size_t i = 0; i < f->n_labels; i++) {
        const char *v = values && values[i] ? values[i] : "";
        size_t n = 0;
        bool plain = true;
        for (; v[n]; n++)
            if ((unsigned char)v[n] >= 0x80 || n >= TB_METRICS_MAX_LABEL_VALUE) {
                plain = false;
                break;
            }
        if (!plain) {
            n = normalize(v, scratch[i]);
            v = scratch[i];
        }
        k->v[i] = v;
        k->len[i] = n;
        h = fnv(h, v, n + 1);
        k->total += n + 1;
    }
    k->hash = h;
}

static bool key_eq(const tb_metric *m, const key_view *k, size_t n_labels)
{
    if (m->hash != k->hash || m->key_len != k->total)
        return false;
    const char *p = m->key;
    for (size_t i = 0; i < n_labels; i++) {
        if (memcmp(p, k->v[i], k->len[i] + 1) != 0)
            return false;
        p += k->len[i] + 1;
    }
    return true;
}

static tb_metric *table_find(tb_metric_family *f, const key_view *k, size_t *slot)
{
    for (size_t i = k->hash & f->mask;; i = (i + 1) & f->mask) {
        tb_metric *m = atomic_load_explicit(&f->table[i], memory_order_acquire);
        if (!m) {
            if (slot)
                *slot = i;
            return NULL;
        }
        if (key_eq(m, k, f->n_labels))
            return m;
    }
}

static tb_metric *series_new(tb_metric_family *f, const key_view *k)
{
    size_t words = f->type == TB_METRIC_HISTOGRAM ? f->n_bounds + 2
                   : f->type == TB_METRIC_COUNTER     ? 1
                                                      : 0;
    tb_metric *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    if (words) {
        m->stride = (uint32_t)((words + LINE_WORDS - 1) / LINE_WORDS * LINE_WORDS);
        size_t bytes = (size_t)STRIPES * m->stride * sizeof *m->cells;
        m->cells = aligned_alloc(LINE_WORDS * sizeof *m->cells, bytes);
        if (!m->cells) {
            free(m);
            return NULL;
        }
        for (size_t i = 0; i < (size_t)STRIPES * m->stride; i++)
            atomic_init(&m->cells[i], 0); /* 0 is also the bits of 0.0 */
    }
    m->key = malloc(k->total ? k->total : 1);
    if (!m->key) {
        free(m->cells);
        free(m);
        return NULL;
    }
    char *p = m->key;
    for (size_t i = 0; i < f->n_labels; i++) {
        memcpy(p, k->v[i], k->len[i] + 1);
        p += k->len[i] + 1;
    }
    m->key_len = (uint32_t)k->total;
    m->hash = k->hash;
    m->type = (uint8_t)f->type;
    m->fam = f;
    atomic_init(&m->v, 0); /* 0 is also the bits of 0.0 */
    return m;
}

static void series_free(tb_metric *m)
{
    if (m) {
        free(m->key);
        free(m->cells);
        free(m);
    }
}

static uint64_t d2u(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static double u2d(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

/* ---- registry ---- */

static tb_metric_family *family_lookup(tb_metrics_registry *reg, const char *name, size_t *pos)
{
    size_t lo = 0, hi = reg->n_fams;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(reg->fams[mid]->name, name);
        if (c == 0)
            return reg->fams[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (pos)
        *pos = lo;
    return NULL;
}

static void family_free(tb_metric_family *f)
{
    if (!f)
        return;
    if (f->table)
        for (size_t i = 0; i <= f->mask; i++)
            series_free(atomic_load_explicit(&f->table[i], memory_order_relaxed));
    free(f->table);
    for (size_t i = 0; i < f->n_labels; i++)
        free(f->labels[i]);
    free(f->name);
    free(f->help);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

static int validate(tb_metric_type type, const tb_metric_opts *o, size_t *n_labels)
{
    if (!o || !valid_name(o->name, true) || type < TB_METRIC_COUNTER || type > TB_METRIC_HISTOGRAM)
        return TB_EINVAL;
    size_t n = 0;
    if (o->labels)
        for (; o->labels[n]; n++) {
            const char *l = o->labels[n];
            if (n >= TB_METRICS_MAX_LABELS || !valid_name(l, false) || strncmp(l, "__", 2) == 0 ||
                (type == TB_METRIC_HISTOGRAM && strcmp(l, "le") == 0))
                return TB_EINVAL;
            for (size_t j = 0; j < n; j++)
                if (strcmp(o->labels[j], l) == 0)
                    return TB_EINVAL;
        }
    if (type == TB_METRIC_HISTOGRAM && o->buckets) {
        if (o->n_buckets == 0 || o->n_buckets > TB_METRICS_MAX_BUCKETS)
            return TB_EINVAL;
        for (size_t i = 0; i < o->n_buckets; i++)
            if (!isfinite(o->buckets[i]) || (i > 0 && !(o->buckets[i] > o->buckets[i - 1])))
                return TB_EINVAL;
    }
    if (o->max_series > MAX_SERIES_LIMIT)
        return TB_EINVAL;
    *n_labels = n;
    return 0;
}

static tb_metric_family *family_new(tb_metrics_registry *reg, tb_metric_type type,
                                    const tb_metric_opts *o, size_t n_labels)
{
    static const double http[] = TB_METRICS_BUCKETS_HTTP;
    tb_metric_family *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    pthread_mutex_init(&f->mu, NULL);
    f->reg = reg;
    f->type = type;
    f->name = strdup(o->name);
    f->help = strdup(o->help ? o->help : "");
    f->n_labels = n_labels;
    bool ok = f->name && f->help;
    for (size_t i = 0; i < n_labels; i++)
        ok = ok && (f->labels[i] = strdup(o->labels[i])) != NULL;
    if (type == TB_METRIC_HISTOGRAM) {
        const double *b = o->buckets ? o->buckets : http;
        f->n_bounds = o->buckets ? o->n_buckets : sizeof http / sizeof http[0];
        memcpy(f->bounds, b, f->n_bounds * sizeof b[0]);
    }
    f->max_series = o->max_series ? o->max_series : TB_METRICS_MAX_SERIES;
    size_t cap = 16;
    while (cap < 2 * (f->max_series + 1))
        cap *= 2;
    f->mask = cap - 1;
    f->table = calloc(cap, sizeof f->table[0]);
    ok = ok && f->table;
    if (!ok) {
        family_free(f);
        return NULL;
    }
    for (size_t i = 0; i < cap; i++)
        atomic_init(&f->table[i], NULL);
    atomic_init(&f->overflow, NULL);
    atomic_init(&f->overflow_count, NULL);
    return f;
}

static int registry_add(tb_metrics_registry *reg, tb_metric_family *f, size_t pos)
{
    if (reg->n_fams == reg->cap_fams) {
        size_t cap = reg->cap_fams ? 2 * reg->cap_fams : 16;
        tb_metric_family **p = realloc(reg->fams, cap * sizeof *p);
        if (!p)
            return TB_ENOMEM;
        reg->fams = p;
        reg->cap_fams = cap;
    }
    memmove(reg->fams + pos + 1, reg->fams + pos, (reg->n_fams - pos) * sizeof *reg->fams);
    reg->fams[pos] = f;
    reg->n_fams++;
    return 0;
}

tb_metrics_registry *tb_metrics_registry_new(void)
{
    tb_metrics_registry *reg = calloc(1, sizeof *reg);
    if (!reg)
        return NULL;
    pthread_mutex_init(&reg->mu, NULL);
    static const char *const labels[] = {"family", NULL};
    tb_metric_opts o = {.name = "tablium_metrics_overflow_total",
                        .help = "Lookups of a full metric family that went to its overflow "
                                "series (label values \"other\").",
                        .labels = labels};
    reg->overflow_fam = family_new(reg, TB_METRIC_COUNTER, &o, 1);
    if (!reg->overflow_fam || registry_add(reg, reg->overflow_fam, 0) != 0) {
        family_free(reg->overflow_fam);
        pthread_mutex_destroy(&reg->mu);
        free(reg);
        return NULL;
    }
    return reg;
}

void tb_metrics_registry_free(tb_metrics_registry *reg)
{
    if (!reg)
        return;
    for (size_t i = 0; i < reg->n_fams; i++)
        family_free(reg->fams[i]);
    free(reg->fams);
    pthread_mutex_destroy(&reg->mu);
    free(reg);
}

static pthread_mutex_t default_mu = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(tb_metrics_registry *) default_reg;

static tb_metrics_registry *reg_or_default(tb_metrics_registry *reg)
{
    if (reg)
        return reg;
    reg = atomic_load_explicit(&default_reg, memory_order_acquire);
    if (reg)
        return reg;
    pthread_mutex_lock(&default_mu);
    reg = atomic_load_explicit(&default_reg, memory_order_relaxed);
    if (!reg) {
        reg = tb_metrics_registry_new();
        atomic_store_explicit(&default_reg, reg, memory_order_release);
    }
    pthread_mutex_unlock(&default_mu);
    return reg;
}

tb_metric_family *tb_metrics_register(tb_metrics_registry *reg, tb_metric_type type,
                                      const tb_metric_opts *opts, int *rc)
{
    int dummy;
    if (!rc)
        rc = &dummy;
    size_t n_labels = 0;
    if ((*rc = validate(type, opts, &n_labels)) != 0)
        return NULL;
    reg = reg_or_default(reg);
    if (!reg) {
        *rc = TB_ENOMEM;
        return NULL;
    }
    pthread_mutex_lock(&reg->mu);
    size_t pos = 0;
    tb_metric_family *f = family_lookup(reg, opts->name, &pos);
    if (f) {
        bool same = f->type == type && f->n_labels == n_labels;
        for (size_t i = 0; same && i < n_labels; i++)
            same = strcmp(f->labels[i], opts->labels[i]) == 0;
        if (!same || f == reg->overflow_fam)
            f = NULL, *rc = TB_EINVAL;
    } else {
        f = family_new(reg, type, opts, n_labels);
        if (!f || registry_add(reg, f, pos) != 0) {
            family_free(f);
            f = NULL;
            *rc = TB_ENOMEM;
        }
    }
    pthread_mutex_unlock(&reg->mu);
    return f;
}

tb_metric_family *tb_metrics_counter(tb_metrics_registry *reg, const char *name, const char *help,
                                     const char *const *labels)
{
    tb_metric_opts o = {.name = name, .help = help, .labels = labels};
    return tb_metrics_register(reg, TB_METRIC_COUNTER, &o, NULL);
}

tb_metric_family *tb_metrics_gauge(tb_metrics_registry *reg, const char *name, const char *help,
                                   const char *const *labels)
{
    tb_metric_opts o = {.name = name, .help = help, .labels = labels};
    return tb_metrics_register(reg, TB_METRIC_GAUGE, &o, NULL);
}

tb_metric_family *tb_metrics_histogram(tb_metrics_registry *reg, const char *name, const char *help,
                                       const char *const *labels, const double *buckets,
                                       size_t n_buckets)
{
    tb_metric_opts o = {
        .name = name, .help = help, .labels = labels, .buckets = buckets, .n_buckets = n_buckets};
    return tb_metrics_register(reg, TB_METRIC_HISTOGRAM, &o, NULL);
}

/* ---- series lookup ---- */

/* The overflow series: label values all "other"; it may also be a series made the normal way. */
static tb_metric *overflow_series(tb_metric_family *f)
{
    tb_metric *m = atomic_load_explicit(&f->overflow, memory_order_acquire);
    if (m)
        return m;
    const char *vals[TB_METRICS_MAX_LABELS];
    char scratch[TB_METRICS_MAX_LABELS][TB_METRICS_MAX_LABEL_VALUE + 1];
    for (size_t i = 0; i < f->n_labels; i++)
        vals[i] = OVERFLOW_VALUE;
    key_view k;
    key_make(f, vals, &k, scratch);
    size_t slot = 0;
    m = table_find(f, &k, &slot);
    if (!m) { /* the table has room: it holds max_series + 1 at half load */
        m = series_new(f, &k);
        if (!m)
            return NULL;
        atomic_store_explicit(&f->table[slot], m, memory_order_release);
        f->n_series++;
    }
    atomic_store_explicit(&f->overflow, m, memory_order_release);
    return m;
}

static void count_overflow(tb_metric_family *f)
{
    tb_metrics_registry *reg = f->reg;
    if (f == reg->overflow_fam)
        return;
    tb_metric *c = atomic_load_explicit(&f->overflow_count, memory_order_acquire);
    if (!c) {
        const char *v[1] = {f->name};
        c = tb_metric_get(reg->overflow_fam, v);
        atomic_store_explicit(&f->overflow_count, c, memory_order_release);
    }
    tb_metric_add(c, 1);
}

tb_metric *tb_metric_get(tb_metric_family *f, const char *const *values)
{
    if (!f)
        return NULL;
    char scratch[TB_METRICS_MAX_LABELS][TB_METRICS_MAX_LABEL_VALUE + 1];
    key_view k;
    key_make(f, values, &k, scratch);
    tb_metric *m = table_find(f, &k, NULL);
    if (m)
        return m;
    bool overflowed = false;
    pthread_mutex_lock(&f->mu);
    size_t slot = 0;
    m = table_find(f, &k, &slot);
    if (!m) {
        if (f->n_series >= f->max_series) {
            m = overflow_series(f);
            overflowed = true;
        } else if ((m = series_new(f, &k)) != NULL) {
            atomic_store_explicit(&f->table[slot], m, memory_order_release);
            f->n_series++;
        }
    }
    pthread_mutex_unlock(&f->mu);
    if (overflowed)
        count_overflow(f);
    return m;
}

/* ---- updates ---- */

static _Atomic unsigned next_stripe;
static _Thread_local unsigned my_stripe = UINT_MAX;

/* The calling thread's stripe: the threads take them in turn. */
static inline size_t stripe(void)
{
    if (my_stripe == UINT_MAX)
        my_stripe = atomic_fetch_add_explicit(&next_stripe, 1, memory_order_relaxed) % STRIPES;
    return my_stripe;
}

/* The sum over the stripes of cell j, a count or (dbl) a double's bits. */
static uint64_t cells_sum(const tb_metric *m, size_t j)
{
    uint64_t n = 0;
    for (size_t s = 0; s < STRIPES; s++)
        n += atomic_load_explicit(&m->cells[s * m->stride + j], memory_order_relaxed);
    return n;
}

static double cells_dsum(const tb_metric *m, size_t j);

void tb_metric_add(tb_metric *m, uint64_t n)
{
    if (m && m->type == TB_METRIC_COUNTER)
        atomic_fetch_add_explicit(&m->cells[stripe() * m->stride], n, memory_order_relaxed);
}

void tb_metric_set(tb_metric *m, double v)
{
    if (m && m->type == TB_METRIC_GAUGE)
        atomic_store_explicit(&m->v, d2u(v), memory_order_relaxed);
}

static void add_double(_Atomic uint64_t *p, double d)
{
    uint64_t old = atomic_load_explicit(p, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(p, &old, d2u(u2d(old) + d), memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
}

void tb_metric_gauge_add(tb_metric *m, double d)
{
    if (m && m->type == TB_METRIC_GAUGE)
        add_double(&m->v, d);
}

void tb_metric_observe(tb_metric *m, double v)
{
    if (!m || m->type != TB_METRIC_HISTOGRAM || isnan(v))
        return;
    const tb_metric_family *f = m->fam;
    size_t i = 0;
    while (i < f->n_bounds && v > f->bounds[i])
        i++;
    _Atomic uint64_t *c = &m->cells[stripe() * m->stride];
    atomic_fetch_add_explicit(&c[i], 1, memory_order_relaxed);
    add_double(&c[f->n_bounds + 1], v);
}

static double cells_dsum(const tb_metric *m, size_t j)
{
    double d = 0;
    for (size_t s = 0; s < STRIPES; s++)
        d += u2d(atomic_load_explicit(&m->cells[s * m->stride + j], memory_order_relaxed));
    return d;
}

static uint64_t hist_count(const tb_metric *m)
{
    uint64_t n = 0;
    for (size_t i = 0; i <= m->fam->n_bounds; i++)
        n += cells_sum(m, i);
    return n;
}

double tb_metric_value(const tb_metric *m)
{
    if (!m)
        return 0;
    if (m->type == TB_METRIC_COUNTER)
        return (double)cells_sum(m, 0);
    if (m->type == TB_METRIC_HISTOGRAM)
        return cells_dsum(m, m->fam->n_bounds + 1);
    return u2d(atomic_load_explicit(&((tb_metric *)m)->v, memory_order_relaxed));
}

uint64_t tb_metric_count(const tb_metric *m)
{
    if (!m)
        return 0;
    if (m->type == TB_METRIC_HISTOGRAM)
        return hist_count(m);
    if (m->type == TB_METRIC_COUNTER)
        return cells_sum(m, 0);
    return (uint64_t)tb_metric_value(m);
}

/* ---- collect functions ---- */

int tb_metric_on_collect(tb_metric_family *f, const char *const *values, tb_metric_fn fn,
                         void *user)
{
    if (!f || !fn || f->type == TB_METRIC_HISTOGRAM)
        return TB_EINVAL;
    tb_metric *m = tb_metric_get(f, values);
    if (!m)
        return TB_ENOMEM;
    pthread_mutex_lock(&f->reg->mu);
    m->fn = fn;
    m->user = user;
    m->hidden = false;
    pthread_mutex_unlock(&f->reg->mu);
    return 0;
}

int tb_metrics_fn(tb_metrics_registry *reg, tb_metric_type type, const char *name, const char *help,
                  tb_metric_fn fn, void *user)
{
    tb_metric_opts o = {.name = name, .help = help};
    int rc = 0;
    tb_metric_family *f = tb_metrics_register(reg, type, &o, &rc);
    if (!f)
        return rc;
    return tb_metric_on_collect(f, NULL, fn, user);
}

void tb_metrics_fn_remove(tb_metrics_registry *reg, void *user)
{
    reg = reg_or_default(reg);
    if (!reg)
        return;
    pthread_mutex_lock(&reg->mu);
    for (size_t i = 0; i < reg->n_fams; i++) {
        tb_metric_family *f = reg->fams[i];
        for (size_t j = 0; j <= f->mask; j++) {
            tb_metric *m = atomic_load_explicit(&f->table[j], memory_order_acquire);
            if (m && m->fn && m->user == user) {
                m->fn = NULL;
                m->user = NULL;
                m->hidden = true;
            }
        }
    }
    pthread_mutex_unlock(&reg->mu);
}

/* ---- render ---- */

static void put_double(tb_buf *b, double v)
{
    if (isnan(v)) {
        tb_buf_puts(b, "NaN");
        return;
    }
    if (isinf(v)) {
        tb_buf_puts(b, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        tb_buf_printf(b, "%lld", (long long)v);
        return;
    }
    char tmp[40];
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    for (int i = 0; i < n; i++)
        if (tmp[i] == ',')
            tmp[i] = '.'; /* a locale's decimal comma */
    tb_buf_append(b, tmp, (size_t)n);
}

static void put_escaped(tb_buf *b, const char *s, bool quote)
{
    const char *run = s;
    for (; *s; s++) {
        const char *rep = NULL;
        if (*s == '\\')
            rep = "\\\\";
        else if (*s == '\n')
            rep = "\\n";
        else if (quote && *s == '"')
            rep = "\\\"";
        if (rep) {
            tb_buf_append(b, run, (size_t)(s - run));
            tb_buf_puts(b, rep);
            run = s + 1;
        }
    }
    tb_buf_append(b, run, (size_t)(s - run));
}

/* name{l1="v1",...[,le="x"]} */
static void put_series(tb_buf *b, const tb_metric_family *f, const tb_metric *m, const char *suffix,
                       const char *le)
{
    tb_buf_puts(b, f->name);
    tb_buf_puts(b, suffix);
    if (f->n_labels == 0 && !le)
        return;
    tb_buf_putc(b, '{');
    const char *v = m->key;
    for (size_t i = 0; i < f->n_labels; i++) {
        if (i)
            tb_buf_putc(b, ',');
        tb_buf_puts(b, f->labels[i]);
        tb_buf_puts(b, "=\"");
        put_escaped(b, v, true);
        tb_buf_putc(b, '"');
        v += strlen(v) + 1;
    }
    if (le) {
        if (f->n_labels)
            tb_buf_putc(b, ',');
        tb_buf_puts(b, "le=\"");
        tb_buf_puts(b, le);
        tb_buf_putc(b, '"');
    }
    tb_buf_putc(b, '}');
}

static int cmp_series(const void *a, const void *b)
{
    const tb_metric *x = *(tb_metric *const *)a, *y = *(tb_metric *const *)b;
    size_t n = x->fam->n_labels;
    const char *p = x->key, *q = y->key;
    for (size_t i = 0; i < n; i++) {
        int c = strcmp(p, q);
        if (c)
            return c;
        p += strlen(p) + 1;
        q += strlen(q) + 1;
    }
    return 0;
}

static const char *type_name(tb_metric_type t)
{
    return t == TB_METRIC_COUNTER ? "counter" : t == TB_METRIC_GAUGE ? "gauge" : "histogram";
}

static void put_header(tb_buf *b, const char *name, const char *help, const char *type)
{
    tb_buf_puts(b, "# HELP ");
    tb_buf_puts(b, name);
    tb_buf_putc(b, ' ');
    put_escaped(b, help, false);
    tb_buf_puts(b, "\n# TYPE ");
    tb_buf_puts(b, name);
    tb_buf_putc(b, ' ');
    tb_buf_puts(b, type);
    tb_buf_putc(b, '\n');
}

static int render_family(tb_metric_family *f, tb_buf *b)
{
    tb_metric **list = malloc((f->mask + 1) * sizeof *list);
    if (!list)
        return TB_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i <= f->mask; i++) {
        tb_metric *m = atomic_load_explicit(&f->table[i], memory_order_acquire);
        if (m && !m->hidden)
            list[n++] = m;
    }
    if (n == 0) {
        free(list);
        return 0;
    }
    qsort(list, n, sizeof *list, cmp_series);
    put_header(b, f->name, f->help, type_name(f->type));
    for (size_t i = 0; i < n; i++) {
        tb_metric *m = list[i];
        if (f->type != TB_METRIC_HISTOGRAM) {
            put_series(b, f, m, "", NULL);
            tb_buf_putc(b, ' ');
            if (m->fn)
                put_double(b, m->fn(m->user));
            else if (f->type == TB_METRIC_COUNTER)
                tb_buf_printf(b, "%llu", (unsigned long long)cells_sum(m, 0));
            else
                put_double(b, u2d(atomic_load_explicit(&m->v, memory_order_relaxed)));
            tb_buf_putc(b, '\n');
            continue;
        }
        /* _count is the sum of the buckets read here, so +Inf == _count even while observations
         * come in; _sum may be a few observations ahead or behind, as in every client. */
        uint64_t cum = 0;
        char le[40];
        for (size_t j = 0; j <= f->n_bounds; j++) {
            cum += cells_sum(m, j);
            if (j < f->n_bounds) {
                tb_buf tmp = TB_BUF_INIT;
                put_double(&tmp, f->bounds[j]);
                snprintf(le, sizeof le, "%s", tmp.data ? tmp.data : "0");
                tb_buf_deinit(&tmp);
            } else {
                snprintf(le, sizeof le, "+Inf");
            }
            put_series(b, f, m, "_bucket", le);
            tb_buf_printf(b, " %llu\n", (unsigned long long)cum);
        }
        put_series(b, f, m, "_sum", NULL);
        tb_buf_putc(b, ' ');
        put_double(b, cells_dsum(m, f->n_bounds + 1));
        tb_buf_putc(b, '\n');
        put_series(b, f, m, "_count", NULL);
        tb_buf_printf(b, " %llu\n", (unsigned long long)cum);
    }
    free(list);
    return 0;
}

int tb_metrics_registry_render(tb_metrics_registry *reg, tb_buf *out)
{
    reg = reg_or_default(reg);
    if (!reg)
        return TB_ENOMEM;
    int rc = 0;
    pthread_mutex_lock(&reg->mu);
    for (size_t i = 0; i < reg->n_fams && rc == 0; i++)
        rc = render_family(reg->fams[i], out);
    pthread_mutex_unlock(&reg->mu);
    if (rc == 0 && out->oom)
        rc = TB_ENOMEM;
    return rc;
}

/* ---- process metrics (Linux /proc) ---- */

static void put_process(tb_buf *b, const char *name, const char *help, const char *type, double v)
{
    put_header(b, name, help, type);
    tb_buf_puts(b, name);
    tb_buf_putc(b, ' ');
    put_double(b, v);
    tb_buf_putc(b, '\n');
}

static void render_process(tb_buf *b)
{
    long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    char buf[1024];
    FILE *fp = fopen("/proc/self/stat", "r");
    if (fp) {
        size_t n = fread(buf, 1, sizeof buf - 1, fp);
        fclose(fp);
        buf[n] = '\0';
        char *p = strrchr(buf, ')');
        unsigned long utime = 0, stime = 0, vsize = 0;
        long threads = 0, rss = 0;
        unsigned long long start = 0;
        /* fields 3.. after the command: state ppid pgrp session tty tpgid flags minflt cminflt
         * majflt cmajflt utime stime cutime cstime priority nice num_threads itrealvalue
         * starttime vsize rss */
        if (p && ticks > 0 &&
            sscanf(p + 1,
                   " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d %ld %*d "
                   "%llu %lu %ld",
                   &utime, &stime, &threads, &start, &vsize, &rss) == 6) {
            put_process(b, "process_cpu_seconds_total",
                        "Total user and system CPU time spent in seconds.", "counter",
                        (double)(utime + stime) / (double)ticks);
            double btime = 0;
            FILE *sp = fopen("/proc/stat", "r");
            if (sp) {
                char line[256];
                while (fgets(line, sizeof line, sp))
                    if (sscanf(line, "btime %lf", &btime) == 1)
                        break;
                fclose(sp);
            }
            struct rlimit rl;
            if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
                put_process(b, "process_max_fds", "Maximum number of open file descriptors.",
                            "gauge", rl.rlim_cur == RLIM_INFINITY ? INFINITY : (double)rl.rlim_cur);
            DIR *d = opendir("/proc/self/fd");
            if (d) {
                long fds = 0;
                struct dirent *e;
                while ((e = readdir(d)) != NULL)
                    if (e->d_name[0] != '.' && atoi(e->d_name) != dirfd(d))
                        fds++;
                closedir(d);
                put_process(b, "process_open_fds", "Number of open file descriptors.", "gauge",
                            (double)fds);
            }
            put_process(b, "process_resident_memory_bytes", "Resident memory size in bytes.",
                        "gauge", (double)rss * (double)page);
            if (btime > 0)
                put_process(b, "process_start_time_seconds",
                            "Start time of the process since unix epoch in seconds.", "gauge",
                            btime + (double)start / (double)ticks);
            put_process(b, "process_threads", "Number of OS threads in the process.", "gauge",
                        (double)threads);
            put_process(b, "process_virtual_memory_bytes", "Virtual memory size in bytes.", "gauge",
                        (double)vsize);
        }
    }
}

int tb_metrics_render(tb_buf *out)
{
    int rc = tb_metrics_registry_render(NULL, out);
    if (rc == 0) {
        render_process(out);
        if (out->oom)
            rc = TB_ENOMEM;
    }
    return rc;
}

/* ---- the runtime's instruments ---- */

enum {
    F_SRV_DURATION,
    F_SRV_REQUESTS,
    F_SRV_ACTIVE,
    F_SRV_REFUSED,
    F_CLI_DURATION,
    F_CLI_RETRIES,
    F_CLI_FAIL_FAST,
    F_CLI_BREAKER,
    F_EV_PUBLISHED,
    F_EV_PUBLISH_FAILED,
    F_EV_CONSUMED,
    F_EV_RETRIED,
    F_EV_DEAD,
    F_EV_LAG_SECONDS,
    F_EV_LAG_MESSAGES,
    F_COUNT
};

typedef struct fam_def {
    tb_metric_type type;
    const char *name;
    const char *help;
    const char *labels[TB_METRICS_MAX_LABELS + 1];
} fam_def;

static const fam_def defs[F_COUNT] = {
    [F_SRV_DURATION] = {TB_METRIC_HISTOGRAM,
                        "http_server_request_duration_seconds",
                        "Duration of HTTP server requests, received to answered.",
                        {"service", "operation", "http_request_method",
                         "http_response_status_class"}},
    [F_SRV_REQUESTS] = {TB_METRIC_COUNTER,
                        "http_server_requests_total",
                        "HTTP server requests answered, by status code.",
                        {"service", "operation", "http_request_method",
                         "http_response_status_code"}},
    [F_SRV_ACTIVE] = {TB_METRIC_GAUGE,
                      "http_server_active_requests",
                      "HTTP server requests in flight.",
                      {"service"}},
    [F_SRV_REFUSED] = {TB_METRIC_COUNTER,
                       "tablium_server_refused_total",
                       "Requests refused before their handler, by reason.",
                       {"service", "reason"}},
    [F_CLI_DURATION] = {TB_METRIC_HISTOGRAM,
                        "http_client_request_duration_seconds",
                        "Duration of HTTP client calls, all attempts and backoff included.",
                        {"upstream", "operation", "http_request_method",
                         "http_response_status_class", "outcome"}},
    [F_CLI_RETRIES] = {TB_METRIC_COUNTER,
                       "tablium_client_retries_total",
                       "HTTP client attempts after the first.",
                       {"upstream", "operation"}},
    [F_CLI_FAIL_FAST] = {TB_METRIC_COUNTER,
                         "tablium_client_fail_fast_total",
                         "HTTP client calls refused by the breaker or the bulkhead, not sent.",
                         {"upstream", "reason"}},
    [F_CLI_BREAKER] = {TB_METRIC_GAUGE,
                       "tablium_client_breaker_state",
                       "Circuit breaker state of an upstream: 1 for the current state.",
                       {"upstream", "state"}},
    [F_EV_PUBLISHED] = {TB_METRIC_COUNTER,
                        "tablium_events_published_total",
                        "Events published (confirmed by the broker).",
                        {"service", "event_type", "transport"}},
    [F_EV_PUBLISH_FAILED] = {TB_METRIC_COUNTER,
                             "tablium_events_publish_failed_total",
                             "Events whose publication failed.",
                             {"service", "event_type", "transport"}},
    [F_EV_CONSUMED] = {TB_METRIC_COUNTER,
                       "tablium_events_consumed_total",
                       "Event deliveries handled or set aside, by result.",
                       {"service", "event_type", "transport", "result"}},
    [F_EV_RETRIED] = {TB_METRIC_COUNTER,
                      "tablium_events_retried_total",
                      "Event deliveries sent back for a later attempt.",
                      {"service", "event_type", "transport"}},
    [F_EV_DEAD] = {TB_METRIC_COUNTER,
                   "tablium_events_dead_lettered_total",
                   "Event deliveries sent to the dead-letter queue.",
                   {"service", "event_type", "transport"}},
    [F_EV_LAG_SECONDS] = {TB_METRIC_GAUGE,
                          "tablium_events_consumer_lag_seconds",
                          "Age of the last consumed event when its handling began.",
                          {"service", "transport"}},
    [F_EV_LAG_MESSAGES] = {TB_METRIC_GAUGE,
                           "tablium_events_consumer_lag_messages",
                           "Messages waiting in a queue.",
                           {"service", "transport", "queue"}},
};

static pthread_mutex_t fams_mu = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(tb_metric_family **) fams_ready;
static tb_metric_family *fams_store[F_COUNT];

static tb_metric_family **fams(void)
{
    tb_metric_family **f = atomic_load_explicit(&fams_ready, memory_order_acquire);
    if (f)
        return f;
    pthread_mutex_lock(&fams_mu);
    f = atomic_load_explicit(&fams_ready, memory_order_relaxed);
    if (!f) {
        for (int i = 0; i < F_COUNT; i++) {
            tb_metric_opts o = {
                .name = defs[i].name, .help = defs[i].help, .labels = defs[i].labels};
            fams_store[i] = tb_metrics_register(NULL, defs[i].type, &o, NULL);
        }
        f = fams_store;
        atomic_store_explicit(&fams_ready, f, memory_order_release);
    }
    pthread_mutex_unlock(&fams_mu);
    return f;
}

static void srv_cache_clear(void);

void tb_metrics_reset(void)
{
    pthread_mutex_lock(&fams_mu);
    srv_cache_clear();
    pthread_mutex_lock(&default_mu);
    atomic_store_explicit(&fams_ready, NULL, memory_order_relaxed);
    memset(fams_store, 0, sizeof fams_store);
    tb_metrics_registry_free(atomic_exchange(&default_reg, NULL));
    pthread_mutex_unlock(&default_mu);
    pthread_mutex_unlock(&fams_mu);
}

static const char *method_name(const char *m)
{
    static const char *const known[] = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
                                        "CONNECT", "OPTIONS", "TRACE", "PATCH"};
    if (m)
        for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
            if (strcmp(m, known[i]) == 0)
                return known[i];
    return "_OTHER";
}

static const char *one_of(const char *v, const char *const *set)
{
    if (v)
        for (; *set; set++)
            if (strcmp(v, *set) == 0)
                return *set;
    return "other";
}

static const char *status_class(int status)
{
    static const char *const cls[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
    if (status == 0)
        return "none";
    if (status >= 100 && status <= 599)
        return cls[status / 100 - 1];
    return "other";
}

static const char *status_code(int status, char buf[4])
{
    if (status < 100 || status > 599)
        return "other";
    buf[0] = (char)('0' + status / 100);
    buf[1] = (char)('0' + status / 10 % 10);
    buf[2] = (char)('0' + status % 10);
    buf[3] = '\0';
    return buf;
}

/* TB_METRICS=off (or 0, false): the runtime's instruments record nothing (the hot path is one
 * load); /metrics still serves the process metrics and whatever code registers itself. */
static pthread_once_t off_once = PTHREAD_ONCE_INIT;
static bool off_flag;

static void read_off(void)
{
    const char *v = getenv("TB_METRICS");
    off_flag = v && (strcasecmp(v, "off") == 0 || strcmp(v, "0") == 0 ||
                     strcasecmp(v, "false") == 0);
}

static bool instruments_off(void)
{
    pthread_once(&off_once, read_off);
    return off_flag;
}

/* tb_metrics_http_server's two series by (service, operation, method, status), so that a request
 * costs no hashing of four label values twice. The caller's service and operation pointers pick
 * the slot (the runtime passes the same static strings every time); a hit also compares their
 * text with the entry's copies, so a pointer reused for other text only misses. Entries are
 * added (never changed) by whichever thread misses, and freed by tb_metrics_reset. A series
 * that is its family's overflow series is not cached: each of its lookups must count. */
#define SRV_CACHE 256 /* slots, a power of 2 */
#define SRV_PROBES 8

typedef struct srv_entry {
    const char *service_p, *operation_p, *method; /* the key; method: method_name's */
    int status;
    tb_metric *duration, *requests;
    const char *service, *operation; /* copies of the key's text, in the same block */
} srv_entry;

static _Atomic(srv_entry *) srv_cache[SRV_CACHE];

static void srv_cache_clear(void)
{
    for (size_t i = 0; i < SRV_CACHE; i++)
        free(atomic_exchange(&srv_cache[i], NULL));
}

static size_t srv_slot(const char *service, const char *operation, const char *m, int status)
{
    uint64_t h = (uint64_t)(uintptr_t)service * 0x9e3779b97f4a7c15ull;
    h ^= (uint64_t)(uintptr_t)operation * 0xc2b2ae3d27d4eb4full;
    h ^= (uint64_t)(uintptr_t)m * 0x165667b19e3779f9ull;
    h ^= (uint64_t)(unsigned)status * 0x27d4eb2f165667c5ull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    return (size_t)(h >> 40);
}

static bool srv_hit(const srv_entry *e, const char *service, const char *operation, const char *m,
                    int status)
{
    return e->operation_p == operation && e->service_p == service && e->status == status &&
           e->method == m && strcmp(e->operation, operation) == 0 &&
           strcmp(e->service, service) == 0;
}

static bool is_overflow(tb_metric_family *f, const tb_metric *m)
{
    return atomic_load_explicit(&f->overflow, memory_order_acquire) == m;
}

void tb_metrics_http_server(const char *service, const char *operation, const char *method,
                            int status, double seconds)
{
    if (instruments_off())
        return;
    if (!service)
        service = "";
    if (!operation)
        operation = "";
    const char *m = method_name(method);
    size_t h = srv_slot(service, operation, m, status);
    size_t free_slot = SIZE_MAX;
    for (size_t k = 0; k < SRV_PROBES; k++) {
        size_t i = (h + k) & (SRV_CACHE - 1);
        const srv_entry *e = atomic_load_explicit(&srv_cache[i], memory_order_acquire);
        if (!e) {
            free_slot = i;
            break;
        }
        if (srv_hit(e, service, operation, m, status)) {
            tb_metric_observe(e->duration, seconds);
            tb_metric_inc(e->requests);
            return;
        }
    }
    tb_metric_family **f = fams();
    char code[4];
    tb_metric *d = tb_metric_get(f[F_SRV_DURATION],
                                 (const char *[]){service, operation, m, status_class(status)});
    tb_metric *r = tb_metric_get(f[F_SRV_REQUESTS],
                                 (const char *[]){service, operation, m, status_code(status, code)});
    tb_metric_observe(d, seconds);
    tb_metric_inc(r);
    if (free_slot == SIZE_MAX || !d || !r || is_overflow(f[F_SRV_DURATION], d) ||
        is_overflow(f[F_SRV_REQUESTS], r))
        return;
    size_t sl = strlen(service) + 1, ol = strlen(operation) + 1;
    srv_entry *e = malloc(sizeof *e + sl + ol);
    if (!e)
        return;
    char *text = (char *)(e + 1);
    memcpy(text, service, sl);
    memcpy(text + sl, operation, ol);
    *e = (srv_entry){service, operation, m, status, d, r, text, text + sl};
    srv_entry *none = NULL;
    if (!atomic_compare_exchange_strong_explicit(&srv_cache[free_slot], &none, e,
                                                 memory_order_release, memory_order_relaxed))
        free(e); /* another thread filled the slot first: the next miss tries again */
}

void tb_metrics_http_server_active(const char *service, int delta)
{
    if (instruments_off())
        return;
    tb_metric_gauge_add(tb_metric_get(fams()[F_SRV_ACTIVE], (const char *[]){service}), delta);
}

void tb_metrics_refused(const char *service, const char *reason)
{
    if (instruments_off())
        return;
    static const char *const reasons[] = {
        "rate_limited", "unauthorized", "forbidden",         "overloaded",
        "too_large",    "invalid",      "deadline_exceeded", NULL};
    tb_metric_inc(
        tb_metric_get(fams()[F_SRV_REFUSED], (const char *[]){service, one_of(reason, reasons)}));
}

void tb_metrics_http_client(const char *upstream, const char *operation, const char *method,
                            int status, const char *outcome, double seconds, int retries)
{
    if (instruments_off())
        return;
    static const char *const outcomes[] = {"ok", "error", "timeout", "open", "busy", NULL};
    tb_metric_family **f = fams();
    const char *o = one_of(outcome, outcomes);
    tb_metric_observe(
        tb_metric_get(f[F_CLI_DURATION], (const char *[]){upstream, operation, method_name(method),
                                                          status_class(status), o}),
        seconds);
    if (retries > 0)
        tb_metric_add(tb_metric_get(f[F_CLI_RETRIES], (const char *[]){upstream, operation}),
                      (uint64_t)retries);
    if (strcmp(o, "open") == 0 || strcmp(o, "busy") == 0)
        tb_metric_inc(tb_metric_get(f[F_CLI_FAIL_FAST], (const char *[]){upstream, o}));
}

void tb_metrics_breaker_state(const char *upstream, int state)
{
    if (instruments_off())
        return;
    static const char *const names[] = {"closed", "open", "half_open"};
    tb_metric_family *f = fams()[F_CLI_BREAKER];
    for (int i = 0; i < 3; i++)
        tb_metric_set(tb_metric_get(f, (const char *[]){upstream, names[i]}), i == state);
}

void tb_metrics_event_published(const char *service, const char *event_type, const char *transport,
                                bool ok)
{
    if (instruments_off())
        return;
    tb_metric_inc(tb_metric_get(fams()[ok ? F_EV_PUBLISHED : F_EV_PUBLISH_FAILED],
                                (const char *[]){service, event_type, transport}));
}

void tb_metrics_event_declare(const char *service, const char *event_type, const char *transport,
                              bool publishes, bool consumes)
{
    if (instruments_off())
        return;
    tb_metric_family **f = fams();
    const char *v[] = {service, event_type, transport};
    if (publishes) {
        tb_metric_get(f[F_EV_PUBLISHED], v);
        tb_metric_get(f[F_EV_PUBLISH_FAILED], v);
    }
    if (consumes) {
        tb_metric_get(f[F_EV_CONSUMED], (const char *[]){service, event_type, transport, "ack"});
        tb_metric_get(f[F_EV_RETRIED], v);
        tb_metric_get(f[F_EV_DEAD], v);
    }
}

void tb_metrics_event_consumed(const char *service, const char *event_type, const char *transport,
                               const char *result)
{
    if (instruments_off())
        return;
    static const char *const results[] = {"ack",       "retry",   "dead", "invalid",
                                          "duplicate", "skipped", NULL};
    tb_metric_inc(
        tb_metric_get(fams()[F_EV_CONSUMED],
                      (const char *[]){service, event_type, transport, one_of(result, results)}));
}

void tb_metrics_event_retried(const char *service, const char *event_type, const char *transport)
{
    if (instruments_off())
        return;
    tb_metric_inc(
        tb_metric_get(fams()[F_EV_RETRIED], (const char *[]){service, event_type, transport}));
}

void tb_metrics_event_dead_lettered(const char *service, const char *event_type,
                                    const char *transport)
{
    if (instruments_off())
        return;
    tb_metric_inc(
        tb_metric_get(fams()[F_EV_DEAD], (const char *[]){service, event_type, transport}));
}

void tb_metrics_consumer_lag_seconds(const char *service, const char *transport, double seconds)
{
    if (instruments_off())
        return;
    tb_metric_set(tb_metric_get(fams()[F_EV_LAG_SECONDS], (const char *[]){service, transport}),
                  seconds);
}

void tb_metrics_consumer_lag_messages(const char *service, const char *transport, const char *queue,
                                      double messages)
{
    if (instruments_off())
        return;
    tb_metric_set(
        tb_metric_get(fams()[F_EV_LAG_MESSAGES], (const char *[]){service, transport, queue}),
        messages);
}

int tb_metrics_consumer_lag_messages_fn(const char *service, const char *transport,
                                        const char *queue, tb_metric_fn fn, void *user)
{
    if (instruments_off())
        return 0;
    return tb_metric_on_collect(fams()[F_EV_LAG_MESSAGES],
                                (const char *[]){service, transport, queue}, fn, user);
}
