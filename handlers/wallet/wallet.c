/*
 * Wallet service handlers (openapi/wallet.yaml). State: SQLite ($WALLET_DB, default
 * ./wallet.db).
 *
 * Event-sourced: each wallet is a stream "wallet-<id>" in the event store (wallet.created, then
 * one wallet.transaction.created per credit or debit, appended with the expected version). The
 * balances in `wallets` and the rows of `transactions` (paging, Idempotency-Key lookups) are
 * projections, written in the same transaction as the event; balances are rebuilt from the
 * events on every start. The events go to RabbitMQ through the outbox (TB_AMQP_URL), and
 * wallet.balance.updated to Redis after the commit (TB_REDIS_URL; at-most-once).
 */
#include "wallet/wallet.h"
#include "events/events.h"

#include "tablium/events.h"
#include "tablium/evstore.h"
#include "tablium/ids.h"
#include "tablium/log.h"
#include "tablium/store.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One connection, used by one request at a time: SQLite transactions belong to a
 * connection, so two requests interleaving on it would see (and nest in) each other's. */
typedef struct wallet_state {
    sqlite3 *db;
    pthread_mutex_t mu;
    tb_bus *bus;           /* relays the outbox; publishes wallet.balance.updated */
    bool redis;            /* TB_REDIS_URL is set */
    tb_store_probe *probe; /* the readiness check "database" */
} wallet_state;

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS wallets ("
    "  id TEXT PRIMARY KEY,"
    "  user_id TEXT NOT NULL,"
    "  currency TEXT NOT NULL,"
    "  balance INTEGER NOT NULL CHECK (balance >= 0),"
    "  created_at TEXT NOT NULL,"
    "  UNIQUE (user_id, currency));"
    "CREATE INDEX IF NOT EXISTS wallets_user ON wallets (user_id);"
    "CREATE TABLE IF NOT EXISTS transactions ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  id TEXT NOT NULL UNIQUE,"
    "  wallet_id TEXT NOT NULL REFERENCES wallets (id),"
    "  type TEXT NOT NULL CHECK (type IN ('credit', 'debit')),"
    "  amount INTEGER NOT NULL CHECK (amount > 0),"
    "  balance_after INTEGER NOT NULL CHECK (balance_after >= 0),"
    "  reference TEXT,"
    "  created_at TEXT NOT NULL,"
    "  idem_key TEXT,"
    "  UNIQUE (wallet_id, idem_key));"
    "CREATE INDEX IF NOT EXISTS transactions_wallet ON transactions (wallet_id, seq);"
    /* a refused request under its Idempotency-Key: replayed as it was (a declined debit stays
     * declined under its key; before, a later retry with the key was applied) */
    "CREATE TABLE IF NOT EXISTS refusals ("
    "  wallet_id TEXT NOT NULL,"
    "  idem_key TEXT NOT NULL,"
    "  type TEXT NOT NULL,"
    "  amount INTEGER NOT NULL,"
    "  reference TEXT,"
    "  code TEXT NOT NULL,"
    "  message TEXT NOT NULL,"
    "  created_at TEXT NOT NULL,"
    "  PRIMARY KEY (wallet_id, idem_key));";

/* ---- the balance projection, rebuilt from the events ---- */

typedef struct replayed {
    char wallet_id[37];
    int64_t delta;
    int64_t balance_after;
    char id[37];
} replayed;

typedef struct replay_acc {
    replayed *v;
    size_t n, cap;
    int bad;
} replay_acc;

static int collect_tx(void *user, const tb_stored_event *ev)
{
    replay_acc *acc = user;
    json_t *d = json_loads(ev->data, 0, NULL);
    const char *w = json_string_value(json_object_get(d, "walletId"));
    const char *type = json_string_value(json_object_get(d, "type"));
    json_t *amount = json_object_get(d, "amount"), *after = json_object_get(d, "balanceAfter");
    if (!w || strlen(w) != 36 || !type || !json_is_integer(amount) || !json_is_integer(after)) {
        tb_log_error(NULL, "wallet: event %s is not a wallet.transaction.created I can apply",
                     ev->id);
        acc->bad++;
        json_decref(d);
        return 0;
    }
    if (acc->n == acc->cap) {
        size_t cap = acc->cap ? acc->cap * 2 : 256;
        replayed *nv = realloc(acc->v, cap * sizeof *nv);
        if (!nv) {
            json_decref(d);
            return TB_ENOMEM;
        }
        acc->v = nv;
        acc->cap = cap;
    }
    replayed *r = &acc->v[acc->n++];
    memcpy(r->wallet_id, w, 37);
    snprintf(r->id, sizeof r->id, "%s", ev->id);
    r->delta = strcmp(type, "debit") == 0 ? -json_integer_value(amount) : json_integer_value(amount);
    r->balance_after = json_integer_value(after);
    json_decref(d);
    return 0;
}

/* Every balance from the wallet.transaction.created events, in one transaction. */
static int rebuild_balances(sqlite3 *db, tb_error *err)
{
    replay_acc acc = {0};
    int rc = tb_evstore_replay(db, 0, "wallet.transaction.created", collect_tx, &acc, err);
    if (rc != 0) {
        free(acc.v);
        return rc;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_exec(db, "BEGIN IMMEDIATE; UPDATE wallets SET balance = 0;", NULL, NULL, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v2(db, "UPDATE wallets SET balance = balance + ? WHERE id = ? "
                               "RETURNING balance",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = tb_error_set(err, TB_EIO, "wallet: rebuild: %s", sqlite3_errmsg(db));
        goto out;
    }
    for (size_t i = 0; i < acc.n; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, acc.v[i].delta);
        sqlite3_bind_text(st, 2, acc.v[i].wallet_id, -1, SQLITE_STATIC);
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW && sqlite3_column_int64(st, 0) != acc.v[i].balance_after)
            tb_log_error(NULL, "wallet: event %s says balanceAfter %lld, the events before it "
                               "sum to %lld; keeping the sum",
                         acc.v[i].id, (long long)acc.v[i].balance_after,
                         (long long)sqlite3_column_int64(st, 0));
        while (step == SQLITE_ROW)
            step = sqlite3_step(st);
        if (step != SQLITE_DONE) {
            rc = tb_error_set(err, TB_EIO, "wallet: rebuild: %s", sqlite3_errmsg(db));
            goto out;
        }
    }
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = tb_error_set(err, TB_EIO, "wallet: rebuild commit: %s", sqlite3_errmsg(db));
    else
        tb_log_info(NULL, "wallet: balances rebuilt from %zu wallet.transaction.created events",
                    acc.n);
out:
    sqlite3_finalize(st);
    if (rc != 0)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    free(acc.v);
    return rc;
}

int wallet_service_init(void **state, tb_error *err)
{
    wallet_state *s = calloc(1, sizeof *s);
    if (!s)
        return tb_error_set(err, TB_ENOMEM, "wallet: out of memory");
    s->db = tb_store_open_service("wallet", SCHEMA, err);
    if (!s->db) {
        free(s);
        return TB_EIO;
    }
    pthread_mutex_init(&s->mu, NULL);
    *state = s;
    int rc = (s->probe = tb_store_probe_new(s->db, err)) ? 0 : TB_EIO;
    if (rc == 0 && tb_ready_check_add("database", tb_store_probe_ready, s->probe))
        rc = tb_error_set(err, TB_EINVAL, "wallet: cannot register the readiness check");
    if (rc == 0)
        rc = tb_evstore_init(s->db, err);
    if (rc == 0)
        rc = tb_outbox_init(s->db, err);
    if (rc == 0)
        rc = rebuild_balances(s->db, err);
    const char *redis = getenv("TB_REDIS_URL");
    s->redis = redis && *redis;
    tb_bus_opts bo = {.service = "wallet", .producer = "wallet-service"};
    if (rc == 0 && !(s->bus = tb_bus_new(&bo, err)))
        rc = TB_ENOMEM;
    if (rc == 0)
        rc = tb_bus_relay_outbox(s->bus, NULL, err); /* the service's own database */
    if (rc != 0) {
        wallet_service_fini(s);
        *state = NULL;
    }
    return rc;
}

void wallet_service_fini(void *state)
{
    wallet_state *s = state;
    if (!s)
        return;
    if (s->probe) /* the check first: it reads the database file */
        tb_ready_check_remove(s->probe);
    tb_store_probe_free(s->probe);
    tb_bus_free(s->bus);
    tb_store_close(s->db);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static sqlite3 *db_of(tb_ctx *ctx)
{
    return ((wallet_state *)ctx->state)->db;
}

static int db_fail(tb_ctx *ctx, sqlite3 *db, const char *what)
{
    tb_log_error(ctx, "wallet: %s: %s", what, sqlite3_errmsg(db));
    return TB_EIO;
}

/* Columns: id, user_id, currency, balance, created_at */
#define WALLET_COLS "id, user_id, currency, balance, created_at"

static int read_wallet(tb_ctx *ctx, sqlite3_stmt *st, wallet_wallet *w)
{
    w->id = tb_store_text(ctx->arena, st, 0);
    w->user_id = tb_store_text(ctx->arena, st, 1);
    w->currency = tb_store_text(ctx->arena, st, 2);
    w->balance = sqlite3_column_int64(st, 3);
    w->created_at = tb_store_text(ctx->arena, st, 4);
    return w->id && w->user_id && w->currency && w->created_at ? 0 : TB_ENOMEM;
}

/* Columns: id, wallet_id, type, amount, balance_after, reference, created_at */
#define TX_COLS "id, wallet_id, type, amount, balance_after, reference, created_at"

static int read_tx(tb_ctx *ctx, sqlite3_stmt *st, wallet_transaction *t)
{
    const char *type = (const char *)sqlite3_column_text(st, 2);
    size_t type_len = (size_t)sqlite3_column_bytes(st, 2);
    t->id = tb_store_text(ctx->arena, st, 0);
    t->wallet_id = tb_store_text(ctx->arena, st, 1);
    if (!type || wallet_transaction_type_from_string(type, type_len, &t->type))
        return TB_EIO;
    t->amount = sqlite3_column_int64(st, 3);
    t->balance_after = sqlite3_column_int64(st, 4);
    t->has_reference = sqlite3_column_type(st, 5) != SQLITE_NULL;
    t->reference = t->has_reference ? tb_store_text(ctx->arena, st, 5) : NULL;
    t->created_at = tb_store_text(ctx->arena, st, 6);
    return t->id && t->wallet_id && t->created_at ? 0 : TB_ENOMEM;
}

static int wallet_get_health_locked(tb_ctx *ctx, const wallet_get_health_req *req, wallet_get_health_resp *resp)
{
    (void)req;
    if (sqlite3_exec(db_of(ctx), "SELECT 1", NULL, NULL, NULL) != SQLITE_OK) {
        resp->status = WALLET_GET_HEALTH_503;
        tb_api_error_set(&resp->s503, ctx, "unavailable", "the database does not answer");
        return 0;
    }
    resp->status = WALLET_GET_HEALTH_200;
    resp->s200.status = COMMON_HEALTH_STATUS_OK;
    return 0;
}

/* Appends one event to the wallet's stream (checking its version) and to the outbox, inside
 * the open transaction: one id for both. 0, TB_ECONFLICT (a concurrent writer) or a TB_E code. */
static int record_event(tb_ctx *ctx, const char *wallet_id, int64_t expected_version,
                        const tb_event_type *t, json_t *data)
{
    sqlite3 *db = db_of(ctx);
    tb_error err = TB_ERROR_INIT;
    char stream[48], id[37];
    snprintf(stream, sizeof stream, "wallet-%s", wallet_id);
    int rc = data ? tb_outbox_add_json(db, ctx, t, data, "wallet-service", id, &err) : TB_ENOMEM;
    char *text = rc == 0 ? json_dumps(data, JSON_COMPACT) : NULL;
    if (rc == 0 && !text)
        rc = TB_ENOMEM;
    if (rc == 0) {
        tb_new_event ev = {.id = id, .type = t->type, .schema_version = t->version, .data = text};
        rc = tb_evstore_append(db, stream, expected_version, &ev, 1, NULL, &err);
    }
    if (rc != 0)
        tb_log_error(ctx, "wallet: cannot record %s: %s", t->type, err.message);
    free(text);
    json_decref(data);
    tb_error_deinit(&err);
    return rc;
}

static int wallet_create_wallet_locked(tb_ctx *ctx, const wallet_create_wallet_req *req,
                         wallet_create_wallet_resp *resp)
{
    sqlite3 *db = db_of(ctx);
    sqlite3_stmt *st = NULL;
    char id[37], now[25];
    tb_uuid_new(id);
    tb_time_rfc3339(now);
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(ctx, db, "begin");
    if (sqlite3_prepare_v2(db, "INSERT INTO wallets (" WALLET_COLS ") VALUES (?, ?, ?, 0, ?)", -1,
                           &st, NULL) != SQLITE_OK) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return db_fail(ctx, db, "prepare insert wallet");
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, req->body.user_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, req->body.currency, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, now, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int ext = sqlite3_extended_errcode(db);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        if (ext == SQLITE_CONSTRAINT_UNIQUE) {
            resp->status = WALLET_CREATE_WALLET_409;
            tb_api_error_set(&resp->s409, ctx, "wallet_exists",
                             "user %s already has a %s wallet", req->body.user_id,
                             req->body.currency);
            return 0;
        }
        return db_fail(ctx, db, "insert wallet");
    }
    wallet_created_v1 ev = {.wallet_id = id, .user_id = req->body.user_id,
                            .currency = req->body.currency, .created_at = now};
    if ((rc = record_event(ctx, id, TB_EVSTORE_NO_STREAM, &wallet_created_v1_event,
                           wallet_created_v1_to_json(&ev))) != 0 ||
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return rc ? rc : db_fail(ctx, db, "commit");
    }
    tb_bus_outbox_kick(((wallet_state *)ctx->state)->bus);
    wallet_wallet *w = &resp->s201;
    w->id = tb_arena_strdup(ctx->arena, id);
    w->user_id = req->body.user_id;
    w->currency = req->body.currency;
    w->balance = 0;
    w->created_at = tb_arena_strdup(ctx->arena, now);
    char *loc = tb_arena_alloc(ctx->arena, 64);
    if (!w->id || !w->created_at || !loc)
        return TB_ENOMEM;
    snprintf(loc, 64, "/wallets/%s", id);
    resp->headers.location = loc;
    resp->status = WALLET_CREATE_WALLET_201;
    return 0;
}

/* 0 and *found, or a TB_E code. */
static int load_wallet(tb_ctx *ctx, const char *id, wallet_wallet *w, bool *found)
{
    sqlite3 *db = db_of(ctx);
    sqlite3_stmt *st = NULL;
    *found = false;
    if (sqlite3_prepare_v2(db, "SELECT " WALLET_COLS " FROM wallets WHERE id = ?", -1, &st,
                           NULL) != SQLITE_OK)
        return db_fail(ctx, db, "prepare select wallet");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int out = 0;
    if (rc == SQLITE_ROW) {
        *found = true;
        out = read_wallet(ctx, st, w);
    } else if (rc != SQLITE_DONE) {
        out = db_fail(ctx, db, "select wallet");
    }
    sqlite3_finalize(st);
    return out;
}

static int wallet_get_wallet_locked(tb_ctx *ctx, const wallet_get_wallet_req *req, wallet_get_wallet_resp *resp)
{
    bool found;
    int rc = load_wallet(ctx, req->wallet_id, &resp->s200, &found);
    if (rc)
        return rc;
    if (!found) {
        resp->status = WALLET_GET_WALLET_404;
        tb_api_error_set(&resp->s404, ctx, "not_found", "no wallet %s", req->wallet_id);
        return 0;
    }
    resp->status = WALLET_GET_WALLET_200;
    return 0;
}

static bool currency_wanted(const wallet_get_user_wallets_req *req, const char *cur)
{
    if (!req->has_currency)
        return true;
    for (size_t i = 0; i < req->n_currency; i++)
        if (strcmp(req->currency[i], cur) == 0)
            return true;
    return false;
}

static int wallet_get_user_wallets_locked(tb_ctx *ctx, const wallet_get_user_wallets_req *req,
                            wallet_get_user_wallets_resp *resp)
{
    sqlite3 *db = db_of(ctx);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT " WALLET_COLS " FROM wallets WHERE user_id = ? ORDER BY rowid",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(ctx, db, "prepare select wallets");
    sqlite3_bind_text(st, 1, req->user_id, -1, SQLITE_STATIC);
    size_t cap = 8, n = 0;
    wallet_wallet *items = tb_arena_calloc(ctx->arena, cap, sizeof *items);
    int rc, out = 0;
    while (items && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *cur = (const char *)sqlite3_column_text(st, 2);
        if (!cur || !currency_wanted(req, cur))
            continue;
        if (n == cap) {
            wallet_wallet *bigger = tb_arena_calloc(ctx->arena, cap * 2, sizeof *bigger);
            if (!bigger) {
                items = NULL;
                break;
            }
            memcpy(bigger, items, n * sizeof *items);
            items = bigger;
            cap *= 2;
        }
        if ((out = read_wallet(ctx, st, &items[n++])) != 0)
            break;
    }
    sqlite3_finalize(st);
    if (!items)
        return TB_ENOMEM;
    if (out)
        return out;
    resp->status = WALLET_GET_USER_WALLETS_200;
    resp->s200.items = items;
    resp->s200.n = n;
    return 0;
}

/* The transaction stored under (wallet_id, key); *ref_len gets the stored reference's length
 * in bytes, so that the comparison with a retry sees all of it. */
static int tx_by_key(tb_ctx *ctx, const char *wallet_id, const char *key, wallet_transaction *t,
                     size_t *ref_len, bool *found)
{
    sqlite3 *db = db_of(ctx);
    sqlite3_stmt *st = NULL;
    *found = false;
    if (sqlite3_prepare_v2(db, "SELECT " TX_COLS " FROM transactions WHERE wallet_id = ? AND idem_key = ?",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(ctx, db, "prepare select by key");
    sqlite3_bind_text(st, 1, wallet_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), out = 0;
    if (rc == SQLITE_ROW) {
        *found = true;
        out = read_tx(ctx, st, t);
        *ref_len = (size_t)sqlite3_column_bytes(st, 5);
    } else if (rc != SQLITE_DONE) {
        out = db_fail(ctx, db, "select by key");
    }
    sqlite3_finalize(st);
    return out;
}

/* The idempotency fingerprint: type, amount and reference, compared over their whole length
 * (a stored reference is ref_len bytes; the request's cannot hold a NUL: the validator refuses
 * U+0000 in strings that become C strings). */
static bool same_request(const wallet_transaction *t, size_t ref_len,
                         const wallet_create_transaction_request *b)
{
    if (t->type != b->type || t->amount != b->amount || t->has_reference != b->has_reference)
        return false;
    return !b->has_reference ||
           (ref_len == strlen(b->reference) && memcmp(t->reference, b->reference, ref_len) == 0);
}

/* Answers a request whose Idempotency-Key is already stored: the first result, or 422. */
static void replay(tb_ctx *ctx, const wallet_create_transaction_req *req, wallet_transaction *t,
                   size_t ref_len, wallet_create_transaction_resp *resp)
{
    if (same_request(t, ref_len, &req->body)) {
        resp->status = WALLET_CREATE_TRANSACTION_201;
        resp->s201 = *t;
        resp->headers.idempotent_replayed = "true";
    } else {
        resp->status = WALLET_CREATE_TRANSACTION_422;
        tb_api_error_set(&resp->s422, ctx, "idempotency_key_reused",
                         "Idempotency-Key %s was used for a different request",
                         req->idempotency_key);
    }
}

/* A refusal stored under (wallet_id, key): answers the request as the first time (409 replayed)
 * or, for a different request, 422. *found says whether there was one. */
static int refusal_by_key(tb_ctx *ctx, const wallet_create_transaction_req *req, const char *key,
                          wallet_create_transaction_resp *resp, bool *found)
{
    sqlite3 *db = db_of(ctx);
    sqlite3_stmt *st = NULL;
    *found = false;
    if (sqlite3_prepare_v2(db, "SELECT type, amount, reference, code, message FROM refusals "
                               "WHERE wallet_id = ? AND idem_key = ?",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(ctx, db, "prepare select refusal");
    sqlite3_bind_text(st, 1, req->wallet_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), out = 0;
    if (rc == SQLITE_ROW) {
        *found = true;
        const wallet_create_transaction_request *b = &req->body;
        const char *type = (const char *)sqlite3_column_text(st, 0);
        const char *ref = (const char *)sqlite3_column_text(st, 2);
        size_t ref_len = (size_t)sqlite3_column_bytes(st, 2);
        bool same = type && strcmp(type, wallet_transaction_type_to_string(b->type)) == 0 &&
                    sqlite3_column_int64(st, 1) == b->amount && (ref != NULL) == b->has_reference &&
                    (!ref || (ref_len == strlen(b->reference) &&
                              memcmp(ref, b->reference, ref_len) == 0));
        if (same) {
            char *code = tb_store_text(ctx->arena, st, 3), *msg = tb_store_text(ctx->arena, st, 4);
            if (!code || !msg) {
                out = TB_ENOMEM;
            } else {
                resp->status = WALLET_CREATE_TRANSACTION_409;
                tb_api_error_set(&resp->s409, ctx, code, "%s", msg);
                resp->headers.idempotent_replayed = "true";
            }
        } else {
            resp->status = WALLET_CREATE_TRANSACTION_422;
            tb_api_error_set(&resp->s422, ctx, "idempotency_key_reused",
                             "Idempotency-Key %s was used for a different request", key);
        }
    } else if (rc != SQLITE_DONE) {
        out = db_fail(ctx, db, "select refusal");
    }
    sqlite3_finalize(st);
    return out;
}

/* Refuses the request with 409 `code`, stored under its Idempotency-Key when it has one (inside
 * the open transaction, which this ends). */
static int refuse(tb_ctx *ctx, const wallet_create_transaction_req *req, const char *key,
                  wallet_create_transaction_resp *resp, const char *code, const char *msg)
{
    sqlite3 *db = db_of(ctx);
    resp->status = WALLET_CREATE_TRANSACTION_409;
    tb_api_error_set(&resp->s409, ctx, code, "%s", msg);
    if (!key) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return 0;
    }
    const wallet_create_transaction_request *b = &req->body;
    char now[25];
    tb_time_rfc3339(now);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "INSERT INTO refusals (wallet_id, idem_key, type, amount, "
                               "reference, code, message, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           -1, &st, NULL) != SQLITE_OK) {
        int rc = db_fail(ctx, db, "prepare insert refusal");
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    sqlite3_bind_text(st, 1, req->wallet_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, wallet_transaction_type_to_string(b->type), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, b->amount);
    if (b->has_reference)
        sqlite3_bind_text(st, 5, b->reference, (int)strlen(b->reference), SQLITE_STATIC);
    sqlite3_bind_text(st, 6, code, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, msg, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, now, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    if (step != SQLITE_DONE || sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        int rc = db_fail(ctx, db, "store refusal");
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    return 0;
}

static int wallet_create_transaction_locked(tb_ctx *ctx, const wallet_create_transaction_req *req,
                              wallet_create_transaction_resp *resp)
{
    sqlite3 *db = db_of(ctx);
    sqlite3_stmt *st = NULL;
    const wallet_create_transaction_request *b = &req->body;
    const char *key = req->has_idempotency_key ? req->idempotency_key : NULL;
    wallet_transaction *t = &resp->s201;
    bool found;
    size_t ref_len = 0;
    int rc = 0;

    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(ctx, db, "begin");
    if (key) { /* a retry with the same key gets the stored result */
        if ((rc = tx_by_key(ctx, req->wallet_id, key, t, &ref_len, &found)) != 0)
            goto rollback;
        if (found) {
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            replay(ctx, req, t, ref_len, resp);
            return 0;
        }
        if ((rc = refusal_by_key(ctx, req, key, resp, &found)) != 0)
            goto rollback;
        if (found) {
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return 0;
        }
    }
    wallet_wallet w;
    if ((rc = load_wallet(ctx, req->wallet_id, &w, &found)) != 0)
        goto rollback;
    if (!found) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        resp->status = WALLET_CREATE_TRANSACTION_404;
        tb_api_error_set(&resp->s404, ctx, "not_found", "no wallet %s", req->wallet_id);
        return 0;
    }
    int64_t balance = w.balance;
    if (b->type == WALLET_TRANSACTION_TYPE_DEBIT) {
        if (b->amount > balance) {
            char msg[128];
            snprintf(msg, sizeof msg, "a debit of %" PRId64 " exceeds the balance of %" PRId64,
                     b->amount, balance);
            return refuse(ctx, req, key, resp, "insufficient_funds", msg);
        }
        balance -= b->amount;
    } else {
        if (b->amount > INT64_C(9007199254740991) - balance) {
            char msg[128];
            snprintf(msg, sizeof msg, "a credit of %" PRId64 " would exceed the largest balance",
                     b->amount);
            return refuse(ctx, req, key, resp, "balance_limit", msg);
        }
        balance += b->amount;
    }
    char id[37], now[25];
    tb_uuid_new(id);
    tb_time_rfc3339(now);
    if (sqlite3_prepare_v2(db, "INSERT INTO transactions (" TX_COLS ", idem_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(ctx, db, "prepare insert transaction");
        goto rollback;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, req->wallet_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, wallet_transaction_type_to_string(b->type), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, b->amount);
    sqlite3_bind_int64(st, 5, balance);
    if (b->has_reference) /* its whole length, as the fingerprint compares it */
        sqlite3_bind_text(st, 6, b->reference, (int)strlen(b->reference), SQLITE_STATIC);
    sqlite3_bind_text(st, 7, now, -1, SQLITE_STATIC);
    if (key)
        sqlite3_bind_text(st, 8, key, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    st = NULL;
    if (step != SQLITE_DONE) {
        rc = db_fail(ctx, db, "insert transaction");
        goto rollback;
    }
    if (sqlite3_prepare_v2(db, "UPDATE wallets SET balance = ? WHERE id = ?", -1, &st, NULL) !=
        SQLITE_OK) {
        rc = db_fail(ctx, db, "prepare update balance");
        goto rollback;
    }
    sqlite3_bind_int64(st, 1, balance);
    sqlite3_bind_text(st, 2, req->wallet_id, -1, SQLITE_STATIC);
    step = sqlite3_step(st);
    sqlite3_finalize(st);
    if (step != SQLITE_DONE) {
        rc = db_fail(ctx, db, "update balance");
        goto rollback;
    }
    /* the event the balance is a projection of, appended at the stream's current version */
    char stream[48];
    snprintf(stream, sizeof stream, "wallet-%s", req->wallet_id);
    int64_t version = tb_evstore_version(db, stream, NULL);
    wallet_transaction_created_v1 ev = {
        .transaction_id = id, .wallet_id = req->wallet_id, .user_id = w.user_id,
        .type = b->type == WALLET_TRANSACTION_TYPE_DEBIT ? WALLET_TRANSACTION_CREATED_V1_TYPE_DEBIT
                                                         : WALLET_TRANSACTION_CREATED_V1_TYPE_CREDIT,
        .amount = b->amount, .currency = w.currency, .balance_after = balance,
        .has_reference = b->has_reference, .reference = b->reference,
        .has_idempotency_key = key != NULL, .idempotency_key = (char *)key, .created_at = now};
    if (version < 0 ||
        (rc = record_event(ctx, req->wallet_id, version, &wallet_transaction_created_v1_event,
                           wallet_transaction_created_v1_to_json(&ev))) != 0) {
        rc = rc ? rc : TB_EIO;
        goto rollback;
    }
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        rc = db_fail(ctx, db, "commit");
        goto rollback;
    }
    wallet_state *ws = ctx->state;
    tb_bus_outbox_kick(ws->bus);
    if (ws->redis) { /* light, at-most-once: after the commit, never inside it */
        wallet_balance_updated_v1 bu = {.wallet_id = req->wallet_id, .user_id = w.user_id,
                                        .currency = w.currency, .previous_balance = w.balance,
                                        .balance = balance, .has_transaction_id = true,
                                        .transaction_id = id, .updated_at = now};
        tb_error perr = TB_ERROR_INIT;
        if (wallet_balance_updated_v1_publish_async(ws->bus, ctx, &bu, NULL, NULL, &perr) != 0)
            tb_log_warn(ctx, "wallet: wallet.balance.updated not published: %s", perr.message);
        tb_error_deinit(&perr);
    }
    t->id = tb_arena_strdup(ctx->arena, id);
    t->wallet_id = req->wallet_id;
    t->type = b->type;
    t->amount = b->amount;
    t->balance_after = balance;
    t->has_reference = b->has_reference;
    t->reference = b->reference;
    t->created_at = tb_arena_strdup(ctx->arena, now);
    if (!t->id || !t->created_at)
        return TB_ENOMEM;
    resp->status = WALLET_CREATE_TRANSACTION_201;
    return 0;
rollback:
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static int wallet_list_transactions_locked(tb_ctx *ctx, const wallet_list_transactions_req *req,
                             wallet_list_transactions_resp *resp)
{
    sqlite3 *db = db_of(ctx);
    sqlite3_stmt *st = NULL;
    wallet_wallet w;
    bool found;
    int rc = load_wallet(ctx, req->wallet_id, &w, &found);
    if (rc)
        return rc;
    if (!found) {
        resp->status = WALLET_LIST_TRANSACTIONS_404;
        tb_api_error_set(&resp->s404, ctx, "not_found", "no wallet %s", req->wallet_id);
        return 0;
    }
    int64_t limit = req->limit; /* the spec's default (20) when absent */
    int64_t cursor = req->has_cursor ? strtoll(req->cursor, NULL, 10) : INT64_MAX;
    if (sqlite3_prepare_v2(db,
                           "SELECT " TX_COLS ", seq FROM transactions WHERE wallet_id = ?1 AND seq < ?2"
                           " AND (?3 IS NULL OR type = ?3) ORDER BY seq DESC LIMIT ?4",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(ctx, db, "prepare list");
    sqlite3_bind_text(st, 1, req->wallet_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, cursor);
    if (req->has_type)
        sqlite3_bind_text(st, 3, wallet_transaction_type_to_string(req->type), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, limit + 1);
    wallet_transaction *items = tb_arena_calloc(ctx->arena, (size_t)limit + 1, sizeof *items);
    size_t n = 0;
    int64_t last_seq = 0;
    bool more = false;
    int step;
    while (items && (step = sqlite3_step(st)) == SQLITE_ROW) {
        if ((int64_t)n == limit) {
            more = true;
            break;
        }
        if ((rc = read_tx(ctx, st, &items[n++])) != 0)
            break;
        last_seq = sqlite3_column_int64(st, 7);
    }
    sqlite3_finalize(st);
    if (!items)
        return TB_ENOMEM;
    if (rc)
        return rc;
    wallet_transaction_page *page = &resp->s200;
    page->items = items;
    page->n_items = n;
    if (more) {
        char *c = tb_arena_alloc(ctx->arena, 24);
        if (!c)
            return TB_ENOMEM;
        snprintf(c, 24, "%" PRId64, last_seq);
        page->next_cursor = c;
    } else {
        page->next_cursor_is_null = true;
    }
    resp->status = WALLET_LIST_TRANSACTIONS_200;
    return 0;
}

/* ---- handlers: each runs with the state's connection to itself ---- */

/* A UUID as stored: lower case (RFC 9562 6.5: case-insensitive on input). The spec's pattern
 * takes upper case, and ids were compared byte for byte: an upper-cased user id opened a second
 * wallet of one currency for the same user, and an upper-cased wallet id was a 404. */
static char *canon_id(tb_ctx *ctx, char *id)
{
    bool upper = false;
    for (const char *p = id; p && *p && !upper; p++)
        upper = *p >= 'A' && *p <= 'Z';
    char *c = upper ? tb_arena_strdup(ctx->arena, id) : id;
    for (char *p = c; upper && p && *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return c ? c : id;
}

int wallet_get_health(tb_ctx *ctx, const wallet_get_health_req *req, wallet_get_health_resp *resp)
{
    wallet_state *st = ctx->state;
    pthread_mutex_lock(&st->mu);
    int rc = wallet_get_health_locked(ctx, req, resp);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int wallet_create_wallet(tb_ctx *ctx, const wallet_create_wallet_req *in, wallet_create_wallet_resp *resp)
{
    wallet_state *st = ctx->state;
    wallet_create_wallet_req canon = *in;
    canon.body.user_id = canon_id(ctx, canon.body.user_id);
    const wallet_create_wallet_req *req = &canon;
    pthread_mutex_lock(&st->mu);
    int rc = wallet_create_wallet_locked(ctx, req, resp);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int wallet_get_wallet(tb_ctx *ctx, const wallet_get_wallet_req *in, wallet_get_wallet_resp *resp)
{
    wallet_state *st = ctx->state;
    wallet_get_wallet_req canon = *in;
    canon.wallet_id = canon_id(ctx, canon.wallet_id);
    const wallet_get_wallet_req *req = &canon;
    pthread_mutex_lock(&st->mu);
    int rc = wallet_get_wallet_locked(ctx, req, resp);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int wallet_get_user_wallets(tb_ctx *ctx, const wallet_get_user_wallets_req *in, wallet_get_user_wallets_resp *resp)
{
    wallet_state *st = ctx->state;
    wallet_get_user_wallets_req canon = *in;
    canon.user_id = canon_id(ctx, canon.user_id);
    const wallet_get_user_wallets_req *req = &canon;
    pthread_mutex_lock(&st->mu);
    int rc = wallet_get_user_wallets_locked(ctx, req, resp);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int wallet_create_transaction(tb_ctx *ctx, const wallet_create_transaction_req *in, wallet_create_transaction_resp *resp)
{
    wallet_state *st = ctx->state;
    wallet_create_transaction_req canon = *in;
    canon.wallet_id = canon_id(ctx, canon.wallet_id);
    const wallet_create_transaction_req *req = &canon;
    pthread_mutex_lock(&st->mu);
    int rc = wallet_create_transaction_locked(ctx, req, resp);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int wallet_list_transactions(tb_ctx *ctx, const wallet_list_transactions_req *in, wallet_list_transactions_resp *resp)
{
    wallet_state *st = ctx->state;
    wallet_list_transactions_req canon = *in;
    canon.wallet_id = canon_id(ctx, canon.wallet_id);
    const wallet_list_transactions_req *req = &canon;
    pthread_mutex_lock(&st->mu);
    int rc = wallet_list_transactions_locked(ctx, req, resp);
    pthread_mutex_unlock(&st->mu);
    return rc;
}
