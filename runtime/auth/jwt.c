/*
 * JWT primitives: error table, algorithm table, strict base64url, signature checks and signing
 * with OpenSSL 3 EVP, the WWW-Authenticate helper.
 *
 * Why not Debian's libcjose (0.6.2): it has no EdDSA, takes the algorithm from the token header
 * when verifying (cjose_jws_verify), builds keys with the OpenSSL APIs deprecated in 3.0, and
 * has no claim checks or JWKS fetching. What it would save (JWK member parsing, base64url) is a
 * few hundred lines; the pinning, the strictness (padding, duplicate members) and the claim
 * rules RFC 8725 asks for would be ours anyway. So the JOSE layer is written here over EVP and
 * jansson, and tested against an independent implementation (npm jose, tests/auth).
 */
#include "jwt_internal.h"
#include "tablium/buf.h"

#include <ctype.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- errors ---- */

const char *tb_jwt_err_name(int code)
{
    switch (code) {
#define TB__JWT_ERR_NAME(name, value, wire, text)                                                  \
    case value: return wire;
        TB_JWT_ERR_MAP(TB__JWT_ERR_NAME)
#undef TB__JWT_ERR_NAME
    }
    return "unknown";
}

const char *tb_jwt_strerror(int code)
{
    switch (code) {
#define TB__JWT_ERR_TEXT(name, value, wire, text)                                                  \
    case value: return text;
        TB_JWT_ERR_MAP(TB__JWT_ERR_TEXT)
#undef TB__JWT_ERR_TEXT
    }
    return "unknown error";
}

int tb_jwt_http_status(int code)
{
    switch (code) {
    case TB_JWT_OK: return 200;
    case TB_JWT_ESCOPE: return 403;
    case TB_JWT_EFETCH:
    case TB_JWT_ENOKEY: return 503;
    case TB_JWT_EINTERNAL:
    case TB_JWT_EARG:
    case TB_JWT_EKEY: return 500;
    default: return 401;
    }
}

/* RFC 6750 §3: error_description and scope allow %x20-21 / %x23-5B / %x5D-7E. */
static size_t put_quoted(char *buf, size_t cap, size_t at, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (at + 1 < cap)
            buf[at] = (c < 0x20 || c > 0x7e || c == '"' || c == '\\') ? '?' : (char)c;
        at++;
    }
    return at;
}

static size_t put_raw(char *buf, size_t cap, size_t at, const char *s)
{
    for (; *s; s++, at++)
        if (at + 1 < cap)
            buf[at] = *s;
    return at;
}

size_t tb_jwt_www_authenticate(char *buf, size_t cap, const char *realm, int code,
                               const char *description, const char *scope)
{
    size_t at = put_raw(buf, cap, 0, "Bearer");
    const char *sep = " ";
    if (realm) {
        at = put_raw(buf, cap, at, " realm=\"");
        at = put_quoted(buf, cap, at, realm);
        at = put_raw(buf, cap, at, "\"");
        sep = ", ";
    }
    if (code != TB_JWT_EMISSING && code != TB_JWT_OK) {
        at = put_raw(buf, cap, at, sep);
        at = put_raw(buf, cap, at,
                     code == TB_JWT_ESCOPE ? "error=\"insufficient_scope\""
                                           : "error=\"invalid_token\"");
        at = put_raw(buf, cap, at, ", error_description=\"");
        at = put_quoted(buf, cap, at, description ? description : tb_jwt_strerror(code));
        at = put_raw(buf, cap, at, "\"");
        if (code == TB_JWT_ESCOPE && scope) {
            at = put_raw(buf, cap, at, ", scope=\"");
            at = put_quoted(buf, cap, at, scope);
            at = put_raw(buf, cap, at, "\"");
        }
    }
    if (cap)
        buf[at < cap ? at : cap - 1] = '\0';
    return at < cap ? at : (cap ? cap - 1 : 0);
}

const char *tb_jwt_bearer(const char *value, size_t *len)
{
    if (!value || strncasecmp(value, "Bearer", 6) != 0 || value[6] != ' ')
        return NULL;
    const char *t = value + 6;
    while (*t == ' ')
        t++;
    size_t n = strlen(t);
    while (n && t[n - 1] == ' ')
        n--;
    if (!n)
        return NULL;
    if (len)
        *len = n;
    return t;
}

/* ---- algorithms ---- */

