#include "tablium/store.h"

#include "tablium/log.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

sqlite3 *tb_store_open(const char *path, const char *schema, tb_error *err)
{
    sqlite3 *db = NULL;
    char *msg = NULL;
    int rc = sqlite3_open_v2(path, &db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        tb_error_set(err, TB_EIO, "open %s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(db, 5000);
    rc = sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                          "PRAGMA foreign_keys=ON;", NULL, NULL, &msg);
    if (rc == SQLITE_OK && schema)
        rc = sqlite3_exec(db, schema, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        tb_error_set(err, TB_EIO, "%s: %s", path, msg ? msg : sqlite3_errstr(rc));
        goto fail;
    }
    return db;
fail:
    sqlite3_free(msg);
    sqlite3_close(db);
    return NULL;
}

sqlite3 *tb_store_open_service(const char *name, const char *schema, tb_error *err)
{
    char *path = tb_store_path(name);
    if (!path) {
        tb_error_set(err, TB_ENOMEM, "%s: out of memory", name);
        return NULL;
    }
    sqlite3 *db = tb_store_open(path, schema, err);
    if (db)
        tb_log_info(NULL, "%s: database %s", name, path);
    free(path);
    return db;
}

void tb_store_close(sqlite3 *db)
{
    if (db)
        sqlite3_close(db);
}

char *tb_store_text(tb_arena *a, sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return t ? tb_arena_strndup(a, (const char *)t, (size_t)sqlite3_column_bytes(st, col)) : NULL;
}

char *tb_store_path(const char *name)
{
    char var[128];
    size_t n = 0;
    for (const char *p = name; *p && n + 4 < sizeof var; p++)
        var[n++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    memcpy(var + n, "_DB", 4);
    const char *v = getenv(var);
    if (v && *v)
        return strdup(v);
    const char *dir = getenv("TB_DATA_DIR");
    size_t len = (dir ? strlen(dir) : 1) + strlen(name) + 8;
    char *out = malloc(len);
    if (out)
        snprintf(out, len, "%s/%s.db", dir && *dir ? dir : ".", name);
    return out;
}
