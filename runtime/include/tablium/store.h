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

#endif
