#include "tablium/client.h"
#include "tablium/log.h"
#include "tablium/metrics.h"
#include "tablium/trace.h"

#include "resilience.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define TB__USER_AGENT "tablium/0.1.0"
#define TB__MAX_EXTRA (sizeof((tb_client_call *)0)->headers / sizeof(const char *))
/* Accept, Content-Type, Expect, X-Request-ID, X-Request-Timeout-Ms, traceparent and tracestate,
 * then the call's own. */
#define TB__MAX_LINES (7 + TB__MAX_EXTRA)
/* A pooled handle keeps its body buffer between calls; one that grew past this (a rare large
 * response) gives the memory back instead of pinning it for the client's lifetime. */
#define TB__BODY_KEEP ((size_t)64 << 10)

/* ---- process-wide init ---- */

static pthread_once_t tb__curl_once = PTHREAD_ONCE_INIT;
static int tb__curl_rc = TB_EIO;

static void tb__curl_init(void)
{
    tb__curl_rc = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : TB_EIO;
}

int tb_global_init(void)
{
    pthread_once(&tb__curl_once, tb__curl_init);
    return tb__curl_rc;
}

/* ---- service discovery ---- */

/* getenv of PREFIX<NAME>SUFFIX (name upper-cased, '-' and '.' -> '_'); NULL when unset or
 * empty (an exported-but-empty variable is how compose files unset things). */
static const char *env_of(const char *name, const char *suffix, char *var, size_t cap)
{
    size_t n = 0;
    for (const char *p = name; *p && n + 1 < cap; p++) {
        char ch = (char)toupper((unsigned char)*p);
        var[n++] = ch == '-' || ch == '.' ? '_' : ch;
    }
    snprintf(var + n, cap - n, "%s", suffix);
    const char *v = getenv(var);
    return v && *v ? v : NULL;
}

/* The port of an http(s) URL (its explicit one, else the scheme's), or 0. */
static int url_port(const char *url);
/* Whether a URL's host is this machine (localhost, 127.x, ::1) or missing. */
static bool local_url(const char *url);
static bool has_prefix_ci(const char *s, const char *prefix);

char *tb_service_url(const char *name, const char *fallback)
{
    char var[160], var2[160], made[512];
    const char *url = NULL, *from = NULL;
    if (name && *name && strlen(name) < 100) {
        const char *host, *port;
        if ((url = env_of(name, "_SERVICE_URL", var, sizeof var))) {
            from = var;
        } else if ((host = env_of(name, "_SERVICE_HOST", var, sizeof var)) &&
                   (port = env_of(name, "_SERVICE_PORT", var2, sizeof var2))) {
            /* what Kubernetes injects for each service of the pod's namespace */
            snprintf(made, sizeof made, strchr(host, ':') ? "http://[%s]:%s" : "http://%s:%s",
                     host, port);
            url = made;
            from = "<NAME>_SERVICE_HOST and _PORT (Kubernetes)";
        } else if (getenv("KUBERNETES_SERVICE_HOST") && (!fallback || local_url(fallback))) {
            /* in a pod, for a spec whose servers name this machine: the service's DNS name,
             * with the spec's scheme, port and base path (an external URL stays as it is) */
            const char *ns = getenv("TB_K8S_NAMESPACE");
            int spec_port = fallback ? url_port(fallback) : 0;
            bool https = fallback && has_prefix_ci(fallback, "https://");
            const char *path = "";
            if (fallback) {
                const char *hp = strstr(fallback, "://");
                hp = hp ? hp + 3 : fallback;
                path = hp + strcspn(hp, "/?#");
            }
            int n = snprintf(made, sizeof made, "%s://%s", https ? "https" : "http", name);
            if (ns && *ns)
                n += snprintf(made + n, sizeof made - (size_t)n, ".%s.svc.cluster.local", ns);
            if (spec_port > 0 && spec_port != (https ? 443 : 80))
                n += snprintf(made + n, sizeof made - (size_t)n, ":%d", spec_port);
            snprintf(made + n, sizeof made - (size_t)n, "%s", path);
            url = made;
            from = "the Kubernetes service name (KUBERNETES_SERVICE_HOST is set)";
        }
    }
    if (!url && fallback && *fallback) {
        url = fallback;
        from = "the spec's servers";
    }
    if (!url) {
        url = "http://127.0.0.1:8080";
        from = "the default";
    }
    size_t len = strlen(url);
    while (len > 1 && url[len - 1] == '/')
        len--;
    if (name && *name)
        tb_log_info(NULL, "upstream %s: %.*s (from %s; the order: <NAME>_SERVICE_URL, "
                          "<NAME>_SERVICE_HOST + _PORT, the Kubernetes DNS name in a pod, the "
                          "spec's servers, http://127.0.0.1:8080)",
                    name, (int)len, url, from);
    return strndup(url, len);
}

/* ---- the client and its handle pool ---- */

typedef struct tb__handle {
    struct tb__handle *next;
    CURL *curl;
    tb_buf body;
    char errbuf[CURL_ERROR_SIZE];
} tb__handle;

struct tb_client {
    char *base_url;
    size_t base_len;
    char *user_agent;
    char *name;
    char *fault_spec;
    char *tls_ca, *tls_cert, *tls_key; /* copies of the opts' paths */
    const char *label; /* name, else base_url: how logs call this upstream */
    char *host;        /* server.address and server.port of the spans, from base_url */
    char *safe_base;   /* base_url without user:password@ (for spans, labels and logs) */
    int port;
    unsigned env_retry; /* retry fields the environment set: they win over a call's policy */
    struct breaker_probe {
        struct tb_client *c;
        tb_breaker_state state;
    } probes[3]; /* tablium_client_breaker_state{state=...}, read at scrape */
    tb_client_opts opts;
    pthread_mutex_t mu;
    tb__handle *idle; /* LIFO: the most recently used handle has the warmest connection */
    tb__fault fault;
    pthread_mutex_t pmu; /* guards budget and breaker */
    tb__budget budget;
    tb__breaker breaker;
    atomic_int in_flight;
    _Atomic uint64_t n_calls, n_attempts, n_retries, n_budget_refusals, n_fast_fails,
        n_bulkhead_rejections, n_deadline_exceeded, n_faults, n_fallbacks;
};

/* What the curl callbacks of one transfer write into. */
typedef struct tb__xfer {
    tb__handle *h;
    tb_arena *arena;
    size_t max;
    bool too_big;
    bool oom;
    bool once; /* the request may be sent only once (not idempotent) */
    int sends; /* times libcurl was about to send it */
    const char *(*hdrs)[2];
    size_t n_hdrs;
    size_t cap_hdrs;
} tb__xfer;

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    tb__xfer *x = ud;
    size_t len = size * n;
    if (len > x->max - x->h->body.len) {
        x->too_big = true;
        return 0;
    }
    tb_buf_append(&x->h->body, p, len);
    if (x->h->body.oom) {
        x->oom = true;
        return 0;
    }
    return len;
}

