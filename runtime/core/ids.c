#include "tablium/ids.h"
#include "tablium/log.h"
#include "tb_forkgen.h"

#include <errno.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* Random bytes come from getrandom(2) 512 at a time into a per-thread pool (one system call
 * per 32 UUIDs instead of one each); the bytes are wiped as they are used. A fork starts a new
 * generation, so a child never reuses its parent's pool. */
#define POOL 512
static atomic_uint g_fork_gen;
static pthread_once_t g_atfork_once = PTHREAD_ONCE_INIT;
static void on_fork_child(void) { atomic_fetch_add(&g_fork_gen, 1); }
static void register_atfork(void) { pthread_atfork(NULL, NULL, on_fork_child); }

unsigned tb__fork_generation(void)
{
    pthread_once(&g_atfork_once, register_atfork);
    return atomic_load(&g_fork_gen);
}

/* getrandom(2) until n bytes or a real failure (EINTR is retried). */
size_t tb__getrandom(void *out, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom((unsigned char *)out + got, n - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    return got;
}

static size_t random_bytes(unsigned char *out, size_t n)
{
    static __thread unsigned char pool[POOL];
    static __thread size_t left;
    static __thread unsigned gen;
    unsigned now = tb__fork_generation();
    if (gen != now) {
        left = 0;
        gen = now;
    }
    if (left < n) {
        if (tb__getrandom(pool, POOL) < POOL) { /* no entropy source */
            left = 0;
            return 0;
        }
        left = POOL;
    }
    left -= n;
    memcpy(out, pool + left, n);
    memset(pool + left, 0, n);
    return n;
}

void tb_uuid_new(char out[37])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    size_t got = random_bytes(b, sizeof b);
    if (got < sizeof b) { /* no entropy source: fall back to time and address bits */
        static atomic_bool warned;
        if (!atomic_exchange(&warned, true))
            tb_log_warn(NULL, "getrandom failed (%s): UUIDs fall back to clock-based bits, "
                              "which may repeat across hosts",
                        strerror(errno));
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)(uintptr_t)b;
        for (size_t i = got; i < sizeof b; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            b[i] = (unsigned char)(x >> 56);
        }
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}

void tb_time_rfc3339(char out[25])
{
    /* the "YYYY-MM-DDTHH:MM:SS." part is made once per second and thread */
    static __thread time_t cached_sec = -1;
    static __thread char cached[21];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != cached_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        char tmp[64];
        snprintf(tmp, sizeof tmp, "%04d-%02d-%02dT%02d:%02d:%02d.",
                 (tm.tm_year + 1900) % 10000, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                 tm.tm_sec);
        memcpy(cached, tmp, 20);
        cached_sec = ts.tv_sec;
    }
    memcpy(out, cached, 20);
    int ms = (int)(ts.tv_nsec / 1000000);
    out[20] = (char)('0' + ms / 100);
    out[21] = (char)('0' + ms / 10 % 10);
    out[22] = (char)('0' + ms % 10);
    out[23] = 'Z';
    out[24] = '\0';
}

int64_t tb_time_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
