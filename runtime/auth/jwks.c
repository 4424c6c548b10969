/* JWT keys: JWK (RFC 7517) and PEM import, generation, public JWK export, key sets. */
#include "jwt_internal.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIN_RSA_BITS 2048

static tb_jwt_key *key_alloc(tb_jwt_alg alg, const char *kid)
{
    tb_jwt_key *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    atomic_init(&k->refs, 1);
    k->alg = alg;
    if (kid && !(k->kid = strdup(kid))) {
        free(k);
        return NULL;
    }
    return k;
}

tb_jwt_key *tb_jwt_key_ref(tb_jwt_key *k)
{
    if (k)
        atomic_fetch_add(&k->refs, 1);
    return k;
}

void tb_jwt_key_free(tb_jwt_key *k)
{
    if (!k || atomic_fetch_sub(&k->refs, 1) != 1)
        return;
    EVP_PKEY_free(k->pkey);
    EVP_MAC_CTX_free(k->mac);
    EVP_MD_free(k->md);
    if (k->secret)
        OPENSSL_clear_free(k->secret, k->secret_len);
    free(k->kid);
    free(k);
}

tb_jwt_alg tb_jwt_key_alg(const tb_jwt_key *k)
{
    return k ? k->alg : TB_JWT_ALG_UNKNOWN;
}

const char *tb_jwt_key_kid(const tb_jwt_key *k)
{
    return k ? k->kid : NULL;
}

bool tb_jwt_key_can_sign(const tb_jwt_key *k)
{
    return k && (k->secret || k->is_private);
}

bool tb__jwt_key_same(const tb_jwt_key *a, const tb_jwt_key *b)
{
    if (a->alg != b->alg)
        return false;
    if (a->secret || b->secret)
        return a->secret && b->secret && a->secret_len == b->secret_len &&
               CRYPTO_memcmp(a->secret, b->secret, a->secret_len) == 0;
    return EVP_PKEY_eq(a->pkey, b->pkey) == 1;
}

/* Does pkey fit alg (type, curve, size)? 0 or TB_JWT_EKEY with a message. */
static int check_pkey(EVP_PKEY *pkey, tb_jwt_alg alg, tb_error *err)
{
    const tb__jwt_alg_info *ai = tb__jwt_alg_get(alg);
    if (!ai || ai->kind == TB__HMAC)
        return tb_error_set(err, TB_JWT_EKEY, "alg %s does not fit an asymmetric key",
                            tb_jwt_alg_name(alg));
    switch (ai->kind) {
    case TB__RSA:
    case TB__PSS:
        if (!EVP_PKEY_is_a(pkey, "RSA"))
            return tb_error_set(err, TB_JWT_EKEY, "alg %s needs an RSA key", ai->name);
        if (EVP_PKEY_get_bits(pkey) < MIN_RSA_BITS)
            return tb_error_set(err, TB_JWT_EKEY, "RSA key of %d bits (at least %d)",
                                EVP_PKEY_get_bits(pkey), MIN_RSA_BITS);
        return 0;
    case TB__EC: {
        char group[64] = "";
        size_t glen = 0;
        if (!EVP_PKEY_is_a(pkey, "EC") ||
            EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                           &glen) != 1 ||
            strcmp(group, ai->group) != 0)
            return tb_error_set(err, TB_JWT_EKEY, "alg %s needs an EC key on %s", ai->name,
                                ai->group);
        return 0;
    }
    case TB__ED:
        if (!EVP_PKEY_is_a(pkey, "ED25519"))
            return tb_error_set(err, TB_JWT_EKEY, "alg EdDSA needs an Ed25519 key");
        return 0;
    default: return tb_error_set(err, TB_JWT_EKEY, "unsupported key");
    }
}

