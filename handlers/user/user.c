/*
 * User service handlers (openapi/user.yaml). State: SQLite ($USER_DB, default ./user.db).
 * Wallet operations go to the Wallet service through its generated client (ctx->deps).
 */
#include "user/user.h"
#include "events/events.h"

#include "tablium/events.h"
#include "tablium/ids.h"
#include "tablium/log.h"
#include "tablium/store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One connection, used by one request at a time: SQLite transactions belong to a
 * connection, so two requests interleaving on it would see (and nest in) each other's. */
typedef struct user_state {
    sqlite3 *db;
    pthread_mutex_t mu;
    tb_bus *bus; /* consumes user.registered (TB_AMQP_URL); NULL when events are off */
    tb_store_probe *probe; /* the readiness check "database" */
} user_state;

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS users ("
    "  id TEXT PRIMARY KEY,"
    "  username TEXT NOT NULL UNIQUE COLLATE NOCASE,"
    "  email TEXT NOT NULL,"
    "  created_at TEXT NOT NULL);"
    "CREATE UNIQUE INDEX IF NOT EXISTS users_username_nocase ON users (username COLLATE NOCASE);"
    "CREATE TABLE IF NOT EXISTS profiles ("
    "  user_id TEXT PRIMARY KEY REFERENCES users (id),"
    "  display_name TEXT NOT NULL,"
    "  bio TEXT,"
    "  country TEXT,"
    "  games_played INTEGER NOT NULL DEFAULT 0,"
    "  updated_at TEXT NOT NULL);";

/*
 * user.registered (Auth): creates the user and their profile. Runs inside the bus's
 * transaction on s->db (with the dedupe record), under s->mu: a redelivered event is acked
 * without coming here, and this is idempotent on its own as well (the same user id again is a
 * no-op).
 */
/* The seed's welcome: a new user gets a wallet in USER_WELCOME_CURRENCY (default CHP; empty:
 * none) from the Wallet service. Inside the event's transaction: when Wallet cannot be reached
 * the event is retried (the user rows roll back with it); a 409 means an earlier delivery made
 * the wallet already. */
static int open_welcome_wallet(tb_ctx *ctx, const tb_event *ev, const char *user_id)
{
    const char *cur = getenv("USER_WELCOME_CURRENCY");
    if (cur && !*cur)
        return TB_EVENT_ACK;
    user_deps *deps = user_deps_of(ctx);
    if (!deps || !deps->wallet)
        return TB_EVENT_ACK;
    wallet_create_wallet_req wreq = {
        .body = {.user_id = (char *)user_id, .currency = (char *)(cur ? cur : "CHP")},
    };
    wallet_create_wallet_resp wresp;
    tb_error err = TB_ERROR_INIT;
    /* the user's requests wait on this transaction: a short budget */
    ctx->deadline_ms = tb_deadline_in(2000);
    int rc = wallet_create_wallet_call(deps->wallet, ctx, &wreq, &wresp, &err);
    int r = TB_EVENT_ACK;
    if (rc != 0) {
        tb_event_set_reason(ev, "welcome wallet: %s", err.message);
        r = TB_EVENT_RETRY;
    } else if (wresp.status == WALLET_CREATE_WALLET_201 ||
               wresp.status == WALLET_CREATE_WALLET_409) {
        tb_log_info(ctx, "user: welcome wallet of %s %s", user_id,
                    wresp.status == WALLET_CREATE_WALLET_201 ? "opened" : "was there already");
    } else {
        tb_event_set_reason(ev, "welcome wallet: Wallet answered %d", wresp.status);
        r = wresp.status >= 500 ? TB_EVENT_RETRY : TB_EVENT_DEAD;
    }
    tb_error_deinit(&err);
    return r;
}

static int on_user_registered(tb_ctx *ctx, const tb_event *ev, const user_registered_v1 *d,
                              void *user)
{
    (void)user;
    user_state *s = ctx->state;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "INSERT INTO users (id, username, email, created_at) VALUES (?, ?, ?, ?) "
                           "ON CONFLICT (id) DO NOTHING",
                           -1, &st, NULL) != SQLITE_OK) {
        tb_event_set_reason(ev, "prepare: %s", sqlite3_errmsg(s->db));
        return TB_EVENT_RETRY;
    }
    sqlite3_bind_text(st, 1, d->user_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, d->username, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, d->email, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, d->registered_at, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    int ext = sqlite3_extended_errcode(s->db);
    sqlite3_finalize(st);
    if (step != SQLITE_DONE) {
        if (ext == SQLITE_CONSTRAINT_UNIQUE) {
            tb_event_set_reason(ev, "username %s belongs to another user", d->username);
            return TB_EVENT_DEAD;
        }
        tb_event_set_reason(ev, "insert user: %s", sqlite3_errmsg(s->db));
        return TB_EVENT_RETRY;
    }
    if (sqlite3_changes(s->db) == 0) {
        tb_log_info(ctx, "user: %s already exists (event %s)", d->user_id, ev->id);
        return TB_EVENT_ACK;
    }
    char now[25];
    tb_time_rfc3339(now);
    if (sqlite3_prepare_v2(s->db,
                           "INSERT INTO profiles (user_id, display_name, updated_at) VALUES (?, ?, ?)",
                           -1, &st, NULL) != SQLITE_OK) {
        tb_event_set_reason(ev, "prepare: %s", sqlite3_errmsg(s->db));
        return TB_EVENT_RETRY;
    }
    sqlite3_bind_text(st, 1, d->user_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, d->has_display_name ? d->display_name : d->username, -1,
                      SQLITE_STATIC);
    sqlite3_bind_text(st, 3, now, -1, SQLITE_STATIC);
    step = sqlite3_step(st);
    sqlite3_finalize(st);
    if (step != SQLITE_DONE) {
        tb_event_set_reason(ev, "insert profile: %s", sqlite3_errmsg(s->db));
        return TB_EVENT_RETRY;
    }
    tb_log_info(ctx, "user: profile of %s (%s) created from user.registered %s (attempt %d)",
                d->username, d->user_id, ev->id, ev->attempt);
    return open_welcome_wallet(ctx, ev, d->user_id);
}

