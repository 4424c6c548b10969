/*
 * The Auth service as token issuer (openapi/auth.yaml): user tokens (POST /auth/login), service
 * tokens (OAuth2 client credentials, POST /oauth/token), the JWK Set and key rotation. Keys:
 * keyring.c. Settings come from the environment (README "Auth: the token issuer").
 */
#include "auth/auth.h"
#include "auth_state.h"

#include "tablium/ids.h"
#include "tablium/log.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define JWKS_CACHE_CONTROL "public, max-age=60"

/* ---- settings ---- */

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

static int env_seconds(const char *name, int64_t dflt, int64_t min, int64_t *out, tb_error *err)
{
    const char *v = getenv(name);
    if (!v || !*v) {
        *out = dflt;
        return 0;
    }
    char *end = NULL;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || *end || end == v || x < min || x > 100LL * 365 * 24 * 3600)
        return tb_error_set(err, TB_EINVAL, "auth: %s=%s is not a number of seconds >= %lld",
                            name, v, (long long)min);
    *out = x;
    return 0;
}

/* RFC 6749 section 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ) */
static bool scope_token_ok(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e)
            return false;
    }
    return true;
}

static void clients_free(auth_state *s)
{
    for (size_t i = 0; i < s->n_clients; i++) {
        free(s->clients[i].id);
        for (size_t j = 0; j < s->clients[i].n_scopes; j++)
            free(s->clients[i].scopes[j]);
        free(s->clients[i].scopes);
    }
    free(s->clients);
    s->clients = NULL;
    s->n_clients = 0;
}

/* One "id:secret:scope scope..." entry of AUTH_CLIENTS (no commas in it). */
static int client_parse(const char *e, size_t n, auth_client_conf *c, tb_error *err)
{
    const char *c1 = memchr(e, ':', n);
    const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(e + n - c1 - 1)) : NULL;
    if (!c2 || c1 == e || c2 == c1 + 1)
        return tb_error_set(err, TB_EINVAL,
                            "auth: AUTH_CLIENTS: an entry (client '%.*s') is not "
                            "id:secret:scopes",
                            (int)(c1 ? c1 - e : 0), e);
    if (!(c->id = strndup(e, (size_t)(c1 - e))))
        return TB_ENOMEM;
    SHA256((const unsigned char *)c1 + 1, (size_t)(c2 - c1 - 1), c->secret_sha256);
    const char *p = c2 + 1, *end = e + n;
    while (p < end) {
        while (p < end && *p == ' ')
            p++;
        const char *q = p;
        while (q < end && *q != ' ')
            q++;
        if (q == p)
            break;
        if (!scope_token_ok(p, (size_t)(q - p)))
            return tb_error_set(err, TB_EINVAL, "auth: AUTH_CLIENTS: client %s: bad scope '%.*s'",
                                c->id, (int)(q - p), p);
        if ((size_t)(q - p) == 1 && *p == '*') {
            c->any_scope = true;
        } else {
            char **ns = realloc(c->scopes, (c->n_scopes + 1) * sizeof *ns);
            if (!ns)
                return TB_ENOMEM;
            c->scopes = ns;
            if (!(c->scopes[c->n_scopes] = strndup(p, (size_t)(q - p))))
                return TB_ENOMEM;
            c->n_scopes++;
        }
        p = q;
    }
    return 0;
}

/* AUTH_CLIENTS: comma-separated "client_id:client_secret:scopes", scopes space-separated, "*"
 * allowing any. An id and a secret hold no ':' nor ','. */
