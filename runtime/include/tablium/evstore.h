/*
 * tablium: the SQLite side of events, in the service's own database (so that state, events and
 * bookkeeping change in one transaction):
 *
 *   - the event store: append-only streams with optimistic concurrency (expected version), read
 *     a stream from a version, replay everything in global order (projections are rebuilt so);
 *   - the transactional outbox: events written in the caller's transaction, relayed to the
 *     broker after commit by the bus (tb_bus_relay_outbox), deleted once confirmed;
 *   - the dedupe record of idempotent consumers: event ids already handled, bounded in size.
 *
 * Every function takes the caller's sqlite3 connection and runs its statements on it; none
 * opens or ends a transaction unless it says so, so a caller's BEGIN ... COMMIT covers them.
 * Tables are created by tb_evstore_init / tb_outbox_init / tb_dedupe_init (idempotent).
 * Errors: TB_EINVAL (a required argument missing; the message names it), TB_ECONFLICT (see
 * tb_evstore_append), TB_EIO (SQLite failed; the message carries sqlite3_errmsg, e.g. "no such
 * table" before the init, "database is locked" after the busy timeout).
 *
 * Writing in your own transaction: begin it with BEGIN IMMEDIATE (what the bus does), or at least
 * write before you read. A deferred transaction that has read can only upgrade to a writer with an
 * immediate SQLITE_BUSY (no busy wait) when another connection writes at the same time.
 */
#ifndef TABLIUM_EVSTORE_H
#define TABLIUM_EVSTORE_H
#include "tablium/error.h"
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

/* ---- event store ---- */
/** Creates table tb_events (global_seq INTEGER PRIMARY KEY AUTOINCREMENT, stream, version,
 *  id UNIQUE, type, schema_version, data, metadata, recorded_at; UNIQUE(stream, version), which
 *  is the index of version lookups and stream reads) and index tb_events_type(type, global_seq)
 *  for filtered replays. recorded_at is UTC ISO 8601 with milliseconds ("...T10:00:00.123Z"). */
int tb_evstore_init(sqlite3 *db, tb_error *err);

/** expected_version: the stream's current version (number of events), or one of these. */
#define TB_EVSTORE_ANY (-1)       /* no check */
#define TB_EVSTORE_NO_STREAM (0)  /* the stream must not exist yet */

typedef struct tb_new_event {
    const char *id;             /* unique event id (UUID); required */
    const char *type;           /* e.g. "wallet.transaction.created"; required */
    const char *schema_version; /* e.g. "1.0"; required */
    const char *data;           /* JSON text; required */
    const char *metadata;       /* JSON text or NULL */
} tb_new_event;

/**
 * Appends n events to `stream` after checking that its version is expected_version (versions are
 * 1-based: the first event of a stream is version 1, and a stream's version is its last event's).
 * On a mismatch nothing is written and TB_ECONFLICT is returned (err names both versions: re-read
 * the stream and retry); a duplicate event id (already stored, or twice in evs) is TB_ECONFLICT
 * too, naming the id, and nothing of the batch is written either. A missing (NULL or "") stream,
 * id, type, schema_version or data is TB_EINVAL naming it. n == 0 only checks the version.
 * *new_version (may be NULL) gets the stream's version after the append; untouched on failure.
 * Atomic: outside a transaction it runs in its own BEGIN IMMEDIATE ... COMMIT; inside the
 * caller's it runs in a SAVEPOINT (a failure undoes only the append; the caller's transaction
 * goes on) and first takes the write lock if the transaction holds none yet. The version check
 * and the insert happen under the write lock, so concurrent writers (other connections or
 * processes) cannot both pass the same expected version. data/metadata are stored as given (not
 * parsed).
 */
int tb_evstore_append(sqlite3 *db, const char *stream, int64_t expected_version,
                      const tb_new_event *evs, size_t n, int64_t *new_version, tb_error *err);
/** The stream's version: 0 when it has no events; negative TB_E code on error. */
int64_t tb_evstore_version(sqlite3 *db, const char *stream, tb_error *err);

typedef struct tb_stored_event {
    int64_t global_seq; /* position in the whole store, increasing */
    const char *stream;
    int64_t version;    /* position in its stream, 1-based */
    const char *id;
    const char *type;
    const char *schema_version;
    const char *data;     /* JSON text */
    const char *metadata; /* JSON text or NULL */
    const char *recorded_at;
} tb_stored_event;
/**
 * Callback: return 0 to go on, anything else stops the walk and is returned by the caller. The
 * strings are valid during the call only (copy what you keep).
 * While the walk runs its SELECT is open on `db`: the callback must not use `db` to write to
 * tb_events (tb_evstore_append), nor to end or roll back its transaction. Writing other tables
 * through `db` (a projection being rebuilt) is fine: wrap the whole walk in BEGIN IMMEDIATE ...
 * COMMIT for that. Otherwise use another connection, or collect and write after the walk.
 */
typedef int (*tb_stored_event_fn)(void *user, const tb_stored_event *ev);
/** Calls fn for each event of `stream` with version >= from_version, in version order. */
int tb_evstore_read(sqlite3 *db, const char *stream, int64_t from_version, tb_stored_event_fn fn,
                    void *user, tb_error *err);
