/*
 * The Auth service's signing keys: kept in its SQLite store (table signing_keys), one of them
 * signing at a time, every key not yet retired published in the JWK Set.
 *
 * Rotation makes a new key that is published at once and signs from `active_from` on (the
 * publish-ahead delay, so verifiers that refetch a JWKS at most once per interval know the key
 * before they meet it). The keys it replaces get `retired_at` = the new key's active_from + the
 * token lifetime + a grace (the verifiers' clock leeway): by then every token they signed has
 * expired, and they drop out of the JWK Set and the store.
 *
 * Threads: every call may be made from any thread. Lock order: the keyring's lock, then the
 * database lock it was given.
 */
#ifndef AUTH_KEYRING_H
#define AUTH_KEYRING_H

#include "tablium/error.h"
#include "tablium/jwt.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>

typedef struct auth_keyring auth_keyring;

typedef struct auth_keyring_opts {
    tb_jwt_alg alg;      /* of new keys: TB_JWT_ES256, TB_JWT_EDDSA or TB_JWT_RS256 */
    int64_t rotate_s;    /* rotate when the newest key is this old; 0: only when asked */
    int64_t ahead_s;     /* a new key signs this long after it is published */
    int64_t keep_s;      /* a replaced key stays published this long after its successor
                            signs: the token lifetime plus the verifiers' leeway */
    const char *jwks_file; /* also written there (atomically) whenever it changes; may be
                              NULL. Copied. */
} auth_keyring_opts;

/** What a rotation did (times in seconds since the epoch). */
typedef struct auth_rotation_info {
    char kid[33];
    tb_jwt_alg alg;
    int64_t created, active_from;
    int64_t previous_retire_at; /* 0: there was no previous key */
} auth_rotation_info;

/**
 * Opens the keyring over db (borrowed; db_mu, borrowed, serializes its use): creates the table
 * when missing, loads the keys, deletes those past their retirement, and generates the first
 * key when none is left. Caller owns *out; free with auth_keyring_free.
 */
int auth_keyring_new(sqlite3 *db, pthread_mutex_t *db_mu, const auth_keyring_opts *opts,
                     auth_keyring **out, tb_error *err);
/** NULL-safe. */
void auth_keyring_free(auth_keyring *kr);

/** Rotates now (see above). info may be NULL. */
int auth_keyring_rotate(auth_keyring *kr, auth_rotation_info *info, tb_error *err);

/** The key to sign with now (rotating first when rotate_s says it is due). Caller owns a
 *  reference; free with tb_jwt_key_free. */
int auth_keyring_signing_key(auth_keyring *kr, tb_jwt_key **out, tb_error *err);

/** The JWK Set published now: {"keys": [public JWKs]} (rotating first when due). Caller owns;
 *  json_decref. NULL when out of memory. */
json_t *auth_keyring_jwks(auth_keyring *kr, tb_error *err);

#endif