int tb_jwt_key_from_secret(const void *secret, size_t len, tb_jwt_alg alg, const char *kid,
                           tb_jwt_key **out, tb_error *err)
{
    const tb__jwt_alg_info *ai = tb__jwt_alg_get(alg);
    if (out)
        *out = NULL;
    if (!out || (!secret && len))
        return tb_error_set(err, TB_JWT_EARG, "tb_jwt_key_from_secret: bad arguments");
    if (!ai || ai->kind != TB__HMAC)
        return tb_error_set(err, TB_JWT_EKEY, "alg %s is not an HMAC algorithm",
                            tb_jwt_alg_name(alg));
    if (len < ai->size)
        return tb_error_set(err, TB_JWT_EKEY, "%s secret of %zu bytes (at least %zu)", ai->name,
                            len, ai->size);
    tb_jwt_key *k = key_alloc(alg, kid);
    if (!k || !(k->secret = OPENSSL_malloc(len))) {
        tb_jwt_key_free(k);
        return tb_error_set(err, TB_JWT_EINTERNAL, "out of memory");
    }
    memcpy(k->secret, secret, len);
    k->secret_len = len;
    if (tb__jwt_key_prepare(k)) {
        tb_jwt_key_free(k);
        return tb_error_set(err, TB_JWT_EINTERNAL, "HMAC setup failed");
    }
    *out = k;
    return 0;
}

/* Takes ownership of pkey (freed on failure). */
static int key_from_pkey(EVP_PKEY *pkey, bool is_private, tb_jwt_alg alg, const char *kid,
                         tb_jwt_key **out, tb_error *err)
{
    int rc = check_pkey(pkey, alg, err);
    if (rc) {
        EVP_PKEY_free(pkey);
        return rc;
    }
    tb_jwt_key *k = key_alloc(alg, kid);
    if (!k) {
        EVP_PKEY_free(pkey);
        return tb_error_set(err, TB_JWT_EINTERNAL, "out of memory");
    }
    k->pkey = pkey;
    k->is_private = is_private;
    if (tb__jwt_key_prepare(k)) {
        tb_jwt_key_free(k);
        return tb_error_set(err, TB_JWT_EINTERNAL, "digest setup failed");
    }
    *out = k;
    return 0;
}

int tb_jwt_key_from_pem(const char *pem, size_t len, tb_jwt_alg alg, const char *kid,
                        tb_jwt_key **out, tb_error *err)
{
    if (out)
        *out = NULL;
    if (!pem || !out || len > INT32_MAX)
        return tb_error_set(err, TB_JWT_EARG, "tb_jwt_key_from_pem: bad arguments");
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio)
        return tb_error_set(err, TB_JWT_EINTERNAL, "out of memory");
    bool is_private = false;
    EVP_PKEY *pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    if (!pkey) {
        (void)BIO_reset(bio);
        pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
        is_private = pkey != NULL;
    }
    BIO_free(bio);
    if (!pkey)
        return tb_error_set(err, TB_JWT_EKEY, "not a PEM public or private key");
    return key_from_pkey(pkey, is_private, alg, kid, out, err);
}

int tb_jwt_key_generate(tb_jwt_alg alg, const char *kid, tb_jwt_key **out, tb_error *err)
{
    const tb__jwt_alg_info *ai = tb__jwt_alg_get(alg);
    EVP_PKEY *pkey = NULL;
    if (out)
        *out = NULL;
    if (!out || !ai)
        return tb_error_set(err, TB_JWT_EARG, "tb_jwt_key_generate: bad arguments");
    switch (ai->kind) {
    case TB__HMAC: {
        unsigned char buf[64];
        if (RAND_bytes(buf, (int)ai->size) != 1)
            return tb_error_set(err, TB_JWT_EINTERNAL, "RAND_bytes failed");
        int rc = tb_jwt_key_from_secret(buf, ai->size, alg, kid, out, err);
        OPENSSL_cleanse(buf, sizeof buf);
        return rc;
    }
    case TB__RSA:
    case TB__PSS: pkey = EVP_RSA_gen(MIN_RSA_BITS); break;
    case TB__EC: pkey = EVP_EC_gen(alg == TB_JWT_ES256 ? "P-256" : "P-384"); break;
    case TB__ED: pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"); break;
    }
    if (!pkey)
        return tb_error_set(err, TB_JWT_EINTERNAL, "key generation failed");
    return key_from_pkey(pkey, true, alg, kid, out, err);
}

