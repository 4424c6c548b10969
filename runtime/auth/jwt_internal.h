/* runtime/auth internals shared by jwt.c (primitives, signing), jwks.c (keys) and verify.c. */
#ifndef TABLIUM_AUTH_JWT_INTERNAL_H
#define TABLIUM_AUTH_JWT_INTERNAL_H

#include "tablium/jwt.h"

#include <openssl/evp.h>
#include <stdatomic.h>

typedef enum tb__jwt_kind { TB__HMAC, TB__RSA, TB__PSS, TB__EC, TB__ED } tb__jwt_kind;

typedef struct tb__jwt_alg_info {
    const char *name; /* JOSE name */
    tb__jwt_kind kind;
    const char *md;    /* digest name for OpenSSL; NULL for EdDSA */
    size_t size;       /* HMAC: minimum key and MAC length; EC: coordinate length */
    const char *group; /* EC: OpenSSL group name */
} tb__jwt_alg_info;

/* NULL for TB_JWT_ALG_UNKNOWN or out of range. */
const tb__jwt_alg_info *tb__jwt_alg_get(tb_jwt_alg alg);

struct tb_jwt_key {
    atomic_int refs;
    tb_jwt_alg alg;
    char *kid;
    EVP_PKEY *pkey;        /* asymmetric keys */
    unsigned char *secret; /* HMAC keys */
    size_t secret_len;
    /* Fetched once per key: name lookups per token cost more than an HMAC. */
    EVP_MAC_CTX *mac; /* HMAC keys: keyed, duplicated per use */
    EVP_MD *md;       /* RSA and EC keys */
    bool is_private;
};

struct tb_jwks {
    atomic_int refs;
    size_t n;
    tb_jwt_key **keys;
};

/* Strict base64url (RFC 7515 §2): alphabet A-Z a-z 0-9 - _, no padding, no whitespace, no
 * length that leaves 6 dangling bits, unused trailing bits zero (one text per byte string). */
bool tb__b64url_valid(const char *s, size_t len);
/* Decodes into a new buffer (malloc, one spare NUL byte). 0 or TB_JWT_EBASE64 / EINTERNAL. */
int tb__b64url_decode(const char *s, size_t len, unsigned char **out, size_t *out_len);
/* Encodes into a new NUL-terminated string (malloc), NULL on allocation failure. */
char *tb__b64url_encode(const unsigned char *in, size_t len);

/* Verifies sig over input with key k for alg (already checked against the key's pin).
 * 0, TB_JWT_ESIG or TB_JWT_EINTERNAL. */
int tb__jwt_sig_verify(const tb_jwt_key *k, const char *input, size_t input_len,
                       const unsigned char *sig, size_t sig_len);

/* Fetches k->md / keys k->mac for k->alg. 0 or TB_JWT_EINTERNAL. */
int tb__jwt_key_prepare(tb_jwt_key *k);
/* tb_jwks with `n` keys taking the references passed (not adding any). */
int tb__jwks_adopt(tb_jwt_key **keys, size_t n, tb_jwks **out);
/* Same key material and algorithm (kid ignored). */
bool tb__jwt_key_same(const tb_jwt_key *a, const tb_jwt_key *b);

#endif
