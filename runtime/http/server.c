#include "tablium/http.h"
#include "tablium/op.h"
#include "tablium/jwt.h"
#include "tablium/log.h"
#include "tablium/metrics.h"
#include "tablium/trace.h"

#include "internal.h"
#include "../trace/tb_span_put.h"

#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#define TB__MAX_MIDDLEWARES 16
/* Once a chunked body is over the limit, this much more is read and thrown away so the client
 * still gets its 413 (libmicrohttpd cannot answer in the middle of an upload); beyond it the
 * connection is closed. */
#define TB__DRAIN_MIN (64u * 1024u)
/* A connection keeps its buffers between requests unless one grew past this. */
#define TB__KEEP_BUF (64u * 1024u)

/* GnuTLS's gnutls_datum_t (looked up, not linked: see tls_require) */
typedef struct tb__datum {
    unsigned char *data;
    unsigned int size;
} tb__datum;

struct tb_server {
    const tb_http_api *api;
    tb_server_opts opts;
    char *host;
    bool validate;
    bool qops_sorted; /* api->qops by route and method: bisected */
    void *state;
    void *deps;
    tb_middleware mw[TB__MAX_MIDDLEWARES];
    size_t n_mw;
    pthread_mutex_t lock; /* serializes start and stop */
    struct MHD_Daemon *daemon;
    atomic_uint_least16_t port;
    atomic_uint in_flight;
    atomic_bool stopping;
    int wake_fd; /* eventfd: tb_server_shutdown -> tb_server_run */
    int listen_fd;
    tb__door *door; /* accepts, checks first heads, enforces caps and deadlines (door.c) */
    tb_server_stats last_stats; /* the door's counters when it last stopped */
    tb__policy *policy;         /* allowlist, rate limits, fault injection (policy.c) */
    tb_jwt_verifier *verifier;  /* bearer tokens of secured operations (auth.c) */
    tb_http_auth_fn http_auth;  /* TB_SEC_HTTP_OTHER schemes (auth.c) */
    void *http_auth_ud;
    tb_jwt_verifier *own_verifier; /* the one made from TB_JWT_*, freed with the server */
    atomic_ullong refused_in_flight, refused_addr, rate_limited, deadline_expired;
    /* HTTPS: the PEM texts read by tb_server_new (NULL: plain HTTP), and for mutual TLS the
     * two GnuTLS calls that make a session require a verified client certificate. */
    char *tls_cert, *tls_key, *tls_ca, *tls_prio;
    void (*tls_require)(void *session, int req);
    void (*tls_verify)(void *session, const char *hostname, unsigned flags);
    /* GnuTLS, for mutualTLS security: the peer's certificates (DER) and their verification */
    const tb__datum *(*tls_peers)(void *session, unsigned *n);
    int (*tls_verify_peers)(void *session, unsigned *status);
    const char *metrics_path; /* NULL: not served */
    atomic_bool draining;     /* /health/ready answers 503 */
    struct {
        char *name;
        tb_ready_check_fn fn;
        void *user;
    } ready[16];
    size_t n_ready;
};

typedef enum conn_phase {
    CONN_IDLE,
    CONN_READING,
    CONN_TOO_BIG,
    CONN_NO_MEMORY,
    CONN_BAD_FRAMING,
    CONN_NO_CREDENTIALS, /* answered at the head: a secured operation, no Authorization */
    CONN_ANSWERED,
} conn_phase;

/* Per TCP connection, reused by every request on it. */
typedef struct tb__conn {
    tb__door_conn door; /* first: the front door's view (deadline, address) */
    tb_server *srv;
    struct MHD_Connection *mhd;
    tb_arena *arena;
    tb_buf body;    /* request body */
    tb_buf out;     /* response body storage, lent to tb_http_res for each request */
    tb_buf scratch; /* access log fields */
    conn_phase phase;
    size_t drained;
    unsigned long long requests; /* completed on this connection */
    int bad_status;              /* CONN_BAD_FRAMING: 400 or 501, and why */
    const char *bad_why;
    struct timespec t0;
    bool runtime_path; /* /metrics or a /health path: not in the request metrics */
    /* a secured operation's rate limit, checked after its credentials (tb__rate_after_auth) */
    bool rate_pending, rate_limited_op;
    size_t rate_oi;
    unsigned char rate_addr[16];
    tb_rate_result rate_rl;
    char rid[33];
    char tp[TB_TRACEPARENT_LEN + 1];   /* the server span's traceparent (ctx.traceparent) */
    char tstate[TB_TRACESTATE_MAX + 1]; /* the incoming tracestate, normalized */
    signed char cert;  /* the client certificate: 0 not looked at, 1 valid, -1 none or not */
    char cert_sub[128]; /* its subject's CN (else the whole subject) */
} tb__conn;

static const char internal_body[] =
    "{\"error\":{\"code\":\"internal\",\"message\":\"internal error\"}}";

/* ---- request accessors ---- */

/* Query keys and values arrive raw (the unescape callback keeps the path raw and libmicrohttpd
 * applies it to arguments too), so they are decoded here. */
static bool query_key_equals(const char *raw, const char *name)
{
    while (*raw) {
        char ch = *raw;
        if (ch == '%' && tb__hexval(raw[1]) >= 0 && tb__hexval(raw[2]) >= 0) {
            ch = (char)(tb__hexval(raw[1]) << 4 | tb__hexval(raw[2]));
            raw += 3;
        } else {
            raw++;
        }
        if (ch == '\0' || ch != *name)
            return false;
        name++;
    }
    return *name == '\0';
}

/* Lenient like libmicrohttpd's own decoder: a malformed escape (or %00, which would cut the C
 * string) stays as written. */
static const char *query_value(tb__conn *c, const char *raw)
{
    if (!raw || !strchr(raw, '%'))
        return raw;
    char *out = tb_arena_alloc(c->arena, strlen(raw) + 1);
    if (!out)
        return NULL;
    char *o = out;
    for (const char *p = raw; *p;) {
        int h, l;
        if (p[0] == '%' && (h = tb__hexval(p[1])) >= 0 && (l = tb__hexval(p[2])) >= 0 && (h | l) != 0) {
            *o++ = (char)(h << 4 | l);
            p += 3;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
    return out;
}

typedef struct query_find {
    tb__conn *c;
    const char *name;
    const char **vals;
    size_t max;
    size_t n;
    bool all;
    bool found;
    bool raw; /* as sent, percent-encoding and all */
    const char *first;
} query_find;

static enum MHD_Result query_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    (void)kind;
    query_find *f = cls;
    if (!key || !query_key_equals(key, f->name))
        return MHD_YES;
    if (!f->all) {
        f->found = true;
        f->first = f->raw ? value : query_value(f->c, value);
        return MHD_NO;
    }
    if (f->n < f->max)
        f->vals[f->n] = value ? query_value(f->c, value) : "";
    f->n++;
    return MHD_YES;
}

const char *tb_http_req_header(const tb_http_req *r, const char *name)
{
    const tb__conn *c = r->impl;
    return MHD_lookup_connection_value(c->mhd, MHD_HEADER_KIND, name);
}

typedef struct header_lines {
    tb__conn *c;
    const char *name;
    size_t n;
    const char *first;
    tb_buf all; /* from the second line on */
} header_lines;

static enum MHD_Result header_line(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    header_lines *h = cls;
    if (!key || !value || strcasecmp(key, h->name) != 0)
        return MHD_YES;
    if (h->n++ == 0) {
        h->first = value;
    } else {
        if (h->n == 2)
            tb_buf_puts(&h->all, h->first);
        tb_buf_puts(&h->all, ", ");
        tb_buf_puts(&h->all, value);
    }
    return MHD_YES;
}

const char *tb__req_header_lines(const tb_http_req *r, const char *name, size_t *lines)
{
    header_lines h = {r->impl, name, 0, NULL, TB_BUF_INIT};
    MHD_get_connection_values(h.c->mhd, MHD_HEADER_KIND, header_line, &h);
    if (lines)
        *lines = h.n;
    const char *v = h.first;
    if (h.n > 1)
        v = h.all.oom ? NULL : tb_arena_strndup(h.c->arena, h.all.data, h.all.len);
    tb_buf_deinit(&h.all);
    return v;
}

const char *tb_http_req_query(const tb_http_req *r, const char *name, bool *present)
{
    query_find f = {r->impl, name, NULL, 0, 0, false, false, false, NULL};
    MHD_get_connection_values(f.c->mhd, MHD_GET_ARGUMENT_KIND, query_iter, &f);
    if (present)
        *present = f.found;
    return f.first;
}

const char *tb_http_req_query_raw(const tb_http_req *r, const char *name)
{
    query_find f = {r->impl, name, NULL, 0, 0, false, false, true, NULL};
    MHD_get_connection_values(f.c->mhd, MHD_GET_ARGUMENT_KIND, query_iter, &f);
    return f.first;
}

size_t tb_http_req_query_all(const tb_http_req *r, const char *name, const char **vals, size_t max)
{
    query_find f = {r->impl, name, vals, max, 0, true, false, false, NULL};
    MHD_get_connection_values(f.c->mhd, MHD_GET_ARGUMENT_KIND, query_iter, &f);
    return f.n;
}

typedef struct query_each {
    tb__conn *c;
    void (*fn)(void *arg, const char *name, const char *value);
    void *arg;
} query_each;

static enum MHD_Result query_each_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                                       const char *value)
{
    (void)kind;
    query_each *q = cls;
    const char *k = key ? query_value(q->c, key) : NULL;
    const char *v = value ? query_value(q->c, value) : "";
    if (k && v)
        q->fn(q->arg, k, v);
    return MHD_YES;
}

void tb_http_req_query_each(const tb_http_req *r,
                            void (*fn)(void *arg, const char *name, const char *value), void *arg)
{
    tb__conn *c = r->impl;
    query_each q = {c, fn, arg};
    MHD_get_connection_values(c->mhd, MHD_GET_ARGUMENT_KIND, query_each_iter, &q);
}

/* The Cookie header read here rather than by libmicrohttpd, whose parser (0.9.75) stops a
 * value at a comma: OpenAPI's form style puts objects and arrays in one cookie as k,v,k,v.
 * Pairs are separated by ';', a value may be quoted (RFC 6265 section 4.2.1). */