/* libcurl silently re-sends a request, on a fresh connection, when a reused one closes before
 * any byte of an answer: right for a GET on a stale keep-alive connection, but a POST may have
 * been received and acted on. A call that must not be repeated aborts the second send. */
static int on_prereq(void *ud, char *conn_primary_ip, char *conn_local_ip, int conn_primary_port,
                     int conn_local_port)
{
    (void)conn_primary_ip;
    (void)conn_local_ip;
    (void)conn_primary_port;
    (void)conn_local_port;
    tb__xfer *x = ud;
    return ++x->sends > 1 && x->once ? CURL_PREREQFUNC_ABORT : CURL_PREREQFUNC_OK;
}

static bool is_ows(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    tb__xfer *x = ud;
    size_t len = size * n;
    /* A status line starts a new header block: forget those of a 1xx interim response. */
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        x->n_hdrs = 0;
        return len;
    }
    size_t end = len;
    while (end > 0 && is_ows(p[end - 1]))
        end--;
    if (end == 0)
        return len;
    if (is_ows(p[0])) {
        /* obs-fold continuation (RFC 7230 3.2.4): joined to the previous value with a space. */
        if (x->n_hdrs == 0)
            return len;
        size_t start = 0;
        while (start < end && is_ows(p[start]))
            start++;
        const char *prev = x->hdrs[x->n_hdrs - 1][1];
        size_t plen = strlen(prev);
        char *v = tb_arena_alloc(x->arena, plen + 1 + (end - start) + 1);
        if (!v) {
            x->oom = true;
            return 0;
        }
        memcpy(v, prev, plen);
        v[plen] = ' ';
        memcpy(v + plen + 1, p + start, end - start);
        v[plen + 1 + end - start] = '\0';
        x->hdrs[x->n_hdrs - 1][1] = v;
        return len;
    }
    const char *colon = memchr(p, ':', end);
    if (!colon)
        return len;
    size_t name_end = (size_t)(colon - p);
    while (name_end > 0 && is_ows(p[name_end - 1]))
        name_end--;
    size_t vstart = (size_t)(colon - p) + 1;
    while (vstart < end && is_ows(p[vstart]))
        vstart++;
    if (x->n_hdrs == x->cap_hdrs) {
        size_t cap = x->cap_hdrs ? x->cap_hdrs * 2 : 16;
        const char *(*grown)[2] = tb_arena_alloc(x->arena, cap * sizeof *grown);
        if (!grown) {
            x->oom = true;
            return 0;
        }
        if (x->n_hdrs)
            memcpy(grown, x->hdrs, x->n_hdrs * sizeof *grown);
        x->hdrs = grown;
        x->cap_hdrs = cap;
    }
    const char *hname = tb_arena_strndup(x->arena, p, name_end);
    const char *hvalue = tb_arena_strndup(x->arena, p + vstart, end - vstart);
    if (!hname || !hvalue) {
        x->oom = true;
        return 0;
    }
    x->hdrs[x->n_hdrs][0] = hname;
    x->hdrs[x->n_hdrs][1] = hvalue;
    x->n_hdrs++;
    return len;
}

static void handle_free(tb__handle *h)
{
    if (!h)
        return;
    if (h->curl)
        curl_easy_cleanup(h->curl);
    tb_buf_deinit(&h->body);
    free(h);
}