static const tb__jwt_alg_info algs[] = {
    [TB_JWT_HS256] = {"HS256", TB__HMAC, "SHA256", 32, NULL},
    [TB_JWT_HS384] = {"HS384", TB__HMAC, "SHA384", 48, NULL},
    [TB_JWT_HS512] = {"HS512", TB__HMAC, "SHA512", 64, NULL},
    [TB_JWT_RS256] = {"RS256", TB__RSA, "SHA256", 0, NULL},
    [TB_JWT_RS384] = {"RS384", TB__RSA, "SHA384", 0, NULL},
    [TB_JWT_RS512] = {"RS512", TB__RSA, "SHA512", 0, NULL},
    [TB_JWT_PS256] = {"PS256", TB__PSS, "SHA256", 0, NULL},
    [TB_JWT_PS384] = {"PS384", TB__PSS, "SHA384", 0, NULL},
    [TB_JWT_PS512] = {"PS512", TB__PSS, "SHA512", 0, NULL},
    [TB_JWT_ES256] = {"ES256", TB__EC, "SHA256", 32, "prime256v1"},
    [TB_JWT_ES384] = {"ES384", TB__EC, "SHA384", 48, "secp384r1"},
    [TB_JWT_EDDSA] = {"EdDSA", TB__ED, NULL, 0, NULL},
};

const tb__jwt_alg_info *tb__jwt_alg_get(tb_jwt_alg alg)
{
    if ((int)alg <= 0 || (size_t)alg >= sizeof algs / sizeof algs[0])
        return NULL;
    return &algs[alg];
}

const char *tb_jwt_alg_name(tb_jwt_alg alg)
{
    const tb__jwt_alg_info *ai = tb__jwt_alg_get(alg);
    return ai ? ai->name : "none";
}

tb_jwt_alg tb_jwt_alg_parse(const char *name)
{
    if (!name)
        return TB_JWT_ALG_UNKNOWN;
    for (size_t i = 1; i < sizeof algs / sizeof algs[0]; i++)
        if (strcmp(name, algs[i].name) == 0)
            return (tb_jwt_alg)i;
    if (strcmp(name, "Ed25519") == 0)
        return TB_JWT_EDDSA;
    return TB_JWT_ALG_UNKNOWN;
}

/* ---- base64url ---- */

static const signed char b64_rev[256] = {
    ['A'] = 1,  ['B'] = 2,  ['C'] = 3,  ['D'] = 4,  ['E'] = 5,  ['F'] = 6,  ['G'] = 7,  ['H'] = 8,
    ['I'] = 9,  ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16,
    ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24,
    ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32,
    ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36, ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40,
    ['o'] = 41, ['p'] = 42, ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48,
    ['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56,
    ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['-'] = 63, ['_'] = 64,
}; /* value + 1; 0 = not in the alphabet */

bool tb__b64url_valid(const char *s, size_t len)
{
    if (len % 4 == 1)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!b64_rev[(unsigned char)s[i]])
            return false;
    if (len % 4) {
        int last = b64_rev[(unsigned char)s[len - 1]] - 1;
        int unused = len % 4 == 2 ? 0x0f : 0x03;
        if (last & unused)
            return false;
    }
    return true;
}

int tb__b64url_decode(const char *s, size_t len, unsigned char **out, size_t *out_len)
{
    *out = NULL;
    if (!tb__b64url_valid(s, len))
        return TB_JWT_EBASE64;
    unsigned char *buf = malloc(len / 4 * 3 + 3);
    if (!buf)
        return TB_JWT_EINTERNAL;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        acc = (acc << 6) | (uint32_t)(b64_rev[(unsigned char)s[i]] - 1);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (unsigned char)(acc >> bits);
        }
    }
    buf[o] = 0;
    *out = buf;
    *out_len = o;
    return 0;
}

char *tb__b64url_encode(const unsigned char *in, size_t len)
{
    tb_buf b = TB_BUF_INIT;
    tb_buf_base64(&b, in, len, true);
    if (b.oom) {
        tb_buf_deinit(&b);
        return NULL;
    }
    return tb_buf_steal(&b, NULL);
}

/* ---- signatures ---- */

int tb__jwt_key_prepare(tb_jwt_key *k)
{
    const tb__jwt_alg_info *ai = tb__jwt_alg_get(k->alg);
    if (!ai)
        return TB_JWT_EINTERNAL;
    if (ai->kind == TB__HMAC) {
        EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        OSSL_PARAM params[] = {
            OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)ai->md, 0),
            OSSL_PARAM_construct_end(),
        };
        k->mac = mac ? EVP_MAC_CTX_new(mac) : NULL;
        EVP_MAC_free(mac);
        if (!k->mac || EVP_MAC_init(k->mac, k->secret, k->secret_len, params) != 1)
            return TB_JWT_EINTERNAL;
    } else if (ai->md && !(k->md = EVP_MD_fetch(NULL, ai->md, NULL))) {
        return TB_JWT_EINTERNAL;
    }
    return 0;
}

