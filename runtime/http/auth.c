/*
 * OpenAPI security, enforced per operation (issue 13). The generated server hands each
 * operation's `security` to tb_http_authorize as alternatives (any one may pass) of
 * requirements (all must pass): HTTP bearer JWTs and OAuth2 / OpenID Connect tokens verified
 * with the server's tb_jwt_verifier, scopes checked against the token's `scope` / `scp`, and
 * API keys in a header, the query or a cookie checked against TB_API_KEYS_<SCHEME>, and HTTP
 * Basic credentials against TB_BASIC_USERS_<SCHEME> ("user:sha256-of-password" entries), and
 * HTTP Digest (RFC 7616) against TB_DIGEST_USERS_<SCHEME> ("user:hex(SHA-256(user:realm:pw))"),
 * and any other HTTP scheme ("Authorization: <scheme> <credentials>") with the server's
 * tb_server_set_http_auth function, else (or when it passes) against TB_HTTP_AUTH_<SCHEME>,
 * else refused.
 *
 * Missing or invalid credentials: 401 with WWW-Authenticate (RFC 6750 for bearer schemes);
 * valid credentials without the scopes: 403 insufficient_scope. The handler finds the verified
 * claims in ctx->claims, valid until the response is sent.
 */
#include "tablium/http.h"
#include "tablium/metrics.h"
#include "tablium/json.h"
#include "tablium/jwt.h"
#include "tablium/log.h"

#include "internal.h"

#include <ctype.h>
#include <pthread.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

/* What one request presented, worked out once however many alternatives look at it. */
typedef struct presented {
    bool bearer_done;
    int bearer_rc;            /* 0: verified; else a TB_JWT_E... code */
    tb_jwt_claims *claims;    /* verified claims (owned until handed to the arena) */
    char why[256];            /* the verifier's message when it refused */
    char basic_user[128];     /* the user a Basic or Digest scheme accepted */
    bool digest_stale;        /* a Digest answer to one of our nonces, but an expired one */
    const char *cert_sub;     /* a mutualTLS scheme passed: the client certificate's CN */
} presented;

static void free_claims(void *p)
{
    tb_jwt_claims_free(p);
}

static int check_bearer(const tb_http_req *req, tb_jwt_verifier *v, presented *pr)
{
    if (pr->bearer_done)
        return pr->bearer_rc;
    pr->bearer_done = true;
    size_t len = 0;
    const char *tok = tb_jwt_bearer(tb_http_req_header(req, "Authorization"), &len);
    if (!tok) {
        pr->bearer_rc = TB_JWT_EMISSING;
        return pr->bearer_rc;
    }
    if (!v) {
        pr->bearer_rc = TB_JWT_ENOKEY;
        snprintf(pr->why, sizeof pr->why, "this service has no keys to verify tokens with");
        return pr->bearer_rc;
    }
    tb_error err = TB_ERROR_INIT;
    pr->bearer_rc = tb_jwt_verify(v, tok, len, &pr->claims, &err);
    if (pr->bearer_rc)
        snprintf(pr->why, sizeof pr->why, "%s", err.message);
    tb_error_deinit(&err);
    return pr->bearer_rc;
}

/* The API key the scheme names, or NULL. */
static const char *api_key_value(const tb_http_req *req, const tb_security_scheme *s)
{
    switch (s->kind) {
    case TB_SEC_API_KEY_HEADER:
        return tb_http_req_header(req, s->param);
    case TB_SEC_API_KEY_QUERY:
        return tb_http_req_query(req, s->param, NULL);
    case TB_SEC_API_KEY_COOKIE:
        return tb_http_req_cookie(req, s->param);
    default:
        return NULL;
    }
}

/* <PREFIX><SCHEME> (scheme name upper-cased, other characters '_'): comma-separated values,
 * each compared with key in constant time. */
static bool listed(const char *prefix, const tb_security_scheme *s, const char *key)
{
    char var[160];
    tb__env_name(var, sizeof var, prefix, s->name);
    const char *keys = getenv(var);
    if (!keys || !key || !*key)
        return false;
    size_t kl = strlen(key);
    bool ok = false;
    for (const char *p = keys; *p;) {
        size_t l = strcspn(p, ",");
        if (l == kl && l > 0)
            ok |= CRYPTO_memcmp(p, key, l) == 0;
        p += l;
        if (*p == ',')
            p++;
    }
    return ok;
}