/* ---- JWK import ---- */

/* Decodes the base64url member `name` of jwk. 0, or TB_JWT_EKEY with a message. */
static int jwk_bytes(const json_t *jwk, const char *name, unsigned char **out, size_t *len,
                     tb_error *err)
{
    const char *s = json_string_value(json_object_get(jwk, name));
    *out = NULL;
    if (!s)
        return tb_error_set(err, TB_JWT_EKEY, "JWK member %s missing", name);
    if (tb__b64url_decode(s, strlen(s), out, len) || *len == 0) {
        free(*out);
        *out = NULL;
        return tb_error_set(err, TB_JWT_EKEY, "JWK member %s is not base64url", name);
    }
    return 0;
}

static EVP_PKEY *pkey_fromdata(const char *type, OSSL_PARAM *params)
{
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
        pkey = NULL;
    EVP_PKEY_CTX_free(ctx);
    return pkey;
}

static EVP_PKEY *jwk_rsa(const json_t *jwk, tb_error *err)
{
    unsigned char *n = NULL, *e = NULL;
    size_t nl = 0, el = 0;
    BIGNUM *bn = NULL, *be = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY *pkey = NULL;
    if (jwk_bytes(jwk, "n", &n, &nl, err) || jwk_bytes(jwk, "e", &e, &el, err))
        goto fail;
    if (el > 8) {
        tb_error_set(err, TB_JWT_EKEY, "RSA exponent too long");
        goto fail;
    }
    bn = BN_bin2bn(n, (int)nl, NULL);
    be = BN_bin2bn(e, (int)el, NULL);
    bld = OSSL_PARAM_BLD_new();
    if (!bn || !be || !bld || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) ||
        !(params = OSSL_PARAM_BLD_to_param(bld)) || !(pkey = pkey_fromdata("RSA", params)))
        tb_error_set(err, TB_JWT_EKEY, "unusable RSA JWK");
fail:
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(be);
    BN_free(bn);
    free(e);
    free(n);
    return pkey;
}

static EVP_PKEY *jwk_ec(const json_t *jwk, const char *crv, tb_error *err)
{
    size_t coord = strcmp(crv, "P-256") == 0 ? 32 : 48;
    unsigned char *x = NULL, *y = NULL, point[1 + 2 * 48];
    size_t xl = 0, yl = 0;
    EVP_PKEY *pkey = NULL;
    if (jwk_bytes(jwk, "x", &x, &xl, err) || jwk_bytes(jwk, "y", &y, &yl, err))
        goto fail;
    if (xl != coord || yl != coord) {
        tb_error_set(err, TB_JWT_EKEY, "EC JWK coordinates of the wrong length");
        goto fail;
    }
    point[0] = 0x04; /* uncompressed */
    memcpy(point + 1, x, coord);
    memcpy(point + 1 + coord, y, coord);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)crv, 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * coord),
        OSSL_PARAM_construct_end(),
    };
    pkey = pkey_fromdata("EC", params);
    /* fromdata decodes the point onto the curve; the check makes "on the curve" explicit. */
    EVP_PKEY_CTX *ctx = pkey ? EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL) : NULL;
    if (!ctx || EVP_PKEY_public_check(ctx) != 1) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
        tb_error_set(err, TB_JWT_EKEY, "EC JWK is not a point on %s", crv);
    }
    EVP_PKEY_CTX_free(ctx);
fail:
    free(y);
    free(x);
    return pkey;
}

