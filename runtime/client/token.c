/*
 * The service's own token (tablium/token.h): a fixed SERVICE_AUTH_TOKEN, or OAuth2 client
 * credentials (RFC 6749 4.4) exchanged at TB_SERVICE_TOKEN_URL (AUTH_SERVICE_URL/oauth/token by
 * default) and renewed before expiry.
 */
#include "tablium/token.h"

#include "tablium/log.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

typedef struct token_state {
    pthread_mutex_t lock;
    pthread_cond_t renewed; /* a renewal ended (renewing went false) */
    bool on;
    char service[64];
    char *fixed;       /* SERVICE_AUTH_TOKEN */
    tb_client *auth;   /* client of the token endpoint's origin, for renewals */
    char *path;        /* the token endpoint's path (and query) at that origin */
    char *client_id, *client_secret, *scope, *audience;
    bool post;         /* client_secret_post: the credentials in the body, not Basic */
    char *token;       /* current token (fetched) */
    int64_t renew_at;  /* monotonic ms: renew from here */
    int64_t expires;   /* monotonic ms: unusable from here */
    int64_t next_try;  /* monotonic ms: no fetch before (after a failure) */
    bool renewing;     /* one caller fetches; the others go on with the current token */
} token_state;

/* Under lock: token, renew_at, expires, next_try, renewing. The configuration (fixed, auth,
 * path, client_id, client_secret, scope, audience, post, service) is set by
 * tb_service_token_init before any client exists and stays until tb_service_token_shutdown, so
 * calls read it without the lock. */
static token_state g = {.lock = PTHREAD_MUTEX_INITIALIZER, .renewed = PTHREAD_COND_INITIALIZER};

/* How long a call waits for a renewal another call is making, at most (its deadline first);
 * also the most a fetch may take. */
#define WAIT_RENEWAL_MS 5000

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* "&name=value" (no '&' first), value form-urlencoded. */
static void form_param(tb_buf *b, const char *name, const char *value)
{
    if (b->len)
        tb_buf_putc(b, '&');
    tb_buf_puts(b, name);
    tb_buf_putc(b, '=');
    if (tb_url_encode(b, value, strlen(value), true) != 0)
        b->oom = true;
}

/* Exchanges the client credentials for a token (RFC 6749 4.4: a form-urlencoded POST, the
 * client authenticated by Basic or in the body) and installs it; a failure holds the next try
 * back a second. Not under g.lock (the exchange may take the whole call budget): one caller at
 * a time, by g.renewing. `caller` (may be NULL) lends its deadline. 0 or a TB_E... code. */
