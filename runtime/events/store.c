/*
 * tablium: the SQLite event store, transactional outbox and dedupe record (tablium/evstore.h).
 *
 * Every function runs on the caller's connection, preparing its statements per call (no cache:
 * the connection may be closed behind us). tb_evstore_append is atomic: BEGIN IMMEDIATE on its
 * own, a SAVEPOINT in a caller's transaction; either way it holds the write lock (waiting
 * through the busy timeout) before it reads the stream's version, so the check and the insert
 * see the same state.
 */
#include "tablium/evstore.h"

#include "tablium/arena.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ISO 8601 UTC with milliseconds, e.g. 2026-11-24T10:00:00.123Z */
#define TB__NOW "(strftime('%Y-%m-%dT%H:%M:%fZ','now'))"

/* Dedupe pruning: rows beyond `keep` are deleted once there are more than DEDUPE_SLACK of them,
 * at most DEDUPE_BATCH per call (more than the slack, so a shrunk `keep` is caught up with). */
#define DEDUPE_DEFAULT_KEEP 100000
#define DEDUPE_SLACK 64
#define DEDUPE_BATCH 256

/* Outbox rows are read in chunks (the statement is reset before the callbacks run, so they may
 * write through the same connection, e.g. delete the row they relayed). */
#define OUTBOX_CHUNK 64

/* ---- helpers ---- */

/* Sets TB_EIO with SQLite's message for `what`; returns TB_EIO. */
static int sql_error(sqlite3 *db, tb_error *err, const char *what)
{
    return tb_error_set(err, TB_EIO, "%s: %s", what, sqlite3_errmsg(db));
}

static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, tb_error *err,
                   const char *what)
{
    *st = NULL;
    if (sqlite3_prepare_v3(db, sql, -1, 0, st, NULL) != SQLITE_OK) {
        sql_error(db, err, what);
        sqlite3_finalize(*st);
        *st = NULL;
        return TB_EIO;
    }
    return 0;
}

static int exec_sql(sqlite3 *db, const char *sql, tb_error *err, const char *what)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        tb_error_set(err, TB_EIO, "%s: %s", what, msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return TB_EIO;
    }
    return 0;
}

/* NULL and "" are both missing. */
static int missing(const char *s)
{
    return s == NULL || *s == '\0';
}

/* NULL-safe column text; "" for SQL NULL when `nullable` is 0. */
static const char *col_text(sqlite3_stmt *st, int col, int nullable)
{
    const char *t = (const char *)sqlite3_column_text(st, col);
    return t ? t : nullable ? NULL : "";
}

/* Text for a message: the stream/id may be long; %.*s keeps the summary readable. */
#define SHOWN 96

/* ---- event store ---- */

int tb_evstore_init(sqlite3 *db, tb_error *err)
{
    if (!db)
        return tb_error_set(err, TB_EINVAL, "tb_evstore_init: db is NULL");
    return exec_sql(db,
                    "CREATE TABLE IF NOT EXISTS tb_events ("
                    " global_seq INTEGER PRIMARY KEY AUTOINCREMENT,"
                    " stream TEXT NOT NULL,"
                    " version INTEGER NOT NULL,"
                    " id TEXT NOT NULL UNIQUE,"
                    " type TEXT NOT NULL,"
                    " schema_version TEXT NOT NULL,"
                    " data TEXT NOT NULL,"
                    " metadata TEXT,"
                    " recorded_at TEXT NOT NULL DEFAULT " TB__NOW ","
                    " UNIQUE(stream, version));"
                    "CREATE INDEX IF NOT EXISTS tb_events_type ON tb_events(type, global_seq);",
                    err, "tb_evstore_init");
}

#define VERSION_SQL                                                                            \
    "SELECT version FROM tb_events WHERE stream = ?1 ORDER BY version DESC LIMIT 1"

int64_t tb_evstore_version(sqlite3 *db, const char *stream, tb_error *err)
{
    if (!db || missing(stream))
        return tb_error_set(err, TB_EINVAL, "tb_evstore_version: %s is required",
                            !db ? "db" : "stream");
    sqlite3_stmt *st;
    if (prepare(db, VERSION_SQL, &st, err, "tb_evstore_version") != 0)
        return TB_EIO;
    sqlite3_bind_text(st, 1, stream, -1, SQLITE_STATIC);
    int64_t v;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    else if (rc == SQLITE_DONE)
        v = 0;
    else
        v = sql_error(db, err, "tb_evstore_version");
    sqlite3_finalize(st);
    return v;
}

