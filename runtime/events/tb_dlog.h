/*
 * tablium (internal): the dedupe log of a durable consumer without a store of its own.
 *
 * An append-only file of the event ids a bus has handled, newest last, in fixed 48-byte
 * records. Each record holds a length byte, the id (at most TB_DLOG_ID_MAX bytes, zero padded)
 * and a check byte. A group commit of n ids is one write(2), with no B-tree and no page
 * rewrites; that is why it replaced the SQLite table here, whose random-key inserts cost 43% of
 * the consumer's CPU.
 *
 * Durability is that of SQLite's WAL with synchronous=NORMAL, the project's default: a
 * record survives the process being killed once tb_dlog_append has returned, and an operating
 * system crash may lose the last ones.
 *
 * A torn last record, from a process killed during the write, fails its check byte. It is cut
 * off when the log is opened, and the ids before it are kept.
 *
 * When the file holds more than twice `keep` records, the newest `keep` are written to
 * PATH.tmp, fsynced, and renamed over PATH (then the folder is fsynced). The file stays
 * bounded, and at any moment it is either the old or the new whole log.
 *
 * A failed append (disk full) is cut back to whole records, so the log stays aligned and none of
 * that batch counts. If even that fails, the log refuses further appends: the events are then
 * retried, never forgotten.
 *
 * The file is locked (flock) while open: a second process opening it gets TB_ESTATE.
 */
#ifndef TB_DLOG_H
#define TB_DLOG_H

#include "tablium/error.h"

#include <stddef.h>

#define TB_DLOG_ID_MAX 46

typedef struct tb_dlog tb_dlog;

/* Opens (creating) the log at path and calls fn(user, id) for its newest `keep` ids, oldest
 * first. NULL on failure (err says why: TB_EIO with the path and errno text, TB_ESTATE when
 * another process holds it). */
tb_dlog *tb_dlog_open(const char *path, size_t keep, void (*fn)(void *user, const char *id),
                      void *user, tb_error *err);
/* Appends the ids in one write. Ids longer than TB_DLOG_ID_MAX are skipped (the envelope's id
 * is a UUID, 36 characters). 0, or TB_EIO. */
int tb_dlog_append(tb_dlog *l, const char *const *ids, size_t n, tb_error *err);
/* Records in the file now (for tests and stats). */
size_t tb_dlog_records(const tb_dlog *l);
void tb_dlog_close(tb_dlog *l);

#endif
