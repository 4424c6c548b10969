/*
 * tablium: the dedupe log of a durable consumer (tb_dlog.h says what and why).
 */
#include "tb_dlog.h"

#include "tablium/log.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libgen.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define REC 48

struct tb_dlog {
    int fd;
    char *path;
    size_t keep;
    size_t records; /* in the file */
    unsigned char *buf; /* for appends */
    size_t buf_cap;
    bool broken; /* a failed append could not be cut back: no more appends */
};

/* the check byte: an 8-bit sum over length and id that is never 0, so a zeroed tail fails */
static unsigned char check_of(const unsigned char *rec)
{
    unsigned h = 0x9d;
    for (int i = 0; i < REC - 1; i++)
        h = (h * 31u + rec[i]) & 0xffu;
    return (unsigned char)(h ? h : 1);
}

static int fill(unsigned char *rec, const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > TB_DLOG_ID_MAX)
        return -1;
    memset(rec, 0, REC);
    rec[0] = (unsigned char)n;
    memcpy(rec + 1, id, n);
    rec[REC - 1] = check_of(rec);
    return 0;
}

static bool valid(const unsigned char *rec)
{
    return rec[0] > 0 && rec[0] <= TB_DLOG_ID_MAX && rec[REC - 1] == check_of(rec);
}

/* fsyncs the folder holding path (a rename's durability); best effort */
static void sync_dir(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(copy);
}

static int io_error(tb_error *err, const char *what, const char *path)
{
    return tb_error_set(err, TB_EIO, "dedupe log %s: %s: %s", path, what, strerror(errno));
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Rewrites the log as its newest `keep` records (taken from data, n records): PATH.tmp,
 * written, locked and fsynced, then renamed over PATH (and the folder fsynced), and kept open as
 * the log: at any moment PATH is the old or the new whole log, also across an OS crash. */
static int compact(tb_dlog *l, const unsigned char *data, size_t n, tb_error *err)
{
    size_t from = n > l->keep ? n - l->keep : 0;
    size_t len = strlen(l->path) + 5;
    char *tmp = malloc(len);
    if (!tmp)
        return tb_error_set(err, TB_ENOMEM, "dedupe log: out of memory");
    snprintf(tmp, len, "%s.tmp", l->path);
    int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0 ||
        write_all(fd, data + from * REC, (n - from) * REC) != 0 || fsync(fd) != 0 ||
        rename(tmp, l->path) != 0) {
        int rc = io_error(err, "compaction", tmp);
        if (fd >= 0)
            close(fd);
        unlink(tmp);
        free(tmp);
        return rc;
    }
    free(tmp);
    sync_dir(l->path);
    if (l->fd >= 0)
        close(l->fd); /* (its lock goes with it; the new file holds its own) */
    l->fd = fd;
    l->records = n - from;
    return 0;
}

/* Reads size bytes at offset `at` of fd into out. 0, or -1 with errno (EIO when the file is
 * shorter). */