static int check_new_event(const tb_new_event *e, size_t i, tb_error *err)
{
    const char *field = missing(e->id)               ? "id"
                        : missing(e->type)           ? "type"
                        : missing(e->schema_version) ? "schema_version"
                        : missing(e->data)           ? "data"
                                                     : NULL;
    if (field)
        return tb_error_set(err, TB_EINVAL, "tb_evstore_append: event %zu: %s is required", i,
                            field);
    return 0;
}

/* Fills err for a failed insert of event `e` into `stream`. */
static int append_step_error(sqlite3 *db, int rc, const char *stream, const tb_new_event *e,
                             tb_error *err)
{
    if ((rc & 0xff) == SQLITE_CONSTRAINT) { /* also with extended result codes on */
        const char *msg = sqlite3_errmsg(db);
        if (strstr(msg, "tb_events.id"))
            return tb_error_set(err, TB_ECONFLICT, "duplicate event id %.*s", SHOWN, e->id);
        if (strstr(msg, "tb_events.stream"))
            return tb_error_set(err, TB_ECONFLICT,
                                "stream %.*s: version written concurrently (%s)", SHOWN,
                                stream, msg);
    }
    return sql_error(db, err, "tb_evstore_append");
}

/*
 * Starts the append's unit: BEGIN IMMEDIATE on its own, else a SAVEPOINT in the caller's
 * transaction. Either way the write lock is taken (waiting through the busy timeout) before the
 * stream's version is read, so that the check cannot go stale before the insert: a deferred
 * transaction that read first could only upgrade with an immediate SQLITE_BUSY. A write
 * statement that changes nothing takes the lock inside a caller's transaction that holds none.
 */
static int append_begin(sqlite3 *db, int top, tb_error *err)
{
    if (top)
        return exec_sql(db, "BEGIN IMMEDIATE", err, "tb_evstore_append");
    if (exec_sql(db, "SAVEPOINT tb_evstore_append", err, "tb_evstore_append") != 0)
        return TB_EIO;
    if (sqlite3_txn_state(db, "main") != SQLITE_TXN_WRITE &&
        exec_sql(db, "DELETE FROM tb_events WHERE 0", err, "tb_evstore_append") != 0) {
        sqlite3_exec(db, "ROLLBACK TO tb_evstore_append; RELEASE tb_evstore_append", NULL, NULL,
                     NULL);
        return TB_EIO;
    }
    return 0;
}

static int append_end(sqlite3 *db, int top, int ret, tb_error *err)
{
    if (ret == 0) {
        if (exec_sql(db, top ? "COMMIT" : "RELEASE tb_evstore_append", err,
                     "tb_evstore_append") == 0)
            return 0;
        ret = TB_EIO;
    }
    /* Errors here are ignored: SQLite may already have rolled the whole transaction back (e.g.
     * after an I/O error), and err keeps the first failure. */
    if (top) {
        if (!sqlite3_get_autocommit(db))
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    } else {
        sqlite3_exec(db, "ROLLBACK TO tb_evstore_append; RELEASE tb_evstore_append", NULL, NULL,
                     NULL);
    }
    return ret;
}

#define INSERT_EVENT_SQL                                                                       \
    "INSERT INTO tb_events(stream, version, id, type, schema_version, data, metadata)"         \
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"

/* Inside the append's unit: checks the version, inserts the events. */
static int append_events(sqlite3 *db, const char *stream, int64_t expected_version,
                         const tb_new_event *evs, size_t n, int64_t *version, tb_error *err)
{
    int64_t v = tb_evstore_version(db, stream, err);
    if (v < 0)
        return (int)v;
    if (expected_version != TB_EVSTORE_ANY && v != expected_version)
        return tb_error_set(err, TB_ECONFLICT, "stream %.*s: expected version %lld, actual %lld",
                            SHOWN, stream, (long long)expected_version, (long long)v);
    sqlite3_stmt *st;
    if (n > 0 && prepare(db, INSERT_EVENT_SQL, &st, err, "tb_evstore_append") != 0)
        return TB_EIO;
    int ret = 0;
    for (size_t i = 0; i < n; i++) {
        const tb_new_event *e = &evs[i];
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, stream, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, ++v);
        sqlite3_bind_text(st, 3, e->id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, e->type, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, e->schema_version, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, e->data, -1, SQLITE_STATIC);
        if (e->metadata)
            sqlite3_bind_text(st, 7, e->metadata, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 7);
        int rc = sqlite3_step(st);
        if (rc != SQLITE_DONE) {
            ret = append_step_error(db, rc, stream, e, err);
            break;
        }
    }
    if (n > 0)
        sqlite3_finalize(st);
    if (ret == 0)
        *version = v;
    return ret;
}

