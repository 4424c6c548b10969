/*
 * Auth service handlers (openapi/auth.yaml). State: SQLite ($AUTH_DB, default ./auth.db).
 *
 * Registering writes the account and user.registered (1.0) in one transaction (the outbox);
 * the bus relays the event to RabbitMQ after the commit (TB_AMQP_URL). A crash between the
 * commit and the publish loses nothing: the relay publishes what the outbox still holds when
 * the service starts again (TB_FAULT=outbox-crash-before-publish makes that moment reachable).
 * Tokens and signing keys: tokens.c.
 */
#include "auth/auth.h"
#include "auth_state.h"
#include "events/events.h"

#include "tablium/events.h"
#include "tablium/evstore.h"
#include "tablium/ids.h"
#include "tablium/log.h"
#include "tablium/store.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS accounts ("
    "  id TEXT PRIMARY KEY,"
    "  email TEXT NOT NULL UNIQUE COLLATE NOCASE,"
    "  username TEXT NOT NULL UNIQUE COLLATE NOCASE,"
    "  password_hash TEXT NOT NULL,"
    "  registered_at TEXT NOT NULL);"
    /* alice, Alice and ALICE are one name (a database made before the column's collation was
     * NOCASE gets it from this index) */
    "CREATE UNIQUE INDEX IF NOT EXISTS accounts_username_nocase ON accounts "
    "  (username COLLATE NOCASE);";

int auth_service_init(void **state, tb_error *err)
{
    auth_state *s = calloc(1, sizeof *s);
    if (!s)
        return tb_error_set(err, TB_ENOMEM, "auth: out of memory");
    const char *it = getenv("AUTH_PBKDF2_ITERATIONS");
    s->pbkdf2_iterations = it && atoi(it) > 0 ? atoi(it) : 210000;
    s->db = tb_store_open_service("auth", SCHEMA, err);
    if (!s->db) {
        free(s);
        return TB_EIO;
    }
    pthread_mutex_init(&s->mu, NULL);
    tb_bus_opts bo = {.service = "auth", .producer = "auth-service"};
    int rc = (s->probe = tb_store_probe_new(s->db, err)) ? 0 : TB_EIO;
    if (rc == 0 && tb_ready_check_add("database", tb_store_probe_ready, s->probe))
        rc = tb_error_set(err, TB_EINVAL, "auth: cannot register the readiness check");
    if (rc == 0)
        rc = tb_outbox_init(s->db, err);
    if (rc == 0 && !(s->bus = tb_bus_new(&bo, err)))
        rc = TB_ENOMEM;
    if (rc == 0)
        rc = auth_tokens_init(s, err);
    if (rc == 0)
        rc = tb_bus_relay_outbox(s->bus, NULL, err); /* the service's own database */
    if (rc != 0) {
        if (s->probe)
            tb_ready_check_remove(s->probe);
        tb_store_probe_free(s->probe);
        auth_tokens_fini(s);
        tb_bus_free(s->bus);
        tb_store_close(s->db);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return rc;
    }
    *state = s;
    return 0;
}