static EVP_PKEY *jwk_okp(const json_t *jwk, tb_error *err)
{
    unsigned char *x = NULL;
    size_t xl = 0;
    EVP_PKEY *pkey = NULL;
    if (jwk_bytes(jwk, "x", &x, &xl, err))
        return NULL;
    if (xl != 32 || !(pkey = EVP_PKEY_new_raw_public_key_ex(NULL, "ED25519", NULL, x, xl)))
        tb_error_set(err, TB_JWT_EKEY, "unusable Ed25519 JWK");
    free(x);
    return pkey;
}

static bool key_ops_verify(const json_t *ops)
{
    size_t i;
    json_t *op;
    json_array_foreach(ops, i, op)
    {
        const char *s = json_string_value(op);
        if (s && (strcmp(s, "verify") == 0 || strcmp(s, "sign") == 0))
            return true;
    }
    return false;
}

int tb_jwt_key_from_jwk(const json_t *jwk, tb_jwt_alg alg, tb_jwt_key **out, tb_error *err)
{
    if (out)
        *out = NULL;
    if (!json_is_object(jwk) || !out)
        return tb_error_set(err, TB_JWT_EARG, "a JWK is a JSON object");
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    const char *crv = json_string_value(json_object_get(jwk, "crv"));
    const json_t *jkid = json_object_get(jwk, "kid");
    const json_t *jalg = json_object_get(jwk, "alg");
    const json_t *use = json_object_get(jwk, "use");
    const json_t *ops = json_object_get(jwk, "key_ops");
    if (!kty)
        return tb_error_set(err, TB_JWT_EKEY, "JWK without kty");
    if (jkid && !json_is_string(jkid))
        return tb_error_set(err, TB_JWT_EKEY, "JWK kid is not a string");
    if (use && (!json_is_string(use) || strcmp(json_string_value(use), "sig") != 0))
        return tb_error_set(err, TB_JWT_EKEY, "JWK use is not \"sig\"");
    if (ops && (!json_is_array(ops) || !key_ops_verify(ops)))
        return tb_error_set(err, TB_JWT_EKEY, "JWK key_ops without verify");
    if (jalg) {
        alg = tb_jwt_alg_parse(json_string_value(jalg));
        if (alg == TB_JWT_ALG_UNKNOWN)
            return tb_error_set(err, TB_JWT_EKEY, "JWK alg unknown or not a string");
    }
    const char *kid = json_string_value(jkid);
    if (strcmp(kty, "oct") == 0) {
        unsigned char *k = NULL;
        size_t kl = 0;
        int rc = jwk_bytes(jwk, "k", &k, &kl, err);
        if (rc)
            return rc;
        if (alg == TB_JWT_ALG_UNKNOWN)
            rc = tb_error_set(err, TB_JWT_EKEY, "oct JWK without alg");
        else
            rc = tb_jwt_key_from_secret(k, kl, alg, kid, out, err);
        OPENSSL_clear_free(k, kl);
        return rc;
    }
    EVP_PKEY *pkey = NULL;
    if (strcmp(kty, "RSA") == 0) {
        if (alg == TB_JWT_ALG_UNKNOWN)
            return tb_error_set(err, TB_JWT_EKEY, "RSA JWK without alg (RS256 or PS256?)");
        pkey = jwk_rsa(jwk, err);
    } else if (strcmp(kty, "EC") == 0 && crv &&
               (strcmp(crv, "P-256") == 0 || strcmp(crv, "P-384") == 0)) {
        if (alg == TB_JWT_ALG_UNKNOWN)
            alg = strcmp(crv, "P-256") == 0 ? TB_JWT_ES256 : TB_JWT_ES384;
        pkey = jwk_ec(jwk, crv, err);
    } else if (strcmp(kty, "OKP") == 0 && crv && strcmp(crv, "Ed25519") == 0) {
        if (alg == TB_JWT_ALG_UNKNOWN)
            alg = TB_JWT_EDDSA;
        pkey = jwk_okp(jwk, err);
    } else {
        return tb_error_set(err, TB_JWT_EKEY, "unsupported JWK kty %s", kty);
    }
    if (!pkey)
        return err && err->code ? err->code : TB_JWT_EKEY;
    return key_from_pkey(pkey, false, alg, kid, out, err);
}

