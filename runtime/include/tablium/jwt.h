/*
 * tablium: JSON Web Tokens (RFC 7519, RFC 8725 best practice): verification, keys, JWKS,
 * signing.
 *
 * Verification pins the algorithm per key (the JWK's `alg`, its curve, or configuration) and
 * never takes it from the token: `none` is always refused and an HMAC key never verifies an
 * asymmetric algorithm (nor the reverse), so the HS256-signed-with-the-RSA-public-key confusion
 * fails. Algorithms: HS256/384/512, RS256/384/512, PS256/384/512, ES256, ES384 (JOSE R||S
 * signatures) and EdDSA over Ed25519 (also accepted under RFC 9864's name "Ed25519").
 *
 * A verifier (tb_jwt_verifier) holds the keys (a JWKS string, file or URL, and/or keys given
 * directly), the claim rules (iss, aud, typ, required claims, leeway) and a cache of verified
 * tokens keyed by their SHA-256 digest, so a token costs one signature check until it expires.
 * An unknown `kid` refetches a file or URL source, at most once per refetch interval, so key
 * rotation works without restarts; the source is also reread every jwks_max_age_s (300), so a
 * key removed from it stops being trusted. The rereads run on a thread of the verifier's own.
 *
 * Errors: every call returns 0 or a negative code. The verification codes below (TB_JWT_E...)
 * are their own append-only table, below the TB_E... range; tb_jwt_err_name() gives the wire
 * name ("token_expired") and tb_jwt_strerror() the text. Details go into an optional tb_error
 * (error.h), whose code is set to the same TB_JWT_E... value.
 *
 * Threads: keys are immutable once made and may be shared; a verifier may be used from any
 * number of threads at once; claims objects are immutable and reference counted.
 */
#ifndef TABLIUM_JWT_H
#define TABLIUM_JWT_H

#include "tablium/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* X(name, value, wire name, text). Append-only: codes never change meaning or value. */
#define TB_JWT_ERR_MAP(X)                                                                          \
    X(OK, 0, "ok", "valid token")                                                                  \
    X(EMISSING, -100, "token_missing", "no token")                                                 \
    X(EMALFORMED, -101, "token_malformed", "token is not a compact JWS")                           \
    X(ETOOLARGE, -102, "token_too_large", "token too large")                                       \
    X(EJWE, -103, "token_is_jwe", "encrypted tokens (JWE) are not accepted")                       \
    X(EBASE64, -104, "bad_base64url", "invalid base64url")                                         \
    X(EJSON, -105, "bad_json", "header or payload is not a JSON object")                           \
    X(EDUPKEY, -106, "duplicate_key", "duplicate member in header or payload")                     \
    X(EALG, -107, "alg_not_allowed", "algorithm not allowed for this key")                         \
    X(EKID, -108, "unknown_kid", "no key with this kid")                                           \
    X(ESIG, -109, "bad_signature", "signature does not verify")                                    \
    X(EEXPIRED, -110, "token_expired", "token expired")                                            \
    X(ENOTYET, -111, "token_not_yet_valid", "token not valid yet (nbf)")                           \
    X(EIATFUTURE, -112, "token_issued_in_future", "token issued in the future (iat)")              \
    X(EISSUER, -113, "wrong_issuer", "wrong issuer")                                               \
    X(EAUDIENCE, -114, "wrong_audience", "wrong audience")                                         \
    X(EMISSINGCLAIM, -115, "missing_claim", "a required claim is missing")                         \
    X(EBADCLAIM, -116, "bad_claim", "a claim has the wrong type")                                  \
    X(ECRIT, -117, "crit_unsupported", "critical header parameters are not supported")             \
    X(ETYP, -118, "wrong_typ", "wrong token type (typ)")                                           \
    X(ENOKEY, -119, "no_key", "no key available (JWKS not loaded)")                                \
    X(EKEY, -120, "bad_key", "unusable key")                                                       \
    X(EFETCH, -121, "jwks_fetch_failed", "could not fetch the JWKS")                               \
    X(EINTERNAL, -122, "internal_error", "internal error (out of memory, crypto failure)")         \
    X(EARG, -123, "invalid_argument", "invalid argument")                                          \
    X(ESCOPE, -124, "insufficient_scope", "token lacks a required scope")