const char *tb_http_req_cookie(const tb_http_req *r, const char *name)
{
    const tb__conn *c = r->impl;
    const char *h = MHD_lookup_connection_value(c->mhd, MHD_HEADER_KIND, MHD_HTTP_HEADER_COOKIE);
    size_t nl = strlen(name);
    for (const char *p = h; p && *p;) {
        while (*p == ' ' || *p == '\t' || *p == ';')
            p++;
        const char *end = p + strcspn(p, ";");
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (eq && (size_t)(eq - p) == nl && memcmp(p, name, nl) == 0) {
            const char *v = eq + 1, *ve = end;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            if (ve - v >= 2 && v[0] == '"' && ve[-1] == '"') {
                v++;
                ve--;
            }
            return c->arena ? tb_arena_strndup(c->arena, v, (size_t)(ve - v)) : NULL;
        }
        p = end;
    }
    return NULL;
}

/* ---- options ---- */

static unsigned long long env_ull(const char *name, unsigned long long max, bool *ok)
{
    *ok = false;
    const char *v = getenv(name);
    if (!v || !*v)
        return 0;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno || end == v || *end || v[0] == '-' || n > max) {
        tb_log_warn(NULL, "ignoring %s=%s: not a number in 0..%llu", name, v, max);
        return 0;
    }
    *ok = true;
    return n;
}

void tb_server_opts_from_env(tb_server_opts *o, const char *service_name)
{
    char name[128];
    size_t n = tb__env_name(name, sizeof name - 8, NULL, service_name);

    bool ok;
    const char *v;
    memcpy(name + n, "_HOST", 6);
    if ((n && (v = getenv(name)) && *v) || ((v = getenv("HOST")) && *v))
        o->host = v;

    memcpy(name + n, "_PORT", 6);
    const char *port_var = n && getenv(name) ? name : "PORT";
    unsigned long long port = env_ull(port_var, 65535, &ok);
    if (ok)
        o->port = (uint16_t)port;

    unsigned long long threads = env_ull("TB_THREADS", 1024, &ok);
    if (ok)
        o->threads = (unsigned)threads;
    unsigned long long max_body = env_ull("TB_MAX_BODY", SIZE_MAX / 4, &ok);
    if (ok)
        o->max_body = (size_t)max_body;
    unsigned long long validate = env_ull("TB_VALIDATE_RESPONSES", 1, &ok);
    if (ok)
        o->validate_responses = (int)validate;
    unsigned long long access = env_ull("TB_ACCESS_LOG", 1, &ok);
    if (ok)
        o->access_log = access != 0;
    unsigned long long ms = env_ull("TB_HEADER_TIMEOUT_MS", 3600000, &ok);
    if (ok && ms > 0)
        o->header_timeout_ms = (unsigned)ms;
    ms = env_ull("TB_BODY_TIMEOUT_MS", 3600000, &ok);
    if (ok && ms > 0)
        o->body_timeout_ms = (unsigned)ms;
    ms = env_ull("TB_SHUTDOWN_GRACE_MS", 3600000, &ok);
    if (ok)
        o->shutdown_grace_ms = (unsigned)ms;
    unsigned long long cap = env_ull("TB_MAX_CONNECTIONS", 1000000, &ok);
    if (ok)
        o->max_connections = (unsigned)cap;
    cap = env_ull("TB_MAX_CONNECTIONS_PER_ADDR", 1000000, &ok);
    if (ok)
        o->max_connections_per_addr = (unsigned)cap;
    cap = env_ull("TB_MAX_IN_FLIGHT", 1000000, &ok);
    if (ok)
        o->max_in_flight = (unsigned)cap;
    ms = env_ull("TB_REQUEST_TIMEOUT_MS", 3600000, &ok);
    if (ok)
        o->request_timeout_ms = (unsigned)ms;
    ms = env_ull("TB_DRAIN_DELAY_MS", 3600000, &ok);
    if (ok)
        o->drain_delay_ms = (unsigned)ms;
    if ((v = getenv("TB_METRICS_PATH")))
        o->metrics_path = v;
    tb_policy_opts *po = &o->policy;
    if ((v = getenv("TB_ALLOWLIST")) && *v)
        po->allow = v;
    if ((v = getenv("TB_TRUSTED_PROXIES")) && *v)
        po->trusted_proxies = v;
    if ((v = getenv("TB_RATE_LIMIT")) && *v)
        po->rate_limit = v;
    if ((v = getenv("TB_RATE_LIMIT_REDIS")) && *v)
        po->rate_redis = v;
    if ((v = getenv("TB_FAULT_OPS")) && *v)
        po->fault_ops = v;
    cap = env_ull("TB_RATE_LIMIT_BURST", 100000000, &ok);
    if (ok)
        po->rate_burst = (unsigned)cap;
    ms = env_ull("TB_FAULT_DELAY_MS", 600000, &ok);
    if (ok)
        po->fault_delay_ms = (unsigned)ms;
    cap = env_ull("TB_FAULT_STATUS", 599, &ok);
    if (ok)
        po->fault_status = (int)cap;
    cap = env_ull("TB_FAULT_PERCENT", 100, &ok);
    if (ok)
        po->fault_percent = (unsigned)cap;
    if ((v = getenv("TB_TLS_CERT_FILE")) && *v)
        o->tls_cert_file = v;
    if ((v = getenv("TB_TLS_KEY_FILE")) && *v)
        o->tls_key_file = v;
    if ((v = getenv("TB_TLS_CLIENT_CA_FILE")) && *v)
        o->tls_client_ca_file = v;
    if ((v = getenv("TB_TLS_PRIORITIES")) && *v)
        o->tls_priorities = v;
    if ((v = getenv("TB_TLS_VERIFY_CLIENT")) && *v) {
        if (strcasecmp(v, "optional") == 0)
            o->tls_client_optional = true;
        else if (strcasecmp(v, "on") == 0)
            o->tls_client_optional = false;
        else
            tb_log_warn(NULL, "TB_TLS_VERIFY_CLIENT=%s: want on or optional (keeping %s)", v,
                        o->tls_client_optional ? "optional" : "on");
    }
}

static bool resolve_validation(int opt)
{
    if (opt >= 0)
        return opt != 0;
    const char *v = getenv("TB_VALIDATE_RESPONSES");
    if (v && strcmp(v, "1") == 0)
        return true;
    if (v && strcmp(v, "0") == 0)
        return false;
    return opt == -2; /* TB_VALIDATE_RESPONSES_DEFAULT of a debug build */
}

/* ---- lifecycle ---- */

/* A verifier from TB_JWT_* (tb_jwt_verifier_from_env). None set: no verifier (secured
 * operations then answer 401 and log why). */
static int verifier_from_env(tb_server *s, tb_error *err)
{
    int rc = tb_jwt_verifier_from_env(&s->own_verifier, err);
    if (rc == 0 && s->own_verifier)
        s->verifier = s->own_verifier;
    return rc;
}

/* ---- TLS ---- */

#define TB__PEM_MAX (1u << 20)

/* The whole of a PEM file, NUL-terminated (libmicrohttpd takes PEM text); caller frees. */
static char *pem_read(const char *path, const char *what, tb_error *err)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        tb_error_set(err, TB_EINVAL, "TLS %s file %s: %s", what, path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(TB__PEM_MAX + 1);
    size_t n = buf ? fread(buf, 1, TB__PEM_MAX + 1, f) : 0;
    bool bad = ferror(f) != 0;
    fclose(f);
    if (!buf || bad || n > TB__PEM_MAX) {
        tb_error_set(err, buf ? TB_EINVAL : TB_ENOMEM, "TLS %s file %s: %s", what, path,
                     !buf ? "out of memory" : bad ? "cannot be read" : "larger than 1 MiB");
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

/* OpenSSL must not ask a terminal for the passphrase of an encrypted key. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1;
}

/* The first certificate of a PEM text, or NULL. */
static X509 *pem_cert(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, no_passphrase, NULL) : NULL;
    BIO_free(b);
    return x;
}

static void tls_free(tb_server *s)
{
    free(s->tls_cert);
    if (s->tls_key)
        OPENSSL_cleanse(s->tls_key, strlen(s->tls_key));
    free(s->tls_key);
    free(s->tls_ca);
    free(s->tls_prio);
    s->tls_cert = s->tls_key = s->tls_ca = s->tls_prio = NULL;
}

/* Reads and checks the files of o (cert and key both or neither) into s, so that a typo is a
 * clear error at tb_server_new rather than a libmicrohttpd log line at start. */
static int tls_load(tb_server *s, const tb_server_opts *o, tb_error *err)
{
    const char *cf = o->tls_cert_file && *o->tls_cert_file ? o->tls_cert_file : NULL;
    const char *kf = o->tls_key_file && *o->tls_key_file ? o->tls_key_file : NULL;
    const char *af = o->tls_client_ca_file && *o->tls_client_ca_file ? o->tls_client_ca_file
                                                                       : NULL;
    X509 *cert = NULL, *ca = NULL;
    EVP_PKEY *key = NULL;
    BIO *b = NULL;
    int rc = 0;
    if (!cf && !kf && !af)
        return 0;
    if (!cf || !kf)
        return tb_error_set(err, TB_EINVAL, "TLS needs both a certificate and a key file "
                            "(TB_TLS_CERT_FILE, TB_TLS_KEY_FILE)%s",
                            af ? "; a client CA alone does not enable it" : "");
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
        return tb_error_set(err, TB_EINVAL, "this libmicrohttpd was built without TLS");
    ERR_clear_error();
    if (!(s->tls_cert = pem_read(cf, "certificate", err)) ||
        !(s->tls_key = pem_read(kf, "key", err)) ||
        (af && !(s->tls_ca = pem_read(af, "client CA", err)))) {
        rc = err ? err->code : TB_EINVAL;
        goto fail;
    }
    if (!(cert = pem_cert(s->tls_cert))) {
        rc = tb_error_set(err, TB_EINVAL, "TLS certificate file %s: no PEM certificate in it",
                          cf);
        goto fail;
    }
    b = BIO_new_mem_buf(s->tls_key, -1);
    if (!b || !(key = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL))) {
        rc = tb_error_set(err, TB_EINVAL, "TLS key file %s: no unencrypted PEM private key in it",
                          kf);
        goto fail;
    }
    if (X509_check_private_key(cert, key) != 1) {
        rc = tb_error_set(err, TB_EINVAL, "TLS key file %s does not match the certificate in %s",
                          kf, cf);
        goto fail;
    }
    if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0)
        tb_log_warn(NULL, "TLS certificate %s has expired: clients will refuse it", cf);
    else if (X509_cmp_current_time(X509_get0_notBefore(cert)) > 0)
        tb_log_warn(NULL, "TLS certificate %s is not valid yet: clients will refuse it", cf);
    if (af) {
        if (!(ca = pem_cert(s->tls_ca))) {
            rc = tb_error_set(err, TB_EINVAL, "TLS client CA file %s: no PEM certificate in it",
                              af);
            goto fail;
        }
        /* libmicrohttpd 0.9.75 only asks for a client certificate (GNUTLS_CERT_REQUEST) and
         * never checks it. Two GnuTLS calls on each session make the handshake require one
         * and verify it against the trust list; GnuTLS is loaded already (libmicrohttpd's
         * dependency), so they are looked up there rather than linked. */
        *(void **)&s->tls_require = dlsym(RTLD_DEFAULT, "gnutls_certificate_server_set_request");
        *(void **)&s->tls_verify = dlsym(RTLD_DEFAULT, "gnutls_session_set_verify_cert");
        *(void **)&s->tls_peers = dlsym(RTLD_DEFAULT, "gnutls_certificate_get_peers");
        *(void **)&s->tls_verify_peers = dlsym(RTLD_DEFAULT, "gnutls_certificate_verify_peers2");
        if (!s->tls_require || !s->tls_verify || !s->tls_peers || !s->tls_verify_peers) {
            rc = tb_error_set(err, TB_EINVAL, "mutual TLS needs GnuTLS >= 3.4.6 under "
                              "libmicrohttpd: gnutls_session_set_verify_cert, "
                              "gnutls_certificate_get_peers or "
                              "gnutls_certificate_verify_peers2 not found");
            goto fail;
        }
    }
    const char *prio = o->tls_priorities && *o->tls_priorities ? o->tls_priorities
                                                               : TB_TLS_DEFAULT_PRIORITIES;
    if (!(s->tls_prio = strdup(prio))) {
        rc = tb_error_set(err, TB_ENOMEM, "out of memory");
        goto fail;
    }
    goto out;