static int read_all(int fd, unsigned char *out, size_t size, off_t at)
{
    size_t got = 0;
    while (got < size) {
        ssize_t r = pread(fd, out + got, size - got, at + (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0) {
            errno = EIO; /* shorter than fstat said */
            return -1;
        }
        got += (size_t)r;
    }
    return 0;
}

tb_dlog *tb_dlog_open(const char *path, size_t keep, void (*fn)(void *user, const char *id),
                      void *user, tb_error *err)
{
    tb_dlog *l = calloc(1, sizeof *l);
    if (!l || !(l->path = strdup(path))) {
        free(l);
        tb_error_set(err, TB_ENOMEM, "dedupe log: out of memory");
        return NULL;
    }
    l->fd = -1;
    l->keep = keep ? keep : 1;
    unsigned char *data = NULL;
    size_t n = 0;
    l->fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (l->fd < 0) {
        io_error(err, "open", path);
        goto fail;
    }
    if (flock(l->fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK)
            tb_error_set(err, TB_ESTATE,
                         "dedupe log %s is in use by another process (two consumers of one "
                         "service sharing a data folder?)",
                         path);
        else
            io_error(err, "lock", path);
        goto fail;
    }
    struct stat st;
    if (fstat(l->fd, &st) != 0) {
        io_error(err, "stat", path);
        goto fail;
    }
    size_t size = (size_t)st.st_size;
    if (size > 0) {
        data = malloc(size);
        if (!data) {
            tb_error_set(err, TB_ENOMEM, "dedupe log: out of memory");
            goto fail;
        }
        if (read_all(l->fd, data, size, 0) != 0) { /* never cut what could not be read */
            io_error(err, "read", path);
            goto fail;
        }
        /* the valid prefix: a torn or garbled record ends it */
        while ((n + 1) * REC <= size && valid(data + n * REC))
            n++;
        if (n * REC != size && ftruncate(l->fd, (off_t)(n * REC)) != 0) {
            io_error(err, "cutting off a torn record", path);
            goto fail;
        }
    }
    l->records = n;
    if (fn) {
        char id[TB_DLOG_ID_MAX + 1];
        for (size_t i = n > l->keep ? n - l->keep : 0; i < n; i++) {
            const unsigned char *rec = data + i * REC;
            memcpy(id, rec + 1, rec[0]);
            id[rec[0]] = 0;
            fn(user, id);
        }
    }
    if (n > 2 * l->keep) {
        tb_error cerr = TB_ERROR_INIT; /* a longer file is no reason not to start */
        if (compact(l, data, n, &cerr) != 0)
            tb_log_warn(NULL, "%s", cerr.message);
        tb_error_deinit(&cerr);
    }
    free(data);
    return l;
fail:
    free(data);
    tb_dlog_close(l);
    return NULL;
}

int tb_dlog_append(tb_dlog *l, const char *const *ids, size_t n, tb_error *err)
{
    if (n == 0)
        return 0;
    if (l->broken)
        return tb_error_set(err, TB_EIO,
                            "dedupe log %s: an earlier failed write could not be undone; "
                            "restart the service",
                            l->path);
    if (n * REC > l->buf_cap) {
        size_t cap = n * REC;
        unsigned char *b = realloc(l->buf, cap);
        if (!b)
            return tb_error_set(err, TB_ENOMEM, "dedupe log: out of memory");
        l->buf = b;
        l->buf_cap = cap;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (fill(l->buf + k * REC, ids[i]) == 0)
            k++;
    if (k == 0)
        return 0;
    if (write_all(l->fd, l->buf, k * REC) != 0) {
        int rc = io_error(err, "append", l->path);
        /* none of the batch counts: cut a partial write back to whole records, or stop */
        if (ftruncate(l->fd, (off_t)(l->records * REC)) != 0)
            l->broken = true;
        return rc;
    }
    l->records += k;
    if (l->buf_cap > 64 * REC * 1024) { /* a one-off big batch (the carry-over): let it go */
        free(l->buf);
        l->buf = NULL;
        l->buf_cap = 0;
    }
    if (l->records > 2 * l->keep) {
        /* read back the newest keep records and rewrite the file with them; the ids are
         * recorded whatever happens here: a failed compaction only leaves the file longer, and
         * is tried again at the next append */
        tb_error cerr = TB_ERROR_INIT;
        size_t bytes = l->keep * REC;
        unsigned char *data = malloc(bytes);
        if (!data)
            tb_error_set(&cerr, TB_ENOMEM, "dedupe log %s: no memory for compaction", l->path);
        else if (read_all(l->fd, data, bytes, (off_t)((l->records - l->keep) * REC)) != 0)
            io_error(&cerr, "reading back for compaction", l->path);
        else
            compact(l, data, l->keep, &cerr);
        if (cerr.code)
            tb_log_warn(NULL, "%s", cerr.message);
        tb_error_deinit(&cerr);
        free(data);
    }
    return 0;
}

size_t tb_dlog_records(const tb_dlog *l)
{
    return l ? l->records : 0;
}

void tb_dlog_close(tb_dlog *l)
{
    if (!l)
        return;
    if (l->fd >= 0)
        close(l->fd);
    free(l->buf);
    free(l->path);
    free(l);
}