static int hmac(const tb_jwt_key *k, const char *in, size_t len, unsigned char *mac,
                unsigned int *mac_len)
{
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_dup(k->mac);
    size_t n = 0;
    int ok = ctx && EVP_MAC_update(ctx, (const unsigned char *)in, len) == 1 &&
             EVP_MAC_final(ctx, mac, &n, EVP_MAX_MD_SIZE) == 1;
    EVP_MAC_CTX_free(ctx);
    *mac_len = (unsigned int)n;
    return ok ? 0 : TB_JWT_EINTERNAL;
}

/* Digest sign/verify context for k's algorithm (PSS padding with salt = hash length). */
static EVP_MD_CTX *md_ctx(const tb_jwt_key *k, const tb__jwt_alg_info *ai, bool sign)
{
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    if (!mctx)
        return NULL;
    int ok = sign ? EVP_DigestSignInit(mctx, &pctx, k->md, NULL, k->pkey)
                  : EVP_DigestVerifyInit(mctx, &pctx, k->md, NULL, k->pkey);
    if (ok == 1 && ai->kind == TB__PSS)
        ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1;
    else if (ok == 1 && ai->kind == TB__RSA)
        ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1;
    if (ok != 1) {
        EVP_MD_CTX_free(mctx);
        return NULL;
    }
    return mctx;
}

/* JOSE ECDSA signatures are R||S, each the coordinate size (RFC 7518 §3.4); OpenSSL's are DER. */
static unsigned char *ec_raw_to_der(const unsigned char *sig, size_t n, size_t *der_len)
{
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, (int)(n / 2), NULL);
    BIGNUM *s = BN_bin2bn(sig + n / 2, (int)(n / 2), NULL);
    unsigned char *der = NULL;
    if (!es || !r || !s || ECDSA_SIG_set0(es, r, s) != 1)
        goto fail;
    r = s = NULL; /* owned by es now */
    int len = i2d_ECDSA_SIG(es, &der);
    if (len <= 0)
        goto fail;
    *der_len = (size_t)len;
    ECDSA_SIG_free(es);
    return der;
fail:
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return NULL;
}

static int ec_der_to_raw(const unsigned char *der, size_t der_len, size_t coord, unsigned char *raw)
{
    const unsigned char *p = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    if (!es)
        return TB_JWT_EINTERNAL;
    const BIGNUM *r = NULL, *s = NULL;
    ECDSA_SIG_get0(es, &r, &s);
    int ok = BN_bn2binpad(r, raw, (int)coord) == (int)coord &&
             BN_bn2binpad(s, raw + coord, (int)coord) == (int)coord;
    ECDSA_SIG_free(es);
    return ok ? 0 : TB_JWT_EINTERNAL;
}

int tb__jwt_sig_verify(const tb_jwt_key *k, const char *input, size_t input_len,
                       const unsigned char *sig, size_t sig_len)
{
    const tb__jwt_alg_info *ai = tb__jwt_alg_get(k->alg);
    if (!ai)
        return TB_JWT_EINTERNAL;
    if (ai->kind == TB__HMAC) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int mac_len = 0;
        int rc = hmac(k, input, input_len, mac, &mac_len);
        if (rc)
            return rc;
        return sig_len == mac_len && CRYPTO_memcmp(mac, sig, mac_len) == 0 ? 0 : TB_JWT_ESIG;
    }
    unsigned char *der = NULL;
    if (ai->kind == TB__EC) {
        if (sig_len != 2 * ai->size) /* a DER signature or a truncated one */
            return TB_JWT_ESIG;
        der = ec_raw_to_der(sig, sig_len, &sig_len);
        if (!der)
            return TB_JWT_EINTERNAL;
        sig = der;
    }
    EVP_MD_CTX *mctx = md_ctx(k, ai, false);
    int rc = TB_JWT_EINTERNAL;
    if (mctx)
        rc = EVP_DigestVerify(mctx, sig, sig_len, (const unsigned char *)input, input_len) == 1
                 ? 0
                 : TB_JWT_ESIG;
    EVP_MD_CTX_free(mctx);
    OPENSSL_free(der);
    return rc;
}