static tb__handle *handle_new(const tb_client *c)
{
    tb__handle *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->curl = curl_easy_init();
    if (!h->curl)
        goto fail;
    CURL *e = h->curl;
    if (curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, c->opts.connect_timeout_ms) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_USERAGENT, c->user_agent) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, h->errbuf) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, on_prereq) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK)
        goto fail;
    /* Verification is libcurl's default; said here so that it never depends on a build. */
    if (curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) != CURLE_OK)
        goto fail;
    /* A CA file replaces the system's trust (CAPATH NULL drops the default directory). */
    if (c->tls_ca && (curl_easy_setopt(e, CURLOPT_CAINFO, c->tls_ca) != CURLE_OK ||
                      curl_easy_setopt(e, CURLOPT_CAPATH, NULL) != CURLE_OK))
        goto fail;
    if (c->tls_cert && (curl_easy_setopt(e, CURLOPT_SSLCERT, c->tls_cert) != CURLE_OK ||
                        curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM") != CURLE_OK))
        goto fail;
    if (c->tls_key && curl_easy_setopt(e, CURLOPT_SSLKEY, c->tls_key) != CURLE_OK)
        goto fail;
    return h;
fail:
    handle_free(h);
    return NULL;
}

static tb__handle *pool_get(tb_client *c)
{
    pthread_mutex_lock(&c->mu);
    tb__handle *h = c->idle;
    if (h)
        c->idle = h->next;
    pthread_mutex_unlock(&c->mu);
    return h ? h : handle_new(c);
}

static void pool_put(tb_client *c, tb__handle *h)
{
    pthread_mutex_lock(&c->mu);
    h->next = c->idle;
    c->idle = h;
    pthread_mutex_unlock(&c->mu);
}

static bool has_prefix_ci(const char *s, const char *prefix);

/* Host (without brackets) and port of an http(s) URL, for the spans' server.address and
 * server.port: a malloc'd host ("" when it has none), *port the explicit or the scheme's one. */
static char *url_host(const char *url, int *port)
{
    bool https = has_prefix_ci(url, "https://");
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    const char *at = p + strcspn(p, "/?#");
    const char *userinfo = memchr(p, '@', (size_t)(at - p));
    if (userinfo)
        p = userinfo + 1;
    const char *h = p, *he;
    if (*p == '[') {
        h = p + 1;
        he = memchr(h, ']', (size_t)(at - h));
        if (!he)
            he = at;
        p = he < at ? he + 1 : at;
    } else {
        he = memchr(p, ':', (size_t)(at - p));
        if (!he)
            he = at;
        p = he;
    }
    *port = https ? 443 : 80;
    if (p < at && *p == ':') {
        int v = 0;
        for (const char *d = p + 1; d < at && *d >= '0' && *d <= '9' && v < 70000; d++)
            v = v * 10 + (*d - '0');
        if (v > 0 && v < 65536)
            *port = v;
    }
    return strndup(h, (size_t)(he - h));
}

static bool local_url(const char *url)
{
    int port;
    char *h = url_host(url, &port);
    bool local = !h || !*h || strcasecmp(h, "localhost") == 0 || strncmp(h, "127.", 4) == 0 ||
                 strcmp(h, "::1") == 0;
    free(h);
    return local;
}

/* A copy of url without its "user:password@" part. */
static char *without_userinfo(const char *url)
{
    const char *hp = strstr(url, "://");
    hp = hp ? hp + 3 : url;
    size_t auth_len = strcspn(hp, "/?#");
    const char *at = memchr(hp, '@', auth_len);
    if (!at)
        return strdup(url);
    size_t pre = (size_t)(hp - url), rest = strlen(at + 1);
    char *out = malloc(pre + rest + 1);
    if (out) {
        memcpy(out, url, pre);
        memcpy(out + pre, at + 1, rest + 1);
    }
    return out;
}

static int url_port(const char *url)
{
    int port = 0;
    char *h = url_host(url, &port);
    free(h);
    return h ? port : 0;
}

static bool has_prefix_ci(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

static double breaker_probe_read(void *user)
{
    struct breaker_probe *p = user;
    tb_client_stats st;
    tb_client_stats_get(p->c, &st);
    return st.breaker_state == p->state ? 1.0 : 0.0;
}

tb_client *tb_client_new(const char *base_url, const tb_client_opts *opts, tb_error *err)
{
    static const tb_client_opts defaults = TB_CLIENT_OPTS_INIT;
    tb_client *c = NULL;
    tb__handle *h = NULL;
    bool mu_ok = false, pmu_ok = false;
    tb_client_opts o;
    tb__fault fault;
    tb_error_reset(err);
    if (!opts)
        opts = &defaults;
    if (!base_url || !(has_prefix_ci(base_url, "http://") || has_prefix_ci(base_url, "https://"))) {
        tb_error_set(err, TB_EINVAL, "client base URL must start with http:// or https://: %s",
                     base_url ? base_url : "(null)");
        return NULL;
    }
    if (opts->connect_timeout_ms < 0 || opts->timeout_ms < 0 || (opts->n_hooks && !opts->hooks)) {
        tb_error_set(err, TB_EINVAL, "client options for %s: negative timeout or NULL hooks",
                     base_url);
        return NULL;
    }
    o = *opts;
    if (tb__opts_resolve(&o, o.name, base_url, err) != 0 ||
        tb__fault_parse(o.fault, &fault, err) != 0)
        return NULL;
    const char *const tls_files[3][2] = {{"CA", o.tls_ca_file},
                                         {"certificate", o.tls_cert_file},
                                         {"key", o.tls_key_file}};
    for (int i = 0; i < 3; i++) {
        const char *f = tls_files[i][1];
        if (f && *f && access(f, R_OK) != 0) {
            tb_error_set(err, TB_EINVAL, "client for %s: TLS %s file %s: %s", base_url,
                         tls_files[i][0], f, strerror(errno));
            return NULL;
        }
    }
    if ((!o.tls_cert_file || !*o.tls_cert_file) && o.tls_key_file && *o.tls_key_file) {
        tb_error_set(err, TB_EINVAL, "client for %s: a TLS key file without a certificate file",
                     base_url);
        return NULL;
    }
    if (tb_global_init() != 0) {
        tb_error_set(err, TB_EIO, "curl_global_init failed");
        return NULL;
    }
    c = calloc(1, sizeof *c);
    if (!c)
        goto fail;
    c->opts = o;
    c->fault = fault;
    c->base_len = strlen(base_url);
    while (c->base_len > 0 && base_url[c->base_len - 1] == '/')
        c->base_len--;
    c->base_url = strndup(base_url, c->base_len);
    c->user_agent = strdup(o.user_agent ? o.user_agent : TB__USER_AGENT);
    c->name = o.name ? strdup(o.name) : NULL;
    c->fault_spec = o.fault ? strdup(o.fault) : NULL;
    if (!c->base_url || !c->user_agent || (o.name && !c->name) || (o.fault && !c->fault_spec))
        goto fail;
    const char *tls_src[3] = {o.tls_ca_file, o.tls_cert_file, o.tls_key_file};
    char **tls_dst[3] = {&c->tls_ca, &c->tls_cert, &c->tls_key};
    for (int i = 0; i < 3; i++) {
        if (tls_src[i] && *tls_src[i] && !(*tls_dst[i] = strdup(tls_src[i])))
            goto fail;
    }
    c->opts.tls_ca_file = c->tls_ca;
    c->opts.tls_cert_file = c->tls_cert;
    c->opts.tls_key_file = c->tls_key;
    c->opts.user_agent = c->user_agent;
    c->opts.name = c->name;
    c->opts.fault = c->fault_spec;
    if (!(c->safe_base = without_userinfo(c->base_url)))
        goto fail;
    c->label = c->name ? c->name : c->safe_base;
    c->env_retry = tb__opts_env_retry(c->name);
    if (!(c->host = url_host(c->base_url, &c->port)))
        goto fail;
    if (pthread_mutex_init(&c->mu, NULL) != 0)
        goto fail;
    mu_ok = true;
    if (pthread_mutex_init(&c->pmu, NULL) != 0)
        goto fail;
    pmu_ok = true;
    tb__budget_init(&c->budget, &c->opts.retry_budget);
    if (tb__breaker_init(&c->breaker, &c->opts.breaker) != 0)
        goto fail;
    /* One handle up front: a broken libcurl shows here rather than on the first call. */
    h = handle_new(c);
    if (!h)
        goto fail;
    c->idle = h;
    if (c->opts.breaker.enabled) {
        static const char *const labels[] = {"upstream", "state", NULL};
        tb_metric_family *f = tb_metrics_gauge(
            NULL, "tablium_client_breaker_state",
            "1 for the circuit breaker's current state per upstream, 0 for the others.", labels);
        static const tb_breaker_state states[3] = {TB_BREAKER_CLOSED, TB_BREAKER_OPEN,
                                                   TB_BREAKER_HALF_OPEN};
        for (int i = 0; f && i < 3; i++) {
            c->probes[i].c = c;
            c->probes[i].state = states[i];
            static const char *const names[3] = {"closed", "open", "half_open"};
            const char *vals[] = {c->label, names[i]};
            tb_metric_on_collect(f, vals, breaker_probe_read, &c->probes[i]);
        }
    }
    return c;
fail:
    if (c) {
        tb__breaker_deinit(&c->breaker);
        if (pmu_ok)
            pthread_mutex_destroy(&c->pmu);
        if (mu_ok)
            pthread_mutex_destroy(&c->mu);
        free(c->host);
        free(c->safe_base);
        free(c->tls_key);
        free(c->tls_cert);
        free(c->tls_ca);
        free(c->fault_spec);
        free(c->name);
        free(c->user_agent);
        free(c->base_url);
        free(c);
    }
    tb_error_set(err, TB_ENOMEM, "out of memory creating the client for %s", base_url);
    return NULL;
}

void tb_client_free(tb_client *c)
{
    if (!c)
        return;
    for (int i = 0; i < 3; i++)
        tb_metrics_fn_remove(NULL, &c->probes[i]);
    tb__handle *h = c->idle;
    while (h) {
        tb__handle *next = h->next;
        handle_free(h);
        h = next;
    }
    tb__breaker_deinit(&c->breaker);
    pthread_mutex_destroy(&c->pmu);
    pthread_mutex_destroy(&c->mu);
    free(c->host);
    free(c->safe_base);
    free(c->tls_key);
    free(c->tls_cert);
    free(c->tls_ca);
    free(c->fault_spec);
    free(c->name);
    free(c->user_agent);
    free(c->base_url);
    free(c);
}

const char *tb_client_base_url(const tb_client *c)
{
    return c ? c->base_url : NULL;
}

const tb_client_opts *tb_client_options(const tb_client *c)
{
    return c ? &c->opts : NULL;
}

void tb_client_stats_get(tb_client *c, tb_client_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!c)
        return;
    out->calls = atomic_load(&c->n_calls);
    out->attempts = atomic_load(&c->n_attempts);
    out->retries = atomic_load(&c->n_retries);
    out->budget_refusals = atomic_load(&c->n_budget_refusals);
    out->fast_fails = atomic_load(&c->n_fast_fails);
    out->bulkhead_rejections = atomic_load(&c->n_bulkhead_rejections);
    out->deadline_exceeded = atomic_load(&c->n_deadline_exceeded);
    out->faults_injected = atomic_load(&c->n_faults);
    out->fallbacks = atomic_load(&c->n_fallbacks);
    out->in_flight = atomic_load(&c->in_flight);
    int64_t now = tb_clock_ms();
    pthread_mutex_lock(&c->pmu);
    out->breaker_opens = c->breaker.opens;
    out->breaker_state = c->breaker.state;
    out->window_calls = c->breaker.n;
    tb__breaker_rates(&c->breaker, &out->failure_rate, &out->slow_call_rate);
    out->retry_budget_left = tb__budget_left(&c->budget, now);
    pthread_mutex_unlock(&c->pmu);
}

/* ---- headers ---- */

/* ASCII only: isalnum() follows the locale, and a header name or URL byte must not. */
static bool is_alnum(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

static bool is_tchar(unsigned char ch)
{
    return is_alnum(ch) || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* A method or header name: a non-empty RFC 9110 token (nothing that could split a line). */
static bool is_token(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++)
        if (!is_tchar((unsigned char)*s))
            return false;
    return true;
}

/* Headers that frame the message: libcurl writes them from the request itself. */
static bool is_framing(const char *name)
{
    static const char *const framing[] = {"Content-Length", "Transfer-Encoding", "Connection",
                                          "Host", "TE", "Trailer", "Upgrade", "Keep-Alive",
                                          "Proxy-Connection"};
    for (size_t i = 0; i < sizeof framing / sizeof framing[0]; i++)
        if (strcasecmp(name, framing[i]) == 0)
            return true;
    return false;
}

int tb_client_call_header(tb_client_call *call, tb_arena *a, const char *name, const char *value)
{
    if (!call || !a || !is_token(name) || is_framing(name) || !value ||
        strpbrk(value, "\r\n") || call->n_headers >= TB__MAX_EXTRA)
        return TB_EINVAL;
    size_t n = strlen(name), m = strlen(value);
    char *line = tb_arena_alloc(a, n + 2 + m + 1);
    if (!line)
        return TB_ENOMEM;
    memcpy(line, name, n);
    if (m == 0) {
        /* curl drops "Name:" (that form removes a header); "Name;" is how it sends an empty one. */
        memcpy(line + n, ";", 2);
    } else {
        memcpy(line + n, ": ", 2);
        memcpy(line + n + 2, value, m + 1);
    }
    call->headers[call->n_headers++] = line;
    return 0;
}

const char *tb_client_res_header(const tb_client_res *res, const char *name)
{
    if (!res || !name)
        return NULL;
    for (size_t i = 0; i < res->n_headers; i++)
        if (strcasecmp(res->headers[i][0], name) == 0)
            return res->headers[i][1];
    return NULL;
}

/* Whether the call sets header `name` itself (then the default is left out). */
static bool call_has_header(const tb_client_call *call, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < call->n_headers; i++) {
        const char *h = call->headers[i];
        if (strncasecmp(h, name, n) == 0 && (h[n] == ':' || h[n] == ';'))
            return true;
    }
    return false;
}

/* ---- sending ---- */

static char tb__empty[1];

static double ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* The handle carries the previous call's method, so every call sets all of them. */
static CURLcode set_method(CURL *e, const tb_client_call *call, size_t c_max)
{
    const char *m = call->method;
    CURLcode cc;
    bool get = strcmp(m, "GET") == 0, head = strcmp(m, "HEAD") == 0;
    /* Lets curl refuse a declared Content-Length over the bound before reading the body (the
     * write callback still enforces it for chunked bodies). Not for HEAD: its Content-Length
     * describes a body that never comes. 0 means "no limit" to curl. */
    curl_off_t max_file = 0;
    if (!head && c_max > 0 && c_max <= (size_t)INT64_MAX)
        max_file = (curl_off_t)c_max;
    if ((cc = curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, max_file)) != CURLE_OK)
        return cc;
    /* Bodiless POST/PUT/PATCH still send Content-Length: 0, which some servers insist on. */
    bool with_body =
        call->body || strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0;
    if (with_body) {
        if ((cc = curl_easy_setopt(e, CURLOPT_NOBODY, 0L)) != CURLE_OK ||
            (cc = curl_easy_setopt(e, CURLOPT_POSTFIELDS, call->body ? call->body : "")) !=
                CURLE_OK ||
            (cc = curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                                   (curl_off_t)(call->body ? call->body_len : 0))) != CURLE_OK)
            return cc;
        return curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, strcmp(m, "POST") == 0 ? NULL : m);
    }
    if ((cc = curl_easy_setopt(e, CURLOPT_HTTPGET, 1L)) != CURLE_OK ||
        (cc = curl_easy_setopt(e, CURLOPT_NOBODY, head ? 1L : 0L)) != CURLE_OK)
        return cc;
    /* HEAD goes through NOBODY: a CUSTOMREQUEST "HEAD" makes curl wait for a body. */
    return curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, get || head ? NULL : m);
}