fail:
    tls_free(s);
out:
    ERR_clear_error();
    X509_free(ca);
    X509_free(cert);
    EVP_PKEY_free(key);
    BIO_free(b);
    return rc;
}

void tb_server_set_jwt_verifier(tb_server *s, tb_jwt_verifier *v)
{
    s->verifier = v;
}

static bool rate_check(tb__conn *c, tb_server *s, tb_ctx *ctx, size_t oi, const tb_http_op *op,
                       const unsigned char addr[16], tb_rate_result *rl, tb_http_res *res);

bool tb__rate_after_auth(tb_ctx *ctx, const tb_http_req *req, tb_http_res *res)
{
    tb__conn *c = req->impl;
    if (!c || !c->rate_pending)
        return true;
    c->rate_pending = false;
    c->rate_limited_op = true; /* dispatch adds the RateLimit headers of c->rate_rl */
    tb_server *s = c->srv;
    const tb_http_op *op = &s->api->ops[c->rate_oi];
    if (rate_check(c, s, ctx, c->rate_oi, op, c->rate_addr, &c->rate_rl, res))
        return true;
    c->rate_limited_op = false; /* rate_check added them to the 429 */
    return false;
}

tb_jwt_verifier *tb__req_verifier(const tb_http_req *r)
{
    const tb__conn *c = r->impl;
    return c && c->srv ? c->srv->verifier : NULL;
}

bool tb__req_client_cert(const tb_http_req *r, const char **sub)
{
    tb__conn *c = r->impl;
    *sub = NULL;
    if (!c || !c->srv || !c->srv->tls_ca)
        return false; /* no TLS, or no client CA: no certificate was asked for */
    if (c->cert == 0) {
        c->cert = -1;
        tb_server *s = c->srv;
        const union MHD_ConnectionInfo *ti =
            MHD_get_connection_info(c->mhd, MHD_CONNECTION_INFO_GNUTLS_SESSION);
        unsigned n = 0, status = ~0u;
        const tb__datum *peers = ti && ti->tls_session ? s->tls_peers(ti->tls_session, &n) : NULL;
        /* required: the handshake verified it; optional: verified here, once per connection */
        if (peers && n &&
            (!s->opts.tls_client_optional ||
             (s->tls_verify_peers(ti->tls_session, &status) == 0 && status == 0))) {
            const unsigned char *der = peers[0].data;
            X509 *x = d2i_X509(NULL, &der, (long)peers[0].size);
            if (x) {
                X509_NAME *nm = X509_get_subject_name(x);
                if (X509_NAME_get_text_by_NID(nm, NID_commonName, c->cert_sub,
                                              (int)sizeof c->cert_sub) <= 0)
                    X509_NAME_oneline(nm, c->cert_sub, (int)sizeof c->cert_sub);
                for (char *p = c->cert_sub; *p; p++) /* raw bytes: printable ASCII for `sub` */
                    if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
                        *p = '?';
                X509_free(x);
                c->cert = 1;
            }
        }
    }
    if (c->cert == 1)
        *sub = c->cert_sub;
    return c->cert == 1;
}

void tb_server_set_http_auth(tb_server *s, tb_http_auth_fn fn, void *ud)
{
    s->http_auth = fn;
    s->http_auth_ud = ud;
}

tb_http_auth_fn tb__req_http_auth(const tb_http_req *r, void **ud)
{
    const tb__conn *c = r->impl;
    *ud = c && c->srv ? c->srv->http_auth_ud : NULL;
    return c && c->srv ? c->srv->http_auth : NULL;
}

/* Whether qops are sorted by route, then method (as the generator writes them). */
static bool qops_sorted(const tb_http_api *api)
{
    for (size_t i = 1; i < api->n_qops; i++) {
        const tb_http_qop *a = &api->qops[i - 1], *b = &api->qops[i];
        if (a->route > b->route || (a->route == b->route && a->method > b->method))
            return false;
    }
    return true;
}

tb_server *tb_server_new(const tb_http_api *api, const tb_server_opts *opts, tb_error *err)
{
    tb_server *s = NULL;
    if (!api || !api->match || !api->routes || (api->n_ops && !api->ops) ||
        (api->n_qops && !api->qops)) {
        tb_error_set(err, TB_EINVAL, "the service description is incomplete");
        return NULL;
    }
    for (size_t i = 0; i < api->n_qops; i++) {
        const tb_http_qop *q = &api->qops[i];
        if (q->route < 0 || (size_t)q->route >= api->n_routes || q->op < 0 ||
            (size_t)q->op >= api->n_ops || q->method < 0 || q->method >= TB_HTTP_N_METHODS ||
            (q->n && (!q->names || !q->values)) ||
            (q->n_headers && (!q->hnames || !q->hvalues)) || (q->n_media && !q->media)) {
            tb_error_set(err, TB_EINVAL, "the service description's query routes are invalid");
            return NULL;
        }
    }
    tb_server_opts defaults = TB_SERVER_OPTS_INIT;
    s = calloc(1, sizeof *s);
    if (!s)
        goto oom;
    s->wake_fd = -1;
    s->listen_fd = -1;
    s->api = api;
    s->qops_sorted = qops_sorted(api);
    s->opts = opts ? *opts : defaults;
    s->host = strdup(s->opts.host && *s->opts.host ? s->opts.host : defaults.host);
    if (!s->host)
        goto oom;
    s->opts.host = s->host;
    {
        const char *mp = s->opts.metrics_path ? s->opts.metrics_path : "/metrics";
        if (*mp && strcmp(mp, "off") != 0) {
            if (mp[0] != '/') {
                tb_error_set(err, TB_EINVAL, "metrics path \"%s\" must start with '/' "
                             "(TB_METRICS_PATH; \"off\" turns /metrics off)", mp);
                goto fail;
            }
            if (!(s->metrics_path = strdup(mp)))
                goto oom;
        }
        s->opts.metrics_path = NULL;
    }
    s->validate = resolve_validation(s->opts.validate_responses);
    s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->wake_fd < 0) {
        tb_error_set(err, TB_EIO, "eventfd: %s", strerror(errno));
        goto fail;
    }
    s->policy = tb__policy_new(api->n_ops, err);
    if (!s->policy)
        goto fail;
    if (tb__policy_configure(s->policy, &s->opts.policy, err) != 0)
        goto fail;
    if (verifier_from_env(s, err) != 0)
        goto fail;
    if (tls_load(s, &s->opts, err) != 0)
        goto fail;
    s->opts.tls_cert_file = s->opts.tls_key_file = NULL; /* borrowed; read */
    s->opts.tls_client_ca_file = s->opts.tls_priorities = NULL;
    /* the strings were parsed into the policy; none is kept */
    memset(&s->opts.policy, 0, sizeof s->opts.policy);
    if (pthread_mutex_init(&s->lock, NULL) != 0) {
        tb_error_set(err, TB_EIO, "cannot create a mutex");
        goto fail;
    }
    return s;

oom:
    tb_error_set(err, TB_ENOMEM, "out of memory");
fail:
    if (s) {
        tb_jwt_verifier_free(s->own_verifier);
        tb__policy_free(s->policy);
        if (s->wake_fd >= 0)
            close(s->wake_fd);
        tls_free(s);
        free((char *)s->metrics_path);
        free(s->host);
        free(s);
    }
    return NULL;
}

void tb_server_set_state(tb_server *s, void *state, void *deps)
{
    s->state = state;
    s->deps = deps;
}

int tb_server_use(tb_server *s, const tb_middleware *mw)
{
    if (!mw || s->n_mw >= TB__MAX_MIDDLEWARES)
        return TB_EINVAL;
    s->mw[s->n_mw++] = *mw;
    return 0;
}

uint16_t tb_server_port(const tb_server *s)
{
    return (uint16_t)atomic_load(&s->port);
}

bool tb_server_validates_responses(const tb_server *s)
{
    return s->validate;
}

unsigned tb_server_in_flight(const tb_server *s)
{
    return atomic_load(&s->in_flight);
}

void tb_server_stats_get(const tb_server *s, tb_server_stats *out)
{
    memset(out, 0, sizeof *out);
    tb_server *m = (tb_server *)s; /* the lock, not the server, changes */
    pthread_mutex_lock(&m->lock);
    if (m->door)
        tb__door_stats(m->door, out);
    else
        *out = m->last_stats;
    out->refused_in_flight = atomic_load(&m->refused_in_flight);
    out->refused_addr = atomic_load(&m->refused_addr);
    out->rate_limited = atomic_load(&m->rate_limited);
    out->deadline_expired = atomic_load(&m->deadline_expired);
    pthread_mutex_unlock(&m->lock);
}

/* ---- per-connection state ---- */

static void conn_free(tb__conn *c)
{
    if (!c)
        return;
    tb_arena_free(c->arena);
    tb_buf_deinit(&c->body);
    tb_buf_deinit(&c->out);
    tb_buf_deinit(&c->scratch);
    free(c);
}