int user_service_init(void **state, tb_error *err)
{
    user_state *s = calloc(1, sizeof *s);
    if (!s)
        return tb_error_set(err, TB_ENOMEM, "user: out of memory");
    s->db = tb_store_open_service("user", SCHEMA, err);
    if (!s->db) {
        free(s);
        return TB_EIO;
    }
    pthread_mutex_init(&s->mu, NULL);
    *state = s;
    int rc = (s->probe = tb_store_probe_new(s->db, err)) ? 0 : TB_EIO;
    if (rc == 0 && tb_ready_check_add("database", tb_store_probe_ready, s->probe))
        rc = tb_error_set(err, TB_EINVAL, "user: cannot register the readiness check");
    const char *amqp = getenv("TB_AMQP_URL");
    if (rc == 0 && (!amqp || !*amqp)) {
        tb_log_warn(NULL, "user: TB_AMQP_URL is not set: not consuming user.registered");
        return 0;
    }
    /* the dedupe record and the handler's writes share one transaction on s->db */
    tb_bus_opts bo = {.service = "user", .store = s->db, .store_lock = &s->mu, .state = s};
    if (rc == 0)
        rc = (s->bus = tb_bus_new(&bo, err)) ? 0 : TB_ENOMEM;
    if (rc == 0)
        rc = user_registered_v1_subscribe(s->bus, on_user_registered, NULL, err);
    if (rc == 0)
        rc = tb_bus_start(s->bus, err);
    if (rc != 0) {
        user_service_fini(s);
        *state = NULL;
    }
    return rc;
}