int tb_evstore_append(sqlite3 *db, const char *stream, int64_t expected_version,
                      const tb_new_event *evs, size_t n, int64_t *new_version, tb_error *err)
{
    if (!db || missing(stream))
        return tb_error_set(err, TB_EINVAL, "tb_evstore_append: %s is required",
                            !db ? "db" : "stream");
    if (n > 0 && !evs)
        return tb_error_set(err, TB_EINVAL, "tb_evstore_append: evs is required");
    if (expected_version < TB_EVSTORE_ANY)
        return tb_error_set(err, TB_EINVAL, "tb_evstore_append: expected_version %lld is invalid",
                            (long long)expected_version);
    for (size_t i = 0; i < n; i++)
        if (check_new_event(&evs[i], i, err) != 0)
            return TB_EINVAL;

    int top = sqlite3_get_autocommit(db);
    if (append_begin(db, top, err) != 0)
        return TB_EIO;
    int64_t v = 0;
    int ret = append_events(db, stream, expected_version, evs, n, &v, err);
    ret = append_end(db, top, ret, err);
    if (ret == 0 && new_version)
        *new_version = v;
    return ret;
}

#define EVENT_COLS                                                                             \
    "global_seq, stream, version, id, type, schema_version, data, metadata, recorded_at"

/* Steps `st` (bound), calling fn per row; finalizes st. */
static int walk_events(sqlite3 *db, sqlite3_stmt *st, tb_stored_event_fn fn, void *user,
                       tb_error *err, const char *what)
{
    int ret = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        tb_stored_event ev = {
            .global_seq = sqlite3_column_int64(st, 0),
            .stream = col_text(st, 1, 0),
            .version = sqlite3_column_int64(st, 2),
            .id = col_text(st, 3, 0),
            .type = col_text(st, 4, 0),
            .schema_version = col_text(st, 5, 0),
            .data = col_text(st, 6, 0),
            .metadata = col_text(st, 7, 1),
            .recorded_at = col_text(st, 8, 0),
        };
        ret = fn(user, &ev);
        if (ret != 0)
            break;
    }
    if (ret == 0 && rc != SQLITE_DONE)
        ret = sql_error(db, err, what);
    sqlite3_finalize(st);
    return ret;
}

int tb_evstore_read(sqlite3 *db, const char *stream, int64_t from_version, tb_stored_event_fn fn,
                    void *user, tb_error *err)
{
    if (!db || missing(stream) || !fn)
        return tb_error_set(err, TB_EINVAL, "tb_evstore_read: %s is required",
                            !db ? "db" : !fn ? "fn" : "stream");
    sqlite3_stmt *st;
    if (prepare(db,
                "SELECT " EVENT_COLS " FROM tb_events WHERE stream = ?1 AND version >= ?2"
                " ORDER BY version",
                &st, err, "tb_evstore_read") != 0)
        return TB_EIO;
    sqlite3_bind_text(st, 1, stream, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, from_version);
    return walk_events(db, st, fn, user, err, "tb_evstore_read");
}

int tb_evstore_replay(sqlite3 *db, int64_t after_seq, const char *type, tb_stored_event_fn fn,
                      void *user, tb_error *err)
{
    if (!db || !fn)
        return tb_error_set(err, TB_EINVAL, "tb_evstore_replay: %s is required",
                            !db ? "db" : "fn");
    sqlite3_stmt *st;
    const char *sql = type ? "SELECT " EVENT_COLS " FROM tb_events"
                             " WHERE global_seq > ?1 AND type = ?2 ORDER BY global_seq"
                           : "SELECT " EVENT_COLS " FROM tb_events"
                             " WHERE global_seq > ?1 ORDER BY global_seq";
    if (prepare(db, sql, &st, err, "tb_evstore_replay") != 0)
        return TB_EIO;
    sqlite3_bind_int64(st, 1, after_seq);
    if (type)
        sqlite3_bind_text(st, 2, type, -1, SQLITE_STATIC);
    return walk_events(db, st, fn, user, err, "tb_evstore_replay");
}

