/*
 * tablium internal: the Redis Pub/Sub transport (hiredis 0.14.1). Used by the event bus
 * (runtime/events/bus.c); not a public header.
 *
 * At-most-once, as Redis Pub/Sub gives it: a subscriber that is disconnected misses what is
 * published meanwhile. What the transport adds: pipelined publishing from many threads, and
 * subscribers that reconnect with backoff and resubscribe by themselves after a Redis restart,
 * logging (warn, fields "gapMs" and "reconnects") and counting how long they were gone.
 */
#ifndef TABLIUM_EVENTS_TB_REDIS_H
#define TABLIUM_EVENTS_TB_REDIS_H
#include "tablium/error.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tb_redis_opts {
    /** redis://host:port (optionally redis://host:port/db is not needed: Pub/Sub ignores db).
     *  Required. */
    const char *url;
    /** Reconnect backoff, doubling from min to max (0 means 50 and 2000). */
    int reconnect_min_ms, reconnect_max_ms;
    /** Connect and write timeout in ms; 0 means 2000. */
    int timeout_ms;
} tb_redis_opts;

/* ---- publisher ---- */
typedef struct tb_redis_pub tb_redis_pub;
/** Connects lazily and reconnects with backoff; NULL only on bad options. */
tb_redis_pub *tb_redis_pub_new(const tb_redis_opts *o, tb_error *err);
/**
 * PUBLISH channel body. Thread-safe. Pipelined: the command is appended to an output buffer that
 * is written when it holds 64 commands, on tb_redis_pub_flush, or by a background flusher within
 * 1 ms, so a publish never waits for Redis's reply. Returns 0 when queued, TB_ECONN when Redis is
 * unreachable (the message is not kept: at-most-once; the caller knows), TB_EINVAL on a NULL
 * channel (or NULL body with len > 0), TB_ENOMEM. body is copied before the call returns.
 *
 * A message queued with 0 can still be lost when the connection breaks before Redis has read it
 * (a later tb_redis_pub_flush reports that). While Redis is down, calls return TB_ECONN at once;
 * a new connection is tried on a call made after the backoff (at once after losing a connection
 * that worked, then reconnect_min_ms doubling to reconnect_max_ms); that attempt may block the
 * callers for up to timeout_ms when the host does not answer (a refused connection is instant).
 */
int tb_redis_publish(tb_redis_pub *p, const char *channel, const void *body, size_t len);
/** Writes everything queued and waits (up to timeout_ms) for Redis to answer all of it. 0, or
 *  TB_ECONN when Redis is unreachable, or when a message accepted since the previous flush was
 *  lost with a connection or refused by Redis (an error reply, e.g. NOAUTH; logged). Blocks the
 *  other publishers while it waits. */
int tb_redis_pub_flush(tb_redis_pub *p);
/** Flushes (bounded by timeout_ms; no wait when disconnected), then closes. NULL-safe. Call it
 *  after every other call on p has returned. */
void tb_redis_pub_free(tb_redis_pub *p);
/** true when the publisher is connected, or has not needed a connection yet, or NULL; false
 *  after a failed attempt or a lost connection until it connects again, with why ("publisher
 *  disconnected for 3.2 s: Connection refused"). A publisher that failed reconnects by itself
 *  (its flusher thread, with the backoff) whether or not anything is published. Any thread;
 *  no I/O and no wait (not even for a connection attempt under way). */
bool tb_redis_pub_up(tb_redis_pub *p, char *why, size_t cap);

/* ---- subscriber ---- */
typedef struct tb_redis_sub tb_redis_sub;
/** Called on the subscriber's thread for each message, in order. channel is NUL-terminated;
 *  body is binary (len bytes; a NUL follows it, not counted). Borrowed: valid during the call
 *  only. It must not call tb_redis_sub_free on its own subscriber. Keep it short: while it runs
 *  nothing is read, and Redis disconnects a subscriber whose backlog passes
 *  client-output-buffer-limit pubsub (32 MB, or 8 MB for 60 s); the transport then reconnects,
 *  and what was published meanwhile is lost. */
typedef void (*tb_redis_deliver_fn)(void *user, const char *channel, const void *body, size_t len);
/** Connects, SUBSCRIBEs to the channels and starts the reader thread; returns once Redis has
 *  confirmed every channel, so a message published after the return is delivered. The channel
 *  strings are copied. NULL when Redis cannot be reached or does not confirm within timeout_ms
 *  (TB_ECONN), or on bad options (TB_EINVAL; err says why); fn is never called then. After that
 *  it reconnects by itself (reconnect_min_ms doubling to reconnect_max_ms) and resubscribes,
 *  logging a warn when the connection is lost and "redis subscriber back" (fields gapMs,
 *  reconnects) when it is subscribed again. */
tb_redis_sub *tb_redis_sub_new(const tb_redis_opts *o, const char *const *channels,
                               size_t n_channels, tb_redis_deliver_fn fn, void *user,
                               tb_error *err);
typedef struct tb_redis_sub_stats {
    uint64_t messages;    /* delivered so far */
    unsigned reconnects;  /* successful reconnects after a loss */
    int64_t last_gap_ms;  /* how long the last loss lasted (lost to resubscribed); 0 if none */
    int64_t total_gap_ms; /* sum of all gaps */
    int connected;        /* 1 when subscribed now */
} tb_redis_sub_stats;
/** Thread-safe; fills out with zeros when s is NULL. */
void tb_redis_sub_stats_get(tb_redis_sub *s, tb_redis_sub_stats *out);
/** As tb_redis_pub_up, for the subscriber ("subscriber disconnected for 3.2 s: ..."): true while
 *  subscribed (or NULL). */
bool tb_redis_sub_up(tb_redis_sub *s, char *why, size_t cap);
/** Stops the thread and closes; returns within ~200 ms (or timeout_ms when a connection attempt
 *  is under way). No callback runs after it returns. NULL-safe. */
void tb_redis_sub_free(tb_redis_sub *s);
#endif