static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        tb__conn *c = calloc(1, sizeof *c);
        if (c && !(c->arena = tb_arena_new(8192))) {
            free(c);
            c = NULL;
        }
        tb_server *s = cls;
        /* Each answer is read before the next call: libmicrohttpd 1.0 returns some of them in
         * one scratch union per connection, which the next call overwrites. */
        const union MHD_ConnectionInfo *fi =
            MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
        int fd = fi ? fi->connect_fd : -1;
        const union MHD_ConnectionInfo *ai =
            MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        const struct sockaddr *sa = ai ? ai->client_addr : NULL;
        if (c) {
            c->srv = s;
            c->mhd = mc;
            tb_buf init = TB_BUF_INIT;
            c->body = c->out = c->scratch = init;
            tb__door_track(s->door, &c->door, fd, sa);
            if (s->tls_ca) {
                /* Before the handshake, which runs on the first read: a client certificate
                 * is required and verified against tls_client_ca_file, so a client without
                 * one fails the handshake (TLS alert certificate_required / bad_certificate),
                 * never reaching the access handler. */
                const union MHD_ConnectionInfo *ti =
                    MHD_get_connection_info(mc, MHD_CONNECTION_INFO_GNUTLS_SESSION);
                if (ti && ti->tls_session && s->opts.tls_client_optional) {
                    /* asked for, checked when an operation's security needs it */
                    s->tls_require(ti->tls_session, 1 /* GNUTLS_CERT_REQUEST */);
                } else if (ti && ti->tls_session) {
                    s->tls_require(ti->tls_session, 2 /* GNUTLS_CERT_REQUIRE */);
                    s->tls_verify(ti->tls_session, NULL, 0);
                } else {
                    tb_log_error(NULL, "mutual TLS: no TLS session; closing the connection");
                    tb__door_untrack(s->door, &c->door);
                    conn_free(c);
                    c = NULL;
                }
            }
        } else {
            tb__door_release(s->door, sa);
        }
        *socket_context = c; /* NULL: the access handler refuses the connection */
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        tb__conn *c = *socket_context;
        if (c)
            tb__door_untrack(c->srv->door, &c->door);
        conn_free(c);
        *socket_context = NULL;
    }
}

static void buf_trim(tb_buf *b)
{
    if (b->cap > TB__KEEP_BUF)
        tb_buf_deinit(b);
    else
        tb_buf_reset(b);
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)mc;
    (void)toe;
    tb_server *s = cls;
    tb__conn *c = *req_cls;
    if (!c)
        return;
    *req_cls = NULL;
    tb_arena_reset(c->arena);
    buf_trim(&c->body);
    buf_trim(&c->out);
    c->phase = CONN_IDLE;
    c->requests++;
    /* The next request's head must be complete within the keep-alive timeout: an idle timeout
     * alone would let a client trickling a byte at a time hold the connection forever. */
    atomic_store(&c->door.reading_body, false);
    atomic_store(&c->door.deadline, (uint64_t)tb_clock_ms() + (uint64_t)s->opts.conn_timeout_s * 1000u);
    atomic_fetch_sub(&s->in_flight, 1);
}

/* The path reaches the access handler raw; generated matchers decode parameters themselves. */
static size_t keep_raw(void *cls, struct MHD_Connection *mc, char *s)
{
    (void)cls;
    (void)mc;
    return strlen(s);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    tb_log_warn(NULL, "libmicrohttpd: %s", msg);
}

/* ---- one request ---- */

/* W3C Trace Context of a request: more than one traceparent header is invalid (the trace
 * restarts); several tracestate headers are one list, in order. */
typedef struct trace_in {
    const char *tp;
    unsigned n_tp;
    const char *ts[32];
    size_t n_ts;
    bool ts_over;
} trace_in;

static enum MHD_Result collect_trace(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    (void)kind;
    trace_in *t = cls;
    if (strcasecmp(key, "traceparent") == 0) {
        t->n_tp++;
        t->tp = value;
    } else if (strcasecmp(key, "tracestate") == 0) {
        if (t->n_ts < sizeof t->ts / sizeof t->ts[0])
            t->ts[t->n_ts++] = value;
        else
            t->ts_over = true;
    }
    return MHD_YES;
}

/* Starts the request's server span, continuing the caller's trace when its traceparent is
 * valid; fills ctx->span and ctx->traceparent. */
static void start_server_span(tb__conn *c, struct MHD_Connection *mc, tb_ctx *ctx,
                              const char *method)
{
    tb_span_context parent;
    bool has_parent = false;
    c->tstate[0] = '\0';
    if (MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "traceparent")) {
        trace_in t = {0};
        MHD_get_connection_values(mc, MHD_HEADER_KIND, collect_trace, &t);
        has_parent = t.n_tp == 1 && tb_traceparent_decode(t.tp, strlen(t.tp), &parent);
        if (has_parent && t.n_ts && !t.ts_over)
            tb_tracestate_normalize(t.ts, t.n_ts, c->tstate, sizeof c->tstate);
    }
    tb_span *sp = tb_span_start_with(NULL, TB_SPAN_SERVER, has_parent ? &parent : NULL,
                                     c->tstate);
    if (sp->sampled) {
        /* the span began when the request's head arrived, not now */
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        uint64_t waited = (uint64_t)(now.tv_sec - c->t0.tv_sec) * 1000000000u +
                          (uint64_t)(now.tv_nsec - c->t0.tv_nsec);
        if (waited < sp->start_unix_nano)
            sp->start_unix_nano -= waited;
        tb_span_set_name(sp, method);
    }
    ctx->span = sp;
    if (tb_span_context_valid(&sp->sc)) {
        tb_traceparent_encode(&sp->sc, c->tp);
        ctx->traceparent = c->tp;
    }
}

/* Whether a request of Content-Type ct (NULL or empty: none) fits one of a qop's media types:
 * "" a request without one, "application/json" any JSON type (as the server's own check),
 * else tb__media_matches (op.c reads bodies by the same rule). */
static bool qop_media_fits(const tb_http_qop *q, const char *ct)
{
    bool none = !ct || !*ct;
    for (size_t i = 0; i < q->n_media; i++) {
        const char *m = q->media[i];
        if (!m)
            continue;
        if (!*m ? none
                : !none && (strcmp(m, "application/json") == 0 ? tb__is_json_media_type(ct)
                                                               : tb__media_matches(ct, m)))
            return true;
    }
    return false;
}

/* The values a request's query and headers hold for the names qops ask about, each looked up
 * once per request (AWS's /#Action=... groups hold hundreds of operations asking about the
 * same one or two names). */
typedef struct qop_seen {
    const char *name;
    const char *value;
    bool present, header;
} qop_seen;

static const char *qop_lookup(const tb_http_req *req, qop_seen *seen, size_t *n_seen, size_t cap,
                              const char *name, bool header, bool *present)
{
    for (size_t i = 0; i < *n_seen; i++)
        if (seen[i].header == header && (seen[i].name == name || strcmp(seen[i].name, name) == 0)) {
            *present = seen[i].present;
            return seen[i].value;
        }
    const char *v;
    if (header) {
        v = tb_http_req_header(req, name);
        *present = v != NULL;
    } else {
        v = tb_http_req_query(req, name, present);
    }
    if (*n_seen < cap)
        seen[(*n_seen)++] = (qop_seen){name, v, *present, header};
    return v;
}

/* Operations that share route ri and method m, told apart by what they need of the request
 * (tb_http_qop): the first that fits, else oi (the routes table's). sorted: the entries are
 * sorted by route and method (qops_sorted), so the first of ri and m is found by bisection. */
static int route_by_query(const tb_http_api *api, bool sorted, int ri, int m,
                          const tb_http_req *req, int oi)
{
    qop_seen seen[8];
    size_t n_seen = 0, i = 0;
    if (sorted) {
        size_t hi = api->n_qops;
        while (i < hi) {
            size_t mid = i + (hi - i) / 2;
            const tb_http_qop *q = &api->qops[mid];
            if (q->route < ri || (q->route == ri && q->method < m))
                i = mid + 1;
            else
                hi = mid;
        }
    }
    for (; i < api->n_qops; i++) {
        const tb_http_qop *q = &api->qops[i];
        if (q->route != ri || q->method != m) {
            if (sorted)
                break;
            continue;
        }
        bool fits = true;
        for (size_t k = 0; k < q->n && fits; k++) {
            bool present = false;
            const char *v = qop_lookup(req, seen, &n_seen, 8, q->names[k], false, &present);
            fits = present && (!q->values[k] || (v && strcmp(v, q->values[k]) == 0));
        }
        for (size_t k = 0; k < q->n_headers && fits; k++) {
            bool present = false;
            const char *v = qop_lookup(req, seen, &n_seen, 8, q->hnames[k], true, &present);
            fits = present && (!q->hvalues[k] || (v && strcmp(v, q->hvalues[k]) == 0));
        }
        if (fits && q->n_media)
            fits = qop_media_fits(q, req->content_type);
        if (fits)
            return q->op;
    }
    return oi;
}

/* Ends the server span with OpenTelemetry's HTTP server attributes: put in one call, by
 * reference (every value lives until tb_span_end below, which encodes the span). */
static void end_server_span(tb__conn *c, struct MHD_Connection *mc, tb_ctx *ctx,
                            const tb_http_req *req, const tb_http_op *op, const char *method,
                            int status)
{
    tb_span *sp = ctx->span;
    ctx->span = NULL;
    if (!sp)
        return;
    if (c->runtime_path)
        sp->sampled = false; /* probes and scrapes: not worth a span each */
    char code[16];
    if (sp->sampled) {
        tb_server *s = c->srv;
        tb_span_attr at[12];
        size_t n = 0;
#define PUT_STRN(k, val, l)                                                                        \
    at[n++] = (tb_span_attr){.key = (k), .type = TB_ATTR_STRING, .len = (uint32_t)(l), .v.s = (val)}
#define PUT_STR(k, val) PUT_STRN(k, val, strlen(val))
#define PUT_INT(k, val) at[n++] = (tb_span_attr){.key = (k), .type = TB_ATTR_INT, .v.i = (val)}
        const char *m = req->method >= 0 ? method : "_OTHER";
        if (op) { /* "METHOD /route", cut to the span's name room (no printf: every request) */
            char name[sizeof sp->name];
            size_t ml = strlen(m), pl = strlen(op->path);
            if (ml > sizeof name - 2)
                ml = sizeof name - 2;
            if (pl > sizeof name - 2 - ml)
                pl = sizeof name - 2 - ml;
            memcpy(name, m, ml);
            name[ml] = ' ';
            memcpy(name + ml + 1, op->path, pl);
            name[ml + 1 + pl] = '\0';
            tb_span_set_name(sp, name);
            PUT_STR("http.route", op->path);
            PUT_STR("tablium.operation_id", op->operation_id);
        } else {
            tb_span_set_name(sp, m);
        }
        PUT_STR("http.request.method", m);
        if (req->method < 0)
            PUT_STR("http.request.method_original", method);
        if (req->path_len <= UINT32_MAX)
            PUT_STRN("url.path", req->path, req->path_len);
        PUT_STR("url.scheme", s->tls_cert ? "https" : "http");
        PUT_STR("network.protocol.version", "1.1");
        PUT_INT("http.response.status_code", status);
        const char *host = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Host");
        if (host) { /* name[:port], [v6][:port] */
            const char *h = host, *end = NULL, *port = NULL;
            if (host[0] == '[') {
                h = host + 1;
                end = strchr(h, ']');
                if (end && end[1] == ':')
                    port = end + 2;
            } else {
                end = strrchr(host, ':');
                port = end ? end + 1 : NULL;
            }
            if (!end)
                end = host + strlen(host);
            PUT_STRN("server.address", h, end - h);
            long pn = 0; /* digits only, as strtol would read them, without its cost */
            for (const char *d = port; d && *d >= '0' && *d <= '9' && pn < 65536; d++)
                pn = pn * 10 + (*d - '0');
            if (pn > 0 && pn < 65536)
                PUT_INT("server.port", pn);
        }
        const char *ua = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "User-Agent");
        if (ua)
            PUT_STR("user_agent.original", ua);
        if (status >= 500) {
            snprintf(code, sizeof code, "%d", status);
            PUT_STR("error.type", code);
            tb_span_set_status(sp, TB_STATUS_ERROR, NULL);
        }
#undef PUT_STRN
#undef PUT_STR
#undef PUT_INT
        tb__span_put(sp, at, n);
    }
    tb_span_end(sp);
}