static int fetch(const tb_ctx *caller, tb_error *err)
{
    int64_t now = tb_clock_ms();
    tb_arena *a = tb_arena_new(4096);
    if (!a)
        return tb_error_set(err, TB_ENOMEM, "out of memory");
    tb_ctx ctx;
    tb_ctx_init(&ctx, a, caller ? caller->request_id : NULL);
    ctx.deadline_ms = now + WAIT_RENEWAL_MS;
    if (caller && caller->deadline_ms > 0 && caller->deadline_ms < ctx.deadline_ms)
        ctx.deadline_ms = caller->deadline_ms;
    tb_buf body = TB_BUF_INIT, basic = TB_BUF_INIT;
    form_param(&body, "grant_type", "client_credentials");
    if (g.scope)
        form_param(&body, "scope", g.scope);
    if (g.audience)
        form_param(&body, "audience", g.audience);
    tb_client_call call = {.method = "POST", .path = g.path};
    int rc = 0;
    if (g.post) {
        form_param(&body, "client_id", g.client_id);
        form_param(&body, "client_secret", g.client_secret);
    } else { /* RFC 6749 2.3.1: each part form-urlencoded, then "id:secret" in base64 */
        tb_buf pair = TB_BUF_INIT;
        if (tb_url_encode(&pair, g.client_id, strlen(g.client_id), true) != 0)
            pair.oom = true;
        tb_buf_putc(&pair, ':');
        if (tb_url_encode(&pair, g.client_secret, strlen(g.client_secret), true) != 0)
            pair.oom = true;
        tb_buf_puts(&basic, "Basic ");
        if (!pair.oom)
            tb_buf_base64(&basic, pair.data, pair.len, false);
        if (pair.data)
            OPENSSL_cleanse(pair.data, pair.len);
        rc = pair.oom || basic.oom ? TB_ENOMEM
                                   : tb_client_call_header(&call, a, "Authorization", basic.data);
        tb_buf_deinit(&pair);
    }
    if (rc == 0 && body.oom)
        rc = TB_ENOMEM;
    if (rc == 0)
        rc = tb_client_call_header(&call, a, "Content-Type",
                                   "application/x-www-form-urlencoded");
    if (rc == 0)
        rc = tb_client_call_header(&call, a, "Accept", "application/json");
    if (rc)
        rc = tb_error_set(err, rc, "out of memory");
    call.body = body.data;
    call.body_len = body.len;
    tb_client_res res;
    if (rc == 0)
        rc = tb_client_send(g.auth, &ctx, &call, &res, err);
    if (body.data)
        OPENSSL_cleanse(body.data, body.len);
    if (basic.data)
        OPENSSL_cleanse(basic.data, basic.len);
    tb_buf_deinit(&body);
    tb_buf_deinit(&basic);
    json_t *j = rc == 0 ? json_loadb(res.body, res.body_len, 0, NULL) : NULL;
    if (rc == 0 && res.status != 200) {
        /* RFC 6749 5.2: {"error": "invalid_client", "error_description": "..."} */
        const char *code = json_string_value(json_object_get(j, "error"));
        const char *why = json_string_value(json_object_get(j, "error_description"));
        if (code)
            rc = tb_error_set(err, TB_EUPSTREAM, "the token endpoint answered %d %.64s%s%.200s",
                              res.status, code, why ? ": " : "", why ? why : "");
        else
            rc = tb_error_set(err, TB_EUPSTREAM, "the token endpoint answered %d: %.200s",
                              res.status, res.body ? res.body : "");
    }
    if (rc == 0 && !j)
        rc = tb_error_set(err, TB_EUPSTREAM, "the token endpoint's answer is not JSON");
    /* the token object, bare (RFC 6749 section 5.1) or in the data envelope */
    const json_t *t = j && json_is_object(json_object_get(j, "data")) ? json_object_get(j, "data")
                                                                        : j;
    const char *tok = json_string_value(json_object_get(t, "access_token"));
    const char *type = json_string_value(json_object_get(t, "token_type"));
    json_int_t ttl = json_integer_value(json_object_get(t, "expires_in"));
    if (rc == 0 && (!tok || !*tok || ttl <= 0))
        rc = tb_error_set(err, TB_EUPSTREAM, "the token endpoint's answer has no access_token "
                                             "and expires_in");
    if (rc == 0 && type && strcasecmp(type, "Bearer") != 0)
        rc = tb_error_set(err, TB_EUPSTREAM, "the token endpoint answered a %.32s token, not a "
                                             "Bearer token", type);
    char *copy = rc == 0 ? strdup(tok) : NULL;
    if (rc == 0 && !copy)
        rc = tb_error_set(err, TB_ENOMEM, "out of memory");
    pthread_mutex_lock(&g.lock);
    if (copy) {
        free(g.token);
        g.token = copy;
        g.expires = now + (int64_t)ttl * 1000;
        g.renew_at = now + (int64_t)ttl * 800;
        g.next_try = 0;
    } else {
        g.next_try = now + 1000;
    }
    pthread_mutex_unlock(&g.lock);
    json_decref(j);
    tb_arena_free(a);
    return rc;
}

/* Splits a token endpoint URL into a new client of its origin (g.auth) and its path (g.path).
 * 0 or a TB_E... code. */
static int endpoint(const char *url, tb_error *err)
{
    const char *sep = strstr(url, "://");
    const char *slash = sep ? strchr(sep + 3, '/') : NULL;
    size_t origin = slash ? (size_t)(slash - url) : strlen(url);
    char *base = strndup(url, origin);
    g.path = strdup(slash ? slash : "/");
    if (!base || !g.path) {
        free(base);
        return tb_error_set(err, TB_ENOMEM, "out of memory");
    }
    g.auth = tb_client_new(base, NULL, err);
    free(base);
    return g.auth ? 0 : err && err->code ? err->code : TB_EINVAL;
}