void auth_service_fini(void *state)
{
    auth_state *s = state;
    if (!s)
        return;
    if (s->probe) /* the check first: it reads the database file */
        tb_ready_check_remove(s->probe);
    tb_store_probe_free(s->probe);
    tb_bus_free(s->bus);
    auth_tokens_fini(s);
    tb_store_close(s->db);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static auth_state *st_of(tb_ctx *ctx) { return ctx->state; }

static int db_fail(tb_ctx *ctx, sqlite3 *db, const char *what)
{
    tb_log_error(ctx, "auth: %s: %s", what, sqlite3_errmsg(db));
    return TB_EIO;
}

int auth_get_health(tb_ctx *ctx, const auth_get_health_req *req, auth_get_health_resp *resp)
{
    (void)req;
    auth_state *s = st_of(ctx);
    pthread_mutex_lock(&s->mu);
    int ok = sqlite3_exec(s->db, "SELECT 1", NULL, NULL, NULL) == SQLITE_OK;
    pthread_mutex_unlock(&s->mu);
    if (!ok) {
        resp->status = AUTH_GET_HEALTH_503;
        tb_api_error_set(&resp->s503, ctx, "unavailable", "the database does not answer");
        return 0;
    }
    resp->status = AUTH_GET_HEALTH_200;
    resp->s200.status = COMMON_HEALTH_STATUS_OK;
    return 0;
}

int auth_password_hash(const char *pw, int iterations, char out[160])
{
    unsigned char salt[16], dk[32];
    if (RAND_bytes(salt, sizeof salt) != 1)
        return TB_EIO;
    if (PKCS5_PBKDF2_HMAC(pw, (int)strlen(pw), salt, sizeof salt, iterations, EVP_sha256(),
                          sizeof dk, dk) != 1)
        return TB_EIO;
    int n = snprintf(out, 160, "pbkdf2-sha256$%d$", iterations);
    for (size_t i = 0; i < sizeof salt; i++)
        n += snprintf(out + n, 160 - (size_t)n, "%02x", salt[i]);
    out[n++] = '$';
    for (size_t i = 0; i < sizeof dk; i++)
        n += snprintf(out + n, 160 - (size_t)n, "%02x", dk[i]);
    return 0;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static size_t unhex(const char *h, size_t n, unsigned char *out, size_t cap)
{
    if (n % 2 || n / 2 > cap)
        return 0;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(h[2 * i]), lo = hexval(h[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return 0;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return n / 2;
}

bool auth_password_check(const char *pw, const char *stored)
{
    unsigned char salt[64], want[64], got[64];
    const char *p1 = NULL, *p2 = NULL, *p3 = NULL;
    if (strncmp(stored, "pbkdf2-sha256$", 14) == 0) {
        p1 = stored + 14;
        p2 = strchr(p1, '$');
        p3 = p2 ? strchr(p2 + 1, '$') : NULL;
    }
    long it = p3 ? strtol(p1, NULL, 10) : 0;
    size_t ns = p3 ? unhex(p2 + 1, (size_t)(p3 - p2 - 1), salt, sizeof salt) : 0;
    size_t nw = p3 ? unhex(p3 + 1, strlen(p3 + 1), want, sizeof want) : 0;
    if (it < 1 || it > 10000000 || ns == 0 || nw == 0)
        return false;
    if (PKCS5_PBKDF2_HMAC(pw, (int)strlen(pw), salt, (int)ns, (int)it, EVP_sha256(), (int)nw,
                          got) != 1)
        return false;
    return CRYPTO_memcmp(got, want, nw) == 0;
}

int auth_register_account(tb_ctx *ctx, const auth_register_account_req *req,
                          auth_register_account_resp *resp)
{
    auth_state *s = st_of(ctx);
    const auth_register_request *b = &req->body;
    char id[37], now[25], hash[160], event_id[37];
    tb_uuid_new(id);
    tb_time_rfc3339(now);
    if (auth_password_hash(b->password, s->pbkdf2_iterations, hash) != 0) /* outside the lock */
        return TB_EIO;

    sqlite3_stmt *st = NULL;
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        rc = db_fail(ctx, s->db, "begin");
        goto unlock;
    }
    if (sqlite3_prepare_v2(s->db,
                           "INSERT INTO accounts (id, email, username, password_hash, "
                           "registered_at) VALUES (?, ?, ?, ?, ?)",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(ctx, s->db, "prepare insert account");
        goto rollback;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, b->email, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, b->username, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, now, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    int ext = sqlite3_extended_errcode(s->db);
    bool email_dup = step != SQLITE_DONE && strstr(sqlite3_errmsg(s->db), "accounts.email");
    sqlite3_finalize(st);
    if (step != SQLITE_DONE) {
        if (ext == SQLITE_CONSTRAINT_UNIQUE) {
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
            pthread_mutex_unlock(&s->mu);
            resp->status = AUTH_REGISTER_ACCOUNT_409;
            if (email_dup)
                tb_api_error_set(&resp->s409, ctx, "email_taken", "email %s is already registered",
                                 b->email);
            else
                tb_api_error_set(&resp->s409, ctx, "username_taken", "username %s is taken",
                                 b->username);
            return 0;
        }
        rc = db_fail(ctx, s->db, "insert account");
        goto rollback;
    }
    /* the event, in the same transaction */
    user_registered_v1 ev = {
        .user_id = id,
        .email = b->email,
        .username = b->username,
        .has_display_name = b->has_display_name,
        .display_name = b->display_name,
        .registered_at = now,
    };
    json_t *data = user_registered_v1_to_json(&ev);
    tb_error err = TB_ERROR_INIT;
    rc = data ? tb_outbox_add_json(s->db, ctx, &user_registered_v1_event, data, "auth-service",
                                   event_id, &err)
              : TB_ENOMEM;
    json_decref(data);
    if (rc != 0) {
        tb_log_error(ctx, "auth: cannot write user.registered to the outbox: %s", err.message);
        tb_error_deinit(&err);
        goto rollback;
    }
    tb_error_deinit(&err);
    if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        rc = db_fail(ctx, s->db, "commit");
        goto rollback;
    }
    pthread_mutex_unlock(&s->mu);
    tb_bus_outbox_kick(s->bus);
    tb_log_info(ctx, "auth: registered %s (%s); user.registered %s queued", b->username, id,
                event_id);

    auth_account *a = &resp->s201;
    a->user_id = tb_arena_strdup(ctx->arena, id);
    a->email = b->email;
    a->username = b->username;
    a->registered_at = tb_arena_strdup(ctx->arena, now);
    a->has_event_id = true;
    a->event_id = tb_arena_strdup(ctx->arena, event_id);
    if (!a->user_id || !a->registered_at || !a->event_id)
        return TB_ENOMEM;
    resp->status = AUTH_REGISTER_ACCOUNT_201;
    return 0;
rollback:
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
unlock:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int auth_get_account(tb_ctx *ctx, const auth_get_account_req *req, auth_get_account_resp *resp)
{
    auth_state *s = st_of(ctx);
    sqlite3_stmt *st = NULL;
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    if (sqlite3_prepare_v2(s->db,
                           "SELECT id, email, username, registered_at FROM accounts WHERE id = ?",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(ctx, s->db, "prepare select account");
        goto out;
    }
    sqlite3_bind_text(st, 1, req->user_id, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        auth_account *a = &resp->s200;
        a->user_id = tb_store_text(ctx->arena, st, 0);
        a->email = tb_store_text(ctx->arena, st, 1);
        a->username = tb_store_text(ctx->arena, st, 2);
        a->registered_at = tb_store_text(ctx->arena, st, 3);
        if (!a->user_id || !a->email || !a->username || !a->registered_at)
            rc = TB_ENOMEM;
        resp->status = AUTH_GET_ACCOUNT_200;
    } else if (step == SQLITE_DONE) {
        resp->status = AUTH_GET_ACCOUNT_404;
        tb_api_error_set(&resp->s404, ctx, "not_found", "no account %s", req->user_id);
    } else {
        rc = db_fail(ctx, s->db, "select account");
    }
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->mu);
    return rc;
}
