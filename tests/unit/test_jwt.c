/*
 * Unit tests of runtime/auth (tablium/jwt.h): JWT verification against tokens minted by an
 * independent implementation (npm jose, tests/auth/mint.mjs), the negative token corpus, key
 * import and generation, signing (checked by jose too), the verified-token cache and JWKS
 * rotation from a file and a URL.
 *
 * Prints `auth-negative: N refused, N accepted` (the corpus; all must be refused) and the
 * verification cost per algorithm, cached and uncached.
 */
#include "tablium/jwt.h"

#include <check.h>
#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define AUTH_DIR "tests/auth"

static json_t *minted; /* mint.mjs output: now, issuer, audience, jwks, valid[], invalid[] */
static int64_t minted_now;

/* ---- helpers ---- */

/* Runs cmd, feeding `in` (may be NULL) on its stdin via a temporary file; returns its stdout
 * parsed as JSON, or NULL. */
static json_t *run_json(const char *cmd, const char *in)
{
    char inpath[] = "/tmp/tb_jwt_in_XXXXXX", line[512];
    int fd = -1;
    if (in) {
        fd = mkstemp(inpath);
        if (fd < 0 || write(fd, in, strlen(in)) != (ssize_t)strlen(in))
            return NULL;
        close(fd);
        snprintf(line, sizeof line, "%s < %s", cmd, inpath);
    } else {
        snprintf(line, sizeof line, "%s < /dev/null", cmd);
    }
    FILE *p = popen(line, "r");
    json_t *j = NULL;
    if (p) {
        json_error_t jerr;
        j = json_loadf(p, 0, &jerr);
        if (!j)
            fprintf(stderr, "test_jwt: %s: %s\n", cmd, jerr.text);
        pclose(p);
    }
    if (in)
        unlink(inpath);
    return j;
}

/* The npm packages of tests/auth, installed from the lock file when missing. */
static int ensure_node_modules(void)
{
    struct stat st;
    if (stat(AUTH_DIR "/node_modules/jose/package.json", &st) == 0)
        return 0;
    int rc = system("npm ci --prefix " AUTH_DIR " --no-audit --no-fund --loglevel=error "
                    ">/dev/null 2>&1");
    return rc == 0 && stat(AUTH_DIR "/node_modules/jose/package.json", &st) == 0 ? 0 : -1;
}

static int64_t pinned_clock(void *ctx)
{
    return *(const int64_t *)ctx;
}