int tb_service_token_init(const char *service, tb_error *err)
{
    tb_service_token_shutdown();
    pthread_mutex_lock(&g.lock);
    snprintf(g.service, sizeof g.service, "%s", service ? service : "service");
    int rc = 0;
    const char *fixed = env("SERVICE_AUTH_TOKEN"), *base = env("AUTH_SERVICE_URL"),
               *url = env("TB_SERVICE_TOKEN_URL"), *id = env("TB_SERVICE_CLIENT_ID"),
               *secret = env("TB_SERVICE_CLIENT_SECRET"), *how = env("TB_SERVICE_TOKEN_AUTH");
    if (fixed) {
        g.fixed = strdup(fixed);
        g.on = g.fixed != NULL;
        if (!g.on)
            rc = tb_error_set(err, TB_ENOMEM, "out of memory");
    } else if (id || secret) {
        char made[1024];
        if ((!url && !base) || !id || !secret) {
            rc = tb_error_set(err, TB_EINVAL, "service token: TB_SERVICE_CLIENT_ID and "
                                              "TB_SERVICE_CLIENT_SECRET go together, with "
                                              "TB_SERVICE_TOKEN_URL or AUTH_SERVICE_URL");
        } else if (how && strcmp(how, "client_secret_basic") != 0 &&
                   strcmp(how, "client_secret_post") != 0) {
            rc = tb_error_set(err, TB_EINVAL, "TB_SERVICE_TOKEN_AUTH=%.64s: not "
                                              "client_secret_basic or client_secret_post", how);
        } else if (!url && (size_t)snprintf(made, sizeof made, "%s%s", base,
                                            base[strlen(base) - 1] == '/' ? "oauth/token"
                                                                          : "/oauth/token") >=
                               sizeof made) {
            rc = tb_error_set(err, TB_EINVAL, "AUTH_SERVICE_URL is too long");
        } else if ((rc = endpoint(url ? url : made, err)) == 0) {
            g.post = how && strcmp(how, "client_secret_post") == 0;
            g.client_id = strdup(id);
            g.client_secret = strdup(secret);
            const char *scope = env("TB_SERVICE_SCOPE"), *aud = env("TB_SERVICE_TOKEN_AUDIENCE");
            g.scope = scope ? strdup(scope) : NULL;
            g.audience = aud ? strdup(aud) : NULL;
            if (!g.client_id || !g.client_secret || (scope && !g.scope) || (aud && !g.audience))
                rc = tb_error_set(err, TB_ENOMEM, "out of memory");
            g.on = rc == 0;
        }
    }
    pthread_mutex_unlock(&g.lock);
    tb_error ferr = TB_ERROR_INIT;
    if (rc == 0 && g.auth && fetch(NULL, &ferr) != 0)
        tb_log_warn(NULL, "%s: no service token yet (%s); the next call tries again", g.service,
                    ferr.message);
    tb_error_deinit(&ferr);
    if (rc)
        tb_service_token_shutdown();
    return rc;
}

/* Under g.lock: waits while another call renews and there is no usable token, until the
 * renewal ends or the call's deadline (WAIT_RENEWAL_MS at most). */
static void wait_renewal(const tb_ctx *ctx)
{
    long left = tb_deadline_left_ms(ctx);
    long ms = left >= 0 && left < WAIT_RENEWAL_MS ? left : WAIT_RENEWAL_MS;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    while (g.renewing && !(g.token && tb_clock_ms() < g.expires))
        if (pthread_cond_timedwait(&g.renewed, &g.lock, &ts) != 0)
            break;
}

