#include "tablium/ctx.h"

#include <stdatomic.h>
#include "tb_forkgen.h"

#include <stdint.h>
#include <string.h>
#include <time.h>

int64_t tb_clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t tb_deadline_in(long ms)
{
    return tb_clock_ms() + ms;
}

long tb_deadline_left_ms(const tb_ctx *ctx)
{
    if (!ctx || ctx->deadline_ms <= 0)
        return -1;
    int64_t left = ctx->deadline_ms - tb_clock_ms();
    return left > 0 ? (long)left : 0;
}

void tb_ctx_init(tb_ctx *ctx, tb_arena *a, const char *request_id)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->arena = a;
    ctx->request_id = request_id;
}

/* xoshiro256** per thread, seeded from getrandom: request, trace and span ids need uniqueness,
 * not secrecy, and a syscall per request would show in the benchmarks. */
static _Thread_local uint64_t rng_s[4];
static _Thread_local int rng_seeded;
static _Thread_local unsigned rng_gen; /* reseeded in a forked child (tb_forkgen.h) */

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t tb__rng_next(void)
{
    unsigned gen = tb__fork_generation();
    if (!rng_seeded || rng_gen != gen) {
        rng_gen = gen;
        if (tb__getrandom(rng_s, sizeof rng_s) != sizeof rng_s) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            rng_s[0] = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32);
            rng_s[1] = (uint64_t)(uintptr_t)&rng_s ^ 0x9e3779b97f4a7c15ull;
            rng_s[2] = rng_s[0] * 0xbf58476d1ce4e5b9ull + 1;
            rng_s[3] = rng_s[1] * 0x94d049bb133111ebull + 7;
        }
        rng_seeded = 1;
    }
    uint64_t *s = rng_s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

void tb_request_id_new(char out[33])
{
    static const char hex[] = "0123456789abcdef";
    uint64_t a = tb__rng_next(), b = tb__rng_next();
    for (int i = 0; i < 16; i++) {
        out[i] = hex[(a >> (60 - 4 * i)) & 0xf];
        out[16 + i] = hex[(b >> (60 - 4 * i)) & 0xf];
    }
    out[32] = '\0';
}

static void *_Atomic service_deps;

void tb_service_set_deps(void *deps)
{
    atomic_store(&service_deps, deps);
}

void *tb_service_deps(void)
{
    return atomic_load(&service_deps);
}
