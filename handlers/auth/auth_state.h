/*
 * The Auth service's state (ctx->state), shared by its handler files: accounts (auth.c) and
 * tokens and keys (tokens.c).
 */
#ifndef AUTH_STATE_H
#define AUTH_STATE_H

#include "keyring.h"

#include "tablium/events.h"
#include "tablium/store.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

/** One OAuth2 client of AUTH_CLIENTS. */
typedef struct auth_client_conf {
    char *id;
    unsigned char secret_sha256[32]; /* compared in constant time */
    char **scopes;                   /* what it may be granted; "*" allows any */
    size_t n_scopes;
    bool any_scope;
} auth_client_conf;

typedef struct auth_state {
    sqlite3 *db;
    pthread_mutex_t mu; /* one transaction at a time on the connection */
    tb_bus *bus;
    tb_store_probe *probe; /* the readiness check "database" */
    int pbkdf2_iterations;
    char dummy_hash[160]; /* checked for unknown accounts, so they cost what others do */
    auth_keyring *keys;
    char *issuer, *audience; /* AUTH_ISSUER, AUTH_AUDIENCE */
    int64_t token_ttl_s;     /* AUTH_TOKEN_TTL_S */
    auth_client_conf *clients;
    size_t n_clients;
} auth_state;

/** Reads the token settings and AUTH_CLIENTS into s and opens its keyring (s->db is open). */
int auth_tokens_init(auth_state *s, tb_error *err);
/** Releases what auth_tokens_init made. NULL-safe members. */
void auth_tokens_fini(auth_state *s);

/** "pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>" of pw into out. */
int auth_password_hash(const char *pw, int iterations, char out[160]);
/** True when pw matches the stored hash; costs the same whether it does or not. */
bool auth_password_check(const char *pw, const char *stored);

#endif