static bool valid_request_id(const char *v)
{
    size_t n = 0;
    for (; v[n]; n++) {
        if (n >= 128 || (unsigned char)v[n] <= 0x20 || (unsigned char)v[n] >= 0x7f)
            return false;
    }
    return n > 0;
}

bool tb__is_json_media_type(const char *ct)
{
    if (!ct)
        return false;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strcspn(ct, "; \t");
    if (n == 16 && strncasecmp(ct, "application/json", 16) == 0)
        return true;
    return n > 17 && strncasecmp(ct, "application/", 12) == 0 &&
           memchr(ct + 12, '/', n - 12) == NULL && strncasecmp(ct + n - 5, "+json", 5) == 0;
}

static bool content_length(struct MHD_Connection *mc, uint64_t *out)
{
    const char *v =
        MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (!v || *v < '0' || *v > '9')
        return false;
    uint64_t n = 0;
    for (; *v >= '0' && *v <= '9'; v++) {
        unsigned d = (unsigned)(*v - '0');
        n = n > (UINT64_MAX - d) / 10 ? UINT64_MAX : n * 10 + d;
    }
    *out = n;
    return true;
}

static void answer_error(tb_http_res *res, tb_ctx *ctx, int status, const char *code,
                         const char *msg)
{
    tb_api_error e = {code, msg, ctx->request_id, NULL, 0};
    tb_http_res_error(res, ctx, status, &e);
}

static void answer_405(tb__conn *c, tb_http_res *res, tb_ctx *ctx, const tb_http_api *api,
                       int ri)
{
    const int16_t *row = api->routes[ri];
    char allow[256];
    size_t n = 0;
    for (int m = 0; m < TB_HTTP_N_METHODS; m++) {
        bool has = row[m] >= 0 || (m == TB_HTTP_HEAD && row[TB_HTTP_GET] >= 0);
        if (!has)
            continue;
        n += (size_t)snprintf(allow + n, sizeof allow - n, "%s%s", n ? ", " : "",
                              tb_http_method_name(m));
    }
    for (size_t i = 0; i < api->n_xops && n < sizeof allow; i++)
        if (api->xops[i].route == ri)
            n += (size_t)snprintf(allow + n, sizeof allow - n, "%s%s", n ? ", " : "",
                                  api->xops[i].method);
    if (n >= sizeof allow)
        n = sizeof allow - 1;
    const char *v = tb_arena_strndup(c->arena, allow, n);
    if (v)
        tb_http_res_header(res, "Allow", v);
    answer_error(res, ctx, 405, "method_not_allowed", "the method is not allowed on this resource");
}

static enum MHD_Result framing_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    (void)kind;
    tb__framing *f = cls;
    if (!key)
        return MHD_YES;
    const char *v = value ? value : "";
    return tb__framing_field(f, key, strlen(key), v, strlen(v)) ? MHD_YES : MHD_NO;
}

/* Content-Length and Transfer-Encoding of a request libmicrohttpd parsed: one reading only. */
static bool framing_ok(tb__conn *c, struct MHD_Connection *mc, const char *version)
{
    tb__framing f;
    tb__framing_init(&f, version && strcmp(version, MHD_HTTP_VERSION_1_0) == 0);
    MHD_get_connection_values(mc, MHD_HEADER_KIND, framing_iter, &f);
    if (tb__framing_end(&f))
        return true;
    c->bad_status = f.status;
    c->bad_why = f.why;
    return false;
}

/* RateLimit-Policy and RateLimit (IETF httpapi ratelimit-headers draft): the policy's quota
 * and window in seconds, what is left and when it is whole again. */
static void rate_headers(tb__conn *c, tb_http_res *res, const tb_http_op *op,
                         const tb_rate_result *rl)
{
    char v[192];
    unsigned long long w = (rl->period_ms + 999) / 1000;
    int n = snprintf(v, sizeof v, "\"%s\";q=%u;w=%llu", op->operation_id, rl->limit, w ? w : 1);
    const char *pol = n > 0 ? tb_arena_strndup(c->arena, v, (size_t)n) : NULL;
    long long t = (long long)((rl->allowed ? rl->reset_ms : rl->retry_after_ms) + 999) / 1000;
    n = snprintf(v, sizeof v, "\"%s\";r=%u;t=%lld", op->operation_id, rl->remaining, t);
    const char *cur = n > 0 ? tb_arena_strndup(c->arena, v, (size_t)n) : NULL;
    if (pol)
        tb_http_res_header(res, "RateLimit-Policy", pol);
    if (cur)
        tb_http_res_header(res, "RateLimit", cur);
}

/* The rate limit of the caller (the verified token's sub, else its address) on op: true when
 * it may go on; false with a 429 in res. */
static bool rate_check(tb__conn *c, tb_server *s, tb_ctx *ctx, size_t oi, const tb_http_op *op,
                       const unsigned char addr[16], tb_rate_result *rl, tb_http_res *res)
{
    char ident[160];
    const json_t *sub = ctx->claims ? json_object_get(ctx->claims, "sub") : NULL;
    if (json_is_string(sub) && json_string_length(sub) < 120) {
        snprintf(ident, sizeof ident, "sub:%s", json_string_value(sub));
    } else {
        char txt[INET6_ADDRSTRLEN];
        bool v4 = memcmp(addr, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0;
        inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? addr + 12 : addr, txt, sizeof txt);
        snprintf(ident, sizeof ident, "ip:%s", txt);
    }
    if (tb__policy_rate(s->policy, oi, op->operation_id, ident, rl) != 0 || rl->allowed)
        return true;
    atomic_fetch_add(&s->rate_limited, 1);
    char ra[24];
    snprintf(ra, sizeof ra, "%lld", (long long)(rl->retry_after_ms + 999) / 1000);
    const char *rav = tb_arena_strndup(c->arena, ra, strlen(ra));
    if (rav)
        tb_http_res_header(res, "Retry-After", rav);
    rate_headers(c, res, op, rl);
    tb_metrics_refused(s->api->name, "rate_limited");
    answer_error(res, ctx, 429, "rate_limited", "too many requests; retry later");
    return false;
}

/* ---- the runtime's own endpoints: /metrics, /health/live, /health/ready ---- */

/* http_server_active_requests, read at scrape */
static double active_requests(void *user)
{
    return (double)atomic_load(&((tb_server *)user)->in_flight);
}

static bool path_is(const tb_http_req *req, const char *p)
{
    size_t n = strlen(p);
    return req->path_len == n && memcmp(req->path, p, n) == 0;
}

static struct {
    pthread_mutex_t mu;
    struct {
        char *name;
        tb_ready_check_fn fn;
        void *user;
    } c[32];
    size_t n;
} g_ready = {.mu = PTHREAD_MUTEX_INITIALIZER};

int tb_ready_check_add(const char *name, tb_ready_check_fn fn, void *user)
{
    if (!name || !fn)
        return TB_EINVAL;
    char *copy = strdup(name);
    if (!copy)
        return TB_ENOMEM;
    pthread_mutex_lock(&g_ready.mu);
    int rc = 0;
    if (g_ready.n == sizeof g_ready.c / sizeof g_ready.c[0]) {
        rc = TB_EINVAL;
        free(copy);
    } else {
        g_ready.c[g_ready.n].name = copy;
        g_ready.c[g_ready.n].fn = fn;
        g_ready.c[g_ready.n].user = user;
        g_ready.n++;
    }
    pthread_mutex_unlock(&g_ready.mu);
    return rc;
}

void tb_ready_check_remove(void *user)
{
    if (!user) /* checks registered without a user are never removed by accident */
        return;
    pthread_mutex_lock(&g_ready.mu);
    size_t k = 0;
    for (size_t i = 0; i < g_ready.n; i++) {
        if (g_ready.c[i].user == user)
            free(g_ready.c[i].name);
        else
            g_ready.c[k++] = g_ready.c[i];
    }
    g_ready.n = k;
    pthread_mutex_unlock(&g_ready.mu);
}

/* One check into the ready body; true when it passed. */
static bool run_check(tb_buf *b, size_t i, const char *name, tb_ready_check_fn fn, void *user)
{
    char why[256] = "";
    int rc = fn(user, why, sizeof why);
    why[sizeof why - 1] = '\0';
    if (i)
        tb_buf_puts(b, ",");
    tb_buf_json_string(b, name, strlen(name));
    tb_buf_puts(b, rc == 0 ? ":{\"status\":\"up\"" : ":{\"status\":\"down\"");
    if (rc != 0) {
        tb_buf_puts(b, ",\"reason\":");
        tb_buf_json_string(b, why[0] ? why : "check failed", strlen(why[0] ? why : "check failed"));
    }
    tb_buf_puts(b, "}");
    return rc == 0;
}

static int jwt_ready(void *user, char *why, size_t cap)
{
    tb_jwks *ks = tb_jwt_verifier_keys(user);
    size_t n = ks ? tb_jwks_count(ks) : 0;
    tb_jwks_free(ks);
    if (n == 0)
        snprintf(why, cap, "no keys to verify tokens with (the key set is empty or failed to "
                           "load; the verifier retries)");
    return n ? 0 : -1;
}

