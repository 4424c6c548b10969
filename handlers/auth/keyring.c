/* The Auth service's signing keys (keyring.h). */
#include "keyring.h"

#include <openssl/rand.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char SCHEMA[] = "CREATE TABLE IF NOT EXISTS signing_keys ("
                             "  kid TEXT PRIMARY KEY,"
                             "  alg TEXT NOT NULL,"
                             "  private_pem TEXT NOT NULL,"
                             "  created_at INTEGER NOT NULL,"  /* seconds since the epoch */
                             "  active_from INTEGER NOT NULL," /* signs from then on */
                             "  retired_at INTEGER);";         /* unpublished from then on */

typedef struct kr_key {
    tb_jwt_key *key;
    int64_t created, active_from, retired_at; /* retired_at 0: not scheduled */
} kr_key;

struct auth_keyring {
    sqlite3 *db;
    pthread_mutex_t *db_mu;
    pthread_mutex_t mu;
    auth_keyring_opts o;
    kr_key *keys; /* in creation order */
    size_t n, cap;
    char *jwks_file;
    bool dirty; /* the set changed since jwks_file was written */
};

static int64_t now_s(void) { return (int64_t)time(NULL); }

static int db_err(auth_keyring *kr, tb_error *err, const char *what)
{
    return tb_error_set(err, TB_EIO, "auth keys: %s: %s", what, sqlite3_errmsg(kr->db));
}

static int push(auth_keyring *kr, tb_jwt_key *k, int64_t created, int64_t active_from,
                int64_t retired_at)
{
    if (kr->n == kr->cap) {
        size_t cap = kr->cap ? kr->cap * 2 : 4;
        kr_key *nk = realloc(kr->keys, cap * sizeof *nk);
        if (!nk)
            return TB_ENOMEM;
        kr->keys = nk;
        kr->cap = cap;
    }
    kr->keys[kr->n++] = (kr_key){k, created, active_from, retired_at};
    return 0;
}