/* Signature of input, raw JOSE form, in a new buffer. */
static int sig_sign(const tb_jwt_key *k, const char *input, size_t len, unsigned char **out,
                    size_t *out_len)
{
    const tb__jwt_alg_info *ai = tb__jwt_alg_get(k->alg);
    unsigned char *sig = NULL, *raw = NULL;
    EVP_MD_CTX *mctx = NULL;
    size_t n = 0;
    *out = NULL;
    if (!ai)
        return TB_JWT_EINTERNAL;
    if (ai->kind == TB__HMAC) {
        unsigned int mac_len = 0;
        sig = malloc(EVP_MAX_MD_SIZE);
        if (!sig || hmac(k, input, len, sig, &mac_len))
            goto fail;
        *out = sig;
        *out_len = mac_len;
        return 0;
    }
    mctx = md_ctx(k, ai, true);
    if (!mctx || EVP_DigestSign(mctx, NULL, &n, (const unsigned char *)input, len) != 1)
        goto fail;
    sig = malloc(n);
    if (!sig || EVP_DigestSign(mctx, sig, &n, (const unsigned char *)input, len) != 1)
        goto fail;
    if (ai->kind == TB__EC) {
        raw = malloc(2 * ai->size);
        if (!raw || ec_der_to_raw(sig, n, ai->size, raw))
            goto fail;
        free(sig);
        sig = raw;
        raw = NULL;
        n = 2 * ai->size;
    }
    EVP_MD_CTX_free(mctx);
    *out = sig;
    *out_len = n;
    return 0;
fail:
    free(raw);
    free(sig);
    EVP_MD_CTX_free(mctx);
    return TB_JWT_EINTERNAL;
}

int tb_jwt_sign(const tb_jwt_key *k, const json_t *claims, const json_t *header, char **out,
                tb_error *err)
{
    json_t *hdr = NULL;
    char *htext = NULL, *ptext = NULL, *h64 = NULL, *p64 = NULL, *s64 = NULL, *tok = NULL;
    unsigned char *sig = NULL;
    size_t sig_len = 0;
    int rc = TB_JWT_EINTERNAL;
    if (out)
        *out = NULL;
    if (!k || !out || !json_is_object(claims) || (header && !json_is_object(header)))
        return tb_error_set(err, TB_JWT_EARG, "tb_jwt_sign: a key and a claims object needed");
    if (!tb_jwt_key_can_sign(k))
        return tb_error_set(err, TB_JWT_EKEY, "key cannot sign (a public key)");
    hdr = json_object();
    if (!hdr)
        goto fail;
    if (header && json_object_update(hdr, (json_t *)header))
        goto fail;
    if (json_object_set_new(hdr, "alg", json_string(tb_jwt_alg_name(k->alg))) ||
        (!json_object_get(hdr, "typ") && json_object_set_new(hdr, "typ", json_string("JWT"))) ||
        (k->kid && !json_object_get(hdr, "kid") &&
         json_object_set_new(hdr, "kid", json_string(k->kid))))
        goto fail;
    htext = json_dumps(hdr, JSON_COMPACT);
    ptext = json_dumps(claims, JSON_COMPACT);
    if (!htext || !ptext)
        goto fail;
    h64 = tb__b64url_encode((const unsigned char *)htext, strlen(htext));
    p64 = tb__b64url_encode((const unsigned char *)ptext, strlen(ptext));
    if (!h64 || !p64)
        goto fail;
    size_t hl = strlen(h64), pl = strlen(p64);
    tok = malloc(hl + pl + 2);
    if (!tok)
        goto fail;
    memcpy(tok, h64, hl);
    tok[hl] = '.';
    memcpy(tok + hl + 1, p64, pl);
    if ((rc = sig_sign(k, tok, hl + 1 + pl, &sig, &sig_len)) != 0)
        goto fail;
    rc = TB_JWT_EINTERNAL;
    s64 = tb__b64url_encode(sig, sig_len);
    if (!s64)
        goto fail;
    size_t sl = strlen(s64);
    char *t = realloc(tok, hl + pl + sl + 3);
    if (!t)
        goto fail;
    tok = t;
    tok[hl + 1 + pl] = '.';
    memcpy(tok + hl + pl + 2, s64, sl + 1);
    *out = tok;
    tok = NULL;
    rc = 0;
fail:
    free(tok);
    free(s64);
    free(sig);
    free(p64);
    free(h64);
    free(ptext);
    free(htext);
    json_decref(hdr);
    if (rc)
        tb_error_set(err, rc, "signing failed: %s", tb_jwt_strerror(rc));
    return rc;
}