static int clients_parse(auth_state *s, const char *spec, tb_error *err)
{
    const char *p = spec;
    while (*p) {
        while (*p == ',' || isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        const char *q = strchr(p, ',');
        size_t n = q ? (size_t)(q - p) : strlen(p);
        while (n > 0 && isspace((unsigned char)p[n - 1]))
            n--;
        auth_client_conf *nc = realloc(s->clients, (s->n_clients + 1) * sizeof *nc);
        if (!nc)
            return TB_ENOMEM;
        s->clients = nc;
        auth_client_conf *c = &s->clients[s->n_clients++];
        memset(c, 0, sizeof *c);
        int rc = client_parse(p, n, c, err);
        if (rc)
            return rc == TB_ENOMEM ? tb_error_set(err, rc, "auth: out of memory") : rc;
        for (size_t i = 0; i + 1 < s->n_clients; i++)
            if (strcmp(s->clients[i].id, c->id) == 0)
                return tb_error_set(err, TB_EINVAL, "auth: AUTH_CLIENTS: client %s twice", c->id);
        p += n;
    }
    return 0;
}

int auth_tokens_init(auth_state *s, tb_error *err)
{
    int64_t rotate_s, ahead_s, grace_s;
    int rc;
    const char *algname = env_or("AUTH_SIGNING_ALG", "ES256");
    tb_jwt_alg alg = tb_jwt_alg_parse(algname);
    if (alg != TB_JWT_ES256 && alg != TB_JWT_EDDSA && alg != TB_JWT_RS256)
        return tb_error_set(err, TB_EINVAL, "auth: AUTH_SIGNING_ALG=%s: use ES256, EdDSA or RS256",
                            algname);
    if ((rc = env_seconds("AUTH_TOKEN_TTL_S", 900, 1, &s->token_ttl_s, err)) ||
        (rc = env_seconds("AUTH_KEY_ROTATE_S", 0, 0, &rotate_s, err)) ||
        (rc = env_seconds("AUTH_KEY_PUBLISH_AHEAD_S", 60, 0, &ahead_s, err)) ||
        (rc = env_seconds("AUTH_KEY_RETIRE_GRACE_S", 60, 0, &grace_s, err)))
        return rc;
    s->issuer = strdup(env_or("AUTH_ISSUER", "tablium-auth"));
    s->audience = strdup(env_or("AUTH_AUDIENCE", "tablium"));
    if (!s->issuer || !s->audience)
        return tb_error_set(err, TB_ENOMEM, "auth: out of memory");
    if ((rc = clients_parse(s, env_or("AUTH_CLIENTS", ""), err)))
        return rc;
    /* what an unknown account's password is checked against, at the same cost */
    if (auth_password_hash("no such account", s->pbkdf2_iterations, s->dummy_hash))
        return tb_error_set(err, TB_EIO, "auth: no randomness");
    auth_keyring_opts ko = {alg, rotate_s, ahead_s, s->token_ttl_s + grace_s,
                            getenv("AUTH_JWKS_FILE")};
    return auth_keyring_new(s->db, &s->mu, &ko, &s->keys, err);
}

void auth_tokens_fini(auth_state *s)
{
    auth_keyring_free(s->keys);
    s->keys = NULL;
    clients_free(s);
    free(s->issuer);
    free(s->audience);
    s->issuer = s->audience = NULL;
}

/* ---- minting ---- */

/* A signed access token for sub, with scope (may be NULL: none), into the arena. */
static char *mint(tb_ctx *ctx, auth_state *s, const char *sub, const char *scope)
{
    char jti[37];
    tb_uuid_new(jti);
    int64_t now = (int64_t)time(NULL);
    json_t *claims = json_pack("{s:s, s:s, s:s, s:I, s:I, s:s}", "iss", s->issuer, "sub", sub,
                               "aud", s->audience, "iat", (json_int_t)now, "exp",
                               (json_int_t)(now + s->token_ttl_s), "jti", jti);
    if (claims && scope && *scope && json_object_set_new(claims, "scope", json_string(scope)))
        json_decref(claims), claims = NULL;
    tb_jwt_key *key = NULL;
    char *tok = NULL, *out = NULL;
    tb_error err = TB_ERROR_INIT;
    if (!claims)
        goto out;
    if (auth_keyring_signing_key(s->keys, &key, &err) || tb_jwt_sign(key, claims, NULL, &tok, &err))
        tb_log_error(ctx, "auth: cannot sign a token: %s", err.message);
    else
        out = tb_arena_strdup(ctx->arena, tok);
out:
    free(tok);
    tb_jwt_key_free(key);
    json_decref(claims);
    tb_error_deinit(&err);
    return out;
}

static int token_answer(tb_ctx *ctx, auth_state *s, const char *sub, const char *scope,
                        auth_token_response *t)
{
    if (!(t->access_token = mint(ctx, s, sub, scope)))
        return TB_EIO;
    t->token_type = AUTH_TOKEN_RESPONSE_TOKEN_TYPE_BEARER;
    t->expires_in = s->token_ttl_s;
    t->has_scope = scope && *scope;
    t->scope = t->has_scope ? (char *)scope : NULL;
    return 0;
}

/* ---- POST /auth/login ---- */

int auth_login(tb_ctx *ctx, const auth_login_req *req, auth_login_resp *resp)
{
    auth_state *s = ctx->state;
    char id[64] = "", hash[160] = "";
    sqlite3_stmt *st = NULL;
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    if (sqlite3_prepare_v2(s->db,
                           "SELECT id, password_hash FROM accounts WHERE username = ?1 COLLATE NOCASE "
                           "OR email = ?1 COLLATE NOCASE LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK) {
        tb_log_error(ctx, "auth: prepare login: %s", sqlite3_errmsg(s->db));
        rc = TB_EIO;
    } else {
        sqlite3_bind_text(st, 1, req->body.username, -1, SQLITE_STATIC);
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW) {
            snprintf(id, sizeof id, "%s", (const char *)sqlite3_column_text(st, 0));
            snprintf(hash, sizeof hash, "%s", (const char *)sqlite3_column_text(st, 1));
        } else if (step != SQLITE_DONE) {
            tb_log_error(ctx, "auth: login: %s", sqlite3_errmsg(s->db));
            rc = TB_EIO;
        }
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->mu);
    if (rc)
        return rc;
    /* the same PBKDF2 work and the same answer for an unknown account and a wrong password */
    bool ok = auth_password_check(req->body.password, *id ? hash : s->dummy_hash) && *id;
    if (!ok) {
        resp->status = AUTH_LOGIN_401;
        tb_api_error_set(&resp->s401, ctx, "invalid_credentials", "wrong username or password");
        return 0;
    }
    if ((rc = token_answer(ctx, s, id, "user", &resp->s200)) != 0)
        return rc;
    tb_log_info(ctx, "auth: login of %s", id);
    resp->status = AUTH_LOGIN_200;
    resp->headers.cache_control = "no-store";
    resp->headers.pragma = "no-cache";
    return 0;
}

/* ---- POST /oauth/token ---- */

static bool client_allows(const auth_client_conf *c, const char *scope, size_t n)
{
    if (c->any_scope)
        return true;
    for (size_t i = 0; i < c->n_scopes; i++)
        if (strlen(c->scopes[i]) == n && memcmp(c->scopes[i], scope, n) == 0)
            return true;
    return false;
}

/* The scopes granted for `requested` (NULL or empty: all the client's), space-separated, in
 * the arena; NULL with *bad set to the first refused scope. */
static char *grant(tb_ctx *ctx, const auth_client_conf *c, const char *requested,
                   const char **bad, size_t *bad_len)
{
    size_t cap = 1;
    if (requested && *requested)
        cap += strlen(requested);
    else
        for (size_t i = 0; i < c->n_scopes; i++)
            cap += strlen(c->scopes[i]) + 1;
    char *out = tb_arena_alloc(ctx->arena, cap);
    if (!out)
        return NULL;
    size_t n = 0;
    out[0] = '\0';
    if (!requested || !*requested) {
        for (size_t i = 0; i < c->n_scopes; i++)
            n += (size_t)sprintf(out + n, "%s%s", n ? " " : "", c->scopes[i]);
        return out;
    }
    for (const char *p = requested; *p;) {
        while (*p == ' ')
            p++;
        const char *q = p;
        while (*q && *q != ' ')
            q++;
        size_t len = (size_t)(q - p);
        if (len == 0)
            break;
        if (!scope_token_ok(p, len) || !client_allows(c, p, len)) {
            *bad = p;
            *bad_len = len;
            return NULL;
        }
        bool dup = false; /* "a b a" grants "a b" */
        for (const char *g = out; *g && !dup;) {
            const char *ge = strchr(g, ' ');
            size_t gl = ge ? (size_t)(ge - g) : strlen(g);
            dup = gl == len && memcmp(g, p, len) == 0;
            g += gl + (ge != NULL);
        }
        if (!dup) {
            if (n)
                out[n++] = ' ';
            memcpy(out + n, p, len);
            out[n += len] = '\0';
        }
        p = q;
    }
    return out;
}

/* An RFC 6749 5.2 error into e: the code and a description formatted in the arena. */
static void oauth_error(tb_ctx *ctx, auth_token_error *e, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void oauth_error(tb_ctx *ctx, auth_token_error *e, const char *code, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    e->error = (char *)code;
    e->error_description = tb_arena_strdup(ctx->arena, msg);
    e->has_error_description = e->error_description != NULL;
}

/* One part of client_secret_basic's credentials, form-urlencoded before base64 (RFC 6749
 * 2.3.1: '+' is a space), decoded into the arena; NULL when malformed. */
static char *form_decoded(tb_ctx *ctx, const char *raw)
{
    char *t = tb_arena_strdup(ctx->arena, raw);
    if (!t)
        return NULL;
    for (char *p = t; *p; p++)
        if (*p == '+')
            *p = ' ';
    return tb_http_pct_decode(ctx->arena, t, strlen(t), NULL);
}

int auth_issue_token(tb_ctx *ctx, const auth_issue_token_req *req, auth_issue_token_resp *resp)
{
    auth_state *s = ctx->state;
    const auth_token_request *b = &req->body;
    resp->headers.cache_control = "no-store"; /* RFC 6749 5.1, errors included */
    resp->headers.pragma = "no-cache";
    /* the client's credentials: HTTP Basic (client_secret_basic) or the body
     * (client_secret_post), never both (RFC 6749 2.3.1); a client_id beside Basic that names
     * the same client is what some libraries send, and is taken */
    const char *basic = tb_http_auth_credentials(ctx->http, "Basic");
    const char *id = b->has_client_id ? b->client_id : NULL;
    const char *secret = b->has_client_secret ? b->client_secret : NULL;
    if (basic) {
        char u[400], pw[600];
        char *du = NULL, *dp = NULL;
        if (tb_http_basic_decode(basic, u, sizeof u, pw, sizeof pw)) {
            du = form_decoded(ctx, u);
            dp = form_decoded(ctx, pw);
        }
        OPENSSL_cleanse(pw, sizeof pw);
        if (!du || !dp || !*du) {
            resp->status = AUTH_ISSUE_TOKEN_401;
            resp->headers.www_authenticate = "Basic realm=\"tablium-auth\"";
            oauth_error(ctx, &resp->s401, "invalid_client",
                        "the Basic credentials are not base64 of a form-encoded id:secret");
            return 0;
        }
        if (secret || (id && strcmp(id, du) != 0)) {
            resp->status = AUTH_ISSUE_TOKEN_400;
            oauth_error(ctx, &resp->s400, "invalid_request",
                        "the client authenticates once: Basic credentials or client_id and "
                        "client_secret in the body, not both");
            return 0;
        }
        id = du;
        secret = dp;
    } else if (!id || !secret) {
        resp->status = AUTH_ISSUE_TOKEN_401; /* RFC 6749 5.2: no client authentication */
        resp->headers.www_authenticate = "Basic realm=\"tablium-auth\"";
        oauth_error(ctx, &resp->s401, "invalid_client",
                    "no client credentials: send Authorization: Basic, or client_id and "
                    "client_secret in the body");
        return 0;
    }
    if (strcmp(b->grant_type, "client_credentials") != 0) {
        resp->status = AUTH_ISSUE_TOKEN_400;
        oauth_error(ctx, &resp->s400, "unsupported_grant_type",
                    "grant_type must be client_credentials");
        return 0;
    }
    const auth_client_conf *c = NULL;
    for (size_t i = 0; i < s->n_clients && !c; i++)
        if (strcmp(s->clients[i].id, id) == 0)
            c = &s->clients[i];
    unsigned char got[32];
    static const unsigned char none[32];
    SHA256((const unsigned char *)secret, strlen(secret), got);
    bool ok = CRYPTO_memcmp(got, c ? c->secret_sha256 : none, sizeof got) == 0 && c;
    if (!ok) {
        tb_log_warn(ctx, "auth: token refused to client %.64s: unknown client or wrong secret",
                    id);
        resp->status = AUTH_ISSUE_TOKEN_401;
        if (basic)
            resp->headers.www_authenticate = "Basic realm=\"tablium-auth\"";
        oauth_error(ctx, &resp->s401, "invalid_client", "unknown client or wrong secret");
        return 0;
    }
    const char *bad = NULL;
    size_t bad_len = 0;
    char *scope = grant(ctx, c, b->has_scope ? b->scope : NULL, &bad, &bad_len);
    if (!scope && !bad)
        return TB_ENOMEM;
    if (!scope) {
        resp->status = AUTH_ISSUE_TOKEN_400;
        oauth_error(ctx, &resp->s400, "invalid_scope", "client %s may not have scope %.*s",
                    c->id, (int)(bad_len > 100 ? 100 : bad_len), bad);
        return 0;
    }
    int rc = token_answer(ctx, s, c->id, scope, &resp->s200);
    if (rc)
        return rc;
    tb_log_info(ctx, "auth: service token for %s (scope '%s')", c->id, scope);
    resp->status = AUTH_ISSUE_TOKEN_200;
    return 0;
}

/* ---- GET /.well-known/jwks.json ---- */

int auth_get_jwks(tb_ctx *ctx, const auth_get_jwks_req *req, auth_get_jwks_resp *resp)
{
    (void)req;
    auth_state *s = ctx->state;
    tb_error err = TB_ERROR_INIT;
    json_t *set = auth_keyring_jwks(s->keys, &err);
    const json_t *keys = json_object_get(set, "keys");
    int rc = 0;
    if (!keys) {
        tb_log_error(ctx, "auth: cannot make the JWK Set: %s", err.message);
        rc = TB_EIO;
        goto out;
    }
    auth_jwk_set *out = &resp->s200;
    out->n_keys = json_array_size(keys);
    out->keys = tb_arena_calloc(ctx->arena, out->n_keys ? out->n_keys : 1, sizeof *out->keys);
    if (!out->keys) {
        rc = TB_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < out->n_keys && rc == 0; i++)
        if ((rc = auth_jwk_from_json(json_array_get(keys, i), ctx->arena, &out->keys[i], &err)))
            tb_log_error(ctx, "auth: a key does not fit the Jwk schema: %s", err.message);
    resp->status = AUTH_GET_JWKS_200;
    resp->headers.cache_control = JWKS_CACHE_CONTROL;
out:
    json_decref(set);
    tb_error_deinit(&err);
    return rc;
}

/* ---- POST /auth/keys/rotate ---- */

static char *rfc3339(tb_arena *a, int64_t t)
{
    char buf[32];
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return tb_arena_strdup(a, buf);
}

int auth_rotate_signing_key(tb_ctx *ctx, const auth_rotate_signing_key_req *req,
                            auth_rotate_signing_key_resp *resp)
{
    (void)req;
    auth_state *s = ctx->state;
    if (!ctx->claims) { /* the runtime checks the token and its scope before we run */
        resp->status = AUTH_ROTATE_SIGNING_KEY_401;
        tb_api_error_set(&resp->s401, ctx, "unauthorized", "a service token is required");
        return 0;
    }
    auth_rotation_info info;
    tb_error err = TB_ERROR_INIT;
    int rc = auth_keyring_rotate(s->keys, &info, &err);
    if (rc) {
        tb_log_error(ctx, "auth: rotation failed: %s", err.message);
        tb_error_deinit(&err);
        return rc;
    }
    const char *by = json_string_value(json_object_get(ctx->claims, "sub"));
    tb_log_info(ctx, "auth: key rotation by %s: new key %s (%s) signs from %lld", by ? by : "?",
                info.kid, tb_jwt_alg_name(info.alg), (long long)info.active_from);
    auth_rotation *r = &resp->s200;
    r->kid = tb_arena_strdup(ctx->arena, info.kid);
    r->alg = info.alg == TB_JWT_RS256   ? AUTH_ROTATION_ALG_RS256
             : info.alg == TB_JWT_EDDSA ? AUTH_ROTATION_ALG_ED_DSA
                                        : AUTH_ROTATION_ALG_ES256;
    r->created_at = rfc3339(ctx->arena, info.created);
    r->active_from = rfc3339(ctx->arena, info.active_from);
    r->has_previous_retires_at = info.previous_retire_at != 0;
    r->previous_retires_at =
        info.previous_retire_at ? rfc3339(ctx->arena, info.previous_retire_at) : NULL;
    if (!r->kid || !r->created_at || !r->active_from ||
        (r->has_previous_retires_at && !r->previous_retires_at))
        return TB_ENOMEM;
    resp->status = AUTH_ROTATE_SIGNING_KEY_200;
    return 0;
}