static int before(void *self, tb_ctx *ctx, tb_client_call *call)
{
    (void)self;
    for (size_t i = 0; i < call->n_headers; i++) {
        if (strncasecmp(call->headers[i], "Authorization:", 14) == 0)
            return 0; /* the caller's own credentials win */
    }
    const char *tok = g.fixed; /* fixed: read without the lock (see g) */
    char *value = NULL;
    if (!tok) {
        int64_t now = tb_clock_ms();
        pthread_mutex_lock(&g.lock);
        bool renew = (!g.token || now >= g.renew_at) && !g.renewing && now >= g.next_try;
        g.renewing |= renew;
        pthread_mutex_unlock(&g.lock);
        if (renew) {
            tb_error err = TB_ERROR_INIT;
            if (fetch(ctx, &err) != 0)
                tb_log_warn(ctx, "%s: service token not renewed: %s", g.service, err.message);
            tb_error_deinit(&err);
            pthread_mutex_lock(&g.lock);
            g.renewing = false;
            pthread_cond_broadcast(&g.renewed);
            pthread_mutex_unlock(&g.lock);
        }
        pthread_mutex_lock(&g.lock);
        wait_renewal(ctx); /* the first token is on its way: sent without, the call would fail */
        bool valid = g.token && tb_clock_ms() < g.expires;
        tok = valid ? tb_arena_strdup(ctx->arena, g.token) : NULL; /* renewals free g.token */
        pthread_mutex_unlock(&g.lock);
        if (valid && !tok)
            return TB_ENOMEM;
    }
    if (!tok) { /* fail closed: never a call without the service's credentials */
        tb_log_warn(ctx, "%s: %s %s refused: no service token (the token endpoint failed; the "
                         "next call tries again)", g.service, call->method, call->path);
        return TB_ESTATE;
    }
    size_t n = strlen(tok);
    value = tb_arena_alloc(ctx->arena, n + 8);
    if (!value)
        return TB_ENOMEM;
    memcpy(value, "Bearer ", 7);
    memcpy(value + 7, tok, n + 1);
    return tb_client_call_header(call, ctx->arena, "Authorization", value);
}

/* A 401 to a call made with the current fetched token: it was revoked or its key rotated out
 * before its time, so the next call fetches another (after the usual second after a failure:
 * a 401 loop does not hammer the token endpoint). */
static void after(void *self, tb_ctx *ctx, const tb_client_call *call, int rc,
                  const tb_client_res *res)
{
    (void)self;
    (void)ctx;
    if (rc != 0 || !res || res->status != 401 || g.fixed)
        return;
    const char *sent = NULL;
    for (size_t i = 0; i < call->n_headers && !sent; i++)
        if (strncasecmp(call->headers[i], "Authorization: Bearer ", 22) == 0)
            sent = call->headers[i] + 22;
    pthread_mutex_lock(&g.lock);
    if (sent && g.token && strcmp(sent, g.token) == 0 && g.renew_at > 0) {
        g.renew_at = 0;
        int64_t now = tb_clock_ms();
        if (g.next_try < now + 1000)
            g.next_try = now + 1000;
        tb_log_warn(ctx, "%s: %s %s answered 401 to the service token: a new one is fetched",
                    g.service, call->method, call->path);
    }
    pthread_mutex_unlock(&g.lock);
}

static const tb_client_hook hook = {"service-token", before, after, NULL};

const tb_client_hook *tb_service_token_hook(void)
{
    pthread_mutex_lock(&g.lock);
    bool on = g.on;
    pthread_mutex_unlock(&g.lock);
    return on ? &hook : NULL;
}

void tb_service_token_shutdown(void)
{
    pthread_mutex_lock(&g.lock);
    g.on = false;
    free(g.fixed);
    free(g.token);
    free(g.client_id);
    free(g.scope);
    free(g.audience);
    free(g.path);
    if (g.client_secret)
        OPENSSL_cleanse(g.client_secret, strlen(g.client_secret));
    free(g.client_secret);
    tb_client *c = g.auth;
    g.fixed = g.token = g.client_id = g.client_secret = g.scope = g.audience = g.path = NULL;
    g.post = false;
    g.auth = NULL;
    g.renew_at = g.expires = g.next_try = 0;
    pthread_mutex_unlock(&g.lock);
    tb_client_free(c);
}
