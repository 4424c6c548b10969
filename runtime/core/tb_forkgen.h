/* tablium (internal): a counter that a fork bumps in the child, so that per-thread random state
 * (UUID byte pools, the request id generator) is renewed there instead of repeating the
 * parent's. */
#ifndef TB_FORKGEN_H
#define TB_FORKGEN_H

#include <stddef.h>
#include <stdint.h>

unsigned tb__fork_generation(void);
/* getrandom(2) for n bytes, retrying EINTR; the bytes obtained (n unless no entropy source). */
size_t tb__getrandom(void *out, size_t n);
/* The next 64 bits of the calling thread's xoshiro256** (seeded from getrandom, reseeded in a
 * forked child): ids that must be unique, not secret (ctx.c). */
uint64_t tb__rng_next(void);

#endif
