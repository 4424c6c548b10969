/*
 * tablium: the embedded store of a service (SQLite). Each service owns its database file; no
 * database is shared between services.
 */
#ifndef TABLIUM_STORE_H
#define TABLIUM_STORE_H

#include "tablium/arena.h"
#include "tablium/error.h"

#include <sqlite3.h>

/**
 * Opens (creating when missing) the database at `path` in WAL mode with synchronous=NORMAL
 * (a committed transaction survives a crash of the process), foreign keys on and a 5 s busy
 * timeout, then runs `schema` (idempotent SQL, e.g. CREATE TABLE IF NOT EXISTS ...).
 * The connection is opened in serialized mode: it may be used from several threads, one
 * statement at a time. Caller owns; close with tb_store_close. NULL on failure (err says why).
 */
sqlite3 *tb_store_open(const char *path, const char *schema, tb_error *err);
/** tb_store_open on tb_store_path(name), logging which file it opened: what a service's init
 *  calls. Caller owns; close with tb_store_close. NULL on failure (err says why). */
sqlite3 *tb_store_open_service(const char *name, const char *schema, tb_error *err);
/** NULL-safe. */
void tb_store_close(sqlite3 *db);
/** Column `col` of the current row as a NUL-terminated copy in `a`; NULL for SQL NULL or when
 *  out of memory (tell them apart with sqlite3_column_type). */
char *tb_store_text(tb_arena *a, sqlite3_stmt *st, int col);
/** The database path of service `name`: $<NAME>_DB, else "<name>.db" in $TB_DATA_DIR (default
 *  the current directory). Caller owns; free(). */
char *tb_store_path(const char *name);

/**
 * A readiness probe of a database file, for /health/ready (tablium/http.h): what a service's
 * init registers as its "database" check, and its fini removes before closing the database:
 *
 *     s->probe = tb_store_probe_new(s->db, err);
 *     tb_ready_check_add("database", tb_store_probe_ready, s->probe);
 *     ...
 *     tb_ready_check_remove(s->probe);
 *     tb_store_probe_free(s->probe);
 *
 * It checks, on its own connection (so never inside a handler's transaction, never waiting on
 * the service's lock) with a 100 ms busy timeout: the file is still the one the service opened
 * (not removed or replaced), it is readable and writable, its file system has room (1 MiB at
 * least), and SQLite reads its schema. No write: a busy service's write lock does not make it
 * flap. A few stat calls and one page read: cheap enough for every probe.
 */
typedef struct tb_store_probe tb_store_probe;
/** A probe of the main database file of db (borrowed: only its file name is read, now). Caller
 *  owns; free with tb_store_probe_free. NULL on failure (err says why; TB_EINVAL for an
 *  in-memory or temporary database). */
tb_store_probe *tb_store_probe_new(sqlite3 *db, tb_error *err);
/** A tb_ready_check_fn (user: a tb_store_probe): 0 when the database is usable, else nonzero
 *  with why ("database file /data/wallet.db was removed", "no space left on the file system of
 *  /data/wallet.db (12 KiB free)", "database /data/wallet.db: disk I/O error"). Thread-safe. */
int tb_store_probe_ready(void *probe, char *why, size_t cap);
/** NULL-safe. No tb_store_probe_ready may be running (remove the check first). */
void tb_store_probe_free(tb_store_probe *p);

#endif