typedef enum tb_jwt_err {
#define TB__JWT_ERR_ENUM(name, value, wire, text) TB_JWT_##name = value,
    TB_JWT_ERR_MAP(TB__JWT_ERR_ENUM)
#undef TB__JWT_ERR_ENUM
} tb_jwt_err;

/** Wire name of a TB_JWT_E... code ("token_expired"); "unknown" for other codes. Never NULL. */
const char *tb_jwt_err_name(int code);
/** Readable text of a TB_JWT_E... code; "unknown error" for other codes. Never NULL. */
const char *tb_jwt_strerror(int code);
/** HTTP status for a verification code: 0 -> 200, insufficient_scope -> 403, a key fetch or
 *  internal failure -> 503/500, an invalid argument -> 500, every token fault -> 401. */
int tb_jwt_http_status(int code);

/**
 * Formats the value of a WWW-Authenticate header (RFC 6750 §3) for a failed verification into
 * buf (cap bytes, NUL-terminated, cut when too small). token_missing gives only
 * `Bearer realm="..."` (no error, as §3.1 says for a request without credentials);
 * insufficient_scope gives error="insufficient_scope" and `scope` when given; every other code
 * error="invalid_token" with error_description = description (or the code's text), characters
 * outside RFC 6750's set (quote, backslash, controls, non-ASCII) replaced by '?'. realm, scope
 * and description may be NULL. Returns the length written (excluding NUL).
 */
size_t tb_jwt_www_authenticate(char *buf, size_t cap, const char *realm, int code,
                               const char *description, const char *scope);

/**
 * The token of an Authorization header value "Bearer <token>" (scheme case-insensitive, one or
 * more spaces, trailing spaces trimmed), or NULL when the value is NULL or not a Bearer
 * credential. Borrowed: points into `value`; its length goes to *len.
 */
const char *tb_jwt_bearer(const char *value, size_t *len);

/* ---- algorithms ---- */

typedef enum tb_jwt_alg {
    TB_JWT_ALG_UNKNOWN = 0, /* also "none", which nothing here accepts */
    TB_JWT_HS256,
    TB_JWT_HS384,
    TB_JWT_HS512,
    TB_JWT_RS256,
    TB_JWT_RS384,
    TB_JWT_RS512,
    TB_JWT_PS256,
    TB_JWT_PS384,
    TB_JWT_PS512,
    TB_JWT_ES256,
    TB_JWT_ES384,
    TB_JWT_EDDSA, /* Ed25519; the header may say "EdDSA" or "Ed25519" */
} tb_jwt_alg;

/** JOSE name of an algorithm ("RS256", "EdDSA"); "none" for TB_JWT_ALG_UNKNOWN. */
const char *tb_jwt_alg_name(tb_jwt_alg alg);
/** Algorithm of a JOSE name (exact, case-sensitive); TB_JWT_ALG_UNKNOWN for anything else,
 *  "none" included. "Ed25519" maps to TB_JWT_EDDSA. */
tb_jwt_alg tb_jwt_alg_parse(const char *name);

/* ---- keys ---- */

/** A key pinned to one algorithm, with an optional kid: an HMAC secret, or an RSA, EC or
 *  Ed25519 public key, or a private key (which can sign and verify). Immutable, reference
 *  counted, shareable across threads. */
typedef struct tb_jwt_key tb_jwt_key;

/**
 * Key from one JWK (RFC 7517): kty RSA (n, e; at least 2048 bits), EC (crv P-256 or P-384, x,
 * y; the point must be on the curve), OKP (crv Ed25519, x) or oct (k; at least as long as the
 * hash: 32/48/64 bytes). Its algorithm is the JWK's `alg`, else `alg` (the configuration), else
 * what the curve fixes (P-256 -> ES256, P-384 -> ES384, Ed25519 -> EdDSA); an RSA or oct key
 * with neither is refused (TB_JWT_EKEY), as is an `alg` that does not fit the kty, a `use`
 * other than "sig" or `key_ops` without "verify". Private members (d, p, ...) are ignored: a
 * JWK gives a public key. On success *out: caller owns; free with tb_jwt_key_free.
 */