/* Forgets (and deletes) the keys whose retirement has come. Under kr->mu. */
static void prune(auth_keyring *kr, int64_t now)
{
    size_t j = 0;
    bool gone = false;
    for (size_t i = 0; i < kr->n; i++) {
        if (kr->keys[i].retired_at && kr->keys[i].retired_at <= now) {
            tb_jwt_key_free(kr->keys[i].key);
            gone = true;
        } else {
            kr->keys[j++] = kr->keys[i];
        }
    }
    kr->n = j;
    if (!gone)
        return;
    kr->dirty = true;
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(kr->db_mu);
    if (sqlite3_prepare_v2(kr->db, "DELETE FROM signing_keys WHERE retired_at <= ?", -1, &st,
                           NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, now);
        sqlite3_step(st); /* a failure leaves rows that the next prune deletes */
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(kr->db_mu);
}

/* A new key, published now, signing from now + ahead; the keys not yet scheduled for
 * retirement retire keep_s after it signs. Under kr->mu. */
static int add_key(auth_keyring *kr, int64_t now, int64_t ahead, auth_rotation_info *info,
                   tb_error *err)
{
    unsigned char rnd[16];
    char kid[33];
    tb_jwt_key *k = NULL;
    char *pem = NULL;
    sqlite3_stmt *st = NULL;
    int rc;
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        return tb_error_set(err, TB_EIO, "auth keys: no randomness for a kid");
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(kid + 2 * i, 3, "%02x", rnd[i]);
    if ((rc = tb_jwt_key_generate(kr->o.alg, kid, &k, err)) != 0)
        return rc;
    if (!(pem = tb_jwt_key_private_pem(k))) {
        tb_jwt_key_free(k);
        return tb_error_set(err, TB_ENOMEM, "auth keys: cannot write the key as PEM");
    }
    int64_t active_from = now + ahead, retire = active_from + kr->o.keep_s;
    bool had_previous = false;
    for (size_t i = 0; i < kr->n; i++)
        had_previous |= kr->keys[i].retired_at == 0;

    pthread_mutex_lock(kr->db_mu);
    if (sqlite3_exec(kr->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        rc = db_err(kr, err, "begin");
        goto unlock;
    }
    if (sqlite3_prepare_v2(kr->db,
                           "UPDATE signing_keys SET retired_at = ? WHERE retired_at IS NULL", -1,
                           &st, NULL) != SQLITE_OK) {
        rc = db_err(kr, err, "prepare retire");
        goto rollback;
    }
    sqlite3_bind_int64(st, 1, retire);
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = db_err(kr, err, "retire");
        goto rollback;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(kr->db,
                           "INSERT INTO signing_keys (kid, alg, private_pem, created_at, "
                           "active_from) VALUES (?, ?, ?, ?, ?)",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = db_err(kr, err, "prepare insert");
        goto rollback;
    }
    sqlite3_bind_text(st, 1, kid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, tb_jwt_alg_name(kr->o.alg), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, pem, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now);
    sqlite3_bind_int64(st, 5, active_from);
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = db_err(kr, err, "insert");
        goto rollback;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_exec(kr->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        rc = db_err(kr, err, "commit");
        goto rollback;
    }
    pthread_mutex_unlock(kr->db_mu);
    free(pem);

    kr->dirty = true;
    if ((rc = push(kr, k, now, active_from, 0)) != 0) {
        tb_jwt_key_free(k); /* stored: loaded at the next start */
        return tb_error_set(err, rc, "auth keys: out of memory");
    }
    for (size_t i = 0; i + 1 < kr->n; i++)
        if (kr->keys[i].retired_at == 0)
            kr->keys[i].retired_at = retire;
    if (info) {
        memcpy(info->kid, kid, sizeof kid);
        info->alg = kr->o.alg;
        info->created = now;
        info->active_from = active_from;
        info->previous_retire_at = had_previous ? retire : 0;
    }
    return 0;
rollback:
    sqlite3_finalize(st);
    sqlite3_exec(kr->db, "ROLLBACK", NULL, NULL, NULL);
unlock:
    pthread_mutex_unlock(kr->db_mu);
    free(pem);
    tb_jwt_key_free(k);
    return rc;
}

/* Index of the key that signs now, or -1. Under kr->mu. */
static long signer(const auth_keyring *kr, int64_t now)
{
    long best = -1;
    for (size_t i = 0; i < kr->n; i++)
        if (kr->keys[i].active_from <= now &&
            (kr->keys[i].retired_at == 0 || kr->keys[i].retired_at > now) &&
            (best < 0 || kr->keys[i].active_from >= kr->keys[best].active_from))
            best = (long)i;
    return best;
}

/* {"keys": [...]} of every key held (pruned first). Under kr->mu. */
static json_t *jwks_json(const auth_keyring *kr)
{
    json_t *keys = json_array();
    for (size_t i = 0; keys && i < kr->n; i++)
        if (json_array_append_new(keys, tb_jwt_key_to_jwk(kr->keys[i].key)) != 0)
            json_decref(keys), keys = NULL;
    return keys ? json_pack("{s:o}", "keys", keys) : NULL;
}

/* Writes jwks_file when the set changed: a temporary file renamed over it, so a reader never
 * sees half a document. Under kr->mu. */
static int publish(auth_keyring *kr, tb_error *err)
{
    if (!kr->dirty || !kr->jwks_file)
        return 0;
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", kr->jwks_file) >= (int)sizeof tmp)
        return tb_error_set(err, TB_EINVAL, "auth keys: AUTH_JWKS_FILE is too long");
    json_t *set = jwks_json(kr);
    int rc = set ? json_dump_file(set, tmp, JSON_COMPACT) : -1;
    json_decref(set);
    if (rc != 0 || rename(tmp, kr->jwks_file) != 0) {
        unlink(tmp);
        return tb_error_set(err, TB_EIO, "auth keys: cannot write %s", kr->jwks_file);
    }
    kr->dirty = false;
    return 0;
}

/* Prunes, then rotates when the newest key is due (or nothing can sign). Under kr->mu. */
static int maintain(auth_keyring *kr, int64_t now, tb_error *err)
{
    int rc = 0;
    prune(kr, now);
    if (kr->n == 0 || signer(kr, now) < 0)
        rc = add_key(kr, now, 0, NULL, err); /* nobody knows a key yet: sign at once */
    else if (kr->o.rotate_s > 0 && kr->keys[kr->n - 1].created + kr->o.rotate_s <= now)
        rc = add_key(kr, now, kr->o.ahead_s, NULL, err);
    if (rc == 0)
        publish(kr, NULL); /* a failure is retried at the next call; the start checks it */
    return rc;
}

static int load(auth_keyring *kr, tb_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = 0;
    pthread_mutex_lock(kr->db_mu);
    if (sqlite3_exec(kr->db, SCHEMA, NULL, NULL, NULL) != SQLITE_OK) {
        rc = db_err(kr, err, "create table");
        goto out;
    }
    if (sqlite3_prepare_v2(kr->db,
                           "SELECT kid, alg, private_pem, created_at, active_from, retired_at "
                           "FROM signing_keys ORDER BY created_at, rowid",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = db_err(kr, err, "prepare load");
        goto out;
    }
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *kid = (const char *)sqlite3_column_text(st, 0);
        const char *alg = (const char *)sqlite3_column_text(st, 1);
        const char *pem = (const char *)sqlite3_column_text(st, 2);
        tb_jwt_key *k = NULL;
        rc = tb_jwt_key_from_pem(pem, (size_t)sqlite3_column_bytes(st, 2),
                                 tb_jwt_alg_parse(alg), kid, &k, err);
        if (rc != 0)
            goto out; /* a damaged key: refuse to start rather than sign with another */
        if ((rc = push(kr, k, sqlite3_column_int64(st, 3), sqlite3_column_int64(st, 4),
                       sqlite3_column_int64(st, 5))) != 0) {
            tb_jwt_key_free(k);
            tb_error_set(err, rc, "auth keys: out of memory");
            goto out;
        }
    }
    if (step != SQLITE_DONE)
        rc = db_err(kr, err, "load");
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(kr->db_mu);
    return rc;
}

int auth_keyring_new(sqlite3 *db, pthread_mutex_t *db_mu, const auth_keyring_opts *opts,
                     auth_keyring **out, tb_error *err)
{
    *out = NULL;
    auth_keyring *kr = calloc(1, sizeof *kr);
    if (!kr)
        return tb_error_set(err, TB_ENOMEM, "auth keys: out of memory");
    kr->db = db;
    kr->db_mu = db_mu;
    kr->o = *opts;
    kr->o.jwks_file = NULL;
    kr->dirty = true; /* write the file once at start */
    pthread_mutex_init(&kr->mu, NULL);
    if (opts->jwks_file && *opts->jwks_file && !(kr->jwks_file = strdup(opts->jwks_file))) {
        auth_keyring_free(kr);
        return tb_error_set(err, TB_ENOMEM, "auth keys: out of memory");
    }
    int rc = load(kr, err);
    if (rc == 0) {
        pthread_mutex_lock(&kr->mu);
        rc = maintain(kr, now_s(), err);
        if (rc == 0)
            rc = publish(kr, err);
        pthread_mutex_unlock(&kr->mu);
    }
    if (rc != 0) {
        auth_keyring_free(kr);
        return rc;
    }
    *out = kr;
    return 0;
}

void auth_keyring_free(auth_keyring *kr)
{
    if (!kr)
        return;
    for (size_t i = 0; i < kr->n; i++)
        tb_jwt_key_free(kr->keys[i].key);
    free(kr->keys);
    free(kr->jwks_file);
    pthread_mutex_destroy(&kr->mu);
    free(kr);
}

int auth_keyring_rotate(auth_keyring *kr, auth_rotation_info *info, tb_error *err)
{
    int64_t now = now_s();
    pthread_mutex_lock(&kr->mu);
    prune(kr, now);
    int rc = add_key(kr, now, kr->o.ahead_s, info, err);
    if (rc == 0)
        publish(kr, NULL); /* verifiers reading the file meet the new kid only later */
    pthread_mutex_unlock(&kr->mu);
    return rc;
}

int auth_keyring_signing_key(auth_keyring *kr, tb_jwt_key **out, tb_error *err)
{
    int64_t now = now_s();
    *out = NULL;
    pthread_mutex_lock(&kr->mu);
    int rc = maintain(kr, now, err);
    long i = rc == 0 ? signer(kr, now) : -1;
    if (rc == 0 && i < 0)
        rc = tb_error_set(err, TB_ESTATE, "auth keys: no key can sign");
    if (rc == 0)
        *out = tb_jwt_key_ref(kr->keys[i].key);
    pthread_mutex_unlock(&kr->mu);
    return rc;
}

json_t *auth_keyring_jwks(auth_keyring *kr, tb_error *err)
{
    pthread_mutex_lock(&kr->mu);
    int rc = maintain(kr, now_s(), err);
    json_t *set = rc == 0 ? jwks_json(kr) : NULL;
    pthread_mutex_unlock(&kr->mu);
    return set;
}