/* ---- JWK export ---- */

static json_t *b64_member_bn(EVP_PKEY *pkey, const char *param, size_t pad)
{
    BIGNUM *bn = NULL;
    json_t *j = NULL;
    if (EVP_PKEY_get_bn_param(pkey, param, &bn) != 1)
        return NULL;
    size_t len = pad ? pad : (size_t)BN_num_bytes(bn);
    unsigned char *buf = malloc(len ? len : 1);
    if (buf && BN_bn2binpad(bn, buf, (int)len) == (int)len) {
        char *s = tb__b64url_encode(buf, len);
        if (s)
            j = json_string(s);
        free(s);
    }
    free(buf);
    BN_free(bn);
    return j;
}

json_t *tb_jwt_key_to_jwk(const tb_jwt_key *k)
{
    if (!k || !k->pkey)
        return NULL;
    const tb__jwt_alg_info *ai = tb__jwt_alg_get(k->alg);
    json_t *j = json_object();
    int bad = !j;
    if (!bad && ai->kind == TB__EC) {
        bad |= json_object_set_new(j, "kty", json_string("EC"));
        bad |=
            json_object_set_new(j, "crv", json_string(k->alg == TB_JWT_ES256 ? "P-256" : "P-384"));
        bad |=
            json_object_set_new(j, "x", b64_member_bn(k->pkey, OSSL_PKEY_PARAM_EC_PUB_X, ai->size));
        bad |=
            json_object_set_new(j, "y", b64_member_bn(k->pkey, OSSL_PKEY_PARAM_EC_PUB_Y, ai->size));
    } else if (!bad && ai->kind == TB__ED) {
        unsigned char x[32];
        size_t xl = sizeof x;
        char *s = NULL;
        if (EVP_PKEY_get_raw_public_key(k->pkey, x, &xl) != 1 || !(s = tb__b64url_encode(x, xl)))
            bad = 1;
        bad |= json_object_set_new(j, "kty", json_string("OKP"));
        bad |= json_object_set_new(j, "crv", json_string("Ed25519"));
        bad |= json_object_set_new(j, "x", s ? json_string(s) : NULL);
        free(s);
    } else if (!bad) {
        bad |= json_object_set_new(j, "kty", json_string("RSA"));
        bad |= json_object_set_new(j, "n", b64_member_bn(k->pkey, OSSL_PKEY_PARAM_RSA_N, 0));
        bad |= json_object_set_new(j, "e", b64_member_bn(k->pkey, OSSL_PKEY_PARAM_RSA_E, 0));
    }
    if (!bad && k->kid)
        bad |= json_object_set_new(j, "kid", json_string(k->kid));
    if (!bad) {
        bad |= json_object_set_new(j, "use", json_string("sig"));
        bad |= json_object_set_new(j, "alg", json_string(ai->name));
    }
    if (bad) {
        json_decref(j);
        return NULL;
    }
    return j;
}

char *tb_jwt_key_private_pem(const tb_jwt_key *k)
{
    if (!k || !k->pkey || !k->is_private)
        return NULL;
    BIO *bio = BIO_new(BIO_s_mem());
    char *out = NULL, *data = NULL;
    if (bio && PEM_write_bio_PrivateKey(bio, k->pkey, NULL, NULL, 0, NULL, NULL) == 1) {
        long n = BIO_get_mem_data(bio, &data);
        if (n > 0 && (out = malloc((size_t)n + 1))) {
            memcpy(out, data, (size_t)n);
            out[n] = '\0';
        }
    }
    BIO_free(bio);
    return out;
}

/* ---- key sets ---- */

int tb__jwks_adopt(tb_jwt_key **keys, size_t n, tb_jwks **out)
{
    tb_jwks *ks = calloc(1, sizeof *ks);
    *out = NULL;
    if (!ks || (n && !(ks->keys = malloc(n * sizeof *ks->keys)))) {
        free(ks);
        return TB_JWT_EINTERNAL;
    }
    atomic_init(&ks->refs, 1);
    if (n)
        memcpy(ks->keys, keys, n * sizeof *keys);
    ks->n = n;
    *out = ks;
    return 0;
}