int tb_jwt_key_from_jwk(const json_t *jwk, tb_jwt_alg alg, tb_jwt_key **out, tb_error *err);
/** Key from a PEM public key (SPKI) or private key (PKCS#8 or traditional), pinned to `alg`,
 *  which must fit the key type (and curve; RSA at least 2048 bits). kid may be NULL. On
 *  success *out: caller owns; free with tb_jwt_key_free. TB_JWT_EKEY or TB_JWT_EARG. */
int tb_jwt_key_from_pem(const char *pem, size_t len, tb_jwt_alg alg, const char *kid,
                        tb_jwt_key **out, tb_error *err);
/** HMAC key (alg HS256/384/512) from a shared secret of at least 32/48/64 bytes (RFC 7518
 *  §3.2; RFC 8725 §3.5: not a password). The bytes are copied. kid may be NULL. */
int tb_jwt_key_from_secret(const void *secret, size_t len, tb_jwt_alg alg, const char *kid,
                           tb_jwt_key **out, tb_error *err);
/** New random key for `alg`: RSA 2048 for the RS and PS algorithms, P-256 or P-384 for
 *  ES256/ES384, Ed25519 for EdDSA, a secret of the hash's length for HS256/384/512. kid may be
 *  NULL. Caller owns *out; free with tb_jwt_key_free. */
int tb_jwt_key_generate(tb_jwt_alg alg, const char *kid, tb_jwt_key **out, tb_error *err);
/** Adds a reference; returns k. NULL-safe. */
tb_jwt_key *tb_jwt_key_ref(tb_jwt_key *k);
/** Drops a reference; the last one frees the key. NULL-safe. */
void tb_jwt_key_free(tb_jwt_key *k);
/** The key's algorithm. */
tb_jwt_alg tb_jwt_key_alg(const tb_jwt_key *k);
/** The key's kid or NULL. Borrowed: valid while the key lives. */
const char *tb_jwt_key_kid(const tb_jwt_key *k);
/** True when the key can sign (a private key or an HMAC secret). */
bool tb_jwt_key_can_sign(const tb_jwt_key *k);
/** Public JWK of an asymmetric key ({kty, kid, use:"sig", alg, n/e | crv/x/y | crv/x}), for
 *  /.well-known/jwks.json. NULL for an HMAC key. Caller owns; json_decref. */
json_t *tb_jwt_key_to_jwk(const tb_jwt_key *k);
/** PEM (PKCS#8) of a private key, to store a generated signing key. NULL for a public or an
 *  HMAC key. Caller owns; free(). */
char *tb_jwt_key_private_pem(const tb_jwt_key *k);

/* ---- key sets (JWKS) ---- */

/** An immutable list of keys. Reference counted; shareable across threads. */
typedef struct tb_jwks tb_jwks;

/**
 * Parses a JWK Set ({"keys": [...]}). Keys it cannot use (an unknown kty, `use` "enc", a bad
 * member) are skipped, as RFC 7517 §5 says, and counted in *n_skipped (may be NULL); a document
 * that is not a JWK Set is TB_JWT_EJSON (duplicate members: TB_JWT_EDUPKEY). `alg` (may be
 * TB_JWT_ALG_UNKNOWN) pins keys without their own `alg` member, as in tb_jwt_key_from_jwk.
 * Caller owns *out; free with tb_jwks_free.
 */
int tb_jwks_parse(const char *json, size_t len, tb_jwt_alg alg, tb_jwks **out, size_t *n_skipped,
                  tb_error *err);
/** A key set of `n` keys (each gets a new reference; the caller keeps its own). */
int tb_jwks_new(tb_jwt_key *const *keys, size_t n, tb_jwks **out);
/** Drops a reference; the last one frees the set and its keys' references. NULL-safe. */
void tb_jwks_free(tb_jwks *ks);
size_t tb_jwks_count(const tb_jwks *ks);
/** The i-th key. Borrowed: valid while the set lives. */
tb_jwt_key *tb_jwks_get(const tb_jwks *ks, size_t i);
/** The first key with this kid, or NULL. Borrowed: valid while the set lives. */
tb_jwt_key *tb_jwks_find(const tb_jwks *ks, const char *kid);
/** {"keys":[...]} with the public JWK of every asymmetric key (HMAC keys left out). Caller
 *  owns; json_decref. */