/* The server's certificate was refused, or ours could not be used: trying again cannot help. */
static bool tls_verify_failed(CURLcode cc)
{
    return cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE ||
           cc == CURLE_SSL_CERTPROBLEM || cc == CURLE_SSL_ISSUER_ERROR ||
           cc == CURLE_SSL_INVALIDCERTSTATUS || cc == CURLE_SSL_PINNEDPUBKEYNOTMATCH;
}

static int map_curl(CURLcode cc, const tb__xfer *x)
{
    if (x->oom)
        return TB_ENOMEM;
    if (x->too_big)
        return TB_ETOOBIG;
    if (tls_verify_failed(cc))
        return TB_ECONN;
    switch (cc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR: return TB_ECONN;
    case CURLE_OPERATION_TIMEDOUT: return TB_ETIMEDOUT;
    case CURLE_FILESIZE_EXCEEDED: return TB_ETOOBIG;
    case CURLE_OUT_OF_MEMORY: return TB_ENOMEM;
    default: return TB_EIO;
    }
}


/* What a TLS failure is called in the error message ("" for others). */
static const char *tls_failure(CURLcode cc, bool https, bool answered)
{
    if (tls_verify_failed(cc))
        return "TLS: certificate verify failed: ";
    if (cc == CURLE_SSL_CONNECT_ERROR)
        return "TLS: handshake failed: ";
    /* TLS 1.3 ends the client's handshake before the server has checked the client's
     * certificate: a refusal (an alert, then a close that often overtakes it as a reset)
     * shows on the first send or read. */
    if (https && !answered && (cc == CURLE_RECV_ERROR || cc == CURLE_SEND_ERROR))
        return "TLS: closed by the server before any answer (does it require a client "
               "certificate it trusts?): ";
    return "";
}