void user_service_fini(void *state)
{
    user_state *s = state;
    if (!s)
        return;
    if (s->probe) /* the check first: it reads the database file */
        tb_ready_check_remove(s->probe);
    tb_store_probe_free(s->probe);
    tb_bus_free(s->bus); /* first: its handlers use the database */
    tb_store_close(s->db);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static sqlite3 *db_of(tb_ctx *ctx)
{
    return ((user_state *)ctx->state)->db;
}

static int db_fail(tb_ctx *ctx, sqlite3 *db, const char *what)
{
    tb_log_error(ctx, "user: %s: %s", what, sqlite3_errmsg(db));
    return TB_EIO;
}

static int load_user_locked(tb_ctx *ctx, const char *id, user_user *u, bool *found);

static int user_get_health_locked(tb_ctx *ctx, const user_get_health_req *req, user_get_health_resp *resp)
{
    (void)req;
    if (sqlite3_exec(db_of(ctx), "SELECT 1", NULL, NULL, NULL) != SQLITE_OK) {
        resp->status = USER_GET_HEALTH_503;
        tb_api_error_set(&resp->s503, ctx, "unavailable", "the database does not answer");
        return 0;
    }
    resp->status = USER_GET_HEALTH_200;
    resp->s200.status = COMMON_HEALTH_STATUS_OK;
    return 0;
}

static int user_create_user_locked(tb_ctx *ctx, const user_create_user_req *req, user_create_user_resp *resp)
{
    sqlite3 *db = db_of(ctx);
    sqlite3_stmt *st = NULL;
    const user_create_user_request *b = &req->body;
    char id[37], now[25];
    int rc = 0;
    tb_uuid_new(id);
    tb_time_rfc3339(now);
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(ctx, db, "begin");
    if (sqlite3_prepare_v2(db, "INSERT INTO users (id, username, email, created_at) VALUES (?, ?, ?, ?)",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(ctx, db, "prepare insert user");
        goto rollback;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, b->username, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, b->email, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, now, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    int ext = sqlite3_extended_errcode(db);
    sqlite3_finalize(st);
    st = NULL;
    if (step != SQLITE_DONE) {
        if (ext == SQLITE_CONSTRAINT_UNIQUE) {
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            resp->status = USER_CREATE_USER_409;
            tb_api_error_set(&resp->s409, ctx, "username_taken", "username %s is taken",
                             b->username);
            return 0;
        }
        rc = db_fail(ctx, db, "insert user");
        goto rollback;
    }
    if (sqlite3_prepare_v2(db, "INSERT INTO profiles (user_id, display_name, updated_at) VALUES (?, ?, ?)",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(ctx, db, "prepare insert profile");
        goto rollback;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, b->has_display_name ? b->display_name : b->username, -1,
                      SQLITE_STATIC);
    sqlite3_bind_text(st, 3, now, -1, SQLITE_STATIC);
    step = sqlite3_step(st);
    sqlite3_finalize(st);
    if (step != SQLITE_DONE) {
        rc = db_fail(ctx, db, "insert profile");
        goto rollback;
    }
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        rc = db_fail(ctx, db, "commit");
        goto rollback;
    }
    user_user *u = &resp->s201;
    u->id = tb_arena_strdup(ctx->arena, id);
    u->username = b->username;
    u->email = b->email;
    u->created_at = tb_arena_strdup(ctx->arena, now);
    char *loc = tb_arena_alloc(ctx->arena, 64);
    if (!u->id || !u->created_at || !loc)
        return TB_ENOMEM;
    snprintf(loc, 64, "/users/%s", id);
    resp->headers.location = loc;
    resp->status = USER_CREATE_USER_201;
    return 0;
rollback:
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static int load_user(tb_ctx *ctx, const char *id, user_user *u, bool *found)
{
    sqlite3 *db = db_of(ctx);
    sqlite3_stmt *st = NULL;
    *found = false;
    if (sqlite3_prepare_v2(db, "SELECT id, username, email, created_at FROM users WHERE id = ?", -1,
                           &st, NULL) != SQLITE_OK)
        return db_fail(ctx, db, "prepare select user");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), out = 0;
    if (rc == SQLITE_ROW) {
        *found = true;
        u->id = tb_store_text(ctx->arena, st, 0);
        u->username = tb_store_text(ctx->arena, st, 1);
        u->email = tb_store_text(ctx->arena, st, 2);
        u->created_at = tb_store_text(ctx->arena, st, 3);
        if (!u->id || !u->username || !u->email || !u->created_at)
            out = TB_ENOMEM;
    } else if (rc != SQLITE_DONE) {
        out = db_fail(ctx, db, "select user");
    }
    sqlite3_finalize(st);
    return out;
}

static int user_get_user_locked(tb_ctx *ctx, const user_get_user_req *req, user_get_user_resp *resp)
{
    bool found;
    int rc = load_user(ctx, req->user_id, &resp->s200, &found);
    if (rc)
        return rc;
    if (!found) {
        resp->status = USER_GET_USER_404;
        tb_api_error_set(&resp->s404, ctx, "not_found", "no user %s", req->user_id);
        return 0;
    }
    resp->status = USER_GET_USER_200;
    return 0;
}

static int load_profile(tb_ctx *ctx, const char *id, user_profile *p, bool *found)
{
    sqlite3 *db = db_of(ctx);
    sqlite3_stmt *st = NULL;
    *found = false;
    if (sqlite3_prepare_v2(db, "SELECT user_id, display_name, bio, country, games_played, updated_at"
                               " FROM profiles WHERE user_id = ?",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(ctx, db, "prepare select profile");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), out = 0;
    if (rc == SQLITE_ROW) {
        *found = true;
        p->user_id = tb_store_text(ctx->arena, st, 0);
        p->display_name = tb_store_text(ctx->arena, st, 1);
        p->bio_is_null = sqlite3_column_type(st, 2) == SQLITE_NULL;
        p->bio = p->bio_is_null ? NULL : tb_store_text(ctx->arena, st, 2);
        p->country_is_null = sqlite3_column_type(st, 3) == SQLITE_NULL;
        p->country = p->country_is_null ? NULL : tb_store_text(ctx->arena, st, 3);
        p->has_games_played = true;
        p->games_played = sqlite3_column_int64(st, 4);
        p->updated_at = tb_store_text(ctx->arena, st, 5);
        if (!p->user_id || !p->display_name || !p->updated_at)
            out = TB_ENOMEM;
    } else if (rc != SQLITE_DONE) {
        out = db_fail(ctx, db, "select profile");
    }
    sqlite3_finalize(st);
    return out;
}

static int user_get_profile_locked(tb_ctx *ctx, const user_get_profile_req *req, user_get_profile_resp *resp)
{
    bool found;
    int rc = load_profile(ctx, req->user_id, &resp->s200, &found);
    if (rc)
        return rc;
    if (!found) {
        resp->status = USER_GET_PROFILE_404;
        tb_api_error_set(&resp->s404, ctx, "not_found", "no user %s", req->user_id);
        return 0;
    }
    resp->status = USER_GET_PROFILE_200;
    return 0;
}

/* Binds a nullable text member: absent keeps the column (?N IS NULL flag), null clears it. */
static int user_update_profile_locked(tb_ctx *ctx, const user_update_profile_req *req,
                        user_update_profile_resp *resp)
{
    sqlite3 *db = db_of(ctx);
    sqlite3_stmt *st = NULL;
    const user_update_profile_request *b = &req->body;
    char now[25];
    tb_time_rfc3339(now);
    if (sqlite3_prepare_v2(db,
                           "UPDATE profiles SET"
                           " display_name = CASE WHEN ?1 THEN ?2 ELSE display_name END,"
                           " bio = CASE WHEN ?3 THEN ?4 ELSE bio END,"
                           " country = CASE WHEN ?5 THEN ?6 ELSE country END,"
                           " updated_at = ?7 WHERE user_id = ?8",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(ctx, db, "prepare update profile");
    sqlite3_bind_int(st, 1, b->has_display_name);
    if (b->has_display_name)
        sqlite3_bind_text(st, 2, b->display_name, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, b->has_bio);
    if (b->has_bio && !b->bio_is_null)
        sqlite3_bind_text(st, 4, b->bio, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 5, b->has_country);
    if (b->has_country && !b->country_is_null)
        sqlite3_bind_text(st, 6, b->country, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, now, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, req->user_id, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    if (step != SQLITE_DONE)
        return db_fail(ctx, db, "update profile");
    if (sqlite3_changes(db) == 0) {
        resp->status = USER_UPDATE_PROFILE_404;
        tb_api_error_set(&resp->s404, ctx, "not_found", "no user %s", req->user_id);
        return 0;
    }
    bool found;
    int rc = load_profile(ctx, req->user_id, &resp->s200, &found);
    if (rc)
        return rc;
    resp->status = found ? USER_UPDATE_PROFILE_200 : USER_UPDATE_PROFILE_404;
    if (!found)
        tb_api_error_set(&resp->s404, ctx, "not_found", "no user %s", req->user_id);
    return 0;
}

static void to_user_wallet(const wallet_wallet *w, user_wallet *out)
{
    out->id = w->id;
    out->currency = w->currency;
    out->balance = w->balance;
}

/* The Wallet service failed: 502 for our caller, the reason in our log only. */
static void bad_gateway(tb_ctx *ctx, tb_api_error *e, int rc, const tb_error *err)
{
    tb_log_warn(ctx, "user: wallet service call failed: %s: %s", tb_err_name(rc), err->message);
    if (rc == TB_EOPEN) /* failing fast: the breaker on Wallet is open */
        tb_api_error_set(e, ctx, "upstream_unavailable",
                         "the wallet service is failing; calls to it are paused");
    else
        tb_api_error_set(e, ctx, "upstream_failed", "the wallet service did not answer as expected");
}

static int user_get_user_wallets_unlocked(tb_ctx *ctx, const user_get_user_wallets_req *req,
                          user_get_user_wallets_resp *resp)
{
    user_user u;
    bool found;
    int rc = load_user_locked(ctx, req->user_id, &u, &found);
    if (rc)
        return rc;
    if (!found) {
        resp->status = USER_GET_USER_WALLETS_404;
        tb_api_error_set(&resp->s404, ctx, "not_found", "no user %s", req->user_id);
        return 0;
    }
    tb_error err = TB_ERROR_INIT;
    wallet_get_user_wallets_req wreq = {.user_id = req->user_id};
    wallet_get_user_wallets_resp wresp;
    rc = wallet_get_user_wallets_call(user_deps_of(ctx)->wallet, ctx, &wreq, &wresp, &err);
    if (rc || wresp.status != WALLET_GET_USER_WALLETS_200) {
        if (!rc)
            tb_error_set(&err, TB_EUPSTREAM, "status %d: %s", wresp.status,
                         wresp.s400.message ? wresp.s400.message : "");
        resp->status = USER_GET_USER_WALLETS_502;
        bad_gateway(ctx, &resp->s502, rc ? rc : TB_EUPSTREAM, &err);
        tb_error_deinit(&err);
        return 0;
    }
    tb_error_deinit(&err);
    user_wallet *items = tb_arena_calloc(ctx->arena, wresp.s200.n ? wresp.s200.n : 1, sizeof *items);
    if (!items)
        return TB_ENOMEM;
    for (size_t i = 0; i < wresp.s200.n; i++)
        to_user_wallet(&wresp.s200.items[i], &items[i]);
    resp->status = USER_GET_USER_WALLETS_200;
    resp->s200.items = items;
    resp->s200.n = wresp.s200.n;
    return 0;
}

static int user_open_wallet_unlocked(tb_ctx *ctx, const user_open_wallet_req *req, user_open_wallet_resp *resp)
{
    user_user u;
    bool found;
    int rc = load_user_locked(ctx, req->user_id, &u, &found);
    if (rc)
        return rc;
    if (!found) {
        resp->status = USER_OPEN_WALLET_404;
        tb_api_error_set(&resp->s404, ctx, "not_found", "no user %s", req->user_id);
        return 0;
    }
    tb_error err = TB_ERROR_INIT;
    wallet_create_wallet_req wreq = {
        .body = {.user_id = req->user_id, .currency = req->body.currency},
    };
    wallet_create_wallet_resp wresp;
    rc = wallet_create_wallet_call(user_deps_of(ctx)->wallet, ctx, &wreq, &wresp, &err);
    if (rc == 0 && wresp.status == WALLET_CREATE_WALLET_201) {
        to_user_wallet(&wresp.s201, &resp->s201);
        resp->status = USER_OPEN_WALLET_201;
    } else if (rc == 0 && wresp.status == WALLET_CREATE_WALLET_409) {
        resp->status = USER_OPEN_WALLET_409;
        resp->s409 = wresp.s409;
        resp->s409.request_id = NULL;
    } else {
        if (!rc)
            tb_error_set(&err, TB_EUPSTREAM, "status %d", wresp.status);
        resp->status = USER_OPEN_WALLET_502;
        bad_gateway(ctx, &resp->s502, rc ? rc : TB_EUPSTREAM, &err);
    }
    tb_error_deinit(&err);
    return 0;
}

/* ---- handlers: each runs with the state's connection to itself ---- */

int user_get_health(tb_ctx *ctx, const user_get_health_req *req, user_get_health_resp *resp)
{
    user_state *st = ctx->state;
    pthread_mutex_lock(&st->mu);
    int rc = user_get_health_locked(ctx, req, resp);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int user_create_user(tb_ctx *ctx, const user_create_user_req *req, user_create_user_resp *resp)
{
    user_state *st = ctx->state;
    pthread_mutex_lock(&st->mu);
    int rc = user_create_user_locked(ctx, req, resp);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

/* load_user for handlers that do not hold the lock (they call the Wallet service after). */
static int load_user_locked(tb_ctx *ctx, const char *id, user_user *u, bool *found)
{
    user_state *st = ctx->state;
    pthread_mutex_lock(&st->mu);
    int rc = load_user(ctx, id, u, found);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int user_get_user(tb_ctx *ctx, const user_get_user_req *req, user_get_user_resp *resp)
{
    user_state *st = ctx->state;
    pthread_mutex_lock(&st->mu);
    int rc = user_get_user_locked(ctx, req, resp);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int user_get_profile(tb_ctx *ctx, const user_get_profile_req *req, user_get_profile_resp *resp)
{
    user_state *st = ctx->state;
    pthread_mutex_lock(&st->mu);
    int rc = user_get_profile_locked(ctx, req, resp);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int user_update_profile(tb_ctx *ctx, const user_update_profile_req *req, user_update_profile_resp *resp)
{
    user_state *st = ctx->state;
    pthread_mutex_lock(&st->mu);
    int rc = user_update_profile_locked(ctx, req, resp);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int user_get_user_wallets(tb_ctx *ctx, const user_get_user_wallets_req *req, user_get_user_wallets_resp *resp)
{
    return user_get_user_wallets_unlocked(ctx, req, resp); /* locks only around its own database reads */
}

int user_open_wallet(tb_ctx *ctx, const user_open_wallet_req *req, user_open_wallet_resp *resp)
{
    return user_open_wallet_unlocked(ctx, req, resp); /* locks only around its own database reads */
}