static void ready_body(tb_server *s, tb_http_res *res)
{
    tb_buf *b = &res->body;
    tb_buf_reset(b);
    if (atomic_load(&s->draining) || atomic_load(&s->stopping)) {
        res->status = 503;
        tb_buf_puts(b, "{\"status\":\"draining\"}");
        return;
    }
    bool ok = true;
    size_t n = 0;
    tb_buf_puts(b, "{\"checks\":{");
    if (s->verifier) /* tokens cannot be verified without keys: every secured request is a 503 */
        ok &= run_check(b, n++, "jwt", jwt_ready, s->verifier);
    for (size_t i = 0; i < s->n_ready; i++)
        ok &= run_check(b, n++, s->ready[i].name, s->ready[i].fn, s->ready[i].user);
    /* the process-wide ones; the lock keeps tb_ready_check_remove from returning meanwhile */
    pthread_mutex_lock(&g_ready.mu);
    for (size_t i = 0; i < g_ready.n; i++)
        ok &= run_check(b, n++, g_ready.c[i].name, g_ready.c[i].fn, g_ready.c[i].user);
    pthread_mutex_unlock(&g_ready.mu);
    tb_buf_puts(b, ok ? "},\"status\":\"ready\"}" : "},\"status\":\"not_ready\"}");
    res->status = ok ? 200 : 503;
}

/* Serves GET /metrics, /health/live and /health/ready unless the spec has a route there.
 * true when it answered. */
static bool runtime_endpoint(tb__conn *c, tb_ctx *ctx, tb_http_req *req, tb_http_res *res)
{
    tb_server *s = c->srv;
    bool metrics = s->metrics_path && path_is(req, s->metrics_path);
    bool live = !metrics && path_is(req, "/health/live");
    bool ready = !metrics && !live && path_is(req, "/health/ready");
    if (!metrics && !live && !ready)
        return false;
    tb_str params[TB_HTTP_MAX_PATH_PARAMS];
    size_t np;
    if (s->api->match(req->path, req->path_len, -1, params, &np) >= 0)
        return false; /* the spec's own */
    c->runtime_path = true;
    if (metrics) {
        tb_buf_reset(&res->body);
        if (tb_metrics_render(&res->body) != 0) {
            answer_error(res, ctx, 500, "internal", "internal error");
            return true;
        }
        res->status = 200;
        tb_http_res_header(res, "Content-Type", TB_METRICS_CONTENT_TYPE);
    } else if (live) {
        tb_buf_reset(&res->body);
        tb_buf_puts(&res->body, "{\"status\":\"live\"}");
        res->status = 200;
    } else {
        ready_body(s, res);
    }
    tb_http_res_header(res, "Cache-Control", "no-store");
    return true;
}

int tb_server_add_ready_check(tb_server *s, const char *name, tb_ready_check_fn fn, void *user)
{
    if (!s || !name || !fn || s->n_ready == sizeof s->ready / sizeof s->ready[0])
        return TB_EINVAL;
    char *n = strdup(name);
    if (!n)
        return TB_ENOMEM;
    s->ready[s->n_ready].name = n;
    s->ready[s->n_ready].fn = fn;
    s->ready[s->n_ready].user = user;
    s->n_ready++;
    return 0;
}

/* Routes, checks the body and runs the operation; leaves the response in res and the matched
 * operation (or NULL) in *op_out. */
static void dispatch(tb__conn *c, tb_ctx *ctx, tb_http_req *req, tb_http_res *res,
                     const tb_http_op **op_out)
{
    tb_server *s = c->srv;
    const tb_http_api *api = s->api;
    *op_out = NULL;

    /* the client's address, only when a policy looks at it (the allowlist, rate limits) */
    unsigned char addr[16];
    bool by_addr = tb__policy_needs_addr(s->policy);
    if (by_addr)
        tb__policy_client_addr(s->policy, (const struct sockaddr *)&c->door.ss, req, addr);
    if (by_addr && !tb__policy_allows_addr(s->policy, addr)) {
        atomic_fetch_add(&s->refused_addr, 1);
        tb_metrics_refused(s->api->name, "forbidden");
        answer_error(res, ctx, 403, "forbidden", "this client address is not allowed");
        return;
    }
    if ((req->method == TB_HTTP_GET || req->method == TB_HTTP_HEAD) &&
        runtime_endpoint(c, ctx, req, res))
        return;
    if (s->opts.max_in_flight && atomic_load(&s->in_flight) > s->opts.max_in_flight) {
        tb_metrics_refused(s->api->name, "overloaded");
        atomic_fetch_add(&s->refused_in_flight, 1);
        tb_http_res_header(res, "Retry-After", "1");
        answer_error(res, ctx, 503, "overloaded", "too many requests in flight; retry later");
        return;
    }

    const char *path = req->path;
    size_t path_len = req->path_len;
    if (api->base_path && api->base_path[0]) {
        /* servers[0]'s path: routes are mounted under it */
        size_t bl = strlen(api->base_path);
        if (path_len < bl || memcmp(path, api->base_path, bl) != 0 ||
            (path_len > bl && path[bl] != '/')) {
            answer_error(res, ctx, 404, "not_found", "no resource at this path");
            return;
        }
        path += bl;
        path_len -= bl;
        if (path_len == 0) {
            path = "/";
            path_len = 1;
        }
    }
    int ri = api->match(path, path_len, req->method, req->params, &req->n_params);
    if (ri < 0 || (size_t)ri >= api->n_routes) {
        answer_error(res, ctx, 404, "not_found", "no resource at this path");
        return;
    }
    const int16_t *row = api->routes[ri];
    int oi = req->method >= 0 ? row[req->method] : -1;
    if (oi < 0 && req->method == TB_HTTP_HEAD)
        oi = row[TB_HTTP_GET]; /* HEAD is GET without the body (libmicrohttpd drops it) */
    if (oi >= 0 && api->n_qops)
        oi = route_by_query(api, s->qops_sorted, ri,
                            row[req->method] >= 0 ? req->method : TB_HTTP_GET, req, oi);
    for (size_t i = 0; oi < 0 && req->method < 0 && req->method_name && i < api->n_xops; i++)
        if (api->xops[i].route == ri && strcmp(api->xops[i].method, req->method_name) == 0)
            oi = api->xops[i].op; /* QUERY, LINK...: OpenAPI 3.2 */
    if (oi < 0 && req->method < 0 && req->method_name) {
        /* RFC 9110 9.1: a method the service implements nowhere is 501; 405 says that it is
         * known but not allowed on this resource */
        bool known = false;
        for (size_t i = 0; i < api->n_xops && !known; i++)
            known = strcmp(api->xops[i].method, req->method_name) == 0;
        if (!known) {
            answer_error(res, ctx, 501, "not_implemented",
                         "this service implements no such method");
            return;
        }
    }
    if (oi < 0 || (size_t)oi >= api->n_ops) {
        answer_405(c, res, ctx, api, ri);
        return;
    }
    const tb_http_op *op = &api->ops[oi];
    *op_out = op;
    if (op->op && op->op->err_shapes) { /* the runtime's answers from here on: its shapes */
        res->err_shapes = op->op->err_shapes;
        res->n_err_shapes = op->op->n_err_shapes;
    }

    /* The caller's budget (TB_DEADLINE_HEADER, whole ms from when it sent the request) and the
     * server's own, from when the head arrived; past it the handler does not run. */
    uint64_t t0 = (uint64_t)c->t0.tv_sec * 1000u + (uint64_t)c->t0.tv_nsec / 1000000u;
    unsigned own = tb__policy_timeout(s->policy, (size_t)oi);
    unsigned cap = own ? own : s->opts.request_timeout_ms;
    uint64_t deadline = cap ? t0 + cap : 0;
    const char *budget = tb_http_req_header(req, TB_DEADLINE_HEADER);
    if (budget) {
        char *end;
        errno = 0;
        unsigned long long ms = strtoull(budget, &end, 10);
        if (!errno && end != budget && *end == '\0' && budget[0] != '-' &&
            ms <= 86400000ull && (!deadline || t0 + ms < deadline))
            deadline = t0 + ms;
    }
    ctx->deadline_ms = (int64_t)deadline;
    if (deadline && (uint64_t)tb_clock_ms() >= deadline) {
        atomic_fetch_add(&s->deadline_expired, 1);
        tb_metrics_refused(s->api->name, "deadline_exceeded");
        answer_error(res, ctx, 504, "deadline_exceeded",
                     "the request's deadline passed before it could be handled");
        return;
    }

    bool no_body_read = c->phase == CONN_NO_CREDENTIALS; /* only its 401 to come */
    if (!no_body_read && (op->flags & TB_OP_BODY) && req->body_len > 0 &&
        !tb__is_json_media_type(req->content_type)) {
        answer_error(res, ctx, 415, "unsupported_media_type",
                     "the request body must be application/json");
        return;
    }
    if (!no_body_read && (op->flags & TB_OP_BODY_REQUIRED) && req->body_len == 0) {
        tb_error_detail d = {"/body", "required", "a JSON body is required"};
        tb_api_error e = {"validation_failed", "the request does not match its schema",
                          ctx->request_id, &d, 1};
        tb_http_res_error(res, ctx, 400, &e);
        return;
    }

    for (size_t i = 0; i < s->n_mw; i++) {
        const tb_middleware *mw = &s->mw[i];
        if (mw->on_request && mw->on_request(mw->self, ctx, req, op, res) != 0)
            return;
    }

    tb_rate_result rl;
    bool limited = tb__policy_limits(s->policy, (size_t)oi);
    c->rate_pending = false;
    c->rate_limited_op = false;
    if (limited && (op->flags & TB_OP_SECURED)) {
        /* after the credentials: a caller is limited by its token's sub, not its address */
        c->rate_pending = true;
        c->rate_oi = (size_t)oi;
        memcpy(c->rate_addr, addr, sizeof c->rate_addr);
    } else if (limited && !rate_check(c, s, ctx, (size_t)oi, op, addr, &rl, res)) {
        return;
    }
    int fault = tb__policy_fault(s->policy, op->operation_id);
    if (fault) {
        answer_error(res, ctx, fault, "fault_injected", "fault injected (TB_FAULT_STATUS)");
        return;
    }

    int rc = op->invoke(ctx, req, res);
    if (rc == 0 && limited && !(op->flags & TB_OP_SECURED))
        rate_headers(c, res, op, &rl);
    else if (rc == 0 && c->rate_limited_op) /* passed after the credentials */
        rate_headers(c, res, op, &c->rate_rl);
    c->rate_pending = c->rate_limited_op = false;
    if (rc != 0) {
        tb_buf *f = &c->scratch;
        tb_buf_reset(f);
        tb_buf_puts(f, "\"operation\":");
        tb_buf_json_string(f, op->operation_id, strlen(op->operation_id));
        tb_buf_puts(f, ",\"rc\":");
        tb_buf_json_string(f, tb_err_name(rc), strlen(tb_err_name(rc)));
        tb_log_fields(TB_LOG_ERROR, ctx, f->oom ? NULL : f->data, "operation failed: %s",
                      tb_strerror(rc));
        if (ctx->span) /* an "exception" event on the server span, which ends as Error (500) */
            tb_span_record_error(ctx->span, tb_err_name(rc), tb_strerror(rc));
        res->n_headers = 0;
        answer_error(res, ctx, 500, "internal", "internal error");
    }
}