/* ---- transactional outbox ---- */

/* Tables made before the ordering key was kept get its column (NULL in the old rows). */
static int outbox_add_key_column(sqlite3 *db, tb_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT key FROM tb_outbox LIMIT 0", -1, &st, NULL) == SQLITE_OK) {
        sqlite3_finalize(st);
        return 0;
    }
    sqlite3_finalize(st);
    return exec_sql(db, "ALTER TABLE tb_outbox ADD COLUMN key TEXT;", err, "tb_outbox_init");
}

int tb_outbox_init(sqlite3 *db, tb_error *err)
{
    if (!db)
        return tb_error_set(err, TB_EINVAL, "tb_outbox_init: db is NULL");
    int rc = exec_sql(db,
                    "CREATE TABLE IF NOT EXISTS tb_outbox ("
                    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
                    " id TEXT NOT NULL,"
                    " type TEXT NOT NULL,"
                    " routing_key TEXT,"
                    " body BLOB NOT NULL,"
                    " created_at TEXT NOT NULL DEFAULT " TB__NOW ","
                    " key TEXT);",
                    err, "tb_outbox_init");
    return rc != 0 ? rc : outbox_add_key_column(db, err);
}

int tb_outbox_put(sqlite3 *db, const char *id, const char *type, const char *routing_key,
                  const void *body, size_t len, tb_error *err)
{
    return tb_outbox_put_keyed(db, id, type, routing_key, NULL, body, len, err);
}

int tb_outbox_put_keyed(sqlite3 *db, const char *id, const char *type, const char *routing_key,
                        const char *key, const void *body, size_t len, tb_error *err)
{
    const char *field = !db ? "db" : missing(id) ? "id" : missing(type) ? "type"
                                                  : (!body && len) ? "body" : NULL;
    if (field)
        return tb_error_set(err, TB_EINVAL, "tb_outbox_put: %s is required", field);
    sqlite3_stmt *st;
    if (prepare(db,
                "INSERT INTO tb_outbox(id, type, routing_key, body, key) VALUES (?1, ?2, ?3, ?4, ?5)",
                &st, err, "tb_outbox_put") != 0)
        return TB_EIO;
    if (key)
        sqlite3_bind_text(st, 5, key, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 5);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, type, -1, SQLITE_STATIC);
    if (routing_key)
        sqlite3_bind_text(st, 3, routing_key, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 3);
    /* A NULL pointer would bind SQL NULL: an empty body is an empty blob. */
    sqlite3_bind_blob64(st, 4, len ? body : "", (sqlite3_uint64)len, SQLITE_STATIC);
    int ret = 0;
    if (sqlite3_step(st) != SQLITE_DONE)
        ret = sql_error(db, err, "tb_outbox_put");
    sqlite3_finalize(st);
    return ret;
}

