#include "tablium/store.h"

#include "tablium/log.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

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

/* ---- readiness ---- */

#define PROBE_BUSY_MS 100
#define PROBE_MIN_FREE (1u << 20) /* below this, the next WAL growth or checkpoint may fail */

struct tb_store_probe {
    pthread_mutex_t mu; /* one probe at a time on the connection */
    char *path;
    dev_t dev; /* the file the service opened: a removed or replaced one is noticed */
    ino_t ino;
    sqlite3 *db; /* its own: the service's may be inside a transaction of a handler */
    sqlite3_stmt *read;
};

tb_store_probe *tb_store_probe_new(sqlite3 *db, tb_error *err)
{
    const char *file = db ? sqlite3_db_filename(db, "main") : NULL;
    if (!file || !*file) {
        tb_error_set(err, TB_EINVAL, "store probe: the database has no file");
        return NULL;
    }
    tb_store_probe *p = calloc(1, sizeof *p);
    if (!p || !(p->path = strdup(file))) {
        tb_error_set(err, TB_ENOMEM, "store probe: out of memory");
        goto fail;
    }
    struct stat st;
    if (stat(p->path, &st) != 0) {
        tb_error_set(err, TB_EIO, "store probe: %s: %s", p->path, strerror(errno));
        goto fail;
    }
    p->dev = st.st_dev;
    p->ino = st.st_ino;
    if (sqlite3_open_v2(p->path, &p->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
            SQLITE_OK ||
        sqlite3_busy_timeout(p->db, PROBE_BUSY_MS) != SQLITE_OK ||
        sqlite3_prepare_v2(p->db, "SELECT count(*) FROM sqlite_master", -1, &p->read, NULL) !=
            SQLITE_OK) {
        tb_error_set(err, TB_EIO, "store probe: %s: %s", p->path,
                     p->db ? sqlite3_errmsg(p->db) : "out of memory");
        goto fail;
    }
    pthread_mutex_init(&p->mu, NULL);
    return p;
fail:
    if (p) {
        sqlite3_finalize(p->read);
        sqlite3_close(p->db);
        free(p->path);
        free(p);
    }
    return NULL;
}

static int probe_fail(char *why, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int probe_fail(char *why, size_t cap, const char *fmt, ...)
{
    if (cap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, cap, fmt, ap);
        va_end(ap);
    }
    return TB_EIO;
}

int tb_store_probe_ready(void *probe, char *why, size_t cap)
{
    tb_store_probe *p = probe;
    if (!p)
        return probe_fail(why, cap, "no database");
    struct stat st;
    struct statvfs fs;
    int rc = 0;
    pthread_mutex_lock(&p->mu);
    if (stat(p->path, &st) != 0) {
        rc = errno == ENOENT
                 ? probe_fail(why, cap, "database file %s was removed", p->path)
                 : probe_fail(why, cap, "database file %s: %s", p->path, strerror(errno));
    } else if (st.st_dev != p->dev || st.st_ino != p->ino) {
        rc = probe_fail(why, cap, "database file %s was replaced after the service opened it",
                        p->path);
    } else if (access(p->path, R_OK | W_OK) != 0) {
        rc = probe_fail(why, cap, "database file %s is not readable and writable: %s", p->path,
                        strerror(errno));
    } else if (statvfs(p->path, &fs) == 0 && (uint64_t)fs.f_bavail * fs.f_frsize < PROBE_MIN_FREE) {
        rc = probe_fail(why, cap, "no space left on the file system of %s (%llu KiB free)", p->path,
                        (unsigned long long)fs.f_bavail * fs.f_frsize / 1024);
    } else {
        int step = sqlite3_step(p->read);
        if (step != SQLITE_ROW)
            rc = probe_fail(why, cap, "database %s: %s", p->path, sqlite3_errmsg(p->db));
        sqlite3_reset(p->read);
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

void tb_store_probe_free(tb_store_probe *p)
{
    if (!p)
        return;
    sqlite3_finalize(p->read);
    sqlite3_close(p->db);
    pthread_mutex_destroy(&p->mu);
    free(p->path);
    free(p);
}