const char *tb_http_auth_credentials(const tb_http_req *req, const char *scheme)
{
    const char *h = req ? tb_http_req_header(req, "Authorization") : NULL;
    size_t sl = scheme ? strlen(scheme) : 0;
    if (!h || !sl || strncasecmp(h, scheme, sl) != 0 || (h[sl] != ' ' && h[sl] != '\t'))
        return NULL;
    h += sl;
    while (*h == ' ' || *h == '\t')
        h++;
    return h;
}

const char *tb_ctx_header(const tb_ctx *ctx, const char *name)
{
    return ctx && ctx->http ? tb_http_req_header(ctx->http, name) : NULL;
}

bool tb_http_basic_decode(const char *b64, char *user, size_t ucap, char *pass, size_t pcap)
{
    size_t bl = b64 ? strlen(b64) : 0;
    if (bl == 0 || bl > 1024 || bl % 4 || !ucap || !pcap)
        return false;
    unsigned char dec[800];
    int dl = EVP_DecodeBlock(dec, (const unsigned char *)b64, (int)bl);
    if (dl < 0)
        return false;
    while (bl && b64[bl - 1] == '=') { /* EVP_DecodeBlock counts the padding as zero bytes */
        bl--;
        dl--;
    }
    const unsigned char *colon = memchr(dec, ':', (size_t)dl);
    size_t ul = colon ? (size_t)(colon - dec) : 0, pl = colon ? (size_t)dl - ul - 1 : 0;
    bool ok = colon && !memchr(dec, '\0', (size_t)dl) && ul < ucap && pl < pcap;
    if (ok) {
        memcpy(user, dec, ul);
        user[ul] = '\0';
        memcpy(pass, colon + 1, pl);
        pass[pl] = '\0';
    }
    OPENSSL_cleanse(dec, sizeof dec);
    return ok;
}

static void hex_of(const unsigned char *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* HTTP Basic (RFC 7617): "Authorization: Basic base64(user:password)" against
 * TB_BASIC_USERS_<SCHEME>, comma-separated "user:hex(SHA-256(password))" entries (no password
 * is kept in the clear). The digest is compared in constant time. */
static bool basic_ok(const tb_http_req *req, const tb_security_scheme *s, presented *pr,
                     bool *given)
{
    const char *b64 = tb_http_auth_credentials(req, "Basic");
    *given = b64 != NULL;
    if (!*given)
        return false;
    char user[sizeof pr->basic_user], pass[800]; /* a user name too long is none of ours */
    if (!tb_http_basic_decode(b64, user, sizeof user, pass, sizeof pass) || !user[0])
        return false;
    size_t ul = strlen(user);
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)pass, strlen(pass), digest);
    OPENSSL_cleanse(pass, sizeof pass);
    char hex[2 * SHA256_DIGEST_LENGTH + 1];
    hex_of(digest, SHA256_DIGEST_LENGTH, hex);
    char var[160];
    tb__env_name(var, sizeof var, "TB_BASIC_USERS_", s->name);
    const char *users = getenv(var);
    bool ok = false;
    for (const char *p = users ? users : ""; *p;) {
        size_t l = strcspn(p, ",");
        const char *c = memchr(p, ':', l);
        if (c && (size_t)(c - p) == ul && memcmp(p, user, ul) == 0 &&
            l - ul - 1 == 2 * SHA256_DIGEST_LENGTH)
            ok |= CRYPTO_memcmp(c + 1, hex, 2 * SHA256_DIGEST_LENGTH) == 0;
        p += l;
        if (*p == ',')
            p++;
    }
    if (ok)
        memcpy(pr->basic_user, user, ul + 1);
    return ok;
}

/* ---- HTTP Digest (RFC 7616) ---- */

#define DIGEST_NONCE_TTL_MS 300000 /* a nonce is good for 5 minutes (then stale=true) */

static unsigned char digest_secret[32];
static pthread_once_t digest_once = PTHREAD_ONCE_INIT;

static void digest_init(void)
{
    if (getrandom(digest_secret, sizeof digest_secret, 0) != (ssize_t)sizeof digest_secret) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        memcpy(digest_secret, &ts, sizeof ts < sizeof digest_secret ? sizeof ts : sizeof digest_secret);
    }
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A nonce: the time it was made and an HMAC of it under the process's secret, so that the
 * server keeps no state: "<ms hex>.<hmac hex>". */