long tb_outbox_scan(sqlite3 *db, int64_t after_seq, size_t max,
                    int (*fn)(void *user, const tb_outbox_row *row), void *user, tb_error *err)
{
    if (!db || !fn)
        return tb_error_set(err, TB_EINVAL, "tb_outbox_scan: %s is required", !db ? "db" : "fn");
    if (max == 0)
        return 0;
    sqlite3_stmt *st;
    if (prepare(db,
                "SELECT seq, id, type, routing_key, body, key FROM tb_outbox WHERE seq > ?1"
                " ORDER BY seq LIMIT ?2",
                &st, err, "tb_outbox_scan") != 0)
        return TB_EIO;
    tb_arena *a = tb_arena_new(0);
    if (!a) {
        sqlite3_finalize(st);
        return tb_error_set(err, TB_ENOMEM, "tb_outbox_scan: out of memory");
    }
    long visited = 0;
    long ret = 0;
    int64_t cursor = after_seq;
    for (;;) {
        size_t want = max - (size_t)visited;
        if (want > OUTBOX_CHUNK)
            want = OUTBOX_CHUNK;
        tb_arena_reset(a);
        tb_outbox_row *chunk = tb_arena_calloc(a, want, sizeof *chunk);
        size_t got = 0;
        int rc = SQLITE_DONE;
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, cursor);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)want);
        while (chunk && got < want && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            tb_outbox_row *r = &chunk[got];
            int key_null = sqlite3_column_type(st, 3) == SQLITE_NULL;
            r->seq = sqlite3_column_int64(st, 0);
            r->id = tb_arena_strdup(a, col_text(st, 1, 0));
            r->type = tb_arena_strdup(a, col_text(st, 2, 0));
            r->routing_key = tb_arena_strdup(a, col_text(st, 3, 1));
            int okey_null = sqlite3_column_type(st, 5) == SQLITE_NULL;
            r->key = okey_null ? NULL : tb_arena_strdup(a, col_text(st, 5, 0));
            const void *b = sqlite3_column_blob(st, 4);
            r->len = (size_t)sqlite3_column_bytes(st, 4);
            char *copy = tb_arena_alloc(a, r->len + 1);
            if (!r->id || !r->type || (!r->routing_key && !key_null) || (!r->key && !okey_null) ||
                !copy) {
                chunk = NULL;
                break;
            }
            if (r->len)
                memcpy(copy, b, r->len);
            copy[r->len] = '\0'; /* convenience for text bodies; len is the truth */
            r->body = copy;
            got++;
        }
        if (!chunk) {
            ret = tb_error_set(err, TB_ENOMEM, "tb_outbox_scan: out of memory");
            break;
        }
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
            ret = sql_error(db, err, "tb_outbox_scan");
            break;
        }
        sqlite3_reset(st); /* ends the read before the callbacks run */
        int stop = 0;
        for (size_t i = 0; i < got; i++) {
            visited++;
            cursor = chunk[i].seq;
            int r = fn(user, &chunk[i]);
            if (r != 0) {
                stop = 1;
                ret = r < 0 ? r : 0;
                break;
            }
        }
        if (stop || got < want || (size_t)visited >= max)
            break;
    }
    sqlite3_finalize(st);
    tb_arena_free(a);
    return ret < 0 ? ret : visited;
}

int tb_outbox_delete(sqlite3 *db, int64_t seq, tb_error *err)
{
    if (!db)
        return tb_error_set(err, TB_EINVAL, "tb_outbox_delete: db is NULL");
    sqlite3_stmt *st;
    if (prepare(db, "DELETE FROM tb_outbox WHERE seq = ?1", &st, err, "tb_outbox_delete") != 0)
        return TB_EIO;
    sqlite3_bind_int64(st, 1, seq);
    int ret = 0;
    if (sqlite3_step(st) != SQLITE_DONE)
        ret = sql_error(db, err, "tb_outbox_delete");
    sqlite3_finalize(st);
    return ret;
}

long tb_outbox_pending(sqlite3 *db, tb_error *err)
{
    if (!db)
        return tb_error_set(err, TB_EINVAL, "tb_outbox_pending: db is NULL");
    sqlite3_stmt *st;
    if (prepare(db, "SELECT COUNT(*) FROM tb_outbox", &st, err, "tb_outbox_pending") != 0)
        return TB_EIO;
    long n;
    if (sqlite3_step(st) == SQLITE_ROW)
        n = (long)sqlite3_column_int64(st, 0);
    else
        n = sql_error(db, err, "tb_outbox_pending");
    sqlite3_finalize(st);
    return n;
}

/* ---- dedupe record ---- */

int tb_dedupe_init(sqlite3 *db, tb_error *err)
{
    if (!db)
        return tb_error_set(err, TB_EINVAL, "tb_dedupe_init: db is NULL");
    /* seq numbers a consumer's records 1, 2, 3, ... (newest highest): rows are only ever deleted
     * from the oldest end, so the records beyond `keep` are exactly those with
     * seq <= newest - keep, found through the (consumer, seq) index without counting. */
    return exec_sql(db,
                    "CREATE TABLE IF NOT EXISTS tb_dedupe ("
                    " consumer TEXT NOT NULL,"
                    " id TEXT NOT NULL,"
                    " seq INTEGER NOT NULL,"
                    " seen_at TEXT NOT NULL DEFAULT " TB__NOW ","
                    " PRIMARY KEY(consumer, id)) WITHOUT ROWID;"
                    "CREATE UNIQUE INDEX IF NOT EXISTS tb_dedupe_seq ON tb_dedupe(consumer, seq);",
                    err, "tb_dedupe_init");
}