/* One attempt: try_ms bounds it (0: no bound); *ccp gets curl's code. */
/* The client span of one attempt: OpenTelemetry's HTTP client conventions. */
static tb_span *client_span(tb_client *c, tb_ctx *ctx, const tb_client_call *call, int resend,
                            const char *url)
{
    tb_span *sp = tb_span_start(ctx, NULL, TB_SPAN_CLIENT);
    if (!sp->sampled)
        return sp;
    if (call->route) {
        char name[128];
        snprintf(name, sizeof name, "%s %s", call->method, call->route);
        tb_span_set_name(sp, name);
        tb_span_set_str(sp, "url.template", call->route);
    } else {
        tb_span_set_name(sp, call->method);
    }
    tb_span_set_str(sp, "http.request.method", call->method);
    tb_span_set_str(sp, "server.address", c->host);
    tb_span_set_int(sp, "server.port", c->port);
    /* url.full without credentials and query (either may hold secrets: OpenTelemetry says to
     * redact them) */
    (void)url;
    char full[512];
    snprintf(full, sizeof full, "%s%.*s", c->safe_base, (int)strcspn(call->path, "?#"),
             call->path);
    tb_span_set_str(sp, "url.full", full);
    if (resend > 0)
        tb_span_set_int(sp, "http.request.resend_count", resend);
    if (c->name)
        tb_span_set_str(sp, "peer.service", c->name);
    if (call->operation_id)
        tb_span_set_str(sp, "tablium.operation_id", call->operation_id);
    return sp;
}

static void client_span_end(tb_span *sp, int rc, const tb_client_res *res, const tb_error *err)
{
    if (sp->sampled) {
        if (rc == 0) {
            tb_span_set_int(sp, "http.response.status_code", res->status);
            if (res->status >= 400) {
                char code[16];
                snprintf(code, sizeof code, "%d", res->status);
                tb_span_set_str(sp, "error.type", code);
                tb_span_set_status(sp, TB_STATUS_ERROR, NULL);
            }
        } else {
            tb_span_set_str(sp, "error.type", tb_err_name(rc));
            tb_span_set_status(sp, TB_STATUS_ERROR, err ? err->message : NULL);
        }
    }
    tb_span_end(sp);
}

static int perform(tb_client *c, tb_ctx *ctx, const tb_client_call *call, bool idempotent,
                   tb_client_res *res, long try_ms, int resend, CURLcode *ccp, tb_error *err)
{
    tb_arena *a = ctx->arena;
    struct curl_slist lines[TB__MAX_LINES];
    size_t n = 0;
    tb__handle *h = NULL;
    tb__xfer x = {0};
    int rc = 0;
    size_t plen = strlen(call->path);
    char *url = tb_arena_alloc(a, c->base_len + plen + 1);
    char *rid = tb_arena_alloc(a, sizeof "X-Request-ID: " + strlen(ctx->request_id));
    if (!url || !rid)
        return tb_error_set(err, TB_ENOMEM, "%s %s%s: out of memory", call->method, c->base_url,
                            call->path);
    memcpy(url, c->base_url, c->base_len);
    memcpy(url + c->base_len, call->path, plen + 1);
    strcpy(rid, "X-Request-ID: ");
    strcat(rid, ctx->request_id);

    /* The list lives on the stack (curl only reads it during the transfer): no malloc per call
     * the way curl_slist_append would. curl_slist.data is not const but is never written. */
    if (!call_has_header(call, "Accept"))
        lines[n++].data = (char *)"Accept: application/json";
    if (!call_has_header(call, "Content-Type"))
        lines[n++].data = call->body ? (char *)"Content-Type: application/json"
                                     : (char *)"Content-Type:"; /* no form type on empty POST */
    /* Over 1 MiB curl 7.88 asks for "100 Continue" and waits for it (up to 1 s) before sending
     * the body: a round trip a JSON API never needs. */
    lines[n++].data = (char *)"Expect:";
    if (!call_has_header(call, "X-Request-ID"))
        lines[n++].data = rid;
    char budget[sizeof TB_DEADLINE_HEADER ": " + 24];
    if (try_ms > 0 && !call_has_header(call, TB_DEADLINE_HEADER)) {
        snprintf(budget, sizeof budget, "%s: %ld", TB_DEADLINE_HEADER, try_ms);
        lines[n++].data = budget;
    }
    /* W3C trace context: this attempt's span is the callee's parent. */
    tb_span *sp = client_span(c, ctx, call, resend, url);
    char tp[sizeof "traceparent: " + TB_TRACEPARENT_LEN];
    if (tb_span_context_valid(&sp->sc) && !call_has_header(call, "traceparent")) {
        memcpy(tp, "traceparent: ", sizeof "traceparent: " - 1);
        tb_traceparent_encode(&sp->sc, tp + sizeof "traceparent: " - 1);
        lines[n++].data = tp;
        if (sp->tracestate[0] && !call_has_header(call, "tracestate")) {
            size_t tl = strlen(sp->tracestate);
            char *ts = tb_arena_alloc(a, sizeof "tracestate: " + tl);
            if (ts) {
                memcpy(ts, "tracestate: ", sizeof "tracestate: " - 1);
                memcpy(ts + sizeof "tracestate: " - 1, sp->tracestate, tl + 1);
                lines[n++].data = ts;
            }
        }
    }
    for (size_t i = 0; i < call->n_headers; i++)
        lines[n++].data = (char *)call->headers[i];
    for (size_t i = 0; i < n; i++)
        lines[i].next = i + 1 < n ? &lines[i + 1] : NULL;

    h = pool_get(c);
    if (!h) {
        rc = tb_error_set(err, TB_ENOMEM, "%s %s: out of memory", call->method, url);
        client_span_end(sp, rc, res, err);
        return rc;
    }
    CURL *e = h->curl;
    h->errbuf[0] = '\0';
    tb_buf_reset(&h->body);
    x.h = h;
    x.arena = a;
    x.max = c->opts.max_response;
    x.once = !idempotent;

    CURLcode cc;
    if ((cc = curl_easy_setopt(e, CURLOPT_URL, url)) != CURLE_OK ||
        (cc = curl_easy_setopt(e, CURLOPT_HTTPHEADER, lines)) != CURLE_OK ||
        (cc = curl_easy_setopt(e, CURLOPT_WRITEDATA, &x)) != CURLE_OK ||
        (cc = curl_easy_setopt(e, CURLOPT_HEADERDATA, &x)) != CURLE_OK ||
        (cc = curl_easy_setopt(e, CURLOPT_PREREQDATA, &x)) != CURLE_OK ||
        (cc = curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, try_ms)) != CURLE_OK ||
        (cc = set_method(e, call, c->opts.max_response)) != CURLE_OK) {
        *ccp = cc;
        rc = map_curl(cc, &x);
        tb_error_set(err, rc, "%s %s: %s", call->method, url, curl_easy_strerror(cc));
        goto done;
    }

    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cc = curl_easy_perform(e);
    res->elapsed_ms = ms_since(&t0);
    *ccp = cc;
    if (cc == CURLE_ABORTED_BY_CALLBACK && x.sends > 1) {
        /* As the connection broke: a reset, which this call is never retried for. */
        *ccp = CURLE_RECV_ERROR;
        rc = tb_error_set(err, TB_ECONN,
                          "%s %s: connection closed without an answer; not sent again (not "
                          "idempotent: no Idempotency-Key)",
                          call->method, url);
        goto done;
    }
    if (cc != CURLE_OK) {
        rc = map_curl(cc, &x);
        if (rc == TB_ETOOBIG)
            tb_error_set(err, rc, "%s %s: response larger than max_response (%zu bytes)",
                         call->method, url, c->opts.max_response);
        else {
            const char *detail = h->errbuf[0] ? h->errbuf : curl_easy_strerror(cc);
            bool https = has_prefix_ci(c->base_url, "https://");
            tb_error_set(err, rc, "%s %s: %s%s", call->method, url,
                         tls_failure(cc, https, x.n_hdrs > 0), detail);
        }
        goto done;
    }

    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    char *body = tb_arena_alloc(a, h->body.len + 1);
    if (!body) {
        rc = tb_error_set(err, TB_ENOMEM, "%s %s: out of memory for the response", call->method,
                          url);
        goto done;
    }
    if (h->body.len)
        memcpy(body, h->body.data, h->body.len);
    body[h->body.len] = '\0';
    res->status = (int)status;
    res->body = body;
    res->body_len = h->body.len;
    res->headers = x.hdrs;
    res->n_headers = x.n_hdrs;