static double ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static void access_log(tb__conn *c, const tb_ctx *ctx, const char *method, const char *path,
                       int status)
{
    tb_buf *f = &c->scratch;
    tb_buf_reset(f);
    tb_buf_puts(f, "\"method\":");
    tb_buf_json_string(f, method, strlen(method));
    tb_buf_puts(f, ",\"path\":");
    tb_buf_json_string(f, path, strlen(path));
    tb_buf_printf(f, ",\"status\":%d,\"ms\":%.3f", status, ms_since(&c->t0));
    if (!f->oom)
        tb_log_fields(TB_LOG_INFO, ctx, f->data, "request");
}

/* Builds and queues the response of the current request. */
static enum MHD_Result respond(tb__conn *c, struct MHD_Connection *mc, const char *url,
                               const char *method)
{
    tb_server *s = c->srv;
    tb_ctx ctx;
    tb_http_req req;
    tb_http_res res;
    memset(&ctx, 0, sizeof ctx);
    memset(&req, 0, sizeof req);
    memset(&res, 0, sizeof res);
    res.err_shapes = s->api->err_shapes;
    res.n_err_shapes = s->api->n_err_shapes;
    res.body = c->out;
    tb_buf_reset(&res.body);
    const tb_http_op *op = NULL;

    req.method = tb_http_method_parse(method, strlen(method));
    req.method_name = method;
    req.path = url;
    req.path_len = strlen(url);
    if (c->phase == CONN_READING && c->body.len > 0) {
        req.body = c->body.data;
        req.body_len = c->body.len;
    }
    req.content_type =
        MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    req.impl = c;

    const char *rid = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "X-Request-ID");
    if (!rid || !valid_request_id(rid)) {
        tb_request_id_new(c->rid);
        rid = c->rid;
    }
    ctx.request_id = rid;
    ctx.arena = c->arena;
    ctx.service = s->api->name;
    start_server_span(c, mc, &ctx, method);
    ctx.state = s->state;
    ctx.deps = s->deps;
    ctx.http = &req;
    if (s->validate)
        ctx.flags |= TB_CTX_VALIDATE_RESPONSES;

    bool close_after = c->phase == CONN_BAD_FRAMING;
    c->runtime_path = false;
    if (c->phase == CONN_TOO_BIG) {
        tb_metrics_refused(s->api->name, "too_large");
        tb_api_error e;
        tb_api_error_set(&e, &ctx, "payload_too_large",
                         "the request body is larger than the limit of %zu bytes",
                         s->opts.max_body);
        tb_http_res_error(&res, &ctx, 413, &e);
    } else if (c->phase == CONN_NO_MEMORY) {
        answer_error(&res, &ctx, 500, "internal", "internal error");
    } else if (c->phase == CONN_BAD_FRAMING) {
        tb_metrics_refused(s->api->name, "invalid");
        answer_error(&res, &ctx, c->bad_status,
                     c->bad_status == 501 ? "not_implemented" : "bad_request", c->bad_why);
    } else {
        dispatch(c, &ctx, &req, &res, &op);
    }
    c->phase = CONN_ANSWERED;

    for (size_t i = s->n_mw; i-- > 0;) {
        const tb_middleware *mw = &s->mw[i];
        if (mw->on_response)
            mw->on_response(mw->self, &ctx, &req, op, &res);
    }

    const char *data = res.body.data ? res.body.data : "";
    size_t len = res.body.len;
    int status = res.status;
    if (res.body.oom || status < 100 || status > 599) {
        tb_log_error(&ctx, "%s: response %s", op ? op->operation_id : "runtime",
                     res.body.oom ? "out of memory" : "has no valid status");
        data = internal_body;
        len = sizeof internal_body - 1;
        status = 500;
    }

    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_PERSISTENT);
    c->out = res.body; /* the response borrows it until the request completes */
    if (!r) {
        end_server_span(c, mc, &ctx, &req, op, method, 500);
        return MHD_NO;
    }
    bool typed = false;
    for (size_t i = 0; i < res.n_headers; i++) {
        if (MHD_add_response_header(r, res.headers[i][0], res.headers[i][1]) != MHD_YES)
            tb_log_warn(&ctx, "dropped invalid response header %s", res.headers[i][0]);
        else if (strcasecmp(res.headers[i][0], MHD_HTTP_HEADER_CONTENT_TYPE) == 0)
            typed = true;
    }
    if (len > 0 && !typed)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(r, "X-Request-ID", rid);
    if (atomic_load(&s->stopping) || close_after)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result q = MHD_queue_response(mc, (unsigned)status, r);
    MHD_destroy_response(r);

    if (s->opts.access_log && tb_log_enabled(TB_LOG_INFO))
        access_log(c, &ctx, method, url, status);
    if (!c->runtime_path)
        tb_metrics_http_server(s->api->name, op ? op->operation_id : "_unmatched",
                               req.method >= 0 ? method : "_OTHER", status,
                               ms_since(&c->t0) / 1e3);
    end_server_span(c, mc, &ctx, &req, op, method, status);
    return q;
}

/* At the head of a request with a body: whether its operation needs the Authorization header
 * (TB_OP_NEEDS_AUTHORIZATION) and it has none, so that the answer is a 401 whatever the body. An
 * operation told apart by its query or headers (tb_http_qop) is left to the usual path. */
static bool needs_credentials_first(tb_server *s, struct MHD_Connection *mc, const char *url,
                                    const char *method)
{
    const tb_http_api *api = s->api;
    if (!url || !method || api->n_qops ||
        MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION))
        return false;
    int m = tb_http_method_parse(method, strlen(method));
    if (m < 0)
        return false;
    const char *path = url;
    size_t len = strlen(url);
    if (api->base_path && api->base_path[0]) {
        size_t bl = strlen(api->base_path);
        if (len < bl || memcmp(path, api->base_path, bl) != 0 || (len > bl && path[bl] != '/'))
            return false;
        path += bl;
        len -= bl;
        if (len == 0) {
            path = "/";
            len = 1;
        }
    }
    tb_str params[TB_HTTP_MAX_PATH_PARAMS];
    size_t np = 0;
    int ri = api->match(path, len, m, params, &np);
    if (ri < 0 || (size_t)ri >= api->n_routes)
        return false;
    int oi = api->routes[ri][m];
    return oi >= 0 && (size_t)oi < api->n_ops &&
           (api->ops[oi].flags & TB_OP_NEEDS_AUTHORIZATION);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *mc, const char *url,
                                 const char *method, const char *version, const char *upload,
                                 size_t *upload_size, void **req_cls)
{
    tb_server *s = cls;
    tb__conn *c = *req_cls;

    if (!c) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        c = ci ? ci->socket_context : NULL;
        if (!c)
            return MHD_NO;
        *req_cls = c;
        atomic_fetch_add(&s->in_flight, 1);
        clock_gettime(CLOCK_MONOTONIC, &c->t0);
        c->phase = CONN_READING;
        c->drained = 0;
        tb_buf_reset(&c->body);
        /* The front door checked the first head's framing (not on a TLS port: it cannot read
         * it); later ones on the connection come straight from libmicrohttpd and are checked
         * here. */
        if ((c->requests > 0 || s->tls_cert) && !framing_ok(c, mc, version)) {
            c->phase = CONN_BAD_FRAMING;
            return respond(c, mc, url, method);
        }
        bool has_body = MHD_lookup_connection_value(mc, MHD_HEADER_KIND,
                                                    MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL;
        uint64_t cl;
        bool has_cl = content_length(mc, &cl);
        if (has_cl)
            has_body = cl > 0;
        /* The body must be complete within body_timeout_ms of the head. */
        atomic_store(&c->door.reading_body, has_body);
        atomic_store(&c->door.deadline,
                     has_body ? (uint64_t)tb_clock_ms() + s->opts.body_timeout_ms : (uint64_t)0);
        if (has_body && needs_credentials_first(s, mc, url, method)) {
            /* a secured operation and no Authorization: its 401 now, not after reading (and
             * buffering) a body nobody may send (a client waiting on Expect: 100-continue
             * never sends it) */
            c->phase = CONN_NO_CREDENTIALS;
            return respond(c, mc, url, method);
        }
        if (has_cl) {
            if (cl > s->opts.max_body) {
                /* Answered before the body is read: libmicrohttpd closes the connection
                 * instead of reading it. */
                c->phase = CONN_TOO_BIG;
                return respond(c, mc, url, method);
            }
            if (cl > 0 && tb_buf_reserve(&c->body, (size_t)cl) != 0)
                c->phase = CONN_NO_MEMORY;
        }
        /* Answering only on a later call keeps the connection alive. */
        return MHD_YES;
    }

    if (*upload_size > 0) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (c->phase == CONN_READING) {
            if (n > s->opts.max_body - c->body.len) {
                c->phase = CONN_TOO_BIG;
                c->drained = c->body.len;
                tb_buf_reset(&c->body);
            } else {
                tb_buf_append(&c->body, upload, n);
                if (c->body.oom)
                    c->phase = CONN_NO_MEMORY;
                return MHD_YES;
            }
        }
        if (c->phase == CONN_ANSWERED)
            return MHD_YES;
        c->drained += n;
        size_t budget = s->opts.max_body > TB__DRAIN_MIN ? s->opts.max_body : TB__DRAIN_MIN;
        if (c->drained > budget && c->drained - budget > s->opts.max_body) {
            tb_log_warn(NULL, "closing a connection whose %s body keeps going past %zu bytes",
                        method, s->opts.max_body);
            return MHD_NO;
        }
        return MHD_YES;
    }

    if (c->phase == CONN_ANSWERED)
        return MHD_YES;
    atomic_store(&c->door.deadline, 0);
    atomic_store(&c->door.reading_body, false);
    return respond(c, mc, url, method);
}

/* ---- start / stop ---- */

/* Raises the soft open-file limit to the hard one (as Go does at start): every connection is
 * a descriptor, and the usual soft limit of 1024 is what let ~1,020 slow clients lock everyone
 * out. Returns the limit now in force. */