int tb_jwks_new(tb_jwt_key *const *keys, size_t n, tb_jwks **out)
{
    if (!out || (n && !keys))
        return TB_JWT_EARG;
    int rc = tb__jwks_adopt((tb_jwt_key **)keys, n, out);
    for (size_t i = 0; rc == 0 && i < n; i++)
        tb_jwt_key_ref(keys[i]);
    return rc;
}

void tb_jwks_free(tb_jwks *ks)
{
    if (!ks || atomic_fetch_sub(&ks->refs, 1) != 1)
        return;
    for (size_t i = 0; i < ks->n; i++)
        tb_jwt_key_free(ks->keys[i]);
    free(ks->keys);
    free(ks);
}

size_t tb_jwks_count(const tb_jwks *ks)
{
    return ks ? ks->n : 0;
}

tb_jwt_key *tb_jwks_get(const tb_jwks *ks, size_t i)
{
    return ks && i < ks->n ? ks->keys[i] : NULL;
}

tb_jwt_key *tb_jwks_find(const tb_jwks *ks, const char *kid)
{
    for (size_t i = 0; ks && kid && i < ks->n; i++)
        if (ks->keys[i]->kid && strcmp(ks->keys[i]->kid, kid) == 0)
            return ks->keys[i];
    return NULL;
}

int tb_jwks_parse(const char *json, size_t len, tb_jwt_alg alg, tb_jwks **out, size_t *n_skipped,
                  tb_error *err)
{
    json_error_t jerr;
    json_t *doc = NULL;
    tb_jwt_key **keys = NULL;
    size_t n = 0, skipped = 0;
    int rc = 0;
    if (out)
        *out = NULL;
    if (n_skipped)
        *n_skipped = 0;
    if (!json || !out)
        return tb_error_set(err, TB_JWT_EARG, "tb_jwks_parse: bad arguments");
    doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        rc = json_error_code(&jerr) == json_error_duplicate_key ? TB_JWT_EDUPKEY : TB_JWT_EJSON;
        return tb_error_set(err, rc, "JWKS: %s at line %d", jerr.text, jerr.line);
    }
    json_t *arr = json_object_get(doc, "keys");
    if (!json_is_array(arr)) {
        json_decref(doc);
        return tb_error_set(err, TB_JWT_EJSON, "JWKS: no \"keys\" array");
    }
    keys = calloc(json_array_size(arr) + 1, sizeof *keys);
    if (!keys) {
        json_decref(doc);
        return tb_error_set(err, TB_JWT_EINTERNAL, "out of memory");
    }
    size_t i;
    json_t *jwk;
    json_array_foreach(arr, i, jwk)
    {
        tb_error kerr = TB_ERROR_INIT;
        int krc = tb_jwt_key_from_jwk(jwk, alg, &keys[n], &kerr);
        tb_error_deinit(&kerr);
        if (krc == 0)
            n++;
        else if (krc == TB_JWT_EINTERNAL)
            rc = krc;
        else
            skipped++;
    }
    json_decref(doc);
    if (rc == 0)
        rc = tb__jwks_adopt(keys, n, out);
    if (rc) {
        for (i = 0; i < n; i++)
            tb_jwt_key_free(keys[i]);
        tb_error_set(err, rc, "out of memory");
    }
    free(keys);
    if (n_skipped)
        *n_skipped = skipped;
    return rc;
}

json_t *tb_jwks_to_json(const tb_jwks *ks)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && ks && i < ks->n; i++) {
        if (!ks->keys[i]->pkey)
            continue;
        json_t *j = tb_jwt_key_to_jwk(ks->keys[i]);
        if (!j || json_array_append_new(arr, j)) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr ? json_pack("{s:o}", "keys", arr) : NULL;
}