done:
    /* Nothing on the pooled handle may point into this call's stack or arena. */
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, NULL);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, NULL);
    curl_easy_setopt(e, CURLOPT_PREREQDATA, NULL);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, NULL);
    if (h->body.cap > TB__BODY_KEEP)
        tb_buf_deinit(&h->body);
    pool_put(c, h);
    client_span_end(sp, rc, res, err);
    return rc;
}

/* ---- policies around the attempts ---- */

static bool is_idempotent(const tb_client_call *call)
{
    static const char *const safe[] = {"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"};
    for (size_t i = 0; i < sizeof safe / sizeof safe[0]; i++)
        if (strcmp(call->method, safe[i]) == 0)
            return true;
    return call_has_header(call, "Idempotency-Key");
}

static bool connect_failed(CURLcode cc)
{
    return cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST ||
           cc == CURLE_COULDNT_RESOLVE_PROXY;
}

/* The TB_RETRY_ON_* reason an attempt's result matches (0: none). */
static unsigned retry_reason(int rc, CURLcode cc, const tb_client_res *res)
{
    if (rc == TB_ECONN && tls_verify_failed(cc))
        return 0;
    if (rc == TB_ECONN)
        return connect_failed(cc) ? TB_RETRY_ON_CONNECT_FAILURE : TB_RETRY_ON_RESET;
    if (rc == TB_ETIMEDOUT)
        return TB_RETRY_ON_TIMEOUT;
    if (rc != 0)
        return 0;
    switch (res->status) {
    case 429: return TB_RETRY_ON_429;
    case 502: return TB_RETRY_ON_502 | TB_RETRY_ON_5XX;
    case 503: return TB_RETRY_ON_503 | TB_RETRY_ON_5XX;
    case 504: return TB_RETRY_ON_504 | TB_RETRY_ON_5XX;
    default: return res->status >= 500 && res->status <= 599 ? TB_RETRY_ON_5XX : 0;
    }
}

static int breaker_outcome(const tb_client *c, int rc, const tb_client_res *res, double ms)
{
    unsigned rec = c->opts.breaker.record;
    bool fail;
    if (rc == TB_ECONN || rc == TB_EIO)
        fail = rec & TB_BREAKER_RECORD_TRANSPORT;
    else if (rc == TB_ETIMEDOUT)
        fail = rec & TB_BREAKER_RECORD_TIMEOUT;
    else if (rc == 0 || rc == TB_ETOOBIG)
        fail = (res->status >= 500 && res->status <= 599 && (rec & TB_BREAKER_RECORD_5XX)) ||
               (res->status == 429 && (rec & TB_BREAKER_RECORD_429));
    else
        return TB__OUTCOME_IGNORE;
    bool slow = ms >= (double)c->opts.breaker.slow_call_duration_threshold_ms;
    return (fail ? TB__OUTCOME_FAIL : 0) | (slow ? TB__OUTCOME_SLOW : 0);
}

static void log_transition(const tb_client *c, const tb_ctx *ctx, const tb__transition *t)
{
    if (!t->changed)
        return;
    /* The label goes into JSON unescaped only when it needs no escaping. */
    bool plain = true;
    for (const char *p = c->label; *p; p++)
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
            plain = false;
    char fields[384];
    snprintf(fields, sizeof fields,
             "\"upstream\":\"%.200s\",\"breaker\":\"%s\",\"from\":\"%s\",\"calls\":%d,"
             "\"failureRate\":%.1f,\"slowCallRate\":%.1f",
             plain ? c->label : "?", tb_breaker_state_name(t->to), tb_breaker_state_name(t->from),
             t->calls, t->failure_rate, t->slow_rate);
    if (t->to == TB_BREAKER_OPEN)
        tb_log_fields(TB_LOG_WARN, ctx, fields,
                      "circuit breaker of %s opened (%s, failure rate %.0f%%, slow %.0f%% over %d "
                      "calls): failing fast for %ld ms",
                      c->label, tb_breaker_state_name(t->from), t->failure_rate, t->slow_rate,
                      t->calls, c->opts.breaker.wait_duration_in_open_state_ms);
    else
        tb_log_fields(TB_LOG_INFO, ctx, fields, "circuit breaker of %s %s (was %s)", c->label,
                      tb_breaker_state_name(t->to), tb_breaker_state_name(t->from));
}