static unsigned long raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit want = {rl.rlim_max, rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &want) == 0)
            rl.rlim_cur = rl.rlim_max;
    }
    return rl.rlim_cur == RLIM_INFINITY ? (unsigned long)1 << 20 : (unsigned long)rl.rlim_cur;
}

/* Descriptors kept for everything but client connections (stores, brokers, logs, clients). */
#define TB__FD_RESERVE 128u
#define TB__DEFAULT_MAX_CONNS 10000u
#define TB__DEFAULT_MAX_PER_ADDR 1000u

static int listen_on(tb_server *s, tb_error *err, bool *ipv6)
{
    struct addrinfo *ai = NULL;
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int gai = getaddrinfo(s->host, NULL, &hints, &ai);
    if (gai != 0 || !ai)
        return tb_error_set(err, TB_EIO, "cannot resolve %s: %s", s->host, gai_strerror(gai));
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    socklen_t len = ai->ai_addrlen;
    freeaddrinfo(ai);
    *ipv6 = ss.ss_family == AF_INET6;
    if (*ipv6)
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons(s->opts.port);
    else
        ((struct sockaddr_in *)&ss)->sin_port = htons(s->opts.port);
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return tb_error_set(err, TB_EIO, "socket: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, SOMAXCONN) != 0) {
        int e = errno;
        close(fd);
        return tb_error_set(err, TB_EIO, "cannot listen on %s:%u: %s", s->host,
                            (unsigned)s->opts.port, strerror(e));
    }
    struct sockaddr_storage bound;
    socklen_t blen = sizeof bound;
    uint16_t port = s->opts.port;
    if (getsockname(fd, (struct sockaddr *)&bound, &blen) == 0)
        port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                 : ((struct sockaddr_in *)&bound)->sin_port);
    atomic_store(&s->port, port);
    s->listen_fd = fd;
    return 0;
}

int tb_server_start(tb_server *s, tb_error *err)
{
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    if (s->daemon) {
        rc = tb_error_set(err, TB_ESTATE, "the server is already running");
        goto fail;
    }
    tb_trace_set_default_service(s->api->name);
    atomic_store(&s->draining, false);
    {
        static const char *const labels[] = {"service", NULL};
        tb_metric_family *f = tb_metrics_gauge(NULL, "http_server_active_requests",
                                               "Requests being handled now.", labels);
        const char *vals[] = {s->api->name};
        if (f)
            tb_metric_on_collect(f, vals, active_requests, s);
    }
    unsigned long nofile = raise_nofile();
    unsigned max_conns = s->opts.max_connections ? s->opts.max_connections
                                                 : TB__DEFAULT_MAX_CONNS;
    unsigned long fit = nofile > 2 * TB__FD_RESERVE ? nofile - TB__FD_RESERVE : nofile / 2;
    if (max_conns > fit) {
        if (s->opts.max_connections)
            tb_log_warn(NULL, "max_connections %u lowered to %lu to fit the open-file limit %lu",
                        max_conns, fit, nofile);
        max_conns = (unsigned)fit;
    }
    unsigned per_addr = s->opts.max_connections_per_addr ? s->opts.max_connections_per_addr
                                                         : TB__DEFAULT_MAX_PER_ADDR;
    tb__door_opts dopts = {s->api->name, s->opts.header_timeout_ms ? s->opts.header_timeout_ms
                                                                    : 10000,
                           max_conns, per_addr, s->tls_cert != NULL};
    bool ipv6 = false;
    rc = listen_on(s, err, &ipv6);
    if (rc != 0)
        goto fail;
    s->door = tb__door_new(&dopts, err);
    if (!s->door) {
        rc = TB_ENOMEM;
        goto fail;
    }
    /* The front door accepts (door.c) and hands sockets over with MHD_add_connection.
     * poll(), not epoll: with an epoll worker pool, libmicrohttpd 0.9.75 raced its quiesce
     * against a waking worker and MHD_PANICked (tests/unit/test_http_stop_race.c); poll()
     * workers also take any number of descriptors, unlike select(). */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_TURBO | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG | MHD_USE_NO_LISTEN_SOCKET;
    if (ipv6)
        flags |= MHD_USE_IPv6;
    struct MHD_OptionItem tls[5];
    size_t nt = 0;
    if (s->tls_cert) {
        flags |= MHD_USE_TLS;
        tls[nt++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, s->tls_cert};
        tls[nt++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, s->tls_key};
        tls[nt++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0, s->tls_prio};
        if (s->tls_ca)
            tls[nt++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, s->tls_ca};
    }
    tls[nt] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    unsigned threads = s->opts.threads;
    if (threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (unsigned)n : 1;
    }

    atomic_store(&s->stopping, false);
    errno = 0;
    /* libmicrohttpd's own cap sits above the door's, which answers first (503). */
    unsigned mhd_limit = max_conns + 16 * threads;
    s->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_access, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
        MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_LIMIT, mhd_limit,
        MHD_OPTION_CONNECTION_TIMEOUT, s->opts.conn_timeout_s, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, s, MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
        MHD_OPTION_UNESCAPE_CALLBACK, keep_raw, NULL, MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
    if (!s->daemon) {
        rc = tb_error_set(err, TB_EIO, "cannot start the HTTP server on %s:%u: %s", s->host,
                          (unsigned)s->opts.port, errno ? strerror(errno) : "unknown error");
        goto fail;
    }
    rc = tb__door_start(s->door, s->listen_fd, s->daemon, err);
    if (rc != 0) {
        MHD_stop_daemon(s->daemon);
        s->daemon = NULL;
        goto fail;
    }
    pthread_mutex_unlock(&s->lock);
    return 0;

fail:
    tb__door_free(s->door);
    s->door = NULL;
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    s->listen_fd = -1;
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int tb_server_stop(tb_server *s)
{
    pthread_mutex_lock(&s->lock);
    if (!s->daemon)
        goto out;
    /* Responses sent from now on close their connection, so keep-alive clients move on. */
    atomic_store(&s->stopping, true);
    tb__door_stop_accepting(s->door);
    close(s->listen_fd); /* new clients are refused by the kernel now, not queued */
    s->listen_fd = -1;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    unsigned left;
    while ((left = atomic_load(&s->in_flight)) > 0) {
        if (ms_since(&t0) >= (double)s->opts.shutdown_grace_ms) {
            /* A client still sending its request (or a handler past the grace) must not turn
             * a clean stop into a failure: its connection is cut, which is what the grace
             * period promises. Handlers already running finish before the workers stop. */
            tb_log_warn(NULL, "grace period over: cutting %u requests still in flight", left);
            tb__door_count_cut_at_stop(s->door, left);
            break;
        }
        struct timespec nap = {0, 2 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
    MHD_stop_daemon(s->daemon);
    s->daemon = NULL;
    tb__door_stats(s->door, &s->last_stats);
    tb__door_free(s->door);
    s->door = NULL;
    /* the spans of the last requests go out before the process goes */
    tb_trace_flush(s->opts.shutdown_grace_ms > 2000 ? 2000 : (long)s->opts.shutdown_grace_ms);
out:
    pthread_mutex_unlock(&s->lock);
    return 0;
}

void tb_server_free(tb_server *s)
{
    if (!s)
        return;
    tb_server_stop(s);
    pthread_mutex_destroy(&s->lock);
    close(s->wake_fd);
    tb_jwt_verifier_free(s->own_verifier);
    tb__policy_free(s->policy);
    tls_free(s);
    tb_metrics_fn_remove(NULL, s);
    for (size_t i = 0; i < s->n_ready; i++)
        free(s->ready[i].name);
    free((char *)s->metrics_path);
    free(s->host);
    free(s);
}


/* The index of the operation with this operationId, or n_ops. */
static size_t op_index(const tb_server *s, const char *operation_id)
{
    size_t i = 0;
    while (operation_id && i < s->api->n_ops && strcmp(s->api->ops[i].operation_id, operation_id))
        i++;
    return operation_id ? i : s->api->n_ops;
}

int tb_server_set_op_timeout(tb_server *s, const char *operation_id, unsigned ms)
{
    return tb__policy_set_timeout(s->policy, op_index(s, operation_id), ms);
}

int tb_server_set_rate_limit(tb_server *s, const char *operation_id, const tb_rate_limit *l)
{
    return tb__policy_set_limit(s->policy, op_index(s, operation_id), l);
}

void tb_server_shutdown(tb_server *s)
{
    uint64_t one = 1;
    ssize_t w = write(s->wake_fd, &one, sizeof one);
    (void)w; /* EAGAIN: the counter is already set, which is all that matters */
}

int tb_server_run(tb_server *s, tb_error *err)
{
    int rc = 0;
    int sfd = -1;
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, &old);

    sfd = signalfd(-1, &set, SFD_CLOEXEC);
    if (sfd < 0) {
        rc = tb_error_set(err, TB_EIO, "signalfd: %s", strerror(errno));
        goto fail;
    }
    rc = tb_server_start(s, err);
    if (rc != 0)
        goto fail;

    tb_ctx lctx;
    memset(&lctx, 0, sizeof lctx);
    lctx.service = s->api->name;
    tb_log_info(&lctx, "listening on %s:%u", s->host, (unsigned)tb_server_port(s));

    struct pollfd pf[2] = {{sfd, POLLIN, 0}, {s->wake_fd, POLLIN, 0}};
    while (poll(pf, 2, -1) < 0) {
        if (errno != EINTR) {
            tb_log_error(&lctx, "poll: %s", strerror(errno));
            break;
        }
    }
    if (pf[0].revents & POLLIN) {
        struct signalfd_siginfo si;
        if (read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
            tb_log_info(&lctx, "received SIG%s, stopping", sigabbrev_np((int)si.ssi_signo));
    }
    if (pf[1].revents & POLLIN) {
        uint64_t v;
        if (read(s->wake_fd, &v, sizeof v) == (ssize_t)sizeof v)
            tb_log_info(&lctx, "shutdown requested, stopping");
    }
    /* not ready from now on; keep serving while load balancers notice */
    atomic_store(&s->draining, true);
    if (s->opts.drain_delay_ms) {
        tb_log_info(&lctx, "draining: /health/ready answers 503; still serving for %u ms",
                    s->opts.drain_delay_ms);
        struct timespec nap = {(time_t)(s->opts.drain_delay_ms / 1000),
                               (long)(s->opts.drain_delay_ms % 1000) * 1000000L};
        while (nanosleep(&nap, &nap) != 0 && errno == EINTR)
            ;
    }
    rc = tb_server_stop(s);
    tb_log_info(&lctx, "stopped");

fail:
    if (sfd >= 0)
        close(sfd);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}