static void digest_nonce(int64_t ms, char out[96])
{
    pthread_once(&digest_once, digest_init);
    char t[24];
    int tl = snprintf(t, sizeof t, "%llx", (unsigned long long)ms);
    unsigned char mac[SHA256_DIGEST_LENGTH];
    unsigned int ml = 0;
    HMAC(EVP_sha256(), digest_secret, sizeof digest_secret, (const unsigned char *)t, (size_t)tl,
         mac, &ml);
    memcpy(out, t, (size_t)tl);
    out[tl] = '.';
    hex_of(mac, 16, out + tl + 1);
}

/* 1: a nonce of ours and fresh; 0: ours but stale; -1: not ours */
static int digest_nonce_check(const char *n)
{
    const char *dot = strchr(n, '.');
    if (!dot || dot == n || dot - n > 16)
        return -1;
    char *end;
    unsigned long long ms = strtoull(n, &end, 16);
    if (end != dot)
        return -1;
    char want[96];
    digest_nonce((int64_t)ms, want);
    if (strlen(n) != strlen(want) || CRYPTO_memcmp(n, want, strlen(want)) != 0)
        return -1;
    return wall_ms() - (int64_t)ms <= DIGEST_NONCE_TTL_MS ? 1 : 0;
}

/* The value of one auth-param of a Digest header, quoted or not, into out[cap] (unescaped). */
static bool digest_param(const char *h, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    const char *p = h;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *k = p;
        while (*p && *p != '=' && *p != ',' && *p != ' ')
            p++;
        size_t kl = (size_t)(p - k);
        while (*p == ' ')
            p++;
        if (*p != '=')
            continue;
        p++;
        while (*p == ' ')
            p++;
        size_t o = 0;
        bool full = false;
        if (*p == '"') {
            p++;
            while (*p && *p != '"') {
                if (*p == '\\' && p[1])
                    p++;
                if (o + 1 < cap)
                    out[o++] = *p;
                else
                    full = true;
                p++;
            }
            if (*p == '"')
                p++;
        } else {
            while (*p && *p != ',' && *p != ' ') {
                if (o + 1 < cap)
                    out[o++] = *p;
                else
                    full = true;
                p++;
            }
        }
        out[o] = '\0';
        if (kl == nl && strncasecmp(k, name, nl) == 0)
            return !full;
    }
    return false;
}

static void sha256_hex(const char *s, size_t n, char out[2 * SHA256_DIGEST_LENGTH + 1])
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)s, n, d);
    hex_of(d, sizeof d, out);
}

/* "Authorization: Digest username=..., realm, nonce, uri, response, qop=auth, nc, cnonce,
 * algorithm=SHA-256" for the realm (the service's name) against TB_DIGEST_USERS_<SCHEME>. */
