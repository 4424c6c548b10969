/*
 * The service's own token (tablium/token.h): a fixed SERVICE_AUTH_TOKEN, or OAuth2 client
 * credentials exchanged at AUTH_SERVICE_URL/oauth/token and renewed before expiry.
 */
#include "tablium/token.h"

#include "tablium/log.h"

#include <jansson.h>
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
    tb_client *auth;   /* client of the Auth service, for renewals */
    char *client_id, *client_secret, *scope;
    char *token;       /* current token (fetched) */
    int64_t renew_at;  /* monotonic ms: renew from here */
    int64_t expires;   /* monotonic ms: unusable from here */
    int64_t next_try;  /* monotonic ms: no fetch before (after a failure) */
    bool renewing;     /* one caller fetches; the others go on with the current token */
} token_state;

/* Under lock: token, renew_at, expires, next_try, renewing. The configuration (fixed, auth,
 * client_id, client_secret, scope, service) is set by tb_service_token_init before any client
 * exists and stays until tb_service_token_shutdown, so calls read it without the lock. */
static token_state g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, "", NULL,
                        NULL, NULL, NULL, NULL, NULL, 0, 0, 0, false};

/* How long a call waits for a renewal another call is making, at most (its deadline first). */
#define WAIT_RENEWAL_MS 5000

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* Exchanges the client credentials for a token and installs it; a failure holds the next try
 * back a second. Not under g.lock (the exchange may take the whole call budget): one caller at
 * a time, by g.renewing. 0 or a TB_E... code. */
static int fetch(tb_error *err)
{
    int64_t now = tb_clock_ms();
    json_t *req = json_pack("{s:s, s:s, s:s}", "grant_type", "client_credentials", "client_id",
                            g.client_id, "client_secret", g.client_secret);
    if (req && g.scope)
        json_object_set_new(req, "scope", json_string(g.scope));
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!body)
        return tb_error_set(err, TB_ENOMEM, "out of memory");
    tb_arena *a = tb_arena_new(4096);
    if (!a) {
        free(body);
        return tb_error_set(err, TB_ENOMEM, "out of memory");
    }
    tb_ctx ctx;
    tb_ctx_init(&ctx, a, NULL);
    int rc;
    tb_client_call call = {.method = "POST", .path = "/oauth/token", .body = body,
                           .body_len = strlen(body)};
    tb_client_res res;
    rc = tb_client_send(g.auth, &ctx, &call, &res, err);
    free(body);
    if (rc == 0 && res.status != 200)
        rc = tb_error_set(err, TB_EUPSTREAM, "Auth answered %d to the token request: %.200s",
                          res.status, res.body);
    json_t *j = rc == 0 ? json_loadb(res.body, res.body_len, 0, NULL) : NULL;
    if (rc == 0 && !j)
        rc = tb_error_set(err, TB_EUPSTREAM, "Auth's token answer is not JSON");
    /* the token object, bare (RFC 6749 section 5.1) or in the data envelope */
    const json_t *t = j && json_is_object(json_object_get(j, "data")) ? json_object_get(j, "data")
                                                                        : j;
    const char *tok = json_string_value(json_object_get(t, "access_token"));
    json_int_t ttl = json_integer_value(json_object_get(t, "expires_in"));
    if (rc == 0 && (!tok || !*tok || ttl <= 0))
        rc = tb_error_set(err, TB_EUPSTREAM, "Auth's token answer has no access_token and "
                                             "expires_in");
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

int tb_service_token_init(const char *service, tb_error *err)
{
    tb_service_token_shutdown();
    pthread_mutex_lock(&g.lock);
    snprintf(g.service, sizeof g.service, "%s", service ? service : "service");
    int rc = 0;
    const char *fixed = env("SERVICE_AUTH_TOKEN"), *url = env("AUTH_SERVICE_URL"),
               *id = env("TB_SERVICE_CLIENT_ID"), *secret = env("TB_SERVICE_CLIENT_SECRET");
    if (fixed) {
        g.fixed = strdup(fixed);
        g.on = g.fixed != NULL;
        if (!g.on)
            rc = tb_error_set(err, TB_ENOMEM, "out of memory");
    } else if (id || secret) {
        if (!url || !id || !secret) {
            rc = tb_error_set(err, TB_EINVAL, "service token: AUTH_SERVICE_URL, "
                                              "TB_SERVICE_CLIENT_ID and TB_SERVICE_CLIENT_SECRET "
                                              "go together");
        } else {
            g.auth = tb_client_new(url, NULL, err);
            g.client_id = strdup(id);
            g.client_secret = strdup(secret);
            const char *scope = env("TB_SERVICE_SCOPE");
            g.scope = scope ? strdup(scope) : NULL;
            if (!g.auth || !g.client_id || !g.client_secret)
                rc = err && err->code ? err->code : tb_error_set(err, TB_ENOMEM, "no memory");
            g.on = rc == 0;
        }
    }
    pthread_mutex_unlock(&g.lock);
    tb_error ferr = TB_ERROR_INIT;
    if (rc == 0 && g.auth && fetch(&ferr) != 0)
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
            if (fetch(&err) != 0)
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
    free(g.client_secret);
    free(g.scope);
    tb_client *c = g.auth;
    g.fixed = g.token = g.client_id = g.client_secret = g.scope = NULL;
    g.auth = NULL;
    g.renew_at = g.expires = g.next_try = 0;
    pthread_mutex_unlock(&g.lock);
    tb_client_free(c);
}