static void sleep_ms(long ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static const char tb__fault_body[] =
    "{\"error\":{\"code\":\"fault_injected\",\"message\":\"fault injected by the client\"}}";

/* One attempt with the fault knob applied: may sleep, answer or drop instead of sending. */
static int attempt(tb_client *c, tb_ctx *ctx, const tb_client_call *call, bool idempotent,
                   tb_client_res *res, long try_ms, int resend, CURLcode *cc, tb_error *err)
{
    *cc = CURLE_OK;
    if (!c->fault.on)
        return perform(c, ctx, call, idempotent, res, try_ms, resend, cc, err);
    const tb__fault *f = &c->fault;
    if (f->delay_ms > 0 && tb__rand_unit() * 100.0 < f->delay_pct) {
        atomic_fetch_add(&c->n_faults, 1);
        tb_log_debug(ctx, "fault injected on %s: delay %ld ms", c->label, f->delay_ms);
        if (try_ms > 0 && f->delay_ms >= try_ms) {
            sleep_ms(try_ms);
            *cc = CURLE_OPERATION_TIMEDOUT;
            return tb_error_set(err, TB_ETIMEDOUT,
                                "%s %s%s: timed out after %ld ms (injected delay of %ld ms)",
                                call->method, c->base_url, call->path, try_ms, f->delay_ms);
        }
        sleep_ms(f->delay_ms);
        if (try_ms > 0)
            try_ms -= f->delay_ms;
    }
    double draw = tb__rand_unit() * 100.0;
    if (draw < f->abort_pct) {
        atomic_fetch_add(&c->n_faults, 1);
        tb_log_debug(ctx, "fault injected on %s: abort %d", c->label, f->abort_status);
        char *body = tb_arena_strndup(ctx->arena, tb__fault_body, sizeof tb__fault_body - 1);
        if (!body)
            return tb_error_set(err, TB_ENOMEM, "%s %s%s: out of memory", call->method, c->base_url,
                                call->path);
        res->status = f->abort_status;
        res->body = body;
        res->body_len = sizeof tb__fault_body - 1;
        return 0;
    }
    if (draw < f->abort_pct + f->drop_pct) {
        atomic_fetch_add(&c->n_faults, 1);
        tb_log_debug(ctx, "fault injected on %s: drop", c->label);
        *cc = CURLE_RECV_ERROR;
        return tb_error_set(err, TB_ECONN, "%s %s%s: connection dropped (fault injected)",
                            call->method, c->base_url, call->path);
    }
    return perform(c, ctx, call, idempotent, res, try_ms, resend, cc, err);
}

static void reset_res(tb_client_res *res)
{
    memset(res, 0, sizeof *res);
    res->body = tb__empty;
}

/* Bulkhead, breaker, attempts, retries and backoff; deadline is 0 (none) or monotonic ms. */
static int send_with_policies(tb_client *c, tb_ctx *ctx, const tb_client_call *call,
                              tb_client_res *res, int64_t deadline, tb_error *err)
{
    const tb_retry_policy *rp = &c->opts.retry;
    tb_retry_policy own;
    if (call->retry) { /* the operation's (x-tablium-retry), under the environment's knobs */
        own = *call->retry;
        tb__retry_overlay(&own, &c->opts.retry, c->env_retry);
        rp = &own;
    }
    int cap = c->opts.max_concurrent_calls;
    int rc = 0, n = 0;
    if (atomic_fetch_add(&c->in_flight, 1) >= cap && cap > 0) {
        atomic_fetch_sub(&c->in_flight, 1);
        atomic_fetch_add(&c->n_bulkhead_rejections, 1);
        return tb_error_set(err, TB_EBUSY,
                            "%s %s%s: %d calls to %s already in flight (max_concurrent_calls)",
                            call->method, c->base_url, call->path, cap, c->label);
    }
    bool idempotent = is_idempotent(call);
    tb__transition t;
    pthread_mutex_lock(&c->pmu);
    tb__budget_deposit(&c->budget, tb_clock_ms());
    pthread_mutex_unlock(&c->pmu);
    for (;;) {
        int64_t now = tb_clock_ms();
        long left = deadline ? (long)(deadline - now) : 0;
        if (deadline && left <= 0) {
            if (n == 0)
                rc = tb_error_set(err, TB_ETIMEDOUT, "%s %s%s: no time left before sending",
                                  call->method, c->base_url, call->path);
            break; /* after a wait: the last attempt's result stands */
        }
        uint64_t ticket;
        pthread_mutex_lock(&c->pmu);
        int brc = tb__breaker_acquire(&c->breaker, now, &ticket, &t);
        pthread_mutex_unlock(&c->pmu);
        log_transition(c, ctx, &t);
        if (brc != 0) {
            if (n == 0) {
                atomic_fetch_add(&c->n_fast_fails, 1);
                rc = tb_error_set(err, TB_EOPEN, "%s %s%s: circuit breaker of %s is open",
                                  call->method, c->base_url, call->path, c->label);
            }
            break;
        }
        long try_ms = left;
        if (rp->per_try_timeout_ms > 0 && (try_ms == 0 || rp->per_try_timeout_ms < try_ms))
            try_ms = rp->per_try_timeout_ms;
        reset_res(res);
        tb_error_reset(err);
        n++;
        atomic_fetch_add(&c->n_attempts, 1);
        CURLcode cc;
        int64_t t0 = tb_clock_ms();
        rc = attempt(c, ctx, call, idempotent, res, try_ms, n - 1, &cc, err);
        now = tb_clock_ms();
        pthread_mutex_lock(&c->pmu);
        tb__breaker_record(&c->breaker, ticket, breaker_outcome(c, rc, res, (double)(now - t0)),
                           now, &t);
        pthread_mutex_unlock(&c->pmu);
        log_transition(c, ctx, &t);

        if (!idempotent || n >= rp->max_attempts || !(retry_reason(rc, cc, res) & rp->retry_on))
            break;
        long wait = tb__backoff_ms(rp, n);
        const char *ra = rc == 0 ? tb_client_res_header(res, "Retry-After") : NULL;
        if (ra) {
            long ms = tb__retry_after_ms(ra);
            if (ms >= 0)
                wait = ms;
        }
        if (deadline && now + wait >= deadline)
            break;
        pthread_mutex_lock(&c->pmu);
        bool granted = tb__budget_withdraw(&c->budget, now);
        pthread_mutex_unlock(&c->pmu);
        if (!granted) {
            atomic_fetch_add(&c->n_budget_refusals, 1);
            break;
        }
        atomic_fetch_add(&c->n_retries, 1);
        sleep_ms(wait);
    }
    atomic_fetch_sub(&c->in_flight, 1);
    res->attempts = n;
    if (rc != 0 && n > 1 && err) {
        size_t len = strlen(err->message);
        snprintf(err->message + len, sizeof err->message - len, " (after %d attempts)", n);
    }
    return rc;
}

static bool failed(int rc, const tb_client_res *res)
{
    if (rc == 0)
        return res->status >= 500 && res->status <= 599;
    return rc == TB_EOPEN || rc == TB_EBUSY || rc == TB_ECONN || rc == TB_ETIMEDOUT || rc == TB_EIO;
}

int tb_client_send(tb_client *c, tb_ctx *ctx, tb_client_call *call, tb_client_res *res,
                   tb_error *err)
{
    size_t ran = 0;
    int rc = 0;
    tb_error_reset(err);
    if (res)
        reset_res(res);
    if (!c || !ctx || !ctx->arena || !call || !res || !is_token(call->method) || !call->path ||
        call->path[0] != '/')
        return tb_error_set(err, TB_EINVAL,
                            "client call: missing client, ctx, arena or response, "
                            "or a bad method, or a path not starting with '/'");
    if (!ctx->request_id) {
        char id[33];
        tb_request_id_new(id);
        ctx->request_id = tb_arena_strdup(ctx->arena, id);
        if (!ctx->request_id)
            return tb_error_set(err, TB_ENOMEM, "%s %s%s: out of memory", call->method, c->base_url,
                                call->path);
    }
    /* It may have come from an incoming request's header; it goes into ours verbatim. */
    if (strpbrk(ctx->request_id, "\r\n"))
        return tb_error_set(err, TB_EINVAL, "%s %s%s: CR/LF in ctx->request_id", call->method,
                            c->base_url, call->path);
    atomic_fetch_add(&c->n_calls, 1);
    struct timespec call_t0;
    clock_gettime(CLOCK_MONOTONIC, &call_t0);
    int64_t now = tb_clock_ms();
    int64_t deadline = c->opts.timeout_ms > 0 ? now + c->opts.timeout_ms : 0;
    if (ctx->deadline_ms > 0) {
        if (ctx->deadline_ms <= now) {
            atomic_fetch_add(&c->n_deadline_exceeded, 1);
            return tb_error_set(err, TB_ETIMEDOUT,
                                "%s %s%s: the request's deadline passed %" PRId64
                                " ms ago; not sent",
                                call->method, c->base_url, call->path, now - ctx->deadline_ms);
        }
        if (deadline == 0 || ctx->deadline_ms < deadline)
            deadline = ctx->deadline_ms;
    }
    const tb_client_hook *hooks = c->opts.hooks;
    for (; ran < c->opts.n_hooks; ran++) {
        if (!hooks[ran].before)
            continue;
        rc = hooks[ran].before(hooks[ran].self, ctx, call);
        if (rc != 0) {
            tb_error_set(err, rc, "%s %s%s: refused by client hook %s (%s)", call->method,
                         c->base_url, call->path, hooks[ran].name ? hooks[ran].name : "?",
                         tb_err_name(rc));
            goto after;
        }
    }
    /* Checked after the hooks, which may have added lines. */
    if (call->n_headers > TB__MAX_EXTRA) {
        rc = tb_error_set(err, TB_EINVAL, "%s %s%s: more than %zu extra headers", call->method,
                          c->base_url, call->path, (size_t)TB__MAX_EXTRA);
        goto after;
    }
    for (size_t i = 0; i < call->n_headers; i++) {
        if (!call->headers[i] || strpbrk(call->headers[i], "\r\n")) {
            rc = tb_error_set(err, TB_EINVAL, "%s %s%s: header line %zu is NULL or has CR/LF",
                              call->method, c->base_url, call->path, i);
            goto after;
        }
    }
    /* Outside a span (a job, a CLI, a test): one span for the call, so its attempts share a
     * trace, continuing ctx->traceparent when it has one. */
    tb_span *call_span = NULL;
    if (!ctx->span) {
        tb_span_context parent;
        bool has = ctx->traceparent &&
                   tb_traceparent_decode(ctx->traceparent, strlen(ctx->traceparent), &parent);
        char name[128];
        snprintf(name, sizeof name, "%s %s", call->method, call->route ? call->route : c->label);
        call_span = tb_span_start_with(name, TB_SPAN_INTERNAL, has ? &parent : NULL, NULL);
        ctx->span = call_span;
    }
    rc = send_with_policies(c, ctx, call, res, deadline, err);
    if (call_span) {
        ctx->span = NULL;
        if (call_span->sampled && (rc != 0 || res->status >= 500))
            tb_span_set_status(call_span, TB_STATUS_ERROR, rc && err ? err->message : NULL);
        tb_span_end(call_span);
    }
    const tb_client_fallback *fb = call->fallback.fn ? &call->fallback : &c->opts.fallback;
    if (fb->fn && failed(rc, res)) {
        int attempts = res->attempts;
        if (rc != 0)
            reset_res(res);
        int frc = fb->fn(fb->self, ctx, call, rc, res);
        res->attempts = attempts;
        if (frc == 0) {
            atomic_fetch_add(&c->n_fallbacks, 1);
            tb_error_reset(err);
        } else if (frc != rc) {
            tb_error_set(err, frc, "%s %s%s: fallback failed (%s) after %s", call->method,
                         c->base_url, call->path, tb_err_name(frc),
                         rc ? tb_err_name(rc) : "a 5xx answer");
        }
        rc = frc;
    }
after:
    while (ran-- > 0)
        if (hooks[ran].after)
            hooks[ran].after(hooks[ran].self, ctx, call, rc, res);
    {
        const char *outcome = rc == 0 ? (res->status >= 500 ? "error" : "ok")
                              : rc == TB_ETIMEDOUT ? "timeout"
                              : rc == TB_EOPEN     ? "open"
                              : rc == TB_EBUSY     ? "busy"
                                                   : "error";
        tb_metrics_http_client(c->label, call->operation_id ? call->operation_id : "",
                               call->method, rc == 0 ? res->status : 0, outcome,
                               ms_since(&call_t0) / 1e3, res->attempts > 1 ? res->attempts - 1 : 0);
    }
    return rc;
}

/* ---- URL encoding ---- */

static bool is_unreserved(unsigned char ch)
{
    return is_alnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

int tb_url_encode(tb_buf *b, const char *s, size_t len, bool query)
{
    static const char hex[] = "0123456789ABCDEF";
    /* Only unreserved characters pass in either component: sub-delims such as '+', '&', '='
     * and ';' are legal in a path but read as separators or spaces by enough servers that
     * encoding them is the only choice that round-trips everywhere. */
    (void)query;
    if (len == 0)
        return b->oom ? TB_ENOMEM : 0;
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (is_unreserved(ch))
            continue;
        tb_buf_append(b, s + run, i - run);
        char esc[3] = {'%', hex[ch >> 4], hex[ch & 0xf]};
        tb_buf_append(b, esc, 3);
        run = i + 1;
    }
    tb_buf_append(b, s + run, len - run);
    return b->oom ? TB_ENOMEM : 0;
}
