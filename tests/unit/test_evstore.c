/* Unit tests of runtime/events/store.c: the SQLite event store (append, expected versions,
 * read, replay), the transactional outbox and the dedupe record, on temporary database files. */
#include "tablium/error.h"
#include "tablium/evstore.h"
#include "tablium/store.h"

#include <check.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char DIR_[64];
static char PATH[128];
static sqlite3 *DB;
static tb_error E;

static sqlite3 *open_db(void)
{
    tb_error e = TB_ERROR_INIT;
    sqlite3 *db = tb_store_open(PATH, NULL, &e);
    ck_assert_msg(db != NULL, "open %s: %s", PATH, e.message);
    ck_assert_int_eq(tb_evstore_init(db, &e), 0);
    ck_assert_int_eq(tb_outbox_init(db, &e), 0);
    ck_assert_int_eq(tb_dedupe_init(db, &e), 0);
    tb_error_deinit(&e);
    return db;
}

static void setup(void)
{
    strcpy(DIR_, "/tmp/tb-evstore-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(DIR_));
    snprintf(PATH, sizeof PATH, "%s/test.db", DIR_);
    tb_error_init(&E);
    DB = open_db();
}

static void teardown(void)
{
    tb_store_close(DB);
    DB = NULL;
    tb_error_deinit(&E);
    const char *suffix[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < sizeof suffix / sizeof *suffix; i++) {
        char p[160];
        snprintf(p, sizeof p, "%s%s", PATH, suffix[i]);
        unlink(p);
    }
    rmdir(DIR_);
}

static void exec_ok(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    ck_assert_msg(rc == SQLITE_OK, "%s: %s", sql, msg ? msg : "?");
    sqlite3_free(msg);
}

static long long query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    long long v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static tb_new_event ev(const char *id, const char *type, const char *data)
{
    tb_new_event e = {id, type, "1.0", data, NULL};
    return e;
}

/* ---- collecting callbacks ---- */

#define MAXC 2048
typedef struct collected {
    size_t n;
    int stop_after; /* 0: never; else stop (returning stop_value) at that many */
    int stop_value;
    int64_t seq[MAXC];
    int64_t version[MAXC];
    char id[MAXC][48];
    char type[MAXC][48];
    char stream[MAXC][32];
    char data[MAXC][64];
    char meta[MAXC][64]; /* "(null)" for NULL */
    char sv[MAXC][8];
    char at[MAXC][32];
} collected;

static int collect(void *user, const tb_stored_event *e)
{
    collected *c = user;
    ck_assert_uint_lt(c->n, MAXC);
    size_t i = c->n++;
    c->seq[i] = e->global_seq;
    c->version[i] = e->version;
    snprintf(c->id[i], sizeof c->id[i], "%s", e->id);
    snprintf(c->type[i], sizeof c->type[i], "%s", e->type);
    snprintf(c->stream[i], sizeof c->stream[i], "%s", e->stream);
    snprintf(c->data[i], sizeof c->data[i], "%s", e->data);
    snprintf(c->meta[i], sizeof c->meta[i], "%s", e->metadata ? e->metadata : "(null)");
    snprintf(c->sv[i], sizeof c->sv[i], "%s", e->schema_version);
    snprintf(c->at[i], sizeof c->at[i], "%s", e->recorded_at);
    if (c->stop_after && (int)c->n == c->stop_after)
        return c->stop_value;
    return 0;
}

static collected *new_collected(void)
{
    collected *c = calloc(1, sizeof *c);
    ck_assert_ptr_nonnull(c);
    return c;
}

/* ---- event store ---- */

START_TEST(append_read_and_version)
{
    ck_assert_int_eq(tb_evstore_version(DB, "wallet-1", &E), 0);
    tb_new_event evs[3] = {ev("e1", "wallet.created", "{\"a\":1}"),
                           ev("e2", "wallet.credited", "{\"a\":2}"),
                           ev("e3", "wallet.debited", "{\"a\":3}")};
    evs[1].metadata = "{\"m\":true}";
    int64_t v = -99;
    ck_assert_int_eq(tb_evstore_append(DB, "wallet-1", TB_EVSTORE_NO_STREAM, evs, 3, &v, &E), 0);
    ck_assert_int_eq(v, 3);
    ck_assert_int_eq(tb_evstore_version(DB, "wallet-1", &E), 3);
    tb_new_event e4 = ev("e4", "wallet.credited", "{\"a\":4}");
    ck_assert_int_eq(tb_evstore_append(DB, "wallet-1", 3, &e4, 1, &v, &E), 0);
    ck_assert_int_eq(v, 4);
    ck_assert_int_eq(tb_evstore_append(DB, "other", TB_EVSTORE_NO_STREAM, &(tb_new_event){
                         "o1", "x", "2.0", "[]", NULL}, 1, NULL, &E), 0);
    ck_assert_int_eq(tb_evstore_version(DB, "other", &E), 1);
    ck_assert_int_eq(tb_evstore_version(DB, "wallet-1", &E), 4);
    ck_assert_int_eq(tb_evstore_version(DB, "nobody", &E), 0);

    collected *c = new_collected();
    ck_assert_int_eq(tb_evstore_read(DB, "wallet-1", 1, collect, c, &E), 0);
    ck_assert_uint_eq(c->n, 4);
    for (size_t i = 0; i < 4; i++) {
        ck_assert_int_eq(c->version[i], (int64_t)i + 1);
        ck_assert_str_eq(c->stream[i], "wallet-1");
        ck_assert_str_eq(c->sv[i], "1.0");
        if (i)
            ck_assert_int_gt(c->seq[i], c->seq[i - 1]);
        /* 2026-11-24T10:00:00.123Z */
        ck_assert_uint_eq(strlen(c->at[i]), 24);
        ck_assert_int_eq(c->at[i][10], 'T');
        ck_assert_int_eq(c->at[i][23], 'Z');
    }
    ck_assert_str_eq(c->id[0], "e1");
    ck_assert_str_eq(c->type[0], "wallet.created");
    ck_assert_str_eq(c->data[2], "{\"a\":3}");
    ck_assert_str_eq(c->meta[0], "(null)");
    ck_assert_str_eq(c->meta[1], "{\"m\":true}");
    ck_assert_str_eq(c->id[3], "e4");

    memset(c, 0, sizeof *c);
    ck_assert_int_eq(tb_evstore_read(DB, "wallet-1", 3, collect, c, &E), 0);
    ck_assert_uint_eq(c->n, 2);
    ck_assert_str_eq(c->id[0], "e3");
    ck_assert_str_eq(c->id[1], "e4");
    memset(c, 0, sizeof *c);
    ck_assert_int_eq(tb_evstore_read(DB, "nobody", 1, collect, c, &E), 0);
    ck_assert_uint_eq(c->n, 0);
    free(c);

    /* An empty batch only checks. */
    ck_assert_int_eq(tb_evstore_append(DB, "wallet-1", 4, NULL, 0, &v, &E), 0);
    ck_assert_int_eq(v, 4);
    ck_assert_int_eq(tb_evstore_append(DB, "wallet-1", 2, NULL, 0, &v, &E), TB_ECONFLICT);
}
END_TEST

START_TEST(expected_version_conflicts_write_nothing)
{
    tb_new_event two[2] = {ev("a1", "t", "{}"), ev("a2", "t", "{}")};
    ck_assert_int_eq(tb_evstore_append(DB, "s", TB_EVSTORE_NO_STREAM, two, 2, NULL, &E), 0);

    /* NO_STREAM on an existing stream */
    tb_new_event b[2] = {ev("b1", "t", "{}"), ev("b2", "t", "{}")};
    int64_t v = -7;
    ck_assert_int_eq(tb_evstore_append(DB, "s", TB_EVSTORE_NO_STREAM, b, 2, &v, &E),
                     TB_ECONFLICT);
    ck_assert_int_eq(E.code, TB_ECONFLICT);
    ck_assert_msg(strstr(E.message, "expected version 0") && strstr(E.message, "actual 2"),
                  "message: %s", E.message);
    ck_assert_int_eq(v, -7); /* untouched on failure */
    /* stale version */
    ck_assert_int_eq(tb_evstore_append(DB, "s", 1, b, 2, NULL, &E), TB_ECONFLICT);
    ck_assert_msg(strstr(E.message, "expected version 1") && strstr(E.message, "actual 2"),
                  "message: %s", E.message);
    /* a version from the future */
    ck_assert_int_eq(tb_evstore_append(DB, "s", 5, b, 2, NULL, &E), TB_ECONFLICT);
    ck_assert_int_eq(tb_evstore_version(DB, "s", &E), 2);
    ck_assert_int_eq(query_int(DB, "SELECT COUNT(*) FROM tb_events"), 2);
    ck_assert_int_eq(query_int(DB, "SELECT COUNT(*) FROM tb_events WHERE id IN ('b1','b2')"), 0);

    /* ANY appends whatever the version; the same ids now go in (nothing was left behind) */
    ck_assert_int_eq(tb_evstore_append(DB, "s", TB_EVSTORE_ANY, b, 2, &v, &E), 0);
    ck_assert_int_eq(v, 4);
    tb_new_event c1 = ev("c1", "t", "{}");
    ck_assert_int_eq(tb_evstore_append(DB, "fresh", TB_EVSTORE_ANY, &c1, 1, &v, &E), 0);
    ck_assert_int_eq(v, 1);
    /* the right version goes in */
    tb_new_event c2 = ev("c2", "t", "{}");
    ck_assert_int_eq(tb_evstore_append(DB, "s", 4, &c2, 1, &v, &E), 0);
    ck_assert_int_eq(v, 5);
}
END_TEST

START_TEST(invalid_arguments_name_the_field)
{
    tb_new_event e = ev("x1", "t", "{}");
    e.type = NULL;
    ck_assert_int_eq(tb_evstore_append(DB, "s", TB_EVSTORE_ANY, &e, 1, NULL, &E), TB_EINVAL);
    ck_assert_ptr_nonnull(strstr(E.message, "type"));
    tb_new_event two[2] = {ev("x1", "t", "{}"), ev("x2", "t", "{}")};
    two[1].schema_version = "";
    ck_assert_int_eq(tb_evstore_append(DB, "s", TB_EVSTORE_ANY, two, 2, NULL, &E), TB_EINVAL);
    ck_assert_ptr_nonnull(strstr(E.message, "schema_version"));
    ck_assert_ptr_nonnull(strstr(E.message, "event 1"));
    two[1].schema_version = "1.0";
    two[0].data = NULL;
    ck_assert_int_eq(tb_evstore_append(DB, "s", TB_EVSTORE_ANY, two, 2, NULL, &E), TB_EINVAL);
    ck_assert_ptr_nonnull(strstr(E.message, "data"));
    two[0].data = "{}";
    two[0].id = NULL;
    ck_assert_int_eq(tb_evstore_append(DB, "s", TB_EVSTORE_ANY, two, 2, NULL, &E), TB_EINVAL);
    ck_assert_ptr_nonnull(strstr(E.message, "id"));
    two[0].id = "x1";
    ck_assert_int_eq(tb_evstore_append(DB, NULL, TB_EVSTORE_ANY, two, 2, NULL, &E), TB_EINVAL);
    ck_assert_ptr_nonnull(strstr(E.message, "stream"));
    ck_assert_int_eq(tb_evstore_append(DB, "s", -2, two, 2, NULL, &E), TB_EINVAL);
    ck_assert_int_eq(tb_evstore_append(DB, "s", TB_EVSTORE_ANY, NULL, 2, NULL, &E), TB_EINVAL);
    ck_assert_int_eq(query_int(DB, "SELECT COUNT(*) FROM tb_events"), 0);
    ck_assert_int_eq(tb_evstore_read(DB, "s", 1, NULL, NULL, &E), TB_EINVAL);
    ck_assert_int_eq(tb_outbox_put(DB, "i", NULL, "rk", "x", 1, &E), TB_EINVAL);
    ck_assert_ptr_nonnull(strstr(E.message, "type"));
    ck_assert_int_eq(tb_outbox_put(DB, "i", "t", "rk", NULL, 3, &E), TB_EINVAL);
    ck_assert_ptr_nonnull(strstr(E.message, "body"));
    ck_assert_int_eq(tb_dedupe_mark(DB, "c", "", 0, &E), TB_EINVAL);
    ck_assert_int_eq(tb_dedupe_seen(DB, NULL, "i", &E), TB_EINVAL);
    ck_assert_ptr_nonnull(strstr(E.message, "consumer"));
}
END_TEST

START_TEST(duplicate_event_id_is_a_conflict)
{
    tb_new_event a = ev("dup-1", "t", "{}");
    ck_assert_int_eq(tb_evstore_append(DB, "s1", TB_EVSTORE_NO_STREAM, &a, 1, NULL, &E), 0);
    /* in another stream, second of a batch: the first of the batch must not stay */
    tb_new_event b[2] = {ev("new-1", "t", "{}"), ev("dup-1", "t", "{}")};
    ck_assert_int_eq(tb_evstore_append(DB, "s2", TB_EVSTORE_NO_STREAM, b, 2, NULL, &E),
                     TB_ECONFLICT);
    ck_assert_msg(strstr(E.message, "dup-1") != NULL, "message: %s", E.message);
    ck_assert_int_eq(tb_evstore_version(DB, "s2", &E), 0);
    ck_assert_int_eq(query_int(DB, "SELECT COUNT(*) FROM tb_events WHERE id='new-1'"), 0);
    /* twice in the same batch */
    tb_new_event c[2] = {ev("twice", "t", "{}"), ev("twice", "t", "{}")};
    ck_assert_int_eq(tb_evstore_append(DB, "s1", 1, c, 2, NULL, &E), TB_ECONFLICT);
    ck_assert_ptr_nonnull(strstr(E.message, "twice"));
    ck_assert_int_eq(tb_evstore_version(DB, "s1", &E), 1);
    ck_assert_int_eq(query_int(DB, "SELECT COUNT(*) FROM tb_events"), 1);
    /* the same with extended result codes on (SQLITE_CONSTRAINT_UNIQUE) */
    sqlite3_extended_result_codes(DB, 1);
    ck_assert_int_eq(tb_evstore_append(DB, "s3", TB_EVSTORE_ANY, &a, 1, NULL, &E), TB_ECONFLICT);
    ck_assert_ptr_nonnull(strstr(E.message, "duplicate event id dup-1"));
    /* the connection is not left inside a transaction */
    ck_assert_int_ne(sqlite3_get_autocommit(DB), 0);
}
END_TEST

START_TEST(append_nests_in_the_callers_transaction)
{
    tb_new_event a = ev("r1", "t", "{}"), b = ev("r2", "t", "{}");
    exec_ok(DB, "BEGIN");
    ck_assert_int_eq(tb_evstore_append(DB, "s", TB_EVSTORE_NO_STREAM, &a, 1, NULL, &E), 0);
    ck_assert_int_eq(tb_evstore_append(DB, "s", 1, &b, 1, NULL, &E), 0);
    ck_assert_int_eq(tb_evstore_version(DB, "s", &E), 2); /* visible inside */
    ck_assert_int_eq(sqlite3_get_autocommit(DB), 0);       /* still the caller's transaction */
    exec_ok(DB, "ROLLBACK");
    ck_assert_int_eq(tb_evstore_version(DB, "s", &E), 0);
    ck_assert_int_eq(query_int(DB, "SELECT COUNT(*) FROM tb_events"), 0);

    exec_ok(DB, "BEGIN IMMEDIATE");
    ck_assert_int_eq(tb_evstore_append(DB, "s", TB_EVSTORE_NO_STREAM, &a, 1, NULL, &E), 0);
    /* a failing append undoes only itself */
    tb_new_event c[2] = {ev("r3", "t", "{}"), ev("r1", "t", "{}")};
    ck_assert_int_eq(tb_evstore_append(DB, "s", 1, c, 2, NULL, &E), TB_ECONFLICT);
    ck_assert_int_eq(tb_evstore_append(DB, "s", 0, &b, 1, NULL, &E), TB_ECONFLICT);
    ck_assert_int_eq(sqlite3_get_autocommit(DB), 0);
    ck_assert_int_eq(tb_evstore_append(DB, "s", 1, &b, 1, NULL, &E), 0);
    ck_assert_int_eq(tb_outbox_put(DB, "r2", "t", "t", "{}", 2, &E), 0);
    exec_ok(DB, "COMMIT");
    ck_assert_int_eq(tb_evstore_version(DB, "s", &E), 2);
    ck_assert_int_eq(query_int(DB, "SELECT COUNT(*) FROM tb_events"), 2);
    ck_assert_int_eq(query_int(DB, "SELECT COUNT(*) FROM tb_events WHERE id='r3'"), 0);
    ck_assert_int_eq(tb_outbox_pending(DB, &E), 1);

    /* the outbox row goes with a rolled back transaction too */
    exec_ok(DB, "BEGIN");
    ck_assert_int_eq(tb_outbox_put(DB, "r9", "t", "t", "{}", 2, &E), 0);
    ck_assert_int_eq(tb_dedupe_mark(DB, "svc", "r9", 0, &E), 0);
    exec_ok(DB, "ROLLBACK");
    ck_assert_int_eq(tb_outbox_pending(DB, &E), 1);
    ck_assert_int_eq(tb_dedupe_seen(DB, "svc", "r9", &E), 0);
}
END_TEST

/* Optimistic concurrency: writers read the version, append with it, retry on conflict. */
#define WRITERS 2
#define PER_WRITER 150

typedef struct writer {
    int n;
    int in_txn; /* append inside the writer's own BEGIN ... COMMIT, with an outbox row */
    long conflicts;
    int failures;
    char last_error[256];
} writer;

static void *writer_main(void *p)
{
    writer *w = p;
    tb_error e = TB_ERROR_INIT;
    sqlite3 *db = tb_store_open(PATH, NULL, &e);
    if (!db) {
        w->failures++;
        snprintf(w->last_error, sizeof w->last_error, "%s", e.message);
        tb_error_deinit(&e);
        return NULL;
    }
    for (int i = 0; i < PER_WRITER && w->failures == 0; i++) {
        char id[48], data[64];
        snprintf(id, sizeof id, "w%d-%d", w->n, i);
        tb_new_event x = {id, "counter.bumped", "1.0", data, NULL};
        for (long attempt = 0;; attempt++) {
            int64_t v = tb_evstore_version(db, "counter", &e);
            if (v < 0) {
                w->failures++;
                break;
            }
            /* the version this event is meant to get: checked against the stored one */
            snprintf(data, sizeof data, "{\"at\":%" PRId64 "}", v + 1);
            int rc;
            if (w->in_txn) {
                /* a deferred BEGIN that has read nothing yet: append takes the write lock */
                rc = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK ? 0 : TB_EIO;
                if (rc == 0)
                    rc = tb_evstore_append(db, "counter", v, &x, 1, NULL, &e);
                if (rc == 0)
                    rc = tb_outbox_put(db, id, "counter.bumped", NULL, data, strlen(data), &e);
                if (rc == 0 && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
                    rc = tb_error_set(&e, TB_EIO, "COMMIT: %s", sqlite3_errmsg(db));
                if (rc != 0)
                    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            } else {
                rc = tb_evstore_append(db, "counter", v, &x, 1, NULL, &e);
            }
            if (rc == 0)
                break;
            if (rc != TB_ECONFLICT || attempt > 100000) {
                w->failures++;
                break;
            }
            w->conflicts++;
        }
        if (w->failures)
            snprintf(w->last_error, sizeof w->last_error, "%s", e.message);
    }
    tb_store_close(db);
    tb_error_deinit(&e);
    return NULL;
}

/* _i = 0: each append on its own; 1: inside the writers' own transactions (with the outbox). */
START_TEST(concurrent_writers_leave_a_gapless_stream)
{
    pthread_t th[WRITERS];
    writer w[WRITERS];
    memset(w, 0, sizeof w);
    for (int i = 0; i < WRITERS; i++) {
        w[i].n = i;
        w[i].in_txn = _i;
        ck_assert_int_eq(pthread_create(&th[i], NULL, writer_main, &w[i]), 0);
    }
    for (int i = 0; i < WRITERS; i++) {
        pthread_join(th[i], NULL);
        ck_assert_msg(w[i].failures == 0, "writer %d: %s", i, w[i].last_error);
    }
    ck_assert_int_eq(tb_evstore_version(DB, "counter", &E), WRITERS * PER_WRITER);
    collected *c = new_collected();
    ck_assert_int_eq(tb_evstore_read(DB, "counter", 1, collect, c, &E), 0);
    ck_assert_uint_eq(c->n, WRITERS * PER_WRITER);
    int seen[WRITERS][PER_WRITER];
    memset(seen, 0, sizeof seen);
    int last[WRITERS] = {-1, -1};
    for (size_t i = 0; i < c->n; i++) {
        ck_assert_int_eq(c->version[i], (int64_t)i + 1);
        long long at = -1;
        ck_assert_int_eq(sscanf(c->data[i], "{\"at\":%lld}", &at), 1);
        ck_assert_int_eq(at, c->version[i]); /* appended where its writer saw the stream */
        int wn, k;
        ck_assert_int_eq(sscanf(c->id[i], "w%d-%d", &wn, &k), 2);
        ck_assert(wn >= 0 && wn < WRITERS && k >= 0 && k < PER_WRITER);
        ck_assert_int_eq(seen[wn][k], 0);
        seen[wn][k] = 1;
        ck_assert_int_gt(k, last[wn]); /* each writer's events in its own order */
        last[wn] = k;
    }
    free(c);
    /* the stream's events are exactly the writers' events, and the outbox went with them */
    ck_assert_int_eq(query_int(DB, "SELECT COUNT(*) FROM tb_events"), WRITERS * PER_WRITER);
    ck_assert_int_eq(tb_outbox_pending(DB, &E), _i ? WRITERS * PER_WRITER : 0);
}
END_TEST

START_TEST(replay_in_global_order_with_filters)
{
    /* interleave two streams and two types */
    const char *streams[] = {"a", "b"};
    const char *types[] = {"x", "y", "x"};
    for (int i = 0; i < 12; i++) {
        char id[16], data[32];
        snprintf(id, sizeof id, "g%02d", i);
        snprintf(data, sizeof data, "{\"i\":%d}", i);
        tb_new_event e = ev(id, types[i % 3], data);
        ck_assert_int_eq(tb_evstore_append(DB, streams[i % 2], TB_EVSTORE_ANY, &e, 1, NULL, &E),
                         0);
    }
    collected *c = new_collected();
    ck_assert_int_eq(tb_evstore_replay(DB, 0, NULL, collect, c, &E), 0);
    ck_assert_uint_eq(c->n, 12);
    for (size_t i = 0; i < 12; i++) {
        char id[32];
        snprintf(id, sizeof id, "g%02zu", i);
        ck_assert_str_eq(c->id[i], id);
        ck_assert_str_eq(c->stream[i], streams[i % 2]);
        ck_assert_int_eq(c->version[i], (int64_t)i / 2 + 1);
        if (i)
            ck_assert_int_gt(c->seq[i], c->seq[i - 1]);
    }
    int64_t third = c->seq[2];

    memset(c, 0, sizeof *c);
    ck_assert_int_eq(tb_evstore_replay(DB, 0, "x", collect, c, &E), 0);
    ck_assert_uint_eq(c->n, 8); /* i % 3 in {0, 2} */
    for (size_t i = 0; i < c->n; i++) {
        ck_assert_str_eq(c->type[i], "x");
        if (i)
            ck_assert_int_gt(c->seq[i], c->seq[i - 1]);
    }

    memset(c, 0, sizeof *c);
    ck_assert_int_eq(tb_evstore_replay(DB, third, NULL, collect, c, &E), 0);
    ck_assert_uint_eq(c->n, 9);
    ck_assert_str_eq(c->id[0], "g03");

    memset(c, 0, sizeof *c);
    ck_assert_int_eq(tb_evstore_replay(DB, third, "y", collect, c, &E), 0);
    ck_assert_uint_eq(c->n, 3); /* g04 g07 g10 */
    ck_assert_str_eq(c->id[0], "g04");
    ck_assert_str_eq(c->id[2], "g10");

    memset(c, 0, sizeof *c);
    ck_assert_int_eq(tb_evstore_replay(DB, 0, "nothing", collect, c, &E), 0);
    ck_assert_uint_eq(c->n, 0);
    free(c);
}
END_TEST

START_TEST(callback_stop_value_is_returned)
{
    for (int i = 0; i < 5; i++) {
        char id[16];
        snprintf(id, sizeof id, "s%d", i);
        tb_new_event e = ev(id, "t", "{}");
        ck_assert_int_eq(tb_evstore_append(DB, "s", i, &e, 1, NULL, &E), 0);
    }
    collected *c = new_collected();
    c->stop_after = 2;
    c->stop_value = 42;
    ck_assert_int_eq(tb_evstore_read(DB, "s", 1, collect, c, &E), 42);
    ck_assert_uint_eq(c->n, 2);
    memset(c, 0, sizeof *c);
    c->stop_after = 3;
    c->stop_value = TB_EPROTO;
    ck_assert_int_eq(tb_evstore_replay(DB, 0, NULL, collect, c, &E), TB_EPROTO);
    ck_assert_uint_eq(c->n, 3);
    free(c);
    /* the statement was finished: the connection is usable and not in a transaction */
    ck_assert_int_ne(sqlite3_get_autocommit(DB), 0);
    tb_new_event e = ev("s5", "t", "{}");
    ck_assert_int_eq(tb_evstore_append(DB, "s", 5, &e, 1, NULL, &E), 0);
}
END_TEST

/* A projection rebuild: the callback writes another table through the same connection. */
static int project(void *user, const tb_stored_event *e)
{
    sqlite3 *db = user;
    sqlite3_stmt *st = NULL;
    ck_assert_int_eq(sqlite3_prepare_v2(db,
                                        "INSERT INTO balance(stream, n) VALUES (?1, 1)"
                                        " ON CONFLICT(stream) DO UPDATE SET n = n + 1",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, e->stream, -1, SQLITE_TRANSIENT);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    return 0;
}

START_TEST(replay_feeds_a_projection_on_the_same_connection)
{
    for (int i = 0; i < 7; i++) {
        char id[16];
        snprintf(id, sizeof id, "p%d", i);
        tb_new_event e = ev(id, "t", "{}");
        ck_assert_int_eq(
            tb_evstore_append(DB, i < 4 ? "a" : "b", TB_EVSTORE_ANY, &e, 1, NULL, &E), 0);
    }
    exec_ok(DB, "CREATE TABLE balance(stream TEXT PRIMARY KEY, n INTEGER)");
    exec_ok(DB, "BEGIN IMMEDIATE");
    ck_assert_int_eq(tb_evstore_replay(DB, 0, NULL, project, DB, &E), 0);
    exec_ok(DB, "COMMIT");
    ck_assert_int_eq(query_int(DB, "SELECT n FROM balance WHERE stream='a'"), 4);
    ck_assert_int_eq(query_int(DB, "SELECT n FROM balance WHERE stream='b'"), 3);
}
END_TEST

START_TEST(missing_tables_are_io_errors_with_sqlites_message)
{
    tb_error e = TB_ERROR_INIT;
    sqlite3 *db = tb_store_open(":memory:", NULL, &e);
    ck_assert_ptr_nonnull(db);
    tb_new_event x = ev("m1", "t", "{}");
    ck_assert_int_eq(tb_evstore_append(db, "s", TB_EVSTORE_ANY, &x, 1, NULL, &e), TB_EIO);
    ck_assert_msg(strstr(e.message, "no such table") != NULL, "message: %s", e.message);
    ck_assert_int_eq(tb_evstore_version(db, "s", &e), TB_EIO);
    collected *c = new_collected();
    ck_assert_int_eq(tb_evstore_replay(db, 0, NULL, collect, c, &e), TB_EIO);
    free(c);
    ck_assert_int_eq(tb_outbox_pending(db, &e), TB_EIO);
    ck_assert_int_eq(tb_dedupe_mark(db, "c", "i", 0, &e), TB_EIO);
    ck_assert_int_eq(e.code, TB_EIO);
    ck_assert_int_eq(tb_evstore_init(db, &e), 0);
    ck_assert_int_eq(tb_evstore_init(db, &e), 0); /* idempotent */
    ck_assert_int_eq(tb_evstore_append(db, "s", TB_EVSTORE_ANY, &x, 1, NULL, &e), 0);
    tb_store_close(db);
    tb_error_deinit(&e);
}
END_TEST

/* ---- outbox ---- */

typedef struct outrows {
    size_t n;
    int stop_after;
    int stop_value;
    sqlite3 *delete_on; /* when set, deletes each row it sees (the relay's pattern) */
    int64_t seq[512];
    char id[512][32];
    char key[512][32];
    char okey[512][48]; /* the ordering key, "(null)" when none */
    char body[512][32];
    size_t len[512];
} outrows;

static int collect_row(void *user, const tb_outbox_row *r)
{
    outrows *o = user;
    ck_assert_uint_lt(o->n, 512);
    size_t i = o->n++;
    o->seq[i] = r->seq;
    snprintf(o->id[i], sizeof o->id[i], "%s", r->id);
    snprintf(o->key[i], sizeof o->key[i], "%s", r->routing_key ? r->routing_key : "(null)");
    snprintf(o->okey[i], sizeof o->okey[i], "%s", r->key ? r->key : "(null)");
    ck_assert_ptr_nonnull(r->body);
    ck_assert_uint_le(r->len, sizeof o->body[i]);
    memcpy(o->body[i], r->body, r->len);
    o->len[i] = r->len;
    if (o->delete_on) {
        tb_error e = TB_ERROR_INIT;
        ck_assert_int_eq(tb_outbox_delete(o->delete_on, r->seq, &e), 0);
        tb_error_deinit(&e);
    }
    if (o->stop_after && (int)o->n == o->stop_after)
        return o->stop_value;
    return 0;
}

/* The ordering key travels with the row (the relay sends it in header x-tablium-key). */
START_TEST(outbox_rows_keep_their_ordering_key)
{
    ck_assert_int_eq(tb_outbox_put_keyed(DB, "k1", "wallet.created", "wallet.created",
                                         "0b9d4c8e-1f2a-4e3b-8c7d-6a5f4e3d2c1b", "{}", 2, &E),
                     0);
    ck_assert_int_eq(tb_outbox_put(DB, "k2", "t", "t", "{}", 2, &E), 0);
    outrows *o = calloc(1, sizeof *o);
    ck_assert_int_eq(tb_outbox_scan(DB, 0, 10, collect_row, o, &E), 2);
    ck_assert_str_eq(o->okey[0], "0b9d4c8e-1f2a-4e3b-8c7d-6a5f4e3d2c1b");
    ck_assert_str_eq(o->okey[1], "(null)");
    free(o);
}
END_TEST

/* An outbox table made before the key column existed gets it; its rows scan with no key. */
START_TEST(an_old_outbox_table_gets_the_key_column)
{
    sqlite3_exec(DB, "DROP TABLE tb_outbox", NULL, NULL, NULL);
    ck_assert_int_eq(sqlite3_exec(DB,
                                  "CREATE TABLE tb_outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
                                  " id TEXT NOT NULL, type TEXT NOT NULL, routing_key TEXT,"
                                  " body BLOB NOT NULL, created_at TEXT NOT NULL DEFAULT 'x');"
                                  "INSERT INTO tb_outbox(id, type, routing_key, body)"
                                  " VALUES ('old', 't', 't', '{}');",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    ck_assert_int_eq(tb_outbox_init(DB, &E), 0);
    ck_assert_int_eq(tb_outbox_init(DB, &E), 0); /* idempotent */
    ck_assert_int_eq(tb_outbox_put_keyed(DB, "new", "t", "t", "k-1", "{}", 2, &E), 0);
    outrows *o = calloc(1, sizeof *o);
    ck_assert_int_eq(tb_outbox_scan(DB, 0, 10, collect_row, o, &E), 2);
    ck_assert_str_eq(o->id[0], "old");
    ck_assert_str_eq(o->okey[0], "(null)");
    ck_assert_str_eq(o->okey[1], "k-1");
    free(o);
}
END_TEST

START_TEST(outbox_put_scan_delete_pending)
{
    static const char bin[] = {'a', 0, 'b', 0, 0, 'c'};
    ck_assert_int_eq(tb_outbox_pending(DB, &E), 0);
    ck_assert_int_eq(tb_outbox_put(DB, "o1", "user.registered", "user.registered", "{\"a\":1}", 7,
                                   &E),
                     0);
    ck_assert_int_eq(tb_outbox_put(DB, "o2", "blob", "rk.bin", bin, sizeof bin, &E), 0);
    ck_assert_int_eq(tb_outbox_put(DB, "o3", "empty", NULL, NULL, 0, &E), 0);
    ck_assert_int_eq(tb_outbox_pending(DB, &E), 3);

    outrows *o = calloc(1, sizeof *o);
    ck_assert_ptr_nonnull(o);
    ck_assert_int_eq(tb_outbox_scan(DB, 0, 100, collect_row, o, &E), 3);
    ck_assert_uint_eq(o->n, 3);
    ck_assert_str_eq(o->id[0], "o1");
    ck_assert_str_eq(o->id[1], "o2");
    ck_assert_str_eq(o->id[2], "o3");
    ck_assert_int_lt(o->seq[0], o->seq[1]);
    ck_assert_int_lt(o->seq[1], o->seq[2]);
    ck_assert_str_eq(o->key[0], "user.registered");
    ck_assert_str_eq(o->key[2], "(null)");
    ck_assert_uint_eq(o->len[0], 7);
    ck_assert_int_eq(memcmp(o->body[0], "{\"a\":1}", 7), 0);
    ck_assert_uint_eq(o->len[1], sizeof bin);
    ck_assert_int_eq(memcmp(o->body[1], bin, sizeof bin), 0);
    ck_assert_uint_eq(o->len[2], 0);
    int64_t s1 = o->seq[0], s2 = o->seq[1], s3 = o->seq[2];

    memset(o, 0, sizeof *o);
    ck_assert_int_eq(tb_outbox_scan(DB, 0, 2, collect_row, o, &E), 2); /* max */
    ck_assert_str_eq(o->id[1], "o2");
    memset(o, 0, sizeof *o);
    ck_assert_int_eq(tb_outbox_scan(DB, s1, 100, collect_row, o, &E), 2); /* after_seq */
    ck_assert_str_eq(o->id[0], "o2");
    memset(o, 0, sizeof *o);
    o->stop_after = 1;
    o->stop_value = 1; /* positive: stop, count */
    ck_assert_int_eq(tb_outbox_scan(DB, 0, 100, collect_row, o, &E), 1);
    memset(o, 0, sizeof *o);
    o->stop_after = 2;
    o->stop_value = TB_ECONN; /* negative: returned */
    ck_assert_int_eq(tb_outbox_scan(DB, 0, 100, collect_row, o, &E), TB_ECONN);
    ck_assert_uint_eq(o->n, 2);
    memset(o, 0, sizeof *o);
    ck_assert_int_eq(tb_outbox_scan(DB, 0, 0, collect_row, o, &E), 0);
    ck_assert_uint_eq(o->n, 0);

    ck_assert_int_eq(tb_outbox_delete(DB, s2, &E), 0);
    ck_assert_int_eq(tb_outbox_delete(DB, s2, &E), 0); /* idempotent */
    ck_assert_int_eq(tb_outbox_pending(DB, &E), 2);
    memset(o, 0, sizeof *o);
    ck_assert_int_eq(tb_outbox_scan(DB, 0, 100, collect_row, o, &E), 2);
    ck_assert_int_eq(o->seq[0], s1);
    ck_assert_int_eq(o->seq[1], s3);
    free(o);
}
END_TEST

START_TEST(outbox_scan_callback_may_delete_across_chunks)
{
    for (int i = 0; i < 300; i++) {
        char id[16];
        snprintf(id, sizeof id, "q%03d", i);
        ck_assert_int_eq(tb_outbox_put(DB, id, "t", "t", id, strlen(id), &E), 0);
    }
    outrows *o = calloc(1, sizeof *o);
    ck_assert_ptr_nonnull(o);
    o->delete_on = DB;
    ck_assert_int_eq(tb_outbox_scan(DB, 0, 250, collect_row, o, &E), 250);
    ck_assert_int_eq(tb_outbox_pending(DB, &E), 50);
    for (size_t i = 0; i < o->n; i++) {
        char id[32];
        snprintf(id, sizeof id, "q%03zu", i);
        ck_assert_str_eq(o->id[i], id);
        ck_assert_uint_eq(o->len[i], 4);
        ck_assert_int_eq(memcmp(o->body[i], id, 4), 0);
    }
    memset(o, 0, sizeof *o);
    ck_assert_int_eq(tb_outbox_scan(DB, 0, SIZE_MAX, collect_row, o, &E), 50);
    ck_assert_str_eq(o->id[0], "q250");
    ck_assert_str_eq(o->id[49], "q299");
    free(o);
}
END_TEST

/* ---- dedupe ---- */

START_TEST(dedupe_seen_and_mark)
{
    ck_assert_int_eq(tb_dedupe_seen(DB, "svc", "e1", &E), 0);
    ck_assert_int_eq(tb_dedupe_mark(DB, "svc", "e1", 0, &E), 0);
    ck_assert_int_eq(tb_dedupe_seen(DB, "svc", "e1", &E), 1);
    ck_assert_int_eq(tb_dedupe_mark(DB, "svc", "e1", 0, &E), 1); /* already there */
    ck_assert_int_eq(tb_dedupe_seen(DB, "other", "e1", &E), 0); /* per consumer */
    ck_assert_int_eq(tb_dedupe_mark(DB, "other", "e1", 0, &E), 0);
    ck_assert_int_eq(tb_dedupe_seen(DB, "svc", "e2", &E), 0);
    ck_assert_int_eq(query_int(DB, "SELECT COUNT(*) FROM tb_dedupe"), 2);
    ck_assert_int_eq(tb_dedupe_init(DB, &E), 0); /* idempotent, keeps rows */
    ck_assert_int_eq(query_int(DB, "SELECT COUNT(*) FROM tb_dedupe"), 2);
}
END_TEST

START_TEST(dedupe_marker_answers_like_mark_and_stays_bounded)
{
    tb_dedupe_marker *m = tb_dedupe_marker_new(DB, "svc", 100, &E);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(tb_dedupe_marker_mark(m, "e1", &E), 0);
    ck_assert_int_eq(tb_dedupe_marker_mark(m, "e1", &E), 1); /* already there */
    ck_assert_int_eq(tb_dedupe_seen(DB, "svc", "e1", &E), 1);
    ck_assert_int_eq(tb_dedupe_mark(DB, "svc", "e1", 100, &E), 1); /* one record for both */
    for (int i = 0; i < 1000; i++) {
        char id[16];
        snprintf(id, sizeof id, "m%04d", i);
        ck_assert_int_eq(tb_dedupe_marker_mark(m, id, &E), 0);
        long long rows = query_int(DB, "SELECT COUNT(*) FROM tb_dedupe WHERE consumer='svc'");
        ck_assert_int_le(rows, 100 + 64 + 64 + 1); /* keep + slack + the marks between prunes */
    }
    ck_assert_int_eq(tb_dedupe_seen(DB, "svc", "m0999", &E), 1);
    ck_assert_int_eq(tb_dedupe_seen(DB, "svc", "m0000", &E), 0);
    ck_assert_int_eq(tb_dedupe_marker_mark(m, "", &E), TB_EINVAL);
    tb_dedupe_marker_free(m);
}
END_TEST

static int n_recent;
static char first_recent[16];

static void count_recent(void *user, const char *id)
{
    char *last = user;
    if (n_recent++ == 0)
        snprintf(first_recent, sizeof first_recent, "%s", id);
    ck_assert_msg(strcmp(last, id) < 0, "%s after %s: not oldest first", id, last);
    snprintf(last, 16, "%s", id);
}

START_TEST(dedupe_recent_lists_the_newest_oldest_first)
{
    for (int i = 0; i < 50; i++) {
        char id[16];
        snprintf(id, sizeof id, "r%04d", i);
        ck_assert_int_eq(tb_dedupe_mark(DB, "svc", id, 0, &E), 0);
    }
    char last[16] = "";
    n_recent = 0;
    ck_assert_int_eq(tb_dedupe_recent(DB, "svc", 10, count_recent, last, &E), 0);
    ck_assert_int_eq(n_recent, 10);
    ck_assert_str_eq(first_recent, "r0040");
    ck_assert_str_eq(last, "r0049");
}
END_TEST

START_TEST(dedupe_keeps_the_newest_within_bounds)
{
    /* another consumer's records are not touched by this one's pruning */
    for (int i = 0; i < 10; i++) {
        char id[16];
        snprintf(id, sizeof id, "o%d", i);
        ck_assert_int_eq(tb_dedupe_mark(DB, "other", id, 100, &E), 0);
    }
    long long max_rows = 0;
    for (int i = 0; i < 1000; i++) {
        char id[16];
        snprintf(id, sizeof id, "d%04d", i);
        ck_assert_int_eq(tb_dedupe_mark(DB, "svc", id, 100, &E), 0);
        long long rows = query_int(DB, "SELECT COUNT(*) FROM tb_dedupe WHERE consumer='svc'");
        if (rows > max_rows)
            max_rows = rows;
        ck_assert_int_ge(rows, i + 1 < 100 ? i + 1 : 100); /* never fewer than keep */
    }
    long long rows = query_int(DB, "SELECT COUNT(*) FROM tb_dedupe WHERE consumer='svc'");
    ck_assert_int_ge(rows, 100);
    ck_assert_int_le(rows, 100 + 64);
    ck_assert_int_le(max_rows, 100 + 64 + 1);
    for (int i = 900; i < 1000; i++) { /* the newest 100 are kept */
        char id[16];
        snprintf(id, sizeof id, "d%04d", i);
        ck_assert_msg(tb_dedupe_seen(DB, "svc", id, &E) == 1, "%s was pruned", id);
    }
    ck_assert_int_eq(tb_dedupe_seen(DB, "svc", "d0000", &E), 0); /* the oldest went */
    ck_assert_int_eq(tb_dedupe_seen(DB, "svc", "d0500", &E), 0);
    ck_assert_int_eq(query_int(DB, "SELECT COUNT(*) FROM tb_dedupe WHERE consumer='other'"), 10);

    /* a smaller keep is caught up with in bounded steps */
    for (int i = 0; i < 10; i++) {
        char id[16];
        snprintf(id, sizeof id, "k%d", i);
        ck_assert_int_eq(tb_dedupe_mark(DB, "svc", id, 5, &E), 0);
    }
    rows = query_int(DB, "SELECT COUNT(*) FROM tb_dedupe WHERE consumer='svc'");
    ck_assert_int_le(rows, 5 + 64);
    ck_assert_int_eq(tb_dedupe_seen(DB, "svc", "k9", &E), 1);
    ck_assert_int_eq(tb_dedupe_seen(DB, "svc", "k5", &E), 1);
}
END_TEST

START_TEST(data_survives_close_and_reopen)
{
    tb_new_event a[2] = {ev("p1", "t", "{\"k\":1}"), ev("p2", "t", "{\"k\":2}")};
    ck_assert_int_eq(tb_evstore_append(DB, "s", TB_EVSTORE_NO_STREAM, a, 2, NULL, &E), 0);
    ck_assert_int_eq(tb_outbox_put(DB, "p1", "t", "rk", "body", 4, &E), 0);
    ck_assert_int_eq(tb_dedupe_mark(DB, "svc", "p0", 0, &E), 0);
    tb_store_close(DB);
    DB = open_db(); /* init again: idempotent */
    ck_assert_int_eq(tb_evstore_version(DB, "s", &E), 2);
    collected *c = new_collected();
    ck_assert_int_eq(tb_evstore_read(DB, "s", 1, collect, c, &E), 0);
    ck_assert_uint_eq(c->n, 2);
    ck_assert_str_eq(c->data[1], "{\"k\":2}");
    free(c);
    ck_assert_int_eq(tb_outbox_pending(DB, &E), 1);
    ck_assert_int_eq(tb_dedupe_seen(DB, "svc", "p0", &E), 1);
    /* versions and global order go on from where they were */
    tb_new_event b = ev("p3", "t", "{}");
    int64_t v;
    ck_assert_int_eq(tb_evstore_append(DB, "s", 2, &b, 1, &v, &E), 0);
    ck_assert_int_eq(v, 3);
    ck_assert_int_eq(tb_dedupe_mark(DB, "svc", "p0", 0, &E), 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("evstore");
    TCase *tc = tcase_create("evstore");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, append_read_and_version);
    tcase_add_test(tc, expected_version_conflicts_write_nothing);
    tcase_add_test(tc, invalid_arguments_name_the_field);
    tcase_add_test(tc, duplicate_event_id_is_a_conflict);
    tcase_add_test(tc, append_nests_in_the_callers_transaction);
    tcase_add_loop_test(tc, concurrent_writers_leave_a_gapless_stream, 0, 2);
    tcase_add_test(tc, replay_in_global_order_with_filters);
    tcase_add_test(tc, callback_stop_value_is_returned);
    tcase_add_test(tc, replay_feeds_a_projection_on_the_same_connection);
    tcase_add_test(tc, missing_tables_are_io_errors_with_sqlites_message);
    tcase_add_test(tc, outbox_put_scan_delete_pending);
    tcase_add_test(tc, outbox_scan_callback_may_delete_across_chunks);
    tcase_add_test(tc, dedupe_seen_and_mark);
    tcase_add_test(tc, dedupe_keeps_the_newest_within_bounds);
    tcase_add_test(tc, dedupe_marker_answers_like_mark_and_stays_bounded);
    tcase_add_test(tc, dedupe_recent_lists_the_newest_oldest_first);
    tcase_add_test(tc, data_survives_close_and_reopen);
    tcase_add_test(tc, outbox_rows_keep_their_ordering_key);
    tcase_add_test(tc, an_old_outbox_table_gets_the_key_column);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