json_t *tb_jwks_to_json(const tb_jwks *ks);

/* ---- claims ---- */

/** The claims of a verified token. Immutable, reference counted, shareable across threads
 *  (the verifier's cache keeps a reference too). */
typedef struct tb_jwt_claims tb_jwt_claims;

/** Drops the caller's reference. NULL-safe. */
void tb_jwt_claims_free(tb_jwt_claims *c);
/** The payload object. Borrowed and read-only (shared with other threads): never modify it. */
const json_t *tb_jwt_claims_json(const tb_jwt_claims *c);
/** A claim by name, or NULL. Borrowed and read-only, like tb_jwt_claims_json. */
const json_t *tb_jwt_claims_get(const tb_jwt_claims *c, const char *name);
/** A string claim, or NULL when absent or not a string. Borrowed. */
const char *tb_jwt_claims_string(const tb_jwt_claims *c, const char *name);
/** `sub`, or NULL. Borrowed. */
const char *tb_jwt_claims_sub(const tb_jwt_claims *c);
/** `exp` (seconds since the epoch, fraction dropped, clamped to int64_t), or 0 when absent. */
int64_t tb_jwt_claims_exp(const tb_jwt_claims *c);
/** The scopes: `scope` split on spaces (RFC 8693), else `scp` as a string or an array of
 *  strings. Borrowed array of borrowed strings; *n gets the count (0: none, returns NULL). */
const char *const *tb_jwt_claims_scopes(const tb_jwt_claims *c, size_t *n);
/** True when the scopes include `scope` exactly. */
bool tb_jwt_claims_has_scope(const tb_jwt_claims *c, const char *scope);

/* ---- verifier ---- */

typedef struct tb_jwt_verifier tb_jwt_verifier;

/** Seconds since the epoch, for tests that pin time. */
typedef int64_t (*tb_jwt_clock_fn)(void *clock_ctx);

typedef struct tb_jwt_verifier_opts {
    /* Key sources; any combination, at least one. */
    const char *jwks_json;   /* a JWK Set document, NUL-terminated (borrowed during _new) */
    const char *jwks_file;   /* path of a JWK Set file; reread on an unknown kid */
    const char *jwks_url;    /* http(s) URL of a JWK Set; refetched on an unknown kid */
    tb_jwt_key *const *keys; /* keys given directly (each gets a reference), may be NULL */
    size_t n_keys;
    tb_jwt_alg jwks_alg; /* alg for JWKs without `alg` (see tb_jwt_key_from_jwk) */
    unsigned alg_mask;   /* if nonzero, only these: bit (1u << TB_JWT_RS256) etc. */

    /* Claim rules. */
    const char *issuer;                 /* required `iss` when set */
    const char *audience;               /* when set, `aud` (string or array) must hold one of
                                           these: one or more, comma-separated (Envoy's
                                           audiences list) */
    const char *typ;                    /* required header `typ` when set (case-insensitive, an
                                           "application/" prefix ignored, RFC 7515 §4.1.9) */
    const char *const *required_claims; /* NULL-terminated names that must be present */
    bool require_exp;                   /* default true */
    int leeway_s;                       /* clock skew allowed on exp/nbf/iat; default 60 */
    size_t max_token;                   /* bytes; longer: TB_JWT_ETOOLARGE before any work. 8192 */

    /* Refetch and cache. */
    int refetch_interval_s; /* at most one JWKS refetch per this many seconds; 10 */
    long fetch_timeout_ms;  /* URL fetch timeout; 5000 */
    size_t cache_size;      /* verified tokens kept (rounded up to the shard count);
                               0 disables the cache. 4096 */
    tb_jwt_clock_fn clock;  /* NULL: the system clock (time()) */
    void *clock_ctx;
    /* A file or URL source is reread this often by a thread of its own (Envoy's
     * cache_duration), so a key removed from the set stops being trusted; an unknown kid asks
     * that thread for a reread at once (refetch_interval_s apart) and waits for it at most
     * min(fetch_timeout_ms, 1000 ms), so a slow source never holds a request longer.
     * Seconds; default 300; 0: only on an unknown kid. */
    int jwks_max_age_s;
    /* CA certificates (a PEM file) that an https jwks_url's certificate must chain to, for an
     * issuer behind a private CA; NULL: the system's store. */
    const char *jwks_ca_file;
} tb_jwt_verifier_opts;