int tb_dedupe_seen(sqlite3 *db, const char *consumer, const char *id, tb_error *err)
{
    if (!db || missing(consumer) || missing(id))
        return tb_error_set(err, TB_EINVAL, "tb_dedupe_seen: %s is required",
                            !db ? "db" : missing(consumer) ? "consumer" : "id");
    sqlite3_stmt *st;
    if (prepare(db, "SELECT 1 FROM tb_dedupe WHERE consumer = ?1 AND id = ?2", &st, err,
                "tb_dedupe_seen") != 0)
        return TB_EIO;
    sqlite3_bind_text(st, 1, consumer, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int ret = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : sql_error(db, err, "tb_dedupe_seen");
    sqlite3_finalize(st);
    return ret;
}

/* Deletes the records of `consumer` beyond the newest `keep`, given the newest seq, once there
 * are more than DEDUPE_SLACK of them, at most DEDUPE_BATCH at a time. */
static int dedupe_prune(sqlite3 *db, const char *consumer, int64_t newest, int64_t keep,
                        tb_error *err)
{
    int64_t cut = newest - keep; /* records with seq <= cut go */
    if (cut <= DEDUPE_SLACK)
        return 0; /* the oldest seq is >= 1, so there are at most DEDUPE_SLACK to delete */
    sqlite3_stmt *st;
    if (prepare(db, "SELECT seq FROM tb_dedupe WHERE consumer = ?1 ORDER BY seq LIMIT 1", &st, err,
                "tb_dedupe_mark") != 0)
        return TB_EIO;
    sqlite3_bind_text(st, 1, consumer, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int64_t oldest = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : newest;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return sql_error(db, err, "tb_dedupe_mark");
    if (cut - oldest + 1 <= DEDUPE_SLACK)
        return 0;
    if (prepare(db, "DELETE FROM tb_dedupe WHERE consumer = ?1 AND seq <= ?2 AND seq < ?3", &st,
                err, "tb_dedupe_mark") != 0)
        return TB_EIO;
    sqlite3_bind_text(st, 1, consumer, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, cut);
    sqlite3_bind_int64(st, 3, oldest + DEDUPE_BATCH);
    int ret = 0;
    if (sqlite3_step(st) != SQLITE_DONE)
        ret = sql_error(db, err, "tb_dedupe_mark");
    sqlite3_finalize(st);
    return ret;
}

int tb_dedupe_mark(sqlite3 *db, const char *consumer, const char *id, size_t keep, tb_error *err)
{
    if (!db || missing(consumer) || missing(id))
        return tb_error_set(err, TB_EINVAL, "tb_dedupe_mark: %s is required",
                            !db ? "db" : missing(consumer) ? "consumer" : "id");
    if (keep == 0)
        keep = DEDUPE_DEFAULT_KEEP;
    sqlite3_stmt *st;
    if (prepare(db,
                "INSERT OR IGNORE INTO tb_dedupe(consumer, id, seq) VALUES (?1, ?2, COALESCE(("
                "SELECT seq FROM tb_dedupe WHERE consumer = ?1 ORDER BY seq DESC LIMIT 1), 0) + 1)"
                " RETURNING seq",
                &st, err, "tb_dedupe_mark") != 0)
        return TB_EIO;
    sqlite3_bind_text(st, 1, consumer, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    int64_t seq = 0;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        seq = sqlite3_column_int64(st, 0);
        rc = sqlite3_step(st);
    }
    int ret = rc == SQLITE_DONE ? 0 : sql_error(db, err, "tb_dedupe_mark");
    sqlite3_finalize(st);
    if (ret != 0)
        return ret;
    if (seq == 0)
        return 1; /* ignored: already recorded */
    if (keep < (size_t)(INT64_MAX / 2)) {
        ret = dedupe_prune(db, consumer, seq, (int64_t)keep, err);
        if (ret != 0)
            return ret;
    }
    return 0;
}

int tb_dedupe_recent(sqlite3 *db, const char *consumer, size_t keep,
                     void (*fn)(void *user, const char *id), void *user, tb_error *err)
{
    if (!db || missing(consumer) || !fn)
        return tb_error_set(err, TB_EINVAL, "tb_dedupe_recent: db, consumer and fn are required");
    sqlite3_stmt *st;
    if (prepare(db,
                "SELECT id FROM (SELECT id, seq FROM tb_dedupe WHERE consumer = ?1 "
                "ORDER BY seq DESC LIMIT ?2) ORDER BY seq ASC",
                &st, err, "tb_dedupe_recent") != 0)
        return TB_EIO;
    sqlite3_bind_text(st, 1, consumer, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, keep ? (sqlite3_int64)keep : 100000);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        fn(user, (const char *)sqlite3_column_text(st, 0));
    int ret = rc == SQLITE_DONE ? 0 : sql_error(db, err, "tb_dedupe_recent");
    sqlite3_finalize(st);
    return ret;
}

/* ---- a consumer's dedupe marker: tb_dedupe_mark with its statement prepared once ---- */

struct tb_dedupe_marker {
    sqlite3 *db;
    char *consumer;
    size_t keep;
    sqlite3_stmt *insert;
    unsigned since_prune;
};

tb_dedupe_marker *tb_dedupe_marker_new(sqlite3 *db, const char *consumer, size_t keep,
                                       tb_error *err)
{
    if (!db || missing(consumer)) {
        tb_error_set(err, TB_EINVAL, "tb_dedupe_marker_new: db and consumer are required");
        return NULL;
    }
    tb_dedupe_marker *m = calloc(1, sizeof *m);
    if (!m || !(m->consumer = strdup(consumer))) {
        free(m);
        tb_error_set(err, TB_ENOMEM, "tb_dedupe_marker_new: out of memory");
        return NULL;
    }
    m->db = db;
    m->keep = keep ? keep : DEDUPE_DEFAULT_KEEP;
    if (sqlite3_prepare_v3(db,
                           "INSERT OR IGNORE INTO tb_dedupe(consumer, id, seq) VALUES (?1, ?2, "
                           "COALESCE((SELECT seq FROM tb_dedupe WHERE consumer = ?1 ORDER BY seq "
                           "DESC LIMIT 1), 0) + 1) RETURNING seq",
                           -1, SQLITE_PREPARE_PERSISTENT, &m->insert, NULL) != SQLITE_OK) {
        sql_error(db, err, "tb_dedupe_marker_new");
        tb_dedupe_marker_free(m);
        return NULL;
    }
    sqlite3_bind_text(m->insert, 1, m->consumer, -1, SQLITE_STATIC);
    return m;
}

int tb_dedupe_marker_mark(tb_dedupe_marker *m, const char *id, tb_error *err)
{
    if (!m || missing(id))
        return tb_error_set(err, TB_EINVAL, "tb_dedupe_marker_mark: id is required");
    sqlite3_reset(m->insert);
    sqlite3_bind_text(m->insert, 2, id, -1, SQLITE_STATIC);
    int64_t seq = 0;
    int rc = sqlite3_step(m->insert);
    if (rc == SQLITE_ROW) {
        seq = sqlite3_column_int64(m->insert, 0);
        rc = sqlite3_step(m->insert);
    }
    int ret = rc == SQLITE_DONE ? 0 : sql_error(m->db, err, "tb_dedupe_marker_mark");
    sqlite3_reset(m->insert);
    sqlite3_clear_bindings(m->insert);
    sqlite3_bind_text(m->insert, 1, m->consumer, -1, SQLITE_STATIC);
    if (ret != 0)
        return ret;
    if (seq == 0)
        return 1;
    /* pruning looks at the table only every so often: the bound stays keep + slack + 64 */
    if (++m->since_prune >= 64 && m->keep < (size_t)(INT64_MAX / 2)) {
        m->since_prune = 0;
        return dedupe_prune(m->db, m->consumer, seq, (int64_t)m->keep, err);
    }
    return 0;
}

void tb_dedupe_marker_free(tb_dedupe_marker *m)
{
    if (!m)
        return;
    sqlite3_finalize(m->insert);
    free(m->consumer);
    free(m);
}
