#include "tablium/client.h"

#include <ctype.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define TB__USER_AGENT "tablium/0.1.0"
#define TB__MAX_EXTRA (sizeof((tb_client_call *)0)->headers / sizeof(const char *))
/* Accept, Content-Type, Expect and X-Request-ID, then the call's own lines. */
#define TB__MAX_LINES (4 + TB__MAX_EXTRA)
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

char *tb_service_url(const char *name, const char *fallback)
{
    static const char suffix[] = "_SERVICE_URL";
    const char *url = NULL;
    if (name && *name) {
        size_t n = strlen(name);
        char *var = malloc(n + sizeof suffix);
        if (!var)
            return NULL;
        for (size_t i = 0; i < n; i++) {
            char ch = (char)toupper((unsigned char)name[i]);
            var[i] = ch == '-' ? '_' : ch;
        }
        memcpy(var + n, suffix, sizeof suffix);
        url = getenv(var);
        free(var);
    }
    /* An exported-but-empty variable (FOO_SERVICE_URL=) is how shells unset things in
     * compose files; treat it as absent rather than as a URL. */
    if (!url || !*url)
        url = fallback;
    if (!url || !*url)
        url = "http://127.0.0.1:8080";
    size_t len = strlen(url);
    while (len > 1 && url[len - 1] == '/')
        len--;
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
    tb_client_opts opts;
    pthread_mutex_t mu;
    tb__handle *idle; /* LIFO: the most recently used handle has the warmest connection */
};

/* What the curl callbacks of one transfer write into. */
typedef struct tb__xfer {
    tb__handle *h;
    tb_arena *arena;
    size_t max;
    bool too_big;
    bool oom;
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
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, c->opts.timeout_ms) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_USERAGENT, c->user_agent) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, h->errbuf) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK)
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

static bool has_prefix_ci(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

tb_client *tb_client_new(const char *base_url, const tb_client_opts *opts, tb_error *err)
{
    static const tb_client_opts defaults = TB_CLIENT_OPTS_INIT;
    tb_client *c = NULL;
    tb__handle *h = NULL;
    bool mu_ok = false;
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
    if (tb_global_init() != 0) {
        tb_error_set(err, TB_EIO, "curl_global_init failed");
        return NULL;
    }
    c = calloc(1, sizeof *c);
    if (!c)
        goto fail;
    c->opts = *opts;
    c->base_len = strlen(base_url);
    while (c->base_len > 0 && base_url[c->base_len - 1] == '/')
        c->base_len--;
    c->base_url = strndup(base_url, c->base_len);
    c->user_agent = strdup(opts->user_agent ? opts->user_agent : TB__USER_AGENT);
    if (!c->base_url || !c->user_agent)
        goto fail;
    c->opts.user_agent = c->user_agent;
    if (pthread_mutex_init(&c->mu, NULL) != 0)
        goto fail;
    mu_ok = true;
    /* One handle up front: a broken libcurl shows here rather than on the first call. */
    h = handle_new(c);
    if (!h)
        goto fail;
    c->idle = h;
    return c;
fail:
    if (c) {
        if (mu_ok)
            pthread_mutex_destroy(&c->mu);
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
    tb__handle *h = c->idle;
    while (h) {
        tb__handle *next = h->next;
        handle_free(h);
        h = next;
    }
    pthread_mutex_destroy(&c->mu);
    free(c->user_agent);
    free(c->base_url);
    free(c);
}

const char *tb_client_base_url(const tb_client *c)
{
    return c ? c->base_url : NULL;
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

int tb_client_call_header(tb_client_call *call, tb_arena *a, const char *name, const char *value)
{
    if (!call || !a || !is_token(name) || !value || strpbrk(value, "\r\n") ||
        call->n_headers >= TB__MAX_EXTRA)
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

static int map_curl(CURLcode cc, const tb__xfer *x)
{
    if (x->oom)
        return TB_ENOMEM;
    if (x->too_big)
        return TB_ETOOBIG;
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

static int perform(tb_client *c, tb_ctx *ctx, const tb_client_call *call, tb_client_res *res,
                   tb_error *err)
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
    for (size_t i = 0; i < call->n_headers; i++)
        lines[n++].data = (char *)call->headers[i];
    for (size_t i = 0; i < n; i++)
        lines[i].next = i + 1 < n ? &lines[i + 1] : NULL;

    h = pool_get(c);
    if (!h)
        return tb_error_set(err, TB_ENOMEM, "%s %s: out of memory", call->method, url);
    CURL *e = h->curl;
    h->errbuf[0] = '\0';
    tb_buf_reset(&h->body);
    x.h = h;
    x.arena = a;
    x.max = c->opts.max_response;

    CURLcode cc;
    if ((cc = curl_easy_setopt(e, CURLOPT_URL, url)) != CURLE_OK ||
        (cc = curl_easy_setopt(e, CURLOPT_HTTPHEADER, lines)) != CURLE_OK ||
        (cc = curl_easy_setopt(e, CURLOPT_WRITEDATA, &x)) != CURLE_OK ||
        (cc = curl_easy_setopt(e, CURLOPT_HEADERDATA, &x)) != CURLE_OK ||
        (cc = set_method(e, call, c->opts.max_response)) != CURLE_OK) {
        rc = map_curl(cc, &x);
        tb_error_set(err, rc, "%s %s: %s", call->method, url, curl_easy_strerror(cc));
        goto done;
    }

    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cc = curl_easy_perform(e);
    res->elapsed_ms = ms_since(&t0);
    if (cc != CURLE_OK) {
        rc = map_curl(cc, &x);
        if (rc == TB_ETOOBIG)
            tb_error_set(err, rc, "%s %s: response larger than max_response (%zu bytes)",
                         call->method, url, c->opts.max_response);
        else
            tb_error_set(err, rc, "%s %s: %s", call->method, url,
                         h->errbuf[0] ? h->errbuf : curl_easy_strerror(cc));
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
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, NULL);
    if (h->body.cap > TB__BODY_KEEP)
        tb_buf_deinit(&h->body);
    pool_put(c, h);
    return rc;
}

int tb_client_send(tb_client *c, tb_ctx *ctx, tb_client_call *call, tb_client_res *res,
                   tb_error *err)
{
    size_t ran = 0;
    int rc = 0;
    tb_error_reset(err);
    if (res) {
        memset(res, 0, sizeof *res);
        res->body = tb__empty;
    }
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
    rc = perform(c, ctx, call, res, err);
after:
    while (ran-- > 0)
        if (hooks[ran].after)
            hooks[ran].after(hooks[ran].self, ctx, call, rc, res);
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