static bool digest_ok(const tb_http_req *req, const tb_security_scheme *s, const char *realm,
                      presented *pr, bool *given)
{
    const char *h = tb_http_auth_credentials(req, "Digest");
    *given = h != NULL;
    if (!*given)
        return false;
    char user[128], rlm[128], nonce[96], uri[1024], resp[80], qop[16], nc[16], cnonce[128],
        alg[32];
    if (!digest_param(h, "username", user, sizeof user) || !digest_param(h, "realm", rlm, sizeof rlm) ||
        !digest_param(h, "nonce", nonce, sizeof nonce) || !digest_param(h, "uri", uri, sizeof uri) ||
        !digest_param(h, "response", resp, sizeof resp) || !digest_param(h, "qop", qop, sizeof qop) ||
        !digest_param(h, "nc", nc, sizeof nc) || !digest_param(h, "cnonce", cnonce, sizeof cnonce))
        return false;
    if (!digest_param(h, "algorithm", alg, sizeof alg) || strcasecmp(alg, "SHA-256") != 0 ||
        strcmp(qop, "auth") != 0 || strcmp(rlm, realm) != 0)
        return false;
    int fresh = digest_nonce_check(nonce);
    if (fresh <= 0) {
        pr->digest_stale = fresh == 0;
        return false;
    }
    /* the uri names this request's path */
    size_t ul = strcspn(uri, "?");
    if (ul != req->path_len || memcmp(uri, req->path, ul) != 0)
        return false;
    char var[160];
    tb__env_name(var, sizeof var, "TB_DIGEST_USERS_", s->name);
    const char *users = getenv(var);
    const char *ha1 = NULL;
    size_t nl = strlen(user);
    for (const char *p = users ? users : ""; *p && !ha1;) {
        size_t l = strcspn(p, ",");
        if (l == nl + 1 + 2 * SHA256_DIGEST_LENGTH && memcmp(p, user, nl) == 0 && p[nl] == ':')
            ha1 = p + nl + 1;
        p += l;
        if (*p == ',')
            p++;
    }
    if (!ha1)
        return false;
    char ha2[2 * SHA256_DIGEST_LENGTH + 1], want[2 * SHA256_DIGEST_LENGTH + 1], buf[1400];
    const char *mname = tb_http_method_name(req->method);
    int n = snprintf(buf, sizeof buf, "%s:%s", mname ? mname : req->method_name ? req->method_name : "",
                     uri);
    sha256_hex(buf, (size_t)n, ha2);
    n = snprintf(buf, sizeof buf, "%.*s:%s:%s:%s:%s:%s", 2 * SHA256_DIGEST_LENGTH, ha1, nonce, nc,
                 cnonce, qop, ha2);
    if (n < 0 || (size_t)n >= sizeof buf)
        return false;
    sha256_hex(buf, (size_t)n, want);
    if (strlen(resp) != 2 * SHA256_DIGEST_LENGTH ||
        CRYPTO_memcmp(resp, want, 2 * SHA256_DIGEST_LENGTH) != 0)
        return false;
    if (nl < sizeof pr->basic_user)
        memcpy(pr->basic_user, user, nl + 1);
    return true;
}

/* Another HTTP scheme: "Authorization: <scheme> <credentials>", checked by the server's
 * function, else (or when it passes, returning < 0) against TB_HTTP_AUTH_<SCHEME>. */
static bool other_ok(tb_ctx *ctx, const tb_http_req *req, const tb_security_scheme *s,
                     bool *given)
{
    const char *cred = tb_http_auth_credentials(req, s->param);
    *given = cred != NULL;
    if (!cred || !*cred)
        return false;
    void *ud;
    tb_http_auth_fn fn = tb__req_http_auth(req, &ud);
    int rc = fn ? fn(ud, ctx, s, cred, strlen(cred)) : -1;
    return rc < 0 ? listed("TB_HTTP_AUTH_", s, cred) : rc == 0;
}

/* 0: the requirement passes; 401 or 403 with *code the reason (a TB_JWT_E... code). */
static int check_req(tb_ctx *ctx, const tb_http_req *req, tb_jwt_verifier *v,
                     const tb_security_req *r, presented *pr, int *code,
                     const char **missing_scope, const char *realm)
{
    const tb_security_scheme *s = r->scheme;
    if (s->kind == TB_SEC_MUTUAL_TLS) {
        *code = TB_JWT_EMISSING;
        return tb__req_client_cert(req, &pr->cert_sub) ? 0 : 401;
    }
    if (s->kind == TB_SEC_HTTP_OTHER) {
        bool given = false;
        bool ok = other_ok(ctx, req, s, &given);
        *code = given ? TB_JWT_EARG : TB_JWT_EMISSING;
        return ok ? 0 : 401;
    }
    if (s->kind == TB_SEC_HTTP_DIGEST) {
        bool given = false;
        bool ok = digest_ok(req, s, realm, pr, &given);
        *code = given ? TB_JWT_EARG : TB_JWT_EMISSING;
        return ok ? 0 : 401;
    }
    if (s->kind == TB_SEC_HTTP_BASIC) {
        bool given = false;
        bool ok = basic_ok(req, s, pr, &given);
        *code = given ? TB_JWT_EARG : TB_JWT_EMISSING;
        return ok ? 0 : 401;
    }
    if (s->kind == TB_SEC_API_KEY_HEADER || s->kind == TB_SEC_API_KEY_QUERY ||
        s->kind == TB_SEC_API_KEY_COOKIE) {
        const char *key = api_key_value(req, s);
        *code = key ? TB_JWT_EARG : TB_JWT_EMISSING;
        return listed("TB_API_KEYS_", s, key) ? 0 : 401;
    }
    int rc = check_bearer(req, v, pr);
    if (rc) {
        *code = rc;
        return 401;
    }
    for (size_t i = 0; i < r->n_scopes; i++) {
        if (!tb_jwt_claims_has_scope(pr->claims, r->scopes[i])) {
            *code = TB_JWT_ESCOPE;
            *missing_scope = r->scopes[i];
            return 403;
        }
    }
    return 0;
}

