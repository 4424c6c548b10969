/*
 * tablium internal: whether one connection of a transport (a publisher's, a consumer's) is
 * usable now, for readiness (tb_bus_ready). The thread that owns the connection writes it where
 * it connects, loses the connection or is blocked by the broker; any thread reads it without
 * touching the connection (no I/O, no lock of the transport). Header-only; not a public header.
 */
#ifndef TABLIUM_EVENTS_TB_LINK_H
#define TABLIUM_EVENTS_TB_LINK_H
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

enum { TB__LINK_CONNECTING, TB__LINK_UP, TB__LINK_DOWN, TB__LINK_BLOCKED };

typedef struct tb__link {
    atomic_int state;         /* TB__LINK_* */
    atomic_bool was_up;       /* connected at least once */
    _Atomic int64_t since_ms; /* CLOCK_MONOTONIC: when it stopped being up (or was made) */
    pthread_mutex_t mu;       /* guards error */
    char error[200];          /* the last failure while down */
} tb__link;

static inline int64_t tb__link_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/** Connecting, since now. */
static inline void tb__link_init(tb__link *l)
{
    atomic_init(&l->state, TB__LINK_CONNECTING);
    atomic_init(&l->was_up, false);
    atomic_init(&l->since_ms, tb__link_now_ms());
    pthread_mutex_init(&l->mu, NULL);
    l->error[0] = '\0';
}

static inline void tb__link_destroy(tb__link *l)
{
    pthread_mutex_destroy(&l->mu);
}

static inline void tb__link_up(tb__link *l)
{
    atomic_store(&l->was_up, true);
    atomic_store(&l->state, TB__LINK_UP);
}

/** A failed attempt or a lost connection. The time counts from the loss (from the making
 *  while it never connected), not from each failed retry. */
static inline void tb__link_down(tb__link *l, const char *error)
{
    pthread_mutex_lock(&l->mu);
    snprintf(l->error, sizeof l->error, "%s", error && *error ? error : "connection failed");
    pthread_mutex_unlock(&l->mu);
    int st = atomic_load(&l->state);
    if (st == TB__LINK_UP || st == TB__LINK_BLOCKED)
        atomic_store(&l->since_ms, tb__link_now_ms());
    atomic_store(&l->state, TB__LINK_DOWN);
}

/** connection.blocked / connection.unblocked from the broker (a resource alarm). */
static inline void tb__link_blocked(tb__link *l, bool blocked)
{
    int st = atomic_load(&l->state);
    if (blocked && st == TB__LINK_UP) {
        atomic_store(&l->since_ms, tb__link_now_ms());
        atomic_store(&l->state, TB__LINK_BLOCKED);
    } else if (!blocked && st == TB__LINK_BLOCKED) {
        atomic_store(&l->state, TB__LINK_UP);
    }
}

/** true when up; else false with "<role> disconnected for 3.2 s: <error>" (or "cannot connect
 *  for", "connecting for", "blocked by the broker (resource alarm) for") in why. */
static inline bool tb__link_get(tb__link *l, const char *role, char *why, size_t cap)
{
    int st = atomic_load(&l->state);
    if (st == TB__LINK_UP)
        return true;
    double s = (double)(tb__link_now_ms() - atomic_load(&l->since_ms)) / 1000.0;
    if (s < 0)
        s = 0;
    if (st == TB__LINK_CONNECTING) {
        snprintf(why, cap, "%s connecting for %.1f s", role, s);
    } else if (st == TB__LINK_BLOCKED) {
        snprintf(why, cap, "%s blocked by the broker (resource alarm) for %.1f s", role, s);
    } else {
        pthread_mutex_lock(&l->mu);
        snprintf(why, cap, "%s %s for %.1f s: %s", role,
                 atomic_load(&l->was_up) ? "disconnected" : "cannot connect", s, l->error);
        pthread_mutex_unlock(&l->mu);
    }
    return false;
}
#endif