#define TB_JWT_VERIFIER_OPTS_INIT                                                                  \
    {                                                                                              \
        NULL, NULL, NULL, NULL, 0, TB_JWT_ALG_UNKNOWN, 0u, NULL, NULL, NULL, NULL, true, 60, 8192, \
            10, 5000, 4096, NULL, NULL, 300, NULL                                                  \
    }

/**
 * New verifier. Loads the JWKS from jwks_json and jwks_file (a parse or read failure fails the
 * call) and jwks_url (a fetch failure does not: the keys are then fetched on the first
 * verification, rate limited, so a service may start before its issuer). Options are copied.
 * A URL source needs tb_global_init() (client.h) or curl_global_init() done once beforehand.
 * Caller owns *out; free with tb_jwt_verifier_free. Not thread-safe with itself; then any.
 */
int tb_jwt_verifier_new(const tb_jwt_verifier_opts *opts, tb_jwt_verifier **out, tb_error *err);
/**
 * The verifier the environment describes, as every tablium service configures it: keys from
 * TB_JWT_JWKS_URL, TB_JWT_JWKS_FILE, TB_JWT_JWKS (a JWK Set text) and/or TB_JWT_SECRET (with
 * TB_JWT_ALG, default HS256); TB_JWT_ISSUER, TB_JWT_AUDIENCE, TB_JWT_LEEWAY_S, TB_JWT_REFETCH_S.
 * *out is NULL (and 0 returned) when no key source is set. Caller owns; tb_jwt_verifier_free.
 */
int tb_jwt_verifier_from_env(tb_jwt_verifier **out, tb_error *err);
/** Frees the verifier (claims handed out stay valid). NULL-safe. No verification may run. */
void tb_jwt_verifier_free(tb_jwt_verifier *v);

/**
 * Verifies a compact JWS token of `len` bytes (no NUL needed) and its claims. 0 on success,
 * with *claims (may be NULL when not wanted) a reference the caller owns: free with
 * tb_jwt_claims_free. On failure a TB_JWT_E... code, *claims NULL, and err (may be NULL) gets
 * the code and a message. A cached token skips the signature but is checked against the clock
 * again (exp, nbf). Thread-safe; blocks only when an unknown kid triggers a refetch.
 */
int tb_jwt_verify(tb_jwt_verifier *v, const char *token, size_t len, tb_jwt_claims **claims,
                  tb_error *err);

/** Rereads the file / refetches the URL now, ignoring the rate limit. 0 or TB_JWT_EFETCH /
 *  TB_JWT_EJSON; on failure the current keys stay. Thread-safe. */
int tb_jwt_verifier_reload(tb_jwt_verifier *v, tb_error *err);

/** The current key set (a new reference: free with tb_jwks_free). Thread-safe. */
tb_jwks *tb_jwt_verifier_keys(tb_jwt_verifier *v);

typedef struct tb_jwt_stats {
    uint64_t signature_checks; /* signatures verified (passed or failed) */
    uint64_t cache_hits;
    uint64_t cache_misses;
    uint64_t fetches; /* JWKS loads after the first, attempted */
    uint64_t refused; /* verifications that failed */
} tb_jwt_stats;

/** Counters since _new. Thread-safe (a snapshot, each counter atomic). */
void tb_jwt_verifier_stats(tb_jwt_verifier *v, tb_jwt_stats *out);

/** The clock skew the verifier allows on exp/nbf/iat, in seconds (tb_jwt_verifier_opts). */
int tb_jwt_verifier_leeway_s(const tb_jwt_verifier *v);

/* ---- signing ---- */

/**
 * Signs `claims` (a JSON object, serialized compactly) with key k (private or HMAC) as a
 * compact JWS with header {"alg", "typ":"JWT", "kid" when k has one} plus the members of
 * `header` (may be NULL; it cannot override alg). On success *out is the NUL-terminated token:
 * caller owns; free(). TB_JWT_EKEY when k cannot sign, TB_JWT_EARG for a non-object.
 */
int tb_jwt_sign(const tb_jwt_key *k, const json_t *claims, const json_t *header, char **out,
                tb_error *err);

#endif