int tb_http_authorize(tb_ctx *ctx, const tb_http_req *req, tb_http_res *res,
                      const tb_security_alt *alts, size_t n)
{
    if (!alts || n == 0)
        return 0;
    size_t lines = 0;
    tb__req_header_lines(req, "Authorization", &lines);
    if (lines > 1) { /* one credential (RFC 9110 11.6.2): which one a proxy checked is unknown */
        tb_metrics_refused(ctx->service, "unauthorized");
        tb_api_error e = {"invalid_request", "the Authorization header is sent more than once",
                          ctx->request_id, NULL, 0};
        int rc = tb_http_res_error(res, ctx, 400, &e);
        return rc ? rc : 1;
    }
    tb_jwt_verifier *v = tb__req_verifier(req);
    presented pr;
    memset(&pr, 0, sizeof pr);
    int best = 0, best_code = TB_JWT_EMISSING;
    const char *scope = NULL;
    bool bearer = false;
    for (size_t a = 0; a < n; a++) {
        int status = 0, code = 0;
        const char *miss = NULL;
        for (size_t i = 0; i < alts[a].n && status == 0; i++) {
            tb_security_kind k = alts[a].reqs[i].scheme->kind;
            bearer |= k == TB_SEC_HTTP_BEARER || k == TB_SEC_OAUTH2 || k == TB_SEC_OPENID;
            status = check_req(ctx, req, v, &alts[a].reqs[i], &pr, &code, &miss,
                               ctx->service ? ctx->service : "tablium");
        }
        if (status == 0) {
            const char *who = pr.basic_user[0] ? pr.basic_user : pr.cert_sub;
            if (!pr.claims && who && *who) {
                /* a Basic user or a client certificate's CN: the handler (and a rate limit per
                 * identity) sees it as `sub` */
                json_t *c = json_pack("{s:s}", "sub", who);
                if (!c || tb_arena_hold_json(ctx->arena, c)) {
                    json_decref(c);
                    return TB_ENOMEM;
                }
                json_decref(c);
                ctx->claims = c;
            }
            if (pr.claims) {
                if (tb_arena_on_free(ctx->arena, free_claims, pr.claims) != 0) {
                    tb_jwt_claims_free(pr.claims);
                    return TB_ENOMEM;
                }
                ctx->claims = tb_jwt_claims_json(pr.claims);
            }
            return tb__rate_after_auth(ctx, req, res) ? 0 : 1;
        }
        /* The answer names the most telling failure: a valid token without the scope (403)
         * over bad credentials over none at all. */
        int rank = status == 403 ? 3 : code != TB_JWT_EMISSING ? 2 : 1;
        int best_rank = best == 403 ? 3 : best && best_code != TB_JWT_EMISSING ? 2 : best ? 1 : 0;
        if (rank > best_rank) {
            best = status;
            best_code = code;
            scope = miss;
        }
    }
    tb_jwt_claims_free(pr.claims);
    /* A failed attempt spends the address's budget of a rate-limited operation (no claims:
     * keyed by the client address), so credentials cannot be guessed at full speed. */
    if (!tb__rate_after_auth(ctx, req, res))
        return 1;

    const char *realm = ctx->service ? ctx->service : "tablium";
    char chal[600];
    size_t cl = 0;
    bool basic = false, digest = false, other = false, mtls_only = true;
    for (size_t a = 0; a < n; a++)
        for (size_t i = 0; i < alts[a].n; i++) {
            const tb_security_scheme *sc = alts[a].reqs[i].scheme;
            mtls_only &= sc->kind == TB_SEC_MUTUAL_TLS;
            basic |= sc->kind == TB_SEC_HTTP_BASIC;
            digest |= sc->kind == TB_SEC_HTTP_DIGEST;
            other |= sc->kind == TB_SEC_HTTP_OTHER;
        }
    if (bearer) {
        /* the Bearer challenge speaks of the bearer token alone: a bad API key or password
         * (EARG) says nothing of one, and with no token sent it carries no error (RFC 6750
         * 3.1); it said error="invalid_token", error_description="invalid argument" */
        int bcode = best_code != TB_JWT_EARG ? best_code
                    : pr.bearer_done         ? pr.bearer_rc
                                             : TB_JWT_EMISSING;
        cl = tb_jwt_www_authenticate(chal, sizeof chal, realm, bcode,
                                     bcode != best_code || !pr.why[0] ? NULL : pr.why, scope);
    }
    if (basic)
        cl += (size_t)snprintf(chal + cl, sizeof chal - cl, "%sBasic realm=\"%s\", charset=\"UTF-8\"",
                               cl ? ", " : "", realm);
    if (digest) {
        char nonce[96];
        digest_nonce(wall_ms(), nonce);
        cl += (size_t)snprintf(chal + cl, sizeof chal - cl,
                               "%sDigest realm=\"%s\", qop=\"auth\", algorithm=SHA-256, "
                               "nonce=\"%s\"%s",
                               cl ? ", " : "", realm, nonce, pr.digest_stale ? ", stale=true" : "");
    }
    /* each other scheme's challenge once */
    const char *said[16];
    size_t n_said = 0;
    for (size_t a = 0; a < n && other; a++)
        for (size_t i = 0; i < alts[a].n; i++) {
            const tb_security_scheme *sc = alts[a].reqs[i].scheme;
            if (sc->kind != TB_SEC_HTTP_OTHER || !sc->param || cl >= sizeof chal)
                continue;
            size_t k = 0;
            while (k < n_said && strcasecmp(said[k], sc->param) != 0)
                k++;
            if (k < n_said || n_said == sizeof said / sizeof said[0])
                continue;
            said[n_said++] = sc->param;
            cl += (size_t)snprintf(chal + cl, sizeof chal - cl, "%s%s realm=\"%s\"",
                                   cl ? ", " : "", sc->param, realm);
        }
    /* a client certificate has no HTTP challenge: none when that is all it takes */
    if (!mtls_only && ((!bearer && !basic && !digest && !other) ||
                       (best_code == TB_JWT_EARG && !basic && !digest && !other)))
        cl += (size_t)snprintf(chal + cl, sizeof chal - cl, "%sApiKey realm=\"%s\"",
                               cl ? ", " : "", realm);
    const char *hv =
        cl ? tb_arena_strndup(ctx->arena, chal, cl < sizeof chal ? cl : sizeof chal - 1) : NULL;
    if (hv)
        tb_http_res_header(res, "WWW-Authenticate", hv);
    char msg[256];
    tb_api_error e = {NULL, msg, ctx->request_id, NULL, 0};
    if (best == 403) {
        e.code = "insufficient_scope";
        snprintf(msg, sizeof msg, "the token lacks the scope %s", scope ? scope : "required");
    } else if (best_code == TB_JWT_EMISSING && mtls_only) {
        e.code = "unauthorized";
        snprintf(msg, sizeof msg, "a client certificate (mutual TLS) is required");
    } else if (best_code == TB_JWT_EMISSING) {
        e.code = "unauthorized";
        snprintf(msg, sizeof msg, "credentials are required");
    } else if (best_code == TB_JWT_EARG) {
        e.code = "unauthorized";
        snprintf(msg, sizeof msg,
                 basic || digest || other ? "the credentials are not valid"
                                          : "the API key is not valid");
    } else {
        e.code = tb_jwt_err_name(best_code);
        snprintf(msg, sizeof msg, "%s", pr.why[0] ? pr.why : tb_jwt_strerror(best_code));
        if (best_code == TB_JWT_ENOKEY)
            tb_log_error(ctx, "a secured operation was called but no JWT keys are loaded: none "
                              "is configured (TB_JWT_JWKS_URL, TB_JWT_JWKS_FILE, TB_JWT_JWKS or "
                              "TB_JWT_SECRET), or the key set could not be read (see the "
                              "warnings)");
    }
    /* no keys to verify with is the server's fault, not the token's: 503 (tb_jwt_http_status),
     * which clients retry and monitoring counts as an outage, not a client error */
    int status = best == 403 ? 403 : best_code == TB_JWT_ENOKEY ? 503 : 401;
    if (status == 503)
        tb_http_res_header(res, "Retry-After", "5");
    tb_metrics_refused(ctx->service, best == 403 ? "forbidden" : "unauthorized");
    int rc = tb_http_res_error(res, ctx, status, &e);
    return rc ? rc : 1;
}