/** Calls fn for each event with global_seq > after_seq (0: everything), in global order;
 *  `type` (may be NULL) keeps only that event type. What a projection rebuild walks. global_seq
 *  follows commit order (one writer at a time), so a reader that remembers the last global_seq
 *  it handled and replays after it later misses nothing. */
int tb_evstore_replay(sqlite3 *db, int64_t after_seq, const char *type, tb_stored_event_fn fn,
                      void *user, tb_error *err);

/* ---- transactional outbox ---- */
/** Creates table tb_outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, id, type, routing_key
 *  (nullable), body BLOB, created_at, key (nullable)); a table made by an earlier version gets
 *  the key column. */
int tb_outbox_init(sqlite3 *db, tb_error *err);
/** Inserts one event (its whole envelope, already serialized) in the caller's transaction. id and
 *  type are required; routing_key may be NULL (scanned back as NULL); body is binary-safe and
 *  may be NULL when len is 0 (an empty body). */
int tb_outbox_put(sqlite3 *db, const char *id, const char *type, const char *routing_key,
                  const void *body, size_t len, tb_error *err);
/** The same with the event's ordering key (NULL: none), which the relay sends in header
 *  x-tablium-key so that consumers can queue the event before parsing it. */
int tb_outbox_put_keyed(sqlite3 *db, const char *id, const char *type, const char *routing_key,
                        const char *key, const void *body, size_t len, tb_error *err);
typedef struct tb_outbox_row {
    int64_t seq;
    const char *id;
    const char *type;
    const char *routing_key;
    const void *body;
    size_t len;
    const char *key; /* the ordering key, NULL when none */
} tb_outbox_row;
/**
 * Calls fn for up to `max` rows with seq > after_seq, oldest first (max 0: none; SIZE_MAX: all).
 * A nonzero return of fn stops the walk: a negative one is returned as is (fn's error), else
 * the scan returns the rows visited so far, the stopping one included. Otherwise returns the
 * number of rows visited, or a negative TB_E code. Rows are read in chunks of 64 and copied
 * (row strings and body valid during the call only; body is also NUL-terminated after len), and
 * no statement is open while fn runs: fn may write through `db`, e.g. tb_outbox_delete its row.
 */
long tb_outbox_scan(sqlite3 *db, int64_t after_seq, size_t max,
                    int (*fn)(void *user, const tb_outbox_row *row), void *user, tb_error *err);
/** Deletes the row (once the broker confirmed it). 0 also when there is no such row (deleting
 *  twice is harmless). */
int tb_outbox_delete(sqlite3 *db, int64_t seq, tb_error *err);
/** Rows waiting (COUNT(*): a scan, fine for an outbox that is kept short); negative TB_E code
 *  on error. */
long tb_outbox_pending(sqlite3 *db, tb_error *err);

/* ---- dedupe record of idempotent consumers ---- */
/** Creates table tb_dedupe (consumer, id, seq, seen_at, PRIMARY KEY(consumer, id)) WITHOUT ROWID
 *  and index tb_dedupe_seq(consumer, seq) UNIQUE. seq numbers a consumer's records 1, 2, 3...
 *  (newest highest), so the records beyond `keep` are found through the index, not counted. */
int tb_dedupe_init(sqlite3 *db, tb_error *err);
/** 1 when `consumer` has already handled event `id`, 0 when not, negative TB_E code on error. */
int tb_dedupe_seen(sqlite3 *db, const char *consumer, const char *id, tb_error *err);
/**
 * Records that `consumer` handled `id` (in the caller's transaction, with the handler's own
 * writes), then keeps only the newest `keep` records of that consumer (0: 100000), deleting the
 * oldest in small batches so the cost stays bounded: once more than 64 records are beyond
 * `keep`, up to 256 of the oldest go in one call (so a consumer holds at most keep + 64 records,
 * never fewer than keep, and a smaller `keep` is caught up with over a few calls). Other
 * consumers' records are untouched. 0 when newly recorded, 1 when it was already recorded
 * (nothing changes then), negative TB_E code on error. Not a SAVEPOINT: call it inside a
 * transaction when the record must go with the handler's writes.
 */
int tb_dedupe_mark(sqlite3 *db, const char *consumer, const char *id, size_t keep, tb_error *err);
/** Calls fn with the ids of the newest `keep` records of `consumer` (0: 100000), oldest first:
 *  what a consumer loads into memory at start so that its dedupe check needs no query. */
int tb_dedupe_recent(sqlite3 *db, const char *consumer, size_t keep,
                     void (*fn)(void *user, const char *id), void *user, tb_error *err);
/** tb_dedupe_mark for one consumer with its statement prepared once (what a busy consumer
 *  uses): same answers; it prunes every 64 marks, so the bound is keep + slack + 64 records.
 *  Free it before closing db. */
typedef struct tb_dedupe_marker tb_dedupe_marker;
tb_dedupe_marker *tb_dedupe_marker_new(sqlite3 *db, const char *consumer, size_t keep,
                                       tb_error *err);
int tb_dedupe_marker_mark(tb_dedupe_marker *m, const char *id, tb_error *err);
void tb_dedupe_marker_free(tb_dedupe_marker *m);
#endif