static const char *sget(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static char *jwks_text(void)
{
    return json_dumps(json_object_get(minted, "jwks"), JSON_COMPACT);
}

/* A verifier over the minted JWKS with the corpus's rules, clock pinned at *clock. */
static tb_jwt_verifier *minted_verifier(int64_t *clock, size_t cache_size)
{
    static const char *const required[] = {"sub", NULL};
    char *jwks = jwks_text();
    tb_jwt_verifier_opts o = TB_JWT_VERIFIER_OPTS_INIT;
    o.jwks_json = jwks;
    o.issuer = sget(minted, "issuer");
    o.audience = sget(minted, "audience");
    o.typ = "JWT";
    o.required_claims = required;
    o.clock = pinned_clock;
    o.clock_ctx = clock;
    o.cache_size = cache_size;
    tb_jwt_verifier *v = NULL;
    tb_error err = TB_ERROR_INIT;
    int rc = tb_jwt_verifier_new(&o, &v, &err);
    ck_assert_msg(rc == 0, "verifier: %s", err.message);
    tb_error_deinit(&err);
    free(jwks);
    return v;
}

static int verify_str(tb_jwt_verifier *v, const char *tok, tb_jwt_claims **c, tb_error *err)
{
    return tb_jwt_verify(v, tok, strlen(tok), c, err);
}

/* ---- tokens from jose ---- */

START_TEST(test_jose_tokens_of_every_alg_accepted)
{
    int64_t now = minted_now;
    tb_jwt_verifier *v = minted_verifier(&now, 4096);
    json_t *valid = json_object_get(minted, "valid"), *t;
    size_t i;
    ck_assert_uint_ge(json_array_size(valid), 12);
    json_array_foreach(valid, i, t)
    {
        tb_jwt_claims *c = NULL;
        tb_error err = TB_ERROR_INIT;
        int rc = verify_str(v, sget(t, "token"), &c, &err);
        ck_assert_msg(rc == 0, "%s refused: %s (%s)", sget(t, "name"), tb_jwt_err_name(rc),
                      err.message);
        ck_assert_str_eq(tb_jwt_claims_sub(c), "user-1");
        ck_assert(tb_jwt_claims_has_scope(c, "wallet:write"));
        tb_jwt_claims_free(c);
        tb_error_deinit(&err);
    }
    tb_jwt_verifier_free(v);
}
END_TEST

static char *fake_token(size_t len)
{
    char *t = malloc(len + 1);
    memset(t, 'A', len);
    t[len / 3] = '.';
    t[2 * len / 3] = '.';
    t[len] = '\0';
    return t;
}

START_TEST(test_negative_corpus_refused_with_its_code)
{
    int64_t now = minted_now;
    tb_jwt_verifier *v = minted_verifier(&now, 4096);
    /* Warm the cache with the valid tokens: a refusal must not depend on it. */
    json_t *valid = json_object_get(minted, "valid"), *t;
    size_t i;
    json_array_foreach(valid, i, t)
        ck_assert_int_eq(verify_str(v, sget(t, "token"), NULL, NULL), 0);

    json_t *cases = json_deep_copy(json_object_get(minted, "invalid"));
    char *big = fake_token((size_t)1 << 20), *over = fake_token(8193);
    json_array_append_new(cases, json_pack("{s:s,s:s,s:s}", "name", "1 MiB token", "token", big,
                                           "code", "token_too_large"));
    json_array_append_new(cases, json_pack("{s:s,s:s,s:s}", "name", "8 KiB + 1 token", "token",
                                           over, "code", "token_too_large"));
    json_array_append_new(cases, json_pack("{s:s,s:s,s:s}", "name", "empty token", "token", "",
                                           "code", "token_missing"));
    json_array_append_new(cases, json_pack("{s:s,s:s,s:s}", "name", "only dots", "token", "..",
                                           "code", "token_malformed"));
    free(big);
    free(over);

    size_t refused = 0, accepted = 0, wrong_code = 0;
    json_array_foreach(cases, i, t)
    {
        tb_error err = TB_ERROR_INIT;
        tb_jwt_claims *c = NULL;
        int rc = verify_str(v, sget(t, "token"), &c, &err);
        if (rc == 0) {
            accepted++;
            fprintf(stderr, "ACCEPTED: %s\n", sget(t, "name"));
        } else {
            refused++;
            ck_assert_ptr_null(c);
            ck_assert_int_eq(err.code, rc);
            if (strcmp(tb_jwt_err_name(rc), sget(t, "code")) != 0) {
                wrong_code++;
                fprintf(stderr, "wrong code: %s: %s (%s), expected %s\n", sget(t, "name"),
                        tb_jwt_err_name(rc), err.message, sget(t, "code"));
            }
        }
        tb_jwt_claims_free(c);
        tb_error_deinit(&err);
    }
    /* A NULL token too. */
    if (tb_jwt_verify(v, NULL, 0, NULL, NULL) == TB_JWT_EMISSING)
        refused++;
    else
        accepted++;
    printf("auth-negative: %zu refused, %zu accepted\n", refused, accepted);
    fflush(stdout);
    ck_assert_uint_eq(accepted, 0);
    ck_assert_uint_eq(wrong_code, 0);
    ck_assert_uint_ge(refused, 20);
    tb_jwt_stats st;
    tb_jwt_verifier_stats(v, &st);
    ck_assert_uint_eq(st.refused, refused);
    json_decref(cases);
    tb_jwt_verifier_free(v);
}
END_TEST

START_TEST(test_clock_leeway_bounds)
{
    int64_t now = minted_now;
    tb_jwt_verifier *v = minted_verifier(&now, 0);
    const char *tok = sget(json_array_get(json_object_get(minted, "valid"), 3), "token");
    now = minted_now + 3600 + 59; /* exp + leeway - 1 */
    ck_assert_int_eq(verify_str(v, tok, NULL, NULL), 0);
    now = minted_now + 3600 + 60; /* exp + leeway: refused */
    ck_assert_int_eq(verify_str(v, tok, NULL, NULL), TB_JWT_EEXPIRED);
    now = minted_now - 10 - 61; /* nbf - leeway - 1 */
    ck_assert_int_eq(verify_str(v, tok, NULL, NULL), TB_JWT_ENOTYET);
    tb_jwt_verifier_free(v);
}
END_TEST

/* ---- the cache ---- */

START_TEST(test_cache_second_verify_skips_signature)
{
    int64_t now = minted_now;
    tb_jwt_verifier *v = minted_verifier(&now, 4096);
    const char *tok = sget(json_array_get(json_object_get(minted, "valid"), 3), "token");
    tb_jwt_claims *a = NULL, *b = NULL;
    ck_assert_int_eq(verify_str(v, tok, &a, NULL), 0);
    ck_assert_int_eq(verify_str(v, tok, &b, NULL), 0);
    ck_assert_ptr_eq(a, b); /* the cached claims, shared */
    tb_jwt_stats st;
    tb_jwt_verifier_stats(v, &st);
    ck_assert_uint_eq(st.signature_checks, 1);
    ck_assert_uint_eq(st.cache_hits, 1);
    ck_assert_uint_eq(st.cache_misses, 1);
    /* Past exp the cached entry is refused without a signature check. */
    now = minted_now + 3600 + 60;
    tb_error err = TB_ERROR_INIT;
    ck_assert_int_eq(verify_str(v, tok, NULL, &err), TB_JWT_EEXPIRED);
    ck_assert_str_eq(tb_jwt_err_name(err.code), "token_expired");
    tb_jwt_verifier_stats(v, &st);
    ck_assert_uint_eq(st.signature_checks, 1);
    ck_assert_uint_eq(st.cache_hits, 2);
    tb_jwt_claims_free(a);
    tb_jwt_claims_free(b);
    tb_error_deinit(&err);
    tb_jwt_verifier_free(v);
}
END_TEST

START_TEST(test_cache_bounded_evicts)
{
    int64_t now = 1000;
    tb_jwt_key *k = NULL;
    ck_assert_int_eq(tb_jwt_key_generate(TB_JWT_HS256, "h", &k, NULL), 0);
    tb_jwt_verifier_opts o = TB_JWT_VERIFIER_OPTS_INIT;
    o.keys = &k;
    o.n_keys = 1;
    o.cache_size = 32;
    o.clock = pinned_clock;
    o.clock_ctx = &now;
    tb_jwt_verifier *v = NULL;
    ck_assert_int_eq(tb_jwt_verifier_new(&o, &v, NULL), 0);
    for (int i = 0; i < 200; i++) {
        json_t *cl = json_pack("{s:i,s:i}", "exp", 2000, "n", i);
        char *tok = NULL;
        ck_assert_int_eq(tb_jwt_sign(k, cl, NULL, &tok, NULL), 0);
        ck_assert_int_eq(verify_str(v, tok, NULL, NULL), 0);
        ck_assert_int_eq(verify_str(v, tok, NULL, NULL), 0);
        free(tok);
        json_decref(cl);
    }
    tb_jwt_stats st;
    tb_jwt_verifier_stats(v, &st);
    ck_assert_uint_eq(st.cache_hits, 200);
    ck_assert_uint_eq(st.signature_checks, 200);
    tb_jwt_verifier_free(v);
    tb_jwt_key_free(k);
}
END_TEST

/* ---- keys, signing ---- */

static const tb_jwt_alg all_algs[] = {
    TB_JWT_HS256, TB_JWT_HS384, TB_JWT_HS512, TB_JWT_RS256, TB_JWT_RS384, TB_JWT_RS512,
    TB_JWT_PS256, TB_JWT_PS384, TB_JWT_PS512, TB_JWT_ES256, TB_JWT_ES384, TB_JWT_EDDSA,
};
#define N_ALGS (sizeof all_algs / sizeof all_algs[0])

static json_t *std_claims(int64_t now)
{
    return json_pack("{s:s,s:s,s:s,s:I,s:I,s:s}", "iss", "https://auth.tablium.test", "aud",
                     "tablium-tests", "sub", "svc-1", "iat", (json_int_t)now, "exp",
                     (json_int_t)now + 600, "scope", "a b");
}

START_TEST(test_sign_and_verify_every_alg_and_jose_agrees)
{
    int64_t now = minted_now;
    tb_jwt_key *keys[N_ALGS] = {0};
    char *tokens[N_ALGS] = {0};
    json_t *cl = std_claims(now);
    for (size_t i = 0; i < N_ALGS; i++) {
        char kid[16];
        snprintf(kid, sizeof kid, "k%zu", i);
        tb_error err = TB_ERROR_INIT;
        ck_assert_msg(tb_jwt_key_generate(all_algs[i], kid, &keys[i], &err) == 0, "%s: %s",
                      tb_jwt_alg_name(all_algs[i]), err.message);
        ck_assert(tb_jwt_key_can_sign(keys[i]));
        ck_assert_int_eq(tb_jwt_sign(keys[i], cl, NULL, &tokens[i], &err), 0);
        tb_error_deinit(&err);
    }
    /* Verified here through the public JWKS (HMAC keys given directly). */
    tb_jwks *set = NULL;
    ck_assert_int_eq(tb_jwks_new(keys, N_ALGS, &set), 0);
    json_t *pub = tb_jwks_to_json(set);
    ck_assert_uint_eq(json_array_size(json_object_get(pub, "keys")), N_ALGS - 3);
    char *pubtext = json_dumps(pub, JSON_COMPACT);
    tb_jwt_verifier_opts o = TB_JWT_VERIFIER_OPTS_INIT;
    o.jwks_json = pubtext;
    o.keys = keys;
    o.n_keys = 3;
    o.issuer = "https://auth.tablium.test";
    o.audience = "tablium-tests";
    o.clock = pinned_clock;
    o.clock_ctx = &now;
    tb_jwt_verifier *v = NULL;
    ck_assert_int_eq(tb_jwt_verifier_new(&o, &v, NULL), 0);
    ck_assert_uint_eq(tb_jwks_count(set), N_ALGS);
    for (size_t i = 0; i < N_ALGS; i++) {
        tb_jwt_claims *c = NULL;
        tb_error err = TB_ERROR_INIT;
        int rc = verify_str(v, tokens[i], &c, &err);
        ck_assert_msg(rc == 0, "%s: %s", tb_jwt_alg_name(all_algs[i]), err.message);
        ck_assert_str_eq(tb_jwt_claims_sub(c), "svc-1");
        tb_jwt_claims_free(c);
        tb_error_deinit(&err);
    }
    /* And by jose (asymmetric ones: jose's JWKS takes public keys). */
    json_t *req = json_pack("{s:O,s:[]}", "jwks", pub, "tokens");
    for (size_t i = 3; i < N_ALGS; i++)
        json_array_append_new(json_object_get(req, "tokens"), json_string(tokens[i]));
    char *reqtext = json_dumps(req, JSON_COMPACT);
    json_t *res = run_json("node " AUTH_DIR "/mint.mjs verify", reqtext);
    ck_assert_ptr_nonnull(res);
    ck_assert_uint_eq(json_array_size(res), N_ALGS - 3);
    for (size_t i = 0; i < json_array_size(res); i++) {
        json_t *r = json_array_get(res, i);
        ck_assert_msg(json_is_true(json_object_get(r, "ok")), "jose refused %s: %s",
                      tb_jwt_alg_name(all_algs[i + 3]), sget(r, "error"));
        ck_assert_str_eq(sget(r, "sub"), "svc-1");
    }
    /* A private key survives a PEM round trip and signs the same way. */
    char *pem = tb_jwt_key_private_pem(keys[9]);
    ck_assert_ptr_nonnull(pem);
    tb_jwt_key *again = NULL;
    ck_assert_int_eq(tb_jwt_key_from_pem(pem, strlen(pem), TB_JWT_ES256, "k9", &again, NULL), 0);
    char *tok = NULL;
    ck_assert_int_eq(tb_jwt_sign(again, cl, NULL, &tok, NULL), 0);
    ck_assert_int_eq(verify_str(v, tok, NULL, NULL), 0);
    free(tok);
    tb_jwt_key_free(again);
    free(pem);
    json_decref(res);
    free(reqtext);
    json_decref(req);
    tb_jwt_verifier_free(v);
    free(pubtext);
    json_decref(pub);
    tb_jwks_free(set);
    for (size_t i = 0; i < N_ALGS; i++) {
        free(tokens[i]);
        tb_jwt_key_free(keys[i]);
    }
    json_decref(cl);
}
END_TEST

START_TEST(test_pem_key_with_pinned_alg_refuses_confusion)
{
    int64_t now = minted_now;
    const char *pem = sget(minted, "rsa_pem");
    tb_jwt_key *k = NULL;
    ck_assert_int_eq(tb_jwt_key_from_pem(pem, strlen(pem), TB_JWT_RS256, NULL, &k, NULL), 0);
    ck_assert(!tb_jwt_key_can_sign(k));
    /* The PEM cannot be pinned to HS256, nor to ES256. */
    tb_jwt_key *bad = NULL;
    ck_assert_int_eq(tb_jwt_key_from_pem(pem, strlen(pem), TB_JWT_HS256, NULL, &bad, NULL),
                     TB_JWT_EKEY);
    ck_assert_int_eq(tb_jwt_key_from_pem(pem, strlen(pem), TB_JWT_ES256, NULL, &bad, NULL),
                     TB_JWT_EKEY);
    tb_jwt_verifier_opts o = TB_JWT_VERIFIER_OPTS_INIT;
    o.keys = &k;
    o.n_keys = 1;
    o.clock = pinned_clock;
    o.clock_ctx = &now;
    tb_jwt_verifier *v = NULL;
    ck_assert_int_eq(tb_jwt_verifier_new(&o, &v, NULL), 0);
    json_t *t;
    size_t i;
    bool seen = false;
    json_array_foreach(json_object_get(minted, "invalid"), i, t)
    {
        if (strstr(sget(t, "name"), "confusion")) {
            seen = true;
            ck_assert_int_eq(verify_str(v, sget(t, "token"), NULL, NULL), TB_JWT_EALG);
        }
    }
    ck_assert(seen);
    /* The RS256 token of the same key verifies: a key without kid fits any kid. */
    const char *rs = sget(json_array_get(json_object_get(minted, "valid"), 3), "token");
    ck_assert_int_eq(verify_str(v, rs, NULL, NULL), 0);
    tb_jwt_verifier_free(v);
    tb_jwt_key_free(k);
}
END_TEST

START_TEST(test_jwk_import_refuses_weak_or_bad_keys)
{
    tb_jwt_key *k = NULL;
    json_t *j;
    /* oct: too short for HS256; without alg. */
    j = json_pack("{s:s,s:s,s:s}", "kty", "oct", "alg", "HS256", "k", "c2hvcnQ");
    ck_assert_int_eq(tb_jwt_key_from_jwk(j, TB_JWT_ALG_UNKNOWN, &k, NULL), TB_JWT_EKEY);
    json_decref(j);
    j = json_pack("{s:s,s:s}", "kty", "oct", "k", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    ck_assert_int_eq(tb_jwt_key_from_jwk(j, TB_JWT_ALG_UNKNOWN, &k, NULL), TB_JWT_EKEY);
    ck_assert_int_eq(tb_jwt_key_from_jwk(j, TB_JWT_HS256, &k, NULL), 0);
    ck_assert_int_eq(tb_jwt_key_alg(k), TB_JWT_HS256);
    tb_jwt_key_free(k);
    json_decref(j);
    /* RSA 1024 bits. */
    j = json_pack("{s:s,s:s,s:s,s:s}", "kty", "RSA", "alg", "RS256", "e", "AQAB", "n",
                  "wKqjfAWoPPb0FLQ1ON-6v9g4Jt6y1TXn5MXUu6yrnkTrxFyMbvjcxbXjKRXTGVaH2K4aL0sgVg"
                  "TrPnP1o6jRzUNJ0q8-6Gc3mhMzgjg_XU-0cfcjEt6d9Pj4H6vbuIAWaVV5ImWKhJqXNNYfJe5r"
                  "fKC-ZzEH2ZqNjZUmOUEVBWcU");
    ck_assert_int_eq(tb_jwt_key_from_jwk(j, TB_JWT_ALG_UNKNOWN, &k, NULL), TB_JWT_EKEY);
    json_decref(j);
    /* EC point not on P-256 (x = y = 1). */
    j = json_pack("{s:s,s:s,s:s,s:s}", "kty", "EC", "crv", "P-256", "x",
                  "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE", "y",
                  "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE");
    ck_assert_int_eq(tb_jwt_key_from_jwk(j, TB_JWT_ALG_UNKNOWN, &k, NULL), TB_JWT_EKEY);
    json_decref(j);
    /* A JWKS: an enc key, an unknown kty and a good Ed25519 key. */
    const char *set = "{\"keys\":[{\"kty\":\"RSA\",\"use\":\"enc\",\"n\":\"AQAB\",\"e\":\"AQAB\"},"
                      "{\"kty\":\"XYZ\"},{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"e\","
                      "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}";
    tb_jwks *ks = NULL;
    size_t skipped = 0;
    ck_assert_int_eq(tb_jwks_parse(set, strlen(set), TB_JWT_ALG_UNKNOWN, &ks, &skipped, NULL), 0);
    ck_assert_uint_eq(tb_jwks_count(ks), 1);
    ck_assert_uint_eq(skipped, 2);
    ck_assert_int_eq(tb_jwt_key_alg(tb_jwks_find(ks, "e")), TB_JWT_EDDSA);
    tb_jwks_free(ks);
    const char *dup = "{\"keys\":[],\"keys\":[]}";
    ck_assert_int_eq(tb_jwks_parse(dup, strlen(dup), 0, &ks, NULL, NULL), TB_JWT_EDUPKEY);
    ck_assert_int_eq(tb_jwks_parse("[]", 2, 0, &ks, NULL, NULL), TB_JWT_EJSON);
}
END_TEST

/* ---- rotation ---- */

static void write_file(const char *path, const char *text)
{
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    ck_assert_int_eq(rename(tmp, path), 0);
}

static char *jwks_of(tb_jwt_key *const *keys, size_t n)
{
    tb_jwks *ks = NULL;
    ck_assert_int_eq(tb_jwks_new(keys, n, &ks), 0);
    json_t *j = tb_jwks_to_json(ks);
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    tb_jwks_free(ks);
    return s;
}

static char *sign_now(tb_jwt_key *k, int64_t now)
{
    json_t *cl = json_pack("{s:s,s:I}", "sub", "u", "exp", (json_int_t)now + 3600);
    char *tok = NULL;
    ck_assert_int_eq(tb_jwt_sign(k, cl, NULL, &tok, NULL), 0);
    json_decref(cl);
    return tok;
}

START_TEST(test_jwks_file_rotation_refetches_rate_limited)
{
    int64_t now = 1700000000;
    tb_jwt_key *a = NULL, *b = NULL, *c = NULL;
    ck_assert_int_eq(tb_jwt_key_generate(TB_JWT_ES256, "a", &a, NULL), 0);
    ck_assert_int_eq(tb_jwt_key_generate(TB_JWT_EDDSA, "b", &b, NULL), 0);
    ck_assert_int_eq(tb_jwt_key_generate(TB_JWT_ES256, "c", &c, NULL), 0);
    char path[] = "/tmp/tb_jwks_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    char *s = jwks_of(&a, 1);
    write_file(path, s);
    free(s);

    tb_jwt_verifier_opts o = TB_JWT_VERIFIER_OPTS_INIT;
    o.jwks_file = path;
    o.clock = pinned_clock;
    o.clock_ctx = &now;
    tb_jwt_verifier *v = NULL;
    ck_assert_int_eq(tb_jwt_verifier_new(&o, &v, NULL), 0);
    char *ta = sign_now(a, now), *tb = sign_now(b, now), *tc = sign_now(c, now);
    ck_assert_int_eq(verify_str(v, ta, NULL, NULL), 0);

    /* Rotation: the issuer publishes a and b. */
    tb_jwt_key *ab[] = {a, b};
    s = jwks_of(ab, 2);
    write_file(path, s);
    free(s);
    now += 11; /* past the 10 s refetch interval since the load in _new */
    tb_jwt_stats st;
    ck_assert_int_eq(verify_str(v, tb, NULL, NULL), 0); /* unknown kid -> refetch -> found */
    tb_jwt_verifier_stats(v, &st);
    ck_assert_uint_eq(st.fetches, 1);
    now += 1;
    ck_assert_int_eq(verify_str(v, tc, NULL, NULL), TB_JWT_EKID); /* within the window */
    ck_assert_int_eq(verify_str(v, tc, NULL, NULL), TB_JWT_EKID);
    tb_jwt_verifier_stats(v, &st);
    ck_assert_uint_eq(st.fetches, 1);
    now += 10;
    ck_assert_int_eq(verify_str(v, tc, NULL, NULL), TB_JWT_EKID); /* refetched, still unknown */
    tb_jwt_verifier_stats(v, &st);
    ck_assert_uint_eq(st.fetches, 2);

    /* Key a withdrawn: its cached token is forgotten and refused. */
    s = jwks_of(&b, 1);
    write_file(path, s);
    free(s);
    ck_assert_int_eq(tb_jwt_verifier_reload(v, NULL), 0);
    ck_assert_int_eq(verify_str(v, ta, NULL, NULL), TB_JWT_EKID);
    ck_assert_int_eq(verify_str(v, tb, NULL, NULL), 0);
    /* A broken file keeps the current keys. */
    write_file(path, "{not json");
    ck_assert_int_eq(tb_jwt_verifier_reload(v, NULL), TB_JWT_EJSON);
    ck_assert_int_eq(verify_str(v, tb, NULL, NULL), 0);

    free(ta);
    free(tb);
    free(tc);
    tb_jwt_verifier_free(v);
    unlink(path);
    tb_jwt_key_free(a);
    tb_jwt_key_free(b);
    tb_jwt_key_free(c);
}
END_TEST

/* The JWKS served over HTTP by a small libmicrohttpd server. */
static char *served_jwks;
static pthread_mutex_t served_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int served_count;
static atomic_int served_slow_ms;   /* each answer waits this long first */
static atomic_int served_in_flight; /* an answer is waiting */

static enum MHD_Result serve_jwks(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **state)
{
    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    (void)data;
    (void)size;
    (void)state;
    if (atomic_load(&served_slow_ms)) { /* a source that takes its time */
        atomic_store(&served_in_flight, 1);
        usleep((useconds_t)atomic_load(&served_slow_ms) * 1000);
        atomic_store(&served_in_flight, 0);
    }
    pthread_mutex_lock(&served_lock);
    char *body = strdup(served_jwks);
    pthread_mutex_unlock(&served_lock);
    atomic_fetch_add(&served_count, 1);
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    enum MHD_Result rc = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return rc;
}

/* Starts serve_jwks on a free port; url gets its address with `path`. */
static struct MHD_Daemon *jwks_server(char *url, size_t cap, const char *path)
{
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL,
                                            serve_jwks, NULL, MHD_OPTION_END);
    ck_assert_ptr_nonnull(d);
    snprintf(url, cap, "http://127.0.0.1:%u%s",
             (unsigned)MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port, path);
    return d;
}

START_TEST(test_jwks_url_source_and_rotation)
{
    int64_t now = 1700000000;
    tb_jwt_key *a = NULL, *b = NULL;
    ck_assert_int_eq(tb_jwt_key_generate(TB_JWT_RS256, "ra", &a, NULL), 0);
    ck_assert_int_eq(tb_jwt_key_generate(TB_JWT_PS256, "rb", &b, NULL), 0);
    served_jwks = jwks_of(&a, 1);
    char url[128];
    struct MHD_Daemon *d = jwks_server(url, sizeof url, "/.well-known/jwks.json");
    tb_jwt_verifier_opts o = TB_JWT_VERIFIER_OPTS_INIT;
    o.jwks_url = url;
    o.clock = pinned_clock;
    o.clock_ctx = &now;
    tb_jwt_verifier *v = NULL;
    ck_assert_int_eq(tb_jwt_verifier_new(&o, &v, NULL), 0);
    ck_assert_int_eq(atomic_load(&served_count), 1);
    char *ta = sign_now(a, now), *tb = sign_now(b, now);
    ck_assert_int_eq(verify_str(v, ta, NULL, NULL), 0);
    tb_jwt_key *ab[] = {a, b};
    pthread_mutex_lock(&served_lock);
    free(served_jwks);
    served_jwks = jwks_of(ab, 2);
    pthread_mutex_unlock(&served_lock);
    ck_assert_int_eq(verify_str(v, tb, NULL, NULL), TB_JWT_EKID); /* inside the window */
    now += 10;
    ck_assert_int_eq(verify_str(v, tb, NULL, NULL), 0);
    ck_assert_int_eq(atomic_load(&served_count), 2);
    tb_jwt_verifier_free(v);
    MHD_stop_daemon(d);

    /* An unreachable URL at start is not fatal: keys come on first use. */
    o.jwks_url = "http://127.0.0.1:1/jwks.json";
    o.fetch_timeout_ms = 1000;
    ck_assert_int_eq(tb_jwt_verifier_new(&o, &v, NULL), 0);
    ck_assert_int_eq(verify_str(v, ta, NULL, NULL), TB_JWT_ENOKEY);
    /* and the rate limit holds while it stays down: one fetch per window, not one per token
     * (each cost a blocking fetch up to fetch_timeout_ms) */
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(verify_str(v, ta, NULL, NULL), TB_JWT_ENOKEY);
    tb_jwt_stats js;
    tb_jwt_verifier_stats(v, &js);
    ck_assert_uint_eq(js.fetches, 1);
    tb_jwt_verifier_free(v);
    free(ta);
    free(tb);
    free(served_jwks);
    served_jwks = NULL;
    tb_jwt_key_free(a);
    tb_jwt_key_free(b);
}
END_TEST

/* A symmetric ("oct") key in a set served at a URL is public: a token signed with it would be
 * anyone's to forge. The URL source ignores it (a file or TB_JWT_SECRET still give secrets),
 * and the verifier still takes the set's public keys. */
START_TEST(test_a_url_key_set_never_lends_an_hmac_secret)
{
    int64_t now = 1700000000;
    tb_jwt_key *rsa = NULL, *hs = NULL;
    ck_assert_int_eq(tb_jwt_key_generate(TB_JWT_RS256, "ra", &rsa, NULL), 0);
    static const char secret[] = "a-secret-that-the-set-publishes-0123456789";
    ck_assert_int_eq(tb_jwt_key_from_secret(secret, sizeof secret - 1, TB_JWT_HS256, "hs", &hs,
                                            NULL),
                     0);
    char *pub = jwks_of(&rsa, 1);
    json_t *set = json_loads(pub, 0, NULL);
    free(pub);
    /* base64url of the secret */
    json_array_append_new(json_object_get(set, "keys"),
                          json_pack("{s:s,s:s,s:s,s:s}", "kty", "oct", "kid", "hs", "alg",
                                    "HS256", "k",
                                    "YS1zZWNyZXQtdGhhdC10aGUtc2V0LXB1Ymxpc2hlcy0wMTIzNDU2Nzg5"));
    served_jwks = json_dumps(set, JSON_COMPACT);
    char url[128];
    struct MHD_Daemon *d = jwks_server(url, sizeof url, "/jwks.json");
    tb_jwt_verifier_opts o = TB_JWT_VERIFIER_OPTS_INIT;
    o.jwks_url = url;
    o.clock = pinned_clock;
    o.clock_ctx = &now;
    tb_jwt_verifier *v = NULL;
    ck_assert_int_eq(tb_jwt_verifier_new(&o, &v, NULL), 0);
    char *forged = sign_now(hs, now), *good = sign_now(rsa, now);
    ck_assert_int_eq(verify_str(v, good, NULL, NULL), 0);
    ck_assert_int_ne(verify_str(v, forged, NULL, NULL), 0);
    tb_jwks *ks = tb_jwt_verifier_keys(v);
    ck_assert_uint_eq(tb_jwks_count(ks), 1);
    tb_jwks_free(ks);
    tb_jwt_verifier_free(v);
    /* the same set from a file (the operator's own, not public) keeps its secret */
    char path[] = "/tmp/tb-jwks-oct-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_int_eq(json_dump_file(set, path, JSON_COMPACT), 0);
    o.jwks_url = NULL;
    o.jwks_file = path;
    ck_assert_int_eq(tb_jwt_verifier_new(&o, &v, NULL), 0);
    ck_assert_int_eq(verify_str(v, forged, NULL, NULL), 0);
    tb_jwt_verifier_free(v);
    unlink(path);
    MHD_stop_daemon(d);
    json_decref(set);
    free(forged);
    free(good);
    free(served_jwks);
    served_jwks = NULL;
    tb_jwt_key_free(rsa);
    tb_jwt_key_free(hs);
}
END_TEST

/* TB_JWT_*: a malformed value fails at start naming the variable (it fell back to the default
 * with a warning: TB_JWT_LEEWAY_S=1h became 60); TB_JWT_ALGS, TB_JWT_REQUIRED_CLAIMS and a list
 * in TB_JWT_AUDIENCE take effect. */
static int from_env(tb_jwt_verifier **v, tb_error *err)
{
    tb_error_reset(err);
    return tb_jwt_verifier_from_env(v, err);
}

START_TEST(test_environment_knobs_fail_loudly_and_take_effect)
{
    static const char secret[] = "env-secret-0123456789abcdef0123456789";
    setenv("TB_JWT_SECRET", secret, 1);
    tb_jwt_verifier *v = NULL;
    tb_error err = TB_ERROR_INIT;
    const char *bad[][2] = {{"TB_JWT_LEEWAY_S", "1h"},
                            {"TB_JWT_JWKS_MAX_AGE_S", "-5"},
                            {"TB_JWT_ALGS", "RS256,XS1"},
                            {"TB_JWT_ALG", "RS256"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv(bad[i][0], bad[i][1], 1);
        ck_assert_int_eq(from_env(&v, &err), TB_JWT_EARG);
        ck_assert_ptr_null(v);
        ck_assert_msg(strstr(err.message, bad[i][0]), "%s", err.message);
        unsetenv(bad[i][0]);
    }
    tb_jwt_key *k = NULL;
    ck_assert_int_eq(tb_jwt_key_from_secret(secret, sizeof secret - 1, TB_JWT_HS256, NULL, &k,
                                            NULL),
                     0);
    int64_t now = time(NULL);
    json_t *cl = json_pack("{s:s,s:s,s:I}", "sub", "u", "aud", "billing", "exp",
                           (json_int_t)now + 600);
    char *tok = NULL;
    ck_assert_int_eq(tb_jwt_sign(k, cl, NULL, &tok, NULL), 0);
    json_decref(cl);
    /* a list of audiences: one of them is enough */
    setenv("TB_JWT_AUDIENCE", "wallet,billing", 1);
    ck_assert_int_eq(from_env(&v, &err), 0);
    ck_assert_int_eq(verify_str(v, tok, NULL, NULL), 0);
    tb_jwt_verifier_free(v);
    setenv("TB_JWT_AUDIENCE", "wallet,bill", 1);
    ck_assert_int_eq(from_env(&v, &err), 0);
    ck_assert_int_eq(verify_str(v, tok, NULL, NULL), TB_JWT_EAUDIENCE);
    tb_jwt_verifier_free(v);
    unsetenv("TB_JWT_AUDIENCE");
    /* an allowlist without HS256 refuses the token */
    setenv("TB_JWT_ALGS", "RS256,ES256", 1);
    ck_assert_int_eq(from_env(&v, &err), 0);
    ck_assert_int_ne(verify_str(v, tok, NULL, NULL), 0);
    tb_jwt_verifier_free(v);
    setenv("TB_JWT_ALGS", "HS256", 1);
    ck_assert_int_eq(from_env(&v, &err), 0);
    ck_assert_int_eq(verify_str(v, tok, NULL, NULL), 0);
    tb_jwt_verifier_free(v);
    unsetenv("TB_JWT_ALGS");
    /* a required claim the token lacks */
    setenv("TB_JWT_REQUIRED_CLAIMS", "sub,jti", 1);
    ck_assert_int_eq(from_env(&v, &err), 0);
    ck_assert_int_eq(verify_str(v, tok, NULL, NULL), TB_JWT_EMISSINGCLAIM);
    tb_jwt_verifier_free(v);
    unsetenv("TB_JWT_REQUIRED_CLAIMS");
    unsetenv("TB_JWT_SECRET");
    free(tok);
    tb_jwt_key_free(k);
    tb_error_deinit(&err);
}
END_TEST

/* The verifier's own thread rereads a source every jwks_max_age_s: a key removed from it stops
 * being trusted (it stayed until an unknown kid came, forever for tokens without one). And an
 * unknown kid waits for a slow source's reread at most a second: the reread goes on without
 * it, the request is refused meanwhile, and the keys are there once it ends. */
START_TEST(test_jwks_reread_every_max_age_and_a_slow_source_holds_no_request)
{
    tb_jwt_key *a = NULL, *b = NULL;
    ck_assert_int_eq(tb_jwt_key_generate(TB_JWT_ES256, "ma", &a, NULL), 0);
    ck_assert_int_eq(tb_jwt_key_generate(TB_JWT_ES256, "mb", &b, NULL), 0);
    char path[] = "/tmp/tb_jwks_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    char *s = jwks_of(&a, 1);
    write_file(path, s);
    free(s);
    tb_jwt_verifier_opts o = TB_JWT_VERIFIER_OPTS_INIT;
    o.jwks_file = path;
    o.jwks_max_age_s = 1;
    tb_jwt_verifier *v = NULL;
    ck_assert_int_eq(tb_jwt_verifier_new(&o, &v, NULL), 0);
    int64_t now = (int64_t)time(NULL);
    char *ta = sign_now(a, now);
    ck_assert_int_eq(verify_str(v, ta, NULL, NULL), 0); /* and cached */
    s = jwks_of(&b, 1); /* a withdrawn, no token with a new kid to tell the verifier */
    write_file(path, s);
    free(s);
    int rc = 0;
    for (int i = 0; i < 100 && (rc = verify_str(v, ta, NULL, NULL)) == 0; i++)
        usleep(50 * 1000);
    ck_assert_int_eq(rc, TB_JWT_EKID);
    /* a set that cannot be read keeps the current keys, and a warning says why (it was
     * silent): stderr to a file while the thread rereads it */
    char logp[] = "/tmp/tb_jwks_log_XXXXXX";
    int lfd = mkstemp(logp);
    ck_assert_int_ge(lfd, 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(lfd, 2);
    write_file(path, "{not json");
    bool warned = false;
    for (int i = 0; i < 100 && !warned; i++) {
        usleep(50 * 1000);
        char buf[4096] = {0};
        ssize_t got = pread(lfd, buf, sizeof buf - 1, 0);
        warned = got > 0 && strstr(buf, "JWT keys not reread (the current ones stay)");
    }
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(lfd);
    unlink(logp);
    ck_assert_msg(warned, "no warning for an unreadable key set");
    tb_jwt_verifier_free(v);
    unlink(path);

    served_jwks = jwks_of(&a, 1);
    char url[128];
    struct MHD_Daemon *d = jwks_server(url, sizeof url, "/jwks.json");
    o = (tb_jwt_verifier_opts)TB_JWT_VERIFIER_OPTS_INIT;
    o.jwks_url = url;
    o.refetch_interval_s = 0;
    ck_assert_int_eq(tb_jwt_verifier_new(&o, &v, NULL), 0);
    tb_jwt_key *ab[] = {a, b};
    pthread_mutex_lock(&served_lock);
    free(served_jwks);
    served_jwks = jwks_of(ab, 2);
    pthread_mutex_unlock(&served_lock);
    atomic_store(&served_slow_ms, 3000);
    char *tb = sign_now(b, now);
    ck_assert_int_eq(verify_str(v, tb, NULL, NULL), TB_JWT_EKID);
    ck_assert_int_eq(atomic_load(&served_in_flight), 1); /* refused before the reread ended */
    for (int i = 0; i < 100 && atomic_load(&served_in_flight); i++)
        usleep(50 * 1000);
    atomic_store(&served_slow_ms, 0);
    for (int i = 0; i < 100 && (rc = verify_str(v, tb, NULL, NULL)) != 0; i++)
        usleep(20 * 1000);
    ck_assert_int_eq(rc, 0); /* installed by the thread */
    tb_jwt_verifier_free(v);
    MHD_stop_daemon(d);
    free(served_jwks);
    served_jwks = NULL;
    free(ta);
    free(tb);
    tb_jwt_key_free(a);
    tb_jwt_key_free(b);
}
END_TEST

/* ---- threads ---- */

typedef struct thread_arg {
    tb_jwt_verifier *v;
    const char **tokens;
    size_t n;
    atomic_int *failures;
} thread_arg;

static void *verify_loop(void *p)
{
    thread_arg *a = p;
    for (int i = 0; i < 300; i++) {
        tb_jwt_claims *c = NULL;
        const char *t = a->tokens[(size_t)i % a->n];
        if (verify_str(a->v, t, &c, NULL) != 0 || !tb_jwt_claims_sub(c))
            atomic_fetch_add(a->failures, 1);
        tb_jwt_claims_free(c);
    }
    return NULL;
}

START_TEST(test_verify_from_many_threads)
{
    int64_t now = minted_now;
    tb_jwt_verifier *v = minted_verifier(&now, 64);
    json_t *valid = json_object_get(minted, "valid");
    const char *tokens[32];
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(valid) && n < 32; i++)
        tokens[n++] = sget(json_array_get(valid, i), "token");
    atomic_int failures = 0;
    pthread_t th[8];
    thread_arg arg = {v, tokens, n, &failures};
    for (int i = 0; i < 8; i++)
        pthread_create(&th[i], NULL, verify_loop, &arg);
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    ck_assert_int_eq(atomic_load(&failures), 0);
    tb_jwt_verifier_free(v);
}
END_TEST

/* ---- helpers for the HTTP layer ---- */

START_TEST(test_www_authenticate_and_bearer)
{
    char buf[256];
    tb_jwt_www_authenticate(buf, sizeof buf, "wallet", TB_JWT_EMISSING, NULL, NULL);
    ck_assert_str_eq(buf, "Bearer realm=\"wallet\"");
    tb_jwt_www_authenticate(buf, sizeof buf, "wallet", TB_JWT_EEXPIRED, NULL, NULL);
    ck_assert_str_eq(buf, "Bearer realm=\"wallet\", error=\"invalid_token\", "
                          "error_description=\"token expired\"");
    tb_jwt_www_authenticate(buf, sizeof buf, NULL, TB_JWT_ESIG, "bad \"sig\"\n\\", NULL);
    ck_assert_str_eq(buf, "Bearer error=\"invalid_token\", error_description=\"bad ?sig???\"");
    tb_jwt_www_authenticate(buf, sizeof buf, "w", TB_JWT_ESCOPE, NULL, "wallet:write");
    ck_assert_str_eq(buf, "Bearer realm=\"w\", error=\"insufficient_scope\", "
                          "error_description=\"token lacks a required scope\", "
                          "scope=\"wallet:write\"");
    size_t n = tb_jwt_www_authenticate(buf, 10, "wallet", TB_JWT_EEXPIRED, NULL, NULL);
    ck_assert_uint_eq(n, 9);
    ck_assert_str_eq(buf, "Bearer re");
    ck_assert_int_eq(tb_jwt_http_status(TB_JWT_EEXPIRED), 401);
    ck_assert_int_eq(tb_jwt_http_status(TB_JWT_ESCOPE), 403);

    size_t len = 0;
    const char *t = tb_jwt_bearer("bearer   abc.def.ghi  ", &len);
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_eq(len, 11);
    ck_assert(strncmp(t, "abc.def.ghi", len) == 0);
    ck_assert_ptr_null(tb_jwt_bearer("Basic dXNlcjpwYXNz", &len));
    ck_assert_ptr_null(tb_jwt_bearer("Bearer ", &len));
    ck_assert_ptr_null(tb_jwt_bearer("Bearerabc", &len));
    ck_assert_str_eq(tb_jwt_err_name(TB_JWT_EJWE), "token_is_jwe");
    ck_assert_int_eq(tb_jwt_alg_parse("none"), TB_JWT_ALG_UNKNOWN);
    ck_assert_int_eq(tb_jwt_alg_parse("Ed25519"), TB_JWT_EDDSA);
}
END_TEST

START_TEST(test_claims_scopes_from_scope_or_scp)
{
    int64_t now = 1000;
    tb_jwt_key *k = NULL;
    ck_assert_int_eq(tb_jwt_key_generate(TB_JWT_HS512, NULL, &k, NULL), 0);
    tb_jwt_verifier_opts o = TB_JWT_VERIFIER_OPTS_INIT;
    o.keys = &k;
    o.n_keys = 1;
    o.clock = pinned_clock;
    o.clock_ctx = &now;
    tb_jwt_verifier *v = NULL;
    ck_assert_int_eq(tb_jwt_verifier_new(&o, &v, NULL), 0);
    json_t *cls[] = {
        json_pack("{s:I,s:s}", "exp", (json_int_t)2000, "scope", " a  b c "),
        json_pack("{s:I,s:[s,s,s]}", "exp", (json_int_t)2000, "scp", "a", "b", "c"),
        json_pack("{s:I,s:s,s:i}", "exp", (json_int_t)2000, "scp", "a b c", "n", 7),
    };
    for (size_t i = 0; i < 3; i++) {
        char *tok = NULL;
        tb_jwt_claims *c = NULL;
        ck_assert_int_eq(tb_jwt_sign(k, cls[i], NULL, &tok, NULL), 0);
        ck_assert_int_eq(verify_str(v, tok, &c, NULL), 0);
        size_t n = 0;
        const char *const *sc = tb_jwt_claims_scopes(c, &n);
        ck_assert_uint_eq(n, 3);
        ck_assert_str_eq(sc[0], "a");
        ck_assert_str_eq(sc[2], "c");
        ck_assert(tb_jwt_claims_has_scope(c, "b"));
        ck_assert(!tb_jwt_claims_has_scope(c, "a b"));
        ck_assert_int_eq(tb_jwt_claims_exp(c), 2000);
        ck_assert_ptr_null(tb_jwt_claims_sub(c));
        tb_jwt_claims_free(c);
        free(tok);
        json_decref(cls[i]);
    }
    /* exp 1e300 is a valid NumericDate: its exp is clamped (the cast was undefined, and came
     * out as INT64_MIN under x86-64) */
    json_t *far = json_pack("{s:f}", "exp", 1e300);
    char *tok = NULL;
    tb_jwt_claims *c = NULL;
    ck_assert_int_eq(tb_jwt_sign(k, far, NULL, &tok, NULL), 0);
    ck_assert_int_eq(verify_str(v, tok, &c, NULL), 0);
    ck_assert(tb_jwt_claims_exp(c) == INT64_MAX);
    tb_jwt_claims_free(c);
    free(tok);
    json_decref(far);
    tb_jwt_verifier_free(v);
    tb_jwt_key_free(k);
}
END_TEST

/* ---- cost per verification ---- */

static double us_per_op(tb_jwt_verifier *v, const char *tok, int n)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(verify_str(v, tok, NULL, NULL), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return ((double)(t1.tv_sec - t0.tv_sec) * 1e6 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e3) / n;
}

START_TEST(test_cost_per_verification)
{
    int64_t now = minted_now;
    tb_jwt_verifier *cold = minted_verifier(&now, 0), *warm = minted_verifier(&now, 4096);
    json_t *valid = json_object_get(minted, "valid"), *t;
    size_t i;
    json_array_foreach(valid, i, t)
    {
        const char *name = sget(t, "name");
        if (strchr(name, ' '))
            continue;
        double u = us_per_op(cold, sget(t, "token"), 200);
        double c = us_per_op(warm, sget(t, "token"), 2000);
        printf("jwt-verify %-7s uncached %8.1f us/op, cached %6.2f us/op\n", name, u, c);
    }
    fflush(stdout);
    tb_jwt_verifier_free(cold);
    tb_jwt_verifier_free(warm);
}
END_TEST

static Suite *jwt_suite(void)
{
    Suite *s = suite_create("jwt");
    TCase *tc = tcase_create("jwt");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_jose_tokens_of_every_alg_accepted);
    tcase_add_test(tc, test_negative_corpus_refused_with_its_code);
    tcase_add_test(tc, test_clock_leeway_bounds);
    tcase_add_test(tc, test_cache_second_verify_skips_signature);
    tcase_add_test(tc, test_cache_bounded_evicts);
    tcase_add_test(tc, test_sign_and_verify_every_alg_and_jose_agrees);
    tcase_add_test(tc, test_pem_key_with_pinned_alg_refuses_confusion);
    tcase_add_test(tc, test_jwk_import_refuses_weak_or_bad_keys);
    tcase_add_test(tc, test_jwks_file_rotation_refetches_rate_limited);
    tcase_add_test(tc, test_jwks_url_source_and_rotation);
    tcase_add_test(tc, test_a_url_key_set_never_lends_an_hmac_secret);
    tcase_add_test(tc, test_environment_knobs_fail_loudly_and_take_effect);
    tcase_add_test(tc, test_jwks_reread_every_max_age_and_a_slow_source_holds_no_request);
    tcase_add_test(tc, test_verify_from_many_threads);
    tcase_add_test(tc, test_www_authenticate_and_bearer);
    tcase_add_test(tc, test_claims_scopes_from_scope_or_scp);
    tcase_add_test(tc, test_cost_per_verification);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    if (ensure_node_modules() != 0) {
        fprintf(stderr, "test_jwt: npm ci --prefix " AUTH_DIR " failed\n");
        return 1;
    }
    minted = run_json("node " AUTH_DIR "/mint.mjs", NULL);
    if (!minted || !json_is_array(json_object_get(minted, "invalid"))) {
        fprintf(stderr, "test_jwt: node " AUTH_DIR "/mint.mjs gave no tokens\n");
        return 1;
    }
    minted_now = json_integer_value(json_object_get(minted, "now"));
    SRunner *sr = srunner_create(jwt_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    json_decref(minted);
    return failed ? 1 : 0;
}
