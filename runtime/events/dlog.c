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

/* Rewrites the log as its newest `keep` records (taken from data, n records): PATH.tmp, then
 * rename. */
static int compact(tb_dlog *l, const unsigned char *data, size_t n, tb_error *err)
{
    size_t from = n > l->keep ? n - l->keep : 0;
    size_t len = strlen(l->path) + 5;
    char *tmp = malloc(len);
    if (!tmp)
        return tb_error_set(err, TB_ENOMEM, "dedupe log: out of memory");
    snprintf(tmp, len, "%s.tmp", l->path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int rc = 0;
    if (fd < 0 || write_all(fd, data + from * REC, (n - from) * REC) != 0 ||
        rename(tmp, l->path) != 0) {
        rc = io_error(err, "compaction", tmp);
        if (fd >= 0)
            close(fd);
        unlink(tmp);
        free(tmp);
        return rc;
    }
    close(fd);
    free(tmp);
    int nfd = open(l->path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (nfd < 0)
        return io_error(err, "reopen after compaction", l->path);
    if (l->fd >= 0)
        close(l->fd);
    l->fd = nfd;
    l->records = n - from;
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
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        io_error(err, "open", path);
        tb_dlog_close(l);
        return NULL;
    }
    struct stat st;
    unsigned char *data = NULL;
    size_t n = 0;
    if (fstat(fd, &st) != 0) {
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
        size_t got = 0;
        while (got < size) {
            ssize_t r = pread(fd, data + got, size - got, (off_t)got);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        /* the valid prefix: a torn or garbled record ends it */
        while ((n + 1) * REC <= got && valid(data + n * REC))
            n++;
        if (n * REC != size) {
            if (ftruncate(fd, (off_t)(n * REC)) != 0) {
                io_error(err, "cutting off a torn record", path);
                goto fail;
            }
        }
    }
    close(fd);
    fd = -1;
    l->fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (l->fd < 0) {
        io_error(err, "open", path);
        goto fail;
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
    if (n > 2 * l->keep && compact(l, data, n, err) != 0)
        goto fail;
    free(data);
    return l;
fail:
    if (fd >= 0)
        close(fd);
    free(data);
    tb_dlog_close(l);
    return NULL;
}

int tb_dlog_append(tb_dlog *l, const char *const *ids, size_t n, tb_error *err)
{
    if (n == 0)
        return 0;
    if (n * REC > l->buf_cap) {
        size_t cap = n * REC * 2;
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
    if (write_all(l->fd, l->buf, k * REC) != 0)
        return io_error(err, "append", l->path);
    l->records += k;
    if (l->records > 2 * l->keep) {
        /* read back the newest keep records and rewrite the file with them */
        size_t bytes = l->keep * REC;
        unsigned char *data = malloc(bytes);
        if (!data)
            return tb_error_set(err, TB_ENOMEM, "dedupe log: out of memory");
        int fd = open(l->path, O_RDONLY | O_CLOEXEC);
        off_t at = (off_t)((l->records - l->keep) * REC);
        size_t got = 0;
        while (fd >= 0 && got < bytes) {
            ssize_t r = pread(fd, data + got, bytes - got, at + (off_t)got);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        if (fd >= 0)
            close(fd);
        /* the ids are recorded whatever happens here: a failed compaction only leaves the
         * file longer, and is tried again at the next append */
        tb_error cerr = TB_ERROR_INIT;
        if (got == bytes ? compact(l, data, l->keep, &cerr) != 0
                         : io_error(&cerr, "reading back for compaction", l->path) != 0)
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
